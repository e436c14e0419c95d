/**
 * Files up to this size that a prediction has just written are read or written with one synchronous
 * call (by the runner and by the server, which imports this), and metadata calls (stat, open, mkdir,
 * rename, realpath) on a prediction's path are synchronous:
 * on a local disk each takes 5–80 µs, where a thread-pool round trip costs ~100 µs of latency on our
 * machines (and promise bookkeeping on the main thread). Larger reads and writes, reads of blobs that
 * may be cold on disk (downloads), and fsync stay on the thread pool, so that a big file or a slow disk
 * never holds the event loop.
 */
export const SYNC_IO_BYTES = 256 * 1024;
