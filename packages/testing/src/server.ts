import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultConfig, ReplicantServer, type ServerConfig } from "@replicant/server";

export interface TestServer {
  /** Base URL without `/v1`, e.g. http://127.0.0.1:43123 */
  url: string;
  /** Base URL with `/v1`, what the official clients call `baseUrl`. */
  apiUrl: string;
  /** Bearer token of the default account. */
  token: string;
  /** "embedded": one server in this process; "cluster": child processes (REPLICANT_TEST_BACKEND=cluster). */
  backend?: "embedded" | "cluster";
  /** The in-process server; throws in cluster mode (see inProcessOnly). */
  server: ReplicantServer;
  /** The in-process server's data directory; throws in cluster mode (see inProcessOnly). */
  dataDir: string;
  close(): Promise<void>;
}

/** Which server startTestServer starts: REPLICANT_TEST_BACKEND=cluster runs the suites against a scale-out cluster. */
export const TEST_BACKEND: "embedded" | "cluster" =
  process.env.REPLICANT_TEST_BACKEND === "cluster" ? "cluster" : "embedded";

/**
 * Test options for a case that reaches into the in-process server (`server.server`, `server.dataDir`):
 * `it("…", inProcessOnly("why"), fn)` skips it, with that reason, when the suite runs against a cluster.
 */
export function inProcessOnly(why: string): { skip: string | false } {
  return { skip: TEST_BACKEND === "cluster" ? `in-process server only (cluster mode): ${why}` : false };
}

/**
 * Starts a real Replicant server on 127.0.0.1 port 0 with a fresh data directory (removed on close).
 * Private URLs are allowed (test receivers live on loopback) and rate limits are off unless given.
 *
 * With REPLICANT_TEST_BACKEND=cluster it starts a scale-out cluster instead (startTestCluster: 2 API
 * and 2 worker processes on PostgreSQL, Redis and s3rver behind a round-robin proxy), passing the
 * overrides that `replicant serve` supports as flags; any other override is an error.
 */
export async function startTestServer(overrides: Partial<ServerConfig> = {}): Promise<TestServer> {
  if (TEST_BACKEND === "cluster") return startClusterFor(overrides);
  const dataDir = overrides.dataDir ?? (await mkdtemp(join(tmpdir(), "replicant-test-")));
  const config = defaultConfig({
    port: 0,
    logLevel: "silent",
    allowPrivateUrls: true,
    rateLimit: false,
    ...overrides,
    dataDir,
  });
  const server = await ReplicantServer.create(config);
  const url = await server.listen();
  return {
    url,
    apiUrl: `${url}/v1`,
    token: server.adminToken,
    backend: "embedded",
    server,
    dataDir,
    async close() {
      await server.close();
      if (!overrides.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function startClusterFor(overrides: Partial<ServerConfig>): Promise<TestServer> {
  const { startTestCluster } = await import("./cluster.js");
  const args: string[] = [];
  const {
    rateLimit = false,
    bodyLimit,
    fileSizeLimit,
    fileOutputs,
    workerConcurrency,
    sandbox,
    jsonMaxDepth,
    ...rest
  } = overrides;
  const {
    allowPrivateUrls,
    adminToken,
    logLevel: _logLevel,
    port: _port,
    host: _host,
    ...unsupported
  } = rest;
  const names = Object.keys(unsupported);
  if (names.length > 0)
    throw new Error(`startTestServer: ${names.join(", ")} cannot be set with REPLICANT_TEST_BACKEND=cluster`);
  args.push(
    "--rate-limit",
    rateLimit ? `${rateLimit.predictionCreatesPerMinute},${rateLimit.otherRequestsPerMinute}` : "off",
  );
  if (bodyLimit !== undefined) args.push("--body-limit", String(bodyLimit));
  if (fileSizeLimit !== undefined) args.push("--file-size-limit", String(fileSizeLimit));
  if (jsonMaxDepth !== undefined) args.push("--json-max-depth", String(jsonMaxDepth));
  if (fileOutputs !== undefined) args.push("--file-outputs", fileOutputs);
  if (sandbox !== undefined) args.push("--sandbox", sandbox);
  // workerConcurrency is what the whole deployment runs at once: split over the two workers, or one
  // worker when it is 1 (a test relying on a prediction staying queued behind another).
  const concurrency = workerConcurrency ?? 64;
  return startTestCluster({
    workers: concurrency >= 2 ? 2 : 1,
    workerConcurrency: Math.max(1, Math.floor(concurrency / 2)),
    apiArgs: args,
    workerArgs: args,
    ...(allowPrivateUrls !== undefined ? { allowPrivateUrls } : {}),
    ...(adminToken !== undefined ? { adminToken } : {}),
  });
}
