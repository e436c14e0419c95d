// Security: a server that does not run as root cannot give runners a user of their own nor create cgroups.
// Started here as an unprivileged user (`replicant serve` under setpriv), a hostile bundle still sees no
// secret in its environment, is held to its memory limit by prlimit, and cannot return a server file; under
// bubblewrap it cannot read the data directory either.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CLI_BIN, type TestServer } from "../src/index.js";
import { BWRAP, ROOT, SECRET_DATABASE, SECRET_TOKEN, Target } from "./hostile-bundle.js";

const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((path) => existsSync(path));
const USER_ID = 4242;
/** The pid of the server started last (setpriv execs it, so it is the spawned child's). */
let serverPid = 0;

/** `replicant serve` as an unprivileged user, on a port it picks, with secrets in its environment. */
async function serveUnprivileged(sandbox: "bwrap" | "process"): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), "replicant-unprivileged-"));
  await chown(dataDir, USER_ID, USER_ID);
  const token = `r8_unprivileged_${process.pid}`;
  const args = [`--reuid=${USER_ID}`, `--regid=${USER_ID}`, "--clear-groups", process.execPath, CLI_BIN];
  args.push("serve", "--port", "0", "--data", join(dataDir, "data"), "--sandbox", sandbox);
  args.push("--runner-memory", "256", "--runner-pids", "64", "--rate-limit", "off");
  const child: ChildProcess = spawn(SETPRIV!, args, {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: dataDir,
      REPLICANT_ADMIN_TOKEN: token,
      REPLICANT_DATABASE_URL_FOR_TEST: SECRET_DATABASE,
      AWS_SECRET_ACCESS_KEY: SECRET_TOKEN,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  serverPid = child.pid ?? 0;
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${output}`)), 30_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on("data", read);
    child.stderr?.on("data", read);
    child.once("exit", (code) => reject(new Error(`serve exited with ${code}: ${output}`)));
  });
  return {
    url,
    apiUrl: `${url}/v1`,
    token,
    backend: "embedded",
    get server(): never {
      throw new Error("the server runs in another process");
    },
    dataDir: join(dataDir, "data"),
    async close() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

for (const sandbox of ["process", "bwrap"] as const) {
  const skip =
    !ROOT || !SETPRIV
      ? "needs root and setpriv, to start the server as another user"
      : sandbox === "bwrap" && !BWRAP
        ? "bubblewrap is not installed (apt install bubblewrap)"
        : false;
  describe(`a server that is not root (${sandbox} sandbox)`, { skip, timeout: 180_000 }, () => {
    const target = new Target(sandbox, true, () => serveUnprivileged(sandbox));
    before(() => target.start());
    after(() => target.close());

    it("gives the runner none of its environment", async () => {
      const prediction = await target.attack("env");
      assert.equal(prediction.status, "succeeded", JSON.stringify(prediction));
      const text = String(prediction.output);
      for (const secret of [SECRET_TOKEN, SECRET_DATABASE, target.server.token])
        assert.ok(!text.includes(secret), `the runner saw a secret: ${text}`);
    });

    it("holds the runner to its memory limit with prlimit (no cgroup to write), and keeps serving", async () => {
      const prediction = await target.attack("memory");
      assert.equal(prediction.status, "failed", JSON.stringify(prediction).slice(0, 400));
      await target.assertServing();
    });

    it("refuses a server file as an output file", async () => {
      const prediction = await target.api("POST", "/predictions", {
        version: target.thief,
        input: { target: join(target.server.dataDir, "signing.key") },
      });
      assert.equal(prediction.json.status, "failed", JSON.stringify(prediction.json));
      const key = (await readFile(join(target.server.dataDir, "signing.key"), "utf8")).trim();
      assert.ok(!JSON.stringify(prediction.json).includes(key));
    });

    it("under bubblewrap, keeps the data directory out of the runner's reach", {
      skip:
        sandbox === "bwrap"
          ? false
          : "without root or bubblewrap the runner is the server's user (docs/security.md)",
    }, async () => {
      const read = await target.attack("read", join(target.server.dataDir, "signing.key"));
      assert.match(String(read.output), /^blocked: /, String(read.output));
      const kill = await target.attack("kill", String(serverPid));
      assert.match(String(kill.output), /^blocked: /, "signalled a process outside its namespace");
    });
  });
}
