import { randomBytes } from "node:crypto";
import type BetterSqlite3 from "better-sqlite3";
import { GroupCommitter } from "./group-commit.js";
import type { EnqueueOptions, EnqueueTaker, JobQueue, LeasedJob } from "./types.js";

export interface SqliteJobQueueOptions {
  /** Table name, so that several queues can share a file. Default `jobs`. */
  table?: string;
  /**
   * How often to look for commits by other processes (cheap: `PRAGMA data_version`) while someone
   * listens to onAvailable. 0 disables it. Default 1000 ms.
   */
  pollMs?: number;
  /** Clock, for tests. */
  now?: () => number;
  /** The store writes through the same connection (see JobQueue.commitsWithStore). */
  sharesConnectionWithStore?: boolean;
}

interface LeasedRow {
  id: string;
  queue: string;
  token: string;
  attempts: number;
  priority: number;
  seq: number;
}

/** Most jobs one lease takes (a statement is kept per limit asked for, so they are bounded). */
const MAX_LEASE = 1000;

/** setTimeout's ceiling; a later due time just re-arms the timer when it fires. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * A durable lease queue in a table of the server's SQLite file. Jobs are waiting or active; a lease
 * carries a random token that fences complete/release/extend, and an expiry after which
 * recoverExpired puts the job back. Ordered by priority (higher first), then enqueue order.
 */
export class SqliteJobQueue implements JobQueue {
  private readonly listeners = new Set<(queue: string) => void>();
  private readonly now: () => number;
  private readonly pollMs: number;
  private readonly statements: ReturnType<SqliteJobQueue["prepare"]>;
  private readonly leaseStatements = new Map<
    number,
    ReturnType<ReturnType<SqliteJobQueue["prepare"]>["lease"]>
  >();
  private dueTimer: NodeJS.Timeout | undefined;
  private dueAt = Number.POSITIVE_INFINITY;
  /** Delayed jobs due at or before this time have been announced. */
  private announcedUntil: number;
  private pollTimer: NodeJS.Timeout | undefined;
  private dataVersion = 0;
  private closed = false;
  private readonly committer: GroupCommitter;
  readonly commitsWithStore: boolean;
  /** Per queue, who leases its jobs in the transaction that enqueues them (leaseOnEnqueue). */
  private readonly takers = new Map<string, EnqueueTaker>();
  /** Jobs enqueued, without a delay, on a queue with a taker, in the batch being written. */
  private enqueuedInBatch: { id: string; queue: string }[] = [];
  /** Of those, the ones leased in their own transaction: their enqueue announces nothing. */
  private readonly takenOnEnqueue = new Set<string>();
  private removeBeforeCommit: (() => void) | undefined;

  constructor(
    private readonly db: BetterSqlite3.Database,
    options: SqliteJobQueueOptions = {},
  ) {
    const table = options.table ?? "jobs";
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table)) throw new Error(`invalid queue table name: ${table}`);
    this.now = options.now ?? Date.now;
    this.pollMs = options.pollMs ?? 1000;
    this.commitsWithStore = options.sharesConnectionWithStore === true;
    // AUTOINCREMENT: seq never goes backwards, so it is a true enqueue order even after deletes.
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${table} (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        queue TEXT NOT NULL,
        priority INTEGER NOT NULL,
        available_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        token TEXT,
        worker_id TEXT,
        lease_until INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        enqueued_at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS ${table}_ready ON ${table} (queue, state, priority DESC, seq);
      CREATE INDEX IF NOT EXISTS ${table}_due ON ${table} (state, available_at);
      CREATE INDEX IF NOT EXISTS ${table}_lease ON ${table} (state, lease_until);
    `);
    this.statements = this.prepare(table);
    this.committer = GroupCommitter.for(db);
    // Jobs already due when we start are announced by the first onAvailable poll or lease; only
    // delayed ones need the timer.
    this.announcedUntil = this.now();
    this.armDueTimer();
  }

  private prepare(table: string) {
    const db = this.db;
    return {
      enqueue: db.prepare<[string, string, number, number, number]>(
        `INSERT INTO ${table} (id, queue, priority, available_at, state, enqueued_at)
         VALUES (?, ?, ?, ?, 'waiting', ?) ON CONFLICT (id) DO NOTHING`,
      ),
      // One statement: the subquery picks and the UPDATE takes, under SQLite's write lock. INDEXED BY:
      // left alone, the planner picks the _due index and scans every waiting job of every queue (and
      // sorts them), so leasing from an empty queue got slower with each job waiting elsewhere.
      // The LIMIT is written into the SQL, one statement per limit: a bound LIMIT makes SQLite (built
      // with STAT4) prepare the statement again at every run, ~15 µs of a lease's ~18.
      lease: (limit: number) =>
        db.prepare<[string, string, number, string, number], LeasedRow>(
          `UPDATE ${table}
           SET state = 'active', token = ? || '.' || seq, worker_id = ?, lease_until = ?, attempts = attempts + 1
           WHERE seq IN (
             SELECT seq FROM ${table} INDEXED BY ${table}_ready
             WHERE queue = ? AND state = 'waiting' AND available_at <= ?
             ORDER BY priority DESC, seq ASC
             LIMIT ${limit})
           RETURNING id, queue, token, attempts, priority, seq`,
        ),
      complete: db.prepare<[string, string]>(
        `DELETE FROM ${table} WHERE id = ? AND token = ? AND state = 'active'`,
      ),
      release: db.prepare<[number, string, string], { queue: string }>(
        `UPDATE ${table}
         SET state = 'waiting', token = NULL, worker_id = NULL, lease_until = NULL, available_at = ?
         WHERE id = ? AND token = ? AND state = 'active'
         RETURNING queue`,
      ),
      extend: db.prepare<[number, string, string]>(
        `UPDATE ${table} SET lease_until = ? WHERE id = ? AND token = ? AND state = 'active'`,
      ),
      remove: db.prepare<[string]>(`DELETE FROM ${table} WHERE id = ?`),
      recover: db.prepare<[number, number], { id: string; attempts: number; queue: string }>(
        `UPDATE ${table}
         SET state = 'waiting', token = NULL, worker_id = NULL, lease_until = NULL, available_at = ?
         WHERE state = 'active' AND lease_until < ?
         RETURNING id, attempts, queue`,
      ),
      counts: db.prepare<[string], { waiting: number; active: number }>(
        `SELECT
           coalesce(sum(CASE WHEN state = 'waiting' THEN 1 ELSE 0 END), 0) AS waiting,
           coalesce(sum(CASE WHEN state = 'active' THEN 1 ELSE 0 END), 0) AS active
         FROM ${table} WHERE queue = ?`,
      ),
      nextDue: db.prepare<[number], { due: number | null }>(
        `SELECT min(available_at) AS due FROM ${table} WHERE state = 'waiting' AND available_at > ?`,
      ),
      queuesDueBetween: db.prepare<[number, number], { queue: string }>(
        `SELECT DISTINCT queue FROM ${table} WHERE state = 'waiting' AND available_at > ? AND available_at <= ?`,
      ),
      queuesDue: db.prepare<[number], { queue: string }>(
        `SELECT DISTINCT queue FROM ${table} WHERE state = 'waiting' AND available_at <= ?`,
      ),
    };
  }

  private leaseStatement(limit: number) {
    let statement = this.leaseStatements.get(limit);
    if (statement === undefined) {
      statement = this.statements.lease(limit);
      this.leaseStatements.set(limit, statement);
    }
    return statement;
  }

  /** Through the connection's group commit (shared with the store on the same database). */
  private write<T>(work: () => T): Promise<T> {
    return this.committer.write(work);
  }

  async enqueue(job: EnqueueOptions): Promise<void> {
    const now = this.now();
    const delay = Math.max(0, job.delayMs ?? 0);
    const availableAt = now + delay;
    const inserted = await this.write(() => {
      const changed =
        this.statements.enqueue.run(job.id, job.queue, job.priority ?? 0, availableAt, now).changes > 0;
      if (changed && delay === 0 && this.takers.has(job.queue))
        this.enqueuedInBatch.push({ id: job.id, queue: job.queue });
      return changed;
    });
    if (!inserted) return;
    if (this.takenOnEnqueue.delete(job.id)) return;
    if (delay === 0) this.emit(job.queue);
    else this.scheduleDue(availableAt);
  }

  async lease(queue: string, workerId: string, leaseMs: number, limit: number): Promise<LeasedJob[]> {
    if (!(limit > 0)) return [];
    return this.write(() => this.leaseNow(queue, workerId, leaseMs, limit));
  }

  /** The lease statement, in the caller's transaction. */
  private leaseNow(queue: string, workerId: string, leaseMs: number, limit: number): LeasedJob[] {
    const now = this.now();
    const token = randomBytes(16).toString("base64url");
    const lease = this.leaseStatement(Math.min(Math.floor(limit), MAX_LEASE));
    const rows = lease.all(token, workerId, now + leaseMs, queue, now);
    // RETURNING order is unspecified.
    rows.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    return rows.map((row) => ({ id: row.id, queue: row.queue, token: row.token, attempts: row.attempts }));
  }

  leaseOnEnqueue(queue: string, taker: EnqueueTaker): () => void {
    if (!this.commitsWithStore) return () => undefined;
    this.takers.set(queue, taker);
    this.removeBeforeCommit ??= this.committer.onBeforeCommit(() => this.leaseEnqueued());
    return () => {
      if (this.takers.get(queue) === taker) this.takers.delete(queue);
    };
  }

  /**
   * At the end of a batch that enqueued jobs for a taker: leases for it in that transaction (older
   * waiting jobs first, as any lease), and hands the jobs over once it commits.
   */
  private leaseEnqueued(): ((committed: boolean) => void) | undefined {
    if (this.enqueuedInBatch.length === 0) return undefined;
    const enqueued = this.enqueuedInBatch;
    this.enqueuedInBatch = [];
    if (this.closed) return undefined;
    const handOvers: { taker: EnqueueTaker; jobs: LeasedJob[] }[] = [];
    const taken: string[] = [];
    for (const queue of new Set(enqueued.map((job) => job.queue))) {
      const taker = this.takers.get(queue);
      const capacity = taker ? Math.floor(taker.capacity()) : 0;
      if (!taker || !(capacity > 0)) continue;
      let jobs: LeasedJob[];
      try {
        jobs = this.leaseNow(queue, taker.workerId, taker.leaseMs, capacity);
      } catch {
        continue; // one statement: nothing leased; the jobs are announced and wait for a lease
      }
      if (jobs.length === 0) continue;
      handOvers.push({ taker, jobs });
      const ids = new Set(jobs.map((job) => job.id));
      for (const job of enqueued) if (ids.has(job.id)) taken.push(job.id);
    }
    for (const id of taken) this.takenOnEnqueue.add(id);
    if (handOvers.length === 0) return undefined;
    return (committed) => {
      if (!committed) {
        for (const id of taken) this.takenOnEnqueue.delete(id);
        return;
      }
      for (const { taker, jobs } of handOvers) taker.take(jobs);
    };
  }

  async complete(id: string, token: string): Promise<boolean> {
    return this.write(() => this.statements.complete.run(id, token).changes > 0);
  }

  async release(id: string, token: string, delayMs: number): Promise<boolean> {
    const delay = Math.max(0, delayMs);
    const availableAt = this.now() + delay;
    const row = await this.write(() => this.statements.release.get(availableAt, id, token));
    if (row === undefined) return false;
    if (delay === 0) this.emit(row.queue);
    else this.scheduleDue(availableAt);
    return true;
  }

  async extend(id: string, token: string, leaseMs: number): Promise<boolean> {
    const leaseUntil = this.now() + leaseMs;
    return this.write(() => this.statements.extend.run(leaseUntil, id, token).changes > 0);
  }

  async remove(id: string): Promise<boolean> {
    return this.write(() => this.statements.remove.run(id).changes > 0);
  }

  async recoverExpired(): Promise<{ id: string; attempts: number }[]> {
    const now = this.now();
    const rows = this.statements.recover.all(now, now);
    for (const queue of new Set(rows.map((row) => row.queue))) this.emit(queue);
    return rows.map((row) => ({ id: row.id, attempts: row.attempts }));
  }

  async counts(queue: string): Promise<{ waiting: number; active: number }> {
    const row = this.statements.counts.get(queue);
    return { waiting: Number(row?.waiting ?? 0), active: Number(row?.active ?? 0) };
  }

  onAvailable(listener: (queue: string) => void): () => void {
    this.listeners.add(listener);
    this.startPolling();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopPolling();
    };
  }

  async close(): Promise<void> {
    // The database belongs to the caller (it is shared with the store); only our timers stop.
    this.closed = true;
    this.listeners.clear();
    this.takers.clear();
    this.removeBeforeCommit?.();
    this.removeBeforeCommit = undefined;
    this.stopPolling();
    if (this.dueTimer !== undefined) clearTimeout(this.dueTimer);
    this.dueTimer = undefined;
  }

  private emit(queue: string): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(queue);
      } catch {
        // A failing listener must not keep the others from hearing about work.
      }
    }
  }

  /** One timer, for the earliest delayed job. */
  private scheduleDue(at: number): void {
    if (this.closed || at >= this.dueAt) return;
    if (this.dueTimer !== undefined) clearTimeout(this.dueTimer);
    this.dueAt = at;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, at - this.now()));
    this.dueTimer = setTimeout(() => this.onDue(), delay);
    this.dueTimer.unref();
  }

  private armDueTimer(): void {
    if (this.closed || !this.db.open) return;
    const row = this.statements.nextDue.get(this.announcedUntil);
    if (row?.due !== null && row?.due !== undefined) this.scheduleDue(row.due);
  }

  private onDue(): void {
    this.dueTimer = undefined;
    this.dueAt = Number.POSITIVE_INFINITY;
    if (this.closed || !this.db.open) return;
    const now = this.now();
    const queues = this.statements.queuesDueBetween.all(this.announcedUntil, now);
    this.announcedUntil = now;
    for (const { queue } of queues) this.emit(queue);
    this.armDueTimer();
  }

  private startPolling(): void {
    if (this.pollTimer !== undefined || this.pollMs <= 0 || this.closed) return;
    this.dataVersion = this.readDataVersion();
    this.pollTimer = setInterval(() => this.poll(), this.pollMs);
    this.pollTimer.unref();
  }

  private stopPolling(): void {
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  private readDataVersion(): number {
    return Number(this.db.pragma("data_version", { simple: true }));
  }

  /** data_version changes only when another connection commits: then there may be new work or timers. */
  private poll(): void {
    if (this.closed || !this.db.open) return;
    const version = this.readDataVersion();
    if (version === this.dataVersion) return;
    this.dataVersion = version;
    for (const { queue } of this.statements.queuesDue.all(this.now())) this.emit(queue);
    this.armDueTimer();
  }
}
