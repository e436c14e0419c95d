/** Embeddings from a user's GGUF file with node-llama-cpp: one vector per input text. */
import { definePredictor, input, output } from "@replicant/runtime";
import { ggufPath, llmThreads, loadModel } from "./llama.js";

export default definePredictor({
  input: {
    texts: input.array(input.string(), { description: "Texts to embed" }),
  },
  output: output.array(output.array(output.number())),
  async setup(ctx) {
    const path = ggufPath(ctx.weights);
    const model = await loadModel(path);
    const context = await model.createEmbeddingContext({ threads: llmThreads() });
    ctx.log(`loaded ${path} for embeddings`);
    return { context };
  },
  async predict({ texts }, ctx) {
    const vectors: number[][] = [];
    for (const text of texts) {
      if (ctx.signal.aborted) break;
      vectors.push([...(await ctx.state.context.getEmbeddingFor(text)).vector]);
    }
    return vectors;
  },
});
