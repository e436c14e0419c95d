import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FileOutput, ModelError, Replicant, type ServerSentEvent, SSEParser } from "../src/index.js";
import { BASE_URL, fakeFetch, json, prediction, sseResponse } from "./helpers/fake-fetch.js";

const STREAM_URL = "https://stream.example.test/v1/predictions/p1";

describe("SSE parser", () => {
  test("parses events, ids, retry and multi-line data; ignores comments", () => {
    const parser = new SSEParser();
    const events = parser.feed(
      ": hi\n\nevent: output\nid: 1:0\ndata: Once\ndata: upon\n\nretry: 2500\nevent: done\ndata: {}\n\n",
    );
    assert.deepEqual(events, [
      { event: "output", data: "Once\nupon", id: "1:0", retry: undefined },
      { event: "done", data: "{}", id: "1:0", retry: 2500 },
    ]);
  });

  test("handles any chunk split, CRLF, lone CR, and a BOM", () => {
    const text = "\uFEFFevent: output\r\ndata: a\r\n\r\nevent: output\rdata: b\r\rdata: c\n\n";
    for (let split = 1; split < text.length; split++) {
      const parser = new SSEParser();
      const events = [...parser.feed(text.slice(0, split)), ...parser.feed(text.slice(split))];
      assert.deepEqual(
        events.map((event) => `${event.event}:${event.data}`),
        ["output:a", "output:b", "message:c"],
        `split at ${split}`,
      );
    }
  });

  test("a space after the colon is optional and only one is removed; fields without a colon count", () => {
    const parser = new SSEParser();
    const events = parser.feed("data:no-space\n\ndata:  two\n\ndata\n\n");
    assert.deepEqual(
      events.map((event) => event.data),
      ["no-space", " two", ""],
    );
  });

  test("an id containing NUL is ignored; an event without data is not dispatched", () => {
    const parser = new SSEParser();
    const events = parser.feed("id: good\n\nid: b\0ad\ndata: x\n\nevent: output\n\n");
    assert.equal(events.length, 1);
    assert.equal(events[0]!.id, "good");
  });
});

function streamClient(fetch: Replicant["fetch"]) {
  return new Replicant({ auth: "r8_test", baseUrl: BASE_URL, fetch, pollInterval: 10 });
}

async function collect(events: AsyncIterable<ServerSentEvent<string | FileOutput>>) {
  const seen: { event: string; data: string }[] = [];
  for await (const event of events) seen.push({ event: event.event, data: String(event.data) });
  return seen;
}

describe("stream()", () => {
  test("yields output, logs and done events; toString gives output text", async () => {
    const { fetch, requests } = fakeFetch((request) => {
      if (request.method === "POST")
        return json(prediction({ urls: { ...prediction().urls, stream: STREAM_URL } }), { status: 201 });
      return sseResponse([
        "event: output\nid: 1\ndata: token-0 \n\n",
        "event: logs\nid: 2\ndata: step 1\n\n",
        "event: output\nid: 3\ndata: token-1 \n\nevent: done\nid: 4\ndata: {}\n\n",
      ]);
    });
    const events: ServerSentEvent<string | FileOutput>[] = [];
    for await (const event of streamClient(fetch).stream("replicant/stream-test", { input: { tokens: 2 } })) {
      events.push(event);
    }
    assert.deepEqual(
      events.map((event) => event.event),
      ["output", "logs", "output", "done"],
    );
    assert.equal(events.map(String).join(""), "token-0 token-1 ");
    const streamRequest = requests[1]!;
    assert.equal(streamRequest.headers.get("accept"), "text/event-stream");
    assert.equal(streamRequest.headers.get("authorization"), null, "no token to another host");
  });

  test("a dropped stream reconnects with Last-Event-ID and continues", async () => {
    let connections = 0;
    const { fetch, requests } = fakeFetch((request) => {
      if (request.method === "POST")
        return json(prediction({ urls: { ...prediction().urls, stream: STREAM_URL } }), { status: 201 });
      connections++;
      if (connections === 1) return sseResponse(["retry: 10\n\nevent: output\nid: 7\ndata: a\n\n"]);
      return sseResponse(["event: output\nid: 8\ndata: b\n\nevent: done\nid: 9\ndata: {}\n\n"]);
    });
    const seen = await collect(streamClient(fetch).stream("a/b", { input: {} }));
    assert.deepEqual(seen, [
      { event: "output", data: "a" },
      { event: "output", data: "b" },
      { event: "done", data: "{}" },
    ]);
    assert.equal(requests[1]!.headers.get("last-event-id"), null);
    assert.equal(requests[2]!.headers.get("last-event-id"), "7");
  });

  test("when the stream keeps failing it falls back to polling and yields only what is new", async () => {
    let polls = 0;
    const { fetch } = fakeFetch((request) => {
      if (request.method === "POST")
        return json(prediction({ urls: { ...prediction().urls, stream: STREAM_URL } }), { status: 201 });
      if (request.url.startsWith(STREAM_URL)) {
        // One event, then the connection dies; later connections fail outright.
        if (request.headers.get("last-event-id")) throw new TypeError("connection refused");
        return sseResponse(["event: output\nid: 1\ndata: token-0 \n\n"]);
      }
      polls++;
      if (polls === 1)
        return json(prediction({ status: "processing", output: ["token-0 ", "token-1 "], logs: "line 1\n" }));
      return json(
        prediction({
          status: "succeeded",
          output: ["token-0 ", "token-1 ", "token-2 "],
          logs: "line 1\nline 2",
        }),
      );
    });
    const seen = await collect(streamClient(fetch).stream("a/b", { input: {}, maxReconnects: 1 }));
    assert.deepEqual(seen, [
      { event: "output", data: "token-0 " },
      { event: "output", data: "token-1 " },
      { event: "logs", data: "line 1" },
      { event: "output", data: "token-2 " },
      { event: "logs", data: "line 2" },
      { event: "done", data: "{}" },
    ]);
  });

  test("a model without urls.stream is polled from the start", async () => {
    const { fetch } = fakeFetch((request) => {
      if (request.method === "POST") return json(prediction(), { status: 201 });
      return json(prediction({ status: "succeeded", output: "hello world" }));
    });
    const seen = await collect(streamClient(fetch).stream("a/b", { input: {} }));
    assert.deepEqual(seen, [
      { event: "output", data: "hello world" },
      { event: "done", data: "{}" },
    ]);
  });

  test("an error event throws ModelError carrying the prediction", async () => {
    const { fetch } = fakeFetch((request) => {
      if (request.method === "POST")
        return json(prediction({ urls: { ...prediction().urls, stream: STREAM_URL } }), { status: 201 });
      if (request.url.startsWith(STREAM_URL)) {
        return sseResponse(['event: output\ndata: x\n\nevent: error\ndata: {"detail": "boom"}\n\n']);
      }
      return json(prediction({ status: "failed", error: "boom", logs: "Traceback..." }));
    });
    await assert.rejects(collect(streamClient(fetch).stream("a/b", { input: {} })), (error: unknown) => {
      assert.ok(error instanceof ModelError);
      assert.equal(error.message, "Prediction failed: boom");
      assert.equal(error.prediction.id, "p1");
      assert.equal(error.logs, "Traceback...");
      return true;
    });
  });

  test("file streams yield lazy FileOutputs", async () => {
    const fileStream = "https://stream.example.test/v1/files/abc";
    const { fetch, requests } = fakeFetch((request) => {
      if (request.method === "POST")
        return json(prediction({ urls: { ...prediction().urls, stream: fileStream } }), { status: 201 });
      return sseResponse([
        "event: output\ndata: https://files.example.test/out.png\n\nevent: done\ndata: {}\n\n",
      ]);
    });
    const events: ServerSentEvent<string | FileOutput>[] = [];
    for await (const event of streamClient(fetch).stream("a/b", { input: {} })) events.push(event);
    assert.ok(events[0]!.data instanceof FileOutput);
    assert.equal(String(events[0]!.data), "https://files.example.test/out.png");
    assert.equal(requests.length, 2, "nothing downloaded");
  });

  test("aborting a stream rejects and cancels the prediction", async () => {
    const { fetch, requests } = fakeFetch((request) => {
      if (request.url.endsWith("/cancel")) return json(prediction({ status: "canceled" }));
      if (request.method === "POST")
        return json(prediction({ urls: { ...prediction().urls, stream: STREAM_URL } }), { status: 201 });
      return sseResponse(["event: output\ndata: first\n\n"], { keepOpen: true });
    });
    const controller = new AbortController();
    const seen: string[] = [];
    await assert.rejects(
      async () => {
        for await (const event of streamClient(fetch).stream("a/b", {
          input: {},
          signal: controller.signal,
        })) {
          seen.push(String(event));
          controller.abort();
        }
      },
      { name: "AbortError" },
    );
    assert.deepEqual(seen, ["first"]);
    assert.ok(requests.some((request) => request.url.endsWith("/predictions/p1/cancel")));
  });
});
