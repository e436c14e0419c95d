/** One runner child process seen from the parent: boot, setup, concurrent runs, cancel, crash handling. */
import { type ChildProcess, fork, spawn } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, realpathSync } from "node:fs";
import { sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { ChildMessage, DoneMessage, HostMessage, PredictorDescription } from "./runner-protocol.js";
import {
  type FileValue,
  isFileValue,
  type RunCallbacks,
  type RunRequest,
  type RunResult,
} from "./runner-types.js";

export interface RunnerHostOptions {
  /** Absolute path of a compiled module whose default export is a predictor. */
  predictorPath: string;
  /** How long a canceled (or timed-out) run may take to stop before the process is killed. Default 5000. */
  cancelGraceMs?: number;
  /** Per-run limit; the run fails and, if it ignores the abort, its process is killed. Default none. */
  predictionTimeoutMs?: number;
  /** Limit on setup (import + setup()). Default none. */
  setupTimeoutMs?: number;
  /** V8 heap limit of the child (`--max-old-space-size`). Default Node's. */
  maxOldSpaceSizeMb?: number;
  /** A trained version's weights, passed to setup/predict as `ctx.weights`. */
  weights?: string;
  /** Added to the inherited environment; with `launch`, the launch's environment is used instead. */
  env?: Record<string, string>;
  execArgv?: string[];
  /** How to start each process (a sandbox, another user, limits); called once per process. */
  launch?: () => RunnerLaunch;
}

/**
 * A contained start: the child is `[...prefix, node, ...execArgv, runner-child.js, predictor]` with exactly
 * `env` (nothing inherited), as `uid`/`gid` when given. The prefix must exec the command it is given and
 * keep file descriptor 3 (the IPC channel) open.
 */
export interface RunnerLaunch {
  prefix: string[];
  env: Record<string, string>;
  uid?: number;
  gid?: number;
  cwd?: string;
  /**
   * Output files must be under the run's scratch directory or one of these (after resolving links):
   * the parent reads them with its own rights, which the child must not borrow.
   */
  fileRoots?: string[];
  /** Each run's scratch directory is created for this user before the run (it cannot create it itself). */
  scratchOwner?: { uid: number; gid: number };
  /** Named when the process is killed by a signal nobody sent (the kernel's OOM killer). */
  memoryLimitMb?: number;
  /** Called once the process has exited (remove its home, its cgroup…). */
  release?: () => void | Promise<void>;
}

export type RunnerState = "starting" | "ready" | "setup_failed" | "exited";

export class SetupFailedError extends Error {
  constructor(
    message: string,
    readonly logs: string,
  ) {
    super(message);
    this.name = "SetupFailedError";
  }
}

interface InFlight {
  request: RunRequest;
  callbacks: RunCallbacks;
  resolve: (result: RunResult) => void;
  items: unknown[];
  /** Why this run must end no matter what the child says (timeout or cancel). */
  outcome?: RunResult;
  timers: NodeJS.Timeout[];
  onAbort: () => void;
}

const childPath = fileURLToPath(new URL("./runner-child.js", import.meta.url));
const STDERR_TAIL = 4096;

export class RunnerHost {
  state: RunnerState = "starting";
  description: PredictorDescription | undefined;
  setupLogs = "";
  readonly setupStartedAt = new Date();
  setupCompletedAt: Date | undefined;
  /** Resolves after setup, rejects with SetupFailedError. */
  readonly ready: Promise<void>;
  /** Resolves once the predictor module is loaded (before setup), rejects if it never is. */
  readonly described: Promise<PredictorDescription>;
  /** Resolves when the process has exited, with the reason. */
  readonly exited: Promise<string>;
  /** Called with each chunk of setup output as it happens. */
  onSetupLog: ((text: string) => void) | undefined;
  /** Called when a run ends (the slot is free again). */
  onIdleSlot: (() => void) | undefined;

  private readonly child: ChildProcess;
  private readonly inFlight = new Map<string, InFlight>();
  private readonly options: RunnerHostOptions;
  private readonly launch: RunnerLaunch | undefined;
  private stderrTail = "";
  private killReason: string | undefined;
  private closing = false;
  private settleReady!: (error?: SetupFailedError) => void;
  private settleDescribed!: (description: PredictorDescription | Error) => void;

  constructor(options: RunnerHostOptions) {
    this.options = options;
    const execArgv = [...(options.execArgv ?? [])];
    if (options.maxOldSpaceSizeMb) execArgv.push(`--max-old-space-size=${options.maxOldSpaceSizeMb}`);
    const launch = options.launch?.();
    this.launch = launch;
    const env: Record<string, string | undefined> = launch
      ? { ...launch.env }
      : { ...process.env, ...options.env };
    if (options.weights) env.REPLICANT_WEIGHTS = options.weights;
    this.ready = new Promise<void>((resolve, reject) => {
      this.settleReady = (error) => (error ? reject(error) : resolve());
    });
    this.ready.catch(() => {});
    this.described = new Promise<PredictorDescription>((resolve, reject) => {
      this.settleDescribed = (value) => (value instanceof Error ? reject(value) : resolve(value));
    });
    this.described.catch(() => {});
    this.ready.catch((error: Error) => this.settleDescribed(error));
    this.child = launch
      ? spawn(
          launch.prefix[0] ?? process.execPath,
          [
            ...launch.prefix.slice(1),
            ...(launch.prefix.length > 0 ? [process.execPath] : []),
            ...execArgv,
            childPath,
            options.predictorPath,
          ],
          {
            env,
            serialization: "json",
            stdio: ["ignore", "pipe", "pipe", "ipc"],
            ...(launch.uid !== undefined ? { uid: launch.uid } : {}),
            ...(launch.gid !== undefined ? { gid: launch.gid } : {}),
            ...(launch.cwd !== undefined ? { cwd: launch.cwd } : {}),
          },
        )
      : fork(childPath, [options.predictorPath], {
          execArgv,
          env,
          serialization: "json",
          stdio: ["ignore", "pipe", "pipe", "ipc"],
        });
    this.child.stdout?.setEncoding("utf8").on("data", (text: string) => this.stray(text));
    this.child.stderr?.setEncoding("utf8").on("data", (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL);
      this.stray(text);
    });
    this.child.on("message", (message: ChildMessage) => this.receive(message));
    this.child.on("error", () => {});
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => resolve(this.handleExit(code, signal)));
    });
    if (launch?.release) {
      const release = launch.release;
      void this.exited.then(release).catch(() => undefined);
    }
    if (options.setupTimeoutMs) {
      const timer = setTimeout(() => {
        if (this.state === "starting") this.kill(`setup did not finish within ${options.setupTimeoutMs} ms`);
      }, options.setupTimeoutMs);
      timer.unref();
      this.ready.then(
        () => clearTimeout(timer),
        () => clearTimeout(timer),
      );
    }
  }

  get concurrency(): number {
    return this.description?.concurrency ?? 1;
  }

  get activeRuns(): number {
    return this.inFlight.size;
  }

  get hasFreeSlot(): boolean {
    return this.state === "ready" && !this.closing && this.inFlight.size < this.concurrency;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Starts a run on this process. The caller keeps within `concurrency`. Never rejects. */
  run(request: RunRequest, callbacks: RunCallbacks): Promise<RunResult> {
    if (this.state !== "ready") {
      return Promise.resolve({ status: "failed", error: `runner is not ready (${this.state})` });
    }
    if (request.signal.aborted) return Promise.resolve({ status: "canceled" });
    return new Promise<RunResult>((resolve) => {
      const entry: InFlight = { request, callbacks, resolve, items: [], timers: [], onAbort: () => {} };
      entry.onAbort = () => this.stop(entry, { status: "canceled" });
      request.signal.addEventListener("abort", entry.onAbort, { once: true });
      const timeout = this.options.predictionTimeoutMs;
      if (timeout) {
        const seconds = timeout / 1000;
        entry.timers.push(
          setTimeout(
            () => this.stop(entry, { status: "failed", error: `Prediction timed out after ${seconds}s` }),
            timeout,
          ),
        );
      }
      this.inFlight.set(request.id, entry);
      const owner = this.launch?.scratchOwner;
      if (owner && request.scratchDir) {
        mkdirSync(request.scratchDir, { recursive: true, mode: 0o700 });
        chownSync(request.scratchDir, owner.uid, owner.gid);
        chmodSync(request.scratchDir, 0o700);
      }
      this.send({
        type: "run",
        id: request.id,
        kind: request.kind,
        input: request.input,
        scratchDir: request.scratchDir,
      });
      callbacks.onStart();
    });
  }

  /** Kills the process (SIGKILL); in-flight runs fail with `reason`. */
  kill(reason = "runner was shut down"): Promise<string> {
    this.killReason ??= reason;
    this.closing = true;
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    return this.exited;
  }

  /** Asks the child to stop a run; kills the process if it does not within the grace period. */
  private stop(entry: InFlight, outcome: RunResult) {
    if (entry.outcome) return;
    entry.outcome = outcome;
    this.send({ type: "cancel", id: entry.request.id });
    const grace = this.options.cancelGraceMs ?? 5000;
    const timer = setTimeout(() => {
      const why = outcome.status === "canceled" ? "being canceled" : "timing out";
      this.kill(`prediction ${entry.request.id} did not stop within ${grace / 1000}s of ${why}`);
    }, grace);
    timer.unref();
    entry.timers.push(timer);
  }

  private send(message: HostMessage) {
    if (this.child.connected) this.child.send(message);
  }

  private finish(id: string, result: RunResult) {
    const entry = this.inFlight.get(id);
    if (!entry) return;
    this.inFlight.delete(id);
    for (const timer of entry.timers) clearTimeout(timer);
    entry.request.signal.removeEventListener("abort", entry.onAbort);
    entry.resolve(entry.outcome ?? result);
    this.onIdleSlot?.();
  }

  private receive(message: ChildMessage) {
    switch (message.type) {
      case "batch":
        this.receiveBatch(message.messages);
        return;
      case "log":
        this.inFlight.get(message.id)?.callbacks.onLog(message.text);
        return;
      case "output": {
        const entry = this.inFlight.get(message.id);
        if (!entry || this.refusesFiles(entry, message.value)) return;
        entry.items.push(message.value);
        entry.callbacks.onOutput(message.index, message.value);
        return;
      }
      case "done": {
        const entry = this.inFlight.get(message.id);
        if (entry && message.status === "succeeded" && this.refusesFiles(entry, message.output)) {
          this.finish(message.id, entry.outcome ?? { status: "failed", error: "output refused" });
          return;
        }
        this.finish(message.id, this.toResult(message));
        return;
      }
      case "fatal":
        this.killReason ??= `runner process crashed: ${message.error}`;
        this.stray(`${message.stack}\n`);
        return;
      case "loaded":
        this.description = message.description;
        this.settleDescribed(message.description);
        return;
      case "setup_log":
        this.setupLogs += message.text;
        this.onSetupLog?.(message.text);
        return;
      case "ready":
        this.state = "ready";
        this.setupCompletedAt = new Date();
        this.settleReady();
        return;
      case "setup_failed":
        this.state = "setup_failed";
        this.setupCompletedAt = new Date();
        this.setupLogs = message.logs;
        this.settleReady(new SetupFailedError(`Setup failed: ${message.error}`, message.logs));
        this.kill("setup failed");
        return;
    }
  }

  /** A batch's messages in order; consecutive outputs of one run go to `onOutputs` in one call. */
  private receiveBatch(messages: ChildMessage[]) {
    for (let i = 0; i < messages.length; i++) {
      const first = messages[i] as ChildMessage;
      const entry = first.type === "output" ? this.inFlight.get(first.id) : undefined;
      if (first.type !== "output" || !entry?.callbacks.onOutputs) {
        this.receive(first);
        continue;
      }
      const values = [first.value];
      let next = messages[i + 1];
      while (next?.type === "output" && next.id === first.id && next.index === first.index + values.length) {
        values.push(next.value);
        next = messages[++i + 1];
      }
      if (this.refusesFiles(entry, values)) continue;
      for (const value of values) entry.items.push(value);
      if (values.length === 1) entry.callbacks.onOutput(first.index, first.value);
      else entry.callbacks.onOutputs(first.index, values);
    }
  }

  private toResult(message: DoneMessage): RunResult {
    const entry = this.inFlight.get(message.id);
    const metrics = message.metrics ? { metrics: message.metrics } : {};
    if (message.status === "succeeded") {
      return {
        status: "succeeded",
        output: message.outputIsItems ? entry?.items : message.output,
        ...metrics,
      };
    }
    if (message.status === "failed")
      return { status: "failed", error: message.error ?? "failed", ...metrics };
    return { status: "canceled" };
  }

  /**
   * For a contained child: whether `value` names a file outside the run's scratch directory and the
   * launch's roots (then the run is stopped as failed). Links are resolved first.
   */
  private refusesFiles(entry: InFlight, value: unknown): boolean {
    const roots = this.launch?.fileRoots;
    if (!roots) return false;
    const files = fileValues(value);
    if (files.length === 0) return false;
    const allowed = [...roots, ...(entry.request.scratchDir ? [entry.request.scratchDir] : [])];
    const prefixes = allowed.map((root) => realOrSelf(root) + sep);
    const outside = files.find((file) => {
      const real = realOrSelf(file.path);
      return !prefixes.some((root) => real.startsWith(root));
    });
    if (outside === undefined) {
      // The check above is only a first answer: the server reads each file beneath these directories.
      for (const file of files)
        Object.defineProperty(file, "confinedTo", { value: allowed, enumerable: false });
      return false;
    }
    this.stop(entry, {
      status: "failed",
      error: `The output file ${outside.path} is outside the run's scratch directory: write output files under ctx.scratchDir`,
    });
    return true;
  }

  /** Output the child wrote outside any log scope (native code, crashes): credit it to the only run, if one. */
  private stray(text: string) {
    if (this.state === "starting") {
      this.setupLogs += text;
      this.onSetupLog?.(text);
      return;
    }
    if (this.inFlight.size === 1) {
      for (const entry of this.inFlight.values()) entry.callbacks.onLog(text);
    }
  }

  private handleExit(code: number | null, signal: NodeJS.Signals | null): string {
    const wasStarting = this.state === "starting";
    this.state = "exited";
    let reason: string;
    if (/heap out of memory|Reached heap limit/i.test(this.stderrTail)) {
      const limit = this.options.maxOldSpaceSizeMb
        ? ` (heap limit ${this.options.maxOldSpaceSizeMb} MB)`
        : "";
      reason = `runner process ran out of memory${limit}`;
    } else if (this.killReason) {
      reason = this.killReason;
    } else if ((signal === "SIGKILL" || code === 137) && this.launch?.memoryLimitMb !== undefined) {
      // A sandbox's wrapper (bwrap) reports its child's SIGKILL as exit code 128 + 9.
      reason = `runner process was killed (SIGKILL), most likely for going over its memory limit of ${this.launch.memoryLimitMb} MB`;
    } else {
      const how = signal ? `signal ${signal}` : `code ${code}`;
      const tail = this.stderrTail.trim().split("\n").slice(-5).join("\n");
      reason = `runner process exited unexpectedly (${how})${tail ? `:\n${tail}` : ""}`;
    }
    if (wasStarting) {
      this.setupCompletedAt = new Date();
      this.settleReady(new SetupFailedError(`Setup failed: ${reason}`, this.setupLogs));
    }
    for (const [id, entry] of [...this.inFlight]) {
      // A run whose cancel/timeout forced the kill ends as decided; the others lose their process.
      this.finish(id, entry.outcome ?? { status: "failed", error: reason });
    }
    return reason;
  }
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** The file values anywhere in an output. */
function fileValues(value: unknown, found: FileValue[] = []): FileValue[] {
  if (value === null || typeof value !== "object") return found;
  if (isFileValue(value)) {
    found.push(value);
    return found;
  }
  for (const item of Array.isArray(value) ? value : Object.values(value)) fileValues(item, found);
  return found;
}
