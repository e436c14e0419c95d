/**
 * Files up to this size are read or written with one synchronous call, and metadata calls (stat,
 * open, mkdir, rename, realpath) are synchronous everywhere on a prediction's path: on a local disk
 * each takes 5–80 µs, where a thread-pool round trip costs ~100 µs of latency on our machines (and
 * promise bookkeeping on the main thread). Larger reads and writes, and fsync, stay on the thread
 * pool, so that a big file or a slow disk never holds the event loop.
 */
export const SYNC_IO_BYTES = 256 * 1024;
