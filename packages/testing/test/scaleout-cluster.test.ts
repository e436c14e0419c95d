// A scale-out deployment of real processes: 2 API processes and 2 worker processes
// (`replicant serve --role api|worker`) on PostgreSQL, BullMQ on Redis and S3 (s3rver in this
// process). Requests are spread across the API processes; then the failures: kill -9 of a worker
// mid-prediction, the loss of every Redis key of the deployment, and PostgreSQL cut off from the API.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  createTestDatabase,
  deleteRedisPrefix,
  dropTestDatabase,
  PG_ADMIN_URL,
  REDIS_URL,
  reachable,
  type ServeProcess,
  startS3rver,
  startServe,
  stopServe,
} from "../src/cluster.js";

const TOKEN = `r8_cluster_${randomBytes(12).toString("hex")}`;
const LOCK_MS = 3000;
const TERMINAL = ["succeeded", "failed", "canceled", "aborted"];

const servicesUp = (await reachable(PG_ADMIN_URL, 5432)) && (await reachable(REDIS_URL, 6379));
if (!servicesUp)
  console.warn(`# skipped: PostgreSQL (${PG_ADMIN_URL}) or Redis (${REDIS_URL}) is unreachable`);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A TCP proxy we can cut: new and existing connections are reset while it is down. */
class FaultProxy {
  private readonly sockets = new Set<Socket>();
  private down = false;
  readonly server: Server;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.server = createServer((client) => {
      if (this.down) {
        client.destroy();
        return;
      }
      const upstream = connect({ host: this.targetHost, port: this.targetPort });
      this.sockets.add(client);
      this.sockets.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
      client.pipe(upstream).pipe(client);
    });
  }

  async listen(): Promise<number> {
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    return (this.server.address() as AddressInfo).port;
  }

  cut(): void {
    this.down = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  heal(): void {
    this.down = false;
  }

  close(): void {
    this.cut();
    this.server.close();
  }
}

type Proc = ServeProcess;
const start = startServe;

const stop = (proc: Proc | undefined) => stopServe(proc);

interface Response<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  json: T;
}

async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  const response = await fetch(`${base}/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    json: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

/** The same URL on another API process: any of them serves any prediction or file. */
function via(url: string, base: string): string {
  const target = new URL(url);
  const other = new URL(base);
  target.protocol = other.protocol;
  target.host = other.host;
  return target.toString();
}

async function terminal(base: string, id: string, timeoutMs: number): Promise<Record<string, unknown>> {
  return waitUntil(
    async () => {
      const res = await api(base, "GET", `/predictions/${id}`);
      return TERMINAL.includes(res.json.status as string) ? res.json : undefined;
    },
    timeoutMs,
    `prediction ${id} to finish`,
  );
}

async function statusOf(base: string, id: string): Promise<string> {
  return (await api(base, "GET", `/predictions/${id}`)).json.status as string;
}

describe("scale-out cluster: 2 API and 2 worker processes", { skip: !servicesUp }, () => {
  const databaseName = `replicant_test_${randomBytes(6).toString("hex")}`;
  const redisPrefix = `replicant_test_${randomBytes(6).toString("hex")}`;
  const dirs: string[] = [];
  const workers: Proc[] = [];
  let apiA: Proc;
  let apiB: Proc;
  let proxy: FaultProxy;
  let s3rver: { close(): Promise<void> } | undefined;
  let env: Record<string, string>;
  let directDatabaseUrl: string | undefined;

  async function tempDir(name: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `replicant-cluster-${name}-`));
    dirs.push(dir);
    return dir;
  }

  async function startWorker(name: string): Promise<Proc> {
    const worker = await start(
      [
        "--role",
        "worker",
        "--port",
        "0",
        "--data",
        await tempDir(name),
        "--public-url",
        apiA.url,
        "--allow-private-urls",
        "--concurrency",
        "2",
        "--log-level",
        "error",
      ],
      { ...env, REPLICANT_DATABASE_URL: directDatabaseUrl! },
      /health on (http:\/\/\S+)\/health/,
    );
    workers.push(worker);
    return worker;
  }

  before(async () => {
    directDatabaseUrl = await createTestDatabase(databaseName);
    const pgUrl = new URL(directDatabaseUrl);
    proxy = new FaultProxy(pgUrl.hostname, Number(pgUrl.port || 5432));
    const proxyPort = await proxy.listen();
    const proxiedUrl = new URL(directDatabaseUrl);
    proxiedUrl.hostname = "127.0.0.1";
    proxiedUrl.port = String(proxyPort);

    const s3 = await startS3rver(await tempDir("s3"), "replicant-cluster");
    s3rver = s3;

    env = {
      REPLICANT_ADMIN_TOKEN: TOKEN,
      REPLICANT_SIGNING_KEY: randomBytes(32).toString("hex"),
      REPLICANT_DATABASE_URL: proxiedUrl.toString(),
      REPLICANT_REDIS_URL: REDIS_URL,
      REPLICANT_REDIS_PREFIX: redisPrefix,
      REPLICANT_S3_ENDPOINT: s3.endpoint,
      REPLICANT_S3_BUCKET: "replicant-cluster",
      REPLICANT_S3_REGION: "us-east-1",
      REPLICANT_S3_ACCESS_KEY: "S3RVER",
      REPLICANT_S3_SECRET_KEY: "S3RVER",
      REPLICANT_QUEUE_LOCK_MS: String(LOCK_MS),
      REPLICANT_RECONCILE_INTERVAL_MS: "500",
    };
    const apiArgs = async (name: string) => [
      "--role",
      "api",
      "--port",
      "0",
      "--data",
      await tempDir(name),
      "--allow-private-urls",
      "--log-level",
      "error",
    ];
    const listening = /listening on (http:\/\/\S+)/;
    [apiA, apiB] = await Promise.all([
      start(await apiArgs("api-a"), env, listening),
      start(await apiArgs("api-b"), env, listening),
    ]);
    await Promise.all([startWorker("worker-1"), startWorker("worker-2")]);
  });

  after(async () => {
    await Promise.allSettled([stop(apiA), stop(apiB), ...workers.map((w) => stop(w))]);
    proxy?.close();
    await s3rver?.close();
    if (directDatabaseUrl !== undefined) await dropTestDatabase(databaseName).catch(() => {});
    await deletePrefix().catch(() => 0);
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  const deletePrefix = () => deleteRedisPrefix(redisPrefix);

  it("serves health on every process", async () => {
    for (const proc of [apiA, apiB, ...workers]) {
      const response = await fetch(`${proc.url}/health`);
      assert.equal(response.status, 200, proc.url);
    }
    // A worker serves no API.
    const response = await fetch(`${workers[0]!.url}/v1/predictions`);
    assert.equal(response.status, 404);
  });

  it("creates on one API process and waits on the other", { timeout: 30_000 }, async () => {
    const created = await api(apiA.url, "POST", "/predictions", {
      version: "replicate/hello-world",
      input: { text: "cluster" },
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const id = created.json.id as string;
    const done = await terminal(apiB.url, id, 20_000);
    assert.equal(done.status, "succeeded", JSON.stringify(done));
    assert.equal(done.output, "hello cluster");

    // A sync wait on B for a prediction that runs on a worker: woken by the Redis bus.
    const sync = await api(
      apiB.url,
      "POST",
      "/predictions",
      { version: "replicate/hello-world", input: { text: "sync" } },
      { prefer: "wait=20" },
    );
    assert.equal(sync.status, 201);
    assert.equal(sync.json.status, "succeeded", JSON.stringify(sync.json));
    assert.equal(sync.json.output, "hello sync");
  });

  it("streams through the other API process", { timeout: 30_000 }, async () => {
    const created = await api(apiA.url, "POST", "/predictions", {
      version: "replicant/stream-test",
      input: { tokens: 10, delay_ms: 50 },
      stream: true,
    });
    assert.equal(created.status, 201);
    const streamUrl = (created.json.urls as { stream: string }).stream;
    const response = await fetch(via(streamUrl, apiB.url), { headers: { accept: "text/event-stream" } });
    assert.equal(response.status, 200);
    const text = await response.text();
    const outputs = [...text.matchAll(/^event: output\n(?:id: .*\n)?data: (.*)$/gm)].map((m) => m[1]);
    assert.equal(outputs.length, 10, text);
    assert.match(text, /event: done/);
  });

  it("cancels on the other API process a prediction running on a worker", { timeout: 30_000 }, async () => {
    const created = await api(apiA.url, "POST", "/predictions", {
      version: "replicant/stream-test",
      input: { tokens: 400, delay_ms: 50 },
    });
    const id = created.json.id as string;
    await waitUntil(
      async () => ((await statusOf(apiB.url, id)) === "processing" ? true : undefined),
      15_000,
      "processing",
    );
    const canceled = await api(apiB.url, "POST", `/predictions/${id}/cancel`);
    assert.equal(canceled.status, 200);
    const done = await terminal(apiA.url, id, 10_000);
    assert.equal(done.status, "canceled");
    // The worker stopped it: its logs stop growing.
    const logs = (await api(apiA.url, "GET", `/predictions/${id}`)).json.logs;
    await sleep(500);
    assert.equal((await api(apiB.url, "GET", `/predictions/${id}`)).json.logs, logs);
  });

  it("uploads a file on one API process and downloads it from the other", async () => {
    const content = randomBytes(200_000);
    const form = new FormData();
    form.set("content", new Blob([content], { type: "application/octet-stream" }), "data.bin");
    const uploaded = await fetch(`${apiA.url}/v1/files`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: form,
    });
    assert.equal(uploaded.status, 201);
    const file = (await uploaded.json()) as { id: string; size: number; urls: { get: string } };
    assert.equal(file.size, content.length);
    const fetched = await api(apiB.url, "GET", `/files/${file.id}`);
    assert.equal(fetched.status, 200);
    const download = await fetch(`${apiB.url}/v1/files/${file.id}/download`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(download.status, 200);
    assert.deepEqual(Buffer.from(await download.arrayBuffer()), content);
  });

  it("delivers a webhook from a worker", { timeout: 30_000 }, async () => {
    const received: { headers: Record<string, unknown>; body: Record<string, unknown> }[] = [];
    const receiver = createHttpServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => {
        body += chunk.toString();
      });
      request.on("end", () => {
        received.push({ headers: request.headers, body: JSON.parse(body) as Record<string, unknown> });
        response.writeHead(200).end();
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    try {
      const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      const created = await api(apiB.url, "POST", "/predictions", {
        version: "replicate/hello-world",
        input: { text: "hook" },
        webhook: hook,
        webhook_events_filter: ["completed"],
      });
      assert.equal(created.status, 201);
      const delivery = await waitUntil(
        async () => received.find((r) => r.body.id === created.json.id),
        20_000,
        "the completed webhook",
      );
      assert.equal(delivery.body.status, "succeeded");
      assert.ok(delivery.headers["webhook-signature"], "the webhook is signed");
    } finally {
      receiver.close();
    }
  });

  it("fails the predictions of a worker killed with -9 within the lock duration", {
    timeout: 60_000,
  }, async () => {
    // Which worker runs what must be known: first only the victim runs (two slots, both taken),
    // then a second worker starts and takes the next two.
    const victim = workers[0]!;
    await stop(workers[1]);
    const long = async (base: string) => {
      const res = await api(base, "POST", "/predictions", {
        version: "replicant/stream-test",
        input: { tokens: 1000, delay_ms: 50 },
      });
      assert.equal(res.status, 201);
      return res.json.id as string;
    };
    const allProcessing = (ids: string[]) =>
      waitUntil(
        async () => {
          const statuses = await Promise.all(ids.map((id) => statusOf(apiA.url, id)));
          return statuses.every((s) => s === "processing") ? true : undefined;
        },
        20_000,
        "processing",
      );
    const onVictim = [await long(apiA.url), await long(apiB.url)];
    await allProcessing(onVictim);
    await startWorker("worker-3");
    const onSurvivor = [await long(apiA.url), await long(apiB.url)];
    await allProcessing(onSurvivor);

    victim.child.kill("SIGKILL");
    await once(victim.child, "exit");
    const killedAt = Date.now();
    for (const id of onVictim) {
      const record = await terminal(apiB.url, id, LOCK_MS + 10_000).catch((error: unknown) => {
        throw new Error(`${String(error)}; surviving worker: ${workers.at(-1)!.output()}`);
      });
      assert.equal(record.status, "failed");
      assert.match(record.error as string, /worker running this prediction stopped/);
    }
    const elapsed = Date.now() - killedAt;
    assert.ok(elapsed <= LOCK_MS + 5000, `took ${elapsed} ms, the lock is ${LOCK_MS} ms`);
    // The survivor's two are still running, untouched.
    for (const id of onSurvivor) assert.equal(await statusOf(apiA.url, id), "processing");
    for (const id of onSurvivor) await api(apiA.url, "POST", `/predictions/${id}/cancel`);
    for (const id of onSurvivor) assert.equal((await terminal(apiA.url, id, 10_000)).status, "canceled");
    // Back to two workers for what follows.
    await startWorker("worker-4");
  });

  it("loses no accepted prediction when Redis loses every key of the deployment", {
    timeout: 60_000,
  }, async () => {
    // Long ones keep the workers busy (some running, some waiting), then more wait behind them.
    const running: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await api(apiA.url, "POST", "/predictions", {
        version: "replicant/stream-test",
        input: { tokens: 60, delay_ms: 50 },
      });
      running.push(res.json.id as string);
    }
    await waitUntil(
      async () => {
        const statuses = await Promise.all(running.map((id) => statusOf(apiA.url, id)));
        return statuses.filter((s) => s === "processing").length >= 2 ? true : undefined;
      },
      20_000,
      "some long ones processing",
    );
    const queued: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await api(apiB.url, "POST", "/predictions", {
        version: "replicate/hello-world",
        input: { text: `after-${i}` },
      });
      assert.equal(res.status, 201);
      queued.push(res.json.id as string);
    }
    const deleted = await deletePrefix();
    assert.ok(deleted > 0, "nothing was deleted from Redis");
    for (const id of [...running, ...queued]) {
      const done = await terminal(apiA.url, id, 30_000);
      assert.equal(done.status, "succeeded", `${id}: ${JSON.stringify(done)}`);
    }
  });

  it("answers 503 with Retry-After while PostgreSQL is unreachable, and recovers", {
    timeout: 60_000,
  }, async () => {
    const created = await api(apiA.url, "POST", "/predictions", {
      version: "replicate/hello-world",
      input: { text: "before" },
    });
    const id = created.json.id as string;
    proxy.cut();
    try {
      for (const base of [apiA.url, apiB.url]) {
        const started = Date.now();
        const res = await api(base, "GET", `/predictions/${id}`).catch((error: unknown) => {
          throw new Error(`${String(error)}; API A: ${apiA.output()}; API B: ${apiB.output()}`);
        });
        assert.equal(res.status, 503, JSON.stringify(res.json));
        assert.ok(res.headers.get("retry-after"), "503 without Retry-After");
        assert.ok(Date.now() - started < 10_000, "the 503 took too long");
        const create = await api(base, "POST", "/predictions", {
          version: "replicate/hello-world",
          input: { text: "during" },
        });
        assert.equal(create.status, 503);
      }
    } finally {
      proxy.heal();
    }
    for (const base of [apiA.url, apiB.url]) {
      await waitUntil(
        async () => ((await api(base, "GET", `/predictions/${id}`)).status === 200 ? true : undefined),
        15_000,
        "the API to recover",
      );
    }
    const after = await api(apiB.url, "POST", "/predictions", {
      version: "replicate/hello-world",
      input: { text: "after" },
    });
    assert.equal(after.status, 201);
    assert.equal((await terminal(apiA.url, after.json.id as string, 20_000)).status, "succeeded");
  });
});
