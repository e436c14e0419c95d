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

/**
 * Names of the server-sent events on `urls.stream`. `reconnect` is Replicant's: the server ended a stream
 * whose client fell too far behind; reconnecting with `Last-Event-ID` resumes it (clients ignore unknown
 * event names, and the SSE id of the last event received already says where to resume).
 */
export type StreamEventType = "output" | "logs" | "error" | "done" | "reconnect";

export const STREAM_RECONNECT_EVENT = "reconnect" satisfies StreamEventType;
