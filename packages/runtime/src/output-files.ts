/** Turns what predict() returned into JSON plus FileValue markers, writing file contents to the scratch dir. */
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeWebReadableStream } from "node:stream/web";
import { contentTypeOf, extensionOf } from "./mime.js";
import type { OutputSpec } from "./outputs.js";
import { type FileValue, isFileValue } from "./runner-types.js";
import { SYNC_IO_BYTES } from "./sync-io.js";

let counter = 0;
const prefix = randomBytes(3).toString("hex");

function fileValue(path: string, contentType?: string): FileValue {
  const type = contentType || contentTypeOf(path);
  return type ? { __replicant_file__: true, path, content_type: type } : { __replicant_file__: true, path };
}

function freshName(extension: string): string {
  return `output-${prefix}-${++counter}${extension}`;
}

async function writeBytes(path: string, bytes: Uint8Array): Promise<void> {
  if (bytes.byteLength <= SYNC_IO_BYTES) writeFileSync(path, bytes);
  else await writeFile(path, bytes);
}

function isNodeReadable(value: unknown): value is Readable {
  return value instanceof Readable;
}

async function writeFileLike(
  value: Blob | Uint8Array | Readable | ReadableStream<Uint8Array>,
  scratchDir: string,
) {
  // The server makes the directory only for versions that declare files; bytes returned anyway still land.
  mkdirSync(scratchDir, { recursive: true });
  if (value instanceof Blob) {
    const name = "name" in value && typeof value.name === "string" && value.name ? basename(value.name) : "";
    const path = join(
      scratchDir,
      name ? `${prefix}-${++counter}-${name}` : freshName(extensionOf(value.type)),
    );
    await writeBytes(path, new Uint8Array(await value.arrayBuffer()));
    return fileValue(path, value.type);
  }
  if (value instanceof Uint8Array) {
    const path = join(scratchDir, freshName(""));
    await writeBytes(path, value);
    return fileValue(path, "application/octet-stream");
  }
  const path = join(scratchDir, freshName(""));
  const source = isNodeReadable(value) ? value : Readable.fromWeb(value as NodeWebReadableStream<Uint8Array>);
  await pipeline(source, createWriteStream(path));
  return fileValue(path, "application/octet-stream");
}

function isBinary(value: unknown): value is Blob | Uint8Array | Readable | ReadableStream<Uint8Array> {
  return (
    value instanceof Blob ||
    value instanceof Uint8Array ||
    value instanceof Readable ||
    (typeof ReadableStream !== "undefined" && value instanceof ReadableStream)
  );
}

/**
 * Walks `value` alongside its declaration: strings declared as files become FileValues of that path,
 * bytes/blobs/streams anywhere become files in `scratchDir`, everything else passes through.
 */
export async function materializeOutput(
  value: unknown,
  spec: OutputSpec | undefined,
  scratchDir: string,
): Promise<unknown> {
  if (value === null || value === undefined) return value;
  if (typeof value !== "object") {
    return spec?.kind === "file" && typeof value === "string" ? fileValue(resolve(value)) : value;
  }
  if (isFileValue(value)) return value;
  if (isBinary(value)) return writeFileLike(value, scratchDir);
  if (Array.isArray(value)) {
    const items = spec?.kind === "array" || spec?.kind === "iterator" ? spec.items : undefined;
    return Promise.all(value.map((item) => materializeOutput(item, items, scratchDir)));
  }
  if (value instanceof Date) return value.toISOString();
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    result[key] = await materializeOutput(item, spec?.properties?.[key], scratchDir);
  }
  return result;
}
