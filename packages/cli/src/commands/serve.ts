import { createServer } from "node:http";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  defaultConfig,
  describeScaleOut,
  LOGIN_LINK_TTL_MS,
  ReplicantServer,
  type ServerConfig,
  scaleOutConfigFromEnv,
} from "@replicant/server";
import { removeServerFile, writeServerFile } from "../server-file.js";

const HELP = `Usage: replicant serve [options]

Runs a Replicate-compatible API server in the foreground: one process with SQLite and a local
directory by default, or one process of a scale-out deployment (PostgreSQL, Redis, S3) when
REPLICANT_DATABASE_URL is set. At start it prints a one-time sign-in link to the web playground
(embedded mode; \`replicant open\` makes another).

Options:
  --host HOST              address to listen on (default 127.0.0.1)
  --port PORT              port to listen on (default 5000; 0 picks a free one)
  --data DIR               data directory (default $REPLICANT_HOME or ~/.replicant)
  --public-url URL         base URL put in responses (default http://HOST:PORT)
  --allow-private-urls     let webhooks and input URLs reach loopback and private addresses
                           (also REPLICANT_ALLOW_PRIVATE_URLS=1)
  --durability MODE        normal (safe across a crash, default) or full (also across power loss)
  --cors ORIGINS           comma-separated browser origins allowed to call the API (* for any)
  --concurrency N          predictions this process runs at once (default 32)
  --log-level LEVEL        fatal, error, warn, info, debug or silent (default warn)
  --rate-limit C,O|off     prediction creates and other requests a minute per account and API
                           process (default 600,3000)
  --body-limit BYTES       largest JSON request body (default 1048576)
  --json-max-depth N       deepest nesting of arrays and objects in a JSON body (default 64)
  --file-size-limit BYTES  largest uploaded file (default 104857600)
  --file-outputs MODE      auto (data URIs for small files on plain http, default) or url
  --sandbox MODE           how pushed bundles run: auto (bubblewrap where it works, else process;
                           default), bwrap, process (own user when root, limits) or none (with
                           the server's rights; only for code you trust). See docs/security.md
  --runner-memory MB       memory limit of each pushed bundle's runner process (default 2048)
  --runner-pids N          processes and threads of each such runner (default 256)
  --runner-cpus N          CPU cores' worth of time each such runner may use (default unlimited)
  --allow-push-from-all    let every account push models (default: the default account and the
                           accounts it granted push with \`replicant grant USERNAME push\`)
  --headers-timeout MS     close a connection whose request headers take longer (default 10000)
  --request-timeout MS     close a request (headers and body) that takes longer to arrive; responses
                           are not bounded (default 300000)
  --body-drip-floor B,MS|off
                           close a request body that delivers fewer than B bytes in MS (default
                           16384,10000)
  --stream-max-lag BYTES   end the SSE stream of a client this far behind with a reconnect event
                           (it resumes with Last-Event-ID; default 1048576)
  --stream-max-stall MS    likewise for a client whose socket has not drained for this long
                           (default 30000)
  --role ROLE              scale-out only: api (HTTP API, no predictions run here), worker (runs
                           predictions, webhooks and housekeeping; serves only GET /health on
                           --port) or all (both, default)

Environment:
  REPLICANT_ADMIN_TOKEN    bearer token of the default account; without it one is generated on
                           first start, stored in DIR/admin-token (mode 0600) and printed once

Scale-out environment (all processes of a deployment set the same values; see docs/deploy.md):
  REPLICANT_DATABASE_URL   postgres://user:password@host:5432/db (turns scale-out mode on)
  REPLICANT_REDIS_URL      redis://host:6379 (queue, events)
  REPLICANT_REDIS_PREFIX   prefix of every Redis key and channel (default replicant)
  REPLICANT_S3_BUCKET      bucket for uploaded files and file outputs
  REPLICANT_S3_ENDPOINT    endpoint of an S3-compatible store (omit for AWS S3)
  REPLICANT_S3_REGION      region (default AWS_REGION or us-east-1)
  REPLICANT_S3_ACCESS_KEY, REPLICANT_S3_SECRET_KEY
                           credentials (or AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, or the AWS
                           SDK's default chain)
  REPLICANT_S3_KEY_PREFIX  prefix of every object key
  REPLICANT_S3_CREATE_BUCKET=1  create the bucket at start if missing (development)
  REPLICANT_SIGNING_KEY    hex key signing file and stream URLs; required with --role api or
                           worker, since every process must verify what another signed
  REPLICANT_QUEUE_LOCK_MS  a crashed worker's prediction fails this long after its last lock
                           renewal (default 30000)
  REPLICANT_RECONCILE_INTERVAL_MS  how often workers look for accepted predictions missing from
                           the queue, e.g. after a Redis restart (default 15000)
  REPLICANT_DATABASE_POOL_SIZE     PostgreSQL connections per process (default 10)

Example:
  REPLICANT_ADMIN_TOKEN=r8_dev replicant serve --port 5000 --data ./data
  REPLICANT_DATABASE_URL=postgres://replicant@db/replicant REPLICANT_REDIS_URL=redis://cache:6379 \
    REPLICANT_S3_BUCKET=replicant REPLICANT_SIGNING_KEY=… replicant serve --role api --port 5000
`;

export function defaultDataDir(): string {
  return process.env.REPLICANT_HOME ?? join(homedir(), ".replicant");
}

/** The flags; a malformed one is a one-line error (parseArgs explains some over three lines). */
function parseServeArgs(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: {
        host: { type: "string", default: "127.0.0.1" },
        port: { type: "string", default: "5000" },
        data: { type: "string" },
        "public-url": { type: "string" },
        "allow-private-urls": { type: "boolean", default: false },
        durability: { type: "string", default: "normal" },
        cors: { type: "string" },
        "log-level": { type: "string", default: "warn" },
        concurrency: { type: "string", default: "32" },
        role: { type: "string", default: "all" },
        "rate-limit": { type: "string" },
        "body-limit": { type: "string" },
        "json-max-depth": { type: "string" },
        "file-size-limit": { type: "string" },
        "file-outputs": { type: "string" },
        sandbox: { type: "string", default: "auto" },
        "runner-memory": { type: "string", default: "2048" },
        "runner-pids": { type: "string", default: "256" },
        "runner-cpus": { type: "string" },
        "allow-push-from-all": { type: "boolean", default: false },
        "headers-timeout": { type: "string" },
        "request-timeout": { type: "string" },
        "body-drip-floor": { type: "string" },
        "stream-max-lag": { type: "string" },
        "stream-max-stall": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    });
  } catch (error) {
    throw new Error(String((error as Error).message).split("\n")[0]);
  }
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseServeArgs(argv);
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be 0–65535, got ${values.port}`);
  if (values.durability !== "normal" && values.durability !== "full")
    throw new Error("--durability must be normal or full");
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new Error(`--concurrency must be a positive integer`);
  const levels = ["fatal", "error", "warn", "info", "debug", "silent"] as const;
  const logLevel = levels.find((l) => l === values["log-level"]);
  if (!logLevel) throw new Error(`--log-level must be one of ${levels.join(", ")}`);
  const roles = ["api", "worker", "all"] as const;
  const role = roles.find((r) => r === values.role);
  if (!role) throw new Error("--role must be api, worker or all");
  /** A flag's positive whole number (`what` names its unit in the error), or undefined when not given. */
  const positiveInteger = (name: string, raw: string | undefined, what = "integer"): number | undefined => {
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive ${what}`);
    return value;
  };
  const bytes = (name: string, raw: string | undefined) => positiveInteger(name, raw, "number of bytes");
  const millis = (name: string, raw: string | undefined) =>
    positiveInteger(name, raw, "number of milliseconds");
  const bodyLimit = bytes("body-limit", values["body-limit"]);
  const fileSizeLimit = bytes("file-size-limit", values["file-size-limit"]);
  const jsonMaxDepth = positiveInteger("json-max-depth", values["json-max-depth"]);
  const headersTimeoutMs = millis("headers-timeout", values["headers-timeout"]);
  const requestTimeoutMs = millis("request-timeout", values["request-timeout"]);
  if ((requestTimeoutMs ?? 300_000) < (headersTimeoutMs ?? 10_000))
    throw new Error("--request-timeout must be at least --headers-timeout");
  const streamMaxLagBytes = bytes("stream-max-lag", values["stream-max-lag"]);
  const streamMaxStallMs = millis("stream-max-stall", values["stream-max-stall"]);
  const dripText = values["body-drip-floor"];
  const drip = dripText?.split(",").map(Number);
  if (
    drip !== undefined &&
    dripText !== "off" &&
    !(drip.length === 2 && drip.every((n) => Number.isInteger(n) && n > 0))
  )
    throw new Error("--body-drip-floor must be off or BYTES,MS");
  const fileOutputs = values["file-outputs"];
  if (fileOutputs !== undefined && fileOutputs !== "auto" && fileOutputs !== "url")
    throw new Error("--file-outputs must be auto or url");
  const limits = values["rate-limit"]?.split(",").map(Number);
  if (
    limits !== undefined &&
    values["rate-limit"] !== "off" &&
    !(limits.length === 2 && limits.every((n) => Number.isInteger(n) && n > 0))
  )
    throw new Error("--rate-limit must be off or CREATES,OTHER (requests a minute)");
  const sandboxes = ["auto", "bwrap", "process", "none"] as const;
  const sandbox = sandboxes.find((m) => m === values.sandbox);
  if (!sandbox) throw new Error("--sandbox must be auto, bwrap, process or none");
  const cpus = values["runner-cpus"] === undefined ? undefined : Number(values["runner-cpus"]);
  if (cpus !== undefined && !(cpus > 0 && Number.isFinite(cpus)))
    throw new Error("--runner-cpus must be a positive number");
  const runnerLimits = {
    memoryMb: positiveInteger("runner-memory", values["runner-memory"]) ?? 2048,
    pids: positiveInteger("runner-pids", values["runner-pids"]) ?? 256,
    ...(cpus !== undefined ? { cpus } : {}),
  };
  const scaleOut = scaleOutConfigFromEnv(process.env);
  const signingKey = process.env.REPLICANT_SIGNING_KEY || undefined;
  if (scaleOut === undefined && role !== "all")
    throw new Error(
      `--role ${role} needs the scale-out backends (REPLICANT_DATABASE_URL and the rest): an embedded server is one process`,
    );
  if (signingKey !== undefined && !/^(?:[0-9a-fA-F]{2}){16,}$/.test(signingKey))
    throw new Error("REPLICANT_SIGNING_KEY must be at least 16 bytes of hex");
  if (scaleOut !== undefined && role !== "all" && signingKey === undefined)
    throw new Error(`--role ${role} needs REPLICANT_SIGNING_KEY, shared by every process of the deployment`);
  if (role === "worker" && values["public-url"] === undefined)
    throw new Error("--role worker needs --public-url: the API's address, put in file and stream URLs");
  const config = defaultConfig({
    dataDir: values.data ?? defaultDataDir(),
    host: values.host,
    port,
    publicUrl: values["public-url"],
    adminToken: process.env.REPLICANT_ADMIN_TOKEN || undefined,
    allowPrivateUrls: values["allow-private-urls"] || process.env.REPLICANT_ALLOW_PRIVATE_URLS === "1",
    durability: values.durability,
    corsOrigins: values.cors ? values.cors.split(",").map((o) => o.trim()) : [],
    logLevel,
    workerConcurrency: concurrency,
    worker: role !== "api",
    role,
    scaleOut,
    signingKey,
    sandbox,
    runnerLimits,
    allowPushFromAll: values["allow-push-from-all"],
    ...(bodyLimit !== undefined ? { bodyLimit } : {}),
    ...(fileSizeLimit !== undefined ? { fileSizeLimit } : {}),
    ...(jsonMaxDepth !== undefined ? { jsonMaxDepth } : {}),
    ...(fileOutputs !== undefined ? { fileOutputs } : {}),
    ...(headersTimeoutMs !== undefined ? { headersTimeoutMs } : {}),
    ...(requestTimeoutMs !== undefined ? { requestTimeoutMs } : {}),
    ...(streamMaxLagBytes !== undefined ? { streamMaxLagBytes } : {}),
    ...(streamMaxStallMs !== undefined ? { streamMaxStallMs } : {}),
    ...(dripText === "off"
      ? { bodyDripFloor: false as const }
      : drip !== undefined
        ? { bodyDripFloor: { bytes: drip[0] ?? 0, windowMs: drip[1] ?? 0 } }
        : {}),
    ...(values["rate-limit"] === "off"
      ? { rateLimit: false as const }
      : limits !== undefined
        ? {
            rateLimit: { predictionCreatesPerMinute: limits[0] ?? 0, otherRequestsPerMinute: limits[1] ?? 0 },
          }
        : {}),
  });
  if (scaleOut !== undefined)
    process.stdout.write(`Scale-out mode (${role}): ${describeScaleOut(scaleOut)}\n`);
  const server = await ReplicantServer.create(config);
  if (role === "worker") return runWorker(server, config);
  const url = await server.listen();
  // Tells `replicant` commands with no token to use this server rather than open its database themselves.
  await writeServerFile(config.dataDir, url);
  const bound = server.app.server.address();
  const local =
    typeof bound === "object" && bound !== null
      ? `http://${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}`
      : url;
  // Behind a load balancer (--public-url) the address it listens on is not the public one: print both.
  const where =
    local === url
      ? `${url} (data in ${config.dataDir})`
      : `${local} (public URL ${url}; data in ${config.dataDir})`;
  process.stdout.write(`Replicant is listening on ${where}\n`);
  if (server.adminTokenGenerated) {
    process.stdout.write(
      `Your API token (shown once; also in ${join(config.dataDir, "admin-token")}):\n  ${server.adminToken}\n`,
    );
  }
  const link = server.createLoginLink();
  if (link !== undefined) {
    // Listening on every address: the link names this machine's loopback, which a local browser reaches.
    const local = link.replace(/^http:\/\/(?:0\.0\.0\.0|\[::\])(?=[:/])/, (m) =>
      m.includes("[") ? "http://[::1]" : "http://127.0.0.1",
    );
    process.stdout.write(
      `Open the web playground, signed in (valid once, for ${LOGIN_LINK_TTL_MS / 60_000} minutes; \`replicant open\` makes another):\n  ${local}\n`,
    );
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await removeServerFile(config.dataDir);
  await server.close();
  return 0;
}

/** A worker process: the director, webhooks and housekeeping, and only GET /health over HTTP. */
async function runWorker(server: ReplicantServer, config: ServerConfig): Promise<number> {
  await server.startWorkers();
  const health = createServer((request, response) => {
    const ok = request.method === "GET" && request.url?.split("?")[0] === "/health";
    response.writeHead(ok ? 200 : 404, { "content-type": "application/json" });
    response.end(JSON.stringify(ok ? { status: "ok", role: "worker" } : { status: 404 }));
  });
  await new Promise<void>((resolve, reject) => {
    health.once("error", reject);
    health.listen(config.port, config.host, () => resolve());
  });
  const address = health.address();
  const port = typeof address === "object" && address !== null ? address.port : config.port;
  process.stdout.write(`Replicant worker is running (health on http://${config.host}:${port}/health)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  health.closeAllConnections();
  await new Promise<void>((resolve) => health.close(() => resolve()));
  await server.close();
  return 0;
}
