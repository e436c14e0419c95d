// The WAL checkpointer's thread: its own connection to the database, a PASSIVE checkpoint (it never
// blocks writers) once the WAL holds `thresholdFrames` frames not yet copied into the database. A
// checkpoint copies the WAL's pages into the database and fsyncs both files, so it runs here rather
// than in a commit on the server's event loop. It waits for a threshold, as SQLite's own automatic
// checkpoint does, because each completed checkpoint makes the next write restart the WAL, and that
// write fsyncs the WAL's new header on the event loop: checkpointing every interval put one fsync in
// nearly every request of a lightly loaded server.
import { closeSync, openSync, readSync } from "node:fs";
import { endianness } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import BetterSqlite3 from "better-sqlite3";

const { path, intervalMs, thresholdFrames } = workerData as {
  path: string;
  intervalMs: number;
  thresholdFrames: number;
};
const db = new BetterSqlite3(path);
db.pragma("busy_timeout = 5000");
// Prepared once: db.pragma() compiles its statement at every call.
const passive = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");

// The wal-index header at the start of the `-shm` file (SQLite's documented WAL format, native byte
// order): two 48-byte copies of {iVersion 3007000 at 0, isInit at 12, mxFrame at 16, …}, then the
// checkpoint info with nBackfill at 96.
const header = Buffer.alloc(100);
const littleEndian = endianness() === "LE";
const u32 = (offset: number) => (littleEndian ? header.readUInt32LE(offset) : header.readUInt32BE(offset));
let shm: number | undefined;

/** Frames in the WAL not yet checkpointed, or undefined when the header cannot be read consistently. */
function pendingFrames(): number | undefined {
  try {
    shm ??= openSync(`${path}-shm`, "r");
    if (readSync(shm, header, 0, header.length, 0) < header.length) return undefined;
  } catch {
    return undefined;
  }
  // The copies differ while a commit is writing them (or the file is not a wal-index we know).
  if (!header.subarray(0, 48).equals(header.subarray(48, 96))) return undefined;
  if (u32(0) !== 3007000 || header[12] !== 1) return undefined;
  const mxFrame = u32(16);
  const nBackfill = u32(96);
  return mxFrame >= nBackfill ? mxFrame - nBackfill : undefined;
}

function checkpoint(): void {
  try {
    passive.get();
  } catch (error) {
    parentPort?.postMessage({ error: error instanceof Error ? error.message : String(error) });
  }
}

/** Checkpoints past the threshold, and whenever the header cannot be read (as it did every interval). */
function tick(): void {
  const pending = pendingFrames();
  if (pending === undefined || pending >= thresholdFrames) checkpoint();
}

const timer = setInterval(tick, intervalMs);
parentPort?.on("message", (message: { stop?: boolean }) => {
  if (!message.stop) return;
  clearInterval(timer);
  checkpoint();
  db.close();
  // A thread's descriptors belong to the process: they outlive the thread unless closed.
  if (shm !== undefined) closeSync(shm);
  parentPort?.postMessage({ stopped: true });
  parentPort?.close();
});
parentPort?.postMessage({ ready: true });
