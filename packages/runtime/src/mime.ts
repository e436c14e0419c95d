/** The few content types runners need to label output files (no dependency on a MIME database). */
import { extname } from "node:path";

const byExtension: Record<string, string> = {
  ".txt": "text/plain",
  ".md": "text/markdown",
  ".csv": "text/csv",
  ".html": "text/html",
  ".json": "application/json",
  ".pdf": "application/pdf",
  ".zip": "application/zip",
  ".tar": "application/x-tar",
  ".gz": "application/gzip",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".svg": "image/svg+xml",
  ".wav": "audio/wav",
  ".mp3": "audio/mpeg",
  ".ogg": "audio/ogg",
  ".flac": "audio/flac",
  ".mp4": "video/mp4",
  ".webm": "video/webm",
};

export function contentTypeOf(path: string): string | undefined {
  return byExtension[extname(path).toLowerCase()];
}

export function extensionOf(contentType: string): string {
  const type = contentType.split(";")[0]?.trim().toLowerCase();
  for (const [extension, candidate] of Object.entries(byExtension)) if (candidate === type) return extension;
  return "";
}
