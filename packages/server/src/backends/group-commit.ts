import type BetterSqlite3 from "better-sqlite3";

interface PendingWrite {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Work at the end of a batch's transaction, before its COMMIT. It returns what to call once the batch has
 * settled (true: committed; false: rolled back), or nothing.
 */
export type BeforeCommit = () => ((committed: boolean) => void) | undefined;

const committers = new WeakMap<BetterSqlite3.Database, GroupCommitter>();

/**
 * Group commit for one SQLite connection: the writes issued in one turn of the event loop — by the store
 * and the queue alike — run, in order, in one IMMEDIATE transaction and resolve after its COMMIT (a
 * commit costs more than a small write). Each write that throws is undone alone: single statements are
 * atomic, and multi-statement writes wrap themselves in a savepoint.
 */
export class GroupCommitter {
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  private readonly beforeCommits = new Set<BeforeCommit>();
  /** What the batch being written asked to be told once it settles. */
  private settling: ((committed: boolean) => void)[] = [];
  private readonly batch: BetterSqlite3.Transaction<
    (writes: PendingWrite[]) => { ok: boolean; value: unknown }[]
  >;

  private constructor(db: BetterSqlite3.Database) {
    this.batch = db.transaction((writes: PendingWrite[]) => {
      const outcomes = writes.map((write) => {
        try {
          return { ok: true, value: write.work() };
        } catch (error) {
          return { ok: false, value: error };
        }
      });
      for (const beforeCommit of this.beforeCommits) {
        try {
          const settled = beforeCommit();
          if (settled) this.settling.push(settled);
        } catch {
          // Its own statement failed (and, being one statement, changed nothing): the batch still commits.
        }
      }
      return outcomes;
    });
  }

  /** Runs `work` at the end of every batch's transaction, before its COMMIT. Returns its removal. */
  onBeforeCommit(work: BeforeCommit): () => void {
    this.beforeCommits.add(work);
    return () => this.beforeCommits.delete(work);
  }

  /** The connection's committer, shared by everything that writes through it. */
  static for(db: BetterSqlite3.Database): GroupCommitter {
    let committer = committers.get(db);
    if (!committer) {
      committer = new GroupCommitter(db);
      committers.set(db, committer);
    }
    return committer;
  }

  write<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const writes = this.pending;
    this.pending = [];
    if (writes.length === 0) return;
    let outcomes: { ok: boolean; value: unknown }[];
    try {
      // IMMEDIATE takes the write lock up front, so a read-then-write never fails to upgrade.
      outcomes = this.batch.immediate(writes);
    } catch (error) {
      // BEGIN or COMMIT failed (busy, I/O, closed): nothing of this batch is committed.
      this.settle(false);
      for (const write of writes) write.reject(error);
      return;
    }
    this.settle(true);
    for (let i = 0; i < writes.length; i++) {
      const outcome = outcomes[i] as { ok: boolean; value: unknown };
      const write = writes[i] as PendingWrite;
      if (outcome.ok) write.resolve(outcome.value);
      else write.reject(outcome.value);
    }
  }

  private settle(committed: boolean): void {
    const settling = this.settling;
    this.settling = [];
    for (const settled of settling) {
      try {
        settled(committed);
      } catch (error) {
        // The batch's own writes are settled below whatever a listener does.
        console.error("group commit: a listener failed:", error);
      }
    }
  }
}
