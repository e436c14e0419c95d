// A hostile pushed bundle and the server it attacks, shared by the containment suites.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "tar";
import { startTestServer, type TestServer } from "../src/index.js";

export const SECRET_TOKEN = `r8_contained_${process.pid}_secret`;
export const SECRET_DATABASE = `postgres://user:hunter2@db.internal:5432/replicant_${process.pid}`;
export const SECRET_S3 = `s3secret${process.pid}`;
export const ROOT = process.getuid?.() === 0;
export const BWRAP = ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"].some((path) =>
  existsSync(path),
);

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

/**
 * Returns a harmless file in its scratch, then keeps swapping it for a link to `target` (a server file)
 * and back, so that some check of the path sees the file and some read of it would see the link.
 */
const SWAPPER = `import { renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { definePredictor, input, output } from "@replicant/runtime";
export default definePredictor({
  input: { target: input.string() },
  output: output.file(),
  predict: ({ target }, ctx) => {
    const out = join(ctx.scratchDir, "out.txt");
    writeFileSync(out, "harmless");
    const until = Date.now() + 1500;
    let n = 0;
    const flip = () => {
      try {
        const link = join(ctx.scratchDir, "l" + n);
        const file = join(ctx.scratchDir, "f" + n++);
        symlinkSync(target, link);
        renameSync(link, out);
        writeFileSync(file, "harmless");
        renameSync(file, out);
      } catch {}
      if (Date.now() < until) setImmediate(flip);
    };
    setImmediate(flip);
    return out;
  },
});
`;

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
export class Target {
  server!: TestServer;
  hostile = "";
  thief = "";
  networked = "";
  swapper = "";
  private work = "";

  constructor(
    private readonly sandbox: "bwrap" | "process",
    private readonly allowPrivateUrls = true,
    private readonly startServer: () => Promise<TestServer> = () =>
      startTestServer({
        sandbox: this.sandbox,
        runnerLimits: { memoryMb: 256, pids: 64 },
        predictionTimeoutMs: 60_000,
        allowPrivateUrls: this.allowPrivateUrls,
      }),
  ) {}

  async start() {
    this.server = await this.startServer();
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
    this.swapper = await this.push("swapper", SWAPPER, THIEF_SCHEMA);
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
