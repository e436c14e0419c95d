// Enqueue→start latency of the SQLite job queue in an R4 data directory, the director's way: a job is
// enqueued, onAvailable fires, the listener leases on the next turn; timed until the lease returns it.
// Uses its own queue name, so the jobs already waiting (up to 1,000,000) are "elsewhere" and the queue
// is idle. argv: <dataDir> <samples>. Prints {p50Us, p99Us}.
import { openSqlite, SqliteJobQueue } from "@replicant/server";

const [dataDir, samplesText] = process.argv.slice(2);
const samples = Number(samplesText ?? 300);
const { db } = openSqlite(`${dataDir}/replicant.db`, "normal");
const queue = new SqliteJobQueue(db, { pollMs: 0 });
const times = [];
let pending;
queue.onAvailable((name) => {
  if (name !== "bench-idle" || !pending) return;
  setImmediate(async () => {
    const jobs = await queue.lease("bench-idle", "bench", 60_000, 1);
    if (jobs.length > 0 && pending) {
      const done = pending;
      pending = undefined;
      await queue.complete(jobs[0].id, jobs[0].token);
      done(jobs[0]);
    }
  });
});
for (let i = 0; i < samples + 20; i++) {
  const started = process.hrtime.bigint();
  const leased = new Promise((resolve) => {
    pending = resolve;
  });
  await queue.enqueue({ id: `idle-${i}-${Date.now()}`, queue: "bench-idle" });
  await leased;
  if (i >= 20) times.push(Number(process.hrtime.bigint() - started) / 1000);
  await new Promise((r) => setTimeout(r, 2));
}
times.sort((a, b) => a - b);
await queue.close();
db.close();
process.stdout.write(
  `${JSON.stringify({ p50Us: times[times.length >> 1], p99Us: times[Math.floor(times.length * 0.99)] })}\n`,
);
