import type { OutboxRecord, Store } from "../backends/types.js";
import type { GuardedRequestInit } from "../net/guarded-fetch.js";
import { UrlRefusedError } from "../net/url-guard.js";
import { signWebhook } from "./signing.js";

/** What the dispatcher needs of a fetch: the guarded fetch satisfies it. */
export type WebhookFetch = (
  url: string,
  init: GuardedRequestInit,
) => Promise<{
  status: number;
  statusText: string;
  headers: { get(name: string): string | null };
  discard(): Promise<void>;
}>;

export interface WebhookAttemptReport {
  record: OutboxRecord;
  /** This attempt's number, 1-based. */
  attempt: number;
  outcome: "delivered" | "retrying" | "failed";
  /** HTTP status, when the receiver answered. */
  status?: number;
  error?: string;
  nextAttemptAt?: string;
}

export interface WebhookDispatcherOptions {
  store: Pick<Store, "claimOutbox" | "finishOutbox">;
  /** The guarded fetch (SSRF checks at connect time). Redirects are never followed here. */
  fetch: WebhookFetch;
  now: () => Date;
  /** The account's `whsec_…` secret. */
  secretFor: (accountId: string) => Promise<string>;
  /** Per attempt (ServerConfig.webhookTimeoutMs). */
  timeoutMs: number;
  /** A terminal webhook is retried until `created_at + maxAgeMs` (ServerConfig.webhookMaxAgeMs). */
  maxAgeMs: number;
  /** How often due rows are looked for when nobody calls wake() (retries become due this way). */
  pollIntervalMs: number;
  /** Deliveries in flight at once. Default 32. */
  concurrency?: number;
  /** How long a claimed row stays ours before another dispatcher may take it. Default timeoutMs + 60 s. */
  leaseMs?: number;
  userAgent?: string;
  /** First retry delay (then doubling, with jitter). Default 1 s. */
  retryBaseMs?: number;
  /** Longest delay between retries. Default 1 h. */
  retryCapMs?: number;
  /** For tests: [0, 1). Default Math.random. */
  random?: () => number;
  /** Every attempt's outcome, for logs: a receiver that keeps failing must be visible. */
  onAttempt?: (report: WebhookAttemptReport) => void;
  /** Store errors and other surprises; the loop keeps going. */
  onError?: (error: unknown) => void;
}

type Verdict =
  | { kind: "delivered"; status: number }
  | { kind: "failed"; error: string; permanent: boolean; status?: number; retryAfterMs?: number };

const RESPONSE_BODY_LIMIT = 64 * 1024;

/**
 * Delivers outbox rows as signed webhooks. Rows are claimed from the store (so several processes can
 * share the outbox), delivered concurrently up to a bound (one prediction's events one after another, in
 * the order they happened), each attempt with its own timeout, and the outcome recorded:
 * - 2xx: delivered.
 * - `completed` events failing (network error, timeout, 3xx, 4xx, 5xx): pending again with exponential
 *   backoff and jitter (1–2 s, 2–4 s, …, at most retryCapMs), honouring Retry-After on 429/503, until
 *   `created_at + maxAgeMs`; then failed.
 * - `start`/`output`/`logs` events: one attempt only (Replicate does not retry intermediate states).
 * - 410 Gone or a refused URL: failed at once.
 */
export class WebhookDispatcher {
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly inFlight = new Set<Promise<void>>();
  /** The last delivery started for each prediction: the next one waits for it, so events arrive in order. */
  private readonly lastByPrediction = new Map<string, Promise<void>>();
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private tickRunning: Promise<void> | undefined;
  private tickAgain = false;
  private saturated = false;

  constructor(private readonly options: WebhookDispatcherOptions) {
    this.concurrency = Math.max(1, options.concurrency ?? 32);
    this.leaseMs = options.leaseMs ?? options.timeoutMs + 60_000;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.wake();
  }

  /** Stops claiming rows and waits for the deliveries in flight to finish (each has its timeout). */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.tickRunning;
    await Promise.allSettled([...this.inFlight]);
  }

  /** New outbox rows were written: look now instead of at the next poll. */
  wake(): void {
    if (!this.running) return;
    if (this.tickRunning) {
      this.tickAgain = true;
      return;
    }
    this.schedule(0);
  }

  /** Resolves when no delivery is in flight (for tests and orderly shutdown). */
  async idle(): Promise<void> {
    while (this.tickRunning || this.inFlight.size > 0) {
      await this.tickRunning;
      await Promise.allSettled([...this.inFlight]);
    }
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.tickRunning = this.tick().finally(() => {
        this.tickRunning = undefined;
        if (!this.running) return;
        if (this.tickAgain) this.schedule(0);
        else this.schedule(this.options.pollIntervalMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    do {
      this.tickAgain = false;
      const free = this.concurrency - this.inFlight.size;
      if (free <= 0) {
        this.saturated = true;
        return;
      }
      let rows: OutboxRecord[];
      try {
        rows = await this.options.store.claimOutbox(this.options.now().toISOString(), free, this.leaseMs);
      } catch (error) {
        this.options.onError?.(error);
        return;
      }
      this.saturated = rows.length >= free;
      for (const row of rows) {
        const previous = this.lastByPrediction.get(row.prediction_id);
        const delivery = (previous ? previous.then(() => this.deliver(row)) : this.deliver(row)).catch(
          (error: unknown) => this.options.onError?.(error),
        );
        this.inFlight.add(delivery);
        this.lastByPrediction.set(row.prediction_id, delivery);
        void delivery.finally(() => {
          this.inFlight.delete(delivery);
          if (this.lastByPrediction.get(row.prediction_id) === delivery)
            this.lastByPrediction.delete(row.prediction_id);
          // More rows may be due that did not fit: look again now that a slot is free.
          if (this.saturated) this.wake();
        });
      }
      if (this.saturated) this.tickAgain = true;
    } while (this.tickAgain && this.running && this.inFlight.size < this.concurrency);
  }

  private async deliver(row: OutboxRecord): Promise<void> {
    const attempt = row.attempts + 1;
    const attemptAt = this.options.now();
    const verdict = await this.attempt(row, attemptAt);
    const report: WebhookAttemptReport = { record: row, attempt, outcome: "delivered" };
    if (verdict.status !== undefined) report.status = verdict.status;

    if (verdict.kind === "delivered") {
      await this.options.store.finishOutbox(row.id, { status: "delivered", attempts: attempt });
      this.options.onAttempt?.(report);
      return;
    }
    report.error = verdict.error;
    const next =
      verdict.permanent || row.event !== "completed"
        ? undefined
        : this.nextAttempt(row, attempt, attemptAt, verdict);
    if (next === undefined) {
      const lastError =
        verdict.permanent || row.event !== "completed"
          ? verdict.error
          : `${verdict.error} (gave up after ${attempt} attempts)`;
      await this.options.store.finishOutbox(row.id, {
        status: "failed",
        attempts: attempt,
        last_error: lastError,
      });
      this.options.onAttempt?.({ ...report, outcome: "failed", error: lastError });
      return;
    }
    const nextAttemptAt = next.toISOString();
    await this.options.store.finishOutbox(row.id, {
      status: "pending",
      attempts: attempt,
      last_error: verdict.error,
      next_attempt_at: nextAttemptAt,
    });
    this.options.onAttempt?.({ ...report, outcome: "retrying", nextAttemptAt });
  }

  private async attempt(row: OutboxRecord, attemptAt: Date): Promise<Verdict> {
    let secret: string;
    try {
      secret = await this.options.secretFor(row.account_id);
    } catch (error) {
      return { kind: "failed", error: `no webhook secret: ${errorMessage(error)}`, permanent: false };
    }
    const timestamp = Math.floor(attemptAt.getTime() / 1000);
    try {
      const response = await this.options.fetch(row.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": this.options.userAgent ?? "replicant-webhooks",
          "webhook-id": row.webhook_id,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": signWebhook(secret, row.webhook_id, timestamp, row.body),
        },
        body: row.body,
        maxRedirects: 0,
        timeoutMs: this.options.timeoutMs,
        maxBytes: RESPONSE_BODY_LIMIT,
      });
      // Only the status matters; dropping the body also frees the connection at once.
      await response.discard();
      const status = response.status;
      if (status >= 200 && status < 300) return { kind: "delivered", status };
      const answered = `the receiver answered ${status}${response.statusText ? ` ${response.statusText}` : ""}`;
      if (status === 410)
        return { kind: "failed", status, permanent: true, error: `${answered}; no further attempts` };
      if (status >= 300 && status < 400) {
        return {
          kind: "failed",
          status,
          permanent: false,
          error: `${answered} (webhook redirects are not followed)`,
        };
      }
      const verdict: Verdict = { kind: "failed", status, permanent: false, error: answered };
      const retryAfterMs =
        status === 429 || status === 503
          ? parseRetryAfter(response.headers.get("retry-after"), attemptAt)
          : undefined;
      if (retryAfterMs !== undefined) verdict.retryAfterMs = retryAfterMs;
      return verdict;
    } catch (error) {
      return { kind: "failed", permanent: error instanceof UrlRefusedError, error: errorMessage(error) };
    }
  }

  /** When to try a failed terminal webhook again, or undefined when the retry window is over. */
  private nextAttempt(
    row: OutboxRecord,
    attempt: number,
    attemptAt: Date,
    verdict: Extract<Verdict, { kind: "failed" }>,
  ): Date | undefined {
    const deadline = Date.parse(row.created_at) + this.options.maxAgeMs;
    const now = attemptAt.getTime();
    if (!(now < deadline)) return undefined;
    const backoff = retryDelayMs(attempt, {
      baseMs: this.options.retryBaseMs ?? 1_000,
      capMs: this.options.retryCapMs ?? 60 * 60 * 1000,
      random: this.options.random ?? Math.random,
    });
    if (verdict.retryAfterMs !== undefined) {
      const at = now + Math.max(verdict.retryAfterMs, backoff);
      return at <= deadline ? new Date(at) : undefined;
    }
    // The last attempt happens at the deadline rather than not at all.
    return new Date(Math.min(now + backoff, deadline));
  }
}

/**
 * Delay before retry number `attempt` (1 = the first retry): exponential from `baseMs`, with jitter
 * over [window, 2 × window) so retries spread out without ever coming sooner than the schedule; capped.
 */
export function retryDelayMs(
  attempt: number,
  options: { baseMs: number; capMs: number; random: () => number },
): number {
  const window = Math.min(options.capMs, options.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 40));
  return Math.min(options.capMs, Math.round(window * (1 + options.random())));
}

/** Retry-After as delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: Date): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d{1,10}$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now.getTime());
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
