import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from "@replicant/protocol";

/**
 * Whether a prediction's `webhook_events_filter` asks for this event. No filter (null/undefined) means
 * all four events, as in Cog; an explicit list, even an empty one, is taken as given.
 */
export function shouldSendEvent(
  filter: readonly WebhookEventType[] | null | undefined,
  event: WebhookEventType,
): boolean {
  return (filter ?? WEBHOOK_EVENT_TYPES).includes(event);
}

/**
 * Replicate's throttle: `output` and `logs` webhooks at most once per interval (500 ms) per
 * prediction; `start` and `completed` always. Usage in the director, per event:
 *
 *   if (shouldSendEvent(filter, event) && throttle.offer(prediction.id, event, Date.now())) write the outbox row
 *
 * A dropped output/logs event loses nothing: every webhook body is the whole prediction, so the next
 * one sent (at the latest the `completed` one) carries the newer state. `completed` forgets the
 * prediction; entries also expire on their own, so the map stays small.
 */
export class WebhookThrottle {
  private readonly lastSent = new Map<string, number>();

  constructor(private readonly intervalMs = 500) {}

  /** True when the event should be sent now (and records it as sent). */
  offer(predictionId: string, event: WebhookEventType, nowMs: number): boolean {
    if (event === "completed") {
      this.lastSent.delete(predictionId);
      return true;
    }
    if (event === "start") return true;
    const last = this.lastSent.get(predictionId);
    if (last !== undefined && nowMs - last < this.intervalMs) return false;
    this.lastSent.set(predictionId, nowMs);
    if (this.lastSent.size > 10_000) this.prune(nowMs);
    return true;
  }

  /** Drops the prediction's state (e.g. when it is canceled or its worker stops). */
  forget(predictionId: string): void {
    this.lastSent.delete(predictionId);
  }

  get size(): number {
    return this.lastSent.size;
  }

  /** Entries older than the interval behave as absent, so they can go. */
  private prune(nowMs: number): void {
    for (const [id, at] of this.lastSent) if (nowMs - at >= this.intervalMs) this.lastSent.delete(id);
  }
}
