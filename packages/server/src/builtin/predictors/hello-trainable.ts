import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { definePredictor, input, output } from "@replicant/runtime";

/**
 * Trainable hello: `train()` writes the greeting as the weights file; a version made from those
 * weights answers `greeting + " " + text`.
 */
export default definePredictor({
  input: { text: input.string({ default: "world" }) },
  output: output.string(),
  concurrency: 16,
  async setup({ weights }) {
    return { greeting: weights ? (await readFile(weights, "utf8")).trim() : "hello" };
  },
  predict: ({ text }, ctx) => `${ctx.state.greeting} ${text}`,
  train: {
    input: { greeting: input.string({ description: "The greeting to learn" }) },
    async run({ greeting }, ctx) {
      ctx.log(`training on greeting ${JSON.stringify(greeting)}`);
      const path = join(ctx.scratchDir, "weights.txt");
      await writeFile(path, greeting);
      return path;
    },
  },
});
