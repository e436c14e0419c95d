import type { Readable } from "node:stream";
import type { PredictionStatus, WebhookEventType } from "@replicant/protocol";

/**
 * The four backend interfaces of the server. Routes and the director talk only to these; the embedded
 * backends (SQLite, SQLite lease queue, local directory, in-process emitter) and the scale-out ones
 * (PostgreSQL, BullMQ, S3, Redis pub/sub) implement them and pass the same conformance suites
 * (@replicant/testing). Timestamps are ISO 8601 strings with a `Z`; JSON columns are plain values.
 */

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

export interface AccountRecord {
  id: string;
  username: string;
  type: "user" | "organization";
  name: string | null;
  github_url: string | null;
  avatar_url: string | null;
  /** `whsec_…`; retrievable by design (webhooks.default.secret.get). */
  webhook_secret: string;
  created_at: string;
}

/** What an account may do beyond the API every account has; granted by the default account. */
export type AccountPermission = "push";

export interface TokenRecord {
  /** SHA-256 hex of the token; the token itself is never stored. */
  hash: string;
  account_id: string;
  /** First characters of the token, for display. */
  prefix: string;
  name: string | null;
  created_at: string;
}

/** How a version's predictions are run. */
export type RunnerSpec =
  | { kind: "builtin"; name: string; weights?: string }
  | { kind: "cog"; url: string }
  | { kind: "package"; path: string; weights?: string }
  /** A pushed predictor: a .tar.gz blob unpacked on the worker, and the predictor module inside it. */
  | {
      kind: "bundle";
      bundle: string;
      predictor: string;
      weights?: string;
      /** Environment variables the bundle's manifest declares (the only ones its runners see beside the runtime's). */
      env?: Record<string, string>;
      /** The manifest asked for network: only through the server's SSRF policy (docs/security.md). */
      network?: boolean;
    };

export interface ModelRecord {
  id: string;
  owner_account_id: string;
  owner: string;
  name: string;
  description: string | null;
  visibility: "public" | "private";
  hardware: string;
  github_url: string | null;
  paper_url: string | null;
  license_url: string | null;
  cover_image_url: string | null;
  weights_url: string | null;
  readme: string | null;
  run_count: number;
  is_official: boolean;
  latest_version_id: string | null;
  latest_version_created_at: string | null;
  default_example_id: string | null;
  created_at: string;
}

export interface VersionRecord {
  id: string;
  model_id: string;
  openapi_schema: Record<string, unknown>;
  cog_version: string | null;
  runner: RunnerSpec;
  /** The training schema, when the version can be trained. */
  training_schema: Record<string, unknown> | null;
  created_at: string;
}

export interface PredictionRecord {
  id: string;
  kind: "prediction" | "training";
  account_id: string;
  /** `owner/name` */
  model: string;
  version_id: string;
  /** `version` as shown on the wire: the version id, or "hidden" for official models. */
  version_label: string;
  deployment: string | null;
  /** Trainings: `owner/name` of the destination model. */
  destination: string | null;
  input: Record<string, unknown> | null;
  output: unknown;
  logs: string;
  error: string | null;
  status: PredictionStatus;
  source: "api" | "web";
  data_removed: boolean;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  deadline: string | null;
  metrics: Record<string, unknown> | null;
  webhook: string | null;
  webhook_events_filter: WebhookEventType[] | null;
  /** Incremented each time a worker starts the prediction; completion is fenced by it. */
  attempt: number;
  /** True when the version streams (its output is an iterator): `urls.stream` is then present. */
  streaming: boolean;
}

export interface DeploymentRecord {
  id: string;
  owner_account_id: string;
  owner: string;
  name: string;
  created_at: string;
}

export interface ReleaseRecord {
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

export interface FileRecord {
  id: string;
  account_id: string;
  name: string;
  content_type: string;
  size: number;
  sha256: string;
  metadata: Record<string, unknown>;
  blob_key: string;
  created_at: string;
  expires_at: string | null;
}

export interface CollectionRecord {
  slug: string;
  name: string;
  description: string;
  full_description: string | null;
}

export interface OutboxRecord {
  id: string;
  prediction_id: string;
  account_id: string;
  event: WebhookEventType;
  /** Same for every attempt of this delivery: the `webhook-id` header. */
  webhook_id: string;
  url: string;
  /** The exact bytes to send (compact JSON of the prediction at the time of the event). */
  body: string;
  attempts: number;
  next_attempt_at: string;
  status: "pending" | "delivering" | "delivered" | "failed";
  last_error: string | null;
  created_at: string;
}

export type OutboxInsert = Omit<OutboxRecord, "attempts" | "status" | "last_error">;

export interface IdempotencyRecord {
  account_id: string;
  key: string;
  /** SHA-256 of the request (method, path, body), to tell a replay from a misuse of the key. */
  request_hash: string;
  prediction_id: string;
  created_at: string;
}

// ---------------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------------

/** Keyset pagination, newest first unless said otherwise. `cursor` is opaque to callers. */
export interface PageRequest {
  cursor?: string | undefined;
  limit: number;
}

export interface PageResult<T> {
  items: T[];
  /** Cursor of the next page, or null on the last page. */
  next: string | null;
}

/**
 * A guard on a prediction update: the row changes only if its current status is one of `statuses`
 * (and its attempt equals `attempt` when given). This is how a stale or duplicate worker changes nothing.
 */
export interface PredictionFence {
  statuses: readonly PredictionStatus[];
  attempt?: number;
}

export type PredictionPatch = Partial<
  Pick<
    PredictionRecord,
    | "output"
    | "logs"
    | "error"
    | "status"
    | "started_at"
    | "completed_at"
    | "metrics"
    | "attempt"
    | "input"
    | "data_removed"
    | "version_id"
  >
>;

export interface PredictionListFilter extends PageRequest {
  account_id: string;
  kind: "prediction" | "training";
  created_after?: string | undefined;
  created_before?: string | undefined;
}

export interface ModelListFilter extends PageRequest {
  /** Public models plus the private ones of this account. */
  visible_to: string | null;
  sort_by: "model_created_at" | "latest_version_created_at";
  sort_direction: "asc" | "desc";
}

export interface Store {
  /** Creates tables or applies migrations. Idempotent. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  createAccount(account: AccountRecord): Promise<void>;
  getAccountById(id: string): Promise<AccountRecord | undefined>;
  getAccountByUsername(username: string): Promise<AccountRecord | undefined>;

  addToken(token: TokenRecord): Promise<void>;
  /** The account owning the token with this SHA-256 hash. */
  getAccountByTokenHash(hash: string): Promise<AccountRecord | undefined>;
  listTokens(accountId: string): Promise<TokenRecord[]>;
  deleteToken(accountId: string, hash: string): Promise<boolean>;

  /** Grants a permission (idempotent). */
  grantPermission(accountId: string, permission: AccountPermission, grantedAt: string): Promise<void>;
  /** Whether a grant was removed. */
  revokePermission(accountId: string, permission: AccountPermission): Promise<boolean>;
  listPermissions(accountId: string): Promise<AccountPermission[]>;

  createModel(model: ModelRecord): Promise<void>;
  getModel(owner: string, name: string): Promise<ModelRecord | undefined>;
  getModelById(id: string): Promise<ModelRecord | undefined>;
  updateModel(
    id: string,
    patch: Partial<Omit<ModelRecord, "id" | "owner" | "name" | "owner_account_id">>,
  ): Promise<void>;
  deleteModel(id: string): Promise<void>;
  listModels(filter: ModelListFilter): Promise<PageResult<ModelRecord>>;
  /** Models visible to the account whose owner, name, description or readme contain the query (case-insensitive). */
  searchModels(query: string, visibleTo: string | null, limit: number): Promise<ModelRecord[]>;
  /** Adds `by` (default 1) to the model's run count. */
  incrementRunCount(modelId: string, by?: number): Promise<void>;

  /** Inserts the version and makes it the model's latest version, in one transaction. */
  createVersion(version: VersionRecord): Promise<void>;
  getVersion(id: string): Promise<VersionRecord | undefined>;
  listVersions(modelId: string, page: PageRequest): Promise<PageResult<VersionRecord>>;
  /** Deletes the version and re-points the model's latest version. */
  deleteVersion(id: string): Promise<void>;
  /** Whether any prediction, training or deployment release refers to this version. */
  isVersionInUse(id: string): Promise<boolean>;

  /**
   * Inserts a prediction or training, its outbox rows and its idempotency record in one transaction.
   * Rejects with an error whose `code` is "IDEMPOTENCY_CONFLICT" if (account_id, key) already exists.
   */
  insertPrediction(
    prediction: PredictionRecord,
    extras?: { outbox?: OutboxInsert[]; idempotency?: IdempotencyRecord },
  ): Promise<void>;
  getPrediction(id: string): Promise<PredictionRecord | undefined>;
  listPredictions(filter: PredictionListFilter): Promise<PageResult<PredictionRecord>>;
  /**
   * Applies the patch if the fence holds, and inserts the outbox rows in the same transaction.
   * Returns the updated record, or undefined if the fence did not hold (nothing changed). A caller that
   * holds the current record passes it as `current`: the result is then `current` with the patch applied,
   * and the row is not read back. `files` (the records of output files the patch refers to) are inserted
   * in the same transaction, whether or not the fence holds: their blobs are stored either way.
   */
  updatePrediction(
    id: string,
    patch: PredictionPatch,
    fence: PredictionFence,
    outbox?: OutboxInsert[],
    current?: PredictionRecord,
    files?: FileRecord[],
  ): Promise<PredictionRecord | undefined>;
  /** Every prediction and training that is not terminal, oldest first (for recovery after a crash). */
  listUnfinishedPredictions(): Promise<PredictionRecord[]>;
  /** Terminal predictions completed before `before` whose data is not yet removed. */
  listPredictionsForRetention(before: string, limit: number): Promise<PredictionRecord[]>;

  getIdempotency(accountId: string, key: string): Promise<IdempotencyRecord | undefined>;
  deleteIdempotencyBefore(before: string): Promise<number>;

  /** Creates the deployment with its first release in one transaction. */
  createDeployment(deployment: DeploymentRecord, release: ReleaseRecord): Promise<void>;
  getDeployment(owner: string, name: string): Promise<DeploymentRecord | undefined>;
  getCurrentRelease(deploymentId: string): Promise<ReleaseRecord | undefined>;
  addRelease(release: ReleaseRecord): Promise<void>;
  listDeployments(accountId: string, page: PageRequest): Promise<PageResult<DeploymentRecord>>;
  /** Every deployment of every account with its current (latest) release, for keeping instances warm. */
  listCurrentReleases(): Promise<{ deployment: string; release: ReleaseRecord }[]>;
  deleteDeployment(id: string): Promise<void>;

  createFile(file: FileRecord): Promise<void>;
  getFile(id: string): Promise<FileRecord | undefined>;
  listFiles(accountId: string, page: PageRequest): Promise<PageResult<FileRecord>>;
  deleteFile(id: string): Promise<boolean>;
  listExpiredFiles(now: string, limit: number): Promise<FileRecord[]>;

  upsertCollection(collection: CollectionRecord, modelIds: string[]): Promise<void>;
  listCollections(page: PageRequest): Promise<PageResult<CollectionRecord>>;
  getCollection(slug: string): Promise<{ collection: CollectionRecord; model_ids: string[] } | undefined>;
  searchCollections(query: string, limit: number): Promise<CollectionRecord[]>;

  /**
   * Claims up to `limit` outbox rows that are pending and due at `now` (or `delivering` with an
   * expired claim, after a crash), marking them `delivering` until `now + leaseMs`.
   */
  claimOutbox(now: string, limit: number, leaseMs: number): Promise<OutboxRecord[]>;
  /** Records an attempt's outcome: delivered, failed for good, or pending again at `next_attempt_at`. */
  finishOutbox(
    id: string,
    outcome:
      | { status: "delivered"; attempts: number }
      | { status: "failed"; attempts: number; last_error: string }
      | { status: "pending"; attempts: number; last_error: string; next_attempt_at: string },
  ): Promise<void>;
  listOutbox(predictionId: string): Promise<OutboxRecord[]>;
}

// ---------------------------------------------------------------------------------------------
// Queue
// ---------------------------------------------------------------------------------------------

export interface EnqueueOptions {
  /** Job id; enqueueing an id that is already waiting or active does nothing. */
  id: string;
  queue: string;
  /** Higher runs first. Default 0. */
  priority?: number;
  /** Not before now + delayMs. */
  delayMs?: number;
}

export interface LeasedJob {
  id: string;
  queue: string;
  /** Fences complete/release/extend: a lease that expired and was re-leased has a new token. */
  token: string;
  /** How many times this job has been leased, this lease included. */
  attempts: number;
}

export interface JobQueue {
  /**
   * True when this queue's writes and the store's, issued in one turn of the event loop, commit in one
   * transaction (the embedded backend: one SQLite connection with group commit). A job can then be
   * written beside the record it refers to, where otherwise it must wait for that record's commit (a
   * worker elsewhere could lease the job before the record exists).
   */
  readonly commitsWithStore?: boolean;
  enqueue(job: EnqueueOptions): Promise<void>;
  /** Leases up to `limit` due jobs of `queue`, by priority then age, for `leaseMs`. */
  lease(queue: string, workerId: string, leaseMs: number, limit: number): Promise<LeasedJob[]>;
  /** Removes the job if the token still holds its lease. */
  complete(id: string, token: string): Promise<boolean>;
  /** Puts a leased job back to waiting, due after `delayMs`. */
  release(id: string, token: string, delayMs: number): Promise<boolean>;
  extend(id: string, token: string, leaseMs: number): Promise<boolean>;
  /** Removes a job that is waiting or active (cancel). */
  remove(id: string): Promise<boolean>;
  /** Jobs whose lease expired: returns them to waiting and returns their ids and attempt counts. */
  recoverExpired(): Promise<{ id: string; attempts: number }[]>;
  counts(queue: string): Promise<{ waiting: number; active: number }>;
  /** Called (at least) when a job may have become available on a queue, in this process or another. */
  onAvailable(listener: (queue: string) => void): () => void;
  /**
   * Where the queue can (the embedded backend), a job enqueued on `queue` without a delay is leased for
   * `taker` in the transaction that enqueues it, so that it needs no lease transaction of its own; a job
   * taken so is not announced to onAvailable. Returns the removal. Absent: jobs wait for a lease.
   */
  leaseOnEnqueue?(queue: string, taker: EnqueueTaker): () => void;
  close(): Promise<void>;
}

export interface EnqueueTaker {
  workerId: string;
  leaseMs: number;
  /** How many jobs it takes now; asked inside the transaction, so it must not wait. */
  capacity(): number;
  /** The jobs leased for it, once their transaction has committed. */
  take(jobs: LeasedJob[]): void;
}

// ---------------------------------------------------------------------------------------------
// Blobs
// ---------------------------------------------------------------------------------------------

export interface BlobInfo {
  size: number;
  sha256: string;
}

export interface BlobStore {
  /** Writes the blob atomically (never a half-written blob under the key). Keys are [A-Za-z0-9/_.-]. */
  put(key: string, data: Uint8Array | Readable | AsyncIterable<Uint8Array>): Promise<BlobInfo>;
  /**
   * Like put, from a local regular file that the caller gives up (it may be moved into the store
   * rather than copied). Optional: callers fall back to put.
   */
  adopt?(key: string, path: string): Promise<BlobInfo>;
  /** A stream of the blob, or undefined if missing. */
  get(key: string): Promise<Readable | undefined>;
  stat(key: string): Promise<{ size: number } | undefined>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Event bus
// ---------------------------------------------------------------------------------------------

/**
 * Live events of one prediction. `index` orders output chunks; `offset` is the length of the logs
 * before this text, so a late subscriber can merge the stored prefix with live events without gaps
 * or duplicates.
 */
export type PredictionEvent =
  | { type: "status"; status: PredictionStatus }
  | { type: "output"; index: number; value: unknown }
  /** Consecutive output items from `index` that arrived together (one runner batch): one event, not one each. */
  | { type: "outputs"; index: number; values: unknown[] }
  | { type: "logs"; offset: number; text: string }
  /**
   * A reader that joined a running prediction asks the director running it to publish what the run has
   * produced so far (an `outputs` event from index 0 and a `logs` event from offset 0): the store holds it
   * only after the run's next flush, up to 100 ms later.
   */
  | { type: "replay" }
  /** `record`, when given, is the prediction as stored by this transition (saves waiters a read). */
  | { type: "done"; status: PredictionStatus; error: string | null; record?: PredictionRecord };

export interface EventBus {
  publish(channel: string, event: PredictionEvent): Promise<void>;
  /** Listener is called for every event published on the channel after this returns. */
  subscribe(channel: string, listener: (event: PredictionEvent) => void): Promise<() => void>;
  close(): Promise<void>;
}
