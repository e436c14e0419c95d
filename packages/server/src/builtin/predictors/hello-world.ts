import { definePredictor, input, output } from "@replicant/runtime";

/** Replicate's replicate/hello-world, in TypeScript. */
export default definePredictor({
  input: { text: input.string({ description: "Text to prefix with 'hello '", default: "world" }) },
  output: output.string(),
  concurrency: 64,
  predict: ({ text }) => `hello ${text}`,
});
