import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Webhook signing in the Standard Webhooks format, which Replicate uses and its clients verify:
 * `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, where the key is the
 * base64-decoded part of the secret after `whsec_`.
 */

const SECRET_PREFIX = "whsec_";

/** A new account webhook secret: `whsec_` + base64 of 32 random bytes. */
export function generateWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString("base64");
}

function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = Buffer.from(encoded, "base64");
  if (key.length === 0) throw new Error("The webhook secret is empty or not base64");
  return key;
}

/** The `webhook-signature` header value for one delivery attempt. `body` must be the exact bytes sent. */
export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): string {
  const digest = createHmac("sha256", secretKey(secret)).update(`${id}.${timestampSeconds}.${body}`).digest();
  return `v1,${digest.toString("base64")}`;
}

/**
 * Checks a `webhook-signature` header (space-separated `v1,<sig>` entries, any of which may match) in
 * constant time, and the timestamp against `toleranceSeconds` around `nowSeconds`.
 */
export function verifyWebhookSignature(
  secret: string,
  headers: { id: string; timestamp: string; signature: string },
  body: string,
  options: { nowSeconds: number; toleranceSeconds?: number },
): boolean {
  if (!/^\d{1,12}$/.test(headers.timestamp)) return false;
  const timestamp = Number(headers.timestamp);
  if (Math.abs(options.nowSeconds - timestamp) > (options.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signWebhook(secret, headers.id, timestamp, body).slice(3), "base64");
  return headers.signature.split(" ").some((entry) => {
    const [version, value] = entry.split(",", 2);
    if (version !== "v1" || !value) return false;
    const given = Buffer.from(value, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
