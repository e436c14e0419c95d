export {
  parseRetryAfter,
  retryDelayMs,
  type WebhookAttemptReport,
  WebhookDispatcher,
  type WebhookDispatcherOptions,
  type WebhookFetch,
} from "./dispatcher.js";
export { shouldSendEvent, WebhookThrottle } from "./events.js";
export { generateWebhookSecret, signWebhook, verifyWebhookSignature } from "./signing.js";
