// Slow and hostile clients cost bounded memory and time: SSE readers that fall behind are ended with a
// `reconnect` event (and resume with Last-Event-ID, losing nothing), slowloris sockets that never finish
// their headers are closed, and request bodies that drip are answered 408. All against a real server
// and real sockets (issue #24, part 3).
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { MemoryEventBus } from "@replicant/server";
import Replicate from "replicate";
import { inProcessOnly, startTestServer, type TestServer } from "../src/index.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(20);
  }
}

async function createPrediction(server: TestServer, input: Record<string, unknown>, prefer?: string) {
  const response = await fetch(`${server.apiUrl}/models/replicant/stream-test/predictions`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${server.token}`,
      "content-type": "application/json",
      ...(prefer ? { prefer } : {}),
    },
    body: JSON.stringify({ input }),
  });
  assert.equal(response.status, 201);
  return (await response.json()) as { id: string; status: string; urls: { stream: string } };
}

function busOf(server: TestServer): MemoryEventBus {
  const { bus } = server.server.ctx;
  assert.ok(bus instanceof MemoryEventBus);
  return bus;
}

/** The server's side of every connection it holds. */
function serverSockets(server: TestServer): Set<Socket> {
  const sockets = new Set<Socket>();
  server.server.app.server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  return sockets;
}

/** Opens an SSE stream on a raw socket and reads nothing (the socket is paused). */
function openStalled(streamUrl: string, lastEventId?: string): Promise<Socket> {
  const url = new URL(streamUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n${lastEventId ? `Last-Event-ID: ${lastEventId}\r\n` : ""}\r\n`,
      );
      socket.pause();
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Reads a raw socket's HTTP response to its end: the body, de-chunked. */
async function readToEnd(socket: Socket): Promise<string> {
  socket.setEncoding("latin1");
  let raw = "";
  socket.on("data", (chunk: string) => {
    raw += chunk;
  });
  socket.resume();
  // The response ends with its last chunk (the connection may stay open for the next request).
  await new Promise<void>((resolve) => {
    socket.on("data", () => {
      if (raw.endsWith("\r\n0\r\n\r\n")) resolve();
    });
    socket.once("close", () => resolve());
    socket.once("end", () => resolve());
  });
  const headerEnd = raw.indexOf("\r\n\r\n");
  assert.ok(headerEnd > 0, "no response headers");
  let body = "";
  let at = headerEnd + 4;
  for (;;) {
    const lineEnd = raw.indexOf("\r\n", at);
    if (lineEnd < 0) break;
    const size = Number.parseInt(raw.slice(at, lineEnd), 16);
    if (!(size > 0) || lineEnd + 2 + size > raw.length) break;
    body += raw.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.from(body, "latin1").toString("utf8");
}

interface SseEvent {
  event: string;
  data: string;
  /** The last event id so far (the SSE rule: it carries over to events without one). */
  id: string | undefined;
}

/** Complete SSE events of a stream's text (a cut-off last event is left out). */
function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  let lastId: string | undefined;
  const blocks = text.split("\n\n");
  blocks.pop();
  for (const block of blocks) {
    if (block.startsWith(":")) continue;
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("id: ")) lastId = line.slice(4);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    events.push({ event, data: data.join("\n"), id: lastId });
  }
  return events;
}

async function readSse(streamUrl: string, lastEventId?: string): Promise<SseEvent[]> {
  const response = await fetch(streamUrl, {
    headers: { accept: "text/event-stream", ...(lastEventId ? { "last-event-id": lastEventId } : {}) },
  });
  assert.equal(response.status, 200);
  return parseSse(await response.text());
}

/** stream-test's tokens with `token_size` padding. */
function paddedTokens(count: number, size: number): string[] {
  return Array.from({ length: count }, (_, i) => `${`token-${i + 1}`.padEnd(size - 1, ".")} `);
}

const rssMb = () => process.memoryUsage.rss() / 1048576;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
/** What the process holds after a full collection (JavaScript heap and the buffers outside it), MB. */
function liveMb(): number {
  gc();
  const { heapUsed, external } = process.memoryUsage();
  return (heapUsed + external) / 1048576;
}

describe("SSE clients that fall behind", inProcessOnly("reads the server's bus and sockets"), () => {
  it("200 readers that never read are ended past the lag bound: memory stays bounded, their listeners and sockets go, a reader that keeps up gets everything", async (t) => {
    const STALLED = 200;
    const LAG = 256 * 1024;
    // A socket that does not drain for 10 s is destroyed (30 s by default): the test waits for that.
    const server = await startTestServer({ worker: false, streamMaxLagBytes: LAG, streamMaxStallMs: 10_000 });
    try {
      const sockets = serverSockets(server);
      const bus = busOf(server);
      // The worker is off: the prediction stays unfinished while events are published on its channel,
      // as the director publishes a runner's batches.
      const prediction = await createPrediction(server, { tokens: 1 });
      const channel = `prediction:${prediction.id}`;
      const reader = readSse(prediction.urls.stream);
      reader.catch(() => {});
      await until("the reader subscribed", () => bus.listenerCount(channel) === 1, 10_000);
      const before = sockets.size;
      const stalled = await Promise.all(
        Array.from({ length: STALLED }, () => openStalled(prediction.urls.stream)),
      );
      await until(
        "every stalled reader subscribed",
        () => bus.listenerCount(channel) === STALLED + 1,
        20_000,
      );

      const baseline = { live: liveMb(), rss: rssMb() };
      let peakRss = baseline.rss;
      const sampler = setInterval(() => {
        peakRss = Math.max(peakRss, rssMb());
      }, 20);
      // 8.4 MB for each stream: more than loopback's socket buffers take (4 to 6 MB) plus the bound.
      const pad = ".".repeat(992);
      const values = Array.from({ length: 8192 }, (_, i) => `${String(i).padStart(7, "0")}:${pad}`);
      try {
        for (let index = 0; index < values.length; index += 64) {
          await bus.publish(channel, { type: "outputs", index, values: values.slice(index, index + 64) });
          await new Promise((resolve) => setImmediate(resolve));
        }
        await until("every stalled stream was ended", () => bus.listenerCount(channel) === 1, 20_000);
      } finally {
        clearInterval(sampler);
      }
      // Measured once with the writer before backpressure: 870 MB more held after a full collection,
      // RSS up 940 MB (each stalled socket kept all it refused). Bounded: 20-30 MB and 130-160 MB.
      const held = liveMb() - baseline.live;
      const rssGrowth = peakRss - baseline.rss;
      t.diagnostic(
        `held after a full collection +${held.toFixed(0)} MB, peak RSS +${rssGrowth.toFixed(0)} MB`,
      );
      assert.ok(held < 100, `${held.toFixed(0)} MB more held with ${STALLED} stalled readers`);
      assert.ok(
        rssGrowth < 400,
        `server RSS grew by ${rssGrowth.toFixed(0)} MB with ${STALLED} stalled readers`,
      );
      // Their sockets are destroyed when the final event has not left by the stall bound.
      await until("the stalled sockets were closed", () => sockets.size <= before, 20_000);

      await bus.publish(channel, { type: "done", status: "succeeded", error: null });
      const events = await reader;
      assert.deepEqual(
        events.filter((e) => e.event === "output").map((e) => e.data),
        values,
        "the reader that kept up got every output once, in order",
      );
      assert.equal(events.at(-1)?.event, "done");
      for (const socket of stalled) socket.destroy();
      await until("no listener is left", () => bus.listenerCount(channel) === 0, 5000);
      assert.equal(bus.channelCount, 0);
    } finally {
      await server.close();
    }
  });

  it("a reader whose socket does not drain for the stall bound is ended even below the byte bound", async () => {
    const server = await startTestServer({
      worker: false,
      streamMaxLagBytes: 256 * 1024 * 1024,
      streamMaxStallMs: 1500,
    });
    try {
      const bus = busOf(server);
      const prediction = await createPrediction(server, { tokens: 1 });
      const channel = `prediction:${prediction.id}`;
      const stalled = await Promise.all(
        Array.from({ length: 10 }, () => openStalled(prediction.urls.stream)),
      );
      await until("the stalled readers subscribed", () => bus.listenerCount(channel) === 10, 10_000);
      const value = ".".repeat(1000);
      for (let index = 0; index < 6400; index += 64) {
        await bus.publish(channel, { type: "outputs", index, values: Array(64).fill(value) });
        await new Promise((resolve) => setImmediate(resolve));
      }
      const started = Date.now();
      await until("the stalled streams were ended", () => bus.listenerCount(channel) === 0, 10_000);
      assert.ok(Date.now() - started < 5000);
      // The final event says where to resume; the client reads it once it reads again.
      const text = await readToEnd(stalled[0]!);
      const events = parseSse(text);
      assert.equal(events.at(-1)?.event, "reconnect");
      for (const socket of stalled) socket.destroy();
    } finally {
      await server.close();
    }
  });

  it("a slow reader gets reconnect; resuming with Last-Event-ID gives the rest with no gap and no duplicate", async () => {
    const server = await startTestServer({ streamMaxLagBytes: 64 * 1024 });
    try {
      const bus = busOf(server);
      const TOKENS = 10_000;
      const SIZE = 1000;
      // About 10 MB of output and 0.3 MB of logs from a real runner over 10 s or more, with the store
      // flushed as it runs (a run with no delay can end on a loaded machine before its reader falls behind).
      const prediction = await createPrediction(server, { tokens: TOKENS, token_size: SIZE, delay_ms: 1 });
      const channel = `prediction:${prediction.id}`;
      const slow = await openStalled(prediction.urls.stream);
      // While it runs, the director listens on the channel too.
      await until("the slow reader subscribed", () => bus.listenerCount(channel) === 2, 10_000);
      // It falls behind: once it is ended, it reads what reached its socket.
      await until("the slow reader was ended", () => bus.listenerCount(channel) === 1, 60_000);
      const first = parseSse(await readToEnd(slow));
      const reconnect = first.at(-1);
      assert.equal(reconnect?.event, "reconnect", "the stream ended with a reconnect event");
      const payload = JSON.parse(reconnect.data) as { reason: string; last_event_id: string };
      assert.equal(payload.reason, "client_behind");
      assert.ok(reconnect.id, "events before it carried ids");
      assert.equal(payload.last_event_id, reconnect.id, "it names the id of the last event sent");
      assert.ok(!first.some((e) => e.event === "done"));

      const rest = await readSse(prediction.urls.stream, reconnect.id);
      assert.equal(rest.at(-1)?.event, "done");
      const all = [...first.slice(0, -1), ...rest];
      assert.deepEqual(
        all.filter((e) => e.event === "output").map((e) => e.data),
        paddedTokens(TOKENS, SIZE),
      );
      const logLines = all.filter((e) => e.event === "logs").flatMap((e) => e.data.split("\n"));
      assert.deepEqual(
        logLines,
        Array.from({ length: TOKENS }, (_, i) => `emitting token ${i + 1}`),
      );
    } finally {
      await server.close();
    }
  });

  it("the replicate package, cut the same way, sees an event it ignores and an early end, not an error", async () => {
    const server = await startTestServer({ streamMaxLagBytes: 64 * 1024 });
    try {
      const bus = busOf(server);
      // Its reader pulls every event as it comes; this fetch stops reading its stream until the server
      // has ended it (the director and the stream listen on the channel until then).
      const gated: typeof fetch = async (input, init) => {
        const response = await fetch(input, init);
        const id = /\/predictions\/([^/]+)\/stream/.exec(String(input))?.[1];
        if (!id || !response.body) return response;
        const channel = `prediction:${id}`;
        const ended = (async () => {
          await until("the stream subscribed", () => bus.listenerCount(channel) === 2, 10_000);
          await until("the stream was ended", () => bus.listenerCount(channel) === 1, 60_000);
        })();
        const reader = response.body.getReader();
        const body = new ReadableStream<Uint8Array>(
          {
            async pull(controller) {
              await ended;
              const { done, value } = await reader.read();
              if (done) controller.close();
              else controller.enqueue(value);
            },
            cancel: (reason) => reader.cancel(reason),
          },
          { highWaterMark: 0 },
        );
        return new Response(body, { status: response.status, headers: response.headers });
      };
      const replicate = new Replicate({ auth: server.token, baseUrl: server.apiUrl, fetch: gated });
      const names: string[] = [];
      let text = "";
      for await (const event of replicate.stream("replicant/stream-test", {
        input: { tokens: 10_000, token_size: 1000, delay_ms: 1 },
      })) {
        names.push(event.event);
        text += String(event);
      }
      assert.equal(names.at(-1), "reconnect", "the last event it yields is the unknown one");
      assert.ok(!names.includes("error") && !names.includes("done"));
      assert.ok(text.length > 0);
      assert.ok(
        paddedTokens(10_000, 1000).join("").startsWith(text),
        "what it got is a prefix of the output",
      );
    } finally {
      await server.close();
    }
  });
});

/** A raw connection that reads whatever comes and remembers when it closed. */
interface Watched {
  socket: Socket;
  connectedAt: number;
  closedAt: number | undefined;
  received: string;
}

function openRaw(server: TestServer, first: string): Promise<Watched> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    const watched: Watched = { socket, connectedAt: 0, closedAt: undefined, received: "" };
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      watched.received += chunk;
    });
    socket.on("error", () => {});
    socket.once("close", () => {
      watched.closedAt = performance.now();
    });
    socket.once("connect", () => {
      watched.connectedAt = performance.now();
      if (first) socket.write(first);
      resolve(watched);
    });
    socket.once("error", reject);
  });
}

/** Sends one request on a raw connection and waits for a complete response with a content-length. */
async function requestOn(watched: Watched, request: string): Promise<string> {
  watched.received = "";
  watched.socket.write(request);
  await until(
    "a response",
    () => {
      const match = /content-length: (\d+)\r\n[\s\S]*?\r\n\r\n/i.exec(watched.received);
      return match !== null && watched.received.length >= match.index + match[0].length + Number(match[1]);
    },
    5000,
  );
  return watched.received;
}

function p95(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] ?? Number.NaN;
}

async function timedAccount(server: TestServer): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${server.apiUrl}/account`, {
    headers: { authorization: `Bearer ${server.token}` },
  });
  assert.equal(response.status, 200);
  await response.arrayBuffer();
  return performance.now() - started;
}

describe(
  "connections that never finish a request",
  inProcessOnly("the API process's own timeouts (the cluster's proxy stands in front of them)"),
  () => {
    it("500 slowloris sockets are closed 10 s after they connect (the defaults) while requests keep their latency, and an idle keep-alive socket and a long stream are left alone", async (t) => {
      const server = await startTestServer();
      try {
        const HEADERS_TIMEOUT = 10_000;
        for (let i = 0; i < 20; i++) await timedAccount(server);
        const before: number[] = [];
        for (let i = 0; i < 40; i++) before.push(await timedAccount(server));
        // A long response: three tokens 4.5 s apart, longer than the headers timeout.
        const long = await createPrediction(server, { tokens: 3, delay_ms: 4500 });
        const stream = readSse(long.urls.stream);
        stream.catch(() => {});
        const idle = await openRaw(server, "");
        assert.match(await requestOn(idle, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), /^HTTP\/1.1 200/);

        // Half stop inside the request line, half inside the headers; every one sends a byte a second.
        const slow = await Promise.all(
          Array.from({ length: 500 }, (_, i) =>
            openRaw(server, i % 2 === 0 ? "GET /heal" : "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "),
          ),
        );
        const drip = setInterval(() => {
          for (const each of slow) if (each.closedAt === undefined) each.socket.write("a");
        }, 1000);
        const during: number[] = [];
        try {
          while (slow.some((each) => each.closedAt === undefined)) {
            if (performance.now() - (slow[0]?.connectedAt ?? 0) > HEADERS_TIMEOUT + 10_000) break;
            during.push(await timedAccount(server));
            await sleep(50);
          }
        } finally {
          clearInterval(drip);
        }
        const lived = slow.map((each) => (each.closedAt ?? Number.POSITIVE_INFINITY) - each.connectedAt);
        t.diagnostic(
          `slowloris sockets closed after ${Math.min(...lived).toFixed(0)}-${Math.max(...lived).toFixed(0)} ms; /v1/account p95 ${p95(before).toFixed(1)} ms before, ${p95(during).toFixed(1)} ms during (${during.length} requests)`,
        );
        assert.ok(Math.max(...lived) < HEADERS_TIMEOUT + 4000, "every slowloris socket was closed in time");
        assert.ok(Math.min(...lived) > HEADERS_TIMEOUT - 1000, "none before its headers timeout");
        const answered = slow.filter((each) => each.received !== "");
        assert.ok(answered.length > 0);
        for (const each of answered) {
          assert.match(each.received, /^HTTP\/1.1 408 Request Timeout\r\n/);
          assert.match(each.received, /content-type: application\/problem\+json/);
        }
        assert.ok(
          p95(during) < Math.max(10 * p95(before), 250),
          `p95 ${p95(during).toFixed(1)} ms during vs ${p95(before).toFixed(1)} ms before`,
        );

        // Idle between requests for longer than the headers timeout: still open, and it still serves.
        assert.equal(idle.closedAt, undefined, "the idle keep-alive socket is still open");
        assert.match(await requestOn(idle, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), /^HTTP\/1.1 200/);
        idle.socket.destroy();
        const events = await stream;
        assert.deepEqual(
          events.filter((e) => e.event === "output").map((e) => e.data),
          ["token-1 ", "token-2 ", "token-3 "],
        );
        assert.equal(events.at(-1)?.event, "done");
      } finally {
        await server.close();
      }
    });

    it("a body that drips slower than the floor is answered 408; a paced upload, a long stream, Prefer: wait and an idle socket are not cut", async () => {
      const server = await startTestServer({
        headersTimeoutMs: 2000,
        requestTimeoutMs: 6000,
        bodyDripFloor: { bytes: 4096, windowMs: 1000 },
      });
      try {
        // Longer than the request timeout: the timeouts bound requests, not responses.
        const long = await createPrediction(server, { tokens: 2, delay_ms: 3500 });
        const stream = readSse(long.urls.stream);
        stream.catch(() => {});
        const waited = createPrediction(server, { tokens: 2, delay_ms: 3500 }, "wait=30");
        waited.catch(() => {});
        const idle = await openRaw(server, "");
        assert.match(await requestOn(idle, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), /^HTTP\/1.1 200/);

        // 20 bytes every 100 ms: 200 bytes a second against a floor of 4,096 a second.
        const dripping = await openRaw(
          server,
          `POST /v1/predictions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.token}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"input":{"text":"`,
        );
        const drip = setInterval(() => {
          if (dripping.closedAt === undefined) dripping.socket.write("a".repeat(20));
        }, 100);
        try {
          await until("the dripping body was closed", () => dripping.closedAt !== undefined, 5000);
        } finally {
          clearInterval(drip);
        }
        const lived = (dripping.closedAt ?? 0) - dripping.connectedAt;
        assert.ok(lived < 4000, `closed after ${lived.toFixed(0)} ms, before the request timeout`);
        assert.match(dripping.received, /^HTTP\/1.1 408 Request Timeout\r\n/);
        assert.match(dripping.received, /application\/problem\+json/);
        assert.match(dripping.received, /"status":408/);

        // 2 MB at 64 KiB every 50 ms (about 1.3 MB/s), over several windows: accepted.
        const file = Buffer.alloc(2 * 1024 * 1024, 7);
        const boundary = "----replicant-paced";
        const body = Buffer.concat([
          Buffer.from(
            `--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="paced.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
          ),
          file,
          Buffer.from(`\r\n--${boundary}--\r\n`),
        ]);
        const upload = await openRaw(
          server,
          `POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.token}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${body.length}\r\n\r\n`,
        );
        for (let at = 0; at < body.length; at += 64 * 1024) {
          upload.socket.write(body.subarray(at, at + 64 * 1024));
          await sleep(50);
        }
        await until("the upload was answered", () => /\r\n\r\n\{/.test(upload.received), 10_000);
        assert.match(upload.received, /^HTTP\/1.1 201/);
        assert.match(upload.received, /"size":2097152/);
        upload.socket.destroy();

        const events = await stream;
        assert.equal(events.at(-1)?.event, "done");
        assert.equal(events.filter((e) => e.event === "output").length, 2);
        assert.equal((await waited).status, "succeeded");
        assert.equal(idle.closedAt, undefined, "the idle keep-alive socket is still open");
        assert.match(await requestOn(idle, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), /^HTTP\/1.1 200/);
        idle.socket.destroy();
      } finally {
        await server.close();
      }
    });
  },
);
