// The WAL checkpointer's thread: its own connection to the database, a PASSIVE checkpoint (it never
// blocks writers) each interval. A checkpoint copies the WAL's pages into the database and fsyncs both
// files, so it runs here rather than in a commit on the server's event loop.
import { parentPort, workerData } from "node:worker_threads";
import BetterSqlite3 from "better-sqlite3";

const { path, intervalMs } = workerData as { path: string; intervalMs: number };
const db = new BetterSqlite3(path);
db.pragma("busy_timeout = 5000");
// Prepared once: db.pragma() compiles its statement at every call.
const passive = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");

function checkpoint(): void {
  try {
    passive.get();
  } catch (error) {
    parentPort?.postMessage({ error: error instanceof Error ? error.message : String(error) });
  }
}

const timer = setInterval(checkpoint, intervalMs);
parentPort?.on("message", (message: { stop?: boolean }) => {
  if (!message.stop) return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort?.postMessage({ stopped: true });
  parentPort?.close();
});
parentPort?.postMessage({ ready: true });
