import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  APIConnectionError,
  APITimeoutError,
  APIUserAbortError,
  AuthenticationError,
  InternalServerError,
  isReplicantError,
  NotFoundError,
  RateLimitError,
  Replicant,
  ReplicantError,
  UnprocessableEntityError,
} from "../src/index.js";
import { backoffDelayMs, retryAfterMs } from "../src/internal/retry.js";
import { BASE_URL, fakeFetch, hang, json, prediction, problem } from "./helpers/fake-fetch.js";

function client(
  fetch: Replicant["fetch"],
  options: Partial<ConstructorParameters<typeof Replicant>[0]> = {},
) {
  return new Replicant({ auth: "r8_test", baseUrl: BASE_URL, fetch, ...options });
}

describe("retries", () => {
  test("a GET is retried after 5xx with backoff, then succeeds", async () => {
    const { fetch, requests } = fakeFetch((_request, index) =>
      index < 2 ? problem(503, "Unavailable", "try later") : json({ username: "me", type: "user" }),
    );
    const account = await client(fetch).account.get();
    assert.equal(account.username, "me");
    assert.equal(requests.length, 3);
    const gap = requests[1]!.at - requests[0]!.at;
    assert.ok(gap >= 300, `expected a backoff between attempts, got ${gap} ms`);
  });

  test("gives up after maxRetries and throws the status-typed error", async () => {
    const { fetch, requests } = fakeFetch(() => problem(500, "Internal Server Error", "boom"));
    await assert.rejects(client(fetch, { maxRetries: 1 }).hardware.list(), (error: unknown) => {
      assert.ok(error instanceof InternalServerError);
      assert.equal(error.status, 500);
      assert.equal(error.detail, "boom");
      return true;
    });
    assert.equal(requests.length, 2);
  });

  test("429 waits Retry-After seconds", async () => {
    const { fetch, requests } = fakeFetch((_request, index) =>
      index === 0
        ? new Response(JSON.stringify({ detail: "Request was throttled." }), {
            status: 429,
            headers: { "Retry-After": "1", "Content-Type": "application/json" },
          })
        : json([{ name: "CPU", sku: "cpu" }]),
    );
    const hardware = await client(fetch).hardware.list();
    assert.deepEqual(hardware, [{ name: "CPU", sku: "cpu" }]);
    const gap = requests[1]!.at - requests[0]!.at;
    assert.ok(gap >= 950, `expected about 1 s, got ${gap} ms`);
  });

  test("429 honours Retry-After as an HTTP date", async () => {
    const when = new Date(Date.now() + 2000).toUTCString();
    const { fetch, requests } = fakeFetch((_request, index) =>
      index === 0
        ? new Response("", { status: 429, headers: { "Retry-After": when } })
        : json({ key: "whsec_x" }),
    );
    await client(fetch).webhooks.default.secret.get();
    const gap = requests[1]!.at - requests[0]!.at;
    assert.ok(gap >= 900, `expected the date to be waited for, got ${gap} ms`);
  });

  test("a Retry-After beyond 60 s is not waited out: the RateLimitError is thrown at once", async () => {
    const { fetch, requests } = fakeFetch(
      () => new Response("", { status: 429, headers: { "Retry-After": "3600" } }),
    );
    await assert.rejects(client(fetch).account.get(), RateLimitError);
    assert.equal(requests.length, 1);
  });

  test("connection errors are retried for GETs and surface as APIConnectionError", async () => {
    const { fetch, requests } = fakeFetch(() => {
      throw new TypeError("fetch failed");
    });
    await assert.rejects(client(fetch, { maxRetries: 2 }).account.get(), (error: unknown) => {
      assert.ok(error instanceof APIConnectionError);
      assert.ok(error.cause instanceof TypeError);
      return true;
    });
    assert.equal(requests.length, 3);
  });

  test("a request that gets no headers within `timeout` fails with APITimeoutError, after retries", async () => {
    const { fetch, requests } = fakeFetch(() => hang());
    const started = Date.now();
    await assert.rejects(client(fetch, { timeout: 100, maxRetries: 1 }).account.get(), APITimeoutError);
    assert.equal(requests.length, 2);
    assert.ok(Date.now() - started < 3000);
  });

  test("a timed-out first attempt is retried and the second answer is used", async () => {
    const { fetch, requests } = fakeFetch((_request, index) =>
      index === 0 ? hang() : json({ username: "me" }),
    );
    const account = await client(fetch, { timeout: 100 }).account.get();
    assert.equal(account.username, "me");
    assert.equal(requests.length, 2);
  });

  test("backoff grows exponentially, is capped at 8 s, and has jitter", () => {
    assert.equal(
      backoffDelayMs(0, () => 0),
      500,
    );
    assert.equal(
      backoffDelayMs(1, () => 0),
      1000,
    );
    assert.equal(
      backoffDelayMs(10, () => 0),
      8000,
    );
    assert.equal(
      backoffDelayMs(0, () => 1),
      375,
    );
  });

  test("Retry-After parsing: seconds, decimals, dates, retry-after-ms, junk", () => {
    const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
    assert.equal(retryAfterMs(new Headers({ "Retry-After": "3" }), now), 3000);
    assert.equal(retryAfterMs(new Headers({ "Retry-After": "0.5" }), now), 500);
    assert.equal(retryAfterMs(new Headers({ "Retry-After": "Wed, 21 Oct 2015 07:28:05 GMT" }), now), 5000);
    assert.equal(retryAfterMs(new Headers({ "retry-after-ms": "250" }), now), 250);
    assert.equal(retryAfterMs(new Headers({ "Retry-After": "soon" }), now), undefined);
    assert.equal(retryAfterMs(new Headers(), now), undefined);
  });
});

describe("idempotent creates", () => {
  test("a prediction create retried after 503 and a dropped connection sends the same Idempotency-Key", async () => {
    const { fetch, requests } = fakeFetch((_request, index) => {
      if (index === 0) return problem(503, "Unavailable", "busy");
      if (index === 1) throw new TypeError("socket hang up");
      return json(prediction({ status: "succeeded", output: "hello" }), { status: 201 });
    });
    const created = await client(fetch).predictions.create({
      model: "replicate/hello-world",
      input: { text: "x" },
    });
    assert.equal(created.output, "hello");
    assert.equal(requests.length, 3);
    const keys = requests.map((request) => request.headers.get("idempotency-key"));
    assert.ok(keys[0], "the first attempt carries a key");
    assert.deepEqual(new Set(keys).size, 1, `keys differ: ${keys.join(", ")}`);
    assert.deepEqual(new Set(requests.map((request) => request.body)).size, 1, "bodies are identical");
  });

  test("two separate creates get two different keys", async () => {
    const { fetch, requests } = fakeFetch(() => json(prediction(), { status: 201 }));
    const replicate = client(fetch);
    await replicate.predictions.create({ version: "a".repeat(64), input: {} });
    await replicate.predictions.create({ version: "a".repeat(64), input: {} });
    assert.notEqual(requests[0]!.headers.get("idempotency-key"), requests[1]!.headers.get("idempotency-key"));
  });

  test("every create POST (models, deployments, trainings, files) carries an Idempotency-Key", async () => {
    const { fetch, requests } = fakeFetch(() =>
      json({ id: "x", urls: { get: `${BASE_URL}/files/x` } }, { status: 201 }),
    );
    const replicate = client(fetch);
    await replicate.models.create("me", "m", { visibility: "private", hardware: "cpu" });
    await replicate.deployments.create({
      name: "d",
      model: "me/m",
      version: "v",
      hardware: "cpu",
      min_instances: 0,
      max_instances: 1,
    });
    await replicate.trainings.create("me", "m", "v", { destination: "me/out", input: {} });
    await replicate.files.create(new Blob(["hi"]));
    await replicate.models.predictions.create("me", "m", { input: {} });
    await replicate.deployments.predictions.create("me", "d", { input: {} });
    for (const request of requests)
      assert.ok(request.headers.get("idempotency-key"), `${request.url} lacks a key`);
  });

  test("a caller-supplied idempotencyKey is used as is", async () => {
    const { fetch, requests } = fakeFetch(() => json(prediction(), { status: 201 }));
    await client(fetch).predictions.create({ version: "v", input: {}, idempotencyKey: "my-key" });
    assert.equal(requests[0]!.headers.get("idempotency-key"), "my-key");
  });

  test("a low-level POST without a key is never retried after 5xx or a dropped connection", async () => {
    const failing = fakeFetch(() => problem(502, "Bad Gateway", "upstream"));
    await assert.rejects(client(failing.fetch).post("/custom", { data: {} }), InternalServerError);
    assert.equal(failing.requests.length, 1);
    const dropped = fakeFetch(() => {
      throw new TypeError("reset");
    });
    await assert.rejects(client(dropped.fetch).post("/custom", { data: {} }), APIConnectionError);
    assert.equal(dropped.requests.length, 1);
  });

  test("a keyless POST is still retried after 429 (the server refused it outright)", async () => {
    const { fetch, requests } = fakeFetch((_request, index) =>
      index === 0 ? new Response("", { status: 429, headers: { "Retry-After": "0" } }) : json({ ok: true }),
    );
    await client(fetch).post("/custom", { data: {} });
    assert.equal(requests.length, 2);
  });

  test("Prefer, Cancel-After and the timeout extension of a blocking create", async () => {
    const { fetch, requests } = fakeFetch(() => json(prediction({ status: "succeeded" }), { status: 201 }));
    const replicate = client(fetch, { timeout: 50 });
    await replicate.predictions.create({ model: "a/b", input: {}, wait: 5, cancelAfter: "2m" });
    await replicate.predictions.create({ model: "a/b", input: {}, wait: true, cancelAfter: 30 });
    assert.equal(requests[0]!.headers.get("prefer"), "wait=5");
    assert.equal(requests[0]!.headers.get("cancel-after"), "2m");
    assert.equal(requests[1]!.headers.get("prefer"), "wait");
    assert.equal(requests[1]!.headers.get("cancel-after"), "30s");
  });
});

describe("errors", () => {
  test("problem+json is parsed into a status-typed error", async () => {
    const { fetch } = fakeFetch(() =>
      problem(422, "Input validation failed", "- input: text is required", {
        invalid_fields: [{ type: "required", field: "input", description: "text is required" }],
      }),
    );
    await assert.rejects(client(fetch).predictions.create({ model: "a/b", input: {} }), (error: unknown) => {
      assert.ok(error instanceof UnprocessableEntityError);
      assert.ok(error instanceof ReplicantError);
      assert.ok(isReplicantError(error));
      assert.equal(error.title, "Input validation failed");
      assert.equal(error.invalidFields[0]?.field, "input");
      assert.match(error.message, /Input validation failed/);
      assert.equal(error.request.method, "POST");
      return true;
    });
  });

  test("401 and 404 map to their classes, also as statics on the client", async () => {
    const unauthorized = fakeFetch(() => problem(401, "Unauthenticated", "You did not pass a valid token"));
    await assert.rejects(client(unauthorized.fetch).account.get(), Replicant.AuthenticationError);
    await assert.rejects(client(unauthorized.fetch).account.get(), AuthenticationError);
    const missing = fakeFetch(() => problem(404, "Not found", "no such prediction"));
    await assert.rejects(client(missing.fetch).predictions.get("nope"), NotFoundError);
  });

  test("a non-JSON error body is kept as text", async () => {
    const { fetch } = fakeFetch(() => new Response("<html>bad gateway</html>", { status: 400 }));
    await assert.rejects(client(fetch).account.get(), (error: unknown) => {
      assert.ok(error instanceof Replicant.BadRequestError);
      assert.equal(error.problem, undefined);
      assert.match(error.body, /bad gateway/);
      return true;
    });
  });
});

describe("abort", () => {
  test("an already-aborted signal rejects before any request", async () => {
    const { fetch, requests } = fakeFetch(() => json({}));
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      client(fetch).run("a/b", { input: {}, signal: controller.signal }),
      APIUserAbortError,
    );
    assert.equal(requests.length, 0);
  });

  test("aborting during the create rejects with an AbortError-named error", async () => {
    const { fetch } = fakeFetch(() => hang());
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(
      client(fetch).predictions.create({ model: "a/b", input: {}, signal: controller.signal }),
      {
        name: "AbortError",
      },
    );
  });

  test("aborting while run() polls cancels the prediction and rejects", async () => {
    const { fetch, requests } = fakeFetch((request) => {
      if (request.url.endsWith("/cancel")) return json(prediction({ status: "canceled" }));
      if (request.method === "POST") return json(prediction({ status: "starting" }), { status: 201 });
      return json(prediction({ status: "processing" }));
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 120);
    await assert.rejects(
      client(fetch, { pollInterval: 20 }).run("a/b", { input: {}, signal: controller.signal }),
      APIUserAbortError,
    );
    assert.ok(requests.some((request) => request.url.endsWith("/predictions/p1/cancel")));
  });

  test("cancelOnAbort: false leaves the prediction running", async () => {
    const { fetch, requests } = fakeFetch((request) =>
      request.method === "POST"
        ? json(prediction(), { status: 201 })
        : json(prediction({ status: "processing" })),
    );
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 60);
    await assert.rejects(
      client(fetch, { pollInterval: 20 }).run("a/b", {
        input: {},
        signal: controller.signal,
        cancelOnAbort: false,
      }),
      APIUserAbortError,
    );
    assert.ok(!requests.some((request) => request.url.endsWith("/cancel")));
  });
});

describe("request plumbing", () => {
  test("auth, user agent, cache: no-store, and no token to other hosts", async () => {
    const inits: RequestInit[] = [];
    const { fetch: inner, requests } = fakeFetch(() => json({ next: null, previous: null, results: [] }));
    const fetch: Replicant["fetch"] = (input, init) => {
      if (init) inits.push(init);
      return inner(input, init);
    };
    const replicate = client(fetch, { userAgent: "my-app/1.0" });
    await replicate.predictions.list();
    await replicate.request("https://elsewhere.test/v1/x", {});
    assert.equal(requests[0]!.headers.get("authorization"), "Bearer r8_test");
    assert.equal(requests[0]!.headers.get("user-agent"), "my-app/1.0");
    assert.equal(inits[0]!.cache, "no-store");
    assert.equal(requests[1]!.headers.get("authorization"), null);
  });

  test("on Node's own fetch no cache mode is sent; on Next.js's patched fetch, no-store", async () => {
    const original = globalThis.fetch;
    const modes: (RequestCache | undefined)[] = [];
    const { fetch: inner } = fakeFetch(() => json({ username: "me" }));
    const recording = (input: RequestInfo | URL, init?: RequestInit) => {
      modes.push(init?.cache);
      return inner(input as string, init);
    };
    try {
      globalThis.fetch = recording as typeof fetch;
      const replicate = new Replicant({ auth: "r8_test", baseUrl: BASE_URL });
      await replicate.account.get();
      await replicate.fileOutput(`${BASE_URL}/files/f`).blob();
      globalThis.fetch = Object.assign(recording, { __nextPatched: true }) as typeof fetch;
      await replicate.account.get();
      await new Replicant({ auth: "r8_test", baseUrl: BASE_URL, cache: "reload" }).account.get();
    } finally {
      globalThis.fetch = original;
    }
    assert.deepEqual(modes, [undefined, undefined, "no-store", "reload"]);
  });

  test("a request without a time limit or a caller's signal carries no signal; with either, one", async () => {
    const signals: (AbortSignal | null | undefined)[] = [];
    const { fetch: inner } = fakeFetch(() => json({ username: "me" }));
    const fetch: Replicant["fetch"] = (input, init) => {
      signals.push(init?.signal);
      return inner(input, init);
    };
    await client(fetch, { timeout: 0 }).account.get();
    await client(fetch, { timeout: 0 }).account.get({ signal: new AbortController().signal });
    await client(fetch).account.get();
    assert.equal(signals[0], undefined);
    assert.ok(signals[1] instanceof AbortSignal);
    assert.ok(signals[2] instanceof AbortSignal);
  });

  test("a fetch that rejects the cache field is retried without it", async () => {
    let calls = 0;
    const fetch: Replicant["fetch"] = async (_input, init) => {
      calls++;
      if (init?.cache)
        throw new TypeError("The 'cache' field on 'RequestInitializerDict' is not implemented.");
      return json({ username: "worker" });
    };
    const replicate = client(fetch);
    assert.equal((await replicate.account.get()).username, "worker");
    assert.equal(replicate.cache, null);
    assert.equal(calls, 2);
  });

  test("replacing client.fetch after construction takes effect (as in the replicate README)", async () => {
    const replicate = client(fakeFetch(() => json({ username: "old" })).fetch);
    const replacement = fakeFetch(() => json({ username: "new" }));
    replicate.fetch = replacement.fetch;
    assert.equal((await replicate.account.get()).username, "new");
  });

  test("env vars are read where process exists", () => {
    const saved = { ...process.env };
    process.env.REPLICATE_API_TOKEN = "r8_env";
    process.env.REPLICATE_BASE_URL = "https://env.example.test/v1";
    process.env.REPLICATE_POLL_INTERVAL = "0.25";
    try {
      const replicate = new Replicant();
      assert.equal(replicate.auth, "r8_env");
      assert.equal(replicate.baseUrl, "https://env.example.test/v1");
      assert.equal(replicate.pollInterval, 250);
    } finally {
      process.env = saved;
    }
  });
});
