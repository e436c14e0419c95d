import type { AddressInfo } from "node:net";
import { join } from "node:path";
import cors from "@fastify/cors";
import multipart from "@fastify/multipart";
import rateLimit from "@fastify/rate-limit";
import { PROBLEM_CONTENT_TYPE } from "@replicant/protocol";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import type { AccountRecord, BlobStore, EventBus, JobQueue, Store } from "./backends/types.js";
import {
  ensureAccount,
  ensureAdminToken,
  ensureDataDir,
  loadSigningKey,
  registerBuiltinModels,
} from "./bootstrap.js";
import { requestTimeoutOptions, watchRequestBodies } from "./client-timeouts.js";
import type { ServerConfig } from "./config.js";
import type { ServerContext } from "./context.js";
import { Director } from "./director.js";
import { ProblemError } from "./errors.js";
import { FileOutputs } from "./file-outputs.js";
import { frameworkErrorHandler, longParameterProblem, multipartSyntaxProblem } from "./framework-errors.js";
import { bearerToken, RouteTable } from "./http.js";
import { sha256Hex } from "./ids.js";
import { createInputMaterializer } from "./input-wiring.js";
import { jsonNestingExceeds } from "./json-depth.js";
import { LoginLinks } from "./login-links.js";
import { Maintenance } from "./maintenance.js";
import { checkOutboundUrl, checkOutboundUrlResolved } from "./net/url-guard.js";
import { PredictionService } from "./predictions-service.js";
import { registerAccountRoutes } from "./routes/account.js";
import { registerAdminRoutes } from "./routes/admin.js";
import { registerDeploymentRoutes } from "./routes/deployments.js";
import type { RouteDeps } from "./routes/deps.js";
import { registerFileRoutes } from "./routes/files.js";
import { registerHardwareRoutes } from "./routes/hardware.js";
import { registerModelRoutes } from "./routes/models.js";
import { registerPredictionRoutes } from "./routes/predictions.js";
import { registerPushRoutes } from "./routes/push.js";
import { loginLinkRefusal, loginUrl, registerSignInRoutes } from "./routes/sign-in.js";
import { registerStreamRoutes } from "./routes/stream.js";
import { registerTrainingRoutes } from "./routes/trainings.js";
import { registerWebRoutes } from "./routes/web.js";
import { RunnerRegistry, resolveSandbox } from "./runner-registry.js";
import { UrlSigner } from "./urls.js";
import { InputValidator } from "./validation.js";
import { VersionCache } from "./version-cache.js";
import { createWebhooks, type Webhooks } from "./webhook-wiring.js";

export interface Backends {
  store: Store;
  queue: JobQueue;
  blobs: BlobStore;
  bus: EventBus;
}

/** Opens the embedded backends in the data directory: SQLite, the SQLite lease queue, blobs, an in-process bus. */
export async function openEmbeddedBackends(config: ServerConfig): Promise<Backends> {
  const { openSqlite, KyselyStore, SqliteJobQueue, FsBlobStore, MemoryEventBus } = await import(
    "./backends/index.js"
  );
  const path = join(config.dataDir, "replicant.db");
  const { db, kysely } = openSqlite(path, config.durability);
  const { SqliteCheckpointer } = await import("./backends/sqlite-checkpointer.js");
  const checkpointer = await SqliteCheckpointer.start(db, path);
  const store = new KyselyStore(kysely, {
    dialect: "sqlite",
    sqlite: db,
    ...(checkpointer ? { beforeClose: () => checkpointer.stop() } : {}),
  });
  return {
    store,
    queue: new SqliteJobQueue(db, { sharesConnectionWithStore: true }),
    blobs: new FsBlobStore(join(config.dataDir, "blobs")),
    bus: new MemoryEventBus(),
  };
}

/**
 * Scale-out backends (PostgreSQL, BullMQ on Redis, S3, Redis pub/sub) when the config names them,
 * the embedded ones otherwise. `attach` runs once the server context exists.
 */
export async function openBackends(
  config: ServerConfig,
): Promise<Backends & { attach?: (ctx: ServerContext) => void }> {
  if (config.scaleOut === undefined) return openEmbeddedBackends(config);
  const { openScaleOutBackends } = await import("./backends/scale-out.js");
  return openScaleOutBackends(config.scaleOut);
}

const AUTH_CACHE_MS = 5_000;

/** A create waits this long for the DNS answers of its webhook and input URLs' host names. */
const DNS_CHECK_TIMEOUT_MS = 3000;

/** The router refuses longer path parameters; the not-found handler answers them with a 404. */
const MAX_PARAM_LENGTH = 200;

/** How often a process that runs predictions looks for deployments to warm or retire. */
const DEPLOYMENT_WARM_INTERVAL_MS = 5000;

/** One Replicant API server: HTTP routes, the director, webhook delivery and housekeeping. */
export class ReplicantServer {
  readonly app: FastifyInstance;
  readonly ctx: ServerContext;
  /** The default account's token, and whether it was generated on this start (print it once). */
  adminToken = "";
  adminTokenGenerated = false;
  /** The playground's one-time sign-in codes, in this process's memory (routes/sign-in.ts). */
  readonly loginLinks: LoginLinks;
  private director: Director | undefined;
  private deploymentWarmer: NodeJS.Timeout | undefined;
  private webhooks: Webhooks | undefined;
  private maintenance: Maintenance | undefined;
  private runners: RunnerRegistry | undefined;
  private predictions: PredictionService | undefined;
  /** Scale-out: the rate-limit counters live in Redis, shared by every API process. */
  private rateLimitRedis: { disconnect(): void } | undefined;
  /** Keyed by the Authorization header itself, so a hit costs no parsing and no hash; entries keep the hash for revocation. */
  private readonly authCache = new Map<string, { account: AccountRecord; hash: string; until: number }>();
  private readonly stopWatchingBodies: () => void;

  private constructor(config: ServerConfig, backends: Backends, signingKey: Buffer) {
    const urls = new UrlSigner(config.publicUrl ?? `http://${config.host}:${config.port}`, signingKey);
    this.ctx = {
      config,
      ...backends,
      urls,
      versions: new VersionCache(backends.store),
      now: () => new Date(),
    };
    this.loginLinks = new LoginLinks(() => this.ctx.now().getTime());
    this.app = Fastify({
      logger: config.logLevel === "silent" ? false : { level: config.logLevel },
      bodyLimit: config.bodyLimit,
      // Headers within 10 s, a request within 5 min, and a body no slower than a floor (below).
      ...requestTimeoutOptions(config),
      keepAliveTimeout: 72_000,
      return503OnClosing: true,
      forceCloseConnections: true,
      onProtoPoisoning: "error",
      onConstructorPoisoning: "error",
      routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH },
      frameworkErrors: frameworkErrorHandler(MAX_PARAM_LENGTH),
    });
    this.stopWatchingBodies = watchRequestBodies(this.app.server, config);
  }

  static async create(config: ServerConfig, backends?: Backends): Promise<ReplicantServer> {
    await ensureDataDir(config.dataDir);
    const signingKey =
      config.signingKey !== undefined
        ? Buffer.from(config.signingKey, "hex")
        : await loadSigningKey(config.dataDir);
    const opened: Backends & { attach?: (ctx: ServerContext) => void } =
      backends ?? (await openBackends(config));
    await opened.store.migrate();
    const server = new ReplicantServer(config, opened, signingKey);
    await server.setup();
    opened.attach?.(server.ctx);
    return server;
  }

  get url(): string {
    return this.ctx.urls.base;
  }

  private async setup(): Promise<void> {
    const { ctx, app } = this;
    const { config, store } = ctx;
    const now = ctx.now();
    const account = await ensureAccount(store, config.defaultUsername, "user", now);
    const admin = await ensureAdminToken(store, account, config.dataDir, config.adminToken, now);
    this.adminToken = admin.token;
    this.adminTokenGenerated = admin.generated;
    if (config.builtinModels) await registerBuiltinModels(store, now);

    this.webhooks = createWebhooks(ctx);
    const fileOutputs = new FileOutputs(ctx);
    const predictions = new PredictionService(
      ctx,
      new InputValidator(),
      {
        webhook: (url) =>
          void checkOutboundUrl(url, { allowPrivate: config.allowPrivateUrls, field: "webhook" }),
        resolved: async (url, field) =>
          void (await checkOutboundUrlResolved(url, {
            allowPrivate: config.allowPrivateUrls,
            field,
            timeoutMs: DNS_CHECK_TIMEOUT_MS,
          })),
      },
      () => this.webhooks?.wake(),
    );
    this.predictions = predictions;
    ctx.onTokenRevoked = (hash) => {
      for (const [key, entry] of this.authCache) if (entry.hash === hash) this.authCache.delete(key);
    };
    // `--sandbox bwrap` on a machine without a working bubblewrap is refused at start, not at first push.
    if (config.sandbox === "bwrap") resolveSandbox(config.sandbox);
    this.runners = new RunnerRegistry(ctx);
    if (config.worker) {
      this.director = new Director(ctx, this.runners, createInputMaterializer(ctx), fileOutputs, {
        onOutbox: () => this.webhooks?.wake(),
        finishTraining: (record, output, scratchDir) =>
          this.runners!.finishTraining(record, output, fileOutputs, scratchDir),
        scratchRoot: () => this.runners!.scratchRoot(),
      });
    }
    this.maintenance = new Maintenance(ctx);

    if (!app.supportedMethods.includes("QUERY")) app.addHttpMethod("QUERY", { hasBody: true });
    // JSON bodies may be empty (POST …/cancel from clients that always send a JSON content type).
    const parseJson = app.getDefaultJsonParser("error", "error");
    app.removeContentTypeParser("application/json");
    const depthRefused = new ProblemError(
      400,
      "Bad request",
      `JSON nested deeper than ${config.jsonMaxDepth} levels`,
    );
    app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
      const text = typeof body === "string" ? body : body.toString("utf8");
      if (text.trim() === "") return done(null, undefined);
      // Before parsing: values this deep overflow the stack in validation, cloning or serialization.
      if (jsonNestingExceeds(text, config.jsonMaxDepth)) return done(depthRefused, undefined);
      parseJson(request, text, done);
    });
    if (config.corsOrigins.length > 0) {
      await app.register(cors, {
        origin: config.corsOrigins.includes("*") ? true : config.corsOrigins,
        methods: ["GET", "POST", "PATCH", "DELETE", "QUERY", "OPTIONS"],
        // Request headers are reflected from the preflight: clients send their own (Cache-Control, Last-Event-ID…).
        exposedHeaders: ["location", "retry-after", "idempotent-replayed"],
      });
    }

    app.decorateRequest("account", undefined);
    // A callback hook, not an async one: a cached token costs no promise and no extra microtask.
    app.addHook("onRequest", (request, reply, done) => {
      reply.header("x-content-type-options", "nosniff");
      if (!request.url.startsWith("/v1/")) return done();
      const header = request.headers.authorization;
      if (header === undefined) {
        if (request.routeOptions.config.public || request.method === "OPTIONS") return done();
        return done(new ProblemError(401, "Unauthenticated", "You did not pass an authentication token"));
      }
      const cached = this.cachedAccount(header);
      if (cached !== undefined) {
        request.account = cached;
        return done();
      }
      this.authenticate(header).then((account) => {
        request.account = account;
        done();
      }, done);
    });

    if (config.rateLimit) {
      const limits = config.rateLimit;
      // Scale-out: one count per account across all API processes (a per-process count would let a
      // client behind a load balancer make N times the limit). If Redis fails, requests go unlimited.
      let shared: { redis: unknown; nameSpace: string; skipOnError: boolean } | undefined;
      if (config.scaleOut !== undefined && config.role !== "worker") {
        const { Redis } = await import("ioredis");
        const redis = new Redis(config.scaleOut.redisUrl, {
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
          commandTimeout: 1000,
        });
        redis.on("error", () => {});
        this.rateLimitRedis = redis;
        shared = {
          redis,
          nameSpace: `${config.scaleOut.redisPrefix ?? "replicant"}:rate-limit:`,
          skipOnError: true,
        };
      }
      await app.register(rateLimit, {
        ...shared,
        global: true,
        hook: "preHandler",
        timeWindow: 60_000,
        max: (request) =>
          request.routeOptions.config.createsPrediction
            ? limits.predictionCreatesPerMinute
            : limits.otherRequestsPerMinute,
        keyGenerator: (request) =>
          `${request.account?.id ?? `ip:${request.ip}`}:${request.routeOptions.config.createsPrediction ? "create" : "other"}`,
        errorResponseBuilder: (_request, context) =>
          new ProblemError(
            429,
            "Too Many Requests",
            `Request was throttled. Your rate limit resets in ~${Math.ceil(context.ttl / 1000)}s.`,
          ),
      });
    }

    app.setErrorHandler((error: FastifyError | ProblemError, request, reply) => {
      const problem = toProblemError(error);
      if (problem.status >= 500) request.log.error(error);
      if (problem.headers) reply.headers(problem.headers);
      if (problem.status === 429 && !reply.hasHeader("retry-after")) reply.header("retry-after", "60");
      return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem.toProblem());
    });

    const table = new RouteTable();
    app.setNotFoundHandler((request, reply) => {
      const path = request.url.split("?")[0] ?? "";
      const allowed = table.allowed(path);
      // A known path shape and method the router did not match: one of its parameters was too long.
      if (allowed?.includes(request.method)) {
        const problem = longParameterProblem(MAX_PARAM_LENGTH);
        return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem.toProblem());
      }
      if (allowed) {
        const status = request.method === "OPTIONS" ? 204 : 405;
        reply.header("allow", allowed.join(", "));
        if (status === 204) return reply.code(204).send();
        return reply
          .code(405)
          .type(PROBLEM_CONTENT_TYPE)
          .send({
            title: "Method Not Allowed",
            detail: `${request.method} is not allowed on ${path}`,
            status: 405,
          });
      }
      return reply
        .code(404)
        .type(PROBLEM_CONTENT_TYPE)
        .send({ title: "Not found", detail: `No route for ${request.method} ${path}`, status: 404 });
    });

    const deps: RouteDeps = { app, table, ctx, predictions, fileOutputs };
    registerPredictionRoutes(deps);
    registerStreamRoutes(deps);
    registerModelRoutes(deps);
    registerTrainingRoutes(deps);
    registerDeploymentRoutes(deps);
    // Multipart only where files are uploaded: the plugin adds two hooks to every request of its scope.
    await app.register(async (scope) => {
      await scope.register(multipart, {
        limits: { fileSize: config.fileSizeLimit, files: 2, fields: 10, fieldSize: 64 * 1024, parts: 20 },
      });
      registerFileRoutes({ ...deps, app: scope });
    });
    registerHardwareRoutes(deps);
    registerAccountRoutes(deps);
    registerAdminRoutes(deps);
    registerSignInRoutes(deps, this.loginLinks);
    registerWebRoutes(deps);
    registerPushRoutes(deps);
    app.get("/health", async () => ({ status: "ok" }));
  }

  /** The account of a token seen in the last few seconds, keyed by the whole header (no parsing, no hash). */
  private cachedAccount(header: string): AccountRecord | undefined {
    const cached = this.authCache.get(header);
    return cached !== undefined && cached.until > Date.now() ? cached.account : undefined;
  }

  private async authenticate(header: string): Promise<AccountRecord> {
    const token = bearerToken(header);
    if (token === undefined)
      throw new ProblemError(401, "Unauthenticated", "You did not pass a valid authentication token");
    const now = Date.now();
    const hash = sha256Hex(token);
    const account = await this.ctx.store.getAccountByTokenHash(hash);
    if (!account)
      throw new ProblemError(401, "Unauthenticated", "You did not pass a valid authentication token");
    if (this.authCache.size > 10_000) this.authCache.clear();
    this.authCache.set(header, { account, hash, until: now + AUTH_CACHE_MS });
    return account;
  }

  /**
   * A one-time link that signs the playground in as the default account (what `replicant serve` prints),
   * or undefined where this server issues none (no playground build, or scale-out). Call it after
   * `listen()`: the link names the public URL, which a port 0 only settles there.
   */
  createLoginLink(): string | undefined {
    if (loginLinkRefusal(this.ctx.config) !== undefined) return undefined;
    return loginUrl(this.ctx.urls, this.loginLinks.issue(this.adminToken).code);
  }

  /** Listens, then starts the director (recovering what a crash left), webhooks and housekeeping. */
  async listen(): Promise<string> {
    const { config } = this.ctx;
    await this.app.listen({ host: config.host, port: config.port });
    const address = this.app.server.address() as AddressInfo;
    if (!config.publicUrl) {
      const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
      this.ctx.urls.setPublicUrl(`http://${host}:${address.port}`);
    }
    await this.startWorkers();
    return this.url;
  }

  /** For tests that use inject() without a socket. */
  async startWorkers(): Promise<void> {
    const { config } = this.ctx;
    // Scale-out: another worker may be running the unfinished predictions; the reconciler recovers instead.
    await this.director?.start(config.scaleOut === undefined);
    if (this.director && this.runners) {
      const runners = this.runners;
      const warm = () =>
        void runners.warmDeployments().catch((error) => console.error("warming deployments failed:", error));
      this.ctx.onDeploymentsChanged = warm;
      warm();
      // Changes made through other processes (scale-out API processes) show up within this interval.
      this.deploymentWarmer = setInterval(warm, DEPLOYMENT_WARM_INTERVAL_MS);
      this.deploymentWarmer.unref();
    }
    if (config.role === "api") return;
    this.webhooks?.start();
    this.maintenance?.start();
  }

  /** Runs one retention and expiry pass now (tests move the clock with `ctx.now` first). */
  async sweep(): Promise<void> {
    await this.maintenance?.sweep();
  }

  async close(): Promise<void> {
    this.stopWatchingBodies();
    await this.app.close();
    if (this.deploymentWarmer) clearInterval(this.deploymentWarmer);
    delete this.ctx.onDeploymentsChanged;
    await this.director?.stop();
    await this.predictions?.flushRunCounts();
    await this.webhooks?.stop();
    this.maintenance?.stop();
    await this.runners?.close();
    await this.ctx.queue.close();
    await this.ctx.bus.close();
    await this.ctx.blobs.close();
    await this.ctx.store.close();
    this.rateLimitRedis?.disconnect();
  }
}

function toProblemError(error: FastifyError | ProblemError): ProblemError {
  if (error instanceof ProblemError) return error;
  const code = (error as FastifyError).code;
  if (code === "URL_REFUSED") return new ProblemError(422, "Invalid URL", error.message);
  if (code === "INVALID_CURSOR") return new ProblemError(400, "Bad request", "The cursor is not valid");
  if (code === "FST_REQ_FILE_TOO_LARGE") {
    return new ProblemError(413, "Request Entity Too Large", "Files must be less than 100MB in size");
  }
  if (code === "FST_ERR_CTP_BODY_TOO_LARGE") {
    return new ProblemError(
      413,
      "Request Entity Too Large",
      "The request body is larger than the server accepts",
    );
  }
  const multipart = multipartSyntaxProblem(error);
  if (multipart) return multipart;
  const status = (error as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    const title =
      status === 400 ? "Bad request" : status === 415 ? "Unsupported Media Type" : "Request error";
    return new ProblemError(status, title, error.message);
  }
  return new ProblemError(500, "Internal Server Error", "Internal server error");
}
