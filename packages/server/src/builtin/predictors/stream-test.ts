import { setTimeout as sleep } from "node:timers/promises";
import { definePredictor, input, output } from "@replicant/runtime";

/**
 * Streams `tokens` strings with a delay, one log line each; fails at the end when asked. `token_size`
 * pads each token (for tests of streams that carry a lot).
 */
export default definePredictor({
  input: {
    tokens: input.integer({ description: "How many tokens to emit", default: 10, ge: 0, le: 10000 }),
    delay_ms: input.integer({
      description: "Delay between tokens, in milliseconds",
      default: 50,
      ge: 0,
      le: 60000,
    }),
    fail: input.boolean({ description: "End with an error", default: false }),
    token_size: input.integer({
      description: "Pad each token with dots to this many characters (0: no padding)",
      default: 0,
      ge: 0,
      le: 4096,
    }),
  },
  output: output.iterator(output.string(), { display: "concatenate" }),
  concurrency: 32,
  async *predict({ tokens, delay_ms, fail, token_size }, ctx) {
    for (let i = 1; i <= tokens; i++) {
      if (delay_ms > 0) await sleep(delay_ms, undefined, { signal: ctx.signal });
      ctx.log(`emitting token ${i}`);
      yield token_size > 0 ? `${`token-${i}`.padEnd(token_size - 1, ".")} ` : `token-${i} `;
    }
    if (fail) throw new Error("stream-test failed as requested");
  },
});
