import { extname } from "node:path";

const EXTENSIONS: Record<string, string> = {
  "image/png": ".png",
  "image/jpeg": ".jpg",
  "image/jpg": ".jpg",
  "image/gif": ".gif",
  "image/webp": ".webp",
  "image/bmp": ".bmp",
  "image/tiff": ".tiff",
  "image/svg+xml": ".svg",
  "image/avif": ".avif",
  "image/heic": ".heic",
  "image/x-icon": ".ico",
  "audio/mpeg": ".mp3",
  "audio/mp3": ".mp3",
  "audio/wav": ".wav",
  "audio/wave": ".wav",
  "audio/x-wav": ".wav",
  "audio/ogg": ".ogg",
  "audio/flac": ".flac",
  "audio/x-flac": ".flac",
  "audio/mp4": ".m4a",
  "audio/x-m4a": ".m4a",
  "audio/aac": ".aac",
  "audio/webm": ".weba",
  "video/mp4": ".mp4",
  "video/webm": ".webm",
  "video/quicktime": ".mov",
  "video/x-matroska": ".mkv",
  "video/x-msvideo": ".avi",
  "text/plain": ".txt",
  "text/csv": ".csv",
  "text/markdown": ".md",
  "text/html": ".html",
  "application/json": ".json",
  "application/x-ndjson": ".jsonl",
  "application/pdf": ".pdf",
  "application/zip": ".zip",
  "application/x-tar": ".tar",
  "application/gzip": ".gz",
  "application/x-gzip": ".gz",
  "application/yaml": ".yaml",
  "application/x-yaml": ".yaml",
  "model/gltf-binary": ".glb",
  "model/gltf+json": ".gltf",
};

/** Content types that say nothing about the format: the URL's extension is better then. */
const GENERIC = new Set(["", "application/octet-stream", "binary/octet-stream", "application/binary"]);

/**
 * A safe extension (".png", or "" when unknown) for a scratch file: from a known content type, else
 * from the name's extension when it is short and alphanumeric. Never more of the name than that.
 */
export function fileExtensionFor(source: {
  contentType?: string | null | undefined;
  name?: string | undefined;
}): string {
  const type = (source.contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  const known = EXTENSIONS[type];
  if (known && !GENERIC.has(type)) return known;
  const lastSegment = (source.name ?? "").split(/[\\/]/).pop() ?? "";
  const extension = extname(lastSegment).toLowerCase();
  return /^\.[a-z0-9]{1,16}$/.test(extension) ? extension : "";
}
