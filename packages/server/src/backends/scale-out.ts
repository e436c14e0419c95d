import type { ScaleOutConfig } from "../config.js";
import {
  DEADLINES_QUEUE,
  deadlineJobId,
  PREDICTIONS_QUEUE,
  predictionChannel,
  type ServerContext,
} from "../context.js";
import { outboxFor } from "../webhook-events.js";
import type { BullmqJobQueue, ExpiredJob } from "./bullmq-queue.js";
import type { BlobStore, EventBus, PredictionRecord, Store } from "./types.js";

const DEFAULT_LOCK_MS = 30_000;
const DEFAULT_RECONCILE_MS = 15_000;

export const CRASHED_WORKER_ERROR =
  "The worker running this prediction stopped, so it was not completed. Create it again to retry.";

type Env = Record<string, string | undefined>;

function positiveInt(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive integer, got ${raw}`);
  return value;
}

/**
 * The scale-out settings named by the environment, or undefined when REPLICANT_DATABASE_URL is not
 * set (embedded mode). Setting some of the required variables but not all is an error.
 */
export function scaleOutConfigFromEnv(env: Env = process.env): ScaleOutConfig | undefined {
  const databaseUrl = env.REPLICANT_DATABASE_URL || undefined;
  const redisUrl = env.REPLICANT_REDIS_URL || undefined;
  const bucket = env.REPLICANT_S3_BUCKET || undefined;
  if (databaseUrl === undefined && redisUrl === undefined && bucket === undefined) return undefined;
  const missing = [
    databaseUrl === undefined ? "REPLICANT_DATABASE_URL" : undefined,
    redisUrl === undefined ? "REPLICANT_REDIS_URL" : undefined,
    bucket === undefined ? "REPLICANT_S3_BUCKET" : undefined,
  ].filter((name) => name !== undefined);
  if (databaseUrl === undefined || redisUrl === undefined || bucket === undefined)
    throw new Error(`scale-out mode needs ${missing.join(", ")} as well`);
  const accessKeyId = env.REPLICANT_S3_ACCESS_KEY || env.AWS_ACCESS_KEY_ID || undefined;
  const secretAccessKey = env.REPLICANT_S3_SECRET_KEY || env.AWS_SECRET_ACCESS_KEY || undefined;
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined))
    throw new Error("S3 credentials need both an access key and a secret key");
  return {
    databaseUrl,
    redisUrl,
    redisPrefix: env.REPLICANT_REDIS_PREFIX || undefined,
    s3: {
      bucket,
      endpoint: env.REPLICANT_S3_ENDPOINT || undefined,
      region: env.REPLICANT_S3_REGION || env.AWS_REGION || undefined,
      credentials:
        accessKeyId !== undefined && secretAccessKey !== undefined
          ? { accessKeyId, secretAccessKey }
          : undefined,
      keyPrefix: env.REPLICANT_S3_KEY_PREFIX || undefined,
      createBucket: env.REPLICANT_S3_CREATE_BUCKET === "1",
    },
    databasePoolSize: positiveInt(env, "REPLICANT_DATABASE_POOL_SIZE"),
    queueLockMs: positiveInt(env, "REPLICANT_QUEUE_LOCK_MS"),
    reconcileIntervalMs: positiveInt(env, "REPLICANT_RECONCILE_INTERVAL_MS"),
  };
}

/** Connection URLs without their passwords, for logs. */
export function describeScaleOut(config: ScaleOutConfig): string {
  const redact = (url: string) => {
    try {
      const parsed = new URL(url);
      if (parsed.password) parsed.password = "***";
      return parsed.toString();
    } catch {
      return "(unparsable URL)";
    }
  };
  const s3 = `s3://${config.s3.bucket}/${config.s3.keyPrefix ?? ""}${config.s3.endpoint ? ` at ${config.s3.endpoint}` : ""}`;
  return `PostgreSQL ${redact(config.databaseUrl)}, Redis ${redact(config.redisUrl)}, ${s3}`;
}

export interface ScaleOutBackends {
  store: Store;
  queue: BullmqJobQueue;
  blobs: BlobStore;
  bus: EventBus;
  /**
   * Called once the server's context exists. In worker processes this starts the reconciler, which
   * replaces the embedded director's recovery at start (that one assumes a single process).
   */
  attach(ctx: ServerContext): void;
}

/** Opens PostgreSQL (migrated), the BullMQ queue, the Redis bus and the S3 bucket. */
export async function openScaleOutBackends(config: ScaleOutConfig): Promise<ScaleOutBackends> {
  // Loaded here, so that embedded mode never loads pg, BullMQ or the AWS SDK.
  const [
    { acquireStartupLock, createPostgresStore },
    { BullmqJobQueue },
    { RedisEventBus },
    { S3BlobStore },
  ] = await Promise.all([
    import("./postgres.js"),
    import("./bullmq-queue.js"),
    import("./redis-event-bus.js"),
    import("./s3-blob-store.js"),
  ]);
  const lockMs = config.queueLockMs ?? DEFAULT_LOCK_MS;
  let reconciler: Reconciler | undefined;
  const opened: { store?: Store; queue?: BullmqJobQueue; bus?: EventBus; blobs?: BlobStore } = {};
  // Released once the server has bootstrapped (attach), so that processes starting together take turns.
  const releaseStartupLock = await acquireStartupLock(config.databaseUrl);
  try {
    const store = await createPostgresStore({
      connectionString: config.databaseUrl,
      ...(config.databasePoolSize !== undefined ? { poolSize: config.databasePoolSize } : {}),
    });
    opened.store = store;
    const queue = new BullmqJobQueue({
      url: config.redisUrl,
      prefix: config.redisPrefix ?? "replicant",
      lockMs,
      onExpired: async (jobs) => reconciler?.onExpired(jobs),
    });
    opened.queue = queue;
    const bus = new RedisEventBus({ url: config.redisUrl, prefix: config.redisPrefix ?? "replicant" });
    opened.bus = bus;
    const blobs = new S3BlobStore(config.s3);
    opened.blobs = blobs;
    if (config.s3.createBucket) await blobs.ensureBucket();
    const close = queue.close.bind(queue);
    queue.close = async () => {
      reconciler?.stop();
      await releaseStartupLock();
      await close();
    };
    return {
      store,
      queue,
      blobs,
      bus,
      attach(ctx) {
        void releaseStartupLock();
        if (!ctx.config.worker || reconciler !== undefined) return;
        reconciler = new Reconciler(ctx, queue, lockMs, config.reconcileIntervalMs ?? DEFAULT_RECONCILE_MS);
        reconciler.start();
      },
    };
  } catch (error) {
    await Promise.allSettled([
      releaseStartupLock(),
      opened.queue?.close(),
      opened.bus?.close(),
      opened.blobs?.close(),
      opened.store?.close(),
    ]);
    throw error;
  }
}

/**
 * Brings accepted predictions to a terminal state when the queue alone cannot:
 * - a job whose lock expired (its worker died) and whose prediction was processing fails, by the
 *   rule of the embedded server (running it again could repeat its side effects);
 * - after a Redis loss, a prediction that is not terminal and has no job is enqueued again (or
 *   failed, if it was processing and no live worker holds it for a whole lock duration), and a lost
 *   deadline job is put back.
 */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** When a processing prediction was first seen with no job and no live holder. */
  private readonly orphanedSince = new Map<string, number>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly queue: BullmqJobQueue,
    private readonly lockMs: number,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
    this.timer.unref();
    void this.sweep();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  async onExpired(jobs: ExpiredJob[]): Promise<void> {
    for (const job of jobs) {
      if (job.queue !== PREDICTIONS_QUEUE) continue;
      const record = await this.ctx.store.getPrediction(job.id);
      if (record?.status === "processing") await this.failCrashed(record);
    }
  }

  sweep(): Promise<void> {
    this.running ??= this.sweepOnce()
      .catch((error: unknown) => {
        if (!this.stopped) console.error("reconciler: sweep failed:", error);
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async sweepOnce(): Promise<void> {
    const { store } = this.ctx;
    const unfinished = await store.listUnfinishedPredictions();
    const seen = new Set<string>();
    for (const record of unfinished) {
      if (this.stopped) return;
      seen.add(record.id);
      if (record.deadline !== null && !(await this.queue.has(DEADLINES_QUEUE, deadlineJobId(record.id)))) {
        const delayMs = Math.max(0, Date.parse(record.deadline) - Date.now());
        await this.queue.enqueue({ id: deadlineJobId(record.id), queue: DEADLINES_QUEUE, delayMs });
      }
      if (await this.queue.has(PREDICTIONS_QUEUE, record.id)) {
        this.orphanedSince.delete(record.id);
        continue;
      }
      if (record.status === "starting") {
        // Enqueueing an id that is already there does nothing, so a race with the API is harmless.
        await this.queue.enqueue({ id: record.id, queue: PREDICTIONS_QUEUE });
        continue;
      }
      if (await this.queue.isHeld(record.id)) {
        this.orphanedSince.delete(record.id);
        continue;
      }
      const since = this.orphanedSince.get(record.id);
      if (since === undefined) this.orphanedSince.set(record.id, Date.now());
      else if (Date.now() - since >= this.lockMs) {
        this.orphanedSince.delete(record.id);
        await this.failCrashed(record);
      }
    }
    for (const id of this.orphanedSince.keys()) if (!seen.has(id)) this.orphanedSince.delete(id);
  }

  /** The terminal transition the director would make, fenced by status and attempt. */
  private async failCrashed(record: PredictionRecord): Promise<void> {
    const { store, bus } = this.ctx;
    const now = this.ctx.now();
    const metrics: Record<string, unknown> = { ...(record.metrics ?? {}) };
    if (record.started_at) metrics.predict_time = (now.getTime() - Date.parse(record.started_at)) / 1000;
    metrics.total_time = (now.getTime() - Date.parse(record.created_at)) / 1000;
    const patch = {
      status: "failed" as const,
      error: CRASHED_WORKER_ERROR,
      completed_at: now.toISOString(),
      metrics,
    };
    const outbox = outboxFor(this.ctx, { ...record, ...patch }, "completed");
    const updated = await store.updatePrediction(
      record.id,
      patch,
      { statuses: ["processing"], attempt: record.attempt },
      outbox,
    );
    if (!updated) return;
    await bus.publish(predictionChannel(record.id), { type: "done", status: "failed", error: updated.error });
  }
}
