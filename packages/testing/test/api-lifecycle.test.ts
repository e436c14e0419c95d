// Prediction lifecycle details: sync waits, deadlines, idempotency, streaming, webhooks' filters and
// throttling, file outputs and retention.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { inProcessOnly, startTestServer, type TestServer } from "../src/index.js";

let server: TestServer;

async function api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json", ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    json: (text ? JSON.parse(text) : undefined) as Record<string, unknown>,
  };
}

async function waitTerminal(id: string): Promise<Record<string, unknown>> {
  for (;;) {
    const res = await api("GET", `/predictions/${id}`);
    if (["succeeded", "failed", "canceled", "aborted"].includes(res.json.status as string)) return res.json;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Reads an SSE response into events until `done` or the stream ends. */
async function readEvents(url: string, headers: Record<string, string> = {}, stopAfter?: number) {
  const response = await fetch(url, { headers: { accept: "text/event-stream", ...headers } });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/);
  const decoder = new TextDecoder();
  const events: { event: string; data: string; id: string | undefined }[] = [];
  let buffer = "";
  const reader = response.body!.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let index = buffer.indexOf("\n\n");
    while (index >= 0) {
      const block = buffer.slice(0, index);
      buffer = buffer.slice(index + 2);
      index = buffer.indexOf("\n\n");
      if (block.startsWith(":")) continue;
      let event = "message";
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("id: ")) id = line.slice(4);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      events.push({ event, data: data.join("\n"), id });
      if (stopAfter !== undefined && events.filter((e) => e.event === "output").length >= stopAfter) {
        await reader.cancel();
        return events;
      }
    }
  }
  return events;
}

before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.close();
});

describe("Prefer: wait", () => {
  it("returns 202 with the unfinished prediction and a Location header when the wait runs out", async () => {
    const res = await api(
      "POST",
      "/predictions",
      { version: "replicant/stream-test", input: { tokens: 50, delay_ms: 100 } },
      { prefer: "wait=1" },
    );
    assert.equal(res.status, 202);
    assert.ok(["starting", "processing"].includes(res.json.status as string));
    assert.equal(res.headers.get("location"), (res.json.urls as { get: string }).get);
    await api("POST", `/predictions/${res.json.id as string}/cancel`);
  });
});

describe("a run's start", () => {
  it(
    "is written with the final update when the run ends at once, and alone when it runs on",
    inProcessOnly("records the store's prediction updates inside the server"),
    async () => {
      const { store } = server.server.ctx;
      const update = store.updatePrediction;
      const patches = new Map<string, Record<string, unknown>[]>();
      store.updatePrediction = (...args: Parameters<typeof update>) => {
        const [id, patch] = args;
        patches.set(id, [...(patches.get(id) ?? []), patch as Record<string, unknown>]);
        return update.apply(store, args);
      };
      try {
        // A start and an end a few milliseconds apart: one write, where there were two. A machine slow
        // enough to space them by more than that writes the start alone, so this asks for one of ten.
        const quick: Record<string, unknown>[] = [];
        for (let i = 0; i < 10; i++) {
          const res = await api(
            "POST",
            "/predictions",
            { version: "replicate/hello-world", input: { text: `once ${i}` } },
            { prefer: "wait" },
          );
          assert.equal(res.json.status, "succeeded");
          assert.equal(typeof res.json.started_at, "string", "the start is recorded either way");
          assert.equal(typeof (res.json.metrics as { predict_time?: unknown }).predict_time, "number");
          quick.push(res.json);
        }
        const writes = quick.map((p) => patches.get(p.id as string) ?? []);
        const once = writes.filter((list) => list.length === 1);
        assert.ok(
          once.length >= 1,
          `updates per prediction: ${writes.map((list) => list.length).join(", ")}`,
        );
        for (const [only] of once) {
          assert.equal(only?.status, "succeeded");
          assert.equal(only?.attempt, 1);
          assert.equal(typeof only?.started_at, "string");
        }

        // A run that goes on shows as processing long before its first output (the start written alone).
        const created = Date.now();
        const slow = await api("POST", "/predictions", {
          version: "replicant/stream-test",
          input: { tokens: 1, delay_ms: 2_000 },
        });
        let seen = slow.json;
        while (seen.status !== "processing" && Date.now() - created < 1_500) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          seen = (await api("GET", `/predictions/${slow.json.id as string}`)).json;
        }
        assert.equal(seen.status, "processing", "processing before its first output");
        assert.equal(typeof seen.started_at, "string");
        assert.equal(seen.output, null);
        await api("POST", `/predictions/${slow.json.id as string}/cancel`);
        assert.equal((await waitTerminal(slow.json.id as string)).status, "canceled");
      } finally {
        store.updatePrediction = update;
      }
    },
  );
});

describe("Cancel-After", () => {
  it("a prediction still queued at its deadline is aborted; one running is canceled", async () => {
    const busy = await startTestServer({ workerConcurrency: 1 });
    try {
      const call = (body: unknown, headers: Record<string, string>) =>
        fetch(`${busy.apiUrl}/predictions`, {
          method: "POST",
          headers: { authorization: `Bearer ${busy.token}`, "content-type": "application/json", ...headers },
          body: JSON.stringify(body),
        }).then((r) => r.json() as Promise<Record<string, unknown>>);
      const running = await call(
        { version: "replicant/stream-test", input: { tokens: 1000, delay_ms: 10 } },
        { "cancel-after": "7s" },
      );
      const queued = await call(
        { version: "replicant/stream-test", input: { tokens: 1, delay_ms: 1 } },
        { "cancel-after": "5" },
      );
      assert.ok(running.deadline);
      const get = (id: string) =>
        fetch(`${busy.apiUrl}/predictions/${id}?wait=10`, {
          headers: { authorization: `Bearer ${busy.token}` },
        }).then((r) => r.json() as Promise<Record<string, unknown>>);
      const [a, b] = await Promise.all([get(running.id as string), get(queued.id as string)]);
      assert.equal(a.status, "canceled");
      assert.equal(b.status, "aborted");
    } finally {
      await busy.close();
    }
  });
});

describe("idempotency keys", () => {
  it("the same key and body replay the same prediction; another body is refused", async () => {
    const body = { version: "replicate/hello-world", input: { text: "once" } };
    const first = await api("POST", "/predictions", body, { "idempotency-key": "key-1" });
    const second = await api("POST", "/predictions", body, { "idempotency-key": "key-1" });
    assert.equal(first.status, 201);
    assert.equal(second.json.id, first.json.id);
    assert.equal(second.headers.get("idempotent-replayed"), "true");
    const misuse = await api(
      "POST",
      "/predictions",
      { ...body, input: { text: "twice" } },
      { "idempotency-key": "key-1" },
    );
    assert.equal(misuse.status, 422);
    assert.equal(
      (await api("POST", "/predictions", body, { "idempotency-key": "k".repeat(256) })).status,
      400,
    );
  });
  it(
    "a create whose insert fails leaves no job behind; a finished prediction's job is gone with its final update",
    inProcessOnly("reads the embedded queue's counts and fails one insert inside the server"),
    async () => {
      const idle = await startTestServer({ worker: false });
      try {
        const { queue } = idle.server.ctx;
        assert.equal(queue.commitsWithStore, true, "the embedded queue writes in the store's transactions");
        const post = (headers: Record<string, string> = {}) =>
          fetch(`${idle.apiUrl}/predictions`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${idle.token}`,
              "content-type": "application/json",
              ...headers,
            },
            body: JSON.stringify({ version: "replicate/hello-world", input: { text: "queued" } }),
          });
        assert.equal((await post({ "cancel-after": "1h" })).status, 201);
        // An insert that fails (a fault no request can cause on its own): the jobs written beside it,
        // in its turn, are removed, and the client gets the error.
        const { store } = idle.server.ctx;
        const insert = store.insertPrediction;
        store.insertPrediction = () => Promise.reject(new Error("disk full"));
        try {
          assert.equal((await post({ "cancel-after": "1h" })).status, 500);
        } finally {
          store.insertPrediction = insert;
        }
        assert.deepEqual(await queue.counts("predictions"), { waiting: 1, active: 0 });
        assert.deepEqual(await queue.counts("deadlines"), { waiting: 1, active: 0 });
      } finally {
        await idle.close();
      }
      const working = await startTestServer();
      try {
        const response = await fetch(`${working.apiUrl}/predictions`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${working.token}`,
            "content-type": "application/json",
            prefer: "wait",
          },
          body: JSON.stringify({ version: "replicate/hello-world", input: { text: "x" } }),
        });
        assert.equal(((await response.json()) as { status: string }).status, "succeeded");
        assert.deepEqual(await working.server.ctx.queue.counts("predictions"), { waiting: 0, active: 0 });
      } finally {
        await working.close();
      }
    },
  );
  it("20 concurrent requests with one key create exactly one prediction", async () => {
    const body = { version: "replicate/hello-world", input: { text: "race" } };
    const results = await Promise.all(
      Array.from({ length: 20 }, () => api("POST", "/predictions", body, { "idempotency-key": "race-key" })),
    );
    const ids = new Set(results.filter((r) => r.status === 201).map((r) => r.json.id));
    assert.equal(ids.size, 1);
    for (const r of results) assert.ok([201, 409].includes(r.status));
  });
  it("a key that failed validation is not stored", async () => {
    const bad = await api(
      "POST",
      "/predictions",
      { version: "replicant/stream-test", input: { tokens: "x" } },
      { "idempotency-key": "fix-me" },
    );
    assert.equal(bad.status, 422);
    const good = await api(
      "POST",
      "/predictions",
      { version: "replicant/stream-test", input: { tokens: 1, delay_ms: 0 } },
      { "idempotency-key": "fix-me" },
    );
    assert.equal(good.status, 201);
  });
});

describe("streaming", () => {
  it("a late client gets the output so far, then the rest; many clients see the same stream", async () => {
    const res = await api("POST", "/predictions", {
      version: "replicant/stream-test",
      input: { tokens: 6, delay_ms: 60 },
    });
    const url = (res.json.urls as { stream: string }).stream;
    const early = readEvents(url);
    await new Promise((resolve) => setTimeout(resolve, 250));
    const late = readEvents(url);
    const [a, b] = await Promise.all([early, late]);
    const outputs = (events: { event: string; data: string }[]) =>
      events.filter((e) => e.event === "output").map((e) => e.data);
    const expected = ["token-1 ", "token-2 ", "token-3 ", "token-4 ", "token-5 ", "token-6 "];
    assert.deepEqual(outputs(a), expected);
    assert.deepEqual(outputs(b), expected);
    assert.equal(a.at(-1)?.event, "done");
    assert.equal(b.at(-1)?.event, "done");
    assert.ok(b.some((e) => e.event === "logs"));
  });
  it("a client that joins a running prediction gets its output so far at once, not at the next flush", async () => {
    // Token 1 at ~400 ms, token 2 at ~800 ms. The store holds token 1 only from its flush (100 ms later);
    // a client that joined in between used to see nothing until token 2 showed the gap.
    const res = await api("POST", "/predictions", {
      version: "replicant/stream-test",
      input: { tokens: 2, delay_ms: 400 },
    });
    const url = (res.json.urls as { stream: string }).stream;
    await readEvents(url, {}, 1); // token 1 is out
    const joined = performance.now();
    let firstOutputMs = Number.NaN;
    const [, events] = await Promise.all([
      readEvents(url, {}, 1).then(() => {
        firstOutputMs = performance.now() - joined;
      }),
      readEvents(url),
    ]);
    assert.deepEqual(
      events.filter((e) => e.event === "output").map((e) => e.data),
      ["token-1 ", "token-2 "],
    );
    // The logs so far come too; before or after output 1, as the store's flush or the replay had them.
    const logs = events.find((e) => e.event === "logs");
    assert.match(logs?.id ?? "", /^[01]:\d+$/);
    assert.match(logs?.data ?? "", /^emitting token 1/);
    assert.ok(firstOutputMs < 200, `the first output came ${firstOutputMs.toFixed(0)} ms after joining`);
  });
  it("resumes from Last-Event-ID without repeating events", async () => {
    const res = await api("POST", "/predictions", {
      version: "replicant/stream-test",
      input: { tokens: 5, delay_ms: 40 },
    });
    const url = (res.json.urls as { stream: string }).stream;
    const firstPart = await readEvents(url, {}, 2);
    const lastId = firstPart.filter((e) => e.id).at(-1)!.id!;
    const rest = await readEvents(url, { "last-event-id": lastId });
    const outputs = [...firstPart, ...rest].filter((e) => e.event === "output").map((e) => e.data);
    assert.deepEqual(outputs, ["token-1 ", "token-2 ", "token-3 ", "token-4 ", "token-5 "]);
  });
  it(
    "writes every shape of streamed output: one-line strings, multi-line strings as several data lines, JSON",
    inProcessOnly("publishes on the prediction's channel inside the server, as the director does"),
    async () => {
      const blocks = await streamedOutputBlocks(async (publish) => {
        const values = ["plain token ", "two\nlines", { score: 0.5 }, 7];
        for (const [index, value] of values.entries()) await publish({ type: "output", index, value });
      });
      assert.deepEqual(blocks, [
        "event: output\nid: 1:0\ndata: plain token ",
        "event: output\nid: 2:0\ndata: two\ndata: lines",
        'event: output\nid: 3:0\ndata: {"score":0.5}',
        "event: output\nid: 4:0\ndata: 7",
      ]);
    },
  );
  it(
    "writes a batch of outputs published as one event, each item once, in order",
    inProcessOnly("publishes on the prediction's channel inside the server, as the director does"),
    async () => {
      const blocks = await streamedOutputBlocks(async (publish) => {
        await publish({ type: "outputs", index: 0, values: ["a ", "b "] });
        // Overlapping what was sent: only the new item is written.
        await publish({ type: "outputs", index: 1, values: ["b ", "c\nd"] });
        await publish({ type: "output", index: 3, value: "e " });
      });
      assert.deepEqual(blocks, [
        "event: output\nid: 1:0\ndata: a ",
        "event: output\nid: 2:0\ndata: b ",
        "event: output\nid: 3:0\ndata: c\ndata: d",
        "event: output\nid: 4:0\ndata: e ",
      ]);
    },
  );
  it("a canceled prediction's stream ends with done {reason: canceled}; a failed one with error then done", async () => {
    const res = await api("POST", "/predictions", {
      version: "replicant/stream-test",
      input: { tokens: 100, delay_ms: 30 },
    });
    const events = readEvents((res.json.urls as { stream: string }).stream);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await api("POST", `/predictions/${res.json.id as string}/cancel`);
    const done = (await events).at(-1)!;
    assert.equal(done.event, "done");
    assert.deepEqual(JSON.parse(done.data), { reason: "canceled" });
    const failing = await api("POST", "/predictions", {
      version: "replicant/stream-test",
      input: { tokens: 1, delay_ms: 1, fail: true },
    });
    const failed = await readEvents((failing.json.urls as { stream: string }).stream);
    assert.equal(failed.at(-2)?.event, "error");
    assert.deepEqual(JSON.parse(failed.at(-1)!.data), { reason: "error" });
  });
});

describe("webhooks: filters and throttling", () => {
  let receiver: Server;
  const deliveries: { id: string; status: string; output: unknown; at: number; webhookId: string }[] = [];
  let hook = "";
  before(async () => {
    receiver = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => {
        body += chunk.toString();
      });
      request.on("end", () => {
        const p = JSON.parse(body) as { id: string; status: string; output: unknown };
        deliveries.push({ ...p, at: Date.now(), webhookId: String(request.headers["webhook-id"]) });
        response.writeHead(200).end();
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`;
  });
  after(() => {
    receiver.close();
  });

  it("without a filter every event type arrives; output events at most every 500 ms", async () => {
    const res = await api("POST", "/predictions", {
      version: "replicant/stream-test",
      input: { tokens: 20, delay_ms: 50 },
      webhook: hook,
    });
    const id = res.json.id as string;
    await waitTerminal(id);
    const until = Date.now() + 5000;
    while (!deliveries.some((d) => d.id === id && d.status === "succeeded") && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const mine = deliveries.filter((d) => d.id === id);
    assert.equal(mine[0]?.status, "starting");
    assert.equal(mine.at(-1)?.status, "succeeded");
    const intermediate = mine.filter((d) => d.status === "processing");
    assert.ok(intermediate.length >= 1, "output/logs webhooks while running");
    assert.ok(
      intermediate.length <= 4,
      `throttled: got ${intermediate.length} intermediate webhooks in ~1 s`,
    );
    // Throttled at the source to one per 500 ms; measured at the receiver, each delivery also carries its
    // own commit and dispatch delay (tens of ms, more on a loaded cluster), so allow 200 ms of jitter.
    // Unthrottled, the 100 ms output flushes would arrive ~100 ms apart.
    for (let i = 1; i < intermediate.length; i++) {
      const gap = intermediate[i]!.at - intermediate[i - 1]!.at;
      assert.ok(gap >= 300, `intermediate webhooks ${gap} ms apart`);
    }
    assert.equal(
      new Set(mine.map((d) => d.webhookId)).size,
      mine.length,
      "each event has its own webhook-id",
    );
  });
  it("with filter [completed] only the terminal event arrives", async () => {
    const res = await api("POST", "/predictions", {
      version: "replicant/stream-test",
      input: { tokens: 5, delay_ms: 20 },
      webhook: hook,
      webhook_events_filter: ["completed"],
    });
    const id = res.json.id as string;
    await waitTerminal(id);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const mine = deliveries.filter((d) => d.id === id);
    assert.equal(mine.length, 1);
    assert.equal(mine[0]!.status, "succeeded");
    assert.deepEqual(mine[0]!.output, ["token-1 ", "token-2 ", "token-3 ", "token-4 ", "token-5 "]);
  });
});

describe("file outputs and retention", () => {
  /** A JSON call to `target`'s API with its token and `Prefer: wait`; resolves to the parsed body. */
  const waitingCaller =
    (target: TestServer) =>
    (path: string, init: RequestInit = {}) =>
      fetch(`${target.apiUrl}${path}`, {
        ...init,
        headers: {
          authorization: `Bearer ${target.token}`,
          "content-type": "application/json",
          prefer: "wait",
        },
      }).then((r) => r.json() as Promise<Record<string, unknown>>);

  /** file-echo with `text` through `target`; the prediction and the account's file ids. */
  async function echoFile(target: TestServer, text: string) {
    const call = waitingCaller(target);
    const prediction = await call("/models/replicant/file-echo/predictions", {
      method: "POST",
      body: JSON.stringify({
        input: { file: `data:text/plain;base64,${Buffer.from(text).toString("base64")}` },
      }),
    });
    assert.equal(prediction.status, "succeeded", JSON.stringify(prediction));
    const files = (await call("/files")).results as { metadata: { prediction_id?: string } }[];
    const outputFiles = files.filter((file) => file.metadata.prediction_id === prediction.id);
    return { output: prediction.output as string, outputFiles };
  }

  it("by default a small file output is a data URI of its bytes, and stored nowhere else", async () => {
    const inline = await echoFile(server, "inline bytes");
    assert.equal(inline.output, `data:text/plain;base64,${Buffer.from("inline bytes").toString("base64")}`);
    assert.equal(inline.outputFiles.length, 0, "no file record (and no blob) besides the data URI");
    const urls = await startTestServer({ fileOutputs: "url" });
    try {
      const stored = await echoFile(urls, "stored bytes");
      assert.match(stored.output, /\/v1\/files\/[a-z0-9]+\/download\?/);
      assert.equal(stored.outputFiles.length, 1, "a URL's file is listed with its prediction's id");
    } finally {
      await urls.close();
    }
  });
  it(
    "a file output over the data URI limit is stored and returned as a URL",
    inProcessOnly("sets dataUriLimit, which the cluster's command line does not take"),
    async () => {
      const small = await startTestServer({ dataUriLimit: 4 });
      try {
        const stored = await echoFile(small, "five!");
        assert.match(stored.output, /\/v1\/files\/[a-z0-9]+\/download\?/);
        assert.equal(await (await fetch(stored.output)).text(), "five!");
        assert.equal(stored.outputFiles.length, 1);
        assert.equal((await echoFile(small, "four")).output, "data:text/plain;base64,Zm91cg==");
      } finally {
        await small.close();
      }
    },
  );
  it("file outputs are signed https-style URLs when configured, downloadable without a token", async () => {
    const urls = await startTestServer({ fileOutputs: "url" });
    try {
      const response = await fetch(`${urls.apiUrl}/models/replicant/file-echo/predictions`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${urls.token}`,
          "content-type": "application/json",
          prefer: "wait",
        },
        body: JSON.stringify({
          input: { file: `data:text/plain;base64,${Buffer.from("bytes!").toString("base64")}` },
        }),
      });
      const prediction = (await response.json()) as { output: string };
      assert.match(prediction.output, /\/v1\/files\/[a-z0-9]+\/download\?/);
      const download = await fetch(prediction.output);
      assert.equal(await download.text(), "bytes!");
      assert.equal(download.headers.get("content-type"), "text/plain");
    } finally {
      await urls.close();
    }
  });
  it(
    "after the retention period input, output and logs are removed and data_removed is true",
    inProcessOnly("moves server.ctx.now two hours ahead and calls server.sweep()"),
    async () => {
      const kept = await startTestServer({ fileOutputs: "url" });
      try {
        const call = waitingCaller(kept);
        const prediction = await call("/models/replicant/file-echo/predictions", {
          method: "POST",
          body: JSON.stringify({ input: { file: "data:text/plain;base64,aGk=" } }),
        });
        assert.equal(prediction.status, "succeeded");
        const fileUrl = prediction.output as string;
        assert.equal((await fetch(fileUrl)).status, 200);
        // Two hours later.
        const realNow = kept.server.ctx.now;
        kept.server.ctx.now = () => new Date(Date.now() + 2 * 3600 * 1000);
        await kept.server.sweep();
        kept.server.ctx.now = realNow;
        const later = await call(`/predictions/${prediction.id as string}`);
        assert.equal(later.data_removed, true);
        assert.equal(later.output, null);
        assert.deepEqual(later.input, {});
        assert.equal(later.logs, "");
        assert.equal((await fetch(fileUrl)).status, 404);
      } finally {
        await kept.close();
      }
    },
  );
});

type StreamEvent = Parameters<TestServer["server"]["ctx"]["bus"]["publish"]>[1];

/**
 * Opens the SSE stream of an unfinished prediction (the worker is off), lets `produce` publish on its
 * channel as the director does, ends it with `done`, and returns the stream's output events.
 */
async function streamedOutputBlocks(
  produce: (publish: (event: StreamEvent) => Promise<void>) => Promise<void>,
): Promise<string[]> {
  const started = await startTestServer({ worker: false });
  try {
    const create = await fetch(`${started.apiUrl}/models/replicant/stream-test/predictions`, {
      method: "POST",
      headers: { authorization: `Bearer ${started.token}`, "content-type": "application/json" },
      body: JSON.stringify({ input: { tokens: 1 } }),
    });
    const prediction = (await create.json()) as { id: string; urls: { stream: string } };
    const response = await fetch(prediction.urls.stream, { headers: { accept: "text/event-stream" } });
    assert.equal(response.status, 200);
    const channel = `prediction:${prediction.id}`;
    const { bus } = started.server.ctx;
    await produce((event) => bus.publish(channel, event));
    await bus.publish(channel, { type: "done", status: "succeeded", error: null });
    const text = await response.text();
    return text.split("\n\n").filter((block) => block.startsWith("event: output"));
  } finally {
    await started.close();
  }
}
