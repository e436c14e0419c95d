// Crash durability of the embedded SQLite backends: a child process writes predictions and jobs and
// reports each one after its promise resolved; it is SIGKILLed mid-stream, and every reported write
// must be found when the file is reopened.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type * as BackendsModule from "../../server/src/backends/index.js";

const backendsUrl = new URL("../../../server/dist/src/backends/index.js", import.meta.url).href;
const backends = (await import(backendsUrl)) as typeof BackendsModule;

const CHILD = `
import { KyselyStore, SqliteJobQueue, openSqlite } from ${JSON.stringify(backendsUrl)};
const [path, durability] = process.argv.slice(2);
const { db, kysely } = openSqlite(path, durability);
const store = new KyselyStore(kysely, { dialect: "sqlite", sqlite: db });
await store.migrate();
const queue = new SqliteJobQueue(db);
const now = () => new Date().toISOString();
for (let i = 0; ; i++) {
  const id = "pred-" + i;
  const created = now();
  await store.insertPrediction(
    {
      id, kind: "prediction", account_id: "acc", model: "o/m", version_id: "v", version_label: "v",
      deployment: null, destination: null, input: { i }, output: null, logs: "", error: null,
      status: "starting", source: "api", data_removed: false, created_at: created, started_at: null,
      completed_at: null, deadline: null, metrics: null, webhook: null, webhook_events_filter: null,
      attempt: 0, streaming: false,
    },
    {
      idempotency: { account_id: "acc", key: "key-" + i, request_hash: "h", prediction_id: id, created_at: created },
      outbox: [{ id: "out-" + i, prediction_id: id, account_id: "acc", event: "start", webhook_id: "msg-" + i,
        url: "https://example.com", body: "{}", next_attempt_at: created, created_at: created }],
    },
  );
  process.stdout.write("P " + id + "\\n");
  await queue.enqueue({ id: "job-" + i, queue: "predictions" });
  process.stdout.write("J job-" + i + "\\n");
  const updated = await store.updatePrediction(id, { status: "processing", attempt: 1, started_at: now() }, { statuses: ["starting"] });
  if (updated) process.stdout.write("U " + id + "\\n");
}
`;

async function crashChild(dir: string, durability: "normal" | "full", killAfter: number): Promise<string[]> {
  const script = join(dir, "child.mjs");
  await writeFile(script, CHILD);
  const child = spawn(process.execPath, [script, join(dir, "replicant.db"), durability], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.on("exit", (code, signal) => resolve(signal ?? code)),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.split("\n").length > killAfter) {
        child.kill("SIGKILL");
        resolve();
      }
    });
    child.on("exit", () => reject(new Error(`the child exited before it was killed: ${stderr}`)));
  });
  assert.equal(await exited, "SIGKILL");
  // Only whole lines: a write reported on a cut-off line may or may not have been committed.
  const lines = stdout.split("\n");
  lines.pop();
  return lines;
}

describe("SQLite backends survive SIGKILL", () => {
  for (const durability of ["normal", "full"] as const) {
    it(`keeps every reported commit (${durability})`, async () => {
      const dir = await mkdtemp(join(tmpdir(), "replicant-durability-"));
      try {
        const lines = await crashChild(dir, durability, 600);
        const predictions = lines.filter((l) => l.startsWith("P ")).map((l) => l.slice(2));
        const jobs = lines.filter((l) => l.startsWith("J ")).map((l) => l.slice(2));
        const updates = lines.filter((l) => l.startsWith("U ")).map((l) => l.slice(2));
        assert.ok(predictions.length >= 100, `only ${predictions.length} predictions reported`);

        const { db, kysely } = backends.openSqlite(join(dir, "replicant.db"), durability);
        const store = new backends.KyselyStore(kysely, { dialect: "sqlite", sqlite: db });
        await store.migrate();
        const queue = new backends.SqliteJobQueue(db);
        try {
          assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
          for (const id of predictions) {
            const prediction = await store.getPrediction(id);
            assert.ok(prediction, `prediction ${id} was reported committed but is missing`);
            const index = id.slice("pred-".length);
            assert.equal((await store.getIdempotency("acc", `key-${index}`))?.prediction_id, id);
            assert.equal((await store.listOutbox(id)).length, 1, `outbox row of ${id} is missing`);
          }
          for (const id of updates) {
            assert.equal((await store.getPrediction(id))?.status, "processing", `update of ${id} was lost`);
          }
          const counts = await queue.counts("predictions");
          assert.ok(counts.waiting >= jobs.length, `${counts.waiting} jobs waiting, ${jobs.length} reported`);
          const leased = new Set((await queue.lease("predictions", "w", 60_000, 100_000)).map((j) => j.id));
          for (const id of jobs) assert.ok(leased.has(id), `job ${id} was reported enqueued but is missing`);
        } finally {
          await queue.close();
          await store.close();
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
