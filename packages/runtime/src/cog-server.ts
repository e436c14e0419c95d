/**
 * Cog's HTTP protocol (Python Cog ≤0.16 flavour, the one Replicate drives) in front of one runner process.
 * Routes: GET / /health-check /openapi.json, POST /predictions, PUT /predictions/{id},
 * POST /predictions/{id}/cancel, the /trainings equivalents when the predictor can train, POST /shutdown.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, rm, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  COG_WEBHOOK_EVENTS,
  type CogHealthCheckResponse,
  type CogPredictionRequest,
  type CogStatus,
  type CogValidationErrorItem,
  type CogWebhookEvent,
} from "@replicant/protocol";
import {
  encodeFiles,
  type FileEncoder,
  fetchInputFile,
  isFileUrl,
  putToPrefix,
  toDataUri,
  uploadFile,
} from "./cog-files.js";
import { WebhookSender } from "./cog-webhooks.js";
import { InProcessRunner } from "./in-process-runner.js";
import type { InputDecls, InputSpec } from "./inputs.js";
import { RunnerHost, type RunnerHostOptions } from "./runner-host.js";
import type { PredictorDescription, RunKind } from "./runner-protocol.js";
import { type FileValue, hasFiles, type RunResult } from "./runner-types.js";
import { generateOpenApiSchema } from "./schema.js";
import { validateInput } from "./validate.js";

export interface ServeModelOptions {
  /** Absolute path of a compiled module whose default export is a predictor. */
  predictorPath: string;
  /** Default: $PORT, else 5000. 0 picks a free port. */
  port?: number;
  /** Default 0.0.0.0. */
  host?: string;
  /** Cog's --upload-url: file outputs are PUT here instead of being returned as data URIs. */
  uploadUrl?: string;
  /** Options of the runner process (timeouts, memory limit, weights...). */
  runner?: Omit<RunnerHostOptions, "predictorPath">;
  /**
   * "process" (default, like Cog): the predictor runs in a child process, so crashes, hangs and
   * ignored cancels are contained. "in-process": no IPC hop (lowest latency), no isolation.
   */
  isolation?: "process" | "in-process";
}

export interface ModelServer {
  readonly url: string;
  readonly port: number;
  /** Resolves once the server has stopped (after close() or POST /shutdown). */
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

interface Prediction {
  id: string | null;
  kind: RunKind;
  input: Record<string, unknown>;
  output: unknown;
  logs: string;
  error: string | null;
  status: CogStatus;
  createdAt: string | null;
  startedAt: string | null;
  completedAt: string | null;
  metrics: Record<string, unknown> | null;
  controller: AbortController;
  webhook: WebhookSender | undefined;
  /** Resolves with the final body once the prediction is terminal. */
  finished: Promise<string>;
  encode: FileEncoder;
}

const _JSON_TYPE = { "content-type": "application/json" };
const SECRET_MASK = "**********";
const MAX_BODY = 100 * 1024 * 1024;

/** Python's datetime.isoformat() for an aware UTC timestamp. */
function isoNow(): string {
  return new Date().toISOString().replace("Z", "000+00:00");
}

function send(res: ServerResponse, status: number, body: unknown) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error("request body too large"));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () =>
      resolve(chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString()),
    );
    req.on("error", reject);
  });
}

function isFileSpec(spec: InputSpec): boolean {
  return spec.kind === "file" || (spec.kind === "array" && spec.items?.kind === "file");
}

class CogServer {
  readonly runner: RunnerHost | InProcessRunner;
  readonly http: Server;
  private readonly predictions = new Map<string, Prediction>();
  /** Slots taken, including predictions still downloading their inputs. */
  private active = 0;
  private setupOutcome: "succeeded" | "failed" | undefined;
  private schemaJson: string | undefined;
  private shuttingDown = false;
  private readonly tempRoot: string;
  private tempCounter = 0;
  private anonymousRuns = 0;
  private readonly idPrefix = `cog-${randomBytes(4).toString("hex")}-`;
  private readonly throttleMs: number;
  closed!: Promise<void>;

  constructor(private readonly options: ServeModelOptions) {
    const weights = options.runner?.weights;
    this.runner =
      options.isolation === "in-process"
        ? new InProcessRunner(
            weights
              ? { predictorPath: options.predictorPath, weights }
              : { predictorPath: options.predictorPath },
          )
        : new RunnerHost({ ...options.runner, predictorPath: options.predictorPath });
    this.runner.ready.then(
      () => {
        this.setupOutcome = "succeeded";
      },
      () => {
        this.setupOutcome = "failed";
      },
    );
    this.tempRoot = join(tmpdir(), `replicant-cog-${process.pid}-${randomBytes(4).toString("hex")}`);
    const throttle = Number(process.env.COG_THROTTLE_RESPONSE_INTERVAL ?? "0.5");
    this.throttleMs = Number.isFinite(throttle) ? throttle * 1000 : 500;
    this.http = createServer((req, res) => {
      this.route(req, res).catch((error: unknown) => {
        if (!res.headersSent)
          send(res, 500, { detail: error instanceof Error ? error.message : String(error) });
        else res.destroy();
      });
    });
    this.http.keepAliveTimeout = 65_000;
  }

  async close() {
    if (this.shuttingDown) return this.closed;
    this.shuttingDown = true;
    for (const prediction of this.predictions.values()) prediction.controller.abort();
    await this.runner.kill("server shut down");
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeIdleConnections();
    });
    rmSync(this.tempRoot, { recursive: true, force: true });
  }

  private health(): CogHealthCheckResponse {
    const runner = this.runner;
    let status: CogHealthCheckResponse["status"];
    if (this.setupOutcome === "failed") status = "SETUP_FAILED";
    else if (runner.state === "starting") status = "STARTING";
    else if (runner.state !== "ready" || this.shuttingDown) status = "DEFUNCT";
    else status = this.active >= runner.concurrency ? "BUSY" : "READY";
    if (!this.setupOutcome) return { status, setup: {} };
    return {
      status,
      setup: {
        started_at: runner.setupStartedAt.toISOString().replace("Z", "000+00:00"),
        completed_at: (runner.setupCompletedAt ?? new Date()).toISOString().replace("Z", "000+00:00"),
        logs: runner.setupLogs,
        status: this.setupOutcome,
      },
    };
  }

  private async route(req: IncomingMessage, res: ServerResponse) {
    const url = req.url ?? "/";
    const path = url.includes("?") ? url.slice(0, url.indexOf("?")) : url;
    const method = req.method ?? "GET";
    if (method === "GET") {
      if (path === "/health-check") return send(res, 200, this.health());
      if (path === "/openapi.json") return this.openapi(res);
      if (path === "/") return send(res, 200, await this.index());
      return send(res, 404, { detail: "Not Found" });
    }
    const parts = path.split("/");
    const collection = parts[1];
    if (method === "POST" && path === "/shutdown") {
      send(res, 200, {});
      setImmediate(() => void this.close());
      return;
    }
    if (collection !== "predictions" && collection !== "trainings")
      return send(res, 404, { detail: "Not Found" });
    const kind: RunKind = collection === "predictions" ? "prediction" : "training";
    if (kind === "training" && !(await this.describe())?.train)
      return send(res, 404, { detail: "Not Found" });
    const id = parts[2] ? decodeURIComponent(parts[2]) : undefined;
    if (method === "POST" && parts.length === 2) return this.create(kind, req, res, undefined);
    if (method === "PUT" && parts.length === 3 && id) return this.create(kind, req, res, id);
    if (method === "POST" && parts.length === 4 && parts[3] === "cancel" && id) {
      const prediction = this.predictions.get(id);
      if (!prediction || prediction.kind !== kind) return send(res, 404, {});
      prediction.controller.abort();
      return send(res, 200, {});
    }
    return send(res, 405, { detail: "Method Not Allowed" });
  }

  private async describe(): Promise<PredictorDescription | undefined> {
    return this.runner.description ?? this.runner.described.catch(() => undefined);
  }

  private async openapi(res: ServerResponse) {
    if (!this.schemaJson) {
      const description = await this.describe();
      if (!description) return send(res, 503, { error: "OpenAPI schema not available" });
      this.schemaJson = JSON.stringify(generateOpenApiSchema(description));
    }
    send(res, 200, this.schemaJson);
  }

  private async index() {
    const index: Record<string, string> = {
      cog_version: "replicant",
      docs_url: "/docs",
      openapi_url: "/openapi.json",
      shutdown_url: "/shutdown",
      healthcheck_url: "/health-check",
      predictions_url: "/predictions",
      predictions_idempotent_url: "/predictions/{prediction_id}",
      predictions_cancel_url: "/predictions/{prediction_id}/cancel",
    };
    if (this.runner.description?.train) {
      index.trainings_url = "/trainings";
      index.trainings_idempotent_url = "/trainings/{training_id}";
      index.trainings_cancel_url = "/trainings/{training_id}/cancel";
    }
    return index;
  }

  private async create(kind: RunKind, req: IncomingMessage, res: ServerResponse, pathId: string | undefined) {
    const text = await readBody(req);
    let body: CogPredictionRequest;
    try {
      body = text.trim() === "" ? {} : JSON.parse(text);
      if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("not an object");
    } catch {
      return send(res, 422, {
        detail: [{ loc: ["body"], msg: "value is not a valid dict", type: "type_error.dict" }],
      });
    }
    if (pathId !== undefined) {
      if (body.id != null && body.id !== pathId) {
        return send(res, 422, {
          detail: [
            {
              loc: ["body", "id"],
              msg: "prediction ID must match the ID supplied in the URL",
              type: "value_error",
            },
          ],
        });
      }
      body.id = pathId;
    }
    const id = typeof body.id === "string" ? body.id : null;
    const existing = id === null ? undefined : this.predictions.get(id);
    if (existing) return send(res, 202, this.body(existing, existing.output));

    const runner = this.runner;
    if (this.setupOutcome === "failed" || (runner.state !== "ready" && runner.state !== "starting")) {
      return send(res, 503, {
        detail: this.setupOutcome === "failed" ? "Setup failed" : "Model is not available",
      });
    }
    if (runner.state !== "ready" || this.active >= runner.concurrency) {
      return send(res, 409, { detail: "Already running a prediction" });
    }
    const description = runner.description!;
    const decls = (kind === "training" ? description.train?.input : description.input) ?? {};
    const errors: CogValidationErrorItem[] = [];
    const checked = validateInput(decls, body.input ?? {});
    if (!checked.ok) errors.push(...checked.errors);
    for (const [name, spec] of Object.entries(decls)) {
      const value = body.input?.[name];
      if (value == null || !isFileSpec(spec)) continue;
      const urls = Array.isArray(value) ? value : [value];
      if (urls.some((url) => typeof url === "string" && !isFileUrl(url))) {
        errors.push({
          loc: ["body", "input", name],
          msg: "invalid or missing URL scheme",
          type: "value_error.url.scheme",
        });
      }
    }
    if (body.webhook != null && !/^https?:\/\/./i.test(body.webhook)) {
      errors.push({
        loc: ["body", "webhook"],
        msg: "invalid or missing URL scheme",
        type: "value_error.url.scheme",
      });
    }
    if (errors.length > 0 || !checked.ok) return send(res, 422, { detail: errors });

    const respondAsync = req.headers.prefer === "respond-async";
    const prediction = this.start(kind, id, body, checked.value, decls, respondAsync, req);
    if (respondAsync) {
      // Cog's 202 carries the current state (processing, unless inputs are still downloading).
      return send(res, 202, this.body(prediction, []));
    }
    send(res, 200, await prediction.finished);
  }

  private start(
    kind: RunKind,
    id: string | null,
    body: CogPredictionRequest,
    input: Record<string, unknown>,
    decls: InputDecls,
    respondAsync: boolean,
    req: IncomingMessage,
  ): Prediction {
    this.active++;
    const echo: Record<string, unknown> = { ...input };
    for (const [name, spec] of Object.entries(decls))
      if (spec.kind === "secret" && name in echo) echo[name] = SECRET_MASK;
    const dir = join(this.tempRoot, String(++this.tempCounter));
    const controller = new AbortController();
    const prediction: Prediction = {
      id,
      kind,
      input: echo,
      output: null,
      logs: "",
      error: null,
      status: "starting",
      createdAt: body.created_at ?? null,
      startedAt: null,
      completedAt: null,
      metrics: null,
      controller,
      webhook: undefined,
      finished: Promise.resolve(""),
      encode: this.encoder(id, respondAsync ? undefined : (body.output_file_prefix ?? undefined)),
    };
    if (body.webhook) {
      const headers: Record<string, string> = {};
      if (process.env.WEBHOOK_AUTH_TOKEN) headers.authorization = `Bearer ${process.env.WEBHOOK_AUTH_TOKEN}`;
      for (const name of ["traceparent", "tracestate"]) {
        const value = req.headers[name];
        if (typeof value === "string") headers[name] = value;
      }
      const filter = body.webhook_events_filter ?? COG_WEBHOOK_EVENTS;
      prediction.webhook = new WebhookSender({
        url: body.webhook,
        events: new Set<CogWebhookEvent>(filter),
        throttleMs: this.throttleMs,
        headers,
      });
    }
    if (id !== null) this.predictions.set(id, prediction);
    prediction.finished = this.execute(prediction, input, decls, dir).finally(() => {
      this.active--;
      if (id !== null && this.predictions.get(id) === prediction) this.predictions.delete(id);
      // Off the response path. Most runs never create their directory: existsSync settles that in one
      // system call, where rm's option check alone makes a synchronous lstat that throws (in R3's profile
      // that lstat was 17 % of the server's main thread).
      setImmediate(() => {
        if (existsSync(dir)) rm(dir, { recursive: true, force: true }, () => {});
      });
    });
    return prediction;
  }

  private async execute(
    prediction: Prediction,
    input: Record<string, unknown>,
    decls: InputDecls,
    dir: string,
  ) {
    const webhook = prediction.webhook;
    const snapshot = async () =>
      this.body(prediction, await encodeFiles(prediction.output, prediction.encode));
    let result: RunResult;
    try {
      const downloading = this.downloadInputs(input, decls, dir);
      if (downloading) await downloading;
      result = await this.runner.run(
        {
          id: prediction.id ?? `${this.idPrefix}${++this.anonymousRuns}`,
          input,
          signal: prediction.controller.signal,
          scratchDir: join(dir, "out"),
          kind: prediction.kind,
        },
        {
          onStart: () => {
            prediction.status = "processing";
            prediction.startedAt = isoNow();
            webhook?.progress("start", snapshot);
          },
          onLog: (text) => {
            prediction.logs += text;
            webhook?.progress("logs", snapshot);
          },
          onOutput: (_index, value) => {
            if (!Array.isArray(prediction.output)) prediction.output = [];
            (prediction.output as unknown[]).push(value);
            webhook?.progress("output", snapshot);
          },
        },
      );
    } catch (error) {
      result = { status: "failed", error: error instanceof Error ? error.message : String(error) };
    }
    prediction.startedAt ??= isoNow();
    const startedMs = Date.parse(prediction.startedAt.slice(0, 23));
    prediction.completedAt = isoNow();
    prediction.status = result.status;
    if (result.status === "succeeded") {
      prediction.output = result.output;
      prediction.metrics = { ...result.metrics, predict_time: (Date.now() - startedMs) / 1000 };
    } else if (result.status === "failed") {
      prediction.error = result.error;
      if (result.metrics) prediction.metrics = { ...result.metrics };
    }
    let output = prediction.output;
    if (hasFiles(output)) {
      try {
        output = await encodeFiles(output, prediction.encode);
      } catch (error) {
        prediction.status = "failed";
        prediction.error = error instanceof Error ? error.message : String(error);
        output = null;
      }
    }
    const body = this.body(prediction, output);
    const text = JSON.stringify(body);
    if (webhook) void webhook.completed(body);
    return text;
  }

  /** Replaces URL/data-URI file inputs with local paths; undefined (no await) when there are none. */
  private downloadInputs(
    input: Record<string, unknown>,
    decls: InputDecls,
    dir: string,
  ): Promise<void> | undefined {
    const names = Object.keys(decls).filter((name) => input[name] != null && isFileSpec(decls[name]!));
    if (names.length === 0) return undefined;
    mkdirSync(dir, { recursive: true });
    let index = 0;
    return (async () => {
      for (const name of names) {
        const value = input[name];
        input[name] = Array.isArray(value)
          ? await Promise.all(value.map((url: string) => fetchInputFile(url, dir, index++)))
          : await fetchInputFile(value as string, dir, index++);
      }
    })();
  }

  private encoder(id: string | null, outputFilePrefix: string | undefined): FileEncoder {
    const cache = new Map<string, Promise<string>>();
    const uploadUrl = this.options.uploadUrl;
    return (file: FileValue) => {
      let url = cache.get(file.path);
      if (!url) {
        if (outputFilePrefix) url = putToPrefix(outputFilePrefix, file);
        else if (uploadUrl) url = uploadFile(uploadUrl, file, id);
        else url = toDataUri(file);
        cache.set(file.path, url);
      }
      return url;
    };
  }

  private body(prediction: Prediction, output: unknown) {
    return {
      input: prediction.input,
      output,
      id: prediction.id,
      version: null,
      created_at: prediction.createdAt,
      started_at: prediction.startedAt,
      completed_at: prediction.completedAt,
      logs: prediction.logs,
      error: prediction.error,
      status: prediction.status,
      metrics: prediction.metrics,
    };
  }
}

/** Serves a predictor on Cog's HTTP protocol. Resolves once listening; setup continues in the background. */
export async function serveModel(options: ServeModelOptions): Promise<ModelServer> {
  const server = new CogServer(options);
  const port = options.port ?? (process.env.PORT ? Number(process.env.PORT) : 5000);
  const host = options.host ?? "0.0.0.0";
  await new Promise<void>((resolve, reject) => {
    server.http.once("error", reject);
    server.http.listen(port, host, () => resolve());
  });
  const address = server.http.address() as AddressInfo;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  server.http.on("close", () => resolveClosed());
  const shownHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  return {
    url: `http://${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${address.port}`,
    port: address.port,
    closed,
    close: async () => {
      await server.close();
      await closed;
    },
  };
}
