// Builds an R4 data directory: one real queued hello-world prediction created through the API (worker
// off), then N-1 copies of it inserted with SQL into the predictions table and the SQLite job queue, as
// if N predictions had been created and none had started. argv: <dataDir> <N>. Prints {predictionId}.
import { openSqlite } from "@replicant/server";
import { startTestServer } from "@replicant/testing";

const [dataDir, countText] = process.argv.slice(2);
const count = Number(countText);
const server = await startTestServer({ dataDir, worker: false });
const response = await fetch(`${server.apiUrl}/models/replicate/hello-world/predictions`, {
  method: "POST",
  headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
  body: JSON.stringify({ input: { text: "bench" } }),
});
const prediction = await response.json();
await server.close();

const { db } = openSqlite(`${dataDir}/replicant.db`, "normal");
const columns = db
  .prepare("SELECT name FROM pragma_table_info('predictions')")
  .all()
  .map((c) => c.name);
const select = columns
  .map((c) =>
    c === "id"
      ? "printf('bench%021d', n) AS id"
      : c === "created_at"
        ? "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', n)) AS created_at"
        : c,
  )
  .join(", ");
const started = performance.now();
const BATCH = 100_000;
for (let from = 1; from < count; from += BATCH) {
  const to = Math.min(count - 1, from + BATCH - 1);
  db.transaction(() => {
    db.prepare(
      `WITH RECURSIVE seq(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM seq WHERE n < ?)
       INSERT INTO predictions (${columns.join(", ")}) SELECT ${select} FROM seq, predictions p WHERE p.id = ?`,
    ).run(from, to, prediction.id);
    db.prepare(
      `WITH RECURSIVE seq(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM seq WHERE n < ?)
       INSERT INTO jobs (id, queue, priority, available_at, state, enqueued_at)
       SELECT printf('bench%021d', n), 'predictions', 0, 0, 'waiting', 0 FROM seq`,
    ).run(from, to);
  })();
}
db.pragma("wal_checkpoint(TRUNCATE)");
const rows = db.prepare("SELECT count(*) AS n FROM predictions").get().n;
const jobs = db.prepare("SELECT count(*) AS n FROM jobs WHERE state = 'waiting'").get().n;
db.close();
process.stdout.write(
  `${JSON.stringify({ predictionId: prediction.id, rows, jobs, seconds: (performance.now() - started) / 1000 })}\n`,
);
