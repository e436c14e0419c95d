import { createHash, randomBytes } from "node:crypto";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** 26 lowercase alphanumerics (~134 bits), the shape of Replicate's prediction, training and file ids. */
export function newId(): string {
  const bytes = randomBytes(26);
  let id = "";
  for (const byte of bytes) id += ALPHABET[byte % 36];
  return id;
}

let lastSortableMs = 0;
let sortableSequence = 0;

/**
 * An id that sorts after every id this process made before it: milliseconds and a sequence, then
 * random bytes. Outbox rows use it so that one prediction's events are claimed in the order they happened.
 */
export function newSortableId(): string {
  const ms = Date.now();
  if (ms > lastSortableMs) {
    lastSortableMs = ms;
    sortableSequence = 0;
  } else sortableSequence++;
  return `${lastSortableMs.toString(36).padStart(9, "0")}${sortableSequence.toString(36).padStart(4, "0")}${newId().slice(0, 13)}`;
}

/** API tokens look like Replicate's: `r8_` and 37 more characters. */
export function newApiToken(): string {
  return `r8_${randomBytes(28).toString("base64url").slice(0, 37)}`;
}

export function sha256Hex(value: string | Uint8Array): string {
  return createHash("sha256").update(value).digest("hex");
}

/** Version ids are 64 hex characters, as on Replicate. */
export function newVersionId(): string {
  return randomBytes(32).toString("hex");
}

export function isoNow(now: Date): string {
  return now.toISOString();
}
