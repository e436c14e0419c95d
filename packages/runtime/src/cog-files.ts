/** File handling on Cog's HTTP protocol: URL/data-URI inputs in, data-URI/uploaded outputs out. */
import { readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { contentTypeOf, extensionOf } from "./mime.js";
import { type FileValue, isFileValue } from "./runner-types.js";

/** Downloads (http/https) or decodes (data:) a file input into `dir`; returns the local path. */
export async function fetchInputFile(url: string, dir: string, index: number): Promise<string> {
  if (url.startsWith("data:")) {
    const comma = url.indexOf(",");
    if (comma < 0) throw new Error("invalid data URI");
    const meta = url.slice(5, comma);
    const data = url.slice(comma + 1);
    const bytes = meta.endsWith(";base64")
      ? Buffer.from(data, "base64")
      : Buffer.from(decodeURIComponent(data), "utf8");
    const path = join(dir, `input-${index}${extensionOf(meta.replace(/;base64$/, ""))}`);
    await writeFile(path, bytes);
    return path;
  }
  const headers: Record<string, string> = {};
  if (process.env.COG_USER_AGENT) headers["user-agent"] = process.env.COG_USER_AGENT;
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(30_000) });
  if (!response.ok) throw new Error(`downloading ${url} failed: HTTP ${response.status}`);
  // Like Cog, keep the URL's basename so predictors can look at the extension.
  const name = basename(new URL(url).pathname).slice(-200) || "file";
  const path = join(dir, `${index}-${name}`);
  await writeFile(path, new Uint8Array(await response.arrayBuffer()));
  return path;
}

export function isFileUrl(value: unknown): value is string {
  return typeof value === "string" && /^(https?:\/\/|data:)/i.test(value);
}

export type FileEncoder = (file: FileValue) => Promise<string>;

/** Replaces every FileValue inside `value` using `encode` (which should cache per path). */
export async function encodeFiles(value: unknown, encode: FileEncoder): Promise<unknown> {
  if (value === null || typeof value !== "object") return value;
  if (isFileValue(value)) return encode(value);
  if (Array.isArray(value)) return Promise.all(value.map((item) => encodeFiles(item, encode)));
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) result[key] = await encodeFiles(item, encode);
  return result;
}

function typeOf(file: FileValue): string {
  return file.content_type ?? contentTypeOf(file.path) ?? "application/octet-stream";
}

export async function toDataUri(file: FileValue): Promise<string> {
  return `data:${typeOf(file)};base64,${(await readFile(file.path)).toString("base64")}`;
}

/** Cog's --upload-url: PUT raw bytes to `<url>/<basename>`; the result is Location (else the URL) minus the query. */
export async function uploadFile(
  uploadUrl: string,
  file: FileValue,
  predictionId: string | null,
): Promise<string> {
  const target = `${uploadUrl.endsWith("/") ? uploadUrl : `${uploadUrl}/`}${encodeURIComponent(basename(file.path))}`;
  const headers: Record<string, string> = { "content-type": typeOf(file) };
  if (predictionId) headers["x-prediction-id"] = predictionId;
  const body = new Uint8Array(await readFile(file.path));
  let response: Response | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    response = await fetch(target, { method: "PUT", headers, body, signal: AbortSignal.timeout(25_000) });
    if (!(response.status === 408 || response.status === 429 || response.status >= 500)) break;
  }
  if (!response?.ok) throw new Error("Got error trying to upload output files");
  const location = response.headers.get("location");
  const url = new URL(location ?? response.url ?? target, target);
  url.search = "";
  return url.toString();
}

/** Python Cog's deprecated output_file_prefix: multipart PUT (field `file`) to `<prefix><basename>`. */
export async function putToPrefix(prefix: string, file: FileValue): Promise<string> {
  const target = `${prefix}${basename(file.path)}`;
  const form = new FormData();
  form.append(
    "file",
    new Blob([new Uint8Array(await readFile(file.path))], { type: typeOf(file) }),
    basename(file.path),
  );
  const response = await fetch(target, { method: "PUT", body: form, signal: AbortSignal.timeout(15_000) });
  if (!response.ok) throw new Error("Got error trying to upload output files");
  return target;
}
