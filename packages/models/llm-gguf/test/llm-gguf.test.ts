import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { collect, directRunner } from "@replicant/model-kit";
import { readGgufFileInfo } from "node-llama-cpp";
import embeddings from "../src/embeddings.js";
import llm from "../src/index.js";
import { TINY_GGUF, tinyGguf, writeTinyGguf } from "../src/tiny-gguf.js";

// A 1.75 MB llama with random weights: gibberish text, but a real tokenizer, sampler and token stream.
const SHARED_GGUF = fileURLToPath(
  new URL("../../../../../../shared/models/llama-2-tiny-random.gguf", import.meta.url),
);
const temp = await mkdtemp(join(tmpdir(), "replicant-llm-gguf-"));
after(() => rm(temp, { recursive: true, force: true }));

/** REPLICANT_TEST_GGUF if set, else the shared file, else a tiny random llama written here. */
async function testGguf(): Promise<string> {
  const configured = process.env.REPLICANT_TEST_GGUF;
  if (configured !== undefined && configured !== "") return configured;
  if (existsSync(SHARED_GGUF)) return SHARED_GGUF;
  const path = join(temp, "tiny-random.gguf");
  await writeTinyGguf(path);
  return path;
}
const gguf = await testGguf();
const skip = existsSync(gguf) ? false : `REPLICANT_TEST_GGUF is set to ${gguf}, which is missing`;

test("streams exactly max_tokens tokens", { skip }, async () => {
  const runner = await directRunner(llm, { weights: gguf });
  const tokens = await collect(await runner.predict({ prompt: "Once upon a time", max_tokens: 24, seed: 3 }));
  assert.equal(tokens.length, 24);
  assert.ok(tokens.every((token) => typeof token === "string"));
  // Same seed, same tokens; the system prompt path runs too.
  const again = await collect(await runner.predict({ prompt: "Once upon a time", max_tokens: 24, seed: 3 }));
  assert.deepEqual(again, tokens);
  const withSystem = await collect(
    await runner.predict({ prompt: "Hi", system_prompt: "Be brief.", max_tokens: 5, temperature: 0 }),
  );
  assert.equal(withSystem.length, 5);
});

test("reports the metrics Replicate's language models report", { skip }, async () => {
  let metrics: Record<string, number> = {};
  const runner = await directRunner(llm, {
    weights: gguf,
    metric: (name, value) => {
      metrics[name] = value;
    },
  });
  const started = performance.now();
  await collect(await runner.predict({ prompt: "Once upon a time", max_tokens: 12, seed: 3 }));
  const seconds = (performance.now() - started) / 1000;
  assert.equal(metrics.output_token_count, 12);
  const promptTokens = metrics.input_token_count ?? 0;
  assert.ok(promptTokens > 0, JSON.stringify(metrics));
  const firstToken = metrics.time_to_first_token ?? -1;
  assert.ok(firstToken > 0 && firstToken <= seconds, JSON.stringify(metrics));
  assert.ok((metrics.tokens_per_second ?? 0) > 0);
  // A system prompt, joined by the template, is part of the input the model reads.
  metrics = {};
  await collect(
    await runner.predict({ prompt: "Once upon a time", system_prompt: "Be brief and kind.", max_tokens: 2 }),
  );
  assert.ok((metrics.input_token_count ?? 0) > promptTokens, JSON.stringify(metrics));
});

test("stops early when the run is aborted", { skip }, async () => {
  const controller = new AbortController();
  const runner = await directRunner(llm, { weights: gguf, signal: controller.signal });
  const tokens: string[] = [];
  for await (const token of await runner.predict({ prompt: "Hello", max_tokens: 5000, seed: 1 })) {
    tokens.push(token);
    if (tokens.length === 3) controller.abort();
  }
  assert.ok(tokens.length < 5000, `got ${tokens.length} tokens`);
});

test("embeds each text as a vector of the model's embedding size", { skip }, async () => {
  const runner = await directRunner(embeddings, { weights: gguf });
  const vectors = await runner.predict({ texts: ["hello world", "goodbye"] });
  assert.equal(vectors.length, 2);
  assert.ok((vectors[0]?.length ?? 0) > 0);
  assert.equal(vectors[0]?.length, vectors[1]?.length);
  assert.ok(vectors[0]?.every(Number.isFinite));
});

test("explains how to provide a GGUF when there is none", async () => {
  const saved = process.env.REPLICANT_GGUF_PATH;
  delete process.env.REPLICANT_GGUF_PATH;
  try {
    await assert.rejects(directRunner(llm), /--gguf/);
  } finally {
    if (saved !== undefined) process.env.REPLICANT_GGUF_PATH = saved;
  }
});

test("writeTinyGguf writes a small seeded llama that loads, generates and embeds", async () => {
  const path = join(temp, "seeded.gguf");
  await writeTinyGguf(path, { seed: 7 });
  assert.ok((await stat(path)).size < 2 * 1024 * 1024);
  // Same seed, same bytes; another seed, other weights.
  assert.deepEqual(new Uint8Array(await readFile(path)), tinyGguf({ seed: 7 }));
  assert.notDeepEqual(tinyGguf({ seed: 8 }), tinyGguf({ seed: 7 }));

  const info = await readGgufFileInfo(path);
  assert.equal(info.version, 3);
  assert.equal(info.metadata.general.architecture, "llama");
  assert.equal(info.metadata.general.alignment, 32);
  assert.equal(info.metadata.tokenizer.ggml.model, "llama");
  assert.equal(info.tensorInfo?.length, 3 + 9 * TINY_GGUF.blockCount);

  const runner = await directRunner(llm, { weights: path });
  for (const temperature of [0, 0.7]) {
    const tokens = await collect(
      await runner.predict({ prompt: "Once upon a time", max_tokens: 16, temperature, seed: 2 }),
    );
    assert.equal(tokens.length, 16);
    assert.ok(tokens.join("").length > 0);
  }
  const embedder = await directRunner(embeddings, { weights: path });
  const [vector] = await embedder.predict({ texts: ["hello world"] });
  assert.equal(vector?.length, TINY_GGUF.embeddingLength);
  assert.ok(vector?.every(Number.isFinite));
});
