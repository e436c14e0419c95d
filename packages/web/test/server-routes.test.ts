import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { request as httpRequest } from "node:http";
import { after, before, describe, test } from "node:test";
import { startTestServer, type TestServer } from "@replicant/testing";
import { ensureWebBuild } from "./browser.js";

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw HTTP request, so that Host, Origin and other headers can be anything. */
function send(
  method: string,
  url: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method, headers }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        text += chunk;
      });
      response.on("end", () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }),
      );
    });
    request.on("error", reject);
    request.end(body);
  });
}

const get = (url: string, headers: Record<string, string> = {}) => send("GET", url, headers);

/** POST /replicant/session with `code` as the playground sends it; the answer and its token, if any. */
async function exchange(
  url: string,
  code: unknown,
  headers: Record<string, string> = {},
): Promise<{ response: RawResponse; token: unknown }> {
  const response = await send(
    "POST",
    `${url}/replicant/session`,
    { "content-type": "application/json", ...headers },
    JSON.stringify({ code }),
  );
  assert.equal(response.headers["cache-control"], "no-store");
  const body = JSON.parse(response.body) as { token?: unknown };
  return { response, token: body.token };
}

const codeOf = (link: string) => new URL(link).searchParams.get("login") ?? "";

describe("web routes: the playground's files, its headers and its sign-in links", () => {
  let server: TestServer;
  before(async () => {
    ensureWebBuild();
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });

  test("the session endpoint gives a local request nothing without a valid, unused code", async () => {
    const sameOrigin = { origin: server.url, "sec-fetch-site": "same-origin" };
    // What a local process (or the old playground) asked before: now refused, never answered with a token.
    const plain = await get(`${server.url}/replicant/session`, sameOrigin);
    assert.equal(plain.status, 405);
    assert.equal(plain.headers.allow, "POST");
    assert.doesNotMatch(plain.body, new RegExp(server.token));
    const empty = await send("POST", `${server.url}/replicant/session`, {
      ...sameOrigin,
      "content-type": "application/json",
    });
    assert.equal(empty.status, 400);
    assert.match(String(empty.headers["content-type"]), /problem\+json/);
    for (const code of [
      undefined,
      42,
      "",
      "x".repeat(43),
      "not a code",
      codeOf(server.server.createLoginLink() ?? "").slice(1),
    ]) {
      const { response, token } = await exchange(server.url, code, sameOrigin);
      assert.ok(response.status === 400 || response.status === 403, `${code}: ${response.status}`);
      assert.equal(token, undefined, String(code));
      assert.doesNotMatch(response.body, new RegExp(server.token));
    }
  });

  test("a fresh code gives the default account's token once", async () => {
    const link = server.server.createLoginLink() ?? "";
    assert.match(link, new RegExp(`^${server.url}/\\?login=[\\w-]{43}$`));
    const first = await exchange(server.url, codeOf(link));
    assert.equal(first.response.status, 200);
    assert.equal(first.token, server.token);
    assert.equal((JSON.parse(first.response.body) as { username: string }).username, "local");
    const again = await exchange(server.url, codeOf(link));
    assert.equal(again.response.status, 403);
    assert.equal(again.token, undefined);
    assert.match(again.response.body, /used or has expired; run `replicant open`/);
  });

  test("a code expires after five minutes unused", async () => {
    const link = server.server.createLoginLink() ?? "";
    const late = server.server.createLoginLink() ?? "";
    const ctx = server.server.ctx;
    const realNow = ctx.now;
    ctx.now = () => new Date(realNow().getTime() + 5 * 60_000 - 1000);
    try {
      assert.equal((await exchange(server.url, codeOf(link))).token, server.token, "still valid just before");
      ctx.now = () => new Date(realNow().getTime() + 5 * 60_000 + 1000);
      const expired = await exchange(server.url, codeOf(late));
      assert.equal(expired.response.status, 403);
      assert.equal(expired.token, undefined);
    } finally {
      ctx.now = realNow;
    }
  });

  test("another site's page cannot spend a code, and does not burn it", async () => {
    const code = codeOf(server.server.createLoginLink() ?? "");
    const port = new URL(server.url).port;
    const refused: Record<string, string>[] = [
      { origin: "http://evil.example" },
      { origin: `http://evil.example:${port}`, host: `evil.example:${port}`, "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
      { origin: "null" },
    ];
    for (const headers of refused) {
      const { response, token } = await exchange(server.url, code, headers);
      assert.equal(response.status, 403, JSON.stringify(headers));
      assert.equal(token, undefined, JSON.stringify(headers));
    }
    assert.equal((await exchange(server.url, code, { origin: server.url })).token, server.token);
  });

  test("POST /v1/replicant/login-links issues a link for the caller's own token", async () => {
    const auth = (token: string) => ({
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
    });
    const created = await send(
      "POST",
      `${server.apiUrl}/replicant/accounts`,
      auth(server.token),
      JSON.stringify({ username: "linked" }),
    );
    assert.equal(created.status, 201, created.body);
    const { token } = JSON.parse(created.body) as { token: string };
    const issued = await send("POST", `${server.apiUrl}/replicant/login-links`, auth(token));
    assert.equal(issued.status, 201, issued.body);
    assert.equal(issued.headers["cache-control"], "no-store");
    const link = JSON.parse(issued.body) as { url: string; code: string; expires_at: string };
    assert.equal(link.url, `${server.url}/?login=${link.code}`);
    const minutes = (Date.parse(link.expires_at) - Date.now()) / 60_000;
    assert.ok(minutes > 4.9 && minutes <= 5, link.expires_at);
    const signedIn = await exchange(server.url, link.code);
    assert.equal(signedIn.token, token, "the caller's token, not the default account's");
    assert.equal((JSON.parse(signedIn.response.body) as { username: string }).username, "linked");

    const anonymous = await send("POST", `${server.apiUrl}/replicant/login-links`);
    assert.equal(anonymous.status, 401);
    assert.equal((await send("GET", `${server.apiUrl}/replicant/login-links`, auth(token))).status, 405);

    // A token revoked after its link was issued signs nobody in.
    const extra = await send("POST", `${server.apiUrl}/replicant/tokens`, auth(token), "{}");
    const revocable = (JSON.parse(extra.body) as { token: string }).token;
    const pending = JSON.parse(
      (await send("POST", `${server.apiUrl}/replicant/login-links`, auth(revocable))).body,
    ) as {
      code: string;
    };
    const id = createHash("sha256").update(revocable).digest("hex").slice(0, 16);
    assert.equal((await send("DELETE", `${server.apiUrl}/replicant/tokens/${id}`, auth(token))).status, 204);
    assert.equal((await exchange(server.url, pending.code)).response.status, 403);
  });

  test("behind a proxy, a link names the public URL and the page on it may spend the code", async () => {
    const published = await startTestServer({ publicUrl: "https://replicant.example.com" });
    try {
      const link = published.server.createLoginLink() ?? "";
      assert.match(link, /^https:\/\/replicant\.example\.com\/\?login=[\w-]{43}$/);
      const address = published.server.app.server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      const { token } = await exchange(`http://127.0.0.1:${port}`, codeOf(link), {
        origin: "https://replicant.example.com",
        "sec-fetch-site": "same-origin",
      });
      assert.equal(token, published.token);
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
        // No playground to sign in to: no sign-in links, and a clear problem saying why.
        assert.equal(bare.server.createLoginLink(), undefined);
        const links = await send("POST", `${bare.apiUrl}/replicant/login-links`, {
          authorization: `Bearer ${bare.token}`,
        });
        assert.equal(links.status, 409);
        assert.match(links.body, /does not serve the web playground/);
      } finally {
        await bare.close();
      }
    } finally {
      if (saved === undefined) delete process.env.REPLICANT_WEB_DIR;
      else process.env.REPLICANT_WEB_DIR = saved;
    }
  });
});
