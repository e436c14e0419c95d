/**
 * Runs a predictor inside the calling process: no IPC hop, but no isolation either (a crash or an
 * infinite loop takes the caller down, and cancel can only abort the signal). Same surface as RunnerHost.
 */
import { captureConsoleOutput, describePredictor, execute, loadPredictor, logScope } from "./execute.js";
import type { AnyPredictor } from "./predictor.js";
import { type RunnerState, SetupFailedError } from "./runner-host.js";
import type { PredictorDescription } from "./runner-protocol.js";
import type { RunCallbacks, RunRequest, RunResult } from "./runner-types.js";

export interface InProcessRunnerOptions {
  predictorPath: string;
  weights?: string;
}

export class InProcessRunner {
  state: RunnerState = "starting";
  description: PredictorDescription | undefined;
  setupLogs = "";
  readonly setupStartedAt = new Date();
  setupCompletedAt: Date | undefined;
  readonly ready: Promise<void>;
  readonly described: Promise<PredictorDescription>;
  readonly exited: Promise<string>;
  private predictor: AnyPredictor | undefined;
  private predictorState: unknown;
  private running = 0;
  private markExited!: (reason: string) => void;

  constructor(private readonly options: InProcessRunnerOptions) {
    captureConsoleOutput();
    this.exited = new Promise((resolve) => {
      this.markExited = resolve;
    });
    const log = (text: string) => {
      this.setupLogs += text;
    };
    const loaded = logScope.run(log, () => loadPredictor(options.predictorPath));
    this.described = loaded.then((predictor) => {
      this.description = describePredictor(predictor);
      return this.description;
    });
    this.ready = loaded
      .then(async (predictor) => {
        this.predictor = predictor;
        if (predictor.setup) {
          const line = (text: string) => log(text.endsWith("\n") ? text : `${text}\n`);
          const ctx = options.weights ? { log: line, weights: options.weights } : { log: line };
          this.predictorState = await logScope.run(log, () => predictor.setup?.call(predictor, ctx));
        }
        this.state = "ready";
        this.setupCompletedAt = new Date();
      })
      .catch((error: unknown) => {
        this.state = "setup_failed";
        this.setupCompletedAt = new Date();
        this.setupLogs += `${error instanceof Error && error.stack ? error.stack : String(error)}\n`;
        throw new SetupFailedError(
          `Setup failed: ${error instanceof Error ? error.message : String(error)}`,
          this.setupLogs,
        );
      });
    this.described.catch(() => {});
    this.ready.catch(() => {});
  }

  get concurrency(): number {
    return this.description?.concurrency ?? 1;
  }

  get activeRuns(): number {
    return this.running;
  }

  get hasFreeSlot(): boolean {
    return this.state === "ready" && this.running < this.concurrency;
  }

  async run(request: RunRequest, callbacks: RunCallbacks): Promise<RunResult> {
    const predictor = this.predictor;
    if (this.state !== "ready" || !predictor)
      return { status: "failed", error: `runner is not ready (${this.state})` };
    if (request.signal.aborted) return { status: "canceled" };
    this.running++;
    try {
      const job = {
        id: request.id,
        kind: request.kind,
        input: request.input,
        scratchDir: request.scratchDir,
        weights: this.options.weights,
      };
      callbacks.onStart();
      const result = await execute(predictor, this.predictorState, job, request.signal, {
        log: (text) => callbacks.onLog(text),
        output: (index, value) => callbacks.onOutput(index, value),
      });
      const metrics = result.metrics ? { metrics: result.metrics } : {};
      if (result.status === "succeeded") return { status: "succeeded", output: result.output, ...metrics };
      if (result.status === "failed")
        return { status: "failed", error: result.error ?? "failed", ...metrics };
      return { status: "canceled" };
    } finally {
      this.running--;
    }
  }

  kill(reason = "runner was shut down"): Promise<string> {
    this.state = "exited";
    this.markExited(reason);
    return this.exited;
  }
}
