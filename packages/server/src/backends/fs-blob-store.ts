import { createHash, randomBytes } from "node:crypto";
import { constants, createReadStream } from "node:fs";
import { mkdir, open, realpath, rename, rm, stat, unlink } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import type { Readable } from "node:stream";
import type { BlobInfo, BlobStore } from "./types.js";

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

/**
 * Blobs as files under a root directory. Writes go to a temp file that is fsynced and renamed into
 * place, so a key holds either nothing or a whole blob; paths that resolve outside the root (through
 * a symlink planted inside it) are refused.
 */
export class FsBlobStore implements BlobStore {
  private realRoot: Promise<string> | undefined;

  constructor(private readonly root: string) {}

  private async resolvedRoot(): Promise<string> {
    this.realRoot ??= mkdir(this.root, { recursive: true }).then(() => realpath(this.root));
    return this.realRoot;
  }

  /** The file path of a key, checking that its existing part stays inside the root. */
  private async pathOf(key: string): Promise<{ root: string; path: string }> {
    assertKey(key);
    const root = await this.resolvedRoot();
    const path = join(root, ...key.split("/"));
    await this.assertInside(root, dirname(path));
    return { root, path };
  }

  private async assertInside(root: string, path: string): Promise<void> {
    let real: string;
    try {
      real = await realpath(path);
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    if (real !== root && !real.startsWith(root + sep)) {
      throw Object.assign(new Error("blob path escapes the store's root"), { code: "INVALID_KEY" });
    }
  }

  async put(key: string, data: Uint8Array | Readable | AsyncIterable<Uint8Array>): Promise<BlobInfo> {
    const { root, path } = await this.pathOf(key);
    const tempDir = join(root, TEMP_DIR);
    await mkdir(tempDir, { recursive: true });
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
      await mkdir(dirname(path), { recursive: true });
      // Re-check after mkdir: a symlink may have been planted on the way.
      await this.assertInside(root, dirname(path));
      await rename(tempPath, path);
    } catch (error) {
      await rm(tempPath, { force: true });
      throw error;
    }
    return { size, sha256: hash.digest("hex") };
  }

  /** Hashes and fsyncs the file, then renames it into place: no copy when it is on the store's disk. */
  async adopt(key: string, source: string): Promise<BlobInfo> {
    const { root, path } = await this.pathOf(key);
    const hash = createHash("sha256");
    let size = 0;
    const file = await open(source, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const info = await file.stat();
      if (!info.isFile()) throw new Error(`not a regular file: ${source}`);
      const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(info.size, 1 << 20)));
      for (;;) {
        const { bytesRead } = await file.read(buffer, 0, buffer.byteLength, null);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        size += bytesRead;
      }
      await file.sync();
    } finally {
      await file.close();
    }
    await mkdir(dirname(path), { recursive: true });
    await this.assertInside(root, dirname(path));
    try {
      await rename(source, path);
    } catch (error) {
      if ((error as { code?: unknown }).code !== "EXDEV") throw error;
      return this.put(key, createReadStream(source)); // another filesystem: copy
    }
    return { size, sha256: hash.digest("hex") };
  }

  async get(key: string): Promise<Readable | undefined> {
    const { root, path } = await this.pathOf(key);
    await this.assertInside(root, path);
    try {
      const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      if (!(await file.stat()).isFile()) {
        await file.close();
        return undefined;
      }
      return file.createReadStream();
    } catch (error) {
      if (isNotFound(error) || (error as { code?: unknown }).code === "ELOOP") return undefined;
      throw error;
    }
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    const { root, path } = await this.pathOf(key);
    await this.assertInside(root, path);
    try {
      const info = await stat(path);
      return info.isFile() ? { size: info.size } : undefined;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    const { path } = await this.pathOf(key);
    try {
      // unlink removes a symlink itself, never its target.
      await unlink(path);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  async close(): Promise<void> {}
}
