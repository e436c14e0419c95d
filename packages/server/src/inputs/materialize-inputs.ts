import { randomUUID } from "node:crypto";
import { createWriteStream, writeFileSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SYNC_IO_BYTES } from "@replicant/runtime";
import type { GuardedRequestInit } from "../net/guarded-fetch.js";
import { describeUrl } from "../net/url-guard.js";
import { fileExtensionFor } from "./file-extensions.js";

/** A file of this server's own Files API, as resolveOwnFile returns it. */
export interface OwnFile {
  stream: Readable;
  contentType?: string | undefined;
  /** The uploaded name; only its extension is used. */
  name?: string | undefined;
}

/** What materializeInputs needs of a fetch: the guarded fetch satisfies it. */
export type InputFetch = (
  url: string,
  init: GuardedRequestInit,
) => Promise<{
  ok: boolean;
  status: number;
  statusText: string;
  headers: { get(name: string): string | null };
  take(): ReadableStream<Uint8Array> | null;
  discard(): Promise<void>;
}>;

export interface MaterializeInputsOptions {
  /** The prediction's input, already validated against the schema. It is not modified. */
  input: Record<string, unknown>;
  /** The version's OpenAPI schema (Cog shape: components.schemas.Input.properties). */
  schema: Record<string, unknown>;
  /** An existing scratch directory owned by the caller, who removes it after the prediction. */
  directory: string;
  /** The guarded fetch (SSRF checks at connect time, redirects re-checked). */
  fetch: InputFetch;
  /** This server's public base URL: its `/v1/files/<id>` URLs are read from storage, never over HTTP. */
  publicUrl: string;
  /**
   * Reads one of this server's files for the prediction's account: undefined when it does not exist
   * or is not the caller's. `url` is the full URL given, so a signed `/download?…` URL can be checked.
   */
  resolveOwnFile: (id: string, url: URL) => Promise<Readable | OwnFile | undefined>;
  /** Per file, for downloads and own files. Default 100 MB (Replicate's upload limit). */
  maxFileBytes?: number;
  /** Per data URI, decoded. Default 10,000,000 bytes (the official clients' cap). */
  maxDataUriBytes?: number;
  /** Per download; the fetch's own default otherwise. */
  timeoutMs?: number;
  /** Downloads at once. Default 4. */
  concurrency?: number;
  /** Cancels every download (e.g. the prediction was canceled). */
  signal?: AbortSignal;
}

/** A file input that could not be read; the message is meant for the prediction's `error`. */
export class InputFileError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "InputFileError";
  }
}

const DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024;
const DEFAULT_MAX_DATA_URI_BYTES = 10_000_000;

type FieldKind = "file" | "file-array";

/**
 * The file inputs of a Cog schema: properties with `format: "uri"` (also inside anyOf/oneOf/allOf or
 * a local $ref), and arrays whose items are such. `schemaName` is "TrainingInput" for trainings.
 */
export function fileInputFields(
  schema: Record<string, unknown>,
  schemaName = "Input",
): Map<string, FieldKind> {
  const fields = new Map<string, FieldKind>();
  const schemas = asRecord(asRecord(schema.components)?.schemas);
  const properties = asRecord(asRecord(schemas?.[schemaName])?.properties);
  if (!properties) return fields;
  const resolve = (node: unknown): Record<string, unknown> | undefined => {
    const record = asRecord(node);
    const ref = record?.$ref;
    if (typeof ref === "string" && ref.startsWith("#/components/schemas/")) {
      return asRecord(schemas?.[ref.slice("#/components/schemas/".length)]);
    }
    return record;
  };
  const isUri = (node: unknown, depth = 0): boolean => {
    const record = resolve(node);
    if (!record || depth > 4) return false;
    if (record.format === "uri") return true;
    return ["anyOf", "oneOf", "allOf"].some(
      (key) => Array.isArray(record[key]) && (record[key] as unknown[]).some((n) => isUri(n, depth + 1)),
    );
  };
  for (const [name, property] of Object.entries(properties)) {
    if (isUri(property)) fields.set(name, "file");
    else if (isUri(resolve(property)?.items)) fields.set(name, "file-array");
  }
  return fields;
}

interface Job {
  field: string;
  value: string;
  assign: (path: string) => void;
}

/**
 * Downloads every file input into `directory` and returns a copy of the input whose file fields are
 * absolute local paths. Accepts data: URIs, this server's file URLs and http(s) URLs (through the
 * guarded fetch). Local names are random, with an extension taken from the content type or URL,
 * never a path from the user. On any failure the files written so far are removed and an
 * InputFileError explains which input failed and why.
 */
export async function materializeInputs(options: MaterializeInputsOptions): Promise<Record<string, unknown>> {
  const fields = fileInputFields(options.schema);
  const result: Record<string, unknown> = { ...options.input };
  const jobs: Job[] = [];
  for (const [field, kind] of fields) {
    const value = result[field];
    if (kind === "file" && typeof value === "string") {
      jobs.push({ field, value, assign: (path) => (result[field] = path) });
    } else if (kind === "file-array" && Array.isArray(value)) {
      const copy = [...value];
      result[field] = copy;
      copy.forEach((item, index) => {
        if (typeof item === "string") {
          jobs.push({ field: `${field}[${index}]`, value: item, assign: (path) => (copy[index] = path) });
        }
      });
    }
  }
  if (jobs.length === 0) return result;

  const cancel = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, cancel.signal]) : cancel.signal;
  const written: string[] = [];
  const context: Context = { options, signal, written };
  let failure: unknown;
  let next = 0;
  const worker = async () => {
    while (failure === undefined && next < jobs.length) {
      const job = jobs[next++]!;
      try {
        job.assign(await materializeOne(job, context));
      } catch (error) {
        if (failure === undefined) {
          failure = error;
          cancel.abort();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 4, jobs.length) }, worker));
  if (failure !== undefined) {
    await Promise.all(written.map((path) => rm(path, { force: true })));
    if (options.signal?.aborted) throw new InputFileError("", "Downloading the input files was canceled");
    throw failure;
  }
  return result;
}

interface Context {
  options: MaterializeInputsOptions;
  signal: AbortSignal;
  written: string[];
}

async function materializeOne(job: Job, context: Context): Promise<string> {
  const { field, value } = job;
  if (/^data:/i.test(value)) return writeDataUri(field, value, context);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InputFileError(field, `Input "${field}" must be a URL or a data URI (got "${shorten(value)}")`);
  }
  const own = new URL(context.options.publicUrl);
  if (url.origin === own.origin) return copyOwnFile(field, url, own, context);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InputFileError(
      field,
      `Input "${field}" uses the unsupported scheme "${url.protocol}"; use http, https or data`,
    );
  }
  return download(field, url, context);
}

async function writeDataUri(field: string, value: string, context: Context): Promise<string> {
  const comma = value.indexOf(",");
  if (comma === -1) throw new InputFileError(field, `Input "${field}" is not a valid data URI (no comma)`);
  const meta = value.slice(5, comma);
  const payload = value.slice(comma + 1);
  const isBase64 = /;\s*base64\s*$/i.test(meta);
  const contentType = (meta.split(";")[0] ?? "").trim().toLowerCase() || "text/plain";
  const limit = context.options.maxDataUriBytes ?? DEFAULT_MAX_DATA_URI_BYTES;
  const tooLarge = () =>
    new InputFileError(
      field,
      `Input "${field}" is a data URI larger than the limit of ${limit} bytes; upload the file instead`,
    );
  let data: Buffer;
  if (isBase64) {
    const compact = payload
      .replace(/%([0-9a-f]{2})/gi, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
      .replace(/\s+/g, "");
    if (Math.floor((compact.length * 3) / 4) - 2 > limit) throw tooLarge();
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(compact)) {
      throw new InputFileError(field, `Input "${field}" is a data URI whose base64 content is not valid`);
    }
    data = Buffer.from(compact, "base64");
  } else {
    if (payload.length > limit * 3) throw tooLarge();
    data = percentDecode(payload);
  }
  if (data.length > limit) throw tooLarge();
  const path = scratchPath(context, fileExtensionFor({ contentType }));
  if (data.length <= SYNC_IO_BYTES) writeFileSync(path, data, { flag: "wx", mode: 0o600 });
  else await writeFile(path, data, { flag: "wx", mode: 0o600 });
  return path;
}

async function copyOwnFile(field: string, url: URL, own: URL, context: Context): Promise<string> {
  const prefix = `${own.pathname.replace(/\/+$/, "")}/v1/files/`;
  const match = url.pathname.startsWith(prefix)
    ? /^([A-Za-z0-9_-]+)(?:\/download)?\/?$/.exec(url.pathname.slice(prefix.length))
    : null;
  if (!match?.[1]) {
    throw new InputFileError(
      field,
      `Input "${field}" points at this server but not at a file (${describeUrl(url)})`,
    );
  }
  const id = match[1];
  const found = await context.options.resolveOwnFile(id, url);
  if (!found) throw new InputFileError(field, `Input "${field}": file ${id} was not found`);
  const file: OwnFile = found instanceof Readable ? { stream: found } : found;
  const path = scratchPath(context, fileExtensionFor({ contentType: file.contentType, name: file.name }));
  await streamToFile(field, file.stream, path, context, `file ${id}`);
  return path;
}

async function download(field: string, url: URL, context: Context): Promise<string> {
  const { options, signal } = context;
  const init: GuardedRequestInit = { maxBytes: options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES, signal };
  if (options.timeoutMs !== undefined) init.timeoutMs = options.timeoutMs;
  const shown = describeUrl(url);
  try {
    const response = await options.fetch(url.href, init);
    if (!response.ok) {
      await response.discard();
      const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
      throw new InputFileError(field, `Could not download input "${field}": ${shown} answered ${status}`);
    }
    const body = response.take();
    const extension = fileExtensionFor({
      contentType: response.headers.get("content-type"),
      name: url.pathname,
    });
    const path = scratchPath(context, extension);
    await streamToFile(field, body ? Readable.from(chunks(body)) : Readable.from([]), path, context, shown);
    return path;
  } catch (error) {
    if (error instanceof InputFileError) throw error;
    throw new InputFileError(field, `Could not download input "${field}": ${messageOf(error)}`);
  }
}

async function* chunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** Streams to a new file (never overwriting), capped at maxFileBytes. */
async function streamToFile(
  field: string,
  source: Readable,
  path: string,
  context: Context,
  what: string,
): Promise<void> {
  const limit = context.options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  let size = 0;
  const cap = new Transform({
    transform(chunk: Buffer, _encoding: string, callback: TransformCallback) {
      size += chunk.length;
      if (size > limit) {
        callback(
          new InputFileError(field, `Input "${field}": ${what} is larger than the limit of ${limit} bytes`),
        );
        return;
      }
      callback(null, chunk);
    },
  });
  try {
    await pipeline(source, cap, createWriteStream(path, { flags: "wx", mode: 0o600 }), {
      signal: context.signal,
    });
  } catch (error) {
    if (error instanceof InputFileError) throw error;
    throw new InputFileError(field, `Could not read input "${field}": ${messageOf(error)}`);
  }
}

function scratchPath(context: Context, extension: string): string {
  const path = join(context.options.directory, `${randomUUID()}${extension}`);
  context.written.push(path);
  return path;
}

/** Percent-decodes to bytes; a stray "%" stays as it is, as browsers do. */
function percentDecode(text: string): Buffer {
  const parts: Buffer[] = [];
  let last = 0;
  for (const match of text.matchAll(/%([0-9a-f]{2})/gi)) {
    parts.push(
      Buffer.from(text.slice(last, match.index), "utf8"),
      Buffer.from([Number.parseInt(match[1]!, 16)]),
    );
    last = match.index + 3;
  }
  parts.push(Buffer.from(text.slice(last), "utf8"));
  return Buffer.concat(parts);
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function messageOf(error: unknown): string {
  if (error instanceof Error && error.name === "AbortError") return "the download was canceled";
  return error instanceof Error ? error.message : String(error);
}

function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}
