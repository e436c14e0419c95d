import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import http, { type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import type { WebhookEventType } from "@replicant/protocol";
import { validateWebhook } from "replicate";
import { Webhook } from "standardwebhooks";
import { createSqliteStore } from "../src/backends/index.js";
import type { OutboxRecord, PredictionRecord, Store } from "../src/backends/types.js";
import { newSortableId } from "../src/ids.js";
import { createGuardedFetch, type GuardedFetch } from "../src/net/index.js";
import {
  generateWebhookSecret,
  parseRetryAfter,
  retryDelayMs,
  shouldSendEvent,
  signWebhook,
  verifyWebhookSignature,
  type WebhookAttemptReport,
  WebhookDispatcher,
  type WebhookDispatcherOptions,
  WebhookThrottle,
} from "../src/webhooks/index.js";
import { type Canary, startCanary } from "./support/canary.js";
import { startHttpServer, type TestServer } from "./support/http-server.js";
import { installLoopbackTripwire, type LoopbackTripwire } from "./support/loopback-tripwire.js";

// ---------------------------------------------------------------------------------------------
// Harness: a real SQLite store, a scriptable loopback receiver, a fake clock near real time (so
// standardwebhooks' 5-minute timestamp tolerance still holds).
// ---------------------------------------------------------------------------------------------

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

type Reply = { status: number; headers?: Record<string, string> } | "stall";

let dir: string;
let store: Store;
let receiver: TestServer;
let canary: Canary;
let tripwire: LoopbackTripwire;
let fetch: GuardedFetch;
const secrets = new Map<string, string>();
const received: Received[] = [];
/** Per path, replies used in order; the last one repeats. Default 200. */
const script = new Map<string, Reply[]>();
let clock = 0;
let dispatcher: WebhookDispatcher | undefined;
const reports: WebhookAttemptReport[] = [];

const ACCOUNT_A = "acct_a";
const ACCOUNT_B = "acct_b";

before(async () => {
  tripwire = installLoopbackTripwire();
  canary = await startCanary();
  dir = await mkdtemp(join(tmpdir(), "replicant-webhooks-"));
  store = await createSqliteStore(join(dir, "db.sqlite"), "normal");
  for (const [id, username] of [
    [ACCOUNT_A, "alice"],
    [ACCOUNT_B, "bob"],
  ] as const) {
    const secret = generateWebhookSecret();
    secrets.set(id, secret);
    await store.createAccount({
      id,
      username,
      type: "user",
      name: null,
      github_url: null,
      avatar_url: null,
      webhook_secret: secret,
      created_at: new Date().toISOString(),
    });
  }
  receiver = await startHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const path = req.url ?? "/";
      received.push({
        path,
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        at: Date.now(),
      });
      const replies = script.get(path) ?? [];
      const reply = (replies.length > 1 ? replies.shift() : replies[0]) ?? { status: 200 };
      if (reply === "stall") return;
      res.writeHead(reply.status, reply.headers ?? {});
      res.end("receiver says hi");
    });
  });
  fetch = createGuardedFetch({
    allowPrivate: ["127.0.0.1/32"],
    timeoutMs: 5_000,
    maxBytes: 1 << 20,
    maxRedirects: 0,
  });
});

after(async () => {
  await fetch.close();
  await receiver.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
  await canary.close();
  tripwire.uninstall();
  assert.equal(canary.connections, 0);
  assert.deepEqual(tripwire.blocked, []);
});

beforeEach(() => {
  clock = Date.now();
  received.length = 0;
  reports.length = 0;
  script.clear();
});

afterEach(async () => {
  await dispatcher?.stop();
  dispatcher = undefined;
  // Each test starts with an empty queue: settle whatever a test left pending.
  for (const row of await store.claimOutbox("9999-01-01T00:00:00.000Z", 1000, 1000)) {
    await store.finishOutbox(row.id, {
      status: "failed",
      attempts: row.attempts,
      last_error: "test cleanup",
    });
  }
});

function startDispatcher(overrides: Partial<WebhookDispatcherOptions> = {}): WebhookDispatcher {
  dispatcher = new WebhookDispatcher({
    store,
    fetch,
    now: () => new Date(clock),
    secretFor: async (accountId) => {
      const secret = secrets.get(accountId);
      if (!secret) throw new Error(`unknown account ${accountId}`);
      return secret;
    },
    timeoutMs: 2_000,
    maxAgeMs: 24 * 60 * 60 * 1000,
    pollIntervalMs: 20,
    random: () => 0,
    onAttempt: (report) => reports.push(report),
    onError: (error) => assert.fail(`dispatcher error: ${String(error)}`),
    ...overrides,
  });
  dispatcher.start();
  return dispatcher;
}

function prediction(id: string, accountId: string): PredictionRecord {
  const now = new Date(clock).toISOString();
  return {
    id,
    kind: "prediction",
    account_id: accountId,
    model: "alice/model",
    version_id: "v1",
    version_label: "v1",
    deployment: null,
    destination: null,
    input: { text: "hi" },
    output: null,
    logs: "",
    error: null,
    status: "succeeded",
    source: "api",
    data_removed: false,
    created_at: now,
    started_at: now,
    completed_at: now,
    deadline: null,
    metrics: {},
    webhook: null,
    webhook_events_filter: null,
    attempt: 1,
    streaming: false,
  };
}

/** Writes a prediction and one outbox row for it; returns the prediction id. */
async function enqueue(options: {
  path?: string;
  url?: string;
  event?: WebhookEventType;
  account?: string;
  createdAt?: number;
}): Promise<string> {
  const predictionId = `p_${randomUUID()}`;
  const account = options.account ?? ACCOUNT_A;
  const body = JSON.stringify({ id: predictionId, status: "succeeded", output: "héllo ✓", logs: "" });
  const createdAt = new Date(options.createdAt ?? clock).toISOString();
  await store.insertPrediction(prediction(predictionId, account), {
    outbox: [
      {
        id: randomUUID(),
        prediction_id: predictionId,
        account_id: account,
        event: options.event ?? "completed",
        webhook_id: `msg_${randomUUID()}`,
        url: options.url ?? `${receiver.origin}${options.path ?? "/hook"}`,
        body,
        next_attempt_at: createdAt,
        created_at: createdAt,
      },
    ],
  });
  return predictionId;
}

async function outbox(predictionId: string): Promise<OutboxRecord> {
  const rows = await store.listOutbox(predictionId);
  assert.equal(rows.length, 1);
  return rows[0]!;
}

async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 4_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const settled = (predictionId: string, status: OutboxRecord["status"], attempts?: number) =>
  waitFor(
    async () => {
      const row = await outbox(predictionId);
      return row.status === status && (attempts === undefined || row.attempts === attempts);
    },
    `outbox ${status}${attempts === undefined ? "" : ` after ${attempts} attempts`}`,
  );

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function headersOf(request: Received): { id: string; timestamp: string; signature: string } {
  return {
    id: String(request.headers["webhook-id"]),
    timestamp: String(request.headers["webhook-timestamp"]),
    signature: String(request.headers["webhook-signature"]),
  };
}

// ---------------------------------------------------------------------------------------------

describe("signing", () => {
  test("secrets are whsec_ + base64 of 32 random bytes", () => {
    const secret = generateWebhookSecret();
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(Buffer.from(secret.slice(6), "base64").length, 32);
    assert.notEqual(generateWebhookSecret(), secret);
  });

  test("signatures match standardwebhooks' own signer", () => {
    const secret = generateWebhookSecret();
    const at = new Date(1_700_000_000_000);
    const body = '{"a":"ü"}';
    assert.equal(
      signWebhook(secret, "msg_1", 1_700_000_000, body),
      new Webhook(secret).sign("msg_1", at, body),
    );
  });

  test("verifyWebhookSignature: accepts any matching v1 entry, rejects others and stale timestamps", () => {
    const secret = generateWebhookSecret();
    const signature = signWebhook(secret, "msg_1", 1000, "{}");
    const check = (sig: string, timestamp = "1000", nowSeconds = 1000) =>
      verifyWebhookSignature(secret, { id: "msg_1", timestamp, signature: sig }, "{}", { nowSeconds });
    assert.equal(check(signature), true);
    assert.equal(check(`v1,AAAA ${signature} v2,xyz`), true);
    assert.equal(check("v1,AAAA"), false);
    assert.equal(check("v1,not base64!!"), false);
    assert.equal(check(signature.replace("v1,", "v2,")), false);
    assert.equal(check(signature, "1000", 1000 + 301), false);
    assert.equal(check(signature, "abc"), false);
    assert.equal(
      verifyWebhookSignature(generateWebhookSecret(), { id: "msg_1", timestamp: "1000", signature }, "{}", {
        nowSeconds: 1000,
      }),
      false,
    );
  });
});

describe("event filter and throttle", () => {
  test("shouldSendEvent: no filter means all four events", () => {
    for (const event of ["start", "output", "logs", "completed"] as const) {
      assert.equal(shouldSendEvent(null, event), true);
      assert.equal(shouldSendEvent(undefined, event), true);
    }
    assert.equal(shouldSendEvent(["completed"], "start"), false);
    assert.equal(shouldSendEvent(["completed"], "completed"), true);
    assert.equal(shouldSendEvent([], "completed"), false);
  });

  test("output and logs at most once per 500 ms per prediction; start and completed always (W5)", () => {
    const throttle = new WebhookThrottle();
    assert.equal(throttle.offer("p1", "start", 0), true);
    assert.equal(throttle.offer("p1", "output", 0), true);
    assert.equal(throttle.offer("p1", "logs", 100), false);
    assert.equal(throttle.offer("p1", "output", 499), false);
    assert.equal(throttle.offer("p2", "output", 499), true);
    assert.equal(throttle.offer("p1", "logs", 500), true);
    assert.equal(throttle.offer("p1", "start", 600), true);
    assert.equal(throttle.offer("p1", "completed", 600), true);
    assert.equal(throttle.offer("p1", "output", 601), true, "completed resets the prediction");
    throttle.forget("p1");
    throttle.forget("p2");
    assert.equal(throttle.size, 0);
  });

  test("the throttle prunes expired entries", () => {
    const throttle = new WebhookThrottle(500);
    for (let i = 0; i <= 10_000; i++) throttle.offer(`p${i}`, "output", 0);
    throttle.offer("late", "output", 10_000);
    assert.equal(throttle.size, 1);
  });
});

describe("retry schedule", () => {
  test("exponential with jitter in [window, 2 × window), capped at 1 h", () => {
    const options = (random: number) => ({ baseMs: 1_000, capMs: 3_600_000, random: () => random });
    assert.equal(retryDelayMs(1, options(0)), 1_000);
    assert.equal(retryDelayMs(1, options(0.999)), 1_999);
    assert.equal(retryDelayMs(2, options(0)), 2_000);
    assert.equal(retryDelayMs(5, options(0.5)), 24_000);
    assert.equal(retryDelayMs(13, options(0)), 3_600_000);
    assert.equal(retryDelayMs(500, options(0.9)), 3_600_000);
  });

  test("Retry-After as seconds or an HTTP date", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    assert.equal(parseRetryAfter("120", now), 120_000);
    assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:01:00 GMT", now), 60_000);
    assert.equal(parseRetryAfter("Wed, 31 Dec 2025 00:00:00 GMT", now), 0);
    assert.equal(parseRetryAfter("soon", now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });
});

describe("WebhookDispatcher", () => {
  test("a delivery carries the headers and verifies with standardwebhooks and replicate (W1, W2)", async () => {
    const id = await enqueue({ path: "/ok" });
    const row = await outbox(id);
    startDispatcher();
    await settled(id, "delivered", 1);

    assert.equal(received.length, 1);
    const request = received[0]!;
    assert.equal(request.headers["content-type"], "application/json");
    assert.equal(request.headers["user-agent"], "replicant-webhooks");
    assert.equal(request.headers["webhook-id"], row.webhook_id);
    assert.equal(request.headers["webhook-timestamp"], String(Math.floor(clock / 1000)));
    assert.equal(request.body, row.body, "the signed bytes are the sent bytes");

    const secret = secrets.get(ACCOUNT_A)!;
    const headers = headersOf(request);
    assert.deepEqual(
      new Webhook(secret).verify(request.body, {
        "webhook-id": headers.id,
        "webhook-timestamp": headers.timestamp,
        "webhook-signature": headers.signature,
      }),
      JSON.parse(row.body),
    );
    assert.equal(await validateWebhook({ ...headers, body: request.body, secret }), true);
    assert.equal(
      verifyWebhookSignature(secret, headers, request.body, { nowSeconds: Math.floor(clock / 1000) }),
      true,
    );
    assert.deepEqual(
      reports.map((r) => [r.outcome, r.attempt, r.status]),
      [["delivered", 1, 200]],
    );
  });

  test("another account's secret does not verify (W10)", async () => {
    const id = await enqueue({ path: "/ok", account: ACCOUNT_B });
    startDispatcher();
    await settled(id, "delivered");
    const request = received[0]!;
    const headers = headersOf(request);
    const wrongSecret = secrets.get(ACCOUNT_A)!;
    assert.throws(() =>
      new Webhook(wrongSecret).verify(request.body, {
        "webhook-id": headers.id,
        "webhook-timestamp": headers.timestamp,
        "webhook-signature": headers.signature,
      }),
    );
    assert.equal(await validateWebhook({ ...headers, body: request.body, secret: wrongSecret }), false);
    const rightSecret = secrets.get(ACCOUNT_B)!;
    assert.equal(await validateWebhook({ ...headers, body: request.body, secret: rightSecret }), true);
  });

  test("500 then 200: retried with the same webhook-id and a new timestamp and signature (W3)", async () => {
    script.set("/flaky", [{ status: 500 }, { status: 200 }]);
    const id = await enqueue({ path: "/flaky" });
    const firstAttemptAt = clock;
    startDispatcher();
    await settled(id, "pending", 1);
    const pending = await outbox(id);
    assert.equal(pending.next_attempt_at, new Date(firstAttemptAt + 1_000).toISOString());
    assert.match(pending.last_error ?? "", /the receiver answered 500 Internal Server Error/);

    // Not due yet: nothing happens.
    clock += 999;
    dispatcher?.wake();
    await sleep(80);
    assert.equal(received.length, 1);

    clock += 1;
    dispatcher?.wake();
    await settled(id, "delivered", 2);
    assert.equal(received.length, 2);
    const [first, second] = received.map(headersOf);
    assert.equal(first?.id, second?.id);
    assert.notEqual(first?.timestamp, second?.timestamp);
    assert.notEqual(first?.signature, second?.signature);
    assert.equal(second?.timestamp, String(Math.floor(clock / 1000)));
    const secret = secrets.get(ACCOUNT_A)!;
    for (const request of received) {
      assert.equal(await validateWebhook({ ...headersOf(request), body: request.body, secret }), true);
    }
    assert.deepEqual(
      reports.map((r) => r.outcome),
      ["retrying", "delivered"],
    );
  });

  test("a refused connection is retried; after 10 minutes down the terminal webhook still arrives once (W3, W4)", async () => {
    const down = await startHttpServer(() => {});
    const port = down.port;
    await down.close();
    const id = await enqueue({ url: `http://127.0.0.1:${port}/hook` });
    startDispatcher();
    await settled(id, "pending", 1);
    assert.match((await outbox(id)).last_error ?? "", /refused the connection/);

    // Ten minutes of failed retries on the fake clock: 1 s, 2 s, 4 s, … until past 10 minutes.
    const start = clock;
    let attempts = 1;
    while (clock - start < 10 * 60 * 1000) {
      clock = Date.parse((await outbox(id)).next_attempt_at);
      dispatcher?.wake();
      attempts++;
      await settled(id, "pending", attempts);
    }
    assert.ok(attempts >= 9 && attempts <= 11, `${attempts} attempts`);

    // The receiver comes back on the same port.
    const back = http.createServer((req, res) => {
      received.push({ path: req.url ?? "/", headers: req.headers, body: "", at: Date.now() });
      res.end();
    });
    await new Promise<void>((resolve) => back.listen(port, "127.0.0.1", resolve));
    try {
      clock = Date.parse((await outbox(id)).next_attempt_at);
      dispatcher?.wake();
      await settled(id, "delivered", attempts + 1);
      assert.equal(received.length, 1);
      assert.equal(reports.filter((r) => r.outcome === "delivered").length, 1);
    } finally {
      back.closeAllConnections();
      await new Promise((resolve) => back.close(resolve));
    }
  });

  test("302 is not followed and counts as a failure (W6)", async () => {
    const location = `http://127.0.0.1:${canary.port}/internal`;
    script.set("/moved", [{ status: 302, headers: { location } }]);
    const terminal = await enqueue({ path: "/moved" });
    const intermediate = await enqueue({ path: "/moved", event: "output" });
    startDispatcher();
    await settled(terminal, "pending", 1);
    await settled(intermediate, "failed", 1);
    assert.match(
      (await outbox(terminal)).last_error ?? "",
      /302 Found \(webhook redirects are not followed\)/,
    );
    assert.equal(received.length, 2);
    assert.equal(canary.connections, 0);
  });

  test("410 Gone stops all further attempts (W7)", async () => {
    script.set("/gone", [{ status: 410 }]);
    const id = await enqueue({ path: "/gone" });
    startDispatcher();
    await settled(id, "failed", 1);
    assert.match((await outbox(id)).last_error ?? "", /410 Gone; no further attempts/);
    clock += 60 * 60 * 1000;
    dispatcher?.wake();
    await sleep(80);
    assert.equal(received.length, 1);
  });

  test("Retry-After on 429 and 503 is honoured (W8)", async () => {
    script.set("/busy", [{ status: 429, headers: { "retry-after": "120" } }, { status: 200 }]);
    const seconds = await enqueue({ path: "/busy" });
    startDispatcher();
    await settled(seconds, "pending", 1);
    const attemptAt = clock;
    assert.equal((await outbox(seconds)).next_attempt_at, new Date(attemptAt + 120_000).toISOString());

    clock = attemptAt + 119_000;
    dispatcher?.wake();
    await sleep(80);
    assert.equal(received.length, 1, "no attempt before Retry-After");
    clock = attemptAt + 120_000;
    dispatcher?.wake();
    await settled(seconds, "delivered", 2);

    const retryAt = new Date(Math.ceil((clock + 90_000) / 1000) * 1000);
    script.set("/unavailable", [
      { status: 503, headers: { "retry-after": retryAt.toUTCString() } },
      { status: 200 },
    ]);
    const date = await enqueue({ path: "/unavailable" });
    dispatcher?.wake();
    await settled(date, "pending", 1);
    assert.equal((await outbox(date)).next_attempt_at, retryAt.toISOString());
  });

  test("start, output and logs events are tried once, never retried (W5)", async () => {
    script.set("/down", [{ status: 500 }]);
    const ids = await Promise.all(
      (["start", "output", "logs"] as const).map((event) => enqueue({ path: "/down", event })),
    );
    startDispatcher();
    for (const id of ids) await settled(id, "failed", 1);
    clock += 60 * 60 * 1000;
    dispatcher?.wake();
    await sleep(80);
    assert.equal(received.length, 3);
  });

  test("a receiver that never answers is aborted at the timeout; others are not held up (W12)", async () => {
    script.set("/stall", ["stall"]);
    const stalled = await enqueue({ path: "/stall" });
    const stalledStart = await enqueue({ path: "/stall", event: "start" });
    const started = Date.now();
    startDispatcher({ timeoutMs: 1_500 });
    await waitFor(() => received.length === 2, "both stalled requests to arrive");
    const prompt = await enqueue({ path: "/ok" });
    dispatcher?.wake();
    await settled(prompt, "delivered", 1);
    assert.ok(Date.now() - started < 1_000, "the healthy receiver got its webhook while the other stalled");

    await settled(stalled, "pending", 1);
    await settled(stalledStart, "failed", 1);
    assert.ok(Date.now() - started >= 1_400);
    assert.match((await outbox(stalled)).last_error ?? "", /timed out after 1500 ms/);
  });

  test("past created_at + maxAge the terminal webhook fails for good", async () => {
    script.set("/down", [{ status: 503 }]);
    const maxAgeMs = 60_000;
    const id = await enqueue({ path: "/down", createdAt: clock - maxAgeMs + 500 });
    startDispatcher({ maxAgeMs });
    await settled(id, "pending", 1);
    // The retry window ends in 500 ms: the last attempt is at the deadline, not skipped.
    const deadline = Date.parse((await outbox(id)).created_at) + maxAgeMs;
    assert.equal((await outbox(id)).next_attempt_at, new Date(deadline).toISOString());
    clock = deadline;
    dispatcher?.wake();
    await settled(id, "failed", 2);
    assert.match((await outbox(id)).last_error ?? "", /503 Service Unavailable \(gave up after 2 attempts\)/);
  });

  test("a webhook URL on a forbidden address fails at delivery without a connection (W9)", async () => {
    const id = await enqueue({ url: `http://127.0.0.2:${canary.port}/hook` });
    const metadata = await enqueue({ url: "http://169.254.169.254/latest/meta-data/" });
    startDispatcher();
    await settled(id, "failed", 1);
    await settled(metadata, "failed", 1);
    assert.match((await outbox(id)).last_error ?? "", /127\.0\.0\.2 is a loopback address/);
    assert.equal(canary.connections, 0);
  });

  test("a row claimed by a dispatcher that died is delivered after its lease, same webhook-id (W11)", async () => {
    const id = await enqueue({ path: "/ok" });
    const [claimed] = await store.claimOutbox(new Date(clock).toISOString(), 10, 30_000);
    assert.equal(claimed?.prediction_id, id);
    startDispatcher();
    await sleep(80);
    assert.equal(received.length, 0, "the lease still holds");
    clock += 30_000;
    dispatcher?.wake();
    await settled(id, "delivered", 1);
    assert.equal(received[0]?.headers["webhook-id"], claimed?.webhook_id);
  });

  test("deliveries run concurrently up to the bound", async () => {
    script.set("/slow", ["stall"]);
    const ids = await Promise.all([1, 2, 3, 4, 5].map(() => enqueue({ path: "/slow", event: "logs" })));
    startDispatcher({ concurrency: 3, timeoutMs: 300 });
    await waitFor(() => received.length === 3, "three concurrent requests");
    await sleep(100);
    assert.equal(received.length, 3, "no more than three at once");
    for (const id of ids) await settled(id, "failed", 1);
    assert.equal(received.length, 5);
  });

  test("one prediction's events arrive one after another, in the order they happened", async () => {
    const arrived: string[] = [];
    // The first event's receiver is slow: a concurrent delivery of the later ones would overtake it.
    const slowFirst = await startHttpServer((req, res) => {
      const event = String(req.url).slice(1);
      arrived.push(`${event}:in`);
      setTimeout(
        () => {
          arrived.push(`${event}:out`);
          res.end("ok");
        },
        event === "start" ? 150 : 0,
      );
    });
    try {
      const predictionId = `p_${randomUUID()}`;
      const at = new Date(clock).toISOString();
      const events: WebhookEventType[] = ["start", "output", "logs", "completed"];
      await store.insertPrediction(prediction(predictionId, ACCOUNT_A), {
        outbox: events.map((event) => ({
          id: newSortableId(),
          prediction_id: predictionId,
          account_id: ACCOUNT_A,
          event,
          webhook_id: `msg_${randomUUID()}`,
          url: `${slowFirst.origin}/${event}`,
          body: JSON.stringify({ id: predictionId, event }),
          next_attempt_at: at,
          created_at: at,
        })),
      });
      startDispatcher();
      await waitFor(async () => {
        const rows = await store.listOutbox(predictionId);
        return rows.every((row) => row.status === "delivered");
      }, "all four delivered");
      assert.deepEqual(
        arrived,
        events.flatMap((event) => [`${event}:in`, `${event}:out`]),
      );
    } finally {
      await slowFirst.close();
    }
  });

  test("stop() waits for deliveries in flight", async () => {
    const slow = await startHttpServer((_req, res) => {
      setTimeout(() => res.end("ok"), 200);
    });
    try {
      const id = await enqueue({ url: `${slow.origin}/hook` });
      const running = startDispatcher();
      await sleep(50);
      await running.stop();
      assert.equal((await outbox(id)).status, "delivered");
      // Stopped: new rows stay pending.
      const later = await enqueue({ path: "/ok" });
      running.wake();
      await sleep(60);
      assert.equal((await outbox(later)).status, "pending");
    } finally {
      await slow.close();
    }
  });
});
