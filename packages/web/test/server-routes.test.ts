import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, test } from "node:test";
import { startTestServer, type TestServer } from "@replicant/testing";
import { ensureWebBuild } from "./browser.js";

/** A raw HTTP GET, so that Host, Origin and other headers can be anything. */
function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method: "GET", headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        body += chunk;
      });
      response.on("end", () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
      );
    });
    request.on("error", reject);
    request.end();
  });
}

async function sessionToken(url: string, headers: Record<string, string> = {}): Promise<unknown> {
  const response = await get(`${url}/replicant/session`, headers);
  assert.equal(response.status, 200);
  assert.equal(response.headers["cache-control"], "no-store");
  return (JSON.parse(response.body) as { token: unknown }).token;
}

describe("web routes: the playground's files, its headers and the loopback session", () => {
  let server: TestServer;
  before(async () => {
    ensureWebBuild();
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });

  test("the local default account's token is handed to a plain same-machine request", async () => {
    assert.equal(await sessionToken(server.url), server.token);
    const port = new URL(server.url).port;
    assert.equal(await sessionToken(server.url, { host: `localhost:${port}` }), server.token);
    assert.equal(
      await sessionToken(server.url, { origin: server.url, "sec-fetch-site": "same-origin" }),
      server.token,
    );
  });

  test("it is refused to other sites, DNS rebinding and proxied requests", async () => {
    const port = new URL(server.url).port;
    const refused: Record<string, string>[] = [
      { origin: "http://evil.example" },
      { origin: `http://evil.example:${port}`, host: `evil.example:${port}` },
      { host: `evil.example:${port}` },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
      { "x-forwarded-for": "203.0.113.9" },
      { forwarded: "for=203.0.113.9" },
      { "x-real-ip": "203.0.113.9" },
      { origin: "null" },
    ];
    for (const headers of refused) {
      assert.equal(await sessionToken(server.url, headers), null, JSON.stringify(headers));
    }
  });

  test("a server listening beyond loopback never hands out the token", async () => {
    const wide = await startTestServer({ host: "0.0.0.0" });
    try {
      const port = new URL(wide.url).port;
      assert.equal(await sessionToken(`http://127.0.0.1:${port}`), null);
    } finally {
      await wide.close();
    }
  });

  test("a server published under a non-loopback URL never hands out the token", async () => {
    const published = await startTestServer({ publicUrl: "https://replicant.example.com" });
    try {
      const address = published.server.app.server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      assert.equal(await sessionToken(`http://127.0.0.1:${port}`), null);
    } finally {
      await published.close();
    }
  });

  test("the UI has a CSP and security headers, the API keeps its own", async () => {
    const page = await get(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(String(page.headers["content-type"]), /text\/html/);
    assert.match(String(page.headers["content-security-policy"]), /default-src 'self'/);
    assert.match(String(page.headers["content-security-policy"]), /script-src 'self'(;|$)/);
    assert.equal(page.headers["x-frame-options"], "DENY");
    assert.equal(page.headers["referrer-policy"], "no-referrer");
    assert.match(page.body, /<div id="app">/);
    assert.doesNotMatch(
      page.body,
      /<script>|https?:\/\/(?!127)/,
      "no inline scripts, nothing from another host",
    );

    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(page.body)?.[1];
    assert.ok(asset);
    const js = await get(`${server.url}${asset}`);
    assert.equal(js.status, 200);
    assert.match(String(js.headers["cache-control"]), /immutable/);

    const api = await get(`${server.url}/v1/account`, { authorization: `Bearer ${server.token}` });
    assert.equal(api.status, 200);
    assert.equal(api.headers["content-security-policy"], undefined);
  });

  test("SPA paths get index.html; unknown /v1 paths keep the API's 404 and 405", async () => {
    for (const path of [
      "/p/abc123",
      "/replicate/hello-world",
      "/predictions?status=failed",
      "/deployments/a/b",
    ]) {
      const response = await get(`${server.url}${path}`);
      assert.equal(response.status, 200, path);
      assert.match(response.body, /<div id="app">/, path);
    }
    const missing = await get(`${server.url}/v1/nothing-here`, { authorization: `Bearer ${server.token}` });
    assert.equal(missing.status, 404);
    assert.match(String(missing.headers["content-type"]), /problem\+json/);
    const wrongMethod = await get(`${server.url}/v1/predictions/abc/cancel`, {
      authorization: `Bearer ${server.token}`,
    });
    assert.equal(wrongMethod.status, 405);
    assert.match(String(wrongMethod.headers.allow), /POST/);
    const traversal = await get(`${server.url}/assets/..%2f..%2fpackage.json`);
    assert.doesNotMatch(traversal.body, /"name": "@replicant\/web"/);
  });

  test("without a web build the server starts as the API only", async () => {
    const saved = process.env.REPLICANT_WEB_DIR;
    process.env.REPLICANT_WEB_DIR = "/nonexistent/replicant-web";
    try {
      const bare = await startTestServer();
      try {
        const home = await get(`${bare.url}/`);
        assert.equal(home.status, 404);
        const account = await get(`${bare.apiUrl}/account`, { authorization: `Bearer ${bare.token}` });
        assert.equal(account.status, 200);
      } finally {
        await bare.close();
      }
    } finally {
      if (saved === undefined) delete process.env.REPLICANT_WEB_DIR;
      else process.env.REPLICANT_WEB_DIR = saved;
    }
  });
});
