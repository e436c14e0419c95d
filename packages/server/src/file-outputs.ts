import { closeSync, createReadStream, fstatSync, lstatSync, readFileSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { extname, resolve, sep } from "node:path";
import { contentTypeOf, openBeneath, SYNC_IO_BYTES } from "@replicant/runtime";
import type { FileRecord, PredictionRecord } from "./backends/types.js";
import type { ServerContext } from "./context.js";
import { newId } from "./ids.js";
import { type FileValue, isFileValue } from "./runners/types.js";

function contentTypeFor(path: string): string {
  return contentTypeOf(path) ?? "application/octet-stream";
}

/** A regular file (not a link) under the run's own scratch directory, which is deleted after the run. */
function isOwnScratchFile(path: string, scratchDir: string | undefined): boolean {
  if (!scratchDir || !resolve(path).startsWith(resolve(scratchDir) + sep)) return false;
  return lstatSync(path).isFile();
}

/** One `store` call's settings, and the files it stored so far by path. */
interface StoreRun {
  scratchDir: string | undefined;
  streamed: WeakMap<FileValue, Promise<string>> | undefined;
  pending: FileRecord[] | undefined;
  byPath: Map<string, Promise<string>>;
}

/**
 * Turns the FileValues in a finished prediction's output into files owned by the prediction's account,
 * and replaces each with the URL the client receives, or with a data URI of its bytes (then it is not
 * stored). Files in `scratchDir` (the run's own, removed after it) are moved into the blob store when it
 * can; any other path is copied.
 */
export class FileOutputs {
  constructor(private readonly ctx: ServerContext) {}

  /**
   * `streamed` maps the FileValues already stored while the run streamed them (the same objects come
   * back in its final output) to their URLs, so that they are stored once. With `pending`, the new file
   * records are collected there instead of inserted, for the caller to insert with the update that
   * refers to them (one transaction, one commit fewer).
   */
  async store(
    record: PredictionRecord,
    output: unknown,
    scratchDir?: string,
    streamed?: WeakMap<FileValue, Promise<string>>,
    pending?: FileRecord[],
  ): Promise<unknown> {
    // One stored file per path within one output: a file named twice gets one URL (and a file moved
    // into the store by the first is not looked for again).
    return this.storeAll(record, output, { scratchDir, streamed, pending, byPath: new Map() });
  }

  private async storeAll(record: PredictionRecord, output: unknown, run: StoreRun): Promise<unknown> {
    if (output === null || typeof output !== "object") return output;
    if (isFileValue(output)) {
      const earlier = run.streamed?.get(output);
      if (earlier) return earlier;
      const path = resolve(output.path);
      let url = run.byPath.get(path);
      if (!url) {
        url = this.storeOne(record, output, run.scratchDir, run.pending);
        run.byPath.set(path, url);
      }
      run.streamed?.set(output, url);
      return url;
    }
    if (Array.isArray(output)) return Promise.all(output.map((item) => this.storeAll(record, item, run)));
    const result: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(output)) result[key] = await this.storeAll(record, value, run);
    return result;
  }

  /**
   * Stores one file and returns its record, for callers that need more than the URL (trainings). The
   * record is inserted, or pushed to `pending` for the caller to insert.
   */
  async storeFile(
    record: PredictionRecord,
    file: FileValue,
    scratchDir?: string,
    pending?: FileRecord[],
    /** A descriptor of a contained runner's file, already opened beneath its directories (closed here). */
    openedFd?: number,
  ): Promise<FileRecord> {
    const { blobs, store, config } = this.ctx;
    const contentType = file.content_type ?? contentTypeFor(file.path);
    const id = newId();
    const blobKey = `outputs/${record.id}/${id}${extname(file.path).replace(/[^A-Za-z0-9.]/g, "")}`;
    let info: { size: number; sha256: string };
    if (file.confinedTo) {
      // A contained runner's file: read through a descriptor opened beneath its directories, never moved.
      const fd = openedFd ?? openBeneath(file.path, file.confinedTo);
      info = await blobs.put(blobKey, createReadStream("", { fd, autoClose: true }));
    } else {
      statSync(file.path);
      info =
        blobs.adopt && isOwnScratchFile(file.path, scratchDir)
          ? await blobs.adopt(blobKey, file.path)
          : await blobs.put(blobKey, createReadStream(file.path));
    }
    const now = this.ctx.now();
    const fileRecord: FileRecord = {
      id,
      account_id: record.account_id,
      name: `output${extname(file.path)}`,
      content_type: contentType,
      size: info.size,
      sha256: info.sha256,
      metadata: { prediction_id: record.id },
      blob_key: blobKey,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + config.retentionMs).toISOString(),
    };
    if (pending) pending.push(fileRecord);
    else await store.createFile(fileRecord);
    return fileRecord;
  }

  private async storeOne(
    record: PredictionRecord,
    file: FileValue,
    scratchDir: string | undefined,
    pending: FileRecord[] | undefined,
  ): Promise<string> {
    const { config, urls } = this.ctx;
    const inline = config.fileOutputs === "auto" && urls.base.startsWith("http:");
    // A contained runner's file is read only through a descriptor opened beneath its directories, once.
    const fd = file.confinedTo ? openBeneath(file.path, file.confinedTo) : undefined;
    let handedOver = false;
    try {
      const size = !inline
        ? Number.POSITIVE_INFINITY
        : fd !== undefined
          ? fstatSync(fd).size
          : statSync(file.path).size;
      if (size <= config.dataUriLimit) {
        // Inline, the output is the data URI itself, kept (and removed at retention) with the prediction:
        // no blob, file record or fsync besides, since nothing would ever refer to them.
        const bytes =
          fd !== undefined || size <= SYNC_IO_BYTES
            ? readFileSync(fd ?? file.path)
            : await readFile(file.path);
        const contentType = file.content_type ?? contentTypeFor(file.path);
        return `data:${contentType};base64,${bytes.toString("base64")}`;
      }
      handedOver = true;
      return this.downloadUrl(record, await this.storeFile(record, file, scratchDir, pending, fd));
    } finally {
      if (fd !== undefined && !handedOver) closeSync(fd);
    }
  }

  async downloadUrl(record: PredictionRecord, file: FileRecord): Promise<string> {
    const owner = await this.ctx.store.getAccountById(record.account_id);
    const expiry = Math.floor(Date.parse(file.expires_at ?? this.ctx.now().toISOString()) / 1000);
    return this.ctx.urls.fileDownload(owner?.username ?? "", file.id, expiry);
  }
}
