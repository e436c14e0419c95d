// `replicant push` (a predictor directory, a Cog server, a GGUF) and `replicant serve-model`, spawned as
// the real binary against a real server.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { writeTinyGguf } from "@replicant/model-llm-gguf/tiny-gguf";
import { startTestServer, type TestServer } from "@replicant/testing";
import { spawnCli } from "./helpers.js";

const RUNTIME_DIR = dirname(dirname(dirname(fileURLToPath(import.meta.resolve("@replicant/runtime")))));

let server: TestServer;
let work: string;
let env: Record<string, string>;

/** A predictor directory as a user would have it: compiled module, manifest, runtime installed. */
async function predictorDir(name: string, body: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(join(dir, "dist"), { recursive: true });
  await mkdir(join(dir, "node_modules", "@replicant"), { recursive: true });
  await symlink(RUNTIME_DIR, join(dir, "node_modules", "@replicant", "runtime"), "dir");
  await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  await writeFile(
    join(dir, "replicant.json"),
    JSON.stringify({ predictor: "dist/predict.js", hardware: "cpu" }),
  );
  await writeFile(join(dir, "dist", "predict.js"), body);
  return dir;
}

const SHOUT = `import { definePredictor, input, output } from "@replicant/runtime";
export default definePredictor({
  input: { text: input.string({ description: "What to shout" }), times: input.integer({ default: 2, ge: 1, le: 5 }) },
  output: output.string(),
  predict: ({ text, times }) => Array(times).fill(text.toUpperCase()).join(" "),
});
`;

before(async () => {
  server = await startTestServer();
  work = await mkdtemp(join(tmpdir(), "replicant-cli-push-"));
  env = {
    REPLICATE_API_TOKEN: server.token,
    REPLICATE_BASE_URL: server.apiUrl,
    REPLICANT_HOME: join(work, "home"),
  };
});
after(async () => {
  await server.close();
  await rm(work, { recursive: true, force: true });
});

describe("replicant push and serve-model", { timeout: 120_000 }, () => {
  it("pushes a predictor directory, which then runs with typed inputs", async () => {
    const dir = await predictorDir("shout", SHOUT);
    const push = spawnCli(["push", "local/shout", dir], env);
    assert.equal(await push.code, 0, push.stderr());
    assert.match(push.stdout(), /^local\/shout:[0-9a-f]{64}\n$/);
    const run = spawnCli(["run", "local/shout", "-i", "text=hey", "-i", "times=3", "--text"], env);
    assert.equal(await run.code, 0, run.stderr());
    assert.equal(run.stdout().trim(), "HEY HEY HEY");
    const bad = spawnCli(["run", "local/shout", "-i", "text=hey", "-i", "times=9"], env);
    assert.equal(await bad.code, 2);
  });

  it("refuses a directory without a manifest, with a one-line error", async () => {
    const empty = join(work, "empty");
    await mkdir(empty, { recursive: true });
    const push = spawnCli(["push", "local/nothing", empty], env);
    assert.equal(await push.code, 2);
    assert.match(push.stderr(), /replicant\.json/);
    assert.equal(push.stderr().trim().split("\n").length, 1);
  });

  it("serves a predictor with Cog's protocol, and pushes it by --cog-url", async () => {
    const dir = await predictorDir("shout-cog", SHOUT);
    const serve = spawnCli(["serve-model", dir, "--port", "0", "--host", "127.0.0.1"], env);
    try {
      await serve.waitFor(/on (http:\/\/\S+)/);
      const url = /on (http:\/\/\S+)/.exec(serve.stderr())![1]!;
      let ready = false;
      for (let i = 0; i < 100 && !ready; i++) {
        const health = (await (await fetch(`${url}/health-check`)).json()) as { status: string };
        ready = health.status === "READY";
        if (!ready) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(ready);
      const direct = (await (
        await fetch(`${url}/predictions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ input: { text: "cog" } }),
        })
      ).json()) as { status: string; output: string };
      assert.deepEqual([direct.status, direct.output], ["succeeded", "COG COG"]);
      const push = spawnCli(["push", "local/shout-cog", "--cog-url", url], env);
      assert.equal(await push.code, 0, push.stderr());
      const run = spawnCli(["run", "local/shout-cog", "-i", "text=via cog", "--text"], env);
      assert.equal(await run.code, 0, run.stderr());
      assert.equal(run.stdout().trim(), "VIA COG VIA COG");
    } finally {
      serve.kill("SIGTERM");
      await serve.code;
    }
  });

  it("pushes a GGUF that then streams the tokens asked for", async () => {
    const gguf = join(work, "tiny.gguf");
    await writeTinyGguf(gguf, { seed: 3 });
    const push = spawnCli(["push", "local/tiny-llm", "--gguf", gguf], env);
    assert.equal(await push.code, 0, push.stderr());
    const stream = spawnCli(
      ["stream", "local/tiny-llm", "-i", "prompt=Once upon", "-i", "max_tokens=8", "-i", "seed=1", "--json"],
      env,
    );
    assert.equal(await stream.code, 0, stream.stderr());
    const outputs = stream
      .stdout()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { event: string })
      .filter((e) => e.event === "output");
    assert.equal(outputs.length, 8);
  });
});
