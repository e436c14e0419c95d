import { bytesToBase64 } from "../internal/base64.js";
import { transformLeaves } from "../internal/transform.js";
import { APIError, ReplicantError } from "./errors.js";
import { FileOutput } from "./file-output.js";

/**
 * How `run()`, `predictions.create()` and friends send file inputs:
 * - `"upload"`: upload through `files.create` and pass the file's `urls.get`;
 * - `"data-uri"`: inline as a base64 `data:` URI (at most 10 MB in total per request);
 * - `"default"`: upload, and fall back to data URIs if the upload fails for a reason other than a 4xx.
 */
export type FileEncodingStrategy = "default" | "upload" | "data-uri";

/** A local file to upload, by path (Node, Bun and Deno). Build one with {@link fromPath}. */
export class LocalPath {
  constructor(readonly path: string) {}
  toJSON(): string {
    return this.path;
  }
}

/** Marks `path` as a local file input: `replicate.run(ref, { input: { image: fromPath("./cat.png") } })`. */
export function fromPath(path: string): LocalPath {
  return new LocalPath(path);
}

/** Anything the SDK turns into a file input. Strings (URLs, data URIs) are sent as they are. */
export type FileInput =
  | Blob
  | ArrayBuffer
  | ArrayBufferView
  | ReadableStream<Uint8Array>
  | LocalPath
  | URL
  | FileOutput
  | string;

/** Uploads one file and returns the URL to pass as the input. */
export type FileUploader = (file: Blob) => Promise<string>;

export const MAX_DATA_URI_BYTES = 10_000_000;

/** Replaces every file-like leaf of `input` according to `strategy`. Returns a copy; `input` is untouched. */
export async function encodeFileInputs(
  input: unknown,
  strategy: FileEncodingStrategy,
  upload: FileUploader,
): Promise<unknown> {
  if (!containsFiles(input)) return input;
  if (strategy === "data-uri") return encodeAsDataUris(input);
  if (strategy === "upload") return encodeByUpload(input, upload);
  try {
    return await encodeByUpload(input, upload);
  } catch (error) {
    if (error instanceof APIError && error.status >= 400 && error.status < 500) throw error;
    return encodeAsDataUris(input);
  }
}

function containsFiles(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(containsFiles);
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.values(value).some(containsFiles);
  }
  return (
    isFileLike(value) || value instanceof FileOutput || (value instanceof URL && value.protocol !== "file:")
  );
}

function isFileLike(value: unknown): boolean {
  return (
    value instanceof Blob ||
    value instanceof ArrayBuffer ||
    (ArrayBuffer.isView(value) && !(value instanceof DataView)) ||
    value instanceof ReadableStream ||
    value instanceof LocalPath ||
    (value instanceof URL && value.protocol === "file:")
  );
}

/** Outputs of earlier runs and URL objects become their URL text; file-like values become Blobs. */
async function toBlobOrPassThrough(value: unknown): Promise<Blob | unknown> {
  if (value instanceof FileOutput) return value.href;
  if (value instanceof URL && value.protocol !== "file:") return value.href;
  if (!isFileLike(value)) return value;
  if (value instanceof Blob) return value;
  if (value instanceof ArrayBuffer) return new Blob([value], { type: "application/octet-stream" });
  if (ArrayBuffer.isView(value)) {
    const view = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    return new Blob([view.slice()], { type: "application/octet-stream" });
  }
  if (value instanceof ReadableStream) return new Response(value).blob();
  const path = value instanceof LocalPath ? value.path : (value as URL);
  const { readPathAsFile } = await import("../node/paths.js");
  return readPathAsFile(path);
}

function encodeByUpload(input: unknown, upload: FileUploader): Promise<unknown> {
  return transformLeaves(input, async (leaf) => {
    const converted = await toBlobOrPassThrough(leaf);
    return converted instanceof Blob ? upload(converted) : converted;
  });
}

function encodeAsDataUris(input: unknown): Promise<unknown> {
  let totalBytes = 0;
  return transformLeaves(input, async (leaf) => {
    const converted = await toBlobOrPassThrough(leaf);
    if (!(converted instanceof Blob)) return converted;
    totalBytes += converted.size;
    if (totalBytes > MAX_DATA_URI_BYTES) {
      throw new ReplicantError(
        `File inputs total ${totalBytes} bytes, over the ${MAX_DATA_URI_BYTES}-byte limit for data URIs; ` +
          `use fileEncodingStrategy "upload" or pass URLs`,
      );
    }
    const bytes = new Uint8Array(await converted.arrayBuffer());
    return `data:${converted.type || "application/octet-stream"};base64,${bytesToBase64(bytes)}`;
  });
}
