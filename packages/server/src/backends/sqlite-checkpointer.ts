import { Worker } from "node:worker_threads";
import type BetterSqlite3 from "better-sqlite3";

/**
 * Moves a WAL database's checkpoints off the event loop: a worker thread looks every `intervalMs` and
 * checkpoints once the WAL holds as many frames not yet copied as the connection's own automatic
 * checkpoint waited for, and that one (in the COMMIT that crosses the threshold, fsyncs included: the
 * p99 of a small write) is turned off. Durability is unchanged: commits are in the WAL either way, and a
 * checkpoint fsyncs in whichever thread runs it.
 */
export class SqliteCheckpointer {
  private constructor(
    private readonly worker: Worker,
    private readonly db: BetterSqlite3.Database,
    private readonly autocheckpoint: number,
  ) {}

  /** Starts the thread; on any failure the connection keeps checkpointing itself. */
  static async start(
    db: BetterSqlite3.Database,
    path: string,
    intervalMs = 100,
    thresholdFrames?: number,
  ): Promise<SqliteCheckpointer | undefined> {
    const autocheckpoint = Number(db.pragma("wal_autocheckpoint", { simple: true }));
    const threshold = thresholdFrames ?? (autocheckpoint > 0 ? autocheckpoint : 1000);
    let worker: Worker;
    try {
      worker = new Worker(new URL("./sqlite-checkpoint-worker.js", import.meta.url), {
        workerData: { path, intervalMs, thresholdFrames: threshold },
      });
    } catch {
      return undefined;
    }
    const ready = await new Promise<boolean>((resolve) => {
      worker.once("message", (message: { ready?: boolean }) => resolve(message.ready === true));
      worker.once("error", () => resolve(false));
      worker.once("exit", () => resolve(false));
    });
    if (!ready) {
      await worker.terminate();
      return undefined;
    }
    worker.on("message", (message: { error?: string }) => {
      if (message.error) console.error(`sqlite checkpoint: ${message.error}`);
    });
    worker.on("error", (error) => {
      console.error("sqlite checkpoint thread failed; the connection checkpoints itself again:", error);
      if (db.open) db.pragma(`wal_autocheckpoint = ${autocheckpoint}`);
    });
    worker.unref();
    db.pragma("wal_autocheckpoint = 0");
    return new SqliteCheckpointer(worker, db, autocheckpoint);
  }

  /** A last checkpoint, then the thread ends; call before closing the connection. */
  async stop(): Promise<void> {
    const stopped = new Promise<void>((resolve) => {
      this.worker.on("message", (message: { stopped?: boolean }) => {
        if (message.stopped) resolve();
      });
      this.worker.once("exit", () => resolve());
    });
    this.worker.ref(); // held until it answers, or the process could exit while we wait
    this.worker.postMessage({ stop: true });
    await stopped;
    await this.worker.terminate();
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${this.autocheckpoint}`);
  }
}
