// Issue #24 part 4: inputs that reached a 5xx (or an answer that was not problem+json) get clear 4xx
// problems: tampered cursors, deep JSON, malformed multipart, router and HTTP-parser errors, and URLs
// whose host names resolve to refused addresses.
import assert from "node:assert/strict";
import { lookup } from "node:dns/promises";
import { BlockList, connect } from "node:net";
import { hostname } from "node:os";
import { after, before, describe, it } from "node:test";
import { startTestServer, type TestServer } from "../src/index.js";

let server: TestServer;

interface Answer {
  status: number;
  type: string;
  text: string;
  json: Record<string, unknown> | undefined;
}

async function call(
  target: TestServer,
  method: string,
  path: string,
  init: { body?: BodyInit; headers?: Record<string, string>; token?: string | false } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token !== false) headers.authorization = `Bearer ${init.token ?? target.token}`;
  const response = await fetch(`${target.url}${path}`, {
    method,
    headers,
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const text = await response.text();
  const type = response.headers.get("content-type") ?? "";
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: response.status, type, text, json };
}

const jsonBody = (text: string) => ({ body: text, headers: { "content-type": "application/json" } });

function assertProblem(answer: Answer, status: number, detail?: RegExp): void {
  assert.equal(answer.status, status, answer.text.slice(0, 300));
  assert.match(answer.type, /^application\/problem\+json/, answer.text.slice(0, 300));
  assert.equal(answer.json?.status, status);
  assert.equal(typeof answer.json?.title, "string");
  assert.equal(typeof answer.json?.detail, "string");
  if (detail) assert.match(String(answer.json?.detail), detail);
}

/** Arrays nested `levels` deep: `[[[…]]]`. */
const nested = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;

before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.close();
});

describe("tampered cursors", () => {
  // The seven list endpoints that page with a cursor (hardware and examples are one page).
  const LISTS = [
    "/v1/predictions",
    "/v1/models",
    "/v1/models/replicate/hello-world/versions",
    "/v1/collections",
    "/v1/deployments",
    "/v1/trainings",
    "/v1/files",
  ];
  const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64url");
  const CURSORS = {
    garbage: "abc",
    "not JSON": b64("p=2023-06-06+23%3A40%3A08"),
    "an object": b64('{"a":1}'),
    "one element": b64('["2024-01-01T00:00:00.000Z"]'),
    "wrong types": b64("[1,2]"),
    "a NUL inside": b64('["2024-01-01T00:00:00.000Z","a\\u0000b"]'),
    overlong: b64(JSON.stringify(["x".repeat(300), "y"])),
  };
  for (const path of LISTS) {
    it(`${path}: 400 problem`, async () => {
      for (const [what, cursor] of Object.entries(CURSORS)) {
        const answer = await call(server, "GET", `${path}?cursor=${cursor}`);
        assert.equal(answer.status, 400, `${what}: ${answer.text}`);
        assertProblem(answer, 400, /cursor/);
      }
    });
  }
});

describe("JSON nesting", () => {
  it("a prediction input nested 3,000 levels is a 400, before parsing", async () => {
    const body = `{"version":"replicate/hello-world","input":{"text":"x","deep":${nested(3000)}}}`;
    assertProblem(
      await call(server, "POST", "/v1/predictions", jsonBody(body)),
      400,
      /JSON nested deeper than 64 levels/,
    );
  });

  it("every JSON body is checked, Replicant-only routes too", async () => {
    const deep = `{"x":${nested(65)}}`;
    for (const [method, path] of [
      ["POST", "/v1/models"],
      ["PATCH", "/v1/models/replicate/hello-world"],
      ["POST", "/v1/deployments"],
      ["PATCH", "/v1/deployments/local/nothing"],
      ["POST", "/v1/models/replicate/hello-world/predictions"],
      ["POST", "/v1/deployments/local/nothing/predictions"],
      ["POST", "/v1/models/replicant/hello-trainable/versions/abc/trainings"],
      ["POST", "/v1/predictions/abc/cancel"],
      ["POST", "/v1/replicant/accounts"],
      ["POST", "/v1/replicant/tokens"],
    ] as const) {
      const answer = await call(server, method, path, jsonBody(deep));
      assert.equal(answer.status, 400, `${method} ${path}: ${answer.text}`);
      assertProblem(answer, 400, /JSON nested deeper than 64 levels/);
    }
  });

  it("64 levels pass; brackets inside strings and escaped quotes do not count", async () => {
    // The body object and `input` are two levels: 62 more make 64.
    const atLimit = `{"version":"replicate/hello-world","input":{"text":"x","deep":${nested(62)}}}`;
    const answer = await call(server, "POST", "/v1/predictions", jsonBody(atLimit));
    assert.notEqual(answer.status, 400, answer.text);
    assert.ok(answer.status < 500, answer.text);
    const text = JSON.stringify(`\\"${"[{".repeat(2000)}`);
    const inString = `{"version":"replicate/hello-world","input":{"text":${text}}}`;
    const created = await call(server, "POST", "/v1/predictions", jsonBody(inString));
    assert.equal(created.status, 201, created.text);
  });

  it("the limit is configurable (jsonMaxDepth)", async () => {
    const strict = await startTestServer({ jsonMaxDepth: 4 });
    try {
      const ok = await call(strict, "POST", "/v1/replicant/tokens", jsonBody(`{"a":${nested(3)}}`));
      assert.notEqual(ok.json?.detail, "JSON nested deeper than 4 levels", ok.text);
      assertProblem(
        await call(strict, "POST", "/v1/replicant/tokens", jsonBody(`{"a":${nested(4)}}`)),
        400,
        /JSON nested deeper than 4 levels/,
      );
    } finally {
      await strict.close();
    }
  });
});

describe("malformed multipart bodies", () => {
  const part = (boundary: string) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="a.txt"\r\n` +
    "Content-Type: text/plain\r\n\r\nhello";
  const CASES: [string, string, string][] = [
    ["no boundary", "multipart/form-data", part("abc")],
    ["an empty boundary", "multipart/form-data; boundary=", part("abc")],
    ["a boundary the body lacks", "multipart/form-data; boundary=xyz", `${part("abc")}\r\n--abc--\r\n`],
    ["a boundary over 256 characters", `multipart/form-data; boundary=${"b".repeat(300)}`, part("b")],
    ["a truncated part", "multipart/form-data; boundary=abc", part("abc")],
    ["garbage", "multipart/form-data; boundary=abc", "\u0000\u0001 not multipart"],
  ];
  for (const [what, type, body] of CASES) {
    it(`${what}: 400 problem`, async () => {
      assertProblem(
        await call(server, "POST", "/v1/files", { body, headers: { "content-type": type } }),
        400,
      );
    });
  }
  it("a well-formed upload still works", async () => {
    const body = `${part("abc")}\r\n--abc--\r\n`;
    const answer = await call(server, "POST", "/v1/files", {
      body,
      headers: { "content-type": "multipart/form-data; boundary=abc" },
    });
    assert.equal(answer.status, 201, answer.text);
  });
});

describe("router and HTTP-parser errors", () => {
  it("bad percent-encoding: 400 problem", async () => {
    for (const path of ["/v1/predictions/%E0%A4%A", "/v1/models/%ZZ/x", "/v1/files/%C0%AF"]) {
      assertProblem(await call(server, "GET", path), 400, /percent-encoded/);
    }
  });

  it("a path parameter longer than the router's limit on an allowed method: 404, never 405", async () => {
    const long = "a".repeat(201);
    for (const [method, path] of [
      ["GET", `/v1/predictions/${long}`],
      ["POST", `/v1/predictions/${long}/cancel`],
      ["GET", `/v1/models/${long}/hello-world`],
      ["GET", `/v1/models/replicate/hello-world/versions/${long}`],
      ["DELETE", `/v1/files/${long}`],
      ["GET", `/v1/deployments/local/${long}`],
    ] as const) {
      const answer = await call(server, method, path);
      assert.equal(answer.status, 404, `${method} ${path.slice(0, 40)}: ${answer.text}`);
      assertProblem(answer, 404, /longer than 200 characters/);
    }
    // A method the path does not allow stays a 405.
    assertProblem(await call(server, "PUT", `/v1/predictions/${long}`), 405);
  });

  /** Writes raw bytes to the server and reads the whole answer (the server closes the socket). */
  async function raw(request: string): Promise<string> {
    const { port } = new URL(server.url);
    const socket = connect(Number(port), "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.write(request);
    await new Promise<void>((resolve) => {
      socket.on("close", () => resolve());
      socket.on("error", () => resolve());
    });
    return Buffer.concat(chunks).toString("latin1");
  }

  it("a request Node's HTTP parser refuses gets a problem, not Fastify's JSON", async () => {
    const malformed = await raw("GET /v1/account HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
    assert.match(malformed, /^HTTP\/1\.1 400 /);
    assert.match(malformed, /content-type: application\/problem\+json/i);
    const body = JSON.parse(malformed.slice(malformed.indexOf("\r\n\r\n") + 4)) as Record<string, unknown>;
    assert.equal(body.status, 400);
    assert.equal(typeof body.title, "string");
    assert.equal(typeof body.detail, "string");

    const huge = await raw(`GET /v1/account HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
    assert.match(huge, /^HTTP\/1\.1 431 /);
    assert.match(huge, /content-type: application\/problem\+json/i);
  });
});

describe("URLs whose host names resolve to refused addresses are refused at create", () => {
  let strict: TestServer;
  /** A name this machine resolves, without the network, to an address the default policy refuses. */
  let localName: string | undefined;

  before(async () => {
    strict = await startTestServer({ allowPrivateUrls: false });
    // Loopback and private ranges: addresses the default policy refuses.
    const refused = new BlockList();
    for (const [net, bits] of [
      ["127.0.0.0", 8],
      ["10.0.0.0", 8],
      ["172.16.0.0", 12],
      ["192.168.0.0", 16],
    ] as const) {
      refused.addSubnet(net, bits, "ipv4");
    }
    refused.addAddress("::1", "ipv6");
    // Not `localhost`: that name is refused without resolving it. The machine's own name is in
    // /etc/hosts (or nss-myhostname) on the machines these tests run on.
    for (const name of [hostname(), "localhost.localdomain", "ip6-localhost", "ip6-loopback"]) {
      if (/(^|\.)localhost\.?$/i.test(name)) continue;
      const answers = await lookup(name, { all: true }).catch(() => []);
      const family = (f: number) => (f === 6 ? "ipv6" : "ipv4");
      if (answers.some((a) => refused.check(a.address, family(a.family)))) {
        localName = name;
        break;
      }
    }
  });
  after(async () => {
    await strict.close();
  });

  const create = (path: string, body: unknown) => call(strict, "POST", path, jsonBody(JSON.stringify(body)));

  function assertRefused(answer: Answer, field: string): void {
    assertProblem(answer, 422, /resolves to a refused address/);
    const fields = answer.json?.invalid_fields as { field: string }[] | undefined;
    assert.equal(fields?.[0]?.field, field, answer.text);
  }

  it("a webhook (predictions, models' predictions, trainings)", async (t) => {
    if (!localName) return t.skip("no host name resolves to a loopback or private address here");
    const webhook = `http://${localName}:9/hook`;
    assertRefused(
      await create("/v1/predictions", { version: "replicate/hello-world", input: { text: "x" }, webhook }),
      "webhook",
    );
    assertRefused(
      await create("/v1/models/replicate/hello-world/predictions", { input: { text: "x" }, webhook }),
      "webhook",
    );
    const versions = await call(strict, "GET", "/v1/models/replicant/hello-trainable/versions");
    const version = ((versions.json?.results as { id: string }[] | undefined) ?? [])[0]?.id;
    assert.ok(version, versions.text);
    await call(strict, "POST", "/v1/models", {
      ...jsonBody(JSON.stringify({ owner: "local", name: "dest", visibility: "private", hardware: "cpu" })),
    });
    assertRefused(
      await create(`/v1/models/replicant/hello-trainable/versions/${version}/trainings`, {
        destination: "local/dest",
        input: { greeting: "yo" },
        webhook,
      }),
      "webhook",
    );
  });

  it("a file input given as an http URL", async (t) => {
    if (!localName) return t.skip("no host name resolves to a loopback or private address here");
    assertRefused(
      await create("/v1/models/replicant/file-echo/predictions", {
        input: { file: `http://${localName}:9/secret.png` },
      }),
      "input.file",
    );
  });

  it("a host name that does not resolve is accepted (the connect-time guard still applies)", async () => {
    const answer = await create("/v1/predictions", {
      version: "replicate/hello-world",
      input: { text: "x" },
      // A label over 63 characters: the resolver refuses it at once, without asking a DNS server (whose
      // answers for other names can take seconds here).
      webhook: `https://${"a".repeat(64)}.invalid/hook`,
    });
    assert.equal(answer.status, 201, answer.text);
  });

  it("this server's own file URLs (on a loopback address here) and data URIs are not refused", async () => {
    const own = await call(strict, "POST", "/v1/files", {
      body: '--abc\r\nContent-Disposition: form-data; name="content"; filename="a.txt"\r\n\r\nhello\r\n--abc--\r\n',
      headers: { "content-type": "multipart/form-data; boundary=abc" },
    });
    assert.equal(own.status, 201, own.text);
    for (const file of [(own.json!.urls as { get: string }).get, "data:text/plain;base64,aGVsbG8="]) {
      const answer = await create("/v1/models/replicant/file-echo/predictions", { input: { file } });
      assert.equal(answer.status, 201, answer.text);
    }
  });
});

describe("found by the OpenAPI fuzz", () => {
  const model = (fields: Record<string, unknown>) =>
    call(
      server,
      "POST",
      "/v1/models",
      jsonBody(JSON.stringify({ owner: "local", visibility: "private", hardware: "cpu", ...fields })),
    );

  it("model URL fields that are not http(s) URIs are refused (models answer them as format uri)", async () => {
    for (const github_url of ["not a url", "javascript:alert(1)", "https://a b/c", "ftp://example.com/x"]) {
      const answer = await model({ name: "bad-urls", github_url });
      assertProblem(answer, 422);
      assert.match(answer.text, /github_url must be an http or https URL/);
    }
    const created = await model({ name: "good-urls", github_url: "https://github.com/replicate/cog" });
    assert.equal(created.status, 201, created.text);
    const patched = await call(
      server,
      "PATCH",
      "/v1/models/local/good-urls",
      jsonBody(JSON.stringify({ paper_url: "see the README" })),
    );
    assertProblem(patched, 422);
  });

  it("a required model field given as null is a 422, not a 500", async () => {
    for (const field of ["owner", "name", "visibility", "hardware"]) {
      assertProblem(await model({ name: "nulls", [field]: null }), 422);
    }
  });

  it("search text too long for SQLite's LIKE is a 400, not a 500", async () => {
    const long = "x".repeat(60_000);
    assertProblem(
      await call(server, "QUERY", "/v1/models", { body: long, headers: { "content-type": "text/plain" } }),
      400,
      /longer than 1000 characters/,
    );
    assertProblem(await call(server, "GET", `/v1/search?query=${"y".repeat(5000)}`), 400);
  });

  it("a search body that only looks like a JSON string is searched as it is", async () => {
    const answer = await call(server, "QUERY", "/v1/models", {
      body: '"hello\\"',
      headers: { "content-type": "text/plain" },
    });
    assert.equal(answer.status, 200, answer.text);
  });
});
