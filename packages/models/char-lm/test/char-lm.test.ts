import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { collect, directRunner } from "@replicant/model-kit";
import charLm, {
  DEFAULT_CORPUS_PATH,
  DEFAULT_WEIGHTS_PATH,
  loadWeights,
  trainWeights,
} from "../src/index.js";

const words = (text: string) => text.toLowerCase().match(/[a-z]+/g) ?? [];

test("the committed default weights are the ones trained on the committed corpus", async () => {
  const trained = trainWeights(await readFile(DEFAULT_CORPUS_PATH, "utf8"));
  assert.deepEqual(await loadWeights(DEFAULT_WEIGHTS_PATH), JSON.parse(JSON.stringify(trained)));
});

test("streams exactly max_tokens characters, reproducibly for a seed", async () => {
  const runner = await directRunner(charLm);
  const first = await collect(await runner.predict({ prompt: "Alice was ", max_tokens: 80, seed: 7 }));
  const again = await collect(await runner.predict({ prompt: "Alice was ", max_tokens: 80, seed: 7 }));
  assert.equal(first.length, 80);
  assert.ok(first.every((token) => [...token].length === 1));
  assert.deepEqual(again, first);
  // Trained on Alice: most generated words are words of that text.
  const known = new Set(words(await readFile(DEFAULT_CORPUS_PATH, "utf8")));
  const generated = words(first.join(""));
  const share = generated.filter((w) => known.has(w)).length / generated.length;
  assert.ok(share > 0.6, `only ${share} of ${JSON.stringify(first.join(""))} are corpus words`);
});

test("train() on a text file makes the outputs use that text's vocabulary", async () => {
  const base = await directRunner(charLm);
  // Invented words that never occur in the default corpus.
  const text = "zorp blenk quiffle marrow zorp quiffle blenk snark. ".repeat(20);
  const textFile = join(base.scratchDir, "new-words.txt");
  await writeFile(textFile, text);
  const weights = await base.train({ text_file: textFile });
  assert.equal(typeof weights, "string");

  const tuned = await directRunner(charLm, { weights: weights as string });
  const output = (await collect(await tuned.predict({ prompt: "zorp ", max_tokens: 200, seed: 1 }))).join("");
  const vocabulary = new Set(words(text));
  const generated = words(output);
  assert.ok(generated.length >= 10, output);
  const share = generated.filter((w) => vocabulary.has(w)).length / generated.length;
  assert.ok(
    share >= 0.8,
    `only ${share} of the words in ${JSON.stringify(output)} come from the training text`,
  );

  const before = (await collect(await base.predict({ prompt: "zorp ", max_tokens: 200, seed: 1 }))).join("");
  const beforeShare =
    words(before).filter((w) => vocabulary.has(w)).length / Math.max(1, words(before).length);
  assert.ok(beforeShare < 0.3, `the untrained model already used the new words: ${before}`);
});

test("rejects an empty training text", async () => {
  const runner = await directRunner(charLm);
  const empty = join(runner.scratchDir, "empty.txt");
  await writeFile(empty, "  \n");
  await assert.rejects(runner.train({ text_file: empty }), /empty/);
});
