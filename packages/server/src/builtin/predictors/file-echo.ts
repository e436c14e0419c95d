import { definePredictor, input, output } from "@replicant/runtime";

/** Returns the input file, byte for byte, as a file output. */
export default definePredictor({
  input: { file: input.file({ description: "Any file" }) },
  output: output.file(),
  concurrency: 16,
  predict: ({ file }) => file,
});
