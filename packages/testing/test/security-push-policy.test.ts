// Security: who may push code is the server's policy. By default only the default account and the accounts
// it granted `push` may; `--allow-push-from-all` opens it. A failed bundle extraction leaves nothing behind
// and names its cause, never a server path.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { create } from "tar";
import { CLI_BIN, inProcessOnly, startTestServer, type TestServer } from "../src/index.js";

const run = promisify(execFile);

const SOURCE = `import { definePredictor, input, output } from "@replicant/runtime";
export default definePredictor({ input: { name: input.string({ default: "you" }) }, output: output.string(), predict: ({ name }) => "hi " + name });
`;
const SCHEMA = {
  openapi: "3.0.2",
  components: {
    schemas: {
      Input: { type: "object", properties: { name: { type: "string", default: "you", "x-order": 0 } } },
      Output: { type: "string" },
    },
  },
};

let work: string;
let bundle: Buffer;

async function call(server: TestServer, token: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${server.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", prefer: "wait" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return {
    status: response.status,
    type: response.headers.get("content-type") ?? "",
    json: (text ? JSON.parse(text) : undefined) as Record<string, unknown> | undefined,
  };
}

async function uploadBytes(server: TestServer, token: string, bytes: Buffer): Promise<string> {
  const form = new FormData();
  form.append("content", new Blob([new Uint8Array(bytes)]), "bundle.tar.gz");
  const response = await fetch(`${server.apiUrl}/files`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
  assert.equal(response.status, 201);
  return ((await response.json()) as { id: string }).id;
}

/** Creates OWNER/NAME (if needed) as `token`'s account and pushes the bundle bytes as a version. */
async function push(server: TestServer, token: string, owner: string, bytes = bundle, extra: object = {}) {
  const model = await call(server, token, "POST", "/models", {
    owner,
    name: "pushed",
    visibility: "private",
    hardware: "cpu",
  });
  assert.ok(model.status === 201 || model.status === 409, JSON.stringify(model.json));
  const fileId = await uploadBytes(server, token, bytes);
  return call(server, token, "POST", `/replicant/models/${owner}/pushed/versions`, {
    bundle_file: fileId,
    predictor: "dist/predict.js",
    openapi_schema: SCHEMA,
    ...extra,
  });
}

async function createAccount(server: TestServer, username: string): Promise<string> {
  const created = await call(server, server.token, "POST", "/replicant/accounts", { username });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  return created.json?.token as string;
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), "replicant-push-policy-"));
  const dir = join(work, "bundle");
  await mkdir(join(dir, "dist"), { recursive: true });
  await writeFile(join(dir, "dist", "predict.js"), SOURCE);
  await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  await create({ gzip: true, file: join(work, "bundle.tar.gz"), cwd: dir }, ["dist", "package.json"]);
  bundle = await readFile(join(work, "bundle.tar.gz"));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("the push permission (default policy)", () => {
  let server: TestServer;
  let alice: string;
  before(async () => {
    server = await startTestServer();
    alice = await createAccount(server, "alice");
  });
  after(async () => server?.close());

  it("refuses a push from an account without the grant with a 403 that says how to get it", async () => {
    const refused = await push(server, alice, "alice");
    assert.equal(refused.status, 403, JSON.stringify(refused.json));
    assert.match(refused.type, /application\/problem\+json/);
    assert.match(String(refused.json?.detail), /replicant grant alice push/);
    assert.match(String(refused.json?.detail), /--allow-push-from-all/);
  });

  it("lets the default account push, and grant and revoke push for another account", async () => {
    assert.equal((await push(server, server.token, "local")).status, 201);
    const granted = await call(server, server.token, "POST", "/replicant/accounts/alice/permissions/push");
    assert.equal(granted.status, 200, JSON.stringify(granted.json));
    assert.deepEqual(granted.json, { username: "alice", permissions: ["push"] });
    const pushed = await push(server, alice, "alice");
    assert.equal(pushed.status, 201, JSON.stringify(pushed.json));
    const prediction = await call(server, alice, "POST", "/predictions", {
      version: `alice/pushed:${pushed.json?.id as string}`,
      input: { name: "Ada" },
    });
    assert.equal(prediction.json?.output, "hi Ada", JSON.stringify(prediction.json));
    const revoked = await call(server, server.token, "DELETE", "/replicant/accounts/alice/permissions/push");
    assert.deepEqual(revoked.json, { username: "alice", permissions: [] });
    assert.equal((await push(server, alice, "alice")).status, 403);
  });

  it("lets only the default account grant, and names unknown accounts and permissions as 404", async () => {
    const bob = await createAccount(server, "bob");
    const selfGrant = await call(server, bob, "POST", "/replicant/accounts/bob/permissions/push");
    assert.equal(selfGrant.status, 403);
    assert.match(selfGrant.type, /application\/problem\+json/);
    const listed = await call(server, bob, "GET", "/replicant/accounts/alice/permissions");
    assert.equal(listed.status, 403, "another account's grants are the operator's business");
    assert.equal(
      (await call(server, server.token, "POST", "/replicant/accounts/nobody/permissions/push")).status,
      404,
    );
    const unknown = await call(server, server.token, "POST", "/replicant/accounts/bob/permissions/root");
    assert.equal(unknown.status, 404);
    assert.match(String(unknown.json?.detail), /push/);
    const hostile = await call(
      server,
      server.token,
      "POST",
      `/replicant/accounts/${"%0d%0a".repeat(20)}/permissions/push`,
    );
    assert.ok(hostile.status === 404 || hostile.status === 400, String(hostile.status));
  });

  it("grants and revokes from the CLI (replicant grant / revoke)", async () => {
    await createAccount(server, "carol");
    const env = {
      PATH: process.env.PATH ?? "",
      HOME: work,
      REPLICANT_HOME: join(work, "cli-home"),
      REPLICATE_API_TOKEN: server.token,
      REPLICATE_BASE_URL: server.apiUrl,
    };
    const granted = await run(process.execPath, [CLI_BIN, "grant", "carol", "push"], { env });
    assert.equal(granted.stdout, "carol: push\n");
    const revoked = await run(process.execPath, [CLI_BIN, "revoke", "carol", "push"], { env });
    assert.equal(revoked.stdout, "carol: none\n");
    const wrong = await run(process.execPath, [CLI_BIN, "grant", "carol", "admin"], { env }).catch(
      (error: { code: number; stderr: string }) => error,
    );
    assert.notEqual((wrong as { code?: number }).code ?? 0, 0);
    assert.match((wrong as { stderr: string }).stderr, /unknown permission admin/);
  });

  it(
    "unpacks a bundle without set-id bits or group/other write, whatever modes its archive gives",
    inProcessOnly("reads the unpacked bundle in the data directory"),
    async () => {
      const dir = join(work, "modes");
      await mkdir(join(dir, "dist"), { recursive: true });
      await writeFile(join(dir, "dist", "predict.js"), SOURCE);
      await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
      await chmod(join(dir, "dist", "predict.js"), 0o6777);
      await chmod(join(dir, "dist"), 0o777);
      const archive = join(work, "modes.tar.gz");
      await create({ gzip: true, file: archive, cwd: dir }, ["dist", "package.json"]);
      const pushed = await push(server, server.token, "local", await readFile(archive));
      assert.equal(pushed.status, 201, JSON.stringify(pushed.json));
      const unpacked = join(server.dataDir, "cache", "bundles", pushed.json?.id as string, "dist");
      for (const path of [unpacked, join(unpacked, "predict.js")]) {
        const mode = (await stat(path)).mode & 0o7777;
        assert.equal(mode & 0o6022, 0, `${path}: mode ${mode.toString(8)}`);
      }
    },
  );

  it(
    "refuses a corrupt bundle with its cause, leaves no staging directory and shows no server path",
    inProcessOnly("reads the data directory"),
    async () => {
      const cases: [string, Buffer, RegExp][] = [
        ["not gzip", Buffer.from("plain text, not an archive"), /not a \.tar\.gz|not a valid gzip/],
        ["truncated", bundle.subarray(0, Math.floor(bundle.length / 2)), /corrupt|truncated/],
        ["gzip of junk", gzipSync(Buffer.alloc(4096, 7)), /corrupt/],
      ];
      for (const [name, bytes, cause] of cases) {
        const refused = await push(server, server.token, "local", bytes);
        assert.equal(refused.status, 422, `${name}: ${JSON.stringify(refused.json)}`);
        const detail = String(refused.json?.detail);
        assert.match(detail, cause, name);
        assert.ok(!detail.includes(server.dataDir) && !detail.includes(tmpdir()), `${name}: ${detail}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      const bundles = join(server.dataDir, "cache", "bundles");
      const left = existsSync(bundles) ? readdirSync(bundles).filter((entry) => entry.endsWith(".tmp")) : [];
      assert.deepEqual(left, [], "staging directories left behind");
    },
  );
});

describe("a bundle's declared environment", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => server?.close());

  it("refuses names the server sets or the linker reads, bad names, NUL, and too many, with a 422", async () => {
    const bad: unknown[] = [
      { LD_PRELOAD: "/tmp/evil.so" },
      { NODE_OPTIONS: "--require /tmp/evil.js" },
      { PATH: "/tmp" },
      { HOME: "/" },
      { "BAD NAME": "x" },
      { "A\r\nB": "x" },
      { OK: "nul\u0000inside" },
      { OK: 5 },
      ["not", "an", "object"],
      Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, "x"])),
      { BIG: "x".repeat(5000) },
    ];
    for (const env of bad) {
      const refused = await push(server, server.token, "local", bundle, { env });
      assert.equal(
        refused.status,
        422,
        `${JSON.stringify(env).slice(0, 80)}: ${JSON.stringify(refused.json)}`,
      );
      assert.match(refused.type, /application\/problem\+json/);
    }
    const fine = await push(server, server.token, "local", bundle, {
      env: { GREETING: "hello", LANG_MODEL: "x" },
    });
    assert.equal(fine.status, 201, JSON.stringify(fine.json));
  });
});

describe("--allow-push-from-all", () => {
  let server: TestServer;
  after(async () => server?.close());

  it("lets any account push", inProcessOnly("starts a server with allowPushFromAll"), async () => {
    server = await startTestServer({ allowPushFromAll: true });
    const dave = await createAccount(server, "dave");
    const pushed = await push(server, dave, "dave");
    assert.equal(pushed.status, 201, JSON.stringify(pushed.json));
  });
});
