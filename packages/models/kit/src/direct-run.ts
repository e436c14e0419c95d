/**
 * Runs a predictor in this process, without a runner process or the server: for model tests and for the
 * "predictor interface" side of the R8 benchmark. Inputs are validated and defaulted as the runner does.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type AnyPredictor,
  formatValidationErrors,
  type InferInput,
  type InputDecls,
  type OutputSpec,
  type OutputValue,
  type PredictContext,
  type Predictor,
  validateInput,
} from "@replicant/runtime";

export interface DirectRunOptions {
  /** Trained weights, as the runner passes them to setup() and predict(). */
  weights?: string;
  /** Called with every log line (default: dropped). */
  log?: (text: string) => void;
  /** Called with every ctx.metric(name, value) of a run (default: dropped). */
  metric?: (name: string, value: number) => void;
  signal?: AbortSignal;
}

export interface DirectRunner<I extends InputDecls, O extends OutputSpec> {
  /** Runs predict() with validated, defaulted input. */
  predict(input: Partial<InferInput<I>> & Record<string, unknown>): Promise<OutputValue<O>>;
  /** Runs train() with validated, defaulted input; returns what train() returned (the weights). */
  train(input: Record<string, unknown>): Promise<unknown>;
  /** What setup() returned. */
  state: unknown;
  scratchDir: string;
}

let runs = 0;

/** Calls setup() once and returns a runner for predict()/train() calls on the resulting state. */
export async function directRunner<I extends InputDecls, O extends OutputSpec, S, TI extends InputDecls>(
  predictor: Predictor<I, O, S, TI>,
  options: DirectRunOptions = {},
): Promise<DirectRunner<I, O>> {
  const log = options.log ?? (() => {});
  const scratchDir = mkdtempSync(join(tmpdir(), "replicant-model-"));
  const setupContext = options.weights === undefined ? { log } : { log, weights: options.weights };
  const state = (predictor.setup ? await predictor.setup(setupContext) : undefined) as S;
  const context = (): PredictContext<S> => {
    const ctx: PredictContext<S> = {
      id: `direct-${process.pid}-${++runs}`,
      state,
      log,
      progress() {},
      metric: options.metric ?? (() => {}),
      signal: options.signal ?? new AbortController().signal,
      scratchDir,
    };
    if (options.weights !== undefined) ctx.weights = options.weights;
    return ctx;
  };
  const checked = (decls: InputDecls, raw: Record<string, unknown>) => {
    const result = validateInput(decls, raw);
    if (!result.ok) throw new Error(formatValidationErrors(result.errors));
    return result.value;
  };
  return {
    state,
    scratchDir,
    async predict(input) {
      return predictor.predict(checked(predictor.input, input) as InferInput<I>, context());
    },
    async train(input) {
      const train = predictor.train;
      if (!train) throw new Error("this predictor has no train()");
      return train.run(checked(train.input, input) as InferInput<TI>, context());
    },
  };
}

/** Collects an iterator output (sync or async) into an array. */
export async function collect<T>(items: AsyncIterable<T> | Iterable<T>): Promise<T[]> {
  const result: T[] = [];
  for await (const item of items) result.push(item);
  return result;
}

export type { AnyPredictor };
