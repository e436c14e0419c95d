import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  createReadStream,
  fstatSync,
  fsync,
  mkdirSync,
  openSync,
  read,
  readSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
} from "node:fs";
import { open, rm } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { SYNC_IO_BYTES } from "@replicant/runtime";
import type { BlobInfo, BlobStore } from "./types.js";

const fsyncFd = promisify(fsync);

/** One read on the thread pool into `buffer` from `position`; resolves to the bytes read. */
function readAt(fd: number, buffer: Buffer, position: number, offset = 0): Promise<number> {
  return new Promise((resolve, reject) =>
    read(fd, buffer, offset, buffer.byteLength - offset, position, (error, bytesRead) =>
      error ? reject(error) : resolve(bytesRead),
    ),
  );
}

/**
 * `size` bytes from the start of an open file (fewer if it is shorter): synchronously for a file just
 * written (in the page cache), or on the thread pool for one that may be cold on disk.
 */
async function readWhole(fd: number, size: number, onThreadPool: boolean): Promise<Buffer> {
  const bytes = Buffer.allocUnsafe(size);
  let length = 0;
  while (length < size) {
    const bytesRead = onThreadPool
      ? await readAt(fd, bytes, length, length)
      : readSync(fd, bytes, length, size - length, length);
    if (bytesRead === 0) break;
    length += bytesRead;
  }
  return bytes.subarray(0, length);
}

const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9/_.-]*$/;
/** Keys start with an alphanumeric, so no key can reach this directory. */
const TEMP_DIR = ".tmp";

export function isValidBlobKey(key: string): boolean {
  if (!KEY_PATTERN.test(key) || key.length > 1024) return false;
  return key.split("/").every((segment) => segment !== "" && segment !== "." && segment !== "..");
}

function assertKey(key: string): void {
  if (!isValidBlobKey(key))
    throw Object.assign(new Error(`invalid blob key: ${JSON.stringify(key)}`), { code: "INVALID_KEY" });
}

function isNotFound(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/** The size and sha256 of an open file of (at fstat) `size` bytes, read from its start. */
async function hashOpenFile(fd: number, size: number): Promise<BlobInfo> {
  const hash = createHash("sha256");
  let length = 0;
  if (size <= SYNC_IO_BYTES) {
    // One byte more than its size: reading none of it shows that the file did not grow.
    const bytes = await readWhole(fd, size + 1, false);
    hash.update(bytes);
    length = bytes.byteLength;
    if (length <= size) return { size: length, sha256: hash.digest("hex") };
  }
  // A larger file (or one that grew after its fstat) is read on the thread pool, 1 MB at a time.
  const buffer = Buffer.allocUnsafe(1 << 20);
  for (;;) {
    const bytesRead = await readAt(fd, buffer, length);
    if (bytesRead === 0) return { size: length, sha256: hash.digest("hex") };
    hash.update(buffer.subarray(0, bytesRead));
    length += bytesRead;
  }
}

/**
 * Blobs as files under a root directory. Writes go to a temp file that is fsynced and renamed into
 * place, so a key holds either nothing or a whole blob; paths that resolve outside the root (through
 * a symlink planted inside it) are refused. Metadata calls and small reads are synchronous (runtime/sync-io.ts).
 */
export class FsBlobStore implements BlobStore {
  private realRoot: string | undefined;

  constructor(private readonly root: string) {}

  private resolvedRoot(): string {
    if (this.realRoot === undefined) {
      mkdirSync(this.root, { recursive: true });
      this.realRoot = realpathSync.native(this.root);
    }
    return this.realRoot;
  }

  /** The file path of a key, checking that its existing part stays inside the root. */
  private pathOf(key: string): { root: string; path: string } {
    assertKey(key);
    const root = this.resolvedRoot();
    const path = join(root, ...key.split("/"));
    this.assertInside(root, dirname(path));
    return { root, path };
  }

  private assertInside(root: string, path: string): void {
    let real: string;
    try {
      real = realpathSync.native(path);
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    if (real !== root && !real.startsWith(root + sep)) {
      throw Object.assign(new Error("blob path escapes the store's root"), { code: "INVALID_KEY" });
    }
  }

  async put(key: string, data: Uint8Array | Readable | AsyncIterable<Uint8Array>): Promise<BlobInfo> {
    const { root, path } = this.pathOf(key);
    const tempDir = join(root, TEMP_DIR);
    mkdirSync(tempDir, { recursive: true });
    const tempPath = join(tempDir, `${randomBytes(12).toString("hex")}.part`);
    const hash = createHash("sha256");
    let size = 0;
    const file = await open(tempPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    try {
      try {
        const chunks: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array> =
          data instanceof Uint8Array ? [data] : data;
        for await (const chunk of chunks) {
          const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
          hash.update(bytes);
          size += bytes.byteLength;
          let written = 0;
          while (written < bytes.byteLength) {
            const { bytesWritten } = await file.write(bytes, written, bytes.byteLength - written);
            written += bytesWritten;
          }
        }
        await file.sync();
      } finally {
        await file.close();
      }
      mkdirSync(dirname(path), { recursive: true });
      // Re-check after mkdir: a symlink may have been planted on the way.
      this.assertInside(root, dirname(path));
      renameSync(tempPath, path);
    } catch (error) {
      await rm(tempPath, { force: true });
      throw error;
    }
    return { size, sha256: hash.digest("hex") };
  }

  /** Hashes and fsyncs the file, then renames it into place: no copy when it is on the store's disk. */
  async adopt(key: string, source: string): Promise<BlobInfo> {
    const { root, path } = this.pathOf(key);
    let info: BlobInfo;
    const fd = openSync(source, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const stats = fstatSync(fd);
      if (!stats.isFile()) throw new Error(`not a regular file: ${source}`);
      // The file is complete (its run returned it): the disk syncs it on the thread pool while this
      // thread hashes it. Both settle before the descriptor is closed.
      const [synced, hashed] = await Promise.allSettled([fsyncFd(fd), hashOpenFile(fd, stats.size)]);
      if (synced.status === "rejected") throw synced.reason;
      if (hashed.status === "rejected") throw hashed.reason;
      info = hashed.value;
    } finally {
      closeSync(fd);
    }
    mkdirSync(dirname(path), { recursive: true });
    this.assertInside(root, dirname(path));
    try {
      renameSync(source, path);
    } catch (error) {
      if ((error as { code?: unknown }).code !== "EXDEV") throw error;
      return this.put(key, createReadStream(source)); // another filesystem: copy
    }
    return info;
  }

  async get(key: string): Promise<Readable | undefined> {
    const { root, path } = this.pathOf(key);
    this.assertInside(root, path);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (error) {
      if (isNotFound(error) || (error as { code?: unknown }).code === "ELOOP") return undefined;
      throw error;
    }
    let handedOver = false;
    try {
      const info = fstatSync(fd);
      if (!info.isFile()) return undefined;
      // A small blob is one read and one chunk (a stream costs a thread-pool round trip per 64 KB). The
      // read stays on the thread pool: a blob asked for long after it was written may be cold on disk.
      if (info.size <= SYNC_IO_BYTES)
        return Readable.from([await readWhole(fd, info.size, true)], { objectMode: false });
      handedOver = true;
      return createReadStream("", { fd });
    } finally {
      if (!handedOver) closeSync(fd);
    }
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    const { root, path } = this.pathOf(key);
    this.assertInside(root, path);
    try {
      const info = statSync(path);
      return info.isFile() ? { size: info.size } : undefined;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    const { path } = this.pathOf(key);
    try {
      // unlink removes a symlink itself, never its target.
      unlinkSync(path);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  async close(): Promise<void> {}
}
