import { existsSync } from "node:fs";
import { lstat, mkdir, readFile, realpath, rename, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { Unpack } from "tar";
import type { BlobStore } from "./backends/types.js";
import { newId } from "./ids.js";

const MAX_ENTRIES = 20_000;
const MAX_BYTES = 2 * 1024 * 1024 * 1024;
/** Set-user-id, set-group-id, group-write and other-write. */
const READ_ONLY_FOR_OTHERS_MASK = 0o6022;

/** A path inside a bundle, given by a user: relative, no `..`, no absolute or drive paths. */
export function isSafeRelativePath(path: string): boolean {
  if (
    path.length === 0 ||
    path.length > 1024 ||
    isAbsolute(path) ||
    /^[A-Za-z]:/.test(path) ||
    path.includes("\\")
  ) {
    return false;
  }
  return !path.split("/").some((part) => part === ".." || part === "");
}

/**
 * Unpacks a predictor bundle (a .tar.gz of a predictor directory) into `target`, refusing anything that
 * could land outside it: absolute paths, `..`, links, devices. Entry count and bytes are capped; modes lose
 * their set-id and group/other write bits.
 * Returns the directory; an existing complete extraction is reused.
 */
export async function extractBundle(blobs: BlobStore, blobKey: string, target: string): Promise<string> {
  if (existsSync(join(target, ".complete"))) return target;
  const stream = await blobs.get(blobKey);
  if (!stream) throw new Error("The model's bundle is missing from storage");
  const staging = `${target}.${newId()}.tmp`;
  await mkdir(staging, { recursive: true });
  let entries = 0;
  let bytes = 0;
  const refusals: string[] = [];
  let unpack: Unpack | undefined;
  try {
    unpack = new Unpack({
      cwd: staging,
      strict: true,
      preservePaths: false,
      maxDepth: 64,
      filter: (path, entry) => {
        const type = "type" in entry ? entry.type : "File";
        entries++;
        bytes += "size" in entry && typeof entry.size === "number" ? entry.size : 0;
        if (entries > MAX_ENTRIES || bytes > MAX_BYTES) {
          refusals.push("the bundle is too large");
          return false;
        }
        if (type !== "File" && type !== "Directory" && type !== "OldFile" && type !== "ContiguousFile") {
          refusals.push(`${path}: ${type} entries are not allowed`);
          return false;
        }
        if (!isSafeRelativePath(path.replace(/\/$/, "").replace(/^\.\//, ""))) {
          refusals.push(`${path}: paths must stay inside the bundle`);
          return false;
        }
        // Whatever the archive says: no set-id bits, nothing writable by group or others (the runners).
        const written = entry as { mode?: number };
        if (typeof written.mode === "number") written.mode &= ~READ_ONLY_FOR_OTHERS_MASK;
        return true;
      },
    });
    await pipeline(stream, unpack);
    if (refusals.length > 0) throw new Error(`The bundle was refused: ${refusals.slice(0, 3).join("; ")}`);
    await linkRuntime(staging);
    await writeFile(join(staging, ".complete"), "");
    await rm(target, { recursive: true, force: true });
    await mkdir(dirname(target), { recursive: true });
    await rename(staging, target);
    return target;
  } catch (error) {
    // The unpacker may still be writing entries it had started: remove the staging directory once it
    // has stopped, so that nothing is left behind.
    if (unpack) await stopped(unpack);
    await rm(staging, { recursive: true, force: true });
    throw new Error(extractionFailure(error, staging));
  }
}

/** Resolves once an unpack stream has closed (or after a bound, if it never does). */
function stopped(stream: NodeJS.EventEmitter & { closed?: boolean; destroyed?: boolean }): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 5000);
    const done = () => {
      clearTimeout(timer);
      // Writes queued before the close settle on the thread pool: let them land, then remove.
      setImmediate(resolve);
    };
    stream.once("close", done);
    stream.once("finish", done);
    stream.once("end", done);
  });
}

/** What went wrong, for the user who pushed the bundle: the cause, never a path on the server. */
function extractionFailure(error: unknown, staging: string): string {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  if (message?.startsWith("The bundle was refused")) return message;
  if (code === "TAR_BAD_ARCHIVE") return "The bundle is not a .tar.gz archive";
  if (code?.startsWith("Z_") || /incorrect header check|unexpected end of file/i.test(message ?? ""))
    return "The bundle is not a valid gzip file (truncated or corrupt)";
  if (code === "TAR_ENTRY_INVALID" || code === "TAR_ABORT")
    return `The bundle's tar data is corrupt (${(message ?? "").replace(/^TAR_\w+: /, "")})`;
  if (code === "ENOSPC") return "The server ran out of disk space while unpacking the bundle";
  const text = String(message ?? error)
    .split(staging)
    .join("<bundle>");
  return `The bundle could not be unpacked: ${text.replace(/(?:\/[\w.@-]+){2,}/g, "<path>")}`;
}

/** Resolves a predictor path inside an extracted bundle, refusing one that escapes it (e.g. by symlink). */
export async function predictorInBundle(root: string, predictor: string): Promise<string> {
  if (!isSafeRelativePath(predictor))
    throw new Error(`The predictor path ${predictor} is not a relative path inside the bundle`);
  const path = resolve(root, predictor);
  const real = await realpath(path).catch(() => undefined);
  const realRoot = await realpath(root);
  if (!real || (real !== realRoot && !real.startsWith(realRoot + sep)) || !(await lstat(real)).isFile()) {
    throw new Error(`The bundle has no file ${predictor}`);
  }
  return real;
}

/** Bundles import @replicant/runtime; it resolves to this server's copy. */
async function linkRuntime(root: string): Promise<void> {
  if (existsSync(join(root, "node_modules", "@replicant", "runtime"))) return;
  let dir = dirname(fileURLToPath(import.meta.resolve("@replicant/runtime")));
  while (dir !== dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (
      existsSync(manifest) &&
      (JSON.parse(await readFile(manifest, "utf8")) as { name?: string }).name === "@replicant/runtime"
    ) {
      await mkdir(join(root, "node_modules", "@replicant"), { recursive: true });
      await symlink(dir, join(root, "node_modules", "@replicant", "runtime"), "dir");
      return;
    }
    dir = dirname(dir);
  }
}
