/** Runs one prediction or training inside the process that loaded the predictor. */
import { AsyncLocalStorage } from "node:async_hooks";
import { mkdirSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { materializeOutput } from "./output-files.js";
import type { OutputSpec } from "./outputs.js";
import { output } from "./outputs.js";
import { type AnyPredictor, isPredictor, type PredictContext } from "./predictor.js";
import type { PredictorDescription, RunKind } from "./runner-protocol.js";
import { formatValidationErrors, validateInput } from "./validate.js";

/** Where console output goes while code runs inside a log scope (setup or one prediction). */
export const logScope = new AsyncLocalStorage<(text: string) => void>();

/** The log sink of the one task running in this process, when it runs alone (see {@link withLogSink}). */
let soleSink: ((text: string) => void) | undefined;

/**
 * Runs `fn` with console output going to `sink`. A task that runs alone in its process (setup; a
 * prediction on a runner that serves one at a time) gets a process-wide sink, as Cog captures a
 * predictor's output: AsyncLocalStorage, which concurrent predictions need, turns on promise hooks for
 * the whole process on Node 20, and they cost a token-streaming runner ~5 % of its main thread.
 */
export async function withLogSink<T>(
  sink: (text: string) => void,
  fn: () => T | Promise<T>,
  alone: boolean,
): Promise<T> {
  if (!alone) return logScope.run(sink, fn);
  const previous = soleSink;
  soleSink = sink;
  try {
    return await fn();
  } finally {
    soleSink = previous;
  }
}

let captured = false;

/** console.log and direct stdout/stderr writes inside a log scope become that scope's logs (idempotent). */
export function captureConsoleOutput(): void {
  if (captured) return;
  captured = true;
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream);
    stream.write = ((chunk: unknown, encoding?: unknown, callback?: unknown) => {
      const sink = logScope.getStore() ?? soleSink;
      if (!sink) return original(chunk as string, encoding as BufferEncoding, callback as () => void);
      sink(typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString());
      const done = typeof encoding === "function" ? encoding : callback;
      if (typeof done === "function") queueMicrotask(() => done());
      return true;
    }) as typeof stream.write;
  }
}

export async function loadPredictor(path: string): Promise<AnyPredictor> {
  const module: { default?: unknown } = await import(pathToFileURL(path).href);
  if (!isPredictor(module.default)) {
    throw new Error(`${path} does not export a predictor (definePredictor(...)) as its default export`);
  }
  return module.default;
}

export function describePredictor(predictor: AnyPredictor): PredictorDescription {
  const description: PredictorDescription = {
    input: predictor.input,
    output: predictor.output,
    concurrency: predictor.concurrency ?? 1,
  };
  if (predictor.train) description.train = { input: predictor.train.input };
  return description;
}

export interface ExecutionSink {
  log(text: string): void;
  output(index: number, value: unknown): void;
}

export interface ExecutionResult {
  status: "succeeded" | "failed" | "canceled";
  output?: unknown;
  outputIsItems?: true;
  error?: string;
  metrics?: Record<string, number>;
}

export interface ExecutionJob {
  id: string;
  kind: RunKind;
  input: Record<string, unknown>;
  scratchDir: string;
  weights?: string | undefined;
}

const trainingOutput = output.object({ weights: output.file() }, { name: "TrainingOutput" });

function withNewline(text: string): string {
  return text.endsWith("\n") ? text : `${text}\n`;
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

/** A tqdm-style line: ` 30%|███       | 3/10 [00:01<00:02,  2.00it/s]`. */
export function progressLine(current: number, total: number, elapsedSeconds: number): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, current / total)) : 0;
  const filled = Math.floor(fraction * 10);
  const bar = "█".repeat(filled) + " ".repeat(10 - filled);
  const rate = elapsedSeconds > 0 ? current / elapsedSeconds : 0;
  const remaining = rate > 0 ? (total - current) / rate : Number.NaN;
  const percent = String(Math.round(fraction * 100)).padStart(3, " ");
  return `${percent}%|${bar}| ${current}/${total} [${clock(elapsedSeconds)}<${clock(remaining)}, ${rate.toFixed(2).padStart(5, " ")}it/s]\n`;
}

function isIterable(value: unknown): value is AsyncIterable<unknown> | Iterable<unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    (Symbol.asyncIterator in value || Symbol.iterator in value) &&
    !Array.isArray(value)
  );
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export async function execute(
  predictor: AnyPredictor,
  state: unknown,
  job: ExecutionJob,
  signal: AbortSignal,
  sink: ExecutionSink,
  /** Nothing else runs in this process meanwhile: console output needs no AsyncLocalStorage. */
  alone = false,
): Promise<ExecutionResult> {
  const train = job.kind === "training" ? predictor.train : undefined;
  if (job.kind === "training" && !train)
    return { status: "failed", error: "This model does not support training" };
  const checked = validateInput(train ? train.input : predictor.input, job.input);
  if (!checked.ok) return { status: "failed", error: formatValidationErrors(checked.errors) };

  let metrics: Record<string, number> | undefined;
  let progressStarted: number | undefined;
  const log = (text: string) => sink.log(withNewline(text));
  const ctx: PredictContext = {
    id: job.id,
    state,
    log,
    progress(current, total) {
      progressStarted ??= performance.now();
      sink.log(progressLine(current, total, (performance.now() - progressStarted) / 1000));
    },
    metric(name, value) {
      metrics ??= {};
      metrics[name] = value;
    },
    signal,
    // Created on first use, so runs that write no files cost no syscalls.
    get scratchDir() {
      mkdirSync(job.scratchDir, { recursive: true });
      return job.scratchDir;
    },
  };
  if (job.weights !== undefined) ctx.weights = job.weights;
  const finish = (result: ExecutionResult): ExecutionResult => {
    if (metrics) result.metrics = metrics;
    return result;
  };

  return withLogSink(
    sink.log,
    async (): Promise<ExecutionResult> => {
      try {
        const spec: OutputSpec = train ? trainingOutput : predictor.output;
        const returned = train
          ? { weights: await train.run(checked.value, ctx) }
          : await predictor.predict(checked.value, ctx);
        if (spec.kind === "iterator" && isIterable(returned)) {
          const items: unknown[] = [];
          for await (const item of returned) {
            if (signal.aborted) break;
            const value = await materializeOutput(item, spec.items, job.scratchDir);
            sink.output(items.length, value);
            items.push(value);
          }
          if (signal.aborted) return finish({ status: "canceled" });
          return finish({ status: "succeeded", output: items, outputIsItems: true });
        }
        const value = await materializeOutput(returned, spec, job.scratchDir);
        if (signal.aborted) return finish({ status: "canceled" });
        return finish({ status: "succeeded", output: value });
      } catch (error) {
        if (signal.aborted) return finish({ status: "canceled" });
        // Like Cog, the traceback goes to the logs and the message becomes the error.
        sink.log(withNewline(error instanceof Error && error.stack ? error.stack : String(error)));
        return finish({ status: "failed", error: errorMessage(error) });
      }
    },
    alone,
  );
}
