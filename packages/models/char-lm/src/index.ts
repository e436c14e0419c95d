/**
 * char-lm: a character-level language model that needs no download. The default weights are trained on a
 * public-domain text shipped in this package; `train()` fine-tunes them on a user's text file.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { definePredictor, input, output } from "@replicant/runtime";
import {
  addText,
  CharModel,
  type CharModelWeights,
  emptyWeights,
  parseWeights,
  randomSource,
} from "./char-model.js";

export * from "./char-model.js";

/** The package's committed default weights and the corpus they are trained on. */
export const DEFAULT_WEIGHTS_PATH = fileURLToPath(new URL("../../weights/default.json", import.meta.url));
export const DEFAULT_CORPUS_PATH = fileURLToPath(new URL("../../corpus/alice-opening.txt", import.meta.url));
export const DEFAULT_ORDER = 6;

export async function loadWeights(path: string): Promise<CharModelWeights> {
  return parseWeights(await readFile(path, "utf8"));
}

/** Trains weights from scratch on a text (how weights/default.json is made). */
export function trainWeights(text: string, order = DEFAULT_ORDER): CharModelWeights {
  const weights = emptyWeights(order);
  addText(weights, text);
  return weights;
}

export default definePredictor({
  input: {
    prompt: input.string({ default: "", description: "Text to continue" }),
    max_tokens: input.integer({ default: 200, ge: 1, le: 10000, description: "Characters to generate" }),
    temperature: input.number({
      default: 0.7,
      ge: 0,
      le: 5,
      description: "Sampling temperature; 0 always takes the most likely character",
    }),
    seed: input.integer({ optional: true, description: "Random seed, for a reproducible output" }),
  },
  output: output.iterator(output.string(), { display: "concatenate" }),
  async setup(ctx) {
    const model = new CharModel(await loadWeights(ctx.weights ?? DEFAULT_WEIGHTS_PATH));
    ctx.log(`char-lm: order ${model.weights.order}, ${model.vocabulary.length} characters`);
    return { model };
  },
  async *predict({ prompt, max_tokens, temperature, seed }, ctx) {
    const { model } = ctx.state;
    const random = randomSource(seed ?? Math.floor(Math.random() * 2 ** 32));
    const keep = model.weights.order - 1;
    let history = prompt;
    for (let i = 0; i < max_tokens; i++) {
      if (ctx.signal.aborted) return;
      const next = model.sample(history, temperature, random);
      history = (history + next).slice(-Math.max(keep, 1) * 2);
      yield next;
    }
  },
  train: {
    input: {
      text_file: input.file({ description: "A UTF-8 text file to learn from" }),
      epochs: input.integer({
        default: 10,
        ge: 1,
        le: 1000,
        description:
          "How many times the new text is counted; n-gram counts add up, so more epochs let it outweigh the base text",
      }),
      from_scratch: input.boolean({
        default: false,
        description: "Start from empty weights instead of fine-tuning the current ones",
      }),
    },
    async run({ text_file, epochs, from_scratch }, ctx) {
      const text = await readFile(text_file, "utf8");
      if (text.trim() === "") throw new Error("text_file is empty");
      const weights = from_scratch
        ? emptyWeights(DEFAULT_ORDER)
        : await loadWeights(ctx.weights ?? DEFAULT_WEIGHTS_PATH);
      addText(weights, text, epochs);
      ctx.log(`trained on ${text.length} characters × ${epochs}`);
      const path = join(ctx.scratchDir, "char-lm-weights.json");
      await writeFile(path, JSON.stringify(weights));
      return path;
    },
  },
});
