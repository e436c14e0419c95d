import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from "@replicant/protocol";
import type { OutboxInsert, PredictionRecord } from "./backends/types.js";
import type { ServerContext } from "./context.js";
import { newId, newSortableId } from "./ids.js";
import { predictionJson, trainingJson } from "./serialize.js";

/** Without a filter, Replicate (and Cog) send every event type. */
export function wantsEvent(record: PredictionRecord, event: WebhookEventType): boolean {
  if (!record.webhook) return false;
  return (record.webhook_events_filter ?? WEBHOOK_EVENT_TYPES).includes(event);
}

/** The outbox row for this event, if the prediction asked for it; written in the same transaction as the state. */
export function outboxFor(
  ctx: ServerContext,
  record: PredictionRecord,
  event: WebhookEventType,
): OutboxInsert[] {
  if (!record.webhook || !wantsEvent(record, event)) return [];
  const body = record.kind === "training" ? trainingJson(record, ctx.urls) : predictionJson(record, ctx.urls);
  const now = ctx.now().toISOString();
  return [
    {
      id: newSortableId(),
      prediction_id: record.id,
      account_id: record.account_id,
      event,
      webhook_id: `msg_${newId()}`,
      url: record.webhook,
      body: JSON.stringify(body),
      next_attempt_at: now,
      created_at: now,
    },
  ];
}
