// On Node's own fetch an API call the client reads whole goes to undici's global dispatcher directly
// (internal/node-undici.ts). Against real servers: it behaves as fetch would (redirects, compressed
// answers, errors, aborts), and a fetch put in Node's place (a mocking library) still sees every request.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { deflateSync, gzipSync } from "node:zlib";
import { APIConnectionError, APIUserAbortError, Replicant, UnprocessableEntityError } from "../src/index.js";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

const ACCOUNT = JSON.stringify({ username: "me", type: "user" });
let api: Server;
let elsewhere: Server;
let baseUrl = "";
let elsewhereUrl = "";
const seen: Seen[] = [];
const seenElsewhere: Seen[] = [];

function listen(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    ),
  );
}

function record(log: Seen[], request: IncomingMessage): Promise<Seen> {
  return new Promise((resolve) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => {
      body += chunk;
    });
    request.on("end", () => {
      const entry = { method: request.method ?? "", url: request.url ?? "", headers: request.headers, body };
      log.push(entry);
      resolve(entry);
    });
  });
}

before(async () => {
  api = createServer(async (request, response) => {
    const entry = await record(seen, request);
    const redirect = (status: number, location: string) => {
      response.writeHead(status, { location });
      response.end();
    };
    switch (entry.url) {
      case "/v1/account":
        response.writeHead(200, { "content-type": "application/json" });
        return response.end(ACCOUNT);
      case "/v1/echo":
        response.writeHead(200, { "content-type": "application/json" });
        return response.end(JSON.stringify({ method: entry.method, body: entry.body }));
      case "/v1/moved":
        return redirect(302, "/v1/account");
      case "/v1/post-303":
        return redirect(303, "/v1/echo");
      case "/v1/post-307":
        return redirect(307, "/v1/echo");
      case "/v1/away":
        return redirect(302, `${elsewhereUrl}/v1/account`);
      case "/v1/gzip":
      case "/v1/deflate": {
        const accepted = String(entry.headers["accept-encoding"] ?? "");
        const gzip = entry.url === "/v1/gzip";
        assert.ok(accepted.includes(gzip ? "gzip" : "deflate"), `accept-encoding: ${accepted}`);
        response.writeHead(200, {
          "content-type": "application/json",
          "content-encoding": gzip ? "gzip" : "deflate",
        });
        return response.end(gzip ? gzipSync(ACCOUNT) : deflateSync(ACCOUNT));
      }
      case "/v1/invalid":
        response.writeHead(422, { "content-type": "application/problem+json" });
        return response.end(
          JSON.stringify({ title: "Invalid input", detail: "text is required", status: 422 }),
        );
      case "/v1/empty":
        response.writeHead(204);
        return response.end();
      case "/v1/hang":
        return; // never answers
      default:
        response.writeHead(404, { "content-type": "application/json" });
        return response.end(JSON.stringify({ detail: "not found" }));
    }
  });
  elsewhere = createServer(async (request, response) => {
    await record(seenElsewhere, request);
    response.writeHead(200, { "content-type": "application/json" });
    response.end(ACCOUNT);
  });
  baseUrl = `${await listen(api)}/v1`;
  elsewhereUrl = await listen(elsewhere);
  // Node creates its global dispatcher on the first fetch.
  await (await fetch(`${baseUrl}/account`)).text();
});

after(async () => {
  for (const server of [api, elsewhere]) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

function client(options: ConstructorParameters<typeof Replicant>[0] = {}): Replicant {
  return new Replicant({ auth: "r8_test", baseUrl, maxRetries: 0, ...options });
}

/** The requests the API server saw while `action` ran. */
async function requestsDuring(action: () => Promise<unknown>): Promise<Seen[]> {
  const from = seen.length;
  await action();
  return seen.slice(from);
}

describe("API calls on Node go to undici directly", () => {
  test("an API call skips fetch (no fetch-only headers); a raw request still uses fetch", async () => {
    const replicant = client();
    const [direct] = await requestsDuring(() => replicant.account.get());
    assert.equal(
      direct?.headers["sec-fetch-mode"],
      undefined,
      "fetch sends sec-fetch-mode; undici alone does not",
    );
    assert.equal(direct?.headers.authorization, "Bearer r8_test");
    assert.match(String(direct?.headers["user-agent"]), /^replicant-sdk\//);
    const [viaFetch] = await requestsDuring(async () => (await replicant.request("/account")).text());
    assert.equal(viaFetch?.headers["sec-fetch-mode"], "cors");
  });

  test("a fetch put in Node's place, as mocking libraries do, gets every call", async (t) => {
    const nodeFetch = globalThis.fetch;
    const calls: string[] = [];
    globalThis.fetch = (input, init) => {
      calls.push(String(input));
      return nodeFetch(input, init);
    };
    t.after(() => {
      globalThis.fetch = nodeFetch;
    });
    assert.equal((await client().account.get()).username, "me");
    assert.deepEqual(calls, [`${baseUrl}/account`]);
  });

  test("redirects are followed as fetch follows them", async () => {
    const replicant = client();
    assert.equal((await replicant.get<{ username: string }>("/moved")).username, "me");

    const after303 = await replicant.post<{ method: string; body: string }>("/post-303", { data: { a: 1 } });
    assert.deepEqual(after303, { method: "GET", body: "" }, "a 303 turns the POST into a GET without a body");

    const after307 = await replicant.post<{ method: string; body: string }>("/post-307", { data: { a: 1 } });
    assert.deepEqual(after307, { method: "POST", body: '{"a":1}' }, "a 307 repeats the POST with its body");

    const from = seenElsewhere.length;
    assert.equal((await replicant.get<{ username: string }>("/away")).username, "me");
    const [away] = seenElsewhere.slice(from);
    assert.ok(away, "the other origin was reached");
    assert.equal(away.headers.authorization, undefined, "the token never goes to another origin");
  });

  test("a compressed answer is decoded", async () => {
    const replicant = client();
    assert.equal((await replicant.get<{ username: string }>("/gzip")).username, "me");
    assert.equal((await replicant.get<{ username: string }>("/deflate")).username, "me");
  });

  test("errors keep their types: an API error, no content, a refused connection, an abort", async () => {
    const replicant = client();
    await assert.rejects(replicant.post("/invalid", { data: {} }), (error: unknown) => {
      assert.ok(error instanceof UnprocessableEntityError, String(error));
      assert.equal(error.status, 422);
      assert.match(error.message, /text is required/);
      return true;
    });
    assert.equal(await replicant.delete("/empty"), undefined);

    const closed = createServer();
    const closedUrl = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(client({ baseUrl: `${closedUrl}/v1` }).account.get(), (error: unknown) => {
      assert.ok(error instanceof APIConnectionError, String(error));
      assert.equal((error.cause as { code?: string } | undefined)?.code, "ECONNREFUSED");
      return true;
    });

    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("user gave up")), 100);
    const started = Date.now();
    await assert.rejects(replicant.get("/hang", { signal: controller.signal }), (error: unknown) => {
      assert.ok(error instanceof APIUserAbortError, String(error));
      return true;
    });
    assert.ok(Date.now() - started < 1_000, "the abort ended the request at once");
  });
});
