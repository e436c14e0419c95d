// Node-only helpers. The core reaches them only through `await import("../node/paths.js")`, so bundles for
// browsers and edge runtimes never evaluate `node:` modules unless a local path is actually used.
import { readFile, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";

const MIME_BY_EXTENSION: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  svg: "image/svg+xml",
  wav: "audio/wav",
  mp3: "audio/mpeg",
  ogg: "audio/ogg",
  flac: "audio/flac",
  mp4: "video/mp4",
  webm: "video/webm",
  txt: "text/plain",
  json: "application/json",
  csv: "text/csv",
  pdf: "application/pdf",
  zip: "application/zip",
  tar: "application/x-tar",
};

/** Reads a local file (a path or a `file:` URL) into a `File` named after it, typed from its extension. */
export async function readPathAsFile(path: string | URL): Promise<File> {
  const filePath = typeof path === "string" ? path : fileURLToPath(path);
  const bytes = await readFile(filePath);
  const name = basename(filePath);
  const extension = name.includes(".") ? name.split(".").pop()!.toLowerCase() : "";
  return new File([bytes], name, { type: MIME_BY_EXTENSION[extension] ?? "application/octet-stream" });
}

export async function writeBytesToPath(path: string, bytes: Uint8Array): Promise<void> {
  await writeFile(path, bytes);
}
