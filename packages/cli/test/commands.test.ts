import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startTestServer, type TestServer } from "@replicant/testing";
import { optionalValue } from "../src/args.js";
import { runCli } from "../src/cli.js";
import { describeError } from "../src/errors.js";
import { buildInput, inputSchemaOf } from "../src/inputs.js";
import { extensionFor, outputText } from "../src/outputs.js";
import { progressText } from "../src/progress.js";
import { fakeIo } from "./helpers.js";

let server: TestServer;
let home: string;
let env: Record<string, string>;

before(async () => {
  server = await startTestServer();
  home = await mkdtemp(join(tmpdir(), "replicant-cli-home-"));
  env = { REPLICATE_API_TOKEN: server.token, REPLICATE_BASE_URL: server.apiUrl, REPLICANT_HOME: home };
});

after(async () => {
  await server.close();
  await rm(home, { recursive: true, force: true });
});

async function cli(
  args: string[],
  options: { stdin?: string; tty?: boolean; cwd?: string; env?: Record<string, string> } = {},
) {
  const io = fakeIo(options.env ?? env, options);
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

describe("help and usage", () => {
  test("--help lists every command and the exit codes", async () => {
    const { code, out } = await cli(["--help"]);
    assert.equal(code, 0);
    for (const name of [
      "run",
      "stream",
      "predictions",
      "models",
      "deployments",
      "trainings",
      "files",
      "webhooks",
      "types",
      "login",
      "open",
    ])
      assert.match(out, new RegExp(`\\n  ${name} `));
    assert.match(out, /130 +interrupted/);
  });

  test("every command and sub-command has --help with an example or usage", async () => {
    for (const args of [
      ["run"],
      ["stream"],
      ["predictions", "logs"],
      ["models", "schema"],
      ["deployments", "create"],
      ["trainings", "create"],
      ["files", "download"],
      ["webhooks", "listen"],
      ["types"],
      ["login"],
      ["hardware"],
      ["account"],
      ["collections"],
      ["open"],
    ]) {
      const { code, out } = await cli([...args, "--help"]);
      assert.equal(code, 0, args.join(" "));
      assert.match(out, /Usage: replicant/, args.join(" "));
    }
  });

  test("unknown commands, flags and missing arguments are usage errors (exit 2) in one line", async () => {
    const unknown = await cli(["frobnicate"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /^replicant: unknown command "frobnicate".*--help/);
    const flag = await cli(["run", "replicate/hello-world", "--bogus"]);
    assert.equal(flag.code, 2);
    assert.equal(flag.err.trim().split("\n").length, 1);
    assert.equal((await cli(["predictions", "get"])).code, 2);
    assert.equal((await cli(["models", "frob"])).code, 2);
  });
});

describe("run", () => {
  test("prints the output as text, or the prediction as JSON when stdout is not a terminal", async () => {
    const text = await cli(["run", "replicate/hello-world", "-i", "text=world"], { tty: true });
    assert.equal(text.code, 0);
    assert.equal(text.out, "hello world\n");
    const json = await cli(["run", "replicate/hello-world", "-i", "text=world"]);
    assert.equal(json.code, 0);
    const prediction = JSON.parse(json.out) as { status: string; output: string };
    assert.equal(prediction.status, "succeeded");
    assert.equal(prediction.output, "hello world");
  });

  test("reads a JSON object of inputs from stdin", async () => {
    const { code, out } = await cli(["run", "replicate/hello-world", "--text"], {
      stdin: '{"text":"piped"}',
    });
    assert.equal(code, 0);
    assert.equal(out, "hello piped\n");
  });

  test("coerces inputs by the schema and rejects bad ones with exit 2", async () => {
    const ok = await cli(["run", "replicant/stream-test", "-i", "tokens=2", "-i", "delay_ms=0", "--text"]);
    assert.equal(ok.code, 0, ok.err);
    assert.equal(ok.out, "token-1 token-2 \n");
    const bad = await cli(["run", "replicant/stream-test", "-i", "tokens=two"]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /input tokens must be a number/);
    const unknown = await cli(["run", "replicant/stream-test", "-i", "colour=red"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /its inputs: tokens, delay_ms, fail/);
  });

  test("a failed prediction exits 1 with its error; a missing model exits 4", async () => {
    const failed = await cli([
      "run",
      "replicant/stream-test",
      "-i",
      "tokens=1",
      "-i",
      "delay_ms=0",
      "-i",
      "fail=true",
    ]);
    assert.equal(failed.code, 1);
    assert.match(failed.err, /failed: stream-test failed as requested/);
    const missing = await cli(["run", "nobody/nothing"]);
    assert.equal(missing.code, 4);
  });

  test("a bad token exits 3 and says what to do", async () => {
    const { code, err } = await cli(["run", "replicate/hello-world"], {
      env: { ...env, REPLICATE_API_TOKEN: "r8_wrong" },
    });
    assert.equal(code, 3);
    assert.match(err, /replicant login/);
  });

  test("an unreachable server exits 5", async () => {
    const { code, err } = await cli(["account"], {
      env: { ...env, REPLICATE_BASE_URL: "http://127.0.0.1:9/v1" },
    });
    assert.equal(code, 5);
    assert.match(err, /could not reach the server/);
  });

  test("Ctrl-C (the interrupt signal) cancels the prediction and exits 130", async () => {
    const io = fakeIo(env);
    const running = runCli(["run", "replicant/stream-test", "-i", "tokens=200", "-i", "delay_ms=50"], io);
    while (!/started (\S+)/.test(io.err())) await new Promise((r) => setTimeout(r, 20));
    const id = /started (\S+)/.exec(io.err())![1]!;
    io.interruptNow();
    assert.equal(await running, 130);
    assert.match(io.err(), /canceled prediction/);
    const { out } = await cli(["predictions", "get", id, "--json"]);
    assert.equal((JSON.parse(out) as { status: string }).status, "canceled");
  });
});

describe("resources", () => {
  test("predictions create, get, list, logs and cancel", async () => {
    const created = await cli([
      "predictions",
      "create",
      "replicant/stream-test",
      "-i",
      "tokens=100",
      "-i",
      "delay_ms=50",
      "--json",
    ]);
    assert.equal(created.code, 0, created.err);
    const id = (JSON.parse(created.out) as { id: string }).id;
    const got = await cli(["predictions", "get", id, "--text"]);
    assert.match(got.out, new RegExp(`id: +${id}`));
    const listed = await cli(["predictions", "list", "--json"]);
    assert.ok((JSON.parse(listed.out) as { id: string }[]).some((p) => p.id === id));
    const canceled = await cli(["predictions", "cancel", id, "--text"]);
    assert.equal(canceled.code, 0);
    const after = await cli(["predictions", "get", id, "--json"]);
    assert.equal((JSON.parse(after.out) as { status: string }).status, "canceled");
    // Logs of a finished prediction are printed at once, even with --follow.
    assert.equal((await cli(["predictions", "logs", id, "--follow"])).code, 0);
  });

  test("predictions logs --follow prints lines until the prediction ends", async () => {
    const created = await cli([
      "predictions",
      "create",
      "replicant/stream-test",
      "-i",
      "tokens=3",
      "-i",
      "delay_ms=50",
      "--json",
    ]);
    const id = (JSON.parse(created.out) as { id: string }).id;
    const { code, out } = await cli(["predictions", "logs", id, "-f"]);
    assert.equal(code, 0);
    assert.equal(out, "emitting token 1\nemitting token 2\nemitting token 3\n");
  });

  test("models list, get, search, versions, examples, readme, schema, create, update, delete", async () => {
    assert.match((await cli(["models", "list", "--text"])).out, /replicate\/hello-world/);
    assert.match(
      (await cli(["models", "get", "replicate/hello-world", "--text"])).out,
      /latest version: +5c7d5dc6/,
    );
    assert.match((await cli(["models", "search", "hello", "--text"])).out, /replicate\/hello-world/);
    assert.match((await cli(["models", "versions", "replicate/hello-world", "--text"])).out, /5c7d5dc6dd8b/);
    assert.equal((await cli(["models", "examples", "replicate/hello-world"])).code, 0);
    assert.match((await cli(["models", "readme", "replicate/hello-world"])).out, /# hello-world/);
    const schema = await cli(["models", "schema", "replicant/stream-test", "--text"]);
    assert.match(schema.out, /tokens +integer +default 10; min 0; max 10000/);
    assert.match(schema.out, /Output: string\[\]/);
    assert.equal(
      (await cli(["models", "create", "local/cli-model", "--description", "made by the CLI", "--text"])).code,
      0,
    );
    assert.match(
      (await cli(["models", "update", "local/cli-model", "--description", "changed", "--json"])).out,
      /"changed"/,
    );
    assert.equal((await cli(["models", "delete", "local/cli-model"])).code, 0);
    assert.equal((await cli(["models", "get", "local/cli-model"])).code, 4);
  });

  test("deployments create, get, list, update, run and delete", async () => {
    const created = await cli([
      "deployments",
      "create",
      "cli-hello",
      "--model",
      "replicate/hello-world",
      "--text",
    ]);
    assert.equal(created.code, 0, created.err);
    assert.match(created.out, /local\/cli-hello/);
    assert.match((await cli(["deployments", "list", "--text"])).out, /local\/cli-hello/);
    assert.match(
      (await cli(["deployments", "update", "local/cli-hello", "--max-instances", "2", "--text"])).out,
      /instances 0-2/,
    );
    assert.match((await cli(["deployments", "get", "local/cli-hello", "--text"])).out, /release 2/);
    const ran = await cli(["deployments", "run", "local/cli-hello", "-i", "text=deployed", "--text"]);
    assert.equal(ran.out, "hello deployed\n");
    assert.equal((await cli(["deployments", "delete", "local/cli-hello"])).code, 0);
  });

  test("files upload, list, get, download and delete", async () => {
    const dir = await mkdtemp(join(tmpdir(), "replicant-cli-files-"));
    try {
      await writeFile(join(dir, "note.txt"), "some bytes\n");
      const uploaded = await cli(["files", "upload", "note.txt", "--metadata", '{"k":1}', "--json"], {
        cwd: dir,
      });
      assert.equal(uploaded.code, 0, uploaded.err);
      const file = JSON.parse(uploaded.out) as { id: string; metadata: unknown };
      assert.deepEqual(file.metadata, { k: 1 });
      assert.match((await cli(["files", "list", "--text"])).out, new RegExp(file.id));
      assert.match((await cli(["files", "get", file.id, "--text"])).out, /note.txt/);
      assert.equal((await cli(["files", "download", file.id, "-o", "copy.txt"], { cwd: dir })).code, 0);
      assert.equal(await readFile(join(dir, "copy.txt"), "utf8"), "some bytes\n");
      assert.equal((await cli(["files", "delete", file.id])).code, 0);
      assert.equal((await cli(["files", "get", file.id])).code, 4);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("trainings create --wait, get, list", async () => {
    assert.equal((await cli(["models", "create", "local/trained"])).code, 0);
    const created = await cli([
      "trainings",
      "create",
      "replicant/hello-trainable",
      "--destination",
      "local/trained",
      "-i",
      "greeting=hi",
      "--wait",
      "--json",
    ]);
    if (created.code === 4) return; // servers without the trainable built-in
    assert.equal(created.code, 0, created.err);
    const training = JSON.parse(created.out) as { id: string; status: string };
    assert.equal(training.status, "succeeded");
    assert.match((await cli(["trainings", "get", training.id, "--text"])).out, /succeeded/);
    assert.match((await cli(["trainings", "list", "--text"])).out, new RegExp(training.id));
  });

  test("collections, hardware, account, whoami, webhooks secret, types", async () => {
    assert.equal((await cli(["collections"])).code, 0);
    assert.match((await cli(["hardware", "--text"])).out, /cpu/);
    assert.match((await cli(["account", "--text"])).out, /^local \(user\) on http/);
    assert.equal(
      (JSON.parse((await cli(["whoami", "--json"])).out) as { username: string }).username,
      "local",
    );
    assert.match((await cli(["webhooks", "secret", "--text"])).out, /^whsec_/);
    const types = await cli(["types", "replicant/stream-test"]);
    assert.match(types.out, /export interface StreamTestInput/);
    assert.match(types.out, /tokens\?: number;/);
  });
});

describe("login and logout", () => {
  test("login checks the token, stores it per host with mode 0600, and later commands use it", async () => {
    const loginHome = await mkdtemp(join(tmpdir(), "replicant-cli-login-"));
    const bare = { REPLICANT_HOME: loginHome };
    try {
      const rejected = await cli(["login", server.url, "--token", "r8_wrong"], { env: bare });
      assert.equal(rejected.code, 3);
      const ok = await cli(["login", server.url], { env: bare, stdin: `${server.token}\n` });
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.out, /as local/);
      const info = await stat(join(loginHome, "credentials.json"));
      assert.equal(info.mode & 0o777, 0o600);
      const stored = JSON.parse(await readFile(join(loginHome, "credentials.json"), "utf8")) as {
        default: string;
      };
      assert.equal(stored.default, server.apiUrl);
      const account = await cli(["account", "--text"], { env: bare });
      assert.match(account.out, new RegExp(`on ${server.apiUrl}`));
      assert.equal((await cli(["logout"], { env: bare })).code, 0);
      const afterLogout = JSON.parse(await readFile(join(loginHome, "credentials.json"), "utf8")) as {
        hosts: object;
      };
      assert.deepEqual(afterLogout.hosts, {});
    } finally {
      await rm(loginHome, { recursive: true, force: true });
    }
  });
});

describe("pieces", () => {
  test("inputs: integers, numbers, booleans, enums, arrays as JSON or repeated keys, @file", async () => {
    const schema = inputSchemaOf({
      components: {
        schemas: {
          Input: {
            properties: {
              n: { type: "integer" },
              x: { type: "number" },
              b: { type: "boolean" },
              mode: { allOf: [{ $ref: "#/components/schemas/mode" }] },
              tags: { type: "array", items: { type: "string" } },
              image: { type: "string", format: "uri" },
            },
          },
          mode: { type: "string", enum: ["fast", "slow"] },
        },
      },
    });
    const io = fakeIo({});
    const input = await buildInput(["n=3", "x=0.5", "b=true", "mode=fast", "tags=a", "tags=b"], schema, io, {
      stdin: "no",
    });
    assert.deepEqual(input, { n: 3, x: 0.5, b: true, mode: "fast", tags: ["a", "b"] });
    assert.deepEqual(await buildInput(['tags=["x","y"]'], schema, io, { stdin: "no" }), { tags: ["x", "y"] });
    await assert.rejects(
      buildInput(["mode=medium"], schema, io, { stdin: "no" }),
      /must be one of "fast", "slow"/,
    );
    await assert.rejects(buildInput(["n=1.5"], schema, io, { stdin: "no" }), /must be an integer/);
    await assert.rejects(buildInput(["image=@/no/such/file"], schema, io, { stdin: "no" }), /no file at/);
    const withFile = await buildInput([`image=@${join(home, "..", "..", "etc", "hostname")}`], schema, io, {
      stdin: "no",
    }).catch(() => undefined);
    if (withFile) assert.equal(withFile.image?.constructor.name, "LocalPath");
  });

  test("progress text shows status, elapsed time and a bar from tqdm-style logs", () => {
    const base = {
      label: "acme/model",
      status: "processing",
      elapsedMs: 3200,
      lastLog: undefined,
      percentage: undefined,
      current: undefined,
      total: undefined,
    };
    assert.equal(progressText(base), "acme/model · processing · 3.2s");
    const bar = progressText({ ...base, percentage: 0.5, current: 5, total: 10 });
    assert.equal(bar, "acme/model · processing [██████████░░░░░░░░░░] 50% 5/10 · 3.2s");
  });

  test("file names come from the content type; data URIs are not dumped as text", () => {
    assert.equal(extensionFor("image/png", "data:image/png;base64,AA=="), "png");
    assert.equal(extensionFor("application/octet-stream", "https://x.test/a/out.webp"), "webp");
    assert.equal(extensionFor(undefined, "data:,x"), "bin");
    assert.match(outputText("data:image/png;base64,AAAA"), /a image\/png file of about 3 B: add --save/);
    assert.equal(outputText(["a", "b"]), "ab");
    assert.equal(outputText(["a", "b"], false), "a\nb");
  });

  test("--save takes an optional directory", () => {
    assert.deepEqual(optionalValue(["m", "--save", "-i", "a=1"], "--save", "."), [
      "m",
      "--save",
      ".",
      "-i",
      "a=1",
    ]);
    assert.deepEqual(optionalValue(["m", "--save"], "--save", "."), ["m", "--save", "."]);
    assert.deepEqual(optionalValue(["m", "--save", "out"], "--save", "."), ["m", "--save", "out"]);
  });

  test("errors map to documented exit codes", () => {
    assert.equal(describeError({ name: "APIConnectionError", message: "x" }).exitCode, 5);
    assert.equal(describeError({ name: "NotFoundError", status: 404, message: "x" }).exitCode, 4);
    assert.equal(describeError({ name: "InternalServerError", status: 503, message: "x" }).exitCode, 5);
    assert.equal(
      describeError({
        name: "UnprocessableEntityError",
        status: 422,
        message: "x",
        invalidFields: [{ field: "text", description: "bad" }],
      }).message,
      "the server refused the request (422): text: bad",
    );
  });
});
