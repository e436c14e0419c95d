import type { ServerContext } from "./context.js";
import { createGuardedFetch } from "./net/guarded-fetch.js";
import { WebhookDispatcher } from "./webhooks/dispatcher.js";

export interface Webhooks {
  start(): void;
  stop(): Promise<void>;
  wake(): void;
}

/** Webhook delivery from the outbox, through the SSRF-guarded fetch, signed with each account's secret. */
export function createWebhooks(ctx: ServerContext): Webhooks {
  const fetch = createGuardedFetch({
    allowPrivate: ctx.config.allowPrivateUrls,
    timeoutMs: ctx.config.webhookTimeoutMs,
    maxBytes: 64 * 1024,
    maxRedirects: 0,
    userAgent: "replicant-webhooks/0.1",
  });
  const dispatcher = new WebhookDispatcher({
    store: ctx.store,
    fetch,
    now: ctx.now,
    secretFor: async (accountId: string) => {
      const account = await ctx.store.getAccountById(accountId);
      if (!account) throw new Error(`account ${accountId} not found`);
      return account.webhook_secret;
    },
    timeoutMs: ctx.config.webhookTimeoutMs,
    maxAgeMs: ctx.config.webhookMaxAgeMs,
    pollIntervalMs: 1000,
  });
  return {
    start: () => dispatcher.start(),
    stop: async () => {
      await dispatcher.stop();
      await fetch.close();
    },
    wake: () => dispatcher.wake(),
  };
}
