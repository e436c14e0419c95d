import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BrowserContext, chromium, type Page } from "playwright-core";

/** Debian's chromium (`apt-get install -y chromium`); REPLICANT_CHROMIUM overrides the path. */
export const CHROMIUM = process.env.REPLICANT_CHROMIUM ?? "/usr/bin/chromium";

/** false, or why the browser tests are skipped. */
export const skipBrowser: false | string = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing, so the browser tests are skipped: install it with \`apt-get install -y chromium\``;

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** packages/web (this file runs as packages/web/dist/test/browser.js). */
export const webPackageDir = fileURLToPath(new URL("../../", import.meta.url));
export const screenshotsDir = fileURLToPath(new URL("../../../../docs/screenshots/", import.meta.url));

/**
 * Builds the web app when dist-web is missing (the root build normally does it). Test files run in
 * parallel, so the build runs under a lock and is skipped when another file built it meanwhile.
 */
export function ensureWebBuild(): void {
  if (existsSync(join(webPackageDir, "dist-web", "index.html"))) return;
  const result = spawnSync(
    "flock",
    [join(tmpdir(), "replicant-web-build.lock"), "sh", "-c", "test -f dist-web/index.html || npm run build"],
    { cwd: webPackageDir, stdio: "inherit" },
  );
  if (result.status !== 0) throw new Error("npm run build -w @replicant/web failed");
}

export interface Browser {
  context: BrowserContext;
  /** Console errors and uncaught exceptions of every page so far, with the page's URL. */
  errors: string[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/** Chromium with a fresh --user-data-dir (a persistent context on a new temporary directory). */
export async function openBrowser(options: { colorScheme?: "light" | "dark" } = {}): Promise<Browser> {
  const userDataDir = await mkdtemp(join(tmpdir(), "replicant-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
    colorScheme: options.colorScheme ?? "light",
    reducedMotion: "reduce",
  });
  const errors: string[] = [];
  const watch = (page: Page) => {
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(`${page.url()}: console: ${message.text()}`);
    });
    page.on("pageerror", (error) => errors.push(`${page.url()}: uncaught: ${error.message}`));
  };
  context.pages().forEach(watch);
  context.on("page", watch);
  return {
    context,
    errors,
    async newPage() {
      const existing = context.pages()[0];
      if (existing && existing.url() === "about:blank") return existing;
      return context.newPage();
    },
    async close() {
      await context.close();
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Saves a screenshot under docs/screenshots when REPLICANT_SCREENSHOTS=1 (so test runs leave docs alone). */
export async function screenshot(page: Page, name: string, fullPage = true): Promise<void> {
  if (process.env.REPLICANT_SCREENSHOTS !== "1") return;
  await mkdir(screenshotsDir, { recursive: true });
  await page.screenshot({ path: join(screenshotsDir, `${name}.png`), fullPage });
}
