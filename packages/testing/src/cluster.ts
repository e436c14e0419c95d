// A scale-out deployment of real processes for tests and benchmarks: `replicant serve --role api` and
// `--role worker` child processes on a fresh PostgreSQL database, a fresh Redis key prefix and an
// s3rver bucket (in this process), behind a round-robin HTTP reverse proxy (also in this process).
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import {
  Agent,
  createServer as createHttpServer,
  type Server as HttpServer,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from "node:http";
import { type AddressInfo, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestServer } from "./server.js";

/** The CLI binary the processes run (`replicant serve`). */
export const CLI_BIN = fileURLToPath(new URL("../../../cli/bin/replicant.js", import.meta.url));
export const PG_ADMIN_URL =
  process.env.REPLICANT_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.REPLICANT_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** Whether a TCP connection to the URL's host and port opens within a second. */
export function reachable(url: string, defaultPort: number): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || defaultPort) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Whether the PostgreSQL and Redis a cluster needs are reachable. */
export async function clusterServicesUp(): Promise<boolean> {
  const [pgUp, redisUp] = await Promise.all([reachable(PG_ADMIN_URL, 5432), reachable(REDIS_URL, 6379)]);
  return pgUp && redisUp;
}

export interface ServeProcess {
  child: ChildProcess;
  /** The API's address, or the worker's health address (without `/health`). */
  url: string;
  /** Everything it printed so far (the last 64 KiB). */
  output(): string;
}

const API_READY = /listening on (http:\/\/\S+)/;
const WORKER_READY = /health on (http:\/\/\S+)\/health/;

/** Starts `replicant serve ARGS` and resolves once `ready` matches its stdout (group 1 is the URL). */
export function startServe(
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [CLI_BIN, "serve", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 65_536) output = output.slice(-65_536);
  };
  child.stderr?.on("data", append);
  return new Promise((resolve, reject) => {
    let resolved = false;
    child.stdout?.on("data", (chunk: Buffer) => {
      append(chunk);
      const match = resolved ? null : ready.exec(output);
      if (match?.[1]) {
        resolved = true;
        resolve({ child, url: match[1], output: () => output });
      }
    });
    child.once("exit", (code, signal) => {
      if (!resolved) reject(new Error(`serve ${args.join(" ")} exited (${code ?? signal}): ${output}`));
    });
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopServe(proc: ServeProcess | undefined, graceMs = 8000): Promise<void> {
  if (proc === undefined || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = once(proc.child, "exit");
  proc.child.kill("SIGTERM");
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

type PgModule = typeof import("pg").default;

async function pgAdmin(text: string): Promise<void> {
  const pg: PgModule = (await import("pg")).default;
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** Creates an empty database on the test PostgreSQL and returns its URL. */
export async function createTestDatabase(name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
  await pgAdmin(`CREATE DATABASE ${name}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropTestDatabase(name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
  await pgAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

/** Deletes every Redis key starting with `prefix`; returns how many. */
export async function deleteRedisPrefix(prefix: string): Promise<number> {
  const { Redis } = await import("ioredis");
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
  return deleted;
}

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}

/** s3rver (an S3 emulator) in this process, with one bucket; resolves to its endpoint. */
export async function startS3rver(
  directory: string,
  bucket: string,
): Promise<{ endpoint: string; close(): Promise<void> }> {
  // s3rver ships no types; a variable specifier keeps TypeScript from looking for them.
  const specifier = "s3rver";
  const module = (await import(specifier)) as {
    default: new (options: Record<string, unknown>) => S3rverInstance;
  };
  const instance = new module.default({
    port: 0,
    address: "127.0.0.1",
    directory,
    silent: true,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await instance.run();
  return { endpoint: `http://127.0.0.1:${port}`, close: () => instance.close() };
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
]);

/**
 * A reverse proxy that sends each request to the next upstream in turn (round robin per request, not
 * per connection), streaming request and response bodies both ways (server-sent events included).
 */
export class RoundRobinProxy {
  readonly server: HttpServer;
  /** Requests sent to each upstream, by its base URL. */
  readonly hits = new Map<string, number>();
  private upstreams: URL[] = [];
  private next = 0;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 512 });

  constructor() {
    this.server = createHttpServer((request, response) => this.forward(request, response));
    this.server.keepAliveTimeout = 60_000;
  }

  async listen(): Promise<string> {
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  setUpstreams(urls: string[]): void {
    this.upstreams = urls.map((u) => new URL(u));
    for (const url of urls) if (!this.hits.has(url)) this.hits.set(url, 0);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.agent.destroy();
  }

  private forward(request: IncomingMessage, response: ServerResponse): void {
    const target = this.upstreams[this.next++ % Math.max(1, this.upstreams.length)];
    if (target === undefined) {
      response.writeHead(502, { "content-type": "text/plain" }).end("no upstream");
      return;
    }
    const key = target.toString().replace(/\/$/, "");
    this.hits.set(key, (this.hits.get(key) ?? 0) + 1);
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    }
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: request.method,
        path: request.url,
        headers,
        agent: this.agent,
      },
      (answer) => {
        const raw: string[] = [];
        for (let i = 0; i + 1 < answer.rawHeaders.length; i += 2) {
          const name = answer.rawHeaders[i]!;
          if (!HOP_BY_HOP.has(name.toLowerCase())) raw.push(name, answer.rawHeaders[i + 1]!);
        }
        response.writeHead(answer.statusCode ?? 502, answer.statusMessage, raw);
        // Server-sent events: send the headers now, not with the first event.
        response.flushHeaders();
        answer.pipe(response);
        answer.on("error", () => response.destroy());
      },
    );
    upstream.on("error", (error) => {
      if (!response.headersSent)
        response.writeHead(502, { "content-type": "text/plain" }).end(`proxy: ${error.message}`);
      else response.destroy();
    });
    // The client went away (an aborted request, a closed event stream): so does the upstream request.
    response.on("close", () => {
      if (!response.writableFinished) upstream.destroy();
    });
    request.on("error", () => upstream.destroy());
    request.pipe(upstream);
  }
}

export interface ClusterOptions {
  /** API processes behind the proxy (default 2). */
  apis?: number;
  /** Worker processes (default 2). */
  workers?: number;
  /** `--concurrency` of each worker (default 32, serve's default). */
  workerConcurrency?: number;
  /** Extra `serve` flags for API processes and for worker processes. */
  apiArgs?: string[];
  workerArgs?: string[];
  /** Extra environment for every process. */
  env?: Record<string, string>;
  /** Default true. */
  allowPrivateUrls?: boolean;
  /** Default "error" (what they print is kept for failure messages). */
  logLevel?: string;
  /** The bearer token of the default account (default: a random one). */
  adminToken?: string;
  /** REPLICANT_QUEUE_LOCK_MS (default serve's, 30 s). */
  lockMs?: number;
}

export interface TestCluster extends TestServer {
  backend: "cluster";
  /** The proxy's address: what `url` is, and the servers' `--public-url`. */
  proxy: RoundRobinProxy;
  apis: ServeProcess[];
  workers: ServeProcess[];
  databaseUrl: string;
  redisPrefix: string;
  /** The environment every process got (database, Redis, S3, signing key, token). */
  env: Record<string, string>;
  /** Starts one more worker process (with the cluster's worker flags). */
  addWorker(concurrency?: number): Promise<ServeProcess>;
  /** Stops one worker process (SIGTERM) and forgets it. */
  removeWorker(worker: ServeProcess): Promise<void>;
  /** Everything the processes printed, for failure messages. */
  output(): string;
}

function notInCluster(what: string): never {
  throw new Error(
    `${what} is the in-process server's; with REPLICANT_TEST_BACKEND=cluster the server runs in child processes (mark the case with inProcessOnly())`,
  );
}

/**
 * Starts a scale-out deployment: `apis` API processes and `workers` worker processes of
 * `replicant serve` on a fresh PostgreSQL database, a fresh Redis key prefix and s3rver, behind a
 * round-robin proxy. `url`/`apiUrl` are the proxy's; close() removes everything it created.
 */
export async function startTestCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const id = randomBytes(6).toString("hex");
  const databaseName = `replicant_test_${id}`;
  const redisPrefix = `replicant_test_${id}`;
  const token = options.adminToken ?? `r8_cluster_${randomBytes(12).toString("hex")}`;
  const dirs: string[] = [];
  const apis: ServeProcess[] = [];
  const workers: ServeProcess[] = [];
  const proxy = new RoundRobinProxy();
  let s3: { close(): Promise<void> } | undefined;
  let databaseCreated = false;
  const tempDir = async (name: string) => {
    const dir = await mkdtemp(join(tmpdir(), `replicant-cluster-${name}-`));
    dirs.push(dir);
    return dir;
  };
  const close = async () => {
    const hits = [...proxy.hits.values()];
    if (hits.length > 0)
      process.stderr.write(
        `# cluster ${id}: requests per API process through the proxy: ${hits.join(", ")}\n`,
      );
    await Promise.allSettled([...apis, ...workers].map((p) => stopServe(p)));
    await proxy.close().catch(() => {});
    await s3?.close().catch(() => {});
    if (databaseCreated) await dropTestDatabase(databaseName).catch(() => {});
    await deleteRedisPrefix(redisPrefix).catch(() => {});
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  };
  try {
    const databaseUrl = await createTestDatabase(databaseName);
    databaseCreated = true;
    const bucket = "replicant-cluster";
    const s3rver = await startS3rver(await tempDir("s3"), bucket);
    s3 = s3rver;
    const publicUrl = await proxy.listen();
    const env: Record<string, string> = {
      REPLICANT_ADMIN_TOKEN: token,
      REPLICANT_SIGNING_KEY: randomBytes(32).toString("hex"),
      REPLICANT_DATABASE_URL: databaseUrl,
      REPLICANT_REDIS_URL: REDIS_URL,
      REPLICANT_REDIS_PREFIX: redisPrefix,
      REPLICANT_S3_ENDPOINT: s3rver.endpoint,
      REPLICANT_S3_BUCKET: bucket,
      REPLICANT_S3_REGION: "us-east-1",
      REPLICANT_S3_ACCESS_KEY: "S3RVER",
      REPLICANT_S3_SECRET_KEY: "S3RVER",
      ...(options.lockMs !== undefined ? { REPLICANT_QUEUE_LOCK_MS: String(options.lockMs) } : {}),
      ...options.env,
    };
    const common = [
      "--port",
      "0",
      "--public-url",
      publicUrl,
      "--log-level",
      options.logLevel ?? "error",
      ...(options.allowPrivateUrls === false ? [] : ["--allow-private-urls"]),
    ];
    const startApi = async (i: number) =>
      startServe(
        ["--role", "api", "--data", await tempDir(`api-${i}`), ...common, ...(options.apiArgs ?? [])],
        env,
        API_READY,
      );
    const startWorker = async (concurrency = options.workerConcurrency ?? 32) => {
      const worker = await startServe(
        [
          "--role",
          "worker",
          "--data",
          await tempDir(`worker-${workers.length}`),
          "--concurrency",
          String(concurrency),
          ...common,
          ...(options.workerArgs ?? []),
        ],
        env,
        WORKER_READY,
      );
      workers.push(worker);
      return worker;
    };
    // Processes take turns at start (a PostgreSQL advisory lock), so starting them together is safe.
    const started = await Promise.allSettled([
      ...Array.from({ length: options.apis ?? 2 }, (_, i) => startApi(i)),
      ...Array.from({ length: options.workers ?? 2 }, () => startWorker()),
    ]);
    for (const result of started.slice(0, options.apis ?? 2))
      if (result.status === "fulfilled") apis.push(result.value);
    const failed = started.find((r) => r.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    proxy.setUpstreams(apis.map((a) => a.url));
    return {
      backend: "cluster",
      url: publicUrl,
      apiUrl: `${publicUrl}/v1`,
      token,
      get server(): never {
        return notInCluster("server");
      },
      get dataDir(): never {
        return notInCluster("dataDir");
      },
      proxy,
      apis,
      workers,
      databaseUrl,
      redisPrefix,
      env,
      addWorker: (concurrency) => startWorker(concurrency),
      async removeWorker(worker) {
        const index = workers.indexOf(worker);
        if (index >= 0) workers.splice(index, 1);
        await stopServe(worker);
      },
      output: () => [...apis, ...workers].map((p) => `--- ${p.url}\n${p.output()}`).join("\n"),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
