// A Replicant server ends the stream of a reader that fell too far behind with a `reconnect` event; the
// SDK resumes it with Last-Event-ID at once, and its caller sees every event once, in order.
import assert from "node:assert/strict";
import { test } from "node:test";
import { inProcessOnly, startTestServer } from "@replicant/testing";
import { Replicant } from "../src/index.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(20);
  }
}

test(
  "a stream ended because its reader fell behind resumes transparently: every output once, in order",
  inProcessOnly("reads the server's bus"),
  async () => {
    const server = await startTestServer({ streamMaxLagBytes: 64 * 1024 });
    try {
      const bus = server.server.ctx.bus as unknown as { listenerCount?: (channel: string) => number };
      assert.equal(typeof bus.listenerCount, "function", "the embedded bus counts listeners");
      const listeners = (channel: string) => bus.listenerCount?.(channel) ?? 0;
      const lastEventIds: (string | null)[] = [];
      const client = new Replicant({
        auth: server.token,
        baseUrl: server.apiUrl,
        fetch: (input, init) => {
          const headers = new Headers(init?.headers);
          if (headers.get("accept") === "text/event-stream") lastEventIds.push(headers.get("last-event-id"));
          return fetch(input, init);
        },
      });
      // About 10 MB of output over 10 s or more: more than loopback's socket buffers hold, so a reader that
      // stops falls behind while the run still goes on (a finished run is replayed from the store instead,
      // and a loaded machine could finish a run with no delay before the reader fell behind).
      const prediction = await client.predictions.create({
        model: "replicant/stream-test",
        input: { tokens: 10_000, token_size: 1000, delay_ms: 1 },
      });
      const channel = `prediction:${prediction.id}`;
      const names: string[] = [];
      const outputs: string[] = [];
      const logLines: string[] = [];
      for await (const event of client.streamPrediction(prediction)) {
        names.push(event.event);
        if (event.event === "output") outputs.push(String(event));
        if (event.event === "logs") logLines.push(...String(event.data).split("\n"));
        if (names.length === 1) {
          // The caller stops reading until the server has ended this stream (the director and the
          // stream listen on the channel until then).
          await until("the stream subscribed", () => listeners(channel) === 2, 10_000);
          // The director keeps its listener while it runs: one left means the server ended this stream.
          await until("the stream was ended", () => listeners(channel) === 1, 60_000);
        }
      }
      assert.equal(lastEventIds.length, 2, "one reconnect");
      assert.equal(lastEventIds[0], null);
      assert.match(lastEventIds[1] ?? "", /^\d+:\d+$/, "it resumed with Last-Event-ID");
      assert.ok(!names.includes("reconnect"), "the caller never sees the reconnect event");
      assert.equal(names.at(-1), "done");
      assert.deepEqual(
        outputs,
        Array.from({ length: 10_000 }, (_, i) => `${`token-${i + 1}`.padEnd(999, ".")} `),
      );
      assert.deepEqual(
        logLines,
        Array.from({ length: 10_000 }, (_, i) => `emitting token ${i + 1}`),
      );
    } finally {
      await server.close();
    }
  },
);
