import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, rmdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isTerminal, type PredictionStatus } from "@replicant/protocol";
import type {
  FileRecord,
  LeasedJob,
  OutboxInsert,
  PredictionPatch,
  PredictionRecord,
  VersionRecord,
} from "./backends/types.js";
import {
  DEADLINES_QUEUE,
  PREDICTIONS_QUEUE,
  predictionChannel,
  predictionOfDeadlineJob,
  type ServerContext,
} from "./context.js";
import type { FileOutputs } from "./file-outputs.js";
import {
  type FileValue,
  hasFiles,
  type ModelRunner,
  type RunCallbacks,
  type RunResult,
} from "./runners/types.js";
import { outboxFor, wantsEvent } from "./webhook-events.js";

/** Resolves file inputs (data URIs, this server's file URLs, http(s) URLs) to local paths. */
export type MaterializeInputs = (
  record: PredictionRecord,
  version: VersionRecord,
  scratchDir: string,
) => Promise<Record<string, unknown>>;

/** Finds the runner of a version (bound to its trained weights, if any). */
export interface RunnerResolver {
  resolve(version: VersionRecord, record: PredictionRecord): Promise<ModelRunner>;
}

export interface DirectorHooks {
  /** Called after a webhook outbox row was written, so the dispatcher delivers it without waiting. */
  onOutbox?: () => void;
  /** A training succeeded: create the destination's new version; returns the training's output. */
  finishTraining?: (record: PredictionRecord, output: unknown, scratchDir?: string) => Promise<unknown>;
  /** Where runs' scratch directories go (shared with the runners' sandboxes); default a private temp dir. */
  scratchRoot?: () => Promise<string>;
}

/**
 * Usually the directory was never created: one stat settles that (a failed rmdir would cost an error
 * object with its stack). When it exists it is usually empty: a plain rmdir settles it, where a
 * recursive rm always pays for a synchronous lstat and a directory walk first. Both are synchronous
 * (runtime/sync-io.ts); a directory left with files in it is removed on the thread pool.
 */
async function removeScratch(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  try {
    rmdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

const LEASE_MS = 60_000;
const FLUSH_INTERVAL_MS = 100;
/**
 * How long a run's start (status processing, started_at, attempt) may wait to be written with the run's
 * next write: a prediction that ends within it is written once, where it took two commits.
 */
const START_WRITE_DELAY_MS = 5;
const WEBHOOK_THROTTLE_MS = 500;

interface RunState {
  record: PredictionRecord;
  attempt: number;
  controller: AbortController;
  timedOut: boolean;
  output: unknown[];
  logs: string;
  startedAt: string | null;
  dirty: boolean;
  flushing: Promise<void>;
  lastWebhookAt: number;
  pendingWebhook: { output: boolean; logs: boolean };
  /** This run's own directory: output files in it may be moved into the blob store, not copied. */
  scratchDir?: string;
  /** Streamed file items stored so far (by the runner's FileValue object), and the chain that orders them. */
  streamedFiles: WeakMap<FileValue, Promise<string>>;
  outputs: Promise<void>;
  outputsQueued: number;
  /** The run's start, not written yet (see START_WRITE_DELAY_MS). */
  pendingStart?: PendingStart | undefined;
  /** A replay for readers that joined late is due this turn. */
  replayScheduled?: boolean;
}

interface PendingStart {
  patch: PredictionPatch;
  /** The attempt the row holds until the start is written: the fence of that write. */
  previousAttempt: number;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Leases prediction jobs from the queue and runs them. The prediction row is the truth: every state
 * change is a fenced compare-and-set, so a canceled prediction or a stale attempt changes nothing.
 */
export class Director {
  private readonly running = new Map<string, RunState>();
  /** Jobs leased and not yet finished (a superset of `running`). */
  private leased = 0;
  private readonly workerId = randomUUID();
  private pumping = false;
  private pumpAgain = false;
  /** Whether a deadline job may be due: leasing an empty deadlines queue is a write transaction per pump. */
  private deadlinesMaybeDue = true;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribeQueue: (() => void) | undefined;
  private stopTakingOnEnqueue: (() => void) | undefined;
  /** A private (0700, random name) directory holding the runs' scratch directories. */
  private scratchRoot: Promise<string> | undefined;
  private scratchSeq = 0;
  /** Per version id: whether its inputs or outputs can be files (so a run needs its scratch directory). */
  private readonly usesFiles = new Map<string, boolean>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly runners: RunnerResolver,
    private readonly materialize: MaterializeInputs,
    private readonly fileOutputs: FileOutputs,
    private readonly hooks: DirectorHooks = {},
  ) {}

  /** Brings every unfinished prediction to a path to a terminal state, then starts leasing. */
  async start(recover: boolean): Promise<void> {
    if (recover) await this.recover();
    this.unsubscribeQueue = this.ctx.queue.onAvailable((queue) => {
      if (queue === DEADLINES_QUEUE) this.deadlinesMaybeDue = true;
      this.pump();
    });
    // Embedded: a prediction is leased in its insert's transaction when a slot is free (one commit and
    // two turns of the event loop fewer before it runs).
    this.stopTakingOnEnqueue = this.ctx.queue.leaseOnEnqueue?.(PREDICTIONS_QUEUE, {
      workerId: this.workerId,
      leaseMs: LEASE_MS,
      capacity: () => (this.closed ? 0 : this.ctx.config.workerConcurrency - this.leased),
      take: (jobs) => this.startJobs(jobs),
    });
    this.timer = setInterval(() => {
      // Announcements are best effort (scale-out): look at the deadlines at least once a second.
      this.deadlinesMaybeDue = true;
      void this.ctx.queue.recoverExpired().then(
        () => this.pump(),
        () => undefined,
      );
    }, 1000);
    this.timer.unref();
    this.pump();
  }

  async stop(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.unsubscribeQueue?.();
    this.stopTakingOnEnqueue?.();
    for (const state of this.running.values()) state.controller.abort();
    const deadline = Date.now() + 5000;
    while (this.leased > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (this.scratchRoot && this.leased === 0) {
      const root = await this.scratchRoot.catch(() => undefined);
      if (root) await rm(root, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  get activeCount(): number {
    return this.running.size;
  }

  /**
   * After a crash: a prediction that was running fails (running it again could repeat its side
   * effects); one that never started is queued again.
   */
  private async recover(): Promise<void> {
    const { store, queue } = this.ctx;
    for (const record of await store.listUnfinishedPredictions()) {
      if (record.status === "processing") {
        await this.finish(record, record.attempt, {
          status: "failed",
          error:
            "The server stopped while this prediction was running, so it was not completed. Create it again to retry.",
        });
        await queue.remove(record.id);
      } else {
        // Its old lease belonged to the dead process: put it back as a fresh job.
        await queue.remove(record.id);
        await queue.enqueue({ id: record.id, queue: PREDICTIONS_QUEUE });
      }
    }
  }

  pump(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    // On the next turn of the event loop: the enqueues and completions of one turn then share one
    // lease, and each lease is a write transaction of its own.
    setImmediate(() => {
      if (this.closed) {
        this.pumping = false;
        return;
      }
      void this.pumpLoop().finally(() => {
        this.pumping = false;
      });
    });
  }

  private async pumpLoop(): Promise<void> {
    try {
      do {
        this.pumpAgain = false;
        let deadlines: LeasedJob[] = [];
        if (this.deadlinesMaybeDue) {
          this.deadlinesMaybeDue = false;
          deadlines = await this.ctx.queue.lease(DEADLINES_QUEUE, this.workerId, LEASE_MS, 100);
          if (deadlines.length === 100) this.deadlinesMaybeDue = true;
        }
        for (const job of deadlines) await this.applyDeadline(job);
        const free = this.ctx.config.workerConcurrency - this.leased;
        if (free <= 0) break;
        // Held while the lease is written: a lease taken on enqueue in the same transaction must not
        // count these slots again.
        this.leased += free;
        let jobs: LeasedJob[];
        try {
          jobs = await this.ctx.queue.lease(PREDICTIONS_QUEUE, this.workerId, LEASE_MS, free);
        } finally {
          this.leased -= free;
        }
        this.startJobs(jobs);
        if (jobs.length === free || deadlines.length === 100) this.pumpAgain = true;
      } while (this.pumpAgain && !this.closed);
    } catch (error) {
      if (!this.closed) console.error("director: lease failed:", error);
    }
  }

  private startJobs(jobs: LeasedJob[]): void {
    // Counted now, not when execute() reaches `running` after its first await, so the next lease does
    // not go past the concurrency limit.
    this.leased += jobs.length;
    for (const job of jobs) {
      void this.execute(job).finally(() => {
        this.leased--;
        this.pump();
      });
    }
  }

  private async applyDeadline(job: LeasedJob): Promise<void> {
    const id = predictionOfDeadlineJob(job.id);
    const record = await this.ctx.store.getPrediction(id);
    if (record && !isTerminal(record.status)) {
      if (record.status === "starting") {
        await this.finish(record, record.attempt, { status: "aborted" as const });
        await this.ctx.queue.remove(id);
      } else {
        await this.finish(record, record.attempt, { status: "canceled" });
      }
    }
    await this.ctx.queue.complete(job.id, job.token);
  }

  private async execute(job: LeasedJob): Promise<void> {
    const { store, queue } = this.ctx;
    const record = await store.getPrediction(job.id);
    if (!record || isTerminal(record.status)) {
      await queue.complete(job.id, job.token);
      return;
    }
    if (record.deadline !== null && Date.parse(record.deadline) <= this.ctx.now().getTime()) {
      // Its deadline passed while it waited: aborted, as Replicate does, without running it.
      await this.finish(record, record.attempt, { status: "aborted" });
      await queue.complete(job.id, job.token);
      return;
    }
    const state: RunState = {
      record,
      attempt: record.attempt,
      controller: new AbortController(),
      timedOut: false,
      output: [],
      logs: "",
      startedAt: null,
      dirty: false,
      flushing: Promise.resolve(),
      lastWebhookAt: 0,
      pendingWebhook: { output: false, logs: false },
      streamedFiles: new WeakMap(),
      outputs: Promise.resolve(),
      outputsQueued: 0,
    };
    this.running.set(record.id, state);
    let finishing = false;
    const unsubscribe = await this.ctx.bus.subscribe(predictionChannel(record.id), (event) => {
      // Canceled by the API (or a deadline) while running: stop the predictor. Our own done event needs
      // no abort (an abort costs a DOMException with its stack trace).
      if (event.type === "done" && !finishing) state.controller.abort();
      else if (event.type === "replay") this.replay(state);
    });
    const timeout = setTimeout(() => {
      state.timedOut = true;
      state.controller.abort();
    }, this.ctx.config.predictionTimeoutMs);
    const extender = setInterval(() => void queue.extend(job.id, job.token, LEASE_MS), LEASE_MS / 3);
    // Where the queue commits with the store, the job is completed in the final update's transaction.
    let completed: Promise<unknown> | undefined;
    const complete = () => {
      completed ??= queue.complete(job.id, job.token).catch(() => undefined);
    };
    const completeAlongside = queue.commitsWithStore ? complete : undefined;
    let scratchDir: string | undefined;
    let result: RunResult;
    let started: PendingStart | undefined;
    try {
      // Not created here: run() creates it only for versions with file inputs or outputs (a mkdtemp and
      // a recursive rm cost more CPU than the rest of a small prediction's server-side work).
      this.scratchRoot ??= this.hooks.scratchRoot?.() ?? mkdtemp(join(tmpdir(), "replicant-scratch-"));
      scratchDir = join(await this.scratchRoot, `${record.id}-${++this.scratchSeq}`);
      state.scratchDir = scratchDir;
      result = await this.run(state, scratchDir);
    } catch (error) {
      result = { status: "failed", error: error instanceof Error ? error.message : String(error) };
    }
    clearTimeout(timeout);
    clearInterval(extender);
    try {
      if (state.timedOut) {
        result = {
          status: "failed",
          error: `Prediction timed out after ${Math.round(this.ctx.config.predictionTimeoutMs / 1000)} seconds`,
        };
      } else if (state.controller.signal.aborted && result.status !== "succeeded") {
        result = { status: "canceled" };
      }
      await state.outputs;
      // A start not written yet goes into the final update.
      started = takePendingStart(state);
      await state.flushing;
      finishing = true;
      await this.finish(
        state.record,
        started?.previousAttempt ?? state.attempt,
        result,
        state,
        completeAlongside,
        started,
      );
    } catch (error) {
      started ??= takePendingStart(state);
      await this.finish(
        state.record,
        started?.previousAttempt ?? state.attempt,
        {
          status: "failed",
          error: `Could not store the prediction's output: ${error instanceof Error ? error.message : String(error)}`,
        },
        undefined,
        completeAlongside,
        started,
      ).catch(() => undefined);
    } finally {
      unsubscribe();
      this.running.delete(record.id);
      complete();
      await completed;
      if (scratchDir) await removeScratch(scratchDir);
    }
  }

  private async run(state: RunState, scratchDir: string): Promise<RunResult> {
    const record = state.record;
    const version = await this.ctx.versions.get(record.version_id);
    if (!version) return { status: "failed", error: `Version ${record.version_id} no longer exists` };
    const runner = await this.runners.resolve(version, record);
    // A predictor that asks for ctx.scratchDir gets it created by the runtime on first use.
    if (record.kind === "training" || this.versionUsesFiles(version))
      mkdirSync(scratchDir, { recursive: true });
    const input = await this.materialize(record, version, scratchDir);
    const callbacks: RunCallbacks = {
      onStart: () => this.markStarted(state),
      onLog: (text) => {
        const offset = state.logs.length;
        state.logs += text;
        void this.ctx.bus.publish(predictionChannel(record.id), { type: "logs", offset, text });
        state.pendingWebhook.logs = true;
        this.scheduleFlush(state);
      },
      onOutputs: (index, values) => {
        // A batch of plain items (tokens) is one event on the bus; one with a file goes item by item.
        if (state.outputsQueued === 0 && !values.some(hasFiles)) this.recordOutputs(state, index, values);
        else for (const [offset, value] of values.entries()) callbacks.onOutput(index + offset, value);
      },
      onOutput: (index, value) => {
        if (state.outputsQueued === 0 && !hasFiles(value)) {
          this.recordOutput(state, index, value);
          return;
        }
        // A file item is stored as it arrives, so that readers and the stream see its URL, never the
        // runner's path; items after it wait their turn. Copied, not moved: the predictor still runs.
        // A failure shows when the final output is stored (the same promise).
        state.outputsQueued++;
        state.outputs = state.outputs
          .then(() => this.fileOutputs.store(record, value, undefined, state.streamedFiles))
          .then(
            (stored) => this.recordOutput(state, index, stored),
            () => {},
          )
          .finally(() => {
            state.outputsQueued--;
          });
      },
    };
    return runner.run(
      { id: record.id, input, signal: state.controller.signal, scratchDir, kind: record.kind },
      callbacks,
    );
  }

  private recordOutputs(state: RunState, index: number, values: unknown[]): void {
    for (const [offset, value] of values.entries()) state.output[index + offset] = value;
    void this.ctx.bus.publish(predictionChannel(state.record.id), { type: "outputs", index, values });
    state.pendingWebhook.output = true;
    this.scheduleFlush(state);
  }

  private recordOutput(state: RunState, index: number, value: unknown): void {
    state.output[index] = value;
    void this.ctx.bus.publish(predictionChannel(state.record.id), { type: "output", index, value });
    state.pendingWebhook.output = true;
    this.scheduleFlush(state);
  }

  /**
   * What the run has produced so far, for readers that joined late (see the `replay` event): once a turn
   * of the event loop however many joined in it, as every reader of the run receives it.
   */
  private replay(state: RunState): void {
    if (state.replayScheduled) return;
    state.replayScheduled = true;
    setImmediate(() => {
      state.replayScheduled = false;
      const channel = predictionChannel(state.record.id);
      if (state.output.length > 0)
        void this.ctx.bus.publish(channel, { type: "outputs", index: 0, values: [...state.output] });
      if (state.logs !== "")
        void this.ctx.bus.publish(channel, { type: "logs", offset: 0, text: state.logs });
    });
  }

  private versionUsesFiles(version: VersionRecord): boolean {
    let uses = this.usesFiles.get(version.id);
    if (uses === undefined) {
      // Versions are immutable: look once. Anything declared as a URI (a file) in the prediction schemas
      // counts, and so does a version without schemas or one not run by a runtime predictor. A training
      // gets its directory anyway: a trainable model's predictions need none for it.
      const schemas = (version.openapi_schema.components as { schemas?: Record<string, unknown> } | undefined)
        ?.schemas;
      uses =
        !schemas?.Input ||
        /"format":"uri"/.test(JSON.stringify([schemas.Input, schemas.Output])) ||
        version.runner.kind === "cog";
      if (this.usesFiles.size >= 1000) this.usesFiles.clear();
      this.usesFiles.set(version.id, uses);
    }
    return uses;
  }

  private markStarted(state: RunState): void {
    if (state.startedAt !== null) return;
    state.startedAt = this.ctx.now().toISOString();
    const previousAttempt = state.attempt;
    state.attempt = previousAttempt + 1;
    const patch: PredictionPatch = {
      status: "processing",
      started_at: state.startedAt,
      attempt: state.attempt,
    };
    // Written with the run's next write (a flush of its output, or its final update), or alone after
    // START_WRITE_DELAY_MS. A cancel meanwhile still reaches the run: it publishes `done` on the bus.
    const timer = setTimeout(() => {
      state.flushing = state.flushing.then(() => this.writeStart(state)).catch(() => undefined);
    }, START_WRITE_DELAY_MS);
    timer.unref();
    state.pendingStart = { patch, previousAttempt, timer };
  }

  private async writeStart(state: RunState): Promise<void> {
    const start = takePendingStart(state);
    if (!start) return;
    const updated = await this.ctx.store.updatePrediction(
      state.record.id,
      start.patch,
      { statuses: ["starting"], attempt: start.previousAttempt },
      undefined,
      state.record,
    );
    if (!updated) {
      state.controller.abort(); // canceled before it started
      return;
    }
    state.record = updated;
    await this.ctx.bus.publish(predictionChannel(updated.id), { type: "status", status: "processing" });
  }

  private scheduleFlush(state: RunState): void {
    if (state.dirty) return;
    state.dirty = true;
    setTimeout(() => {
      state.flushing = state.flushing.then(() => this.flush(state)).catch(() => undefined);
    }, FLUSH_INTERVAL_MS).unref();
  }

  /** Writes the output and logs so far, with throttled output/logs webhooks in the same transaction. */
  private async flush(state: RunState): Promise<void> {
    if (!state.dirty || (state.record.status !== "processing" && !state.pendingStart)) {
      state.dirty = false;
      return;
    }
    state.dirty = false;
    // A start not written yet goes with this write.
    const start = takePendingStart(state);
    const patch: PredictionPatch = { ...start?.patch, logs: state.logs };
    if (state.output.length > 0) patch.output = [...state.output];
    const merged: PredictionRecord = { ...state.record, ...patch };
    const outbox: OutboxInsert[] = [];
    const now = Date.now();
    if (now - state.lastWebhookAt >= WEBHOOK_THROTTLE_MS) {
      if (state.pendingWebhook.output && wantsEvent(merged, "output"))
        outbox.push(...outboxFor(this.ctx, merged, "output"));
      else if (state.pendingWebhook.logs && wantsEvent(merged, "logs"))
        outbox.push(...outboxFor(this.ctx, merged, "logs"));
      if (outbox.length > 0) {
        state.lastWebhookAt = now;
        state.pendingWebhook = { output: false, logs: false };
      }
    }
    const updated = await this.ctx.store.updatePrediction(
      state.record.id,
      patch,
      start
        ? { statuses: ["starting"], attempt: start.previousAttempt }
        : { statuses: ["processing"], attempt: state.attempt },
      outbox,
      state.record,
    );
    if (updated) state.record = updated;
    else if (start) state.controller.abort(); // canceled before it started
    if (updated && outbox.length > 0) this.hooks.onOutbox?.();
    if (updated && start)
      await this.ctx.bus.publish(predictionChannel(updated.id), { type: "status", status: "processing" });
  }

  /**
   * The single terminal transition of a prediction, fenced so that it happens at most once. `alongside`
   * is called in the turn the update is written, for a write that belongs in its transaction; `started`, a
   * start not written yet, is written with it (`attempt` is then the attempt the row still holds).
   */
  async finish(
    record: PredictionRecord,
    attempt: number,
    result: RunResult | { status: "aborted" },
    state?: RunState,
    alongside?: () => void,
    started?: PendingStart,
  ): Promise<PredictionRecord | undefined> {
    const now = this.ctx.now();
    const completedAt = now.toISOString();
    const status: PredictionStatus = result.status;
    const patch: PredictionPatch = { ...started?.patch, status, completed_at: completedAt };
    if (state) patch.logs = state.logs;
    if (result.status === "failed") patch.error = result.error;
    // Output files' records are inserted with this update, in its transaction.
    const files: FileRecord[] = [];
    if (result.status === "succeeded") {
      // A training's hook stores the weights itself: it needs the file, not its URL.
      patch.output =
        record.kind === "training" && this.hooks.finishTraining
          ? await this.hooks.finishTraining(record, result.output, state?.scratchDir)
          : await this.fileOutputs.store(
              record,
              result.output,
              state?.scratchDir,
              state?.streamedFiles,
              files,
            );
    } else if (state && state.output.length > 0) {
      patch.output = await this.fileOutputs.store(
        record,
        [...state.output],
        state.scratchDir,
        undefined,
        files,
      );
    }
    const startedAt = state?.startedAt ?? started?.patch.started_at ?? record.started_at;
    const metrics: Record<string, unknown> = { ...(record.metrics ?? {}) };
    if ("metrics" in result && result.metrics) Object.assign(metrics, result.metrics);
    if (startedAt) metrics.predict_time = (now.getTime() - Date.parse(startedAt)) / 1000;
    metrics.total_time = (now.getTime() - Date.parse(record.created_at)) / 1000;
    patch.metrics = metrics;
    const merged: PredictionRecord = { ...record, ...patch };
    const outbox = outboxFor(this.ctx, merged, "completed");
    const updating = this.ctx.store.updatePrediction(
      record.id,
      patch,
      { statuses: ["starting", "processing"], attempt },
      outbox,
      record,
      files,
    );
    alongside?.();
    const updated = await updating;
    if (!updated) return undefined;
    if (outbox.length > 0) this.hooks.onOutbox?.();
    await this.ctx.bus.publish(predictionChannel(record.id), {
      type: "done",
      status,
      error: updated.error,
      record: updated,
    });
    return updated;
  }
}

/** Takes a run's start that is not written yet, for the write that is about to carry it. */
function takePendingStart(state: RunState): PendingStart | undefined {
  const start = state.pendingStart;
  if (start) {
    clearTimeout(start.timer);
    state.pendingStart = undefined;
  }
  return start;
}
