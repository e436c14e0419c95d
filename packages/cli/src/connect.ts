import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Replicant } from "@replicant/sdk";
import { readCredentials } from "./credentials.js";
import { CliError, EXIT } from "./errors.js";
import type { CliIo } from "./io.js";
import { DEFAULT_BASE_URL, normalizeBaseUrl, replicantHome } from "./paths.js";
import { findRunningServer, removeServerFile, writeServerFile } from "./server-file.js";

export const CLI_USER_AGENT = "replicant-cli/0.1.0";

export type ConnectionSource = "env" | "login" | "local-server" | "embedded";

/** An SDK client and where it points. `close()` stops the embedded server when there is one. */
export interface Connection {
  client: Replicant;
  baseUrl: string;
  token: string;
  source: ConnectionSource;
  close(): Promise<void>;
}

/**
 * Finds the API to talk to, in order: REPLICATE_API_TOKEN (with REPLICATE_BASE_URL or Replicate's cloud);
 * REPLICATE_BASE_URL with a token saved by `replicant login`; the host of the last login; a `replicant serve`
 * running on $REPLICANT_HOME; else the embedded default, a server in this process on $REPLICANT_HOME.
 */
export interface ConnectOptions {
  /**
   * Where the embedded default would start, refuse instead with this message (a command whose result
   * must outlive it: an in-process server stops when the command exits).
   */
  embedded?: string;
}

export async function connect(io: CliIo, options: ConnectOptions = {}): Promise<Connection> {
  const env = io.env;
  const home = replicantHome(env);
  const envToken = env.REPLICATE_API_TOKEN;
  const envBase = env.REPLICATE_BASE_URL ? normalizeBaseUrl(env.REPLICATE_BASE_URL) : undefined;
  if (envToken) return remote(envBase ?? DEFAULT_BASE_URL, envToken, "env");

  const credentials = await readCredentials(home);
  if (envBase) {
    const saved = credentials.hosts[envBase];
    if (!saved) {
      throw new CliError(
        `no token for ${envBase}: run \`replicant login ${envBase}\` or set REPLICATE_API_TOKEN`,
        EXIT.auth,
      );
    }
    return remote(envBase, saved.token, "login");
  }
  const defaultHost = credentials.default;
  const saved = defaultHost ? credentials.hosts[defaultHost] : undefined;
  if (defaultHost && saved) return remote(defaultHost, saved.token, "login");

  const running = await findRunningServer(home);
  if (running) {
    const token = env.REPLICANT_ADMIN_TOKEN || (await readAdminToken(home));
    if (!token) {
      throw new CliError(
        `a replicant serve is running on ${home} (${running.url}) but its token is unknown: set REPLICANT_ADMIN_TOKEN or REPLICATE_API_TOKEN`,
        EXIT.auth,
      );
    }
    io.stderr.write(
      `replicant: no REPLICATE_API_TOKEN or login, so using the local server at ${running.url} (data in ${home})\n`,
    );
    return remote(`${running.url.replace(/\/+$/, "")}/v1`, token, "local-server");
  }
  if (options.embedded !== undefined) throw new CliError(options.embedded, EXIT.failed);
  return embedded(io, home);
}

async function remote(baseUrl: string, token: string, source: ConnectionSource): Promise<Connection> {
  const { Replicant } = await import("@replicant/sdk");
  const client = new Replicant({ auth: token, baseUrl, userAgent: CLI_USER_AGENT });
  return { client, baseUrl, token, source, close: async () => undefined };
}

async function readAdminToken(home: string): Promise<string | undefined> {
  try {
    return (await readFile(join(home, "admin-token"), "utf8")).trim() || undefined;
  } catch {
    return undefined;
  }
}

async function embedded(io: CliIo, dataDir: string): Promise<Connection> {
  io.stderr.write(
    `replicant: no REPLICATE_API_TOKEN or login, so running on the embedded default (data in ${dataDir}); ` +
      "use `replicant login` or REPLICATE_API_TOKEN for another server\n",
  );
  const { mkdir } = await import("node:fs/promises");
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const { defaultConfig, ReplicantServer } = await import("@replicant/server");
  const server = await ReplicantServer.create(
    defaultConfig({
      dataDir,
      port: 0,
      logLevel: "silent",
      adminToken: io.env.REPLICANT_ADMIN_TOKEN || undefined,
      // Only this user's own process talks to it; let webhooks reach local receivers.
      allowPrivateUrls: true,
      rateLimit: false,
    }),
  );
  const url = await server.listen();
  // Other replicant commands started meanwhile connect here instead of opening the database a second time.
  await writeServerFile(dataDir, url);
  const connection = await remote(`${url}/v1`, server.adminToken, "embedded");
  return {
    ...connection,
    close: async () => {
      await removeServerFile(dataDir);
      await server.close();
    },
  };
}

/** Connects, runs `body`, and closes (the embedded default stops its server). */
export async function withConnection(
  io: CliIo,
  body: (connection: Connection) => Promise<number>,
  options: ConnectOptions = {},
): Promise<number> {
  const connection = await connect(io, options);
  try {
    return await body(connection);
  } finally {
    await connection.close();
  }
}
