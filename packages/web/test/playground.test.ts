import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { startTestServer, type TestServer } from "@replicant/testing";
import type { Page } from "playwright-core";
import {
  type Browser,
  ensureWebBuild,
  openBrowser,
  screenshot,
  skipBrowser,
  webPackageDir,
} from "./browser.js";

const run = promisify(execFile);

/** sh -c with no standard input (the CLI reads input JSON from a pipe). */
function runShell(script: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", script], { env, stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      err += chunk.toString("utf8");
    });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`))));
  });
}
const TIMEOUT = 30_000;

/**
 * End to end in headless Chromium against a real server: sign-in, forms, streaming, files, cancel,
 * failures, deployments, and the generated code executed as shown. Every page must log no console error.
 */
describe("web playground in Chromium", { skip: skipBrowser, timeout: 240_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  const seen: Record<string, string> = {};

  before(async () => {
    ensureWebBuild();
    server = await startTestServer();
    browser = await openBrowser();
    page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  const noConsoleErrors = () => assert.deepEqual(browser.errors, [], "no console errors");

  async function waitForStatus(status: string): Promise<void> {
    await page.locator(".status-row .status").filter({ hasText: status }).waitFor();
  }

  async function runFromForm(model: string, fill: (page: Page) => Promise<void>): Promise<string> {
    await page.goto(`${server.url}/${model}`);
    await page.locator("form[aria-label='Model input']").waitFor();
    await fill(page);
    await page.getByRole("button", { name: "Run", exact: true }).click();
    await page.waitForURL(/\/p\/[a-z0-9]+$/);
    return new URL(page.url()).pathname.split("/").pop() ?? "";
  }

  test("signs in through a one-time link, and with a token after signing out", async () => {
    // Nothing signs in by itself any more: without a link, the sign-in page.
    await page.goto(server.url);
    await page.getByLabel("API token").waitFor();
    const link = server.server.createLoginLink() ?? "";
    assert.match(link, /\?login=[\w-]{43}$/);
    await page.goto(link);
    await page.getByTestId("signed-in-as").filter({ hasText: "local" }).waitFor();
    await page.locator(".model-card").first().waitFor();
    assert.equal(new URL(page.url()).search, "", "the code is gone from the address bar");
    assert.doesNotMatch(await page.evaluate(() => location.href), /login=/);
    const stored = await page.evaluate(() => localStorage.getItem("replicant.token"));
    assert.equal(stored, server.token, "stored as a typed token is");
    await screenshot(page, "models");

    await page.getByRole("link", { name: "Account" }).click();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/sign-in/);
    // Signed out: a reload stays signed out, and the spent link says so.
    await page.reload();
    await page.getByLabel("API token").waitFor();
    await screenshot(page, "sign-in");
    await page.goto(link);
    await page
      .getByRole("alert")
      .filter({ hasText: "This sign-in link was used or has expired; run `replicant open` for a new one." })
      .waitFor();
    assert.doesNotMatch(page.url(), /login=/);
    await page.getByLabel("API token").fill("r8_not-a-real-token");
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page
      .getByRole("alert")
      .filter({ hasText: /authentication token/i })
      .waitFor();
    await page.getByLabel("API token").fill(server.token);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByTestId("signed-in-as").filter({ hasText: "local" }).waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem("replicant.token")), server.token);
    // Browser errors from the spent link's 403 and the rejected token's 401 are expected; nothing else.
    const unexpected = browser.errors.filter((e) => !/status of (401|403)/.test(e));
    assert.deepEqual(unexpected, []);
    browser.errors.length = 0;
  });

  test("runs hello-world from the generated form", async () => {
    await page.goto(`${server.url}/replicate/hello-world`);
    const text = page.locator("#input-text");
    assert.equal(await text.inputValue(), "world", "the default is filled in");
    assert.match((await page.locator("#input-text-hint").textContent()) ?? "", /prefix with 'hello '/);
    await screenshot(page, "model");
    const id = await runFromForm("replicate/hello-world", async (p) => {
      await p.locator("#input-text").fill("Alice");
    });
    await waitForStatus("succeeded");
    assert.equal(await page.getByTestId("output-text").textContent(), "hello Alice");
    assert.equal(await page.locator("#share-url").inputValue(), `${server.url}/p/${id}`);
    seen.hello = id;
    noConsoleErrors();
  });

  test("streams stream-test's tokens as they come", async () => {
    const streams: string[] = [];
    const onRequest = (request: { url(): string; resourceType(): string }) => {
      if (request.url().includes("/stream?")) streams.push(request.resourceType());
    };
    page.on("request", onRequest);
    const id = await runFromForm("replicant/stream-test", async (p) => {
      await p.locator("#input-tokens").fill("12");
      await p.locator("#input-delay_ms").fill("250");
    });
    const output = page.getByTestId("output-text");
    await page.waitForFunction(() =>
      document.querySelector("[data-testid=output-text]")?.textContent?.includes("token-2 "),
    );
    const partial = (await output.textContent()) ?? "";
    assert.ok(!partial.includes("token-12"), `text arrives before the end: ${partial}`);
    assert.notEqual(await page.locator(".status-row .status").textContent(), "succeeded");
    await screenshot(page, "prediction-streaming", false);
    await waitForStatus("succeeded");
    const full = (await output.textContent()) ?? "";
    assert.equal(full, Array.from({ length: 12 }, (_, i) => `token-${i + 1} `).join(""));
    assert.match((await page.getByTestId("logs").textContent()) ?? "", /emitting token 12/);
    page.off("request", onRequest);
    assert.ok(
      streams.includes("eventsource"),
      `urls.stream opened as an EventSource (${streams.join(", ")})`,
    );
    seen.stream = id;
    await screenshot(page, "prediction");
    noConsoleErrors();
  });

  test("uploads a file to file-echo (by picking and by dropping) and downloads the output", async () => {
    await page.goto(`${server.url}/replicant/file-echo`);
    await page.locator("#input-file").setInputFiles({
      name: "note.txt",
      mimeType: "text/plain",
      buffer: Buffer.from("picked bytes\n"),
    });
    await page.getByText("Uploaded note.txt").waitFor();
    // Dropping a file on the zone uploads it too (and replaces the first).
    const dataTransfer = await page.evaluateHandle(() => {
      const transfer = new DataTransfer();
      transfer.items.add(
        new File(["dropped bytes, the ones to echo\n"], "dropped.txt", { type: "text/plain" }),
      );
      return transfer;
    });
    await page.dispatchEvent(".dropzone", "drop", { dataTransfer });
    await page.getByText("Uploaded dropped.txt").waitFor();
    await page.getByRole("button", { name: "Run", exact: true }).click();
    await page.waitForURL(/\/p\/[a-z0-9]+$/);
    await waitForStatus("succeeded");
    const link = page.getByRole("link", { name: /^Download/ });
    const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
    const path = await download.path();
    assert.equal(await readFile(path, "utf8"), "dropped bytes, the ones to echo\n");
    seen.file = new URL(page.url()).pathname.split("/").pop() ?? "";
    noConsoleErrors();
  });

  test("cancels a running prediction", async () => {
    await runFromForm("replicant/stream-test", async (p) => {
      await p.locator("#input-tokens").fill("400");
      await p.locator("#input-delay_ms").fill("100");
    });
    await page.waitForFunction(() =>
      document.querySelector("[data-testid=output-text]")?.textContent?.includes("token-1 "),
    );
    await page.getByRole("button", { name: "Cancel" }).click();
    await waitForStatus("canceled");
    assert.equal(await page.getByRole("button", { name: "Cancel" }).count(), 0);
    noConsoleErrors();
  });

  test("shows a failed prediction's error and logs", async () => {
    const id = await runFromForm("replicant/stream-test", async (p) => {
      await p.locator("#input-tokens").fill("2");
      await p.locator("#input-delay_ms").fill("10");
      await p.locator("#input-fail").check();
    });
    await waitForStatus("failed");
    assert.equal(await page.getByTestId("prediction-error").textContent(), "stream-test failed as requested");
    const logs = (await page.getByTestId("logs").textContent()) ?? "";
    assert.match(logs, /emitting token 1\nemitting token 2/);
    assert.match(logs, /Error: stream-test failed as requested/);
    seen.failed = id;
    await screenshot(page, "prediction-failed");
    noConsoleErrors();
  });

  test("creates a deployment and runs it", async () => {
    await page.goto(`${server.url}/deployments`);
    await page.getByText("No deployments yet.").waitFor();
    await page.locator("#deployment-name").fill("greeter");
    await page.locator("#deployment-model").selectOption("replicate/hello-world");
    await page.locator("#deployment-version option").first().waitFor({ state: "attached" });
    await page.getByRole("button", { name: "Create deployment" }).click();
    await page.waitForURL(/\/deployments\/local\/greeter$/);
    await page.locator("#input-text").fill("deployment");
    await screenshot(page, "deployment");
    await page.getByRole("button", { name: "Run", exact: true }).click();
    await page.waitForURL(/\/p\/[a-z0-9]+$/);
    await waitForStatus("succeeded");
    assert.equal(await page.getByTestId("output-text").textContent(), "hello deployment");
    await page.getByRole("link", { name: "local/greeter" }).first().waitFor();
    await page.goto(`${server.url}/deployments`);
    await page.getByRole("link", { name: "local/greeter" }).waitFor();
    await screenshot(page, "deployments");
    noConsoleErrors();
  });

  test("the generated code of a run executes as shown", async () => {
    const id = await runFromForm("replicate/hello-world", async (p) => {
      await p.locator("#input-text").fill("snippet's friend");
    });
    await waitForStatus("succeeded");
    assert.equal(await page.getByTestId("output-text").textContent(), "hello snippet's friend");
    const env: NodeJS.ProcessEnv = { ...process.env, REPLICATE_API_TOKEN: server.token };
    delete env.REPLICATE_BASE_URL;

    const snippet = async (tab: string, id: string) => {
      await page.getByRole("tab", { name: tab, exact: true }).click();
      return (await page.locator(`pre[data-snippet="${id}"]`).textContent()) ?? "";
    };

    const curl = await snippet("curl", "curl");
    assert.match(curl, new RegExp(`${server.url}/v1/predictions`));
    const { stdout: curlOut } = await run("sh", ["-c", curl], { env, timeout: 30_000 });
    const prediction = JSON.parse(curlOut) as { status: string; output: string };
    assert.equal(prediction.status, "succeeded");
    assert.equal(prediction.output, "hello snippet's friend");

    for (const [tab, name] of [
      ["@replicant/sdk", "sdk"],
      ["replicate (npm)", "replicate"],
    ] as const) {
      const code = await snippet(tab, name);
      // Saved inside this package so that its imports resolve from the workspace's node_modules.
      const file = join(webPackageDir, "dist", "test", `snippet-${name}-${id}.mjs`);
      await writeFile(file, code);
      try {
        const { stdout } = await run(process.execPath, [file], { env, timeout: 30_000 });
        assert.equal(stdout.trim(), "hello snippet's friend", `${tab} snippet`);
      } finally {
        await rm(file, { force: true });
      }
    }
    await screenshot(page, "prediction-code");

    const cli = await snippet("CLI", "cli");
    assert.match(
      cli,
      /^REPLICATE_BASE_URL=\S+ replicant run replicate\/hello-world:[0-9a-f]{64} \\\n {2}-i 'text=snippet'\\''s friend'$/,
    );
    // The CLI as installed in this workspace (node_modules/.bin/replicant); piped, it prints the prediction as JSON.
    const bin = join(webPackageDir, "..", "..", "node_modules", ".bin");
    const cliOut = await runShell(cli, { ...env, PATH: `${bin}:${process.env.PATH ?? ""}` });
    assert.equal((JSON.parse(cliOut) as { output: string }).output, "hello snippet's friend");
    const python = await snippet("Python", "python");
    assert.match(
      python,
      /client\.run\(\n {4}"replicate\/hello-world:[0-9a-f]{64}",\n {4}input=\{\n {8}"text": "snippet's friend",\n {4}\},\n\)/,
    );
    noConsoleErrors();
  });

  test("every page renders without console errors (history, trainings, account, README, versions)", async () => {
    await page.goto(`${server.url}/predictions`);
    await page.locator("table tbody tr").first().waitFor();
    const rows = await page.locator("table tbody tr").count();
    assert.ok(rows >= 6, `history lists the runs (${rows})`);
    await screenshot(page, "predictions");
    await page.locator("#filter-status").selectOption("failed");
    await page.waitForURL(/status=failed/);
    assert.equal(await page.locator("table tbody tr").count(), 1);
    await page.locator("#filter-status").selectOption("");
    await page.locator("#filter-model").fill("file-echo");
    await page.locator("#filter-model").press("Enter");
    await page.waitForURL(/model=file-echo/);
    assert.equal(await page.locator("table tbody tr").count(), 1);

    await page.goto(`${server.url}/replicant/hello-trainable?tab=train`);
    await page.locator("#input-greeting").fill("howdy");
    await screenshot(page, "train");
    await page.getByRole("button", { name: "Start training" }).click();
    await page.waitForURL(/\/p\/[a-z0-9]+/);
    await page.locator(".status-row .status").waitFor();
    await page.goto(`${server.url}/trainings`);
    await page.locator("table tbody tr").first().waitFor();
    await screenshot(page, "trainings");
    await page.locator("table tbody tr a").first().click();
    await page.getByRole("heading", { name: /^Training/ }).waitFor();
    await waitForStatus("succeeded");

    await page.goto(`${server.url}/account`);
    await page.locator("table tbody tr").first().waitFor();
    await page.locator("#token-name").fill("ci");
    await page.getByRole("button", { name: "Create token" }).click();
    const fresh = await page.getByTestId("new-token").inputValue();
    const check = await fetch(`${server.apiUrl}/account`, { headers: { authorization: `Bearer ${fresh}` } });
    assert.equal(check.status, 200, "the new token works");
    await page.getByRole("button", { name: "Reveal secret" }).click();
    assert.match(await page.getByRole("textbox", { name: "Webhook signing secret" }).inputValue(), /^whsec_/);
    await screenshot(page, "account");

    await page.goto(`${server.url}/replicant/stream-test?tab=readme`);
    await page.getByRole("heading", { name: "stream-test", exact: true }).waitFor();
    await page.goto(`${server.url}/replicant/stream-test?tab=versions`);
    await page
      .getByRole("button", { name: /Run this version|selected/ })
      .or(page.getByText("selected"))
      .first()
      .waitFor();
    await page.goto(`${server.url}/?q=stream`);
    await page.locator(".model-card").filter({ hasText: "replicant/stream-test" }).waitFor();
    await page.goto(`${server.url}/?collection=built-in`);
    await page.locator(".model-card").first().waitFor();
    await page.goto(`${server.url}/p/${seen.file}`);
    await waitForStatus("succeeded");

    // Keyboard: the model page's tabs move with the arrow keys.
    await page.goto(`${server.url}/replicate/hello-world`);
    await page.getByRole("tab", { name: "Playground" }).focus();
    await page.keyboard.press("ArrowRight");
    await page.waitForURL(/tab=readme/);
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "README");
    noConsoleErrors();
  });

  test("dark mode follows the system, and the layout fits a phone", async () => {
    const dark = await openBrowser({ colorScheme: "dark" });
    try {
      const phone = await dark.newPage();
      await phone.setViewportSize({ width: 390, height: 844 });
      // A sign-in link's code works on any page, which stays where it is once signed in.
      const code = new URL(server.server.createLoginLink() ?? "").searchParams.get("login");
      await phone.goto(`${server.url}/p/${seen.stream}?login=${code}`);
      await phone.getByTestId("signed-in-as").waitFor();
      assert.equal(new URL(phone.url()).pathname + new URL(phone.url()).search, `/p/${seen.stream}`);
      await phone.locator(".status-row .status").filter({ hasText: "succeeded" }).waitFor();
      const background = await phone.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(background, "rgb(15, 17, 21)");
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scrolling on a phone (${overflow}px)`);
      await screenshot(phone, "prediction-dark-phone");
      await phone.setViewportSize({ width: 1280, height: 900 });
      await phone.goto(`${server.url}/replicate/hello-world`);
      await phone.locator("#input-text").waitFor();
      await screenshot(phone, "model-dark");
      assert.deepEqual(dark.errors, []);
    } finally {
      await dark.close();
    }
  });
});
