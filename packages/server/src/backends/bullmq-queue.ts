import { randomBytes, randomUUID } from "node:crypto";
import { Job, Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { ProblemError } from "../errors.js";
import type { EnqueueOptions, JobQueue, LeasedJob } from "./types.js";

export interface ExpiredJob {
  id: string;
  queue: string;
  attempts: number;
}

export interface BullmqJobQueueOptions {
  /** `redis://…` */
  url: string;
  /** BullMQ key prefix; every key of this queue starts with it. Default `replicant`. */
  prefix?: string;
  /**
   * BullMQ's own lock model: this process keeps the lock of every job it leased, renewing it every
   * `lockMs / 2`, until it completes, releases or loses it; a job of a process that died is
   * recoverable `lockMs` after its last renewal. The `leaseMs` of lease/extend is then ignored.
   * Without it, a lease lasts exactly the `leaseMs` asked for (the JobQueue contract, as tested).
   */
  lockMs?: number;
  /** Called with the jobs whose lock expired, before they go back to waiting (the server fails crashed predictions here). */
  onExpired?: (jobs: ExpiredJob[]) => Promise<void>;
  /** A Redis command the API waits on fails after this long (then the API answers 503). Default 3000 ms. */
  commandTimeoutMs?: number;
}

/** BullMQ priorities run 1 (first) … 2^21; ours are "higher first", any integer. */
const PRIORITY_ZERO = 1_048_576;
const PRIORITY_MAX = 2_097_152;

function bullPriority(priority: number | undefined): number {
  return Math.min(PRIORITY_MAX, Math.max(1, PRIORITY_ZERO - Math.trunc(priority ?? 0)));
}

/** BullMQ refuses custom ids that contain ":" or look like integers; ours may be anything. */
function encodeId(id: string): string {
  return `j_${id.replace(/%/g, "%25").replace(/:/g, "%3A")}`;
}

function decodeId(jobId: string): string {
  return jobId.slice(2).replace(/%3A/g, ":").replace(/%25/g, "%");
}

/** The lock token names the queue, so complete/release/extend find the job without a lookup. */
function makeToken(queue: string): string {
  return `${Buffer.from(queue, "utf8").toString("base64url")}.${randomBytes(16).toString("base64url")}`;
}

function queueOfToken(token: string): string | undefined {
  const dot = token.indexOf(".");
  if (dot <= 0) return undefined;
  return Buffer.from(token.slice(0, dot), "base64url").toString("utf8");
}

function isRedisUnavailable(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  return (
    code === "ECONNREFUSED" ||
    code === "ECONNRESET" ||
    code === "ETIMEDOUT" ||
    /Stream isn't writeable|Connection is closed|enableOfflineQueue|MaxRetriesPerRequest|timed out|READONLY|LOADING/i.test(
      message,
    )
  );
}

function unavailable(error: unknown): ProblemError {
  return Object.assign(
    new ProblemError(503, "Service Unavailable", "The queue is unavailable at the moment; retry shortly.", {
      headers: { "retry-after": "2" },
    }),
    { cause: error },
  );
}

interface Held {
  job: Job;
  token: string;
  queue: string;
}

interface Announcement {
  q: string;
  at: number;
  from: string;
}

/**
 * The JobQueue on BullMQ 6 (Redis). A lease is a job moved to active by a processor-less Worker
 * (manual fetching) under a random lock token; completion, release and extension are fenced by that
 * token in BullMQ's own scripts ("Missing lock for job" → false). Priorities map to BullMQ's
 * prioritized set, delays to its delayed set. Expired locks are found by scanning the active list
 * for jobs whose lock key is gone, under a short Redis mutex so that two processes never recover the
 * same job. Availability is announced on a Redis pub/sub channel, so every process hears it.
 */
export class BullmqJobQueue implements JobQueue {
  private readonly prefix: string;
  private readonly connection: Redis;
  private readonly subscriber: Redis;
  private readonly queues = new Map<string, Queue>();
  private readonly workers = new Map<string, Worker>();
  private readonly knownQueues = new Set<string>();
  private readonly listeners = new Set<(queue: string) => void>();
  private readonly held = new Map<string, Held>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly instance = randomUUID();
  private readonly channel: string;
  private readonly commandTimeoutMs: number;
  private renewTimer: NodeJS.Timeout | undefined;
  private subscribed: Promise<unknown> | undefined;
  private closed = false;

  constructor(private readonly options: BullmqJobQueueOptions) {
    this.prefix = options.prefix ?? "replicant";
    this.channel = `${this.prefix}:replicant:available`;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 3000;
    // BullMQ's workers need maxRetriesPerRequest: null; we bound waits ourselves (withTimeout).
    this.connection = new Redis(options.url, { maxRetriesPerRequest: null });
    this.subscriber = new Redis(options.url, { maxRetriesPerRequest: null });
    this.connection.on("error", () => undefined);
    this.subscriber.on("error", () => undefined);
    this.subscriber.on("message", (channel: string, message: string) => {
      if (channel === this.channel) this.heard(message);
    });
    if (options.lockMs !== undefined) {
      const every = Math.max(50, Math.floor(options.lockMs / 2));
      this.renewTimer = setInterval(() => void this.renewLocks(), every);
      this.renewTimer.unref();
    }
  }

  // --- plumbing -------------------------------------------------------------------------------

  private key(...parts: string[]): string {
    return [this.prefix, ...parts].join(":");
  }

  private queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (queue === undefined) {
      queue = new Queue(name, { connection: this.connection, prefix: this.prefix, skipVersionCheck: true });
      queue.on("error", () => undefined);
      this.queues.set(name, queue);
    }
    return queue;
  }

  private worker(name: string): Worker {
    let worker = this.workers.get(name);
    if (worker === undefined) {
      worker = new Worker(name, null, {
        connection: this.connection,
        prefix: this.prefix,
        autorun: false,
        skipVersionCheck: true,
        skipStalledCheck: true,
        skipLockRenewal: true,
        lockDuration: this.options.lockMs ?? 30_000,
        // Recovery and retries are ours (recoverExpired and the director); BullMQ must never fail a job.
        maxStalledCount: 1_000_000,
      });
      worker.on("error", () => undefined);
      this.workers.set(name, worker);
    }
    return worker;
  }

  private async withTimeout<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("Redis command timed out")), this.commandTimeoutMs);
    });
    try {
      return await Promise.race([work, timeout]);
    } catch (error) {
      throw isRedisUnavailable(error) ? unavailable(error) : error;
    } finally {
      clearTimeout(timer);
    }
  }

  private async remember(queue: string): Promise<void> {
    if (this.knownQueues.has(queue)) return;
    await this.connection.sadd(this.key("replicant", "queues"), queue);
    this.knownQueues.add(queue);
  }

  private async allQueues(): Promise<string[]> {
    const names = await this.connection.smembers(this.key("replicant", "queues"));
    for (const name of names) this.knownQueues.add(name);
    return [...this.knownQueues];
  }

  private async findJob(queue: string, id: string): Promise<Job | undefined> {
    return (await Job.fromId(this.queue(queue), encodeId(id))) ?? undefined;
  }

  private heldKey(id: string): string {
    return this.key("replicant", "held", encodeId(id));
  }

  // --- availability ----------------------------------------------------------------------------

  private emit(queue: string): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(queue);
      } catch {
        // A failing listener must not keep the others from hearing about work.
      }
    }
  }

  private schedule(queue: string, at: number): void {
    const delay = at - Date.now();
    if (delay <= 0) {
      this.emit(queue);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.emit(queue);
    }, delay + 5);
    timer.unref();
    this.timers.add(timer);
  }

  /** Tells this process at once and the others through pub/sub; best effort (the director also polls). */
  private announce(queue: string, at: number): void {
    this.schedule(queue, at);
    const message: Announcement = { q: queue, at, from: this.instance };
    void this.connection.publish(this.channel, JSON.stringify(message)).catch(() => undefined);
  }

  private heard(message: string): void {
    let parsed: Announcement;
    try {
      parsed = JSON.parse(message) as Announcement;
    } catch {
      return;
    }
    if (parsed.from === this.instance || typeof parsed.q !== "string") return;
    if (this.listeners.size > 0) this.schedule(parsed.q, Number(parsed.at) || 0);
  }

  onAvailable(listener: (queue: string) => void): () => void {
    this.listeners.add(listener);
    this.subscribed ??= this.subscriber.subscribe(this.channel).catch(() => {
      this.subscribed = undefined;
    });
    return () => {
      this.listeners.delete(listener);
    };
  }

  // --- the JobQueue contract ---------------------------------------------------------------------

  async enqueue(job: EnqueueOptions): Promise<void> {
    const delay = Math.max(0, Math.floor(job.delayMs ?? 0));
    const at = Date.now() + delay;
    await this.withTimeout(
      (async () => {
        await this.remember(job.queue);
        await this.queue(job.queue).add(
          "job",
          {},
          {
            jobId: encodeId(job.id),
            priority: bullPriority(job.priority),
            ...(delay > 0 ? { delay } : {}),
            attempts: 1,
            removeOnComplete: true,
            removeOnFail: true,
          },
        );
      })(),
    );
    this.announce(job.queue, at);
  }

  async lease(queue: string, _workerId: string, leaseMs: number, limit: number): Promise<LeasedJob[]> {
    if (limit <= 0 || this.closed) return [];
    await this.remember(queue);
    const worker = this.worker(queue);
    const duration = this.options.lockMs ?? leaseMs;
    const leased: LeasedJob[] = [];
    for (let i = 0; i < Math.floor(limit); i++) {
      const token = makeToken(queue);
      const job = await worker.getNextJob(token, { block: false });
      if (job === undefined || job === null || job.id === undefined) break;
      await job.extendLock(token, Math.max(1, Math.floor(duration)));
      const id = decodeId(job.id);
      if (this.options.lockMs !== undefined) {
        this.held.set(id, { job, token, queue });
        await this.connection.set(this.heldKey(id), token, "PX", this.options.lockMs);
      }
      const attempts = Number(await this.connection.hget(this.key(queue, job.id), "ats")) || 1;
      leased.push({ id, queue, token, attempts });
    }
    return leased;
  }

  private async forget(id: string, token: string): Promise<void> {
    const held = this.held.get(id);
    if (held !== undefined && held.token === token) {
      this.held.delete(id);
      await this.connection.del(this.heldKey(id));
    }
  }

  async complete(id: string, token: string): Promise<boolean> {
    const queue = queueOfToken(token);
    if (queue === undefined) return false;
    const job = await this.findJob(queue, id);
    await this.forget(id, token);
    if (job === undefined) return false;
    try {
      await job.moveToCompleted(null, token, false);
      return true;
    } catch {
      return false;
    }
  }

  async release(id: string, token: string, delayMs: number): Promise<boolean> {
    const queue = queueOfToken(token);
    if (queue === undefined) return false;
    const job = await this.findJob(queue, id);
    if (job === undefined) return false;
    const delay = Math.max(0, Math.floor(delayMs));
    try {
      if (delay > 0) await job.moveToDelayed(Date.now() + delay, token);
      else await job.moveToWait(token);
    } catch {
      return false;
    }
    await this.forget(id, token);
    this.announce(queue, Date.now() + delay);
    return true;
  }

  async extend(id: string, token: string, leaseMs: number): Promise<boolean> {
    const queue = queueOfToken(token);
    if (queue === undefined) return false;
    const duration = Math.max(1, Math.floor(this.options.lockMs ?? leaseMs));
    const result = await this.connection.eval(
      // BullMQ's extendLock script, without needing the Job object.
      `if redis.call("GET", KEYS[1]) == ARGV[1] then
         redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
         redis.call("SREM", KEYS[2], ARGV[3])
         return 1
       end
       return 0`,
      2,
      this.key(queue, encodeId(id), "lock"),
      this.key(queue, "stalled"),
      token,
      String(duration),
      encodeId(id),
    );
    return Number(result) === 1;
  }

  async remove(id: string): Promise<boolean> {
    const jobId = encodeId(id);
    const held = this.held.get(id);
    if (held !== undefined) await this.forget(id, held.token);
    for (const name of await this.withTimeout(this.allQueues())) {
      if ((await this.connection.exists(this.key(name, jobId))) === 0) continue;
      const queue = this.queue(name);
      for (let tries = 0; tries < 5; tries++) {
        if ((await queue.remove(jobId)) === 1) return true;
        // Active: take its lock away, so the holder's complete/extend fail, then remove it.
        await this.connection.del(this.key(name, jobId, "lock"));
        if ((await this.connection.exists(this.key(name, jobId))) === 0) return true;
      }
    }
    return false;
  }

  async recoverExpired(): Promise<{ id: string; attempts: number }[]> {
    if (this.closed) return [];
    const recovered: ExpiredJob[] = [];
    for (const name of await this.allQueues()) {
      const active = await this.connection.lrange(this.key(name, "active"), 0, -1);
      if (active.length === 0) continue;
      const locks = await this.connection.exists(...active.map((jobId) => this.key(name, jobId, "lock")));
      if (locks === active.length) continue;
      // One recoverer at a time per queue: a job seen without a lock cannot gain one while it is in
      // the active list, so under this mutex the move back to waiting is safe.
      const mutex = this.key("replicant", "recovering", name);
      const owner = randomUUID();
      if ((await this.connection.set(mutex, owner, "PX", 10_000, "NX")) !== "OK") continue;
      try {
        const expired: { job: Job; expired: ExpiredJob }[] = [];
        for (const jobId of active) {
          if ((await this.connection.exists(this.key(name, jobId, "lock"))) === 1) continue;
          const job = await Job.fromId(this.queue(name), jobId);
          if (!job) continue;
          const attempts = Number(await this.connection.hget(this.key(name, jobId), "ats")) || 0;
          expired.push({ job, expired: { id: decodeId(jobId), queue: name, attempts } });
        }
        if (expired.length === 0) continue;
        await this.options.onExpired?.(expired.map((e) => e.expired)).catch(() => undefined);
        for (const { job, expired: info } of expired) {
          try {
            await job.moveToWait("0");
            recovered.push(info);
          } catch {
            // Completed or removed meanwhile.
          }
        }
        this.announce(name, 0);
      } finally {
        await this.connection
          .eval(
            `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`,
            1,
            mutex,
            owner,
          )
          .catch(() => undefined);
      }
    }
    return recovered.map(({ id, attempts }) => ({ id, attempts }));
  }

  async counts(queue: string): Promise<{ waiting: number; active: number }> {
    const counts = await this.withTimeout(
      this.queue(queue).getJobCounts("wait", "prioritized", "delayed", "active"),
    );
    return {
      waiting: (counts.wait ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0),
      active: counts.active ?? 0,
    };
  }

  // --- beyond the contract ---------------------------------------------------------------------

  /** Whether a job with this id exists on the queue, in any state (the reconciler's question after a Redis loss). */
  async has(queue: string, id: string): Promise<boolean> {
    return (await this.connection.exists(this.key(queue, encodeId(id)))) === 1;
  }

  /** Whether some live process holds this job (lockMs mode), even if Redis lost the job itself. */
  async isHeld(id: string): Promise<boolean> {
    return (await this.connection.exists(this.heldKey(id))) === 1;
  }

  /** The Redis connection, for health checks. */
  get redis(): Redis {
    return this.connection;
  }

  private async renewLocks(): Promise<void> {
    const lockMs = this.options.lockMs;
    if (lockMs === undefined || this.closed) return;
    for (const [id, held] of [...this.held]) {
      try {
        const jobId = encodeId(id);
        const extended = await this.extend(id, held.token, lockMs);
        if (!extended && (await this.connection.exists(this.key(held.queue, jobId))) === 1) {
          // Someone else holds it now (it was recovered, or removed and enqueued again).
          if (this.held.get(id) === held) this.held.delete(id);
          continue;
        }
        // Still ours, or Redis lost the job while we run it: either way, say that we are alive.
        await this.connection.set(this.heldKey(id), held.token, "PX", lockMs);
      } catch {
        // Redis unreachable: try again on the next tick.
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    if (this.renewTimer !== undefined) clearInterval(this.renewTimer);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    // BullMQ's close waits for a connection that may never come back: bound it.
    const closing = Promise.allSettled([
      ...[...this.workers.values()].map((worker) => worker.close(true)),
      ...[...this.queues.values()].map((queue) => queue.close()),
    ]);
    await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    this.subscriber.disconnect();
    if (this.connection.status === "ready") await this.connection.quit().catch(() => undefined);
    this.connection.disconnect();
  }
}
