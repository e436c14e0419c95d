/**
 * A pool of runner processes for one predictor: keeps `minInstances` warm, grows to `maxInstances` as
 * the queue grows, shrinks after `idleTimeoutMs`, replaces dead processes and retries failed setups with backoff.
 */
import { RunnerHost, type RunnerHostOptions, type SetupFailedError } from "./runner-host.js";
import type { PredictorDescription } from "./runner-protocol.js";
import type { ModelRunner, RunCallbacks, RunRequest, RunResult } from "./runner-types.js";

export interface RunnerPoolOptions extends RunnerHostOptions {
  /** Processes kept running even when idle. Default 0 (scale to zero). */
  minInstances?: number;
  /** Upper bound on processes. Default 1. */
  maxInstances?: number;
  /** An idle process above `minInstances` is stopped after this long. Default 60000. */
  idleTimeoutMs?: number;
  /** First delay before retrying a failed setup; doubles per consecutive failure. Default 1000. */
  setupRetryBaseMs?: number;
  /** Cap on that delay. Default 60000. */
  setupRetryMaxMs?: number;
}

interface Queued {
  request: RunRequest;
  callbacks: RunCallbacks;
  resolve: (result: RunResult) => void;
  onAbort: () => void;
}

export interface RunnerPoolStats {
  instances: number;
  booting: number;
  ready: number;
  running: number;
  queued: number;
}

export class RunnerPool implements ModelRunner {
  private readonly hosts = new Set<RunnerHost>();
  private readonly idleTimers = new Map<RunnerHost, NodeJS.Timeout>();
  private readonly queue: Queued[] = [];
  private readonly options: RunnerPoolOptions;
  private readonly min: number;
  private readonly max: number;
  private setupFailures = 0;
  private nextSetupAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private knownConcurrency = 1;
  private closed = false;
  private descriptionWaiters: ((description: PredictorDescription) => void)[] = [];
  description: PredictorDescription | undefined;
  /** Setup output of the most recent failed setup (kept for diagnostics). */
  lastSetupFailure: SetupFailedError | undefined;

  constructor(options: RunnerPoolOptions) {
    this.options = options;
    this.min = options.minInstances ?? 0;
    this.max = Math.max(1, options.maxInstances ?? 1, this.min);
    this.ensureMinimum();
  }

  stats(): RunnerPoolStats {
    let booting = 0;
    let ready = 0;
    let running = 0;
    for (const host of this.hosts) {
      if (host.state === "starting") booting++;
      if (host.state === "ready") ready++;
      running += host.activeRuns;
    }
    return { instances: this.hosts.size, booting, ready, running, queued: this.queue.length };
  }

  /** Queues a run; it starts (callbacks.onStart) once a process with a free slot is ready. Never rejects. */
  run(request: RunRequest, callbacks: RunCallbacks): Promise<RunResult> {
    if (this.closed) return Promise.resolve({ status: "failed", error: "runner pool is closed" });
    if (request.signal.aborted) return Promise.resolve({ status: "canceled" });
    const host = this.freeHost();
    if (host && this.queue.length === 0) return this.dispatch(host, request, callbacks);
    return new Promise((resolve) => {
      const item: Queued = { request, callbacks, resolve, onAbort: () => {} };
      item.onAbort = () => {
        const index = this.queue.indexOf(item);
        if (index < 0) return;
        this.queue.splice(index, 1);
        resolve({ status: "canceled" });
      };
      request.signal.addEventListener("abort", item.onAbort, { once: true });
      this.queue.push(item);
      this.schedule();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const timer of this.idleTimers.values()) clearTimeout(timer);
    for (const item of this.queue.splice(0)) {
      item.request.signal.removeEventListener("abort", item.onAbort);
      item.resolve({ status: "failed", error: "runner pool is closed" });
    }
    await Promise.all([...this.hosts].map((host) => host.kill("runner pool closed")));
  }

  /** The predictor's declarations, once any process has loaded it (boots one if none is running). */
  describe(): Promise<PredictorDescription> {
    if (this.description) return Promise.resolve(this.description);
    if (this.hosts.size === 0) this.spawn();
    return new Promise((resolve) => this.descriptionWaiters.push(resolve));
  }

  private freeHost(): RunnerHost | undefined {
    let best: RunnerHost | undefined;
    for (const host of this.hosts) {
      if (host.hasFreeSlot && (!best || host.activeRuns < best.activeRuns)) best = host;
    }
    return best;
  }

  private dispatch(host: RunnerHost, request: RunRequest, callbacks: RunCallbacks): Promise<RunResult> {
    const timer = this.idleTimers.get(host);
    if (timer) {
      clearTimeout(timer);
      this.idleTimers.delete(host);
    }
    return host.run(request, callbacks);
  }

  private schedule() {
    if (this.closed) return;
    while (this.queue.length > 0) {
      const host = this.freeHost();
      if (!host) break;
      const item = this.queue.shift()!;
      item.request.signal.removeEventListener("abort", item.onAbort);
      this.dispatch(host, item.request, item.callbacks).then(item.resolve);
    }
    this.scaleUp();
  }

  private scaleUp() {
    let booting = 0;
    for (const host of this.hosts) if (host.state === "starting") booting++;
    const waiting = this.queue.length;
    while (waiting > booting * this.knownConcurrency && this.hosts.size < this.max) {
      if (!this.spawn()) break;
      booting++;
    }
  }

  private ensureMinimum() {
    while (!this.closed && this.hosts.size < this.min) if (!this.spawn()) break;
  }

  /** Starts a process unless a failed setup's backoff is still running (then retries when it ends). */
  private spawn(): boolean {
    if (this.closed) return false;
    const wait = this.nextSetupAt - Date.now();
    if (wait > 0) {
      this.retryTimer ??= setTimeout(() => {
        this.retryTimer = undefined;
        this.ensureMinimum();
        this.schedule();
      }, wait);
      return false;
    }
    const host = new RunnerHost(this.options);
    this.hosts.add(host);
    host.onIdleSlot = () => this.slotFreed(host);
    host.ready.then(
      () => {
        this.setupFailures = 0;
        this.describeFrom(host);
        this.schedule();
        if (host.activeRuns === 0) this.armIdleTimer(host);
      },
      (error: SetupFailedError) => this.setupFailed(error),
    );
    host.exited.then(() => {
      this.hosts.delete(host);
      clearTimeout(this.idleTimers.get(host));
      this.idleTimers.delete(host);
      this.ensureMinimum();
      this.schedule();
    });
    return true;
  }

  private describeFrom(host: RunnerHost) {
    if (!host.description) return;
    this.description = host.description;
    this.knownConcurrency = host.description.concurrency;
    for (const resolve of this.descriptionWaiters.splice(0)) resolve(host.description);
  }

  private setupFailed(error: SetupFailedError) {
    this.lastSetupFailure = error;
    this.setupFailures++;
    const base = this.options.setupRetryBaseMs ?? 1000;
    const delay = Math.min(base * 2 ** (this.setupFailures - 1), this.options.setupRetryMaxMs ?? 60_000);
    this.nextSetupAt = Date.now() + delay;
    // The runs waiting for this setup fail with its logs; later runs trigger a retry after the backoff.
    const booting = [...this.hosts].some((host) => host.state === "starting" || host.state === "ready");
    if (booting) return;
    for (const item of this.queue.splice(0)) {
      item.request.signal.removeEventListener("abort", item.onAbort);
      if (error.logs) item.callbacks.onLog(error.logs);
      item.resolve({ status: "failed", error: error.message });
    }
  }

  private slotFreed(host: RunnerHost) {
    this.schedule();
    if (host.activeRuns === 0 && host.state === "ready") this.armIdleTimer(host);
  }

  private armIdleTimer(host: RunnerHost) {
    clearTimeout(this.idleTimers.get(host));
    const timer = setTimeout(() => {
      this.idleTimers.delete(host);
      if (host.activeRuns > 0 || this.hosts.size <= this.min) return;
      host.kill("idle");
    }, this.options.idleTimeoutMs ?? 60_000);
    timer.unref();
    this.idleTimers.set(host, timer);
  }
}
