import type { Prediction, Training } from "@replicant/protocol";
import { base64ToBytes } from "../internal/base64.js";
import { WebhookVerificationError } from "./errors.js";

// Mirrors @replicant/protocol's webhook constants; copied so the CommonJS build needs no ESM-only require.
const ID_HEADER = "webhook-id";
const TIMESTAMP_HEADER = "webhook-timestamp";
const SIGNATURE_HEADER = "webhook-signature";
const SECRET_PREFIX = "whsec_";

/** Replicate's recommended tolerance between a webhook's timestamp and the receiver's clock, in seconds. */
export const DEFAULT_WEBHOOK_TOLERANCE_SECONDS = 300;

/** The parts of a delivery that verification needs, taken from the raw request. */
export interface WebhookParts {
  /** The `webhook-id` header. */
  id: string | null | undefined;
  /** The `webhook-timestamp` header (seconds since the epoch). */
  timestamp: string | null | undefined;
  /** The `webhook-signature` header: space-separated `v1,<base64>` entries. */
  signature: string | null | undefined;
  /** The raw body, exactly as received. An object is re-serialised with JSON.stringify (avoid: byte-fragile). */
  body: string | ArrayBuffer | ArrayBufferView | ReadableStream<Uint8Array> | Record<string, unknown> | null;
}

export interface WebhookVerifyOptions {
  /** Maximum distance between the timestamp and now, in seconds; `Infinity` disables the check. Default 300. */
  tolerance?: number;
  /** The clock, for tests: seconds since the epoch. */
  now?: () => number;
  /** A Web Crypto implementation; defaults to `globalThis.crypto`. */
  crypto?: Crypto;
}

type HeaderSource = Headers | Record<string, string | string[] | undefined>;

/** The inputs {@link verifyWebhook} accepts: a `Request`, raw parts, or `{ headers, body }` as frameworks give them. */
export type WebhookRequestLike =
  | Request
  | WebhookParts
  | { headers: HeaderSource; body: WebhookParts["body"] };

/**
 * Verifies a Replicate webhook (Standard Webhooks signing: HMAC-SHA256 over `${id}.${timestamp}.${body}` keyed
 * with the base64 part of `whsec_...`), checks its timestamp against `tolerance` (default 300 s) to block
 * replays, compares in constant time through `crypto.subtle.verify`, and returns the parsed payload.
 * Throws {@link WebhookVerificationError} with a `reason` when any check fails.
 *
 * Pass a `Request` (clone it first if you still need its body), or the raw body and headers.
 */
export async function verifyWebhook<T = Prediction | Training>(
  request: WebhookRequestLike,
  secret: string,
  options: WebhookVerifyOptions = {},
): Promise<T> {
  const parts = await extractParts(request);
  const body = await readBody(parts.body);
  await checkSignature({ ...parts, body }, secret, options);
  return JSON.parse(body) as T;
}

/**
 * Compatible with the `replicate` package: `validateWebhook(request, secret, crypto?)` or
 * `validateWebhook({ id, timestamp, signature, body, secret }, crypto?)`. Resolves `true` or `false`; unlike the
 * original it also rejects timestamps outside the tolerance (default 300 s; pass options to change it) and
 * compares signatures in constant time. Throws when headers, body or secret are missing, as the original does.
 */
export async function validateWebhook(
  request: WebhookRequestLike,
  secret: string,
  options?: Crypto | WebhookVerifyOptions,
): Promise<boolean>;
export async function validateWebhook(
  requestData: WebhookParts & { secret: string },
  options?: Crypto | WebhookVerifyOptions,
): Promise<boolean>;
export async function validateWebhook(
  request: WebhookRequestLike | (WebhookParts & { secret: string }),
  secretOrOptions?: string | Crypto | WebhookVerifyOptions,
  maybeOptions?: Crypto | WebhookVerifyOptions,
): Promise<boolean> {
  let secret: string | undefined;
  let options: Crypto | WebhookVerifyOptions | undefined;
  if (typeof secretOrOptions === "string") {
    secret = secretOrOptions;
    options = maybeOptions;
  } else {
    secret = "secret" in request && typeof request.secret === "string" ? request.secret : undefined;
    options = secretOrOptions;
  }
  const verifyOptions: WebhookVerifyOptions = isCrypto(options) ? { crypto: options } : (options ?? {});
  if (!secret) throw new WebhookVerificationError("invalid_secret", "Missing required secret");
  const parts = await extractParts(request);
  const body = await readBody(parts.body);
  try {
    await checkSignature({ ...parts, body }, secret, verifyOptions);
    return true;
  } catch (error) {
    if (
      error instanceof WebhookVerificationError &&
      (error.reason === "invalid_signature" ||
        error.reason === "timestamp_out_of_tolerance" ||
        error.reason === "invalid_timestamp")
    ) {
      return false;
    }
    throw error;
  }
}

/** Signs a payload the way Replicate does; handy for tests of webhook receivers. Returns the header value. */
export async function signWebhook(
  parts: { id: string; timestamp: string | number; body: string },
  secret: string,
  webCrypto: Crypto = globalThis.crypto,
): Promise<string> {
  const key = await importKey(secret, webCrypto, ["sign"]);
  const data = new TextEncoder().encode(`${parts.id}.${parts.timestamp}.${parts.body}`);
  const signature = new Uint8Array(await webCrypto.subtle.sign("HMAC", key, data));
  let binary = "";
  for (const byte of signature) binary += String.fromCharCode(byte);
  return `v1,${btoa(binary)}`;
}

async function checkSignature(
  parts: {
    id: string | null | undefined;
    timestamp: string | null | undefined;
    signature: string | null | undefined;
    body: string;
  },
  secret: string,
  options: WebhookVerifyOptions,
): Promise<void> {
  const { id, timestamp, signature, body } = parts;
  if (!id || !timestamp || !signature) {
    throw new WebhookVerificationError("missing_headers", "Missing required webhook headers");
  }
  if (!body) throw new WebhookVerificationError("missing_body", "Missing required body");
  const webCrypto = options.crypto ?? (globalThis.crypto as Crypto | undefined);
  if (!webCrypto?.subtle) {
    throw new WebhookVerificationError(
      "invalid_secret",
      "No Web Crypto implementation available; pass `crypto`",
    );
  }

  if (!/^\d+$/.test(timestamp.trim())) {
    throw new WebhookVerificationError("invalid_timestamp", `Invalid webhook timestamp: ${timestamp}`);
  }
  const tolerance = options.tolerance ?? DEFAULT_WEBHOOK_TOLERANCE_SECONDS;
  const now = options.now ? options.now() : Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(timestamp)) > tolerance) {
    throw new WebhookVerificationError(
      "timestamp_out_of_tolerance",
      `Webhook timestamp ${timestamp} is more than ${tolerance} s from now (${now})`,
    );
  }

  const key = await importKey(secret, webCrypto, ["verify"]);
  const data = new TextEncoder().encode(`${id}.${timestamp}.${body}`);
  for (const entry of signature.split(" ")) {
    const [version, encoded] = entry.split(",", 2);
    if (version !== "v1" || !encoded) continue;
    let expected: Uint8Array<ArrayBuffer>;
    try {
      expected = base64ToBytes(encoded);
    } catch {
      continue;
    }
    // subtle.verify compares in constant time.
    if (await webCrypto.subtle.verify("HMAC", key, expected, data)) return;
  }
  throw new WebhookVerificationError("invalid_signature", "No webhook signature matched");
}

async function importKey(secret: string, webCrypto: Crypto, usages: KeyUsage[]): Promise<CryptoKey> {
  const encoded = secret.startsWith(SECRET_PREFIX)
    ? secret.slice(SECRET_PREFIX.length)
    : secret.split("_").pop()!;
  let keyBytes: Uint8Array<ArrayBuffer>;
  try {
    keyBytes = base64ToBytes(encoded);
  } catch {
    throw new WebhookVerificationError("invalid_secret", "The webhook secret is not valid base64");
  }
  return webCrypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, usages);
}

async function extractParts(request: WebhookRequestLike): Promise<WebhookParts> {
  if (typeof Request !== "undefined" && request instanceof Request) {
    return {
      id: request.headers.get(ID_HEADER),
      timestamp: request.headers.get(TIMESTAMP_HEADER),
      signature: request.headers.get(SIGNATURE_HEADER),
      body: await request.text(),
    };
  }
  if ("headers" in request && request.headers) {
    const headers = request.headers;
    return {
      id: readHeader(headers, ID_HEADER),
      timestamp: readHeader(headers, TIMESTAMP_HEADER),
      signature: readHeader(headers, SIGNATURE_HEADER),
      body: request.body,
    };
  }
  return request as WebhookParts;
}

function readHeader(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(record).find((candidate) => candidate.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(body: WebhookParts["body"]): Promise<string> {
  if (typeof body === "string") return body;
  if (body instanceof ReadableStream) return new Response(body).text();
  if (body instanceof ArrayBuffer) return new TextDecoder().decode(body);
  if (ArrayBuffer.isView(body)) return new TextDecoder().decode(body);
  if (body && typeof body === "object") return JSON.stringify(body);
  return "";
}

function isCrypto(value: unknown): value is Crypto {
  return typeof value === "object" && value !== null && "subtle" in value;
}
