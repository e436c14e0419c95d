import type { ServerContext } from "./context.js";

const SWEEP_INTERVAL_MS = 30_000;
const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Retention, as Replicate documents it: a finished prediction's input, output, logs and output files
 * are removed after the retention period (then `data_removed: true`); expired uploads are deleted.
 */
export class Maintenance {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly ctx: ServerContext) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS);
    this.timer.unref();
    void this.sweep();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One pass; safe to call at any time (tests call it after moving the clock). */
  sweep(): Promise<void> {
    this.running ??= this.sweepOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async sweepOnce(): Promise<void> {
    const { store, blobs, config } = this.ctx;
    const now = this.ctx.now();
    try {
      const before = new Date(now.getTime() - config.retentionMs).toISOString();
      for (;;) {
        const batch = await store.listPredictionsForRetention(before, 100);
        for (const record of batch) {
          await store.updatePrediction(
            record.id,
            { input: null, output: null, logs: "", data_removed: true },
            { statuses: ["succeeded", "failed", "canceled", "aborted"] },
          );
        }
        if (batch.length < 100) break;
      }
      for (;;) {
        const expired = await store.listExpiredFiles(now.toISOString(), 100);
        for (const file of expired) {
          await store.deleteFile(file.id);
          await blobs.delete(file.blob_key);
        }
        if (expired.length < 100) break;
      }
      await store.deleteIdempotencyBefore(new Date(now.getTime() - IDEMPOTENCY_TTL_MS).toISOString());
    } catch (error) {
      console.error("maintenance sweep failed:", error);
    }
  }
}
