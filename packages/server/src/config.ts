/** Everything an operator can set on a server. Defaults follow Replicate's documented behaviour. */
export interface ServerConfig {
  /** Directory holding the SQLite database, blobs and secrets. */
  dataDir: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Base URL put in `urls.*`, `Location` and file URLs; defaults to the address the server listens on. */
  publicUrl?: string | undefined;
  /** Bearer token of the default account; without it one is generated and stored in dataDir. */
  adminToken?: string | undefined;
  /** Username of the default account created on first start. */
  defaultUsername: string;
  /** Let webhooks and input URLs reach loopback and private addresses. Off by default. */
  allowPrivateUrls: boolean;
  /** "normal": safe across a kill -9 (WAL, synchronous=NORMAL); "full": also across power loss. */
  durability: "normal" | "full";
  /** Largest JSON body, bytes. */
  bodyLimit: number;
  /** Deepest nesting of arrays and objects a JSON body may have; deeper bodies get a 400 before parsing. */
  jsonMaxDepth: number;
  /** Largest uploaded file, bytes (Replicate: 100 MB). */
  fileSizeLimit: number;
  /** A connection that has not sent a request's headers within this long is closed (408). */
  headersTimeoutMs: number;
  /** A request (headers and body) not received within this long is closed (408); responses are not bounded. */
  requestTimeoutMs: number;
  /**
   * A request body that delivers fewer than `bytes` in a window of `windowMs` (and is not complete) is
   * closed with 408; a body the server itself is slow to read is not counted. false turns it off.
   */
  bodyDripFloor: { bytes: number; windowMs: number } | false;
  /**
   * An SSE client more than this many bytes behind (queued while its socket has not drained) is sent a
   * `reconnect` event and its stream ended; it resumes with Last-Event-ID.
   */
  streamMaxLagBytes: number;
  /** Likewise for an SSE client whose socket has not drained for this long. */
  streamMaxStallMs: number;
  /** Requests a minute per account; false turns rate limiting off. */
  rateLimit: { predictionCreatesPerMinute: number; otherRequestsPerMinute: number } | false;
  /** After this long, a finished prediction's input, output, logs and output files are removed. */
  retentionMs: number;
  /** How long uploaded files live before they expire. */
  fileExpiryMs: number;
  /**
   * How file outputs appear in a prediction's `output`: "url" (signed download URLs), or "auto":
   * data URIs up to `dataUriLimit` bytes when the public URL is plain http (the official clients only
   * turn https: and data: strings into file objects), URLs otherwise.
   */
  fileOutputs: "url" | "auto";
  dataUriLimit: number;
  /** The terminal webhook is retried for up to this long. */
  webhookMaxAgeMs: number;
  webhookTimeoutMs: number;
  /** A prediction running longer than this fails with a timeout error (Replicate: 30 minutes). */
  predictionTimeoutMs: number;
  /** A runner process with nothing to do is stopped after this long (scale to zero). */
  runnerIdleTimeoutMs: number;
  /** V8 heap limit of each runner process, in MB; undefined keeps Node's default. */
  runnerMaxOldSpaceMb?: number | undefined;
  /**
   * How pushed bundles run: "auto" (bubblewrap where it works, else "process"), "bwrap" (refuse to start
   * without it), "process" (own user when root, private home, limits; no namespaces), or "none" (as the
   * server, with its rights: only for code you trust). See docs/security.md.
   */
  sandbox: "auto" | "bwrap" | "process" | "none";
  /** Limits of each pushed bundle's runner process (cgroups where writable, else prlimit). */
  runnerLimits: { memoryMb: number; pids: number; cpus?: number | undefined };
  /** Let every account push code; by default only the default account and accounts it granted `push`. */
  allowPushFromAll: boolean;
  /** Concurrent predictions run by this process's director. */
  workerConcurrency: number;
  /** Allowed browser origins for CORS; empty disables CORS. */
  corsOrigins: string[];
  /** Register the built-in models (replicate/hello-world, replicant/stream-test, …). */
  builtinModels: boolean;
  /** Run the director (predictions) in this process. */
  worker: boolean;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "silent";
  /**
   * Scale-out mode: PostgreSQL, BullMQ on Redis, S3 and Redis pub/sub instead of the embedded
   * backends. Every process of a deployment must name the same services.
   */
  scaleOut?: ScaleOutConfig | undefined;
  /** What this process does: "api" (HTTP only), "worker" (director, webhooks, housekeeping) or "all". */
  role?: ServerRole | undefined;
  /** Hex key signing file and stream URLs; every process of a deployment must share it. Default: DIR/signing.key. */
  signingKey?: string | undefined;
}

export type ServerRole = "api" | "worker" | "all";

export interface ScaleOutConfig {
  /** `postgres://user:password@host:port/database` */
  databaseUrl: string;
  /** `redis://[:password@]host:port[/db]` */
  redisUrl: string;
  /** Prefix of every Redis key and channel (queues, events). Default `replicant`. */
  redisPrefix?: string | undefined;
  s3: {
    bucket: string;
    endpoint?: string | undefined;
    region?: string | undefined;
    credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
    /** Prepended to every object key. */
    keyPrefix?: string | undefined;
    /** Create the bucket at start if it is missing (development). */
    createBucket?: boolean | undefined;
  };
  /** Connections per process. Default 10. */
  databasePoolSize?: number | undefined;
  /** A crashed worker's job becomes recoverable this long after its last lock renewal. Default 30 000 ms. */
  queueLockMs?: number | undefined;
  /** How often a worker looks for accepted predictions missing from the queue (after a Redis loss). Default 15 000 ms. */
  reconcileIntervalMs?: number | undefined;
}

export function defaultConfig(overrides: Partial<ServerConfig> & { dataDir: string }): ServerConfig {
  return {
    host: "127.0.0.1",
    port: 5000,
    defaultUsername: "local",
    allowPrivateUrls: false,
    durability: "normal",
    bodyLimit: 1024 * 1024,
    jsonMaxDepth: 64,
    fileSizeLimit: 100 * 1024 * 1024,
    headersTimeoutMs: 10_000,
    // A 100 MB upload at 1 MB/s fits; the drip floor catches slow bodies long before this.
    requestTimeoutMs: 300_000,
    bodyDripFloor: { bytes: 16 * 1024, windowMs: 10_000 },
    streamMaxLagBytes: 1024 * 1024,
    streamMaxStallMs: 30_000,
    rateLimit: { predictionCreatesPerMinute: 600, otherRequestsPerMinute: 3000 },
    retentionMs: 60 * 60 * 1000,
    fileExpiryMs: 24 * 60 * 60 * 1000,
    fileOutputs: "auto",
    dataUriLimit: 1024 * 1024,
    webhookMaxAgeMs: 24 * 60 * 60 * 1000,
    webhookTimeoutMs: 20_000,
    predictionTimeoutMs: 30 * 60 * 1000,
    workerConcurrency: 32,
    sandbox: "auto",
    runnerLimits: { memoryMb: 2048, pids: 256 },
    allowPushFromAll: false,
    runnerIdleTimeoutMs: 5 * 60 * 1000,
    corsOrigins: [],
    builtinModels: true,
    worker: true,
    logLevel: "warn",
    ...overrides,
  };
}
