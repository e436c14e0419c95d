/** Standard Webhooks headers that Replicate sends on every delivery. */
export const WEBHOOK_ID_HEADER = "webhook-id";
export const WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp";
export const WEBHOOK_SIGNATURE_HEADER = "webhook-signature";

/** Prefix of webhook signing secrets; the rest is base64 of the key bytes. */
export const WEBHOOK_SECRET_PREFIX = "whsec_";

/** Replicate's recommended tolerance between a webhook's timestamp and the receiver's clock. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

/** The bytes a webhook signature covers: `${id}.${timestamp}.${body}`. */
export function webhookSignedContent(id: string, timestamp: string | number, body: string): string {
  return `${id}.${timestamp}.${body}`;
}
