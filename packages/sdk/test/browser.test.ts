// The SDK's core in a real browser (Debian's headless Chromium) against a real server with CORS: the
// compiled ESM files load as they are (no bundler, no Node-only imports), and run, stream, files and
// FileOutput work with the platform's fetch, streams and crypto.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { startTestServer, type TestServer } from "@replicant/testing";
import { type BrowserContext, chromium } from "playwright-core";

const CHROMIUM = process.env.REPLICANT_CHROMIUM ?? "/usr/bin/chromium";
const skip = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing: install it with \`apt-get install -y chromium\``;
/** packages/sdk/dist/src, the ESM build. */
const SDK_DIST = fileURLToPath(new URL("../src/", import.meta.url));

let server: TestServer;
let pages: Server;
let origin = "";
let browser: BrowserContext;
let profile = "";

before(async () => {
  if (skip) return;
  // A static server for the page and the SDK's files, on an origin of its own (so CORS is exercised).
  pages = createServer(async (request, response) => {
    const path = new URL(request.url ?? "/", "http://x").pathname;
    if (path === "/favicon.ico") {
      response.writeHead(204).end();
      return;
    }
    if (path === "/") {
      response.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>sdk</title>");
      return;
    }
    const file = normalize(join(SDK_DIST, path.replace(/^\/sdk\//, "")));
    if (!path.startsWith("/sdk/") || !file.startsWith(SDK_DIST)) {
      response.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      response
        .writeHead(200, {
          "content-type": extname(file) === ".js" ? "text/javascript" : "application/octet-stream",
        })
        .end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  pages.listen(0, "127.0.0.1");
  await new Promise((resolve) => pages.once("listening", resolve));
  origin = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
  server = await startTestServer({ corsOrigins: [origin] });
  profile = await mkdtemp(join(tmpdir(), "replicant-sdk-chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  if (skip) return;
  await browser.close();
  await server.close();
  pages.close();
  await rm(profile, { recursive: true, force: true });
});

describe("the SDK in a browser", { skip }, () => {
  it("runs, streams, uploads and reads file outputs against a real server", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(`${origin}/`);
    const result = await page.evaluate(
      async ({ apiUrl, token }) => {
        const { Replicant } = (await import("/sdk/index.js" as string)) as typeof import("../src/index.js");
        const client = new Replicant({ auth: token, baseUrl: apiUrl });
        const hello = await client.run("replicate/hello-world", { input: { text: "browser" } });
        let streamed = "";
        for await (const event of client.stream("replicant/stream-test", {
          input: { tokens: 3, delay_ms: 5 },
        })) {
          streamed += String(event);
        }
        const echoed = (await client.run("replicant/file-echo", {
          input: { file: new Blob(["bytes from a browser"], { type: "text/plain" }) },
        })) as { text(): Promise<string> };
        const account = await client.account.get();
        return { hello, streamed, echoed: await echoed.text(), username: account.username };
      },
      { apiUrl: server.apiUrl, token: server.token },
    );
    assert.deepEqual(result, {
      hello: "hello browser",
      streamed: "token-1 token-2 token-3 ",
      echoed: "bytes from a browser",
      username: "local",
    });
    assert.deepEqual(errors, []);
  });

  it("without the CORS option the browser is refused", async () => {
    const closed = await startTestServer();
    try {
      const page = await browser.newPage();
      await page.goto(`${origin}/`);
      const outcome = await page.evaluate(
        async ({ apiUrl, token }) => {
          const { Replicant } = (await import("/sdk/index.js" as string)) as typeof import("../src/index.js");
          const client = new Replicant({ auth: token, baseUrl: apiUrl, maxRetries: 0 });
          return client.account.get().then(
            () => "allowed",
            (error: Error) => error.name,
          );
        },
        { apiUrl: closed.apiUrl, token: closed.token },
      );
      assert.notEqual(outcome, "allowed");
    } finally {
      await closed.close();
    }
  });
});
