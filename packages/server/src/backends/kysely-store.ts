import { isTerminal } from "@replicant/protocol";
import type BetterSqlite3 from "better-sqlite3";
import { CompiledQuery, type Kysely, type RawBuilder, sql } from "kysely";
import { FinishedRecordCache } from "./finished-record-cache.js";
import { GroupCommitter } from "./group-commit.js";
import type {
  AccountPermission,
  AccountRecord,
  CollectionRecord,
  DeploymentRecord,
  FileRecord,
  IdempotencyRecord,
  ModelListFilter,
  ModelRecord,
  OutboxInsert,
  OutboxRecord,
  PageRequest,
  PageResult,
  PredictionFence,
  PredictionListFilter,
  PredictionPatch,
  PredictionRecord,
  ReleaseRecord,
  Store,
  TokenRecord,
  VersionRecord,
} from "./types.js";

// ---------------------------------------------------------------------------------------------
// Schema as stored: JSON columns are TEXT, booleans are INTEGER on SQLite and BOOLEAN on PostgreSQL.
// ---------------------------------------------------------------------------------------------

type StoredBool = number | boolean;
type Json = string | null;

export interface AccountsTable {
  id: string;
  username: string;
  type: string;
  name: string | null;
  github_url: string | null;
  avatar_url: string | null;
  webhook_secret: string;
  created_at: string;
}

export interface TokensTable {
  hash: string;
  account_id: string;
  prefix: string;
  name: string | null;
  created_at: string;
}

export interface AccountGrantsTable {
  account_id: string;
  permission: string;
  granted_at: string;
}

export interface ModelsTable {
  id: string;
  owner_account_id: string;
  owner: string;
  name: string;
  description: string | null;
  visibility: string;
  hardware: string;
  github_url: string | null;
  paper_url: string | null;
  license_url: string | null;
  cover_image_url: string | null;
  weights_url: string | null;
  readme: string | null;
  run_count: number;
  is_official: StoredBool;
  latest_version_id: string | null;
  latest_version_created_at: string | null;
  default_example_id: string | null;
  created_at: string;
}

export interface VersionsTable {
  id: string;
  model_id: string;
  openapi_schema: string;
  cog_version: string | null;
  runner: string;
  training_schema: Json;
  created_at: string;
}

export interface PredictionsTable {
  id: string;
  kind: string;
  account_id: string;
  model: string;
  version_id: string;
  version_label: string;
  deployment: string | null;
  destination: string | null;
  input: Json;
  output: Json;
  logs: string;
  error: string | null;
  status: string;
  source: string;
  data_removed: StoredBool;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  deadline: string | null;
  metrics: Json;
  webhook: string | null;
  webhook_events_filter: Json;
  attempt: number;
  streaming: StoredBool;
}

export interface DeploymentsTable {
  id: string;
  owner_account_id: string;
  owner: string;
  name: string;
  created_at: string;
}

export interface ReleasesTable {
  deployment_id: string;
  number: number;
  model: string;
  version_id: string;
  hardware: string;
  min_instances: number;
  max_instances: number;
  created_by_account_id: string;
  created_at: string;
}

export interface FilesTable {
  id: string;
  account_id: string;
  name: string;
  content_type: string;
  size: number;
  sha256: string;
  metadata: string;
  blob_key: string;
  created_at: string;
  expires_at: string | null;
}

export interface CollectionsTable {
  slug: string;
  name: string;
  description: string;
  full_description: string | null;
}

export interface CollectionModelsTable {
  collection_slug: string;
  model_id: string;
  position: number;
}

export interface OutboxTable {
  id: string;
  prediction_id: string;
  account_id: string;
  event: string;
  webhook_id: string;
  url: string;
  body: string;
  attempts: number;
  next_attempt_at: string;
  status: string;
  last_error: string | null;
  created_at: string;
}

export interface IdempotencyTable {
  account_id: string;
  key: string;
  request_hash: string;
  prediction_id: string;
  created_at: string;
}

export interface MigrationsTable {
  version: number;
  applied_at: string;
}

export interface Database {
  accounts: AccountsTable;
  tokens: TokensTable;
  account_grants: AccountGrantsTable;
  models: ModelsTable;
  versions: VersionsTable;
  predictions: PredictionsTable;
  deployments: DeploymentsTable;
  releases: ReleasesTable;
  files: FilesTable;
  collections: CollectionsTable;
  collection_models: CollectionModelsTable;
  outbox: OutboxTable;
  idempotency: IdempotencyTable;
  replicant_migrations: MigrationsTable;
}

export type StoreDialect = "sqlite" | "postgres";

export interface KyselyStoreOptions {
  dialect: StoreDialect;
  /**
   * On SQLite, the better-sqlite3 handle behind the Kysely instance. When given, queries run on it
   * directly as cached prepared statements and transactions run synchronously (nothing can interleave
   * with them); Kysely still builds every query. Without it, everything goes through Kysely.
   */
  sqlite?: BetterSqlite3.Database;
  /** Runs before the connection closes (the SQLite checkpoint thread stops here). */
  beforeClose?: () => Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Execution: one path for raw better-sqlite3, one for any Kysely driver (PostgreSQL).
// ---------------------------------------------------------------------------------------------

interface Query {
  readonly sql: string;
  readonly parameters: readonly unknown[];
}

interface Executed {
  rows: Record<string, unknown>[];
  changes: number;
}

/** A transaction body: yields queries, receives their results. Runs synchronously on raw SQLite. */
type TxBody<T> = () => Generator<Query, T, Executed>;

interface Executor {
  run(query: Query): Promise<Executed>;
  first(query: Query): Promise<Record<string, unknown> | undefined>;
  /** A read's first row as a record, when the executor can build it faster than first() + fromRow. */
  firstRecord?<T>(query: Query, kinds: ColumnKinds): T | undefined | null;
  transaction<T>(body: TxBody<T>): Promise<T>;
}

const MAX_CACHED_STATEMENTS = 1000;

/** A read statement in raw mode (rows as arrays), with what it takes to turn a row into a record. */
interface RawRead {
  statement: BetterSqlite3.Statement;
  kinds: ColumnKinds;
  /** Builds the record from the row's values in one object literal (made once per statement). */
  build: (values: unknown[]) => Record<string, unknown>;
}

/**
 * A function that turns a raw row into its record with one object literal: every record of a statement
 * gets the same shape at once, where adding columns one by one costs a shape transition per column.
 */
function rowBuilder(columns: string[], codes: number[]): (values: unknown[]) => Record<string, unknown> {
  const fields = columns.map((name, i) => {
    const value = `values[${i}]`;
    const code = codes[i];
    const converted = code === 0 ? value : `fromStored(${code}, ${value})`;
    return `${JSON.stringify(name)}: ${converted}`;
  });
  // Column names come from SQLite's own statement metadata and are quoted by JSON.stringify.
  const make = new Function("fromStored", `return (values) => ({ ${fields.join(", ")} });`) as (
    convert: typeof fromStored,
  ) => (values: unknown[]) => Record<string, unknown>;
  return make(fromStored);
}

/**
 * better-sqlite3 directly. Reads run at once. Writes are group-committed: those issued in the same
 * turn of the event loop run in one IMMEDIATE transaction (each in its own savepoint, so one failing
 * write leaves the others alone) and resolve after its COMMIT. A commit is most of a small write's
 * cost, so under concurrency this multiplies throughput; alone, a write waits one setImmediate.
 */
class RawSqliteExecutor implements Executor {
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  private readonly rawReads = new Map<string, RawRead | null>();
  private readonly committer: GroupCommitter;
  private readonly savepoint: BetterSqlite3.Transaction<<T>(body: TxBody<T>) => T>;

  constructor(private readonly db: BetterSqlite3.Database) {
    this.committer = GroupCommitter.for(db);
    this.savepoint = db.transaction(<T>(body: TxBody<T>): T => {
      const generator = body();
      let step = generator.next();
      while (!step.done) step = generator.next(this.runSync(step.value));
      return step.value;
    });
  }

  private statement(text: string): BetterSqlite3.Statement {
    let statement = this.statements.get(text);
    if (statement === undefined) {
      statement = this.db.prepare(text);
      if (this.statements.size >= MAX_CACHED_STATEMENTS) this.statements.clear();
      this.statements.set(text, statement);
    }
    return statement;
  }

  private runSync(query: Query): Executed {
    const statement = this.statement(query.sql);
    if (statement.reader) {
      const rows = statement.all(query.parameters) as Record<string, unknown>[];
      return { rows, changes: rows.length };
    }
    return { rows: [], changes: statement.run(query.parameters).changes };
  }

  private write<T>(work: () => T): Promise<T> {
    return this.committer.write(work);
  }

  async run(query: Query): Promise<Executed> {
    const statement = this.statement(query.sql);
    // A single statement is atomic on its own: a failing one undoes only itself inside the batch.
    if (statement.readonly) return this.runSync(query);
    return this.write(() => this.runSync(query));
  }

  async first(query: Query): Promise<Record<string, unknown> | undefined> {
    const statement = this.statement(query.sql);
    if (statement.readonly) return statement.get(query.parameters) as Record<string, unknown> | undefined;
    return (await this.run(query)).rows[0];
  }

  transaction<T>(body: TxBody<T>): Promise<T> {
    // Nested inside the batch's transaction, this is a savepoint: rolled back alone if the body throws.
    return this.write(() => this.savepoint(body) as T);
  }

  /**
   * The hot reads (a prediction by id on every poll): rows as arrays, converted by a plan made once per
   * statement, cost about a third less than row objects converted key by key. Null when the statement
   * is not a plain read (the caller falls back to first()).
   */
  firstRecord<T>(query: Query, kinds: ColumnKinds): T | undefined | null {
    let read = this.rawReads.get(query.sql);
    if (read === undefined) {
      const statement = this.db.prepare(query.sql);
      if (!statement.readonly || !statement.reader) read = null;
      else {
        statement.raw(true);
        const columns = statement.columns().map((column) => column.name);
        const codes = columns.map((name) => columnCode(kinds, name));
        read = { statement, kinds, build: rowBuilder(columns, codes) };
      }
      if (this.rawReads.size >= MAX_CACHED_STATEMENTS) this.rawReads.clear();
      this.rawReads.set(query.sql, read);
    }
    if (read === null || read.kinds !== kinds) return null;
    const values = read.statement.get(query.parameters) as unknown[] | undefined;
    if (values === undefined) return undefined;
    return read.build(values) as T;
  }
}

class KyselyExecutor implements Executor {
  constructor(private readonly kysely: Kysely<Database>) {}

  private static async execute(kysely: Kysely<Database>, query: Query): Promise<Executed> {
    const result = await kysely.executeQuery<Record<string, unknown>>(
      CompiledQuery.raw(query.sql, [...query.parameters]),
    );
    const changes =
      result.numAffectedRows !== undefined ? Number(result.numAffectedRows) : result.rows.length;
    return { rows: result.rows, changes };
  }

  run(query: Query): Promise<Executed> {
    return KyselyExecutor.execute(this.kysely, query);
  }

  async first(query: Query): Promise<Record<string, unknown> | undefined> {
    return (await this.run(query)).rows[0];
  }

  transaction<T>(body: TxBody<T>): Promise<T> {
    return this.kysely.transaction().execute(async (trx) => {
      const generator = body();
      let step = generator.next();
      while (!step.done) step = generator.next(await KyselyExecutor.execute(trx, step.value));
      return step.value;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Prepared templates: SQL built by Kysely once, with named slots bound per call.
// ---------------------------------------------------------------------------------------------

interface Template {
  sql: string;
  /** The slot name of each positional parameter. */
  names: string[];
}

/** A named parameter slot for a template; compiles to a placeholder whose value is the name. */
function slot<T>(name: string): RawBuilder<T> {
  return sql<T>`${name}`;
}

function template(query: { compile(): CompiledQuery }): Template {
  const compiled = query.compile();
  return { sql: compiled.sql, names: compiled.parameters.map((name) => String(name)) };
}

function bind(t: Template, record: object): Query {
  const values = record as Record<string, unknown>;
  const parameters = new Array<unknown>(t.names.length);
  for (let i = 0; i < t.names.length; i++) parameters[i] = values[t.names[i] as string];
  return { sql: t.sql, parameters };
}

// ---------------------------------------------------------------------------------------------
// Record <-> row conversion
// ---------------------------------------------------------------------------------------------

interface ColumnKinds {
  json: ReadonlySet<string>;
  bool: ReadonlySet<string>;
  int: ReadonlySet<string>;
}

const PREDICTION_COLUMNS = [
  "id",
  "kind",
  "account_id",
  "model",
  "version_id",
  "version_label",
  "deployment",
  "destination",
  "input",
  "output",
  "logs",
  "error",
  "status",
  "source",
  "data_removed",
  "created_at",
  "started_at",
  "completed_at",
  "deadline",
  "metrics",
  "webhook",
  "webhook_events_filter",
  "attempt",
  "streaming",
] as const;

const PATCHABLE_PREDICTION_COLUMNS: ReadonlySet<string> = new Set([
  "output",
  "logs",
  "error",
  "status",
  "started_at",
  "completed_at",
  "metrics",
  "attempt",
  "input",
  "data_removed",
  "version_id",
]);

const OUTBOX_COLUMNS = [
  "id",
  "prediction_id",
  "account_id",
  "event",
  "webhook_id",
  "url",
  "body",
  "attempts",
  "next_attempt_at",
  "status",
  "last_error",
  "created_at",
] as const;

const MODEL_COLUMNS = [
  "id",
  "owner_account_id",
  "owner",
  "name",
  "description",
  "visibility",
  "hardware",
  "github_url",
  "paper_url",
  "license_url",
  "cover_image_url",
  "weights_url",
  "readme",
  "run_count",
  "is_official",
  "latest_version_id",
  "latest_version_created_at",
  "default_example_id",
  "created_at",
] as const;

const UPDATABLE_MODEL_COLUMNS: ReadonlySet<string> = new Set(
  MODEL_COLUMNS.filter((c) => c !== "id" && c !== "owner" && c !== "name" && c !== "owner_account_id"),
);

const NONE: ReadonlySet<string> = new Set();
const PREDICTION_KINDS: ColumnKinds = {
  json: new Set(["input", "output", "metrics", "webhook_events_filter"]),
  bool: new Set(["data_removed", "streaming"]),
  int: new Set(["attempt"]),
};
const MODEL_KINDS: ColumnKinds = { json: NONE, bool: new Set(["is_official"]), int: new Set(["run_count"]) };
const VERSION_KINDS: ColumnKinds = {
  json: new Set(["openapi_schema", "runner", "training_schema"]),
  bool: NONE,
  int: NONE,
};
const FILE_KINDS: ColumnKinds = { json: new Set(["metadata"]), bool: NONE, int: new Set(["size"]) };
const OUTBOX_KINDS: ColumnKinds = { json: NONE, bool: NONE, int: new Set(["attempts"]) };
const RELEASE_KINDS: ColumnKinds = {
  json: NONE,
  bool: NONE,
  int: new Set(["number", "min_instances", "max_instances"]),
};
const PLAIN: ColumnKinds = { json: NONE, bool: NONE, int: NONE };

/** How a column's stored value becomes a record's: 0 as is, 1 JSON, 2 boolean, 3 integer. */
function columnCode(kinds: ColumnKinds, name: string): number {
  return kinds.json.has(name) ? 1 : kinds.bool.has(name) ? 2 : kinds.int.has(name) ? 3 : 0;
}

function fromStored(code: number | undefined, value: unknown): unknown {
  if (code === 1) return value === null || value === undefined ? null : JSON.parse(String(value));
  if (code === 2) return value === true || value === 1 || value === 1n || value === "1";
  if (code === 3) return Number(value);
  return value;
}

function fromRow<T>(kinds: ColumnKinds, row: Record<string, unknown>): T {
  const record: Record<string, unknown> = {};
  for (const key in row) record[key] = fromStored(columnCode(kinds, key), row[key]);
  return record as T;
}

const TERMINAL = ["succeeded", "failed", "canceled", "aborted"] as const;
const UNFINISHED = ["starting", "processing"] as const;

function conflictError(accountId: string, key: string): Error {
  return Object.assign(new Error(`idempotency key already used by account ${accountId}: ${key}`), {
    code: "IDEMPOTENCY_CONFLICT",
  });
}

function invalidCursor(): Error {
  return Object.assign(new Error("invalid pagination cursor"), { code: "INVALID_CURSOR" });
}

function encodeCursor(key: string, id: string): string {
  return Buffer.from(JSON.stringify([key, id]), "utf8").toString("base64url");
}

function decodeCursor(cursor: string | undefined): [string, string] | undefined {
  if (cursor === undefined || cursor === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalidCursor();
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || !isCursorPart(parsed[0]) || !isCursorPart(parsed[1])) {
    throw invalidCursor();
  }
  return [parsed[0], parsed[1]];
}

/**
 * What encodeCursor writes: timestamps, ids and slugs, all printable ASCII. Anything else (a NUL that
 * PostgreSQL refuses in text, a megabyte of junk) is a tampered cursor.
 */
function isCursorPart(value: unknown): value is string {
  return typeof value === "string" && value.length <= 256 && /^[\x20-\x7e]*$/.test(value);
}

/**
 * A LIMIT written into the SQL, not bound: a bound LIMIT makes SQLite (built with STAT4) prepare the
 * statement again at every run. One cached statement per limit; limits are whole numbers up to 1001.
 */
function limitOf(limit: number): RawBuilder<number> {
  return sql.lit(Math.max(0, Math.floor(limit) || 0));
}

function pageLimit(limit: number): number {
  return Math.max(1, Math.min(1000, Math.floor(limit) || 1));
}

/** `(key, id) < (a, b)` for descending pages, `>` for ascending; row values work on SQLite and PostgreSQL. */
function after(
  key: RawBuilder<unknown>,
  direction: "asc" | "desc",
  cursor: [string, string],
): RawBuilder<boolean> {
  return sql<boolean>`(${key}, id) ${sql.raw(direction === "desc" ? "<" : ">")} (${cursor[0]}, ${cursor[1]})`;
}

/** A LIKE pattern matching `text` anywhere, with `!` as the escape character. */
function containsPattern(text: string): string {
  return `%${text.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`)}%`;
}

function containsAny(columns: string[], query: string): RawBuilder<boolean> {
  const pattern = containsPattern(query);
  const parts = columns.map((c) => sql`lower(${sql.ref(c)}) like ${pattern} escape '!'`);
  return sql<boolean>`(${sql.join(parts, sql` or `)})`;
}

// ---------------------------------------------------------------------------------------------
// Migrations
// ---------------------------------------------------------------------------------------------

function migrations(dialect: StoreDialect): string[][] {
  const bool = dialect === "sqlite" ? "INTEGER" : "BOOLEAN";
  const falseValue = dialect === "sqlite" ? "0" : "false";
  return [
    [
      `CREATE TABLE IF NOT EXISTS accounts (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        name TEXT,
        github_url TEXT,
        avatar_url TEXT,
        webhook_secret TEXT NOT NULL,
        created_at TEXT NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS tokens (
        hash TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        prefix TEXT NOT NULL,
        name TEXT,
        created_at TEXT NOT NULL)`,
      "CREATE INDEX IF NOT EXISTS tokens_account ON tokens (account_id, created_at)",
      `CREATE TABLE IF NOT EXISTS models (
        id TEXT PRIMARY KEY,
        owner_account_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        visibility TEXT NOT NULL,
        hardware TEXT NOT NULL,
        github_url TEXT,
        paper_url TEXT,
        license_url TEXT,
        cover_image_url TEXT,
        weights_url TEXT,
        readme TEXT,
        run_count BIGINT NOT NULL DEFAULT 0,
        is_official ${bool} NOT NULL DEFAULT ${falseValue},
        latest_version_id TEXT,
        latest_version_created_at TEXT,
        default_example_id TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (owner, name))`,
      "CREATE INDEX IF NOT EXISTS models_created ON models (created_at, id)",
      "CREATE INDEX IF NOT EXISTS models_owner_account ON models (owner_account_id)",
      `CREATE TABLE IF NOT EXISTS versions (
        id TEXT PRIMARY KEY,
        model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
        openapi_schema TEXT NOT NULL,
        cog_version TEXT,
        runner TEXT NOT NULL,
        training_schema TEXT,
        created_at TEXT NOT NULL)`,
      "CREATE INDEX IF NOT EXISTS versions_model ON versions (model_id, created_at, id)",
      `CREATE TABLE IF NOT EXISTS predictions (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        account_id TEXT NOT NULL,
        model TEXT NOT NULL,
        version_id TEXT NOT NULL,
        version_label TEXT NOT NULL,
        deployment TEXT,
        destination TEXT,
        input TEXT,
        output TEXT,
        logs TEXT NOT NULL,
        error TEXT,
        status TEXT NOT NULL,
        source TEXT NOT NULL,
        data_removed ${bool} NOT NULL,
        created_at TEXT NOT NULL,
        started_at TEXT,
        completed_at TEXT,
        deadline TEXT,
        metrics TEXT,
        webhook TEXT,
        webhook_events_filter TEXT,
        attempt INTEGER NOT NULL,
        streaming ${bool} NOT NULL)`,
      "CREATE INDEX IF NOT EXISTS predictions_list ON predictions (account_id, kind, created_at, id)",
      "CREATE INDEX IF NOT EXISTS predictions_version ON predictions (version_id)",
      // Partial indexes stay small: only live rows, and only rows whose data is still there.
      `CREATE INDEX IF NOT EXISTS predictions_unfinished ON predictions (created_at, id)
        WHERE status IN ('starting', 'processing')`,
      `CREATE INDEX IF NOT EXISTS predictions_retention ON predictions (completed_at, id)
        WHERE data_removed = ${falseValue}`,
      `CREATE TABLE IF NOT EXISTS deployments (
        id TEXT PRIMARY KEY,
        owner_account_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (owner, name))`,
      "CREATE INDEX IF NOT EXISTS deployments_account ON deployments (owner_account_id, created_at, id)",
      `CREATE TABLE IF NOT EXISTS releases (
        deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        model TEXT NOT NULL,
        version_id TEXT NOT NULL,
        hardware TEXT NOT NULL,
        min_instances INTEGER NOT NULL,
        max_instances INTEGER NOT NULL,
        created_by_account_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (deployment_id, number))`,
      "CREATE INDEX IF NOT EXISTS releases_version ON releases (version_id)",
      `CREATE TABLE IF NOT EXISTS files (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        name TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        metadata TEXT NOT NULL,
        blob_key TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT)`,
      "CREATE INDEX IF NOT EXISTS files_account ON files (account_id, created_at, id)",
      "CREATE INDEX IF NOT EXISTS files_expiry ON files (expires_at) WHERE expires_at IS NOT NULL",
      `CREATE TABLE IF NOT EXISTS collections (
        slug TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        full_description TEXT)`,
      `CREATE TABLE IF NOT EXISTS collection_models (
        collection_slug TEXT NOT NULL REFERENCES collections(slug) ON DELETE CASCADE,
        model_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (collection_slug, model_id))`,
      "CREATE INDEX IF NOT EXISTS collection_models_model ON collection_models (model_id)",
      `CREATE TABLE IF NOT EXISTS outbox (
        id TEXT PRIMARY KEY,
        prediction_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        event TEXT NOT NULL,
        webhook_id TEXT NOT NULL,
        url TEXT NOT NULL,
        body TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at TEXT NOT NULL,
        status TEXT NOT NULL,
        last_error TEXT,
        created_at TEXT NOT NULL)`,
      "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at)",
      "CREATE INDEX IF NOT EXISTS outbox_prediction ON outbox (prediction_id, created_at)",
      `CREATE TABLE IF NOT EXISTS idempotency (
        account_id TEXT NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        prediction_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (account_id, key))`,
      "CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency (created_at)",
    ],
    [
      `CREATE TABLE IF NOT EXISTS account_grants (
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        permission TEXT NOT NULL,
        granted_at TEXT NOT NULL,
        PRIMARY KEY (account_id, permission))`,
    ],
  ];
}

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

interface Templates {
  insertPrediction: Template;
  insertOutbox: Template;
  insertIdempotency: Template;
  getPrediction: Template;
  getVersion: Template;
  getModel: Template;
  getAccountByTokenHash: Template;
}

/**
 * The Store on Kysely: SQLite (embedded) or PostgreSQL (scale-out). JSON columns are TEXT parsed here;
 * pages are keyset on (created_at DESC, id DESC) with opaque cursors.
 */
export class KyselyStore implements Store {
  private readonly dialect: StoreDialect;
  private readonly executor: Executor;
  private readonly templates: Templates;
  private readonly updateTemplates = new Map<string, Template>();
  private readonly finished = new FinishedRecordCache<PredictionRecord>();
  private readonly trueValue: StoredBool;
  private readonly falseValue: StoredBool;

  constructor(
    private readonly kysely: Kysely<Database>,
    private readonly options: KyselyStoreOptions,
  ) {
    this.dialect = options.dialect;
    this.executor =
      options.sqlite !== undefined ? new RawSqliteExecutor(options.sqlite) : new KyselyExecutor(kysely);
    this.trueValue = this.dialect === "sqlite" ? 1 : true;
    this.falseValue = this.dialect === "sqlite" ? 0 : false;
    this.templates = {
      insertPrediction: template(
        kysely.insertInto("predictions").values(slots<PredictionsTable>(PREDICTION_COLUMNS)),
      ),
      insertOutbox: template(kysely.insertInto("outbox").values(slots<OutboxTable>(OUTBOX_COLUMNS))),
      insertIdempotency: template(
        kysely
          .insertInto("idempotency")
          .values(
            slots<IdempotencyTable>([
              "account_id",
              "key",
              "request_hash",
              "prediction_id",
              "created_at",
            ] as const),
          )
          .onConflict((oc) => oc.columns(["account_id", "key"]).doNothing())
          .returning("account_id"),
      ),
      getPrediction: template(
        kysely.selectFrom("predictions").selectAll().where("id", "=", slot<string>("id")),
      ),
      getVersion: template(kysely.selectFrom("versions").selectAll().where("id", "=", slot<string>("id"))),
      getModel: template(
        kysely
          .selectFrom("models")
          .selectAll()
          .where("owner", "=", slot<string>("owner"))
          .where("name", "=", slot<string>("name")),
      ),
      getAccountByTokenHash: template(
        kysely
          .selectFrom("tokens")
          .innerJoin("accounts", "accounts.id", "tokens.account_id")
          .selectAll("accounts")
          .where("tokens.hash", "=", slot<string>("hash")),
      ),
    };
  }

  private bool(value: boolean): StoredBool {
    return value ? this.trueValue : this.falseValue;
  }

  // --- migrations and lifecycle ---------------------------------------------------------------

  async migrate(): Promise<void> {
    const createMigrations = CompiledQuery.raw(
      "CREATE TABLE IF NOT EXISTS replicant_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    );
    const postgres = this.dialect === "postgres";
    if (!postgres) await this.executor.run(createMigrations);
    const all = migrations(this.dialect);
    const kysely = this.kysely;
    await this.executor.transaction(function* () {
      if (postgres) {
        // Several processes may start at once: one migrates, the others wait, then find it done.
        yield CompiledQuery.raw("SELECT pg_advisory_xact_lock(7262680367)");
        yield createMigrations;
      }
      const applied = yield CompiledQuery.raw("SELECT version FROM replicant_migrations");
      const done = new Set(applied.rows.map((row) => Number(row.version)));
      for (let i = 0; i < all.length; i++) {
        const version = i + 1;
        if (done.has(version)) continue;
        // Byte-order text comparison on PostgreSQL, as on SQLite, whatever the database's locale.
        for (const statement of all[i] ?? [])
          yield CompiledQuery.raw(postgres ? statement.replace(/\bTEXT\b/g, 'TEXT COLLATE "C"') : statement);
        yield kysely
          .insertInto("replicant_migrations")
          .values({ version, applied_at: new Date().toISOString() })
          .compile();
      }
    });
  }

  async close(): Promise<void> {
    await this.options.beforeClose?.();
    await this.kysely.destroy();
    // Kysely only closes a SQLite handle it opened a connection on; the raw path never does.
    if (this.options.sqlite?.open) this.options.sqlite.close();
  }

  // --- accounts and tokens --------------------------------------------------------------------

  async createAccount(account: AccountRecord): Promise<void> {
    await this.executor.run(this.kysely.insertInto("accounts").values(account).compile());
  }

  async getAccountById(id: string): Promise<AccountRecord | undefined> {
    return this.first(this.kysely.selectFrom("accounts").selectAll().where("id", "=", id).compile(), PLAIN);
  }

  async getAccountByUsername(username: string): Promise<AccountRecord | undefined> {
    return this.first(
      this.kysely.selectFrom("accounts").selectAll().where("username", "=", username).compile(),
      PLAIN,
    );
  }

  async addToken(token: TokenRecord): Promise<void> {
    await this.executor.run(this.kysely.insertInto("tokens").values(token).compile());
  }

  async getAccountByTokenHash(hash: string): Promise<AccountRecord | undefined> {
    return this.first(bind(this.templates.getAccountByTokenHash, { hash }), PLAIN);
  }

  async listTokens(accountId: string): Promise<TokenRecord[]> {
    const query = this.kysely
      .selectFrom("tokens")
      .selectAll()
      .where("account_id", "=", accountId)
      .orderBy("created_at")
      .orderBy("hash");
    return this.all(query.compile(), PLAIN);
  }

  async deleteToken(accountId: string, hash: string): Promise<boolean> {
    const query = this.kysely
      .deleteFrom("tokens")
      .where("account_id", "=", accountId)
      .where("hash", "=", hash);
    return (await this.executor.run(query.compile())).changes > 0;
  }

  async grantPermission(accountId: string, permission: AccountPermission, grantedAt: string): Promise<void> {
    const query = this.kysely
      .insertInto("account_grants")
      .values({ account_id: accountId, permission, granted_at: grantedAt })
      .onConflict((conflict) => conflict.columns(["account_id", "permission"]).doNothing());
    await this.executor.run(query.compile());
  }

  async revokePermission(accountId: string, permission: AccountPermission): Promise<boolean> {
    const query = this.kysely
      .deleteFrom("account_grants")
      .where("account_id", "=", accountId)
      .where("permission", "=", permission);
    return (await this.executor.run(query.compile())).changes > 0;
  }

  async listPermissions(accountId: string): Promise<AccountPermission[]> {
    const query = this.kysely
      .selectFrom("account_grants")
      .select("permission")
      .where("account_id", "=", accountId)
      .orderBy("permission");
    const rows = await this.all<{ permission: string }>(query.compile(), PLAIN);
    return rows.map((row) => row.permission as AccountPermission);
  }

  // --- models -----------------------------------------------------------------------------------

  async createModel(model: ModelRecord): Promise<void> {
    const row: ModelsTable = { ...model, is_official: this.bool(model.is_official) };
    await this.executor.run(this.kysely.insertInto("models").values(row).compile());
  }

  async getModel(owner: string, name: string): Promise<ModelRecord | undefined> {
    return this.first(bind(this.templates.getModel, { owner, name }), MODEL_KINDS);
  }

  async getModelById(id: string): Promise<ModelRecord | undefined> {
    return this.first(
      this.kysely.selectFrom("models").selectAll().where("id", "=", id).compile(),
      MODEL_KINDS,
    );
  }

  async updateModel(
    id: string,
    patch: Partial<Omit<ModelRecord, "id" | "owner" | "name" | "owner_account_id">>,
  ): Promise<void> {
    const values: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined || !UPDATABLE_MODEL_COLUMNS.has(key)) continue;
      values[key] = key === "is_official" ? this.bool(value === true) : value;
    }
    if (Object.keys(values).length === 0) return;
    await this.executor.run(
      this.kysely
        .updateTable("models")
        .set(values as Partial<ModelsTable>)
        .where("id", "=", id)
        .compile(),
    );
  }

  async deleteModel(id: string): Promise<void> {
    const queries = [
      this.kysely.deleteFrom("collection_models").where("model_id", "=", id).compile(),
      this.kysely.deleteFrom("versions").where("model_id", "=", id).compile(),
      this.kysely.deleteFrom("models").where("id", "=", id).compile(),
    ];
    await this.executor.transaction(function* () {
      for (const query of queries) yield query;
    });
  }

  async listModels(filter: ModelListFilter): Promise<PageResult<ModelRecord>> {
    const limit = pageLimit(filter.limit);
    const cursor = decodeCursor(filter.cursor);
    const direction = filter.sort_direction === "asc" ? "asc" : "desc";
    // Models without versions sort as the empty string: before every timestamp.
    const key =
      filter.sort_by === "latest_version_created_at"
        ? sql<string>`coalesce(latest_version_created_at, '')`
        : sql<string>`created_at`;
    let query = this.kysely
      .selectFrom("models")
      .selectAll()
      .select(key.as("sort_key"))
      .where(this.visibleTo(filter.visible_to));
    if (cursor !== undefined) query = query.where(after(key, direction, cursor));
    query = query
      .orderBy(key, direction)
      .orderBy("id", direction)
      .limit(limitOf(limit + 1));
    const { rows } = await this.executor.run(query.compile());
    const hasMore = rows.length > limit;
    const pageRows = hasMore ? rows.slice(0, limit) : rows;
    const last = pageRows[pageRows.length - 1];
    const items = pageRows.map((row) => {
      const { sort_key: _sortKey, ...rest } = row;
      return fromRow<ModelRecord>(MODEL_KINDS, rest);
    });
    return {
      items,
      next: hasMore && last !== undefined ? encodeCursor(String(last.sort_key), String(last.id)) : null,
    };
  }

  async searchModels(query: string, visibleTo: string | null, limit: number): Promise<ModelRecord[]> {
    const select = this.kysely
      .selectFrom("models")
      .selectAll()
      .where(this.visibleTo(visibleTo))
      .where(containsAny(["owner", "name", "description", "readme"], query))
      .orderBy("run_count", "desc")
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(limitOf(pageLimit(limit)));
    return this.all(select.compile(), MODEL_KINDS);
  }

  async incrementRunCount(modelId: string, by = 1): Promise<void> {
    await this.executor.run(
      this.kysely
        .updateTable("models")
        .set({ run_count: sql<number>`run_count + ${Math.max(0, Math.floor(by))}` })
        .where("id", "=", modelId)
        .compile(),
    );
  }

  private visibleTo(accountId: string | null): RawBuilder<boolean> {
    return accountId === null
      ? sql<boolean>`visibility = 'public'`
      : sql<boolean>`(visibility = 'public' or owner_account_id = ${accountId})`;
  }

  // --- versions ---------------------------------------------------------------------------------

  async createVersion(version: VersionRecord): Promise<void> {
    const row: VersionsTable = {
      ...version,
      openapi_schema: JSON.stringify(version.openapi_schema),
      runner: JSON.stringify(version.runner),
      training_schema: version.training_schema === null ? null : JSON.stringify(version.training_schema),
    };
    const queries = [
      this.kysely.insertInto("versions").values(row).compile(),
      this.kysely
        .updateTable("models")
        .set({ latest_version_id: version.id, latest_version_created_at: version.created_at })
        .where("id", "=", version.model_id)
        .compile(),
    ];
    await this.executor.transaction(function* () {
      for (const query of queries) yield query;
    });
  }

  async getVersion(id: string): Promise<VersionRecord | undefined> {
    return this.first(bind(this.templates.getVersion, { id }), VERSION_KINDS);
  }

  async listVersions(modelId: string, page: PageRequest): Promise<PageResult<VersionRecord>> {
    const limit = pageLimit(page.limit);
    const cursor = decodeCursor(page.cursor);
    let query = this.kysely.selectFrom("versions").selectAll().where("model_id", "=", modelId);
    if (cursor !== undefined) query = query.where(after(sql`created_at`, "desc", cursor));
    query = query
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(limitOf(limit + 1));
    return this.page(query.compile(), limit, VERSION_KINDS);
  }

  async deleteVersion(id: string): Promise<void> {
    const kysely = this.kysely;
    const find = kysely.selectFrom("versions").select("model_id").where("id", "=", id).compile();
    const remove = kysely.deleteFrom("versions").where("id", "=", id).compile();
    await this.executor.transaction(function* () {
      const found = yield find;
      const modelId = found.rows[0]?.model_id;
      if (typeof modelId !== "string") return;
      yield remove;
      const newest = (column: "id" | "created_at") =>
        kysely
          .selectFrom("versions")
          .select(column)
          .where("model_id", "=", modelId)
          .orderBy("created_at", "desc")
          .orderBy("id", "desc")
          .limit(limitOf(1));
      yield kysely
        .updateTable("models")
        .set({ latest_version_id: newest("id"), latest_version_created_at: newest("created_at") })
        .where("id", "=", modelId)
        .compile();
    });
  }

  async isVersionInUse(id: string): Promise<boolean> {
    const query = this.kysely
      .selectNoFrom((eb) => [
        eb
          .or([
            eb.exists(eb.selectFrom("predictions").select("id").where("version_id", "=", id)),
            eb.exists(eb.selectFrom("releases").select("number").where("version_id", "=", id)),
          ])
          .as("in_use"),
      ])
      .compile();
    const row = await this.executor.first(query);
    return row !== undefined && (row.in_use === true || Number(row.in_use) === 1);
  }

  // --- predictions ------------------------------------------------------------------------------

  private predictionRow(prediction: PredictionRecord): Record<string, unknown> {
    return {
      ...prediction,
      input: prediction.input === null ? null : JSON.stringify(prediction.input),
      output:
        prediction.output === null || prediction.output === undefined
          ? null
          : JSON.stringify(prediction.output),
      metrics: prediction.metrics === null ? null : JSON.stringify(prediction.metrics),
      webhook_events_filter:
        prediction.webhook_events_filter === null ? null : JSON.stringify(prediction.webhook_events_filter),
      data_removed: this.bool(prediction.data_removed),
      streaming: this.bool(prediction.streaming),
    };
  }

  private outboxQueries(rows: readonly OutboxInsert[] | undefined): Query[] {
    if (rows === undefined || rows.length === 0) return [];
    return rows.map((row) =>
      bind(this.templates.insertOutbox, { ...row, attempts: 0, status: "pending", last_error: null }),
    );
  }

  async insertPrediction(
    prediction: PredictionRecord,
    extras?: { outbox?: OutboxInsert[]; idempotency?: IdempotencyRecord },
  ): Promise<void> {
    const idempotency = extras?.idempotency;
    const claimKey =
      idempotency === undefined ? undefined : bind(this.templates.insertIdempotency, idempotency);
    const insert = bind(this.templates.insertPrediction, this.predictionRow(prediction));
    const outbox = this.outboxQueries(extras?.outbox);
    if (claimKey === undefined && outbox.length === 0) {
      await this.executor.run(insert);
      return;
    }
    await this.executor.transaction(function* () {
      if (claimKey !== undefined && idempotency !== undefined) {
        // The key goes first: on a conflict nothing else has been written when we roll back.
        const claimed = yield claimKey;
        if (claimed.rows.length === 0) throw conflictError(idempotency.account_id, idempotency.key);
      }
      yield insert;
      for (const query of outbox) yield query;
    });
  }

  async getPrediction(id: string): Promise<PredictionRecord | undefined> {
    const cached = this.finished.get(id);
    if (cached !== undefined) return cached;
    const writesBefore = this.finished.writes;
    const record = await this.first<PredictionRecord>(
      bind(this.templates.getPrediction, { id }),
      PREDICTION_KINDS,
    );
    return record !== undefined && isTerminal(record.status)
      ? this.finished.keep(record, writesBefore)
      : record;
  }

  async listPredictions(filter: PredictionListFilter): Promise<PageResult<PredictionRecord>> {
    const limit = pageLimit(filter.limit);
    const cursor = decodeCursor(filter.cursor);
    let query = this.kysely
      .selectFrom("predictions")
      .selectAll()
      .where("account_id", "=", filter.account_id)
      .where("kind", "=", filter.kind);
    if (filter.created_after !== undefined) query = query.where("created_at", ">=", filter.created_after);
    if (filter.created_before !== undefined) query = query.where("created_at", "<", filter.created_before);
    if (cursor !== undefined) query = query.where(after(sql`created_at`, "desc", cursor));
    query = query
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(limitOf(limit + 1));
    return this.page(query.compile(), limit, PREDICTION_KINDS);
  }

  /** The fenced UPDATE … RETURNING for this shape of patch and fence, built once per shape. */
  private updateTemplate(
    columns: string[],
    statusCount: number,
    withAttempt: boolean,
    returning: boolean,
  ): Template {
    const cacheKey = `${columns.join(",")}|${statusCount}|${withAttempt ? 1 : 0}|${returning ? 1 : 0}`;
    let cached = this.updateTemplates.get(cacheKey);
    if (cached !== undefined) return cached;
    const statuses = Array.from({ length: statusCount }, (_, i) => slot<string>(`status:${i}`));
    let query = this.kysely
      .updateTable("predictions")
      .set(slots<PredictionsTable>(columns.map((c) => [c, `set:${c}`])))
      .where("id", "=", slot<string>("id"))
      .where("status", "in", statuses);
    if (withAttempt) query = query.where("attempt", "=", slot<number>("attempt"));
    cached = template(returning ? query.returningAll() : query);
    this.updateTemplates.set(cacheKey, cached);
    return cached;
  }

  private selectFencedTemplate(statusCount: number, withAttempt: boolean): Template {
    const cacheKey = `select|${statusCount}|${withAttempt ? 1 : 0}`;
    let cached = this.updateTemplates.get(cacheKey);
    if (cached !== undefined) return cached;
    const statuses = Array.from({ length: statusCount }, (_, i) => slot<string>(`status:${i}`));
    let query = this.kysely
      .selectFrom("predictions")
      .selectAll()
      .where("id", "=", slot<string>("id"))
      .where("status", "in", statuses);
    if (withAttempt) query = query.where("attempt", "=", slot<number>("attempt"));
    cached = template(query);
    this.updateTemplates.set(cacheKey, cached);
    return cached;
  }

  async updatePrediction(
    id: string,
    patch: PredictionPatch,
    fence: PredictionFence,
    outbox?: OutboxInsert[],
    current?: PredictionRecord,
    files?: FileRecord[],
  ): Promise<PredictionRecord | undefined> {
    if (fence.statuses.length === 0) return undefined;
    this.finished.drop(id);
    const values: Record<string, unknown> = { id };
    const columns: string[] = [];
    const applied: Record<string, unknown> | undefined = current ? { ...current } : undefined;
    for (const key in patch) {
      const value = (patch as Record<string, unknown>)[key];
      if (value === undefined || !PATCHABLE_PREDICTION_COLUMNS.has(key)) continue;
      columns.push(key);
      values[`set:${key}`] = this.patchValue(key, value);
      if (applied) applied[key] = value;
    }
    columns.sort();
    for (let i = 0; i < fence.statuses.length; i++) values[`status:${i}`] = fence.statuses[i];
    const withAttempt = fence.attempt !== undefined;
    if (withAttempt) values.attempt = fence.attempt;
    // With the current record in hand, the update need not return the row: `changes` tells the fence.
    const readBack = applied === undefined || columns.length === 0;
    const change =
      columns.length === 0
        ? bind(this.selectFencedTemplate(fence.statuses.length, withAttempt), values)
        : bind(this.updateTemplate(columns, fence.statuses.length, withAttempt, readBack), values);
    const held = (result: { rows: Record<string, unknown>[]; changes: number }) =>
      readBack ? result.rows[0] !== undefined : result.changes > 0;
    const outboxQueries = this.outboxQueries(outbox);
    const fileQueries = (files ?? []).map((file) => this.fileInsert(file));
    let result: { rows: Record<string, unknown>[]; changes: number } | undefined;
    try {
      if (outboxQueries.length === 0 && fileQueries.length === 0) {
        result = await this.executor.run(change);
      } else {
        result = await this.executor.transaction(function* () {
          // The files exist whether or not the fence holds: their records go in first.
          for (const query of fileQueries) yield query;
          const changed = yield change;
          if (!held(changed)) return undefined;
          for (const query of outboxQueries) yield query;
          return changed;
        });
      }
    } finally {
      this.finished.drop(id);
    }
    if (result === undefined || !held(result)) return undefined;
    if (applied !== undefined) return applied as unknown as PredictionRecord;
    return fromRow<PredictionRecord>(PREDICTION_KINDS, result.rows[0] as Record<string, unknown>);
  }

  private patchValue(column: string, value: unknown): unknown {
    if (PREDICTION_KINDS.json.has(column)) return value === null ? null : JSON.stringify(value);
    if (PREDICTION_KINDS.bool.has(column)) return this.bool(value === true);
    return value;
  }

  async listUnfinishedPredictions(): Promise<PredictionRecord[]> {
    const query = this.kysely
      .selectFrom("predictions")
      .selectAll()
      .where("status", "in", [...UNFINISHED])
      .orderBy("created_at", "asc")
      .orderBy("id", "asc");
    return this.all(query.compile(), PREDICTION_KINDS);
  }

  async listPredictionsForRetention(before: string, limit: number): Promise<PredictionRecord[]> {
    const query = this.kysely
      .selectFrom("predictions")
      .selectAll()
      .where("data_removed", "=", this.falseValue)
      .where("completed_at", "<", before)
      .where("status", "in", [...TERMINAL])
      .orderBy("completed_at", "asc")
      .orderBy("id", "asc")
      .limit(limitOf(pageLimit(limit)));
    return this.all(query.compile(), PREDICTION_KINDS);
  }

  // --- idempotency ------------------------------------------------------------------------------

  async getIdempotency(accountId: string, key: string): Promise<IdempotencyRecord | undefined> {
    const query = this.kysely
      .selectFrom("idempotency")
      .selectAll()
      .where("account_id", "=", accountId)
      .where("key", "=", key);
    return this.first(query.compile(), PLAIN);
  }

  async deleteIdempotencyBefore(before: string): Promise<number> {
    const query = this.kysely.deleteFrom("idempotency").where("created_at", "<", before);
    return (await this.executor.run(query.compile())).changes;
  }

  // --- deployments ------------------------------------------------------------------------------

  async createDeployment(deployment: DeploymentRecord, release: ReleaseRecord): Promise<void> {
    const queries = [
      this.kysely.insertInto("deployments").values(deployment).compile(),
      this.kysely.insertInto("releases").values(release).compile(),
    ];
    await this.executor.transaction(function* () {
      for (const query of queries) yield query;
    });
  }

  async getDeployment(owner: string, name: string): Promise<DeploymentRecord | undefined> {
    const query = this.kysely
      .selectFrom("deployments")
      .selectAll()
      .where("owner", "=", owner)
      .where("name", "=", name);
    return this.first(query.compile(), PLAIN);
  }

  async getCurrentRelease(deploymentId: string): Promise<ReleaseRecord | undefined> {
    const query = this.kysely
      .selectFrom("releases")
      .selectAll()
      .where("deployment_id", "=", deploymentId)
      .orderBy("number", "desc")
      .limit(limitOf(1));
    return this.first(query.compile(), RELEASE_KINDS);
  }

  async addRelease(release: ReleaseRecord): Promise<void> {
    await this.executor.run(this.kysely.insertInto("releases").values(release).compile());
  }

  async listDeployments(accountId: string, page: PageRequest): Promise<PageResult<DeploymentRecord>> {
    const limit = pageLimit(page.limit);
    const cursor = decodeCursor(page.cursor);
    let query = this.kysely.selectFrom("deployments").selectAll().where("owner_account_id", "=", accountId);
    if (cursor !== undefined) query = query.where(after(sql`created_at`, "desc", cursor));
    query = query
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(limitOf(limit + 1));
    return this.page(query.compile(), limit, PLAIN);
  }

  async listCurrentReleases(): Promise<{ deployment: string; release: ReleaseRecord }[]> {
    const query = this.kysely
      .selectFrom("deployments as d")
      .innerJoin("releases as r", "r.deployment_id", "d.id")
      .selectAll("r")
      .select(["d.owner as deployment_owner", "d.name as deployment_name"])
      .where("r.number", "=", (eb) =>
        eb
          .selectFrom("releases as latest")
          .select((inner) => inner.fn.max("latest.number").as("number"))
          .whereRef("latest.deployment_id", "=", "d.id"),
      )
      .orderBy("d.owner")
      .orderBy("d.name");
    const rows = await this.all<ReleaseRecord & { deployment_owner: string; deployment_name: string }>(
      query.compile(),
      RELEASE_KINDS,
    );
    return rows.map(({ deployment_owner, deployment_name, ...release }) => ({
      deployment: `${deployment_owner}/${deployment_name}`,
      release,
    }));
  }

  async deleteDeployment(id: string): Promise<void> {
    const queries = [
      this.kysely.deleteFrom("releases").where("deployment_id", "=", id).compile(),
      this.kysely.deleteFrom("deployments").where("id", "=", id).compile(),
    ];
    await this.executor.transaction(function* () {
      for (const query of queries) yield query;
    });
  }

  // --- files ------------------------------------------------------------------------------------

  async createFile(file: FileRecord): Promise<void> {
    await this.executor.run(this.fileInsert(file));
  }

  private fileInsert(file: FileRecord): Query {
    const row: FilesTable = { ...file, metadata: JSON.stringify(file.metadata) };
    return this.kysely.insertInto("files").values(row).compile();
  }

  async getFile(id: string): Promise<FileRecord | undefined> {
    return this.first(this.kysely.selectFrom("files").selectAll().where("id", "=", id).compile(), FILE_KINDS);
  }

  async listFiles(accountId: string, page: PageRequest): Promise<PageResult<FileRecord>> {
    const limit = pageLimit(page.limit);
    const cursor = decodeCursor(page.cursor);
    let query = this.kysely.selectFrom("files").selectAll().where("account_id", "=", accountId);
    if (cursor !== undefined) query = query.where(after(sql`created_at`, "desc", cursor));
    query = query
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(limitOf(limit + 1));
    return this.page(query.compile(), limit, FILE_KINDS);
  }

  async deleteFile(id: string): Promise<boolean> {
    return (
      (await this.executor.run(this.kysely.deleteFrom("files").where("id", "=", id).compile())).changes > 0
    );
  }

  async listExpiredFiles(now: string, limit: number): Promise<FileRecord[]> {
    const query = this.kysely
      .selectFrom("files")
      .selectAll()
      .where("expires_at", "is not", null)
      .where("expires_at", "<=", now)
      .orderBy("expires_at", "asc")
      .orderBy("id", "asc")
      .limit(limitOf(pageLimit(limit)));
    return this.all(query.compile(), FILE_KINDS);
  }

  // --- collections ------------------------------------------------------------------------------

  async upsertCollection(collection: CollectionRecord, modelIds: string[]): Promise<void> {
    const unique = [...new Set(modelIds)];
    const queries = [
      this.kysely
        .insertInto("collections")
        .values(collection)
        .onConflict((oc) =>
          oc.column("slug").doUpdateSet({
            name: collection.name,
            description: collection.description,
            full_description: collection.full_description,
          }),
        )
        .compile(),
      this.kysely.deleteFrom("collection_models").where("collection_slug", "=", collection.slug).compile(),
      ...unique.map((modelId, position) =>
        this.kysely
          .insertInto("collection_models")
          .values({ collection_slug: collection.slug, model_id: modelId, position })
          .compile(),
      ),
    ];
    await this.executor.transaction(function* () {
      for (const query of queries) yield query;
    });
  }

  async listCollections(page: PageRequest): Promise<PageResult<CollectionRecord>> {
    // Collections have no timestamp: they page by slug, ascending.
    const limit = pageLimit(page.limit);
    const cursor = decodeCursor(page.cursor);
    let query = this.kysely.selectFrom("collections").selectAll();
    if (cursor !== undefined) query = query.where("slug", ">", cursor[1]);
    query = query.orderBy("slug", "asc").limit(limitOf(limit + 1));
    const { rows } = await this.executor.run(query.compile());
    const hasMore = rows.length > limit;
    const items = (hasMore ? rows.slice(0, limit) : rows).map((row) => fromRow<CollectionRecord>(PLAIN, row));
    const last = items[items.length - 1];
    return { items, next: hasMore && last !== undefined ? encodeCursor("", last.slug) : null };
  }

  async getCollection(
    slug: string,
  ): Promise<{ collection: CollectionRecord; model_ids: string[] } | undefined> {
    const collection = await this.first<CollectionRecord>(
      this.kysely.selectFrom("collections").selectAll().where("slug", "=", slug).compile(),
      PLAIN,
    );
    if (collection === undefined) return undefined;
    const members = await this.executor.run(
      this.kysely
        .selectFrom("collection_models")
        .select("model_id")
        .where("collection_slug", "=", slug)
        .orderBy("position", "asc")
        .compile(),
    );
    return { collection, model_ids: members.rows.map((row) => String(row.model_id)) };
  }

  async searchCollections(query: string, limit: number): Promise<CollectionRecord[]> {
    const select = this.kysely
      .selectFrom("collections")
      .selectAll()
      .where(containsAny(["slug", "name", "description"], query))
      .orderBy("slug", "asc")
      .limit(limitOf(pageLimit(limit)));
    return this.all(select.compile(), PLAIN);
  }

  // --- outbox -----------------------------------------------------------------------------------

  async claimOutbox(now: string, limit: number, leaseMs: number): Promise<OutboxRecord[]> {
    const leaseUntil = new Date(Date.parse(now) + leaseMs).toISOString();
    // A `delivering` row's next_attempt_at is its claim expiry, so one condition finds both kinds.
    let due = this.kysely
      .selectFrom("outbox")
      .select("id")
      .where("status", "in", ["pending", "delivering"])
      .where("next_attempt_at", "<=", now)
      .orderBy("next_attempt_at", "asc")
      .orderBy("id", "asc")
      .limit(limitOf(pageLimit(limit)));
    if (this.dialect === "postgres") due = due.forUpdate().skipLocked();
    const claim = this.kysely
      .updateTable("outbox")
      .set({ status: "delivering", next_attempt_at: leaseUntil })
      .where("id", "in", due)
      .returningAll()
      .compile();
    const { rows } = await this.executor.run(claim);
    return rows
      .map((row) => fromRow<OutboxRecord>(OUTBOX_KINDS, row))
      .sort((a, b) => compare(a.created_at, b.created_at) || compare(a.id, b.id));
  }

  async finishOutbox(
    id: string,
    outcome:
      | { status: "delivered"; attempts: number }
      | { status: "failed"; attempts: number; last_error: string }
      | { status: "pending"; attempts: number; last_error: string; next_attempt_at: string },
  ): Promise<void> {
    const values: Partial<OutboxTable> = { status: outcome.status, attempts: outcome.attempts };
    if (outcome.status !== "delivered") values.last_error = outcome.last_error;
    if (outcome.status === "pending") values.next_attempt_at = outcome.next_attempt_at;
    await this.executor.run(this.kysely.updateTable("outbox").set(values).where("id", "=", id).compile());
  }

  async listOutbox(predictionId: string): Promise<OutboxRecord[]> {
    const query = this.kysely
      .selectFrom("outbox")
      .selectAll()
      .where("prediction_id", "=", predictionId)
      .orderBy("created_at", "asc")
      .orderBy("id", "asc");
    return this.all(query.compile(), OUTBOX_KINDS);
  }

  // --- helpers ----------------------------------------------------------------------------------

  private async first<T>(query: Query, kinds: ColumnKinds): Promise<T | undefined> {
    if (this.executor.firstRecord !== undefined) {
      const record = this.executor.firstRecord<T>(query, kinds);
      if (record !== null) return record;
    }
    const row = await this.executor.first(query);
    return row === undefined ? undefined : fromRow<T>(kinds, row);
  }

  private async all<T>(query: Query, kinds: ColumnKinds): Promise<T[]> {
    const { rows } = await this.executor.run(query);
    return rows.map((row) => fromRow<T>(kinds, row));
  }

  /** A page of a query ordered by (created_at, id) that fetched `limit + 1` rows. */
  private async page<T extends { created_at: string; id: string }>(
    query: Query,
    limit: number,
    kinds: ColumnKinds,
  ): Promise<PageResult<T>> {
    const { rows } = await this.executor.run(query);
    const hasMore = rows.length > limit;
    const items = (hasMore ? rows.slice(0, limit) : rows).map((row) => fromRow<T>(kinds, row));
    const last = items[items.length - 1];
    return { items, next: hasMore && last !== undefined ? encodeCursor(last.created_at, last.id) : null };
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A values object whose every column is a named slot. `columns` are column names (slot = name) or
 * [column, slot] pairs. Typed loosely on purpose: the slots stand in for values of any column type.
 */
function slots<T>(columns: readonly (string | readonly [string, string])[]): T {
  const values: Record<string, RawBuilder<unknown>> = {};
  for (const column of columns) {
    if (typeof column === "string") values[column] = slot(column);
    else values[column[0]] = slot(column[1]);
  }
  return values as T;
}
