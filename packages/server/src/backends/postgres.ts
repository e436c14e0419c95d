import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { ProblemError } from "../errors.js";
import { type Database, KyselyStore } from "./kysely-store.js";

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` */
  connectionString: string;
  /** Connections in this process's pool. Default 10. */
  poolSize?: number;
  /** Give up connecting after this long (then the API answers 503). Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Server-side statement_timeout and client-side query timeout. Default 30 000 ms. */
  statementTimeoutMs?: number;
  /** Where durability warnings go. Default console.warn. */
  warn?: (message: string) => void;
}

/** Seconds a client should wait before retrying while the database is unreachable. */
const RETRY_AFTER_SECONDS = "2";

// Connection-level failures: the database is down, restarting, or unreachable. Anything else
// (constraint violations, bad SQL) is a real error and passes through unchanged.
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "57014", // query_canceled (statement_timeout)
]);

export function isDatabaseUnavailable(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (UNAVAILABLE_CODES.has(code) || code.startsWith("08"))) return true;
  const message = error instanceof Error ? error.message : "";
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout|Connection ended unexpectedly/i.test(
    message,
  );
}

function unavailable(error: unknown): ProblemError {
  return Object.assign(
    new ProblemError(
      503,
      "Service Unavailable",
      "The database is unavailable at the moment; retry shortly.",
      { headers: { "retry-after": RETRY_AFTER_SECONDS } },
    ),
    { cause: error },
  );
}

/**
 * Wraps every async method so that a connection-level database failure becomes a 503 problem with
 * Retry-After (the error handler renders ProblemErrors as they are); the pool replaces broken
 * connections by itself, so the API recovers when the database is back.
 */
function withUnavailableAs503<T extends object>(target: T): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== "function" || property === "constructor") return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(object, args);
        if (result instanceof Promise)
          return result.catch((error: unknown) => {
            throw isDatabaseUnavailable(error) ? unavailable(error) : error;
          });
        return result;
      };
    },
  });
}

/** Reads durability settings; commits must reach disk before we acknowledge a prediction. */
async function checkDurability(pool: pg.Pool, warn: (message: string) => void): Promise<void> {
  const { rows } = await pool.query<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync')",
  );
  for (const name of ["synchronous_commit", "fsync"]) {
    const setting = rows.find((row) => row.name === name)?.setting;
    if (setting !== "on")
      warn(
        `PostgreSQL ${name} is ${setting ?? "unknown"}, not on: an acknowledged prediction may be lost if the database server crashes`,
      );
  }
}

export interface OpenPostgres {
  pool: pg.Pool;
  kysely: Kysely<Database>;
}

export function openPostgres(options: PostgresStoreOptions): OpenPostgres {
  const statementTimeout = options.statementTimeoutMs ?? 30_000;
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    statement_timeout: statementTimeout,
    // A blackholed connection must not hang a request: the client gives up a little after the server would.
    query_timeout: statementTimeout + 1000,
    keepAlive: true,
    application_name: "replicant",
  });
  // An idle client whose connection dies emits here; without a listener the process would crash.
  pool.on("error", () => undefined);
  // A checked-out client between queries has no listener either: a dropped connection would crash
  // the process instead of failing the next query (which the pool then replaces).
  pool.on("connect", (client) => {
    client.on("error", () => undefined);
  });
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { pool, kysely };
}

/**
 * A migrated Store on PostgreSQL: the same Kysely code as the embedded store, with the PostgreSQL
 * dialect. Connection failures surface as 503 problems. Closing it ends the pool.
 */
export async function createPostgresStore(options: PostgresStoreOptions): Promise<KyselyStore> {
  const { pool, kysely } = openPostgres(options);
  const store = new KyselyStore(kysely, { dialect: "postgres" });
  try {
    await checkDurability(pool, options.warn ?? ((message) => console.warn(`warning: ${message}`)));
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  return withUnavailableAs503(store);
}

/**
 * Holds a PostgreSQL advisory lock on a connection of its own until the returned function is called
 * (or the process dies). Processes starting at once take turns through their bootstrap (default
 * account, admin token, built-in models), which reads then inserts.
 */
export async function acquireStartupLock(connectionString: string): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString, application_name: "replicant-startup" });
  client.on("error", () => undefined);
  await client.connect();
  try {
    await client.query("SELECT pg_advisory_lock(7262680368)");
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await client.query("SELECT pg_advisory_unlock(7262680368)").catch(() => undefined);
    await client.end().catch(() => undefined);
  };
}
