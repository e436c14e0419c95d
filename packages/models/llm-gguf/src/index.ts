/**
 * Text generation from a user's GGUF file with node-llama-cpp: the inputs of Replicate's language models,
 * output streamed token by token.
 */
import { definePredictor, input, output } from "@replicant/runtime";
import { LlamaCompletion } from "node-llama-cpp";
import { ggufPath, llmThreads, loadModel } from "./llama.js";

export { cpuLlama, ggufPath, llmThreads, loadModel } from "./llama.js";

/** An async queue that turns node-llama-cpp's callbacks into an iterator. */
function channel<T>() {
  const items: T[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  let failure: unknown;
  return {
    push(item: T) {
      items.push(item);
      wake?.();
    },
    close(error?: unknown) {
      done = true;
      failure = error;
      wake?.();
    },
    async *drain(): AsyncGenerator<T> {
      for (;;) {
        const item = items.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        if (done) {
          if (failure !== undefined) throw failure;
          return;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    },
  };
}

export default definePredictor({
  input: {
    prompt: input.string({ description: "Prompt to send to the model" }),
    system_prompt: input.string({ default: "", description: "System prompt, placed by prompt_template" }),
    prompt_template: input.string({
      default: "{system_prompt}\n\n{prompt}",
      description:
        "How the prompts are joined; {system_prompt} and {prompt} are replaced. With an empty system prompt the prompt is sent alone",
    }),
    max_tokens: input.integer({
      default: 128,
      ge: 1,
      le: 32768,
      description: "Maximum number of tokens to generate",
    }),
    temperature: input.number({
      default: 0.7,
      ge: 0,
      le: 5,
      description: "Sampling temperature; 0 is greedy",
    }),
    top_p: input.number({
      default: 0.95,
      ge: 0,
      le: 1,
      description: "Nucleus sampling: keep the smallest set of tokens with this total probability",
    }),
    top_k: input.integer({
      default: 40,
      ge: 0,
      description: "Sample among the k most likely tokens (0: all)",
    }),
    stop_sequences: input.string({
      default: "",
      description: "Comma-separated sequences that end the generation",
    }),
    seed: input.integer({ optional: true, description: "Random seed; leave blank to randomize" }),
  },
  output: output.iterator(output.string(), { display: "concatenate" }),
  async setup(ctx) {
    const path = ggufPath(ctx.weights);
    const model = await loadModel(path);
    const threads = llmThreads();
    const context = await model.createContext({ threads, contextSize: { max: 4096 } });
    ctx.log(`loaded ${path} (${model.trainContextSize} training context), ${threads} thread(s)`);
    return { model, context };
  },
  async *predict(inputs, ctx) {
    const { model, context } = ctx.state;
    const text =
      inputs.system_prompt === ""
        ? inputs.prompt
        : inputs.prompt_template
            .replaceAll("{system_prompt}", inputs.system_prompt)
            .replaceAll("{prompt}", inputs.prompt);
    const stops = inputs.stop_sequences
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    const sequence = context.getSequence();
    const completion = new LlamaCompletion({ contextSequence: sequence });
    const tokens = channel<string>();
    const started = performance.now();
    let firstTokenAt: number | undefined;
    let count = 0;
    const run = completion
      .generateCompletion(text, {
        maxTokens: inputs.max_tokens,
        temperature: inputs.temperature,
        topP: inputs.top_p,
        ...(inputs.top_k > 0 ? { topK: inputs.top_k } : {}),
        ...(inputs.seed !== undefined ? { seed: inputs.seed } : {}),
        ...(stops.length > 0 ? { customStopTriggers: stops } : {}),
        signal: ctx.signal,
        stopOnAbortSignal: true,
        // One output item per generated token, as Replicate's language models stream.
        onToken(generated) {
          firstTokenAt ??= performance.now();
          for (const token of generated) {
            count++;
            tokens.push(model.detokenize([token]));
          }
        },
      })
      .then(
        () => tokens.close(),
        (error: unknown) => tokens.close(error),
      );
    try {
      yield* tokens.drain();
    } finally {
      await run;
      completion.dispose();
      sequence.dispose();
      const seconds = (performance.now() - started) / 1000;
      // The metrics Replicate's language models report.
      ctx.metric("input_token_count", model.tokenize(text).length);
      ctx.metric("output_token_count", count);
      if (firstTokenAt !== undefined) ctx.metric("time_to_first_token", (firstTokenAt - started) / 1000);
      if (seconds > 0) ctx.metric("tokens_per_second", count / seconds);
    }
  },
});
