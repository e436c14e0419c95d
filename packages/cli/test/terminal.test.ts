// The progress display in a real terminal: tmux runs the CLI, capture-pane reads the screen.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { after, before, test } from "node:test";
import { startTestServer, type TestServer } from "@replicant/testing";
import { BIN } from "./helpers.js";

const hasTmux = spawnSync("tmux", ["-V"]).status === 0;
const session = `replicant-cli-${process.pid}`;
let server: TestServer | undefined;

before(async () => {
  if (hasTmux) server = await startTestServer();
});

after(async () => {
  if (hasTmux) spawnSync("tmux", ["kill-session", "-t", session]);
  await server?.close();
});

function capture(): string {
  return execFileSync("tmux", ["capture-pane", "-p", "-J", "-t", session], { encoding: "utf8" });
}

async function waitForScreen(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let screen = "";
  while (Date.now() < deadline) {
    screen = capture();
    if (pattern.test(screen)) return screen;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the screen never matched ${pattern}:\n${screen}`);
}

test("run shows a live spinner with the status, elapsed time and last log line, then the output", {
  skip: !hasTmux && "tmux is not installed (apt-get install tmux)",
}, async () => {
  const quote = (value: string) => `'${value.replaceAll("'", "'\\''")}'`;
  const command = [
    "env -u CI",
    `REPLICATE_API_TOKEN=${quote(server!.token)}`,
    `REPLICATE_BASE_URL=${quote(server!.apiUrl)}`,
    quote(process.execPath),
    quote(BIN),
    "run replicant/stream-test -i tokens=25 -i delay_ms=120 --logs",
    "; echo EXIT=$?; sleep 60",
  ].join(" ");
  execFileSync("tmux", ["new-session", "-d", "-s", session, "-x", "120", "-y", "40", command]);

  // While it runs: a spinner frame, the model, its status, the elapsed time and the latest log line.
  const live = await waitForScreen(
    /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] replicant\/stream-test · processing · \d+\.\ds · emitting token \d+/,
  );
  assert.match(live, /replicant: started \S+/);
  // --logs prints each log line above the spinner.
  assert.match(live, /^emitting token 1$/m);
  const spinnerLines = live.split("\n").filter((line) => line.includes("· processing ·"));
  assert.equal(spinnerLines.length, 1, `one spinner line, redrawn in place:\n${live}`);

  const done = await waitForScreen(/EXIT=\d+/);
  assert.match(done, /EXIT=0/);
  assert.match(done, /^token-1 token-2 .*token-25 $/m);
  assert.doesNotMatch(done, /· processing ·/, "the spinner line is cleared before the output");
  process.stdout.write(`# final screen:\n${done.replace(/^/gm, "#   ")}\n`);
});
