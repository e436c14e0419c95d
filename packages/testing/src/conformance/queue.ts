import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JobQueue } from "@replicant/server";
import { sleep, uniqueId, waitFor } from "./fixtures.js";

export type QueueFactory = () => Promise<{ queue: JobQueue; cleanup(): Promise<void> }>;

/** The JobQueue contract. `factory` returns a fresh, empty queue for each test. */
export function queueConformance(name: string, factory: QueueFactory): void {
  async function withQueue(body: (queue: JobQueue, q: string) => Promise<void>): Promise<void> {
    const { queue, cleanup } = await factory();
    try {
      await body(queue, uniqueId("queue-"));
    } finally {
      await cleanup();
    }
  }

  describe(`JobQueue conformance: ${name}`, () => {
    it("enqueues, leases, completes and counts", () =>
      withQueue(async (queue, q) => {
        assert.deepEqual(await queue.counts(q), { waiting: 0, active: 0 });
        await queue.enqueue({ id: "job-1", queue: q });
        await queue.enqueue({ id: "job-2", queue: q });
        assert.deepEqual(await queue.counts(q), { waiting: 2, active: 0 });
        const leased = await queue.lease(q, "worker-a", 30_000, 1);
        assert.equal(leased.length, 1);
        const job = leased[0]!;
        assert.equal(job.id, "job-1");
        assert.equal(job.queue, q);
        assert.equal(job.attempts, 1);
        assert.equal(typeof job.token, "string");
        assert.ok(job.token.length >= 8, "tokens must be unguessable");
        assert.deepEqual(await queue.counts(q), { waiting: 1, active: 1 });
        assert.equal(await queue.complete(job.id, job.token), true);
        assert.equal(await queue.complete(job.id, job.token), false, "completed twice");
        assert.deepEqual(await queue.counts(q), { waiting: 1, active: 0 });
        // A completed id can be enqueued again.
        await queue.enqueue({ id: "job-1", queue: q });
        assert.deepEqual(await queue.counts(q), { waiting: 2, active: 0 });
        assert.deepEqual(await queue.lease(q, "worker-a", 30_000, 0), []);
        assert.deepEqual(await queue.lease(q, "worker-a", 30_000, Number.NaN), []);
        // A fractional limit takes its whole part; each limit works alike (SQLite keeps a statement each).
        assert.equal((await queue.lease(q, "worker-a", 30_000, 1.9)).length, 1);
        assert.equal((await queue.lease(q, "worker-a", 30_000, 1_000_000)).length, 1);
      }));

    it("ignores an enqueue of an id that is waiting or active", () =>
      withQueue(async (queue, q) => {
        await queue.enqueue({ id: "dup", queue: q });
        await queue.enqueue({ id: "dup", queue: q, priority: 10 });
        assert.deepEqual(await queue.counts(q), { waiting: 1, active: 0 });
        const [job] = await queue.lease(q, "w", 30_000, 10);
        assert.ok(job);
        await queue.enqueue({ id: "dup", queue: q });
        assert.deepEqual(await queue.counts(q), { waiting: 0, active: 1 });
        assert.deepEqual(await queue.lease(q, "w", 30_000, 10), []);
      }));

    it("keeps queues apart", () =>
      withQueue(async (queue, q) => {
        const other = `${q}-other`;
        await queue.enqueue({ id: "a", queue: q });
        await queue.enqueue({ id: "b", queue: other });
        assert.deepEqual(
          (await queue.lease(q, "w", 30_000, 10)).map((j) => j.id),
          ["a"],
        );
        assert.deepEqual(await queue.counts(other), { waiting: 1, active: 0 });
      }));

    it("leases by priority, then in enqueue order", () =>
      withQueue(async (queue, q) => {
        const jobs: [string, number][] = [
          ["low-1", 0],
          ["high-1", 10],
          ["mid-1", 5],
          ["low-2", 0],
          ["high-2", 10],
          ["negative", -3],
          ["mid-2", 5],
        ];
        for (const [id, priority] of jobs) await queue.enqueue({ id, queue: q, priority });
        const first = await queue.lease(q, "w", 30_000, 3);
        assert.deepEqual(
          first.map((j) => j.id),
          ["high-1", "high-2", "mid-1"],
        );
        const rest = [];
        for (;;) {
          const [job] = await queue.lease(q, "w", 30_000, 1);
          if (job === undefined) break;
          rest.push(job.id);
        }
        assert.deepEqual(rest, ["mid-2", "low-1", "low-2", "negative"]);
      }));

    it("never gives one job to two concurrent leasers", () =>
      withQueue(async (queue, q) => {
        for (let i = 0; i < 60; i++) await queue.enqueue({ id: `job-${i}`, queue: q });
        const batches = await Promise.all(
          Array.from({ length: 8 }, (_, worker) => queue.lease(q, `worker-${worker}`, 30_000, 10)),
        );
        const ids = batches.flat().map((j) => j.id);
        assert.equal(new Set(ids).size, ids.length, "a job was leased twice");
        assert.equal(ids.length, 60);
        assert.ok(
          batches.every((b) => b.length <= 10),
          "a lease exceeded its limit",
        );
        const tokens = batches.flat().map((j) => j.token);
        assert.equal(new Set(tokens).size, tokens.length, "two leases share a token");
        assert.deepEqual(await queue.counts(q), { waiting: 0, active: 60 });
      }));

    it("recovers an expired lease, and fences the old token out", () =>
      withQueue(async (queue, q) => {
        await queue.enqueue({ id: "job", queue: q });
        const [first] = await queue.lease(q, "worker-a", 50, 1);
        assert.ok(first);
        assert.deepEqual(await queue.recoverExpired(), [], "recovered a live lease");
        await sleep(120);
        assert.deepEqual(await queue.recoverExpired(), [{ id: "job", attempts: 1 }]);
        assert.deepEqual(await queue.recoverExpired(), []);
        assert.deepEqual(await queue.counts(q), { waiting: 1, active: 0 });
        const [second] = await queue.lease(q, "worker-b", 30_000, 1);
        assert.ok(second);
        assert.equal(second.id, "job");
        assert.equal(second.attempts, 2);
        assert.notEqual(second.token, first.token);
        assert.equal(await queue.complete("job", first.token), false, "a stale token completed the job");
        assert.equal(
          await queue.extend("job", first.token, 30_000),
          false,
          "a stale token extended the lease",
        );
        assert.equal(await queue.release("job", first.token, 0), false, "a stale token released the job");
        assert.deepEqual(await queue.counts(q), { waiting: 0, active: 1 });
        assert.equal(await queue.complete("job", second.token), true);
        assert.deepEqual(await queue.counts(q), { waiting: 0, active: 0 });
      }));

    it("does not recover a lease that was extended", () =>
      withQueue(async (queue, q) => {
        await queue.enqueue({ id: "job", queue: q });
        const [job] = await queue.lease(q, "w", 80, 1);
        assert.ok(job);
        assert.equal(await queue.extend(job.id, job.token, 30_000), true);
        await sleep(150);
        assert.deepEqual(await queue.recoverExpired(), []);
        assert.equal(await queue.complete(job.id, job.token), true);
      }));

    it("does not lease a delayed job early, and announces it when due", () =>
      withQueue(async (queue, q) => {
        const heard: string[] = [];
        const stop = queue.onAvailable((name) => heard.push(name));
        try {
          const enqueuedAt = Date.now();
          await queue.enqueue({ id: "later", queue: q, delayMs: 300 });
          assert.deepEqual(await queue.lease(q, "w", 30_000, 10), [], "a delayed job was leased early");
          assert.deepEqual(await queue.counts(q), { waiting: 1, active: 0 });
          heard.length = 0;
          await waitFor(() => heard.includes(q), 3000, "onAvailable for the delayed job");
          assert.ok(Date.now() - enqueuedAt >= 250, "announced before it was due");
          // onAvailable means a job *may* be available (JobQueue's contract): a backend whose own promotion
          // of delayed jobs lags its timer by a few ms is allowed a moment before the lease finds it.
          let leased = await queue.lease(q, "w", 30_000, 10);
          for (let tries = 0; leased.length === 0 && tries < 20; tries++) {
            await new Promise((resolve) => setTimeout(resolve, 25));
            leased = await queue.lease(q, "w", 30_000, 10);
          }
          assert.deepEqual(
            leased.map((j) => j.id),
            ["later"],
          );
        } finally {
          stop();
        }
      }));

    it("announces enqueues and releases, and releases with a delay", () =>
      withQueue(async (queue, q) => {
        const heard: string[] = [];
        const stop = queue.onAvailable((name) => heard.push(name));
        const throwing = queue.onAvailable(() => {
          throw new Error("listener failure");
        });
        try {
          await queue.enqueue({ id: "job", queue: q });
          await waitFor(() => heard.includes(q), 2000, "onAvailable after enqueue");
          const [job] = await queue.lease(q, "w", 30_000, 1);
          assert.ok(job);
          heard.length = 0;
          assert.equal(await queue.release(job.id, job.token, 0), true);
          await waitFor(() => heard.includes(q), 2000, "onAvailable after release");
          const [again] = await queue.lease(q, "w", 30_000, 1);
          assert.ok(again);
          assert.equal(again.attempts, 2);
          assert.notEqual(again.token, job.token);

          heard.length = 0;
          assert.equal(await queue.release(again.id, again.token, 250), true);
          assert.deepEqual(
            await queue.lease(q, "w", 30_000, 1),
            [],
            "a job released with a delay was leased early",
          );
          await waitFor(() => heard.includes(q), 3000, "onAvailable when the released job is due");
          const [third] = await queue.lease(q, "w", 30_000, 1);
          assert.equal(third?.attempts, 3);
        } finally {
          stop();
          throwing();
        }
        // After unsubscribing, nothing more is heard.
        heard.length = 0;
        await queue.enqueue({ id: "quiet", queue: q });
        await sleep(50);
        assert.deepEqual(heard, []);
      }));

    it("removes waiting and active jobs", () =>
      withQueue(async (queue, q) => {
        await queue.enqueue({ id: "waiting", queue: q });
        await queue.enqueue({ id: "active", queue: q, priority: 1 });
        await queue.enqueue({ id: "delayed", queue: q, delayMs: 60_000 });
        const [active] = await queue.lease(q, "w", 30_000, 1);
        assert.ok(active);
        assert.equal(active.id, "active");
        assert.equal(await queue.remove("waiting"), true);
        assert.equal(await queue.remove("active"), true);
        assert.equal(await queue.remove("delayed"), true);
        assert.equal(await queue.remove("waiting"), false);
        assert.equal(await queue.remove("missing"), false);
        assert.equal(await queue.complete("active", active.token), false, "completed a removed job");
        assert.deepEqual(await queue.counts(q), { waiting: 0, active: 0 });
        assert.deepEqual(await queue.lease(q, "w", 30_000, 10), []);
      }));
  });
}
