import assert from "node:assert/strict";
import { test } from "node:test";
import { definePredictor, input, output } from "../src/index.js";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(_value?: T): void {}

test("predict's input type is inferred from the declarations", () => {
  const predictor = definePredictor({
    input: {
      text: input.string({ description: "Text", default: "world" }),
      n: input.integer({ ge: 1, le: 10, default: 3 }),
      image: input.file(),
      key: input.secret(),
      tags: input.array(input.string()),
      mode: input.string({ choices: ["a", "b"] }),
      note: input.string({ optional: true }),
      seed: input.integer({ default: null }),
    },
    output: output.iterator(output.string(), { display: "concatenate" }),
    setup: async () => ({ prefix: "hello " }),
    async *predict(inputs, ctx) {
      expectType<
        Equal<
          typeof inputs,
          {
            text: string;
            n: number;
            image: string;
            key: string;
            tags: string[];
            mode: "a" | "b";
            note?: string | undefined;
            seed?: number | undefined;
          }
        >
      >(true);
      expectType<Equal<typeof ctx.state, { prefix: string }>>(true);
      yield `${ctx.state.prefix}${inputs.text}`;
    },
  });
  assert.equal(predictor.__replicant_predictor__, true);
  assert.deepEqual(predictor.input.mode.options, { choices: ["a", "b"] });
  assert.equal(predictor.input.tags.items?.kind, "string");
});

test("outputs constrain predict's return type", () => {
  const predictor = definePredictor({
    input: {},
    output: output.object({
      text: output.string(),
      file: output.file(),
      scores: output.array(output.number()),
    }),
    predict: () => ({ text: "x", file: new Uint8Array([1]), scores: [1, 2] }),
  });
  assert.equal(predictor.output.kind, "object");
  // @ts-expect-error a number is not a string output
  definePredictor({ input: {}, output: output.string(), predict: () => 3 });
  assert.throws(() =>
    definePredictor({ input: {}, output: output.string(), predict: () => "", concurrency: 0 }),
  );
});
