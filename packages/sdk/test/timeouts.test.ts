// The client's time limit on response headers over Node's own fetch, against a real server that never
// answers: a limit of 5 s or more is undici's headersTimeout (no signal per request), a shorter one an
// AbortSignal; either way the connection is closed and the caller gets APITimeoutError. Both transports:
// an API call the client parses whole (`get`) goes to undici's dispatcher directly, a raw `request` (whose
// body may be a stream) goes through fetch.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { APITimeoutError, Replicant } from "../src/index.js";

const GLOBAL_DISPATCHER = Symbol.for("undici.globalDispatcher.1");
type Dispatch = (options: Record<string, unknown>, handler: unknown) => unknown;
interface Dispatcher {
  dispatch: Dispatch;
  compose(interceptor: (dispatch: Dispatch) => Dispatch): Dispatcher;
}
const globals = globalThis as unknown as Record<symbol, Dispatcher>;

let server: Server;
let baseUrl = "";
/** When each request's connection closed, in ms since it arrived, by request path. */
const closedAfter = new Map<string, number>();

before(async () => {
  server = createServer((request, response) => {
    const arrived = Date.now();
    request.socket.once("close", () => closedAfter.set(request.url ?? "", Date.now() - arrived));
    if (request.url?.startsWith("/v1/hang")) return; // never answers
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ username: "me", type: "user" }));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  // Node creates its global dispatcher on the first fetch.
  await (await fetch(`${baseUrl}/account`)).text();
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

type Transport = "dispatcher" | "fetch";

/** One request to a route that never answers: how long the client took to give up, and the error. */
async function hang(
  client: Replicant,
  path: string,
  transport: Transport = "dispatcher",
): Promise<{ ms: number; error: unknown }> {
  const started = Date.now();
  const call = transport === "dispatcher" ? client.get(path) : client.request(path);
  const error = await call.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  return { ms: Date.now() - started, error };
}

/** Waits until the server has seen the connection of `path` close, or `ms` pass. */
async function closed(path: string, ms = 1_000): Promise<number | undefined> {
  const deadline = Date.now() + ms;
  while (!closedAfter.has(path) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return closedAfter.get(path);
}

describe("time limits on Node's fetch", () => {
  test("a limit of 5 s or more: undici gives up on the headers and closes the connection", async () => {
    const client = new Replicant({ auth: "r8_test", baseUrl, timeout: 5_000, maxRetries: 0 });
    await Promise.all(
      (["dispatcher", "fetch"] as const).map(async (transport) => {
        const { ms, error } = await hang(client, `/hang-undici-${transport}`, transport);
        assert.ok(error instanceof APITimeoutError, `${transport}: ${String(error)}`);
        assert.match(error.message, /timed out after 5000 ms/);
        // undici's timer for headers has a resolution of about a second; the backstop would come at 7 s.
        assert.ok(ms >= 5_000 && ms < 6_800, `${transport}: gave up after ${ms} ms`);
        const closedAt = await closed(`/v1/hang-undici-${transport}`);
        assert.ok(closedAt !== undefined && closedAt < 6_900, `${transport}: closed after ${closedAt} ms`);
      }),
    );
  });

  test("a shorter limit is exact, by a signal, and closes the connection too", async () => {
    const client = new Replicant({ auth: "r8_test", baseUrl, timeout: 300, maxRetries: 0 });
    for (const transport of ["dispatcher", "fetch"] as const) {
      const { ms, error } = await hang(client, `/hang-signal-${transport}`, transport);
      assert.ok(error instanceof APITimeoutError, `${transport}: ${String(error)}`);
      assert.ok(ms >= 290 && ms < 1_500, `${transport}: gave up after ${ms} ms`);
      assert.ok(
        (await closed(`/v1/hang-signal-${transport}`)) !== undefined,
        `${transport}: connection closed`,
      );
    }
  });

  test("a global dispatcher the application installed still carries every request", async (t) => {
    const original = globals[GLOBAL_DISPATCHER] as Dispatcher;
    const seen: Record<string, unknown>[] = [];
    globals[GLOBAL_DISPATCHER] = original.compose((dispatch) => (options, handler) => {
      seen.push(options);
      return dispatch(options, handler);
    });
    t.after(() => {
      globals[GLOBAL_DISPATCHER] = original;
    });
    const client = new Replicant({ auth: "r8_test", baseUrl });
    assert.equal((await client.account.get()).username, "me");
    assert.equal(((await (await client.request("/account")).json()) as { username: string }).username, "me");
    assert.equal(seen.length, 2, "the direct request and fetch both dispatched through it");
    for (const options of seen)
      assert.equal(options.headersTimeout, 60_000, "the default limit, given to undici");
  });

  test("a dispatcher that drops the limit: the backstop times out, then the client uses signals", async (t) => {
    const original = globals[GLOBAL_DISPATCHER] as Dispatcher;
    // Composing returns the plain dispatcher, as a fetch wrapper that rebuilds the request would lose it.
    const forgetful = Object.assign(Object.create(original) as Dispatcher, { compose: () => original });
    globals[GLOBAL_DISPATCHER] = forgetful;
    t.after(() => {
      globals[GLOBAL_DISPATCHER] = original;
    });
    const client = new Replicant({ auth: "r8_test", baseUrl, timeout: 5_000, maxRetries: 0 });
    const first = await hang(client, "/hang-backstop", "fetch");
    assert.ok(first.error instanceof APITimeoutError, String(first.error));
    assert.ok(first.ms >= 6_900 && first.ms < 8_000, `backstop after ${first.ms} ms`);
    const second = await hang(client, "/hang-after-backstop", "fetch");
    assert.ok(second.error instanceof APITimeoutError, String(second.error));
    assert.ok(second.ms >= 4_990 && second.ms < 5_800, `signal after ${second.ms} ms`);
    assert.ok((await closed("/v1/hang-after-backstop")) !== undefined, "connection closed");
  });
});
