/** Prediction and training statuses, as Replicate names them. */
export type PredictionStatus = "starting" | "processing" | "succeeded" | "failed" | "canceled" | "aborted";

export const TERMINAL_STATUSES: ReadonlySet<PredictionStatus> = new Set([
  "succeeded",
  "failed",
  "canceled",
  "aborted",
]);

export function isTerminal(status: PredictionStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

export type WebhookEventType = "start" | "output" | "logs" | "completed";
export const WEBHOOK_EVENT_TYPES: readonly WebhookEventType[] = ["start", "output", "logs", "completed"];

/** Names of the server-sent events on `urls.stream`. */
export type StreamEventType = "output" | "logs" | "error" | "done";
