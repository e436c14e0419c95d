/**
 * Media types of stored files: what an upload may declare, and how a download is served. A file is served
 * from this server's origin, the origin of the web playground, so a type that a browser renders as a
 * document or runs is sent as an attachment, never inline.
 */

/** Longest media type accepted, parameters included. */
export const MAX_MEDIA_TYPE_LENGTH = 255;

// RFC 9110 §5.6.2 token, §5.6.4 quoted-string (visible ASCII only: nothing that could break a header).
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = '"(?:[\\t !#-\\[\\]-~]|\\\\[\\t -~])*"';
const MEDIA_TYPE = new RegExp(
  `^(${TOKEN})/(${TOKEN})((?:[ \\t]*;[ \\t]*(?:${TOKEN}=(?:${TOKEN}|${QUOTED}))?)*)$`,
);

/** The lower-case `type/subtype` of a valid media type (RFC 9110 §8.3.1), or undefined. */
export function mediaTypeEssence(value: string): string | undefined {
  if (value.length > MAX_MEDIA_TYPE_LENGTH) return undefined;
  const match = MEDIA_TYPE.exec(value);
  if (!match) return undefined;
  return `${match[1]}/${match[2]}`.toLowerCase();
}

export function isValidMediaType(value: string): boolean {
  return mediaTypeEssence(value) !== undefined;
}

// Types a browser shows as media or text and never runs: safe to render on this origin (with nosniff).
const INLINE_EXACT = new Set(["text/plain", "application/json", "application/pdf"]);

/** `inline` for images (not SVG), audio, video, plain text, JSON and PDF; `attachment` for the rest. */
export function dispositionType(essence: string): "inline" | "attachment" {
  if (INLINE_EXACT.has(essence)) return "inline";
  const [type, subtype = ""] = essence.split("/");
  // SVG and any +xml type are documents that can carry scripts, whatever their top-level type says.
  if (subtype.includes("svg") || subtype.endsWith("+xml")) return "attachment";
  return type === "image" || type === "audio" || type === "video" ? "inline" : "attachment";
}

/** The ASCII fallback name: letters, digits and a few harmless marks; nothing that ends a quoted string. */
function asciiName(name: string): string {
  const safe = name.replace(/[^\w .()+,=@~-]/g, "_").trim();
  return safe === "" ? "file" : safe;
}

/** RFC 8187 ext-value: UTF-8, percent-encoded except attr-char. */
function extValue(name: string): string | undefined {
  try {
    return encodeURIComponent(name).replace(
      /['()*]/g,
      (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
    );
  } catch {
    return undefined; // a lone surrogate: the ASCII fallback alone
  }
}

/** A Content-Disposition value (RFC 6266): an ASCII `filename` and, when it differs, `filename*`. */
export function contentDisposition(kind: "inline" | "attachment", name: string): string {
  const ascii = asciiName(name);
  const encoded = extValue(name);
  if (encoded === undefined || ascii === name) return `${kind}; filename="${ascii}"`;
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** Sandboxed with nothing loaded: a download that a browser renders anyway can run no script. */
export const DOWNLOAD_CSP = "sandbox; default-src 'none'";

/** The headers that decide how a browser treats a stored file; an invalid stored type becomes octet-stream. */
export function downloadHeaders(contentType: string, name: string): Record<string, string> {
  const essence = mediaTypeEssence(contentType);
  const type = essence === undefined ? "application/octet-stream" : contentType;
  return {
    "content-type": type,
    "content-disposition": contentDisposition(dispositionType(essence ?? "application/octet-stream"), name),
    "content-security-policy": DOWNLOAD_CSP,
    "x-content-type-options": "nosniff",
  };
}
