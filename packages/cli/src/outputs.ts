import { mkdir, open } from "node:fs/promises";
import { join, relative } from "node:path";
import type { Replicant } from "@replicant/sdk";
import type { CliIo } from "./io.js";

const EXTENSIONS: Record<string, string> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
  "image/gif": "gif",
  "image/svg+xml": "svg",
  "image/bmp": "bmp",
  "image/tiff": "tiff",
  "audio/wav": "wav",
  "audio/x-wav": "wav",
  "audio/wave": "wav",
  "audio/mpeg": "mp3",
  "audio/ogg": "ogg",
  "audio/flac": "flac",
  "video/mp4": "mp4",
  "video/webm": "webm",
  "text/plain": "txt",
  "text/markdown": "md",
  "text/html": "html",
  "text/csv": "csv",
  "application/json": "json",
  "application/pdf": "pdf",
  "application/zip": "zip",
  "application/x-tar": "tar",
  "application/gzip": "gz",
  "model/gltf-binary": "glb",
};

/** `image/png; charset=x` → `png`; unknown types fall back to the URL's extension, then `bin`. */
export function extensionFor(contentType: string | undefined, url: string): string {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  const known = EXTENSIONS[type];
  if (known) return known;
  if (!url.startsWith("data:")) {
    const match = /\.([a-z0-9]{1,5})$/i.exec(new URL(url).pathname);
    if (match) return match[1]!.toLowerCase();
  }
  const subtype = /^[a-z]+\/([a-z0-9]+)$/.exec(type)?.[1];
  return subtype && subtype !== "octet" ? subtype : "bin";
}

export function isFileUrl(value: unknown): value is string {
  return typeof value === "string" && /^(https?:\/\/\S+|data:[^,]*,)/.test(value);
}

/** Each file URL in `output` with a name stem from where it sits: `output`, `output-0`, `output-image`. */
function fileLeaves(
  output: unknown,
  stem: string,
  found: { stem: string; url: string; path: (string | number)[] }[],
  path: (string | number)[] = [],
) {
  if (isFileUrl(output)) found.push({ stem, url: output, path });
  else if (Array.isArray(output))
    output.forEach((item, index) => {
      fileLeaves(item, `${stem}-${index}`, found, [...path, index]);
    });
  else if (typeof output === "object" && output !== null) {
    for (const [key, value] of Object.entries(output))
      fileLeaves(value, `${stem}-${key.replace(/[^\w.-]/g, "_")}`, found, [...path, key]);
  }
  return found;
}

/** Creates `dir/stem.ext` without overwriting: `stem-1.ext`, `stem-2.ext`... when taken. */
async function createUnique(
  dir: string,
  stem: string,
  extension: string,
  bytes: Uint8Array,
): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const path = join(dir, `${stem}${attempt ? `-${attempt}` : ""}.${extension}`);
    try {
      const handle = await open(path, "wx", 0o644);
      try {
        await handle.writeFile(bytes);
      } finally {
        await handle.close();
      }
      return path;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
}

/**
 * Downloads every file in `output` into `dir`, named from its position and Content-Type. Returns the output
 * with each URL replaced by the saved path (relative to cwd), and the paths.
 */
export async function saveOutputs(
  client: Replicant,
  output: unknown,
  dir: string,
  cwd: string,
  signal?: AbortSignal,
): Promise<{ output: unknown; paths: string[] }> {
  const leaves = fileLeaves(output, "output", []);
  if (leaves.length === 0) return { output, paths: [] };
  await mkdir(dir, { recursive: true });
  const paths: string[] = [];
  let replaced = structuredClone(output);
  for (const leaf of leaves) {
    const blob = await client.fileOutput(leaf.url, signal).blob();
    const saved = await createUnique(
      dir,
      leaf.stem,
      extensionFor(blob.type, leaf.url),
      new Uint8Array(await blob.arrayBuffer()),
    );
    const shown = relative(cwd, saved) || saved;
    paths.push(shown);
    if (leaf.path.length === 0) replaced = shown;
    else {
      let parent = replaced as Record<string | number, unknown>;
      for (const step of leaf.path.slice(0, -1)) parent = parent[step] as Record<string | number, unknown>;
      parent[leaf.path[leaf.path.length - 1]!] = shown;
    }
  }
  return { output: replaced, paths };
}

function describeDataUri(uri: string): string {
  const comma = uri.indexOf(",");
  const meta = uri.slice(5, comma);
  const type = meta.split(";")[0] || "text/plain";
  const payload = uri.length - comma - 1;
  const bytes = meta.endsWith(";base64") ? Math.floor((payload * 3) / 4) : payload;
  return `<a ${type} file of about ${formatBytes(bytes)}: add --save to write it>`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * An output as text: strings as they are, streamed text chunks joined, file URLs one per line (data URIs
 * described, not dumped), anything else as indented JSON.
 */
export function outputText(output: unknown, concatenate?: boolean): string {
  const show = (value: unknown): unknown => {
    if (typeof value === "string" && value.startsWith("data:")) return describeDataUri(value);
    if (Array.isArray(value)) return value.map(show);
    if (typeof value === "object" && value !== null)
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, show(v)]));
    return value;
  };
  if (output === null || output === undefined) return "";
  if (typeof output === "string") return String(show(output));
  if (Array.isArray(output) && output.every((item) => typeof item === "string")) {
    const files = output.some((item) => isFileUrl(item));
    const items = output.map((item) => String(show(item)));
    return items.join(files || concatenate === false ? "\n" : "");
  }
  if (typeof output === "number" || typeof output === "boolean") return String(output);
  return JSON.stringify(show(output), null, 2);
}

export function printJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Whether the model's output schema is a concatenated text iterator (LLM-style), when known. */
export function concatenateHint(openapiSchema: unknown): boolean | undefined {
  const output = (
    openapiSchema as { components?: { schemas?: { Output?: Record<string, unknown> } } } | undefined
  )?.components?.schemas?.Output;
  if (!output) return undefined;
  if (output.type !== "array") return undefined;
  return output["x-cog-array-display"] === "concatenate";
}
