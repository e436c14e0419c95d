// Errors as problem+json: 401, 404 across accounts, 405, 413, 400, 422 and 429.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { inProcessOnly, startTestServer, type TestServer } from "../src/index.js";

let server: TestServer;
let otherToken = "";

async function call(
  method: string,
  path: string,
  token: string | undefined,
  init: { body?: BodyInit; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...init.headers };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${server.apiUrl}${path}`, {
    method,
    headers,
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const text = await response.text();
  return {
    status: response.status,
    text,
    headers: response.headers,
    json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
  };
}

const json = (value: unknown) => ({
  body: JSON.stringify(value),
  headers: { "content-type": "application/json" },
});

function assertProblem(
  res: { status: number; headers: Headers; json: Record<string, unknown> | undefined },
  status: number,
) {
  assert.equal(res.status, status);
  assert.match(res.headers.get("content-type") ?? "", /application\/problem\+json/);
  assert.equal(res.json?.status, status);
  assert.equal(typeof res.json?.title, "string");
  assert.equal(typeof res.json?.detail, "string");
  assert.ok(!JSON.stringify(res.json).includes("/work/"), "no file paths in error bodies");
}

before(async () => {
  server = await startTestServer({ bodyLimit: 64 * 1024, fileSizeLimit: 1024 * 1024 });
  const created = await call("POST", "/replicant/accounts", server.token, json({ username: "mallory" }));
  assert.equal(created.status, 201, created.text);
  otherToken = created.json!.token as string;
});
after(async () => {
  await server.close();
});

describe("401 Unauthenticated", () => {
  it("without a token", async () => {
    const res = await call("GET", "/predictions", undefined);
    assertProblem(res, 401);
    assert.equal(res.json!.detail, "You did not pass an authentication token");
  });
  it("with a bad, malformed, huge or non-ASCII token", async () => {
    for (const header of [
      "Bearer r8_nope",
      "Bearer",
      "Basic abc",
      `Bearer ${"x".repeat(10_000)}`,
      "Bearer r8_\u00e9\u00e9",
    ]) {
      const response = await fetch(`${server.apiUrl}/account`, { headers: { authorization: header } }).catch(
        () => undefined,
      );
      if (!response) continue; // fetch itself refuses some header values
      assert.ok([401, 431].includes(response.status), `${header.slice(0, 20)} → ${response.status}`);
    }
    assertProblem(await call("GET", "/account", "r8_wrong"), 401);
  });
  it(
    "tokens are stored hashed: no token appears in the database files",
    inProcessOnly("reads the SQLite files in server.dataDir"),
    async () => {
      const { readdir, readFile } = await import("node:fs/promises");
      const { join } = await import("node:path");
      for (const name of await readdir(server.dataDir)) {
        if (!name.startsWith("replicant.db")) continue;
        const bytes = await readFile(join(server.dataDir, name));
        for (const token of [server.token, otherToken])
          assert.equal(bytes.includes(token), false, `${token} found in ${name}`);
      }
    },
  );
  it("accepts the legacy Token scheme", async () => {
    const response = await fetch(`${server.apiUrl}/account`, {
      headers: { authorization: `Token ${server.token}` },
    });
    assert.equal(response.status, 200);
  });
  it("a revoked token stops working", async () => {
    const created = await call("POST", "/replicant/tokens", otherToken, json({ name: "temp" }));
    const token = created.json!.token as string;
    assert.equal((await call("GET", "/account", token)).status, 200);
    const list = await call("GET", "/replicant/tokens", otherToken);
    const id = (list.json!.results as { id: string; name: string }[]).find((t) => t.name === "temp")!.id;
    assert.equal((await call("DELETE", `/replicant/tokens/${id}`, otherToken)).status, 204);
    assertProblem(await call("GET", "/account", token), 401);
  });
});

describe("404 across accounts", () => {
  it("another account's prediction, training, file, deployment and private model are not found", async () => {
    const prediction = await call(
      "POST",
      "/predictions",
      server.token,
      json({ version: "replicate/hello-world", input: {} }),
    );
    const id = prediction.json!.id as string;
    assertProblem(await call("GET", `/predictions/${id}`, otherToken), 404);
    assertProblem(await call("POST", `/predictions/${id}/cancel`, otherToken), 404);
    const mine = await call("GET", "/predictions", otherToken);
    assert.deepEqual(mine.json!.results, []);

    const form = new FormData();
    form.append("content", new Blob(["secret"]), "s.txt");
    const file = await call("POST", "/files", server.token, { body: form });
    assertProblem(await call("GET", `/files/${file.json!.id as string}`, otherToken), 404);
    assertProblem(await call("DELETE", `/files/${file.json!.id as string}`, otherToken), 404);

    const model = await call(
      "POST",
      "/models",
      server.token,
      json({ owner: "local", name: "secret", visibility: "private", hardware: "cpu" }),
    );
    assert.equal(model.status, 201);
    assertProblem(await call("GET", "/models/local/secret", otherToken), 404);
    const list = await call("GET", "/models", otherToken);
    assert.ok(!(list.json!.results as { name: string }[]).some((m) => m.name === "secret"));
    // Creating a model for someone else is forbidden.
    assertProblem(
      await call(
        "POST",
        "/models",
        otherToken,
        json({ owner: "local", name: "x", visibility: "public", hardware: "cpu" }),
      ),
      403,
    );

    const version = (
      (await call("GET", "/models/replicate/hello-world", server.token)).json!.latest_version as {
        id: string;
      }
    ).id;
    const deployment = await call(
      "POST",
      "/deployments",
      server.token,
      json({
        name: "mine",
        model: "replicate/hello-world",
        version,
        hardware: "cpu",
        min_instances: 0,
        max_instances: 1,
      }),
    );
    assert.equal(deployment.status, 200);
    assertProblem(await call("GET", "/deployments/local/mine", otherToken), 404);
    assertProblem(
      await call("POST", "/deployments/local/mine/predictions", otherToken, json({ input: {} })),
      404,
    );

    // The stream URL without its signature is not a way in.
    const stream = new URL((prediction.json!.urls as { stream: string }).stream);
    stream.search = "";
    assertProblem(await call("GET", stream.pathname.replace("/v1", ""), otherToken), 404);
  });
  it("a private model's version is 'Invalid version or not permitted' to others", async () => {
    const res = await call("POST", "/predictions", otherToken, json({ version: "local/secret", input: {} }));
    assertProblem(res, 422);
    assert.equal(res.json!.title, "Invalid version or not permitted");
  });
});

describe("request errors", () => {
  it("405 with Allow for a known path and the wrong method; 404 problem for unknown paths", async () => {
    const res = await call("PUT", "/predictions", server.token);
    assertProblem(res, 405);
    assert.match(res.headers.get("allow") ?? "", /GET/);
    assert.match(res.headers.get("allow") ?? "", /POST/);
    assertProblem(await call("GET", "/nothing/here", server.token), 404);
  });
  it("400 for malformed JSON and prototype poisoning", async () => {
    assertProblem(
      await call("POST", "/predictions", server.token, {
        body: "{nope",
        headers: { "content-type": "application/json" },
      }),
      400,
    );
    assertProblem(
      await call("POST", "/predictions", server.token, {
        body: '{"version":"replicate/hello-world","input":{},"__proto__":{"x":1}}',
        headers: { "content-type": "application/json" },
      }),
      400,
    );
    assert.equal(({} as { x?: number }).x, undefined);
  });
  it("413 for a JSON body over the limit and a file over the limit", async () => {
    const big = JSON.stringify({ version: "replicate/hello-world", input: { text: "x".repeat(100 * 1024) } });
    assertProblem(
      await call("POST", "/predictions", server.token, {
        body: big,
        headers: { "content-type": "application/json" },
      }),
      413,
    );
    const form = new FormData();
    form.append("content", new Blob([new Uint8Array(1024 * 1024 + 1)]), "big.bin");
    const res = await call("POST", "/files", server.token, { body: form });
    assertProblem(res, 413);
    assert.equal(res.json!.detail, "Files must be less than 100MB in size");
  });
  it("422 with invalid_fields for bad input, missing fields and unknown fields", async () => {
    const res = await call(
      "POST",
      "/predictions",
      server.token,
      json({ version: "replicant/stream-test", input: { tokens: 99999, fail: "yes" } }),
    );
    assertProblem(res, 422);
    assert.equal(res.json!.title, "Input validation failed");
    const fields = res.json!.invalid_fields as { type: string; field: string }[];
    assert.ok(fields.some((f) => f.type === "number_lte" && f.field === "input.tokens"));
    assert.ok(fields.some((f) => f.field === "input.fail"));
    const missing = await call("POST", "/predictions", server.token, json({ input: {} }));
    assertProblem(missing, 422);
    assert.match(missing.json!.detail as string, /version is required/);
    const extra = await call(
      "POST",
      "/predictions",
      server.token,
      json({ version: "replicate/hello-world", input: {}, model: "x" }),
    );
    assertProblem(extra, 422);
    assert.match(extra.json!.detail as string, /Additional property model is not allowed/);
  });
  it("422 for bad Prefer and Cancel-After headers, never 500", async () => {
    for (const headers of [
      { prefer: "wait=0" },
      { prefer: "wait=61" },
      { "cancel-after": "4s" },
      { "cancel-after": "25h" },
      { "cancel-after": "abc" },
    ]) {
      const res = await call("POST", "/predictions", server.token, {
        body: JSON.stringify({ version: "replicate/hello-world", input: {} }),
        headers: { "content-type": "application/json", ...headers },
      });
      assertProblem(res, 422);
    }
  });
  it("422 for a webhook on a private address when private URLs are not allowed", async () => {
    const strict = await startTestServer({ allowPrivateUrls: false });
    try {
      const response = await fetch(`${strict.apiUrl}/predictions`, {
        method: "POST",
        headers: { authorization: `Bearer ${strict.token}`, "content-type": "application/json" },
        body: JSON.stringify({
          version: "replicate/hello-world",
          input: {},
          webhook: "http://127.0.0.1:9/hook",
        }),
      });
      assert.equal(response.status, 422);
      const body = (await response.json()) as { detail: string };
      assert.match(body.detail, /not allowed/);
    } finally {
      await strict.close();
    }
  });
  it("400 for a tampered cursor", async () => {
    assertProblem(await call("GET", "/predictions?cursor=%00%2F..", server.token), 400);
  });
});

describe("429 rate limits", () => {
  it("prediction creates beyond the limit get 429 with Retry-After; other accounts are unaffected", async () => {
    const limited = await startTestServer({
      rateLimit: { predictionCreatesPerMinute: 3, otherRequestsPerMinute: 5 },
    });
    try {
      const create = (token: string) =>
        fetch(`${limited.apiUrl}/predictions`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ version: "replicate/hello-world", input: {} }),
        });
      for (let i = 0; i < 3; i++) assert.equal((await create(limited.token)).status, 201);
      const throttled = await create(limited.token);
      assert.equal(throttled.status, 429);
      assert.match(throttled.headers.get("retry-after") ?? "", /^\d+$/);
      assert.match(throttled.headers.get("content-type") ?? "", /problem\+json/);
      const body = (await throttled.json()) as { detail: string; status: number };
      assert.equal(body.status, 429);
      assert.match(body.detail, /Request was throttled/);
      const other = await fetch(`${limited.apiUrl}/replicant/accounts`, {
        method: "POST",
        headers: { authorization: `Bearer ${limited.token}`, "content-type": "application/json" },
        body: JSON.stringify({ username: "bob" }),
      });
      const bob = ((await other.json()) as { token: string }).token;
      assert.equal((await create(bob)).status, 201);
    } finally {
      await limited.close();
    }
  });
});
