// Pushing a TypeScript predictor bundle as a new version, and refusing bundles that try to escape.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "tar";
import { startTestServer, TEST_BACKEND, type TestServer } from "../src/index.js";

let server: TestServer;
/**
 * A server whose bundles run with its own rights (`sandbox: "none"`), for the tests that watch a runner
 * from outside (its pid, files it writes in the test's directory); containment has security-containment.
 */
let trusted: TestServer;
let work: string;

async function api(method: string, path: string, body?: unknown, on: TestServer = server) {
  const response = await fetch(`${on.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${on.token}`, "content-type": "application/json", prefer: "wait" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

async function upload(path: string, on: TestServer = server): Promise<string> {
  const form = new FormData();
  form.append(
    "content",
    new Blob([await import("node:fs/promises").then((fs) => fs.readFile(path))]),
    "bundle.tar.gz",
  );
  const response = await fetch(`${on.apiUrl}/files`, {
    method: "POST",
    headers: { authorization: `Bearer ${on.token}` },
    body: form,
  });
  assert.equal(response.status, 201);
  return ((await response.json()) as { id: string }).id;
}

const schema = {
  openapi: "3.0.2",
  components: {
    schemas: {
      Input: { type: "object", properties: { name: { type: "string", default: "you", "x-order": 0 } } },
      Output: { type: "string" },
    },
  },
};

/** Returns the file it writes in its scratch twice, then the path it is given (when it is given one). */
const FILES_SOURCE = `import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { definePredictor, input, output } from "@replicant/runtime";
export default definePredictor({
  input: { outside: input.string() },
  output: output.array(output.file()),
  predict: ({ outside }, ctx) => {
    const inside = join(ctx.scratchDir, "twice.txt");
    writeFileSync(inside, "written once, returned twice");
    return outside ? [inside, inside, outside] : [inside, inside];
  },
});
`;
const FILES_SCHEMA = {
  openapi: "3.0.2",
  components: {
    schemas: {
      Input: { type: "object", properties: { outside: { type: "string", "x-order": 0 } } },
      Output: { type: "array", items: { type: "string", format: "uri" } },
    },
  },
};

/** Writes `source` as dist/predict.js of a bundle, uploads it and pushes it as a version of local/pushed. */
async function pushVersion(name: string, source: string, openapiSchema: unknown, on: TestServer = server) {
  const dir = join(work, name);
  await mkdir(join(dir, "dist"), { recursive: true });
  await writeFile(join(dir, "dist", "predict.js"), source);
  await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  const archive = join(work, `${name}.tar.gz`);
  await create({ gzip: true, file: archive, cwd: dir }, ["dist", "package.json"]);
  const fileId = await upload(archive, on);
  return api(
    "POST",
    "/replicant/models/local/pushed/versions",
    { bundle_file: fileId, predictor: "dist/predict.js", openapi_schema: openapiSchema },
    on,
  );
}

/** The text of an output file, from its data URI or its URL. */
async function fileText(url: unknown, on: TestServer = server): Promise<string> {
  if (typeof url === "string" && url.startsWith("data:"))
    return Buffer.from(url.slice(url.indexOf(",") + 1), "base64").toString();
  return (await fetch(String(url), { headers: { authorization: `Bearer ${on.token}` } })).text();
}

before(async () => {
  server = await startTestServer();
  trusted = await startTestServer({ sandbox: "none" });
  work = await mkdtemp(join(tmpdir(), "replicant-push-"));
  for (const on of [server, trusted]) {
    const response = await api(
      "POST",
      "/models",
      { owner: "local", name: "pushed", visibility: "private", hardware: "cpu" },
      on,
    );
    assert.equal(response.status, 201);
  }
});
after(async () => {
  await server.close();
  await trusted.close();
  await rm(work, { recursive: true, force: true });
});

describe("pushing a predictor bundle", () => {
  it("registers a version that runs in a runner process", async () => {
    const source = `import { definePredictor, input, output } from "@replicant/runtime";
export default definePredictor({
  input: { name: input.string({ default: "you" }) },
  output: output.string(),
  predict: ({ name }) => "pushed hello " + name + " from " + process.pid,
});
`;
    const version = await pushVersion("good", source, schema);
    assert.equal(version.status, 201, JSON.stringify(version.json));
    const prediction = await api("POST", "/predictions", {
      version: `local/pushed:${version.json.id as string}`,
      input: { name: "Ada" },
    });
    assert.equal(prediction.json.status, "succeeded", JSON.stringify(prediction.json));
    const output = prediction.json.output as string;
    assert.match(output, /^pushed hello Ada from \d+$/);
    assert.notEqual(Number(output.split(" ").at(-1)), process.pid, "runs in its own process");
  });

  it("contained, stores the files it writes in its scratch, and refuses one outside it, leaving it in place", async () => {
    const version = await pushVersion("files-contained", FILES_SOURCE, FILES_SCHEMA);
    assert.equal(version.status, 201, JSON.stringify(version.json));
    const inside = await api("POST", "/predictions", {
      version: `local/pushed:${version.json.id as string}`,
      input: { outside: "" },
    });
    assert.equal(inside.json.status, "succeeded", JSON.stringify(inside.json));
    const [first, second] = inside.json.output as string[];
    assert.equal(first, second, "the same file named twice is stored once");
    assert.equal(await fileText(first), "written once, returned twice");
    const outside = join(work, "kept-by-the-host.txt");
    await writeFile(outside, "the host's own file");
    const refused = await api("POST", "/predictions", {
      version: `local/pushed:${version.json.id as string}`,
      input: { outside },
    });
    assert.equal(refused.json.status, "failed", JSON.stringify(refused.json));
    assert.match(String(refused.json.error), /outside the run's scratch directory/);
    assert.equal(await readFile(outside, "utf8"), "the host's own file");
  });

  it("stores output files: one named twice gets one URL, and a file outside the run's scratch is left in place (sandbox none)", async () => {
    const version = await pushVersion("files", FILES_SOURCE, FILES_SCHEMA, trusted);
    assert.equal(version.status, 201, JSON.stringify(version.json));
    const outside = join(work, "kept-by-the-model.txt");
    await writeFile(outside, "the model's own file");
    const prediction = await api(
      "POST",
      "/predictions",
      { version: `local/pushed:${version.json.id as string}`, input: { outside } },
      trusted,
    );
    assert.equal(prediction.json.status, "succeeded", JSON.stringify(prediction.json));
    const [first, second, third] = prediction.json.output as string[];
    assert.equal(first, second, "the same file named twice is stored once");
    assert.equal(await fileText(first, trusted), "written once, returned twice");
    assert.equal(await fileText(third, trusted), "the model's own file");
    assert.equal(await readFile(outside, "utf8"), "the model's own file", "a path outside scratch is copied");
  });

  it("streams file items as stored files while the run goes on, each version of a rewritten path its own", async () => {
    const source = `import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { definePredictor, output } from "@replicant/runtime";
export default definePredictor({
  input: {},
  output: output.iterator(output.file()),
  async *predict(_input, ctx) {
    const path = join(ctx.scratchDir, "progress.txt");
    writeFileSync(path, "step one");
    yield path;
    await sleep(1500);
    writeFileSync(path, "step two");
    yield path;
  },
});
`;
    const version = await pushVersion("streamed-files", source, {
      openapi: "3.0.2",
      components: {
        schemas: {
          Input: { type: "object", properties: {} },
          Output: {
            type: "array",
            items: { type: "string", format: "uri" },
            "x-cog-array-type": "iterator",
          },
        },
      },
    });
    assert.equal(version.status, 201, JSON.stringify(version.json));
    const response = await fetch(`${server.apiUrl}/predictions`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
      body: JSON.stringify({ version: `local/pushed:${version.json.id as string}`, input: {} }),
    });
    const { id } = (await response.json()) as { id: string };
    // Mid-run, the stored output holds the first item as a file URL, never the runner's path.
    let midRun: Record<string, unknown> | undefined;
    for (let tries = 0; tries < 100 && !midRun; tries++) {
      const current = (await api("GET", `/predictions/${id}`)).json;
      if (Array.isArray(current.output) && current.output.length === 1) midRun = current;
      else await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(midRun, "the first item was never stored while the run went on");
    assert.equal(midRun.status, "processing");
    const [firstMidRun] = midRun.output as unknown[];
    assert.equal(typeof firstMidRun, "string", JSON.stringify(firstMidRun));
    assert.equal(await fileText(firstMidRun), "step one");
    let final = midRun;
    for (let tries = 0; tries < 300 && final.status !== "succeeded"; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      final = (await api("GET", `/predictions/${id}`)).json;
    }
    assert.equal(final.status, "succeeded", JSON.stringify(final));
    const [first, second] = final.output as unknown[];
    assert.equal(first, firstMidRun, "the streamed item keeps its URL in the final output");
    assert.equal(await fileText(first), "step one");
    assert.equal(await fileText(second), "step two");
  });

  it("refuses a bundle with a path outside it, a symlink, or a missing predictor", async () => {
    const dir = join(work, "evil");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "predict.js"), "export default 1;");
    const cases: { name: string; build: (file: string) => Promise<void>; predictor: string }[] = [
      {
        name: "dot-dot",
        predictor: "predict.js",
        build: (file) =>
          create(
            {
              gzip: true,
              file,
              cwd: dir,
              preservePaths: true,
              onWriteEntry: (entry) => {
                entry.path = `../../escape-${entry.path}`;
              },
            },
            ["predict.js"],
          ),
      },
      {
        name: "missing",
        predictor: "nope.js",
        build: (file) => create({ gzip: true, file, cwd: dir }, ["predict.js"]),
      },
      {
        name: "traversal predictor",
        predictor: "../predict.js",
        build: (file) => create({ gzip: true, file, cwd: dir }, ["predict.js"]),
      },
    ];
    for (const item of cases) {
      const archive = join(work, `${item.name}.tar.gz`);
      await item.build(archive);
      const fileId = await upload(archive);
      const version = await api("POST", "/replicant/models/local/pushed/versions", {
        bundle_file: fileId,
        predictor: item.predictor,
        openapi_schema: schema,
      });
      assert.equal(version.status, 422, `${item.name}: ${JSON.stringify(version.json)}`);
    }
    // In cluster mode the bundles are unpacked in the worker processes' directories, not in one dataDir.
    if (TEST_BACKEND === "cluster") return;
    const { existsSync } = await import("node:fs");
    assert.equal(existsSync(join(server.dataDir, "cache", "escape-predict.js")), false);
    assert.equal(existsSync(join(server.dataDir, "escape-predict.js")), false);
  });
});

/** Polls `probe` until it returns a value, or fails after `ms`. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("a deployment's min_instances", () => {
  it("start before any prediction, serve it, and stop when the release is replaced or the deployment deleted", {
    timeout: 120_000,
  }, async () => {
    const marker = join(work, "warm-setups.txt");
    const source = `import { appendFileSync } from "node:fs";
import { definePredictor, input, output } from "@replicant/runtime";
export default definePredictor({
  input: { name: input.string({ default: "you" }) },
  output: output.string(),
  setup: () => { appendFileSync(${JSON.stringify(marker)}, process.pid + "\\n"); },
  predict: () => String(process.pid),
});
`;
    const setups = async () =>
      (await readFile(marker, "utf8").catch(() => "")).split("\n").filter(Boolean).map(Number);
    // Each process that runs predictions keeps its own instances (a cluster has two).
    const processes = TEST_BACKEND === "cluster" ? 2 : 1;
    const version = await pushVersion("warm", source, schema, trusted);
    assert.equal(version.status, 201, JSON.stringify(version.json));
    const created = await api(
      "POST",
      "/deployments",
      {
        name: "warm",
        model: "local/pushed",
        version: version.json.id,
        hardware: "cpu",
        min_instances: 1,
        max_instances: 1,
      },
      trusted,
    );
    assert.equal(created.status, 200, JSON.stringify(created.json));

    const warmed = await eventually("the warm instances", async () => {
      const pids = await setups();
      return pids.length === processes ? pids : undefined;
    });
    assert.ok(warmed.every(alive));
    const prediction = await api("POST", "/deployments/local/warm/predictions", { input: {} }, trusted);
    assert.equal(prediction.json.status, "succeeded", JSON.stringify(prediction.json));
    assert.ok(warmed.includes(Number(prediction.json.output)), "ran on a warmed process");
    assert.deepEqual(await setups(), warmed, "no setup beyond the warmed instances");

    // A new release without a minimum retires the old release's processes.
    const cooled = await api("PATCH", "/deployments/local/warm", { min_instances: 0 }, trusted);
    assert.equal(cooled.status, 200, JSON.stringify(cooled.json));
    await eventually("the old release's processes to stop", async () =>
      warmed.some(alive) ? undefined : true,
    );

    // Back to one: new processes start; deleting the deployment stops them.
    assert.equal((await api("PATCH", "/deployments/local/warm", { min_instances: 1 }, trusted)).status, 200);
    const rewarmed = await eventually("the new release's instances", async () => {
      const pids = (await setups()).filter((pid) => !warmed.includes(pid));
      return pids.length === processes ? pids : undefined;
    });
    assert.ok(rewarmed.every(alive));
    const deleted = await fetch(`${trusted.apiUrl}/deployments/local/warm`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${trusted.token}` },
    });
    assert.equal(deleted.status, 204);
    await eventually("the deleted deployment's processes to stop", async () =>
      rewarmed.some(alive) ? undefined : true,
    );
  });
});
