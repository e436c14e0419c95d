/** Cog's webhook delivery: event filter, throttled progress events, retried terminal event. */
import type { CogWebhookEvent } from "@replicant/protocol";

export interface WebhookOptions {
  url: string;
  events: ReadonlySet<CogWebhookEvent>;
  /** Non-terminal events closer than this to the previous one are dropped (COG_THROTTLE_RESPONSE_INTERVAL). */
  throttleMs: number;
  /** Extra headers: Authorization from WEBHOOK_AUTH_TOKEN, traceparent/tracestate from the request. */
  headers: Record<string, string>;
}

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);

export class WebhookSender {
  private lastSentAt = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly options: WebhookOptions) {}

  /** A progress event; `body` is only built if the event is sent. */
  progress(event: Exclude<CogWebhookEvent, "completed">, body: () => Promise<unknown>): void {
    if (!this.options.events.has(event)) return;
    const now = Date.now();
    if (now - this.lastSentAt < this.options.throttleMs) return;
    this.lastSentAt = now;
    // Sent in order; failures of progress events are ignored, as in Cog.
    this.chain = this.chain.then(async () => {
      try {
        await this.post(JSON.stringify(await body()));
      } catch {}
    });
  }

  /** The terminal event, retried up to 12 times with exponential backoff. */
  async completed(body: unknown): Promise<void> {
    await this.chain;
    if (!this.options.events.has("completed")) return;
    const payload = JSON.stringify(body);
    for (let attempt = 0; attempt <= 12; attempt++) {
      try {
        const response = await this.post(payload);
        if (!RETRY_STATUSES.has(response.status)) return;
      } catch {}
      await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** Math.min(attempt, 10)));
    }
  }

  private async post(payload: string): Promise<Response> {
    const response = await fetch(this.options.url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "replicant-cog", ...this.options.headers },
      body: payload,
      signal: AbortSignal.timeout(30_000),
    });
    await response.arrayBuffer().catch(() => {});
    return response;
  }
}
