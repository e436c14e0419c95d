// Security: a pushed bundle's code is contained. A hostile predictor tries to read the admin token from its
// environment, read the data directory, write outside its scratch, kill the server, fork-bomb, allocate
// past its memory limit, open a socket to a loopback canary and smuggle a server file out as an output;
// every attempt fails and the server keeps serving. Run with bubblewrap and without (the process mode).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BWRAP, ROOT, SECRET_DATABASE, SECRET_S3, SECRET_TOKEN, Target } from "./hostile-bundle.js";

function containmentSuite(sandbox: "bwrap" | "process", skip: string | false) {
  describe(`a hostile pushed bundle (${sandbox} sandbox)`, { skip, timeout: 240_000 }, () => {
    const target = new Target(sandbox);
    let canary: Server;
    let canaryConnections = 0;
    const saved = {
      token: process.env.REPLICANT_ADMIN_TOKEN,
      database: process.env.REPLICANT_DATABASE_URL_FOR_TEST,
      s3: process.env.AWS_SECRET_ACCESS_KEY,
    };

    before(async () => {
      // The server's own environment holds secrets, as a real deployment's does.
      process.env.REPLICANT_ADMIN_TOKEN = SECRET_TOKEN;
      process.env.REPLICANT_DATABASE_URL_FOR_TEST = SECRET_DATABASE;
      process.env.AWS_SECRET_ACCESS_KEY = SECRET_S3;
      canary = createServer((socket) => {
        canaryConnections++;
        socket.destroy();
      });
      await new Promise<void>((resolve) => canary.listen(0, "127.0.0.1", resolve));
      await target.start();
    });

    after(async () => {
      await target.close();
      canary?.close();
      for (const [name, value] of [
        ["REPLICANT_ADMIN_TOKEN", saved.token],
        ["REPLICANT_DATABASE_URL_FOR_TEST", saved.database],
        ["AWS_SECRET_ACCESS_KEY", saved.s3],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    });

    it("sees none of the server's environment: no token, no database URL, no S3 credentials", async () => {
      const prediction = await target.attack("env");
      assert.equal(prediction.status, "succeeded", JSON.stringify(prediction));
      const env = JSON.parse(prediction.output as string) as Record<string, string>;
      const text = JSON.stringify(env);
      for (const secret of [SECRET_TOKEN, SECRET_DATABASE, SECRET_S3, target.server.token])
        assert.ok(!text.includes(secret), `the runner saw a secret: ${text}`);
      const allowed =
        /^(?:PATH|PWD|HOME|TMPDIR|GREETING|LANG|LANGUAGE|LC_[A-Z]+|TZ|NODE_CHANNEL_FD|NODE_CHANNEL_SERIALIZATION_MODE)$/;
      const extra = Object.keys(env).filter((name) => !allowed.test(name));
      assert.deepEqual(extra, [], "variables beyond the built environment");
      assert.ok(env.HOME && !env.HOME.startsWith(target.server.dataDir), "HOME is the runner's own");
      assert.equal(env.GREETING, "declared by the manifest", "the variables the version declares");
    });

    it("cannot read or list the data directory (signing key, database, admin token)", {
      skip: ROOT || sandbox === "bwrap" ? false : "needs root (a user of its own) or bubblewrap",
    }, async () => {
      const dataDir = target.server.dataDir;
      for (const file of ["signing.key", "replicant.db", "admin-token"]) {
        const prediction = await target.attack("read", join(dataDir, file));
        assert.match(String(prediction.output), /^blocked: /, `${file}: ${String(prediction.output)}`);
      }
      const listed = await target.attack("list", dataDir);
      assert.match(String(listed.output), /^blocked: /, String(listed.output));
    });

    it("cannot write outside its scratch: the data directory, its own bundle, the host's /tmp", {
      skip: ROOT || sandbox === "bwrap" ? false : "needs root (a user of its own) or bubblewrap",
    }, async () => {
      const intoData = await target.attack("write", join(target.server.dataDir, "pwned"));
      assert.match(String(intoData.output), /^blocked: /, String(intoData.output));
      assert.equal(existsSync(join(target.server.dataDir, "pwned")), false);
      const bundle = await target.attack("write-bundle");
      assert.match(String(bundle.output), /^blocked: /, String(bundle.output));
      const tmp = join(tmpdir(), `replicant-pwned-${process.pid}`);
      await target.attack("write", tmp);
      if (sandbox === "bwrap") assert.equal(existsSync(tmp), false, "a file appeared in the host's /tmp");
      await rm(tmp, { force: true });
    });

    it("cannot kill the server's process", {
      skip: ROOT || sandbox === "bwrap" ? false : "needs root (a user of its own) or bubblewrap",
    }, async () => {
      const prediction = await target.attack("kill", String(process.pid));
      assert.match(String(prediction.output), /^blocked: /, String(prediction.output));
      await target.assertServing();
    });

    it("cannot fork-bomb past its process limit, and the server keeps serving", async () => {
      const prediction = await target.attack("fork-bomb");
      assert.equal(prediction.status, "succeeded", JSON.stringify(prediction));
      const { started, refused } = JSON.parse(prediction.output as string) as {
        started: number;
        refused: string;
      };
      assert.ok(refused !== "", `started ${started} processes and was never refused`);
      assert.ok(started < 64, `started ${started} processes past the limit of 64`);
      await target.assertServing();
    });

    it("is stopped past its memory limit, with a clear error, and the server keeps serving", async () => {
      const prediction = await target.attack("memory");
      assert.equal(prediction.status, "failed", JSON.stringify(prediction).slice(0, 500));
      assert.match(String(prediction.error), /memory/i);
      await target.assertServing();
      const after = await target.attack("env");
      assert.equal(after.status, "succeeded", "a new runner process replaced the killed one");
    });

    it("cannot connect to a loopback canary", {
      skip:
        sandbox === "bwrap" || ROOT ? false : "the process sandbox has a network namespace only when root",
    }, async () => {
      const prediction = await target.attack("connect", String((canary.address() as { port: number }).port));
      assert.match(String(prediction.output), /^blocked: /, String(prediction.output));
      assert.equal(canaryConnections, 0);
    });

    it("cannot swap a checked output file for a link to a server file", async () => {
      const key = (await readFile(join(target.server.dataDir, "signing.key"), "utf8")).trim();
      const statuses: string[] = [];
      for (let i = 0; i < 8; i++) {
        const prediction = await target.api("POST", "/predictions", {
          version: target.swapper,
          input: { target: join(target.server.dataDir, "signing.key") },
        });
        statuses.push(String(prediction.json.status));
        const output = String(prediction.json.output ?? "");
        const text = output.startsWith("data:")
          ? Buffer.from(output.slice(output.indexOf(",") + 1), "base64").toString()
          : output.startsWith("http")
            ? await (await fetch(output)).text()
            : JSON.stringify(prediction.json);
        assert.ok(!text.includes(key), `run ${i} returned the signing key`);
        if (prediction.json.status === "succeeded") assert.equal(text, "harmless");
      }
      await target.assertServing();
    });

    it("cannot return a server file as an output file", async () => {
      const prediction = await target.api("POST", "/predictions", {
        version: target.thief,
        input: { target: join(target.server.dataDir, "signing.key") },
      });
      const key = (await readFile(join(target.server.dataDir, "signing.key"), "utf8")).trim();
      assert.equal(prediction.json.status, "failed", JSON.stringify(prediction.json));
      const text = JSON.stringify(prediction.json);
      assert.ok(!text.includes(key), "the signing key came back");
      assert.ok(
        !text.includes(Buffer.from(key).toString("base64").slice(0, 40)),
        "the signing key came back encoded",
      );
    });
  });
}

describe("a bundle that asks for network (bwrap sandbox)", {
  skip: BWRAP ? false : "bubblewrap is not installed (apt install bubblewrap)",
  timeout: 120_000,
}, () => {
  const guarded = new Target("bwrap", false);
  const open = new Target("bwrap", true);
  let canary: Server;
  let connections = 0;
  let port = 0;
  before(async () => {
    canary = createServer((socket) => {
      connections++;
      socket.end("canary");
    });
    await new Promise<void>((resolve) => canary.listen(0, "127.0.0.1", resolve));
    port = (canary.address() as { port: number }).port;
    await guarded.start();
    await open.start();
  });
  after(async () => {
    await guarded.close();
    await open.close();
    canary?.close();
  });

  it("reaches the network only through the server's SSRF policy: a loopback canary is refused", async () => {
    const run = (target: Target, to: string) =>
      target.api("POST", "/predictions", { version: target.networked, input: { target: to } });
    for (const to of [`127.0.0.1:${port}`, `localhost:${port}`, `[::ffff:127.0.0.1]:${port}`]) {
      const refused = await run(guarded, to);
      assert.equal(refused.json.status, "succeeded", JSON.stringify(refused.json));
      assert.match(String(refused.json.output), /^HTTP\/1\.1 403 /, `${to}: ${String(refused.json.output)}`);
    }
    assert.equal(connections, 0, "the canary was reached");
    const direct = await guarded.attack("connect", String(port));
    assert.match(String(direct.output), /^blocked: /, "a direct connection bypassed the proxy");
    assert.equal(connections, 0);
    // The same path with private addresses allowed reaches it: the policy, not a dead end, refused it.
    const allowed = await run(open, `127.0.0.1:${port}`);
    assert.match(String(allowed.json.output), /^HTTP\/1\.1 200 .*canary/, String(allowed.json.output));
    assert.equal(connections, 1);
  });
});

containmentSuite("bwrap", BWRAP ? false : "bubblewrap is not installed (apt install bubblewrap)");
containmentSuite("process", false);
