// The conformance suites against the embedded backends: SQLite store (both execution paths), the
// SQLite lease queue, the local blob directory and the in-process event bus.
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readdir, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type * as BackendsModule from "../../server/src/backends/index.js";
import { makeAccount, makePrediction } from "../src/conformance/fixtures.js";
import {
  blobStoreConformance,
  eventBusConformance,
  queueConformance,
  storeConformance,
} from "../src/index.js";

// The server's package entry does not export the backend classes; load them from its build.
const backends = (await import(
  new URL("../../../server/dist/src/backends/index.js", import.meta.url).href
)) as typeof BackendsModule;
const {
  FsBlobStore,
  KyselyStore,
  MemoryEventBus,
  SqliteCheckpointer,
  SqliteJobQueue,
  createSqliteStore,
  openSqlite,
} = backends;

async function tempDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "replicant-backends-"));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

storeConformance("SQLite, prepared statements", async () => {
  const { dir, remove } = await tempDir();
  const store = await createSqliteStore(join(dir, "store.db"), "normal");
  return {
    store,
    async cleanup() {
      await store.close();
      await remove();
    },
  };
});

storeConformance("SQLite through Kysely (the PostgreSQL code path)", async () => {
  const { dir, remove } = await tempDir();
  const { kysely } = openSqlite(join(dir, "store.db"), "full");
  const store = new KyselyStore(kysely, { dialect: "sqlite" });
  return {
    store,
    async cleanup() {
      await store.close();
      await remove();
    },
  };
});

queueConformance("SQLite lease queue", async () => {
  const { dir, remove } = await tempDir();
  const { db } = openSqlite(join(dir, "queue.db"), "normal");
  const queue = new SqliteJobQueue(db, { pollMs: 50 });
  return {
    queue,
    async cleanup() {
      await queue.close();
      db.close();
      await remove();
    },
  };
});

blobStoreConformance("local directory", async () => {
  const { dir, remove } = await tempDir();
  const blobs = new FsBlobStore(join(dir, "blobs"));
  return {
    blobs,
    async cleanup() {
      await blobs.close();
      await remove();
    },
  };
});

eventBusConformance("in-process", async () => {
  const bus = new MemoryEventBus();
  return { bus, cleanup: () => bus.close() };
});

describe("embedded backends, beyond the contract", () => {
  it("refuses blob paths that leave the root through a symlink", async () => {
    const { dir, remove } = await tempDir();
    try {
      const outside = join(dir, "outside");
      await mkdir(outside);
      await writeFile(join(outside, "secret"), "secret");
      const blobs = new FsBlobStore(join(dir, "blobs"));
      await blobs.put("ok", Buffer.from("x"));
      await symlink(outside, join(dir, "blobs", "link"));
      await symlink(join(outside, "secret"), join(dir, "blobs", "file-link"));
      await assert.rejects(blobs.get("link/secret"));
      await assert.rejects(blobs.stat("link/secret"));
      await assert.rejects(blobs.put("link/new", Buffer.from("x")));
      const direct = await blobs.get("file-link").catch(() => undefined);
      assert.equal(direct, undefined, "read a file outside the root through a symlink");
      await blobs.delete("file-link");
      const { readFile } = await import("node:fs/promises");
      assert.equal(await readFile(join(outside, "secret"), "utf8"), "secret");
    } finally {
      await remove();
    }
  });

  it("keeps store rows and queued jobs in one file across a reopen", async () => {
    const { dir, remove } = await tempDir();
    try {
      const path = join(dir, "replicant.db");
      let opened = openSqlite(path, "normal");
      let store = new KyselyStore(opened.kysely, { dialect: "sqlite", sqlite: opened.db });
      await store.migrate();
      let queue = new SqliteJobQueue(opened.db);
      await store.createAccount({
        id: "a1",
        username: "alice",
        type: "user",
        name: null,
        github_url: null,
        avatar_url: null,
        webhook_secret: "whsec_x",
        created_at: "2025-01-01T00:00:00.000Z",
      });
      await queue.enqueue({ id: "job-1", queue: "predictions", priority: 2 });
      await queue.enqueue({ id: "job-2", queue: "predictions", delayMs: 60_000 });
      const [leased] = await queue.lease("predictions", "w", 60_000, 1);
      assert.equal(leased?.id, "job-1");
      await queue.close();
      await store.close();

      opened = openSqlite(path, "normal");
      store = new KyselyStore(opened.kysely, { dialect: "sqlite", sqlite: opened.db });
      await store.migrate();
      queue = new SqliteJobQueue(opened.db);
      assert.equal((await store.getAccountByUsername("alice"))?.id, "a1");
      assert.deepEqual(await queue.counts("predictions"), { waiting: 1, active: 1 });
      assert.ok(leased);
      assert.equal(await queue.complete("job-1", leased.token), true, "the lease token survives a reopen");
      await queue.close();
      await store.close();
    } finally {
      await remove();
    }
  });

  it("serves a finished prediction from memory; another process's write shows within a second", async () => {
    const { dir, remove } = await tempDir();
    const path = join(dir, "replicant.db");
    const openStore = async () => {
      const opened = openSqlite(path, "normal");
      const store = new KyselyStore(opened.kysely, { dialect: "sqlite", sqlite: opened.db });
      await store.migrate();
      return store;
    };
    const reader = await openStore();
    const writer = await openStore();
    try {
      const account = makeAccount();
      await writer.createAccount(account);
      const running = makePrediction(account, { status: "processing" });
      await writer.insertPrediction(running);
      assert.equal((await reader.getPrediction(running.id))?.status, "processing");
      await writer.updatePrediction(
        running.id,
        { status: "succeeded", output: "done" },
        { statuses: ["processing"] },
      );
      // Unfinished records are never kept: the reader sees the other store's write at once.
      const finished = await reader.getPrediction(running.id);
      assert.equal(finished?.status, "succeeded");
      assert.equal(await reader.getPrediction(running.id), finished, "a finished record is kept and shared");
      assert.ok(Object.isFrozen(finished), "a shared record cannot be changed by one of its holders");

      await writer.updatePrediction(
        running.id,
        { output: null, data_removed: true },
        { statuses: ["succeeded"] },
      );
      assert.equal((await reader.getPrediction(running.id))?.data_removed, false, "kept up to a second");
      await new Promise((resolve) => setTimeout(resolve, 1100));
      assert.equal((await reader.getPrediction(running.id))?.data_removed, true);
      assert.equal((await writer.getPrediction(running.id))?.output, null);
    } finally {
      await reader.close();
      await writer.close();
      await remove();
    }
  });

  it("leases a job for its taker in the transaction that enqueues it, and announces only the rest", async () => {
    const { dir, remove } = await tempDir();
    const opened = openSqlite(join(dir, "replicant.db"), "normal");
    const store = new KyselyStore(opened.kysely, { dialect: "sqlite", sqlite: opened.db });
    await store.migrate();
    const queue = new SqliteJobQueue(opened.db, { sharesConnectionWithStore: true, pollMs: 0 });
    const { GroupCommitter } = (await import(
      new URL("../../../server/dist/src/backends/group-commit.js", import.meta.url).href
    )) as typeof import("../../server/src/backends/group-commit.js");
    let batches = 0;
    const stopCounting = GroupCommitter.for(opened.db).onBeforeCommit(() => {
      batches++;
      return undefined;
    });
    const announced: string[] = [];
    queue.onAvailable((name) => announced.push(name));
    let capacity = 1;
    const taken: { id: string; token: string; attempts: number }[] = [];
    const stopTaking = queue.leaseOnEnqueue("predictions", {
      workerId: "w",
      leaseMs: 60_000,
      capacity: () => capacity,
      take: (jobs) => {
        taken.push(...jobs);
        capacity -= jobs.length;
      },
    });
    try {
      const account = makeAccount();
      await store.createAccount(account);
      const first = makePrediction(account);
      batches = 0;
      let enqueueSettled = false;
      const enqueued = queue.enqueue({ id: first.id, queue: "predictions" }).then(() => {
        enqueueSettled = true;
      });
      await Promise.all([store.insertPrediction(first), enqueued]);
      assert.equal(batches, 1, "the record, its job and its lease in one transaction");
      assert.deepEqual(
        taken.map((job) => [job.id, job.attempts]),
        [[first.id, 1]],
      );
      assert.equal(enqueueSettled, true);
      assert.deepEqual(await queue.counts("predictions"), { waiting: 0, active: 1 });
      assert.deepEqual(announced, [], "a job taken on enqueue is not announced");
      assert.equal(await queue.complete(first.id, taken[0]?.token ?? ""), true, "its lease token holds");

      // No slot free: the job waits and is announced; a delayed job is never taken on enqueue.
      capacity = 0;
      await queue.enqueue({ id: "full", queue: "predictions" });
      capacity = 5;
      await queue.enqueue({ id: "later", queue: "predictions", delayMs: 60_000 });
      assert.equal(taken.length, 1);
      assert.deepEqual(announced, ["predictions"]);
      // The next enqueue with slots free takes the older waiting job first, as any lease does.
      await queue.enqueue({ id: "next", queue: "predictions" });
      assert.deepEqual(
        taken.slice(1).map((job) => job.id),
        ["full", "next"],
      );
      assert.deepEqual(announced, ["predictions"]);
      // Another queue, and this one once the taker is gone, announce as before.
      await queue.enqueue({ id: "other", queue: "deadlines" });
      stopTaking();
      await queue.enqueue({ id: "after", queue: "predictions" });
      assert.equal(taken.length, 3);
      assert.deepEqual(announced, ["predictions", "deadlines", "predictions"]);
      assert.deepEqual(await queue.counts("predictions"), { waiting: 2, active: 2 });
    } finally {
      stopCounting();
      await queue.close();
      await store.close();
      await remove();
    }
  });

  it("checkpoints the WAL from its own thread once it holds enough frames, with the connection's own checkpoints off until it stops", async () => {
    const { dir, remove } = await tempDir();
    const path = join(dir, "replicant.db");
    const opened = openSqlite(path, "normal");
    const checkpointer = await SqliteCheckpointer.start(opened.db, path, 20, 1000);
    try {
      assert.ok(checkpointer, "the checkpoint thread started");
      assert.equal(opened.db.pragma("wal_autocheckpoint", { simple: true }), 0);
      opened.db.exec("CREATE TABLE t (x TEXT)");
      const insert = opened.db.prepare("INSERT INTO t VALUES (?)");
      // The database file alone (a copy, without its WAL) holds the rows once a checkpoint copied them.
      // A copy taken while a checkpoint writes the file can be torn: that reads as undefined, not a count.
      const rowsInDatabaseFile = async (): Promise<number | undefined> => {
        const copy = join(dir, `copy-${Date.now()}.db`);
        await copyFile(path, copy);
        try {
          const reader = openSqlite(copy, "normal");
          try {
            const table = reader.db.prepare("SELECT name FROM sqlite_master WHERE name = 't'").get();
            return table ? (reader.db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n : 0;
          } finally {
            reader.db.close();
          }
        } catch (error) {
          if (/malformed|not a database/.test(String(error))) return undefined;
          throw error;
        }
      };
      // Below the threshold (each row fills a page: some 200 frames) the thread leaves the WAL alone:
      // a checkpoint would make the next commit restart the WAL, with an fsync on the writer's thread.
      for (let i = 0; i < 200; i++) insert.run("x".repeat(4000));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await rowsInDatabaseFile(), 0, "no checkpoint below the threshold, 15 intervals later");
      // One transaction, so that the thread sees all of it past the threshold at once (row by row, a tick
      // in between could checkpoint part of it and leave a rest below the threshold).
      opened.db.transaction(() => {
        for (let i = 0; i < 1000; i++) insert.run("x".repeat(4000));
      })();
      const deadline = Date.now() + 5000;
      let rows = await rowsInDatabaseFile();
      while (rows !== 1200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        rows = await rowsInDatabaseFile();
      }
      assert.equal(rows, 1200, "past the threshold, every frame is in the database file");
      // The thread's own descriptor of the -shm file (Linux shows them in /proc) is closed when it stops.
      const shmDescriptors = async () => {
        const fds = await readdir("/proc/self/fd").catch(() => undefined);
        if (!fds) return undefined;
        const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => "")));
        return targets.filter((target) => target === `${path}-shm`).length;
      };
      const before = await shmDescriptors();
      await checkpointer.stop();
      const after = await shmDescriptors();
      if (before !== undefined) assert.equal(after, before - 1, "the thread closed its -shm descriptor");
      assert.equal(opened.db.pragma("wal_autocheckpoint", { simple: true }), 4000, "restored");
    } finally {
      opened.db.close();
      await remove();
    }
  });

  it("rejects a malformed pagination cursor", async () => {
    const { dir, remove } = await tempDir();
    const store = await createSqliteStore(join(dir, "store.db"), "normal");
    try {
      await assert.rejects(
        store.listPredictions({ account_id: "a", kind: "prediction", limit: 10, cursor: "not-a-cursor" }),
        (error: unknown) => (error as { code?: unknown }).code === "INVALID_CURSOR",
      );
    } finally {
      await store.close();
      await remove();
    }
  });
});
