// Security: a pushed bundle's code is contained. A hostile predictor tries to read the admin token from its
// environment, read the data directory, write outside its scratch, kill the server, fork-bomb, allocate
// past its memory limit, open a socket to a loopback canary and smuggle a server file out as an output;
// every attempt fails and the server keeps serving. Run with bubblewrap and without (the process mode).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "tar";
import { startTestServer, type TestServer } from "../src/index.js";

const SECRET_TOKEN = `r8_contained_${process.pid}_secret`;
const SECRET_DATABASE = `postgres://user:hunter2@db.internal:5432/replicant_${process.pid}`;
const SECRET_S3 = `s3secret${process.pid}`;
const ROOT = process.getuid?.() === 0;
const BWRAP = ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"].some((path) => existsSync(path));

/** One attack per prediction: `attack` names it, `target` is what it aims at; the output says what happened. */
const HOSTILE = `import { spawn } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { definePredictor, input, output } from "@replicant/runtime";

const attempt = (fn) => { try { return "succeeded: " + String(fn()).slice(0, 200); } catch (error) { return "blocked: " + (error.code ?? error.message); } };

export default definePredictor({
  input: { attack: input.string(), target: input.string({ default: "" }) },
  output: output.string(),
  predict: async ({ attack, target }) => {
    switch (attack) {
      case "env": return JSON.stringify(process.env);
      case "read": return attempt(() => readFileSync(target, "utf8"));
      case "list": return attempt(() => readdirSync(target).join(","));
      case "write": return attempt(() => { writeFileSync(target, "pwned"); return target; });
      case "write-bundle": return attempt(() => { writeFileSync(fileURLToPath(import.meta.url), "pwned"); return "rewrote itself"; });
      case "kill": return attempt(() => { process.kill(Number(target), "SIGKILL"); return "sent"; });
      case "fork-bomb": {
        let started = 0;
        let refused = "";
        for (let i = 0; i < 600 && !refused; i++) {
          await new Promise((resolve) => {
            const child = spawn("/bin/sleep", ["20"], { stdio: "ignore" });
            child.once("spawn", () => { started++; resolve(); });
            child.once("error", (error) => { refused = error.code ?? error.message; resolve(); });
          });
        }
        return JSON.stringify({ started, refused });
      }
      case "memory": {
        const held = [];
        for (let i = 0; i < 4096; i++) held.push(Buffer.alloc(16 * 1024 * 1024, i % 251));
        return "allocated " + held.length * 16 + " MB";
      }
      case "connect":
        return new Promise((resolve) => {
          const socket = connect(Number(target), "127.0.0.1");
          socket.once("connect", () => { socket.destroy(); resolve("succeeded: connected"); });
          socket.once("error", (error) => resolve("blocked: " + (error.code ?? error.message)));
          setTimeout(() => { socket.destroy(); resolve("blocked: timeout"); }, 3000);
        });
      default: return "unknown attack";
    }
  },
});
`;

const FILE_THIEF = `import { definePredictor, input, output } from "@replicant/runtime";
export default definePredictor({
  input: { target: input.string() },
  output: output.file(),
  predict: ({ target }) => target,
});
`;

function schemaFor(properties: Record<string, unknown>, outputSchema: unknown) {
  return {
    openapi: "3.0.2",
    components: {
      schemas: { Input: { type: "object", properties }, Output: outputSchema },
    },
  };
}

/** A version that asked for network: it dials the proxy its environment names, as a proxy-aware client does. */
const NETWORKED = `import { connect } from "node:net";
import { definePredictor, input, output } from "@replicant/runtime";
export default definePredictor({
  input: { target: input.string() },
  output: output.string(),
  predict: ({ target }) => new Promise((resolve) => {
    if (!process.env.HTTPS_PROXY) return resolve("no proxy");
    const proxy = new URL(process.env.HTTPS_PROXY);
    const socket = connect(Number(proxy.port), proxy.hostname);
    socket.once("connect", () => socket.write("CONNECT " + target + " HTTP/1.1\\r\\nhost: " + target + "\\r\\n\\r\\n"));
    let text = "";
    const done = () => { socket.destroy(); resolve(text.replace(/\\r\\n/g, " ")); };
    socket.on("data", (data) => { text += String(data); if (!text.startsWith("HTTP/1.1 200") || text.includes("canary")) done(); });
    socket.once("close", done);
    socket.once("error", (error) => resolve("error: " + error.code));
    setTimeout(() => { socket.destroy(); resolve("timeout"); }, 5000);
  }),
});
`;

const HOSTILE_SCHEMA = schemaFor(
  {
    attack: { type: "string", "x-order": 0 },
    target: { type: "string", default: "", "x-order": 1 },
  },
  { type: "string" },
);
const THIEF_SCHEMA_STRING = schemaFor({ target: { type: "string", "x-order": 0 } }, { type: "string" });
const THIEF_SCHEMA = schemaFor(
  { target: { type: "string", "x-order": 0 } },
  { type: "string", format: "uri" },
);

/** A server, its pushed hostile and thief versions, and helpers to run them. */
class Target {
  server!: TestServer;
  hostile = "";
  thief = "";
  networked = "";
  private work = "";

  constructor(
    private readonly sandbox: "bwrap" | "process",
    private readonly allowPrivateUrls = true,
  ) {}

  async start() {
    this.server = await startTestServer({
      sandbox: this.sandbox,
      runnerLimits: { memoryMb: 256, pids: 64 },
      predictionTimeoutMs: 60_000,
      allowPrivateUrls: this.allowPrivateUrls,
    });
    this.work = await mkdtemp(join(tmpdir(), "replicant-hostile-"));
    assert.equal(
      (
        await this.api("POST", "/models", {
          owner: "local",
          name: "hostile",
          visibility: "private",
          hardware: "cpu",
        })
      ).status,
      201,
    );
    this.hostile = await this.push("hostile", HOSTILE, HOSTILE_SCHEMA);
    this.thief = await this.push("thief", FILE_THIEF, THIEF_SCHEMA);
    this.networked = await this.push("networked", NETWORKED, THIEF_SCHEMA_STRING, { network: true });
  }

  async close() {
    await this.server?.close();
    if (this.work) await rm(this.work, { recursive: true, force: true });
  }

  async api(method: string, path: string, body?: unknown) {
    const response = await fetch(`${this.server.apiUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.server.token}`,
        "content-type": "application/json",
        prefer: "wait=60",
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  private async push(name: string, source: string, schema: unknown, extra: object = {}): Promise<string> {
    const dir = join(this.work, name);
    await mkdir(join(dir, "dist"), { recursive: true });
    await writeFile(join(dir, "dist", "predict.js"), source);
    await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    const archive = join(this.work, `${name}.tar.gz`);
    await create({ gzip: true, file: archive, cwd: dir }, ["dist", "package.json"]);
    const form = new FormData();
    form.append("content", new Blob([await readFile(archive)]), "bundle.tar.gz");
    const upload = await fetch(`${this.server.apiUrl}/files`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.server.token}` },
      body: form,
    });
    assert.equal(upload.status, 201);
    const fileId = ((await upload.json()) as { id: string }).id;
    const version = await this.api("POST", "/replicant/models/local/hostile/versions", {
      bundle_file: fileId,
      predictor: "dist/predict.js",
      openapi_schema: schema,
      env: { GREETING: "declared by the manifest" },
      ...extra,
    });
    assert.equal(version.status, 201, JSON.stringify(version.json));
    return `local/hostile:${version.json.id as string}`;
  }

  /** Runs one attack; returns the prediction. */
  async attack(attack: string, target = "") {
    const prediction = await this.api("POST", "/predictions", {
      version: this.hostile,
      input: { attack, target },
    });
    assert.equal(prediction.status, 201, JSON.stringify(prediction.json));
    return prediction.json;
  }

  /** The server still answers, and still runs a model. */
  async assertServing() {
    const health = await fetch(`${this.server.url}/health`);
    assert.equal(health.status, 200);
    const hello = await this.api("POST", "/predictions", {
      version: "replicate/hello-world",
      input: { text: "still here" },
    });
    assert.equal(hello.json.status, "succeeded", JSON.stringify(hello.json));
  }
}

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
