/** definePredictor(): the TypeScript counterpart of Cog's BasePredictor (setup + predict [+ train]). */
import type { InferInput, InputDecls } from "./inputs.js";
import type { FileLike, OutputSpec, OutputValue } from "./outputs.js";

export interface SetupContext {
  /** Appends a line to the setup logs. console.log/stdout/stderr are captured as well. */
  log(text: string): void;
  /** A trained version's weights (a local path), when the runner was started with weights. */
  weights?: string;
}

export interface PredictContext<S = unknown> {
  /** The prediction or training id. */
  id: string;
  /** Whatever setup() returned. */
  state: S;
  log(text: string): void;
  /** Emits a tqdm-style progress line into the logs. */
  progress(current: number, total: number): void;
  /** Records a number in the prediction's metrics. */
  metric(name: string, value: number): void;
  /** Aborted when the prediction is canceled or times out. */
  signal: AbortSignal;
  /** A directory this run may write into; file outputs are written here. */
  scratchDir: string;
  weights?: string;
}

export interface TrainDefinition<TI extends InputDecls, S> {
  input: TI;
  /** Returns the trained weights (usually a local path). */
  run(input: InferInput<TI>, ctx: PredictContext<S>): Promise<FileLike> | FileLike;
}

export interface PredictorDefinition<I extends InputDecls, O extends OutputSpec, S, TI extends InputDecls> {
  input: I;
  output: O;
  setup?(ctx: SetupContext): Promise<S> | S;
  predict(input: InferInput<I>, ctx: PredictContext<S>): Promise<OutputValue<O>> | OutputValue<O>;
  train?: TrainDefinition<TI, S>;
  /** How many predictions one runner process serves at once (Cog's concurrency.max). Default 1. */
  concurrency?: number;
}

export interface Predictor<
  I extends InputDecls = InputDecls,
  O extends OutputSpec = OutputSpec,
  S = unknown,
  TI extends InputDecls = InputDecls,
> extends PredictorDefinition<I, O, S, TI> {
  readonly __replicant_predictor__: true;
}

/** A predictor whose declarations are only known at runtime (a loaded module). */
export type AnyPredictor = Predictor<InputDecls, OutputSpec, unknown, InputDecls>;

export function definePredictor<
  I extends InputDecls,
  O extends OutputSpec,
  S = undefined,
  TI extends InputDecls = Record<never, never>,
>(definition: PredictorDefinition<I, O, S, TI>): Predictor<I, O, S, TI> {
  const concurrency = definition.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new Error(`concurrency must be a positive integer, got ${concurrency}`);
  }
  return { ...definition, __replicant_predictor__: true };
}

export function isPredictor(value: unknown): value is AnyPredictor {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { __replicant_predictor__?: unknown }).__replicant_predictor__ === true
  );
}
