// End-to-end: bin/replicant.js as a child process against a real server from startTestServer().
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Replicant, verifyWebhook } from "@replicant/sdk";
import { startTestServer, type TestServer } from "@replicant/testing";
import { writeServerFile } from "../src/server-file.js";
import { spawnCli } from "./helpers.js";

let server: TestServer;
let client: Replicant;
let env: Record<string, string>;
let work: string;

before(async () => {
  server = await startTestServer();
  client = new Replicant({ auth: server.token, baseUrl: server.apiUrl });
  work = await mkdtemp(join(tmpdir(), "replicant-cli-e2e-"));
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

describe("replicant binary", () => {
  test("run uploads a file input (-i file=@path) and --save writes the output file with its extension", async () => {
    const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4, 5]);
    await writeFile(join(work, "input.png"), bytes);
    const child = spawnCli(
      ["run", "replicant/file-echo", "-i", "file=@input.png", "--save", "out", "--text"],
      env,
      work,
    );
    assert.equal(await child.code, 0, child.stderr());
    assert.equal(child.stdout(), `${join("out", "output.png")}\n`);
    assert.match(child.stderr(), /saved out\/output\.png/);
    assert.deepEqual(await readFile(join(work, "out", "output.png")), bytes);
    // The input went through the Files API, not inline.
    const files = await client.files.list();
    assert.ok(files.results.some((f) => f.name === "input.png"));
  });

  test("stream prints tokens as they arrive", async () => {
    const child = spawnCli(
      ["stream", "replicant/stream-test", "-i", "tokens=3", "-i", "delay_ms=30", "--text"],
      env,
    );
    assert.equal(await child.code, 0, child.stderr());
    assert.equal(child.stdout(), "token-1 token-2 token-3 \n");
  });

  test("stream --json prints one JSON event per line", async () => {
    const child = spawnCli(["stream", "replicant/stream-test", "-i", "tokens=2", "-i", "delay_ms=0"], env);
    assert.equal(await child.code, 0, child.stderr());
    const events = child
      .stdout()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { event: string });
    assert.deepEqual(
      events.map((e) => e.event),
      ["output", "output", "done"],
    );
  });

  test("SIGINT cancels the prediction on the server and exits 130", async () => {
    const child = spawnCli(
      ["run", "replicant/stream-test", "-i", "tokens=1000", "-i", "delay_ms=50", "--text"],
      env,
    );
    await child.waitFor(/started (\S+)/);
    const id = /started (\S+)/.exec(child.stderr())![1]!;
    await new Promise((resolve) => setTimeout(resolve, 200));
    child.kill("SIGINT");
    assert.equal(await child.code, 130);
    assert.match(child.stderr(), new RegExp(`canceled prediction ${id}`));
    const prediction = await client.predictions.get(id);
    assert.equal(prediction.status, "canceled");
  });

  test("webhooks listen receives a real signed webhook, verifies it and forwards it unchanged", async () => {
    const received: { headers: IncomingHttpHeaders; body: string }[] = [];
    const app = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        received.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    const appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}/hook`;
    const listener = spawnCli(["webhooks", "listen", "--forward-to", appUrl, "--text"], env);
    try {
      await listener.waitFor(/Ready: (\S+)/);
      const url = /Ready: (\S+)/.exec(listener.stdout())![1]!;
      const prediction = await client.predictions.create({
        model: "replicate/hello-world",
        input: { text: "hook" },
        webhook: url,
        webhook_events_filter: ["completed"],
      });
      await listener.waitFor(new RegExp(`${prediction.id} succeeded +verified → ${appUrl} 204`));
      assert.equal(received.length, 1);
      const delivery = received[0]!;
      const { key } = await client.webhooks.default.secret.get();
      const payload = await verifyWebhook<{ id: string; output: string }>(
        {
          id: String(delivery.headers["webhook-id"]),
          timestamp: String(delivery.headers["webhook-timestamp"]),
          signature: String(delivery.headers["webhook-signature"]),
          body: delivery.body,
        },
        key,
      );
      assert.equal(payload.id, prediction.id);
      assert.equal(payload.output, "hello hook");
      // A forged delivery is rejected and not forwarded.
      const forged = await fetch(url, {
        method: "POST",
        headers: {
          "webhook-id": "msg_x",
          "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
          "webhook-signature": "v1,AAAA",
        },
        body: "{}",
      });
      assert.equal(forged.status, 400);
      assert.equal(received.length, 1);
    } finally {
      listener.kill("SIGINT");
      assert.equal(await listener.code, 0);
      await new Promise<void>((resolve) => app.close(() => resolve()));
    }
  });

  /** What the playground does with a sign-in link: POST its code, get the token (or a problem). */
  async function spendLink(link: string): Promise<{ status: number; token?: string }> {
    const url = new URL(link);
    const response = await fetch(`${url.origin}/replicant/session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code: url.searchParams.get("login") }),
    });
    return { status: response.status, ...((await response.json()) as { token?: string }) };
  }

  test("open --print prints a one-time sign-in link for the current token", async () => {
    const child = spawnCli(["open", "--print"], env);
    assert.equal(await child.code, 0, child.stderr());
    const link = child.stdout().trim();
    assert.match(link, new RegExp(`^${server.url}/\\?login=[\\w-]{43}$`));
    assert.deepEqual(await spendLink(link), { status: 200, token: server.token, username: "local" });
    assert.equal((await spendLink(link)).status, 403, "valid once");
  });

  test("open with no server running says to start one, and starts nothing", async () => {
    const home = join(work, "open-home");
    const child = spawnCli(["open", "--no-browser"], { REPLICANT_HOME: home });
    assert.equal(await child.code, 1);
    assert.equal(child.stdout(), "");
    assert.match(child.stderr(), /start one with `replicant serve` and run `replicant open` again/);
    assert.ok(!existsSync(join(home, "admin-token")), "no embedded server was started");
  });

  test("serve prints a sign-in link at start, and open makes another for it", async () => {
    const home = await mkdtemp(join(tmpdir(), "replicant-cli-open-"));
    const serve = spawnCli(["serve", "--port", "0", "--data", home], { REPLICANT_HOME: home });
    try {
      await serve.waitFor(/\?login=[\w-]{43}\n/, 30_000);
      const printed = /(http:\/\/\S+\?login=[\w-]{43})\n/.exec(serve.stdout())?.[1] ?? "";
      assert.match(serve.stdout(), /Open the web playground, signed in \(valid once, for 5 minutes/);
      const token = (await readFile(join(home, "admin-token"), "utf8")).trim();
      assert.deepEqual(await spendLink(printed), { status: 200, token, username: "local" });
      // No token in the environment: `open` finds the running serve through REPLICANT_HOME.
      const open = spawnCli(["open", "--print"], { REPLICANT_HOME: home });
      assert.equal(await open.code, 0, open.stderr());
      assert.equal((await spendLink(open.stdout().trim())).token, token);
    } finally {
      serve.kill("SIGTERM");
      await serve.code;
      await rm(home, { recursive: true, force: true });
    }
  });

  test("with no token, the embedded default runs on REPLICANT_HOME and says so", async () => {
    const home = join(work, "fresh-home");
    const child = spawnCli(["run", "replicate/hello-world", "-i", "text=world", "--text"], {
      REPLICANT_HOME: home,
    });
    assert.equal(await child.code, 0, child.stderr());
    assert.equal(child.stdout(), "hello world\n");
    assert.match(child.stderr(), /embedded default \(data in .*fresh-home\)/);
    assert.ok(existsSync(join(home, "admin-token")));
    assert.ok(!existsSync(join(home, "server.json")), "server.json is removed on exit");
  });

  test("with no token and a server running on REPLICANT_HOME, commands connect to it instead", async () => {
    const home = await mkdtemp(join(tmpdir(), "replicant-cli-serve-home-"));
    const running = await startTestServer({ dataDir: home });
    try {
      await writeServerFile(home, running.url); // what `replicant serve` writes (this process is alive)
      const child = spawnCli(["run", "replicate/hello-world", "-i", "text=shared", "--json"], {
        REPLICANT_HOME: home,
      });
      assert.equal(await child.code, 0, child.stderr());
      assert.match(child.stderr(), new RegExp(`using the local server at ${running.url}`));
      const { id } = JSON.parse(child.stdout()) as { id: string };
      const seen = new Replicant({ auth: running.token, baseUrl: running.apiUrl });
      assert.equal((await seen.predictions.get(id)).output, "hello shared");
    } finally {
      await running.close();
      await rm(home, { recursive: true, force: true });
    }
  });

  test("a stale server.json (dead pid) is ignored", async () => {
    const home = await mkdtemp(join(tmpdir(), "replicant-cli-stale-"));
    try {
      await writeFile(
        join(home, "server.json"),
        JSON.stringify({ url: "http://127.0.0.1:9", pid: 2 ** 22 + 12345, startedAt: "" }),
      );
      const child = spawnCli(["run", "replicate/hello-world", "--text"], { REPLICANT_HOME: home });
      assert.equal(await child.code, 0, child.stderr());
      assert.match(child.stderr(), /embedded default/);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
