/**
 * Drives any server speaking Cog's HTTP protocol (Python Cog's full bodies or coglet's slim ones) as a
 * ModelRunner. Predictions are sync requests (Cog has no GET for polling, and re-PUTting a finished id
 * would run it again); with `stream: true` a local webhook receiver delivers logs and outputs as they happen.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { basename, join } from "node:path";
import type { CogHealthCheckResponse, CogPredictionResponse } from "@replicant/protocol";
import { contentTypeOf, extensionOf } from "./mime.js";
import type { FileValue, ModelRunner, RunCallbacks, RunRequest, RunResult } from "./runner-types.js";
import type { JsonSchema } from "./schema.js";

export interface CogClientOptions {
  /** e.g. http://127.0.0.1:5000 */
  baseUrl: string;
  /** Stream logs and iterator outputs through webhooks to a local receiver. Default false. */
  stream?: boolean;
  /** Address the Cog server can reach this process on, for the webhook receiver. Default 127.0.0.1. */
  webhookHost?: string;
}

type Snapshot = Partial<CogPredictionResponse> & { status?: CogPredictionResponse["status"] };

interface Tracker {
  onSnapshot(snapshot: Snapshot): void;
}

export class CogClient implements ModelRunner {
  private readonly baseUrl: string;
  private schemaPromise: Promise<JsonSchema> | undefined;
  private receiver: Promise<{ server: Server; url: string }> | undefined;
  private readonly trackers = new Map<string, Tracker>();

  constructor(private readonly options: CogClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
  }

  /** GET /openapi.json (cached). */
  schema(): Promise<JsonSchema> {
    this.schemaPromise ??= this.getJson("/openapi.json").catch((error: unknown) => {
      this.schemaPromise = undefined;
      throw error;
    }) as Promise<JsonSchema>;
    return this.schemaPromise;
  }

  health(): Promise<CogHealthCheckResponse> {
    return this.getJson("/health-check") as Promise<CogHealthCheckResponse>;
  }

  /** Polls /health-check until READY or BUSY; throws on SETUP_FAILED/DEFUNCT or after the timeout. */
  async waitUntilReady(timeoutMs = 300_000, intervalMs = 100): Promise<CogHealthCheckResponse> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const health = await this.health().catch(() => undefined);
      if (health?.status === "READY" || health?.status === "BUSY") return health;
      if (health?.status === "SETUP_FAILED" || health?.status === "DEFUNCT") {
        throw new Error(
          `Cog server is ${health.status}${health.setup?.logs ? `:\n${health.setup.logs}` : ""}`,
        );
      }
      if (Date.now() > deadline) throw new Error(`Cog server not ready after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }

  /** POST /predictions/{id}/cancel; false when the server does not know the id. */
  async cancel(id: string, kind: RunRequest["kind"] = "prediction"): Promise<boolean> {
    const collection = kind === "training" ? "trainings" : "predictions";
    const response = await fetch(`${this.baseUrl}/${collection}/${encodeURIComponent(id)}/cancel`, {
      method: "POST",
    });
    await response.arrayBuffer();
    return response.ok;
  }

  async run(request: RunRequest, callbacks: RunCallbacks): Promise<RunResult> {
    if (request.signal.aborted) return { status: "canceled" };
    let schema: JsonSchema;
    try {
      schema = await this.schema();
    } catch (error) {
      return { status: "failed", error: `could not read the model's schema: ${messageOf(error)}` };
    }
    const training = request.kind === "training";
    const components = ((schema.components as JsonSchema | undefined)?.schemas ?? {}) as Record<
      string,
      JsonSchema
    >;
    const inputSchema = components[training ? "TrainingInput" : "Input"] ?? {};
    const outputSchema = components[training ? "TrainingOutput" : "Output"] ?? {};
    const iterator = outputSchema["x-cog-array-type"] === "iterator";
    const files = new FileOutputs(components, request.scratchDir);

    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      callbacks.onStart();
    };
    let logLength = 0;
    const emitLogs = (logs: unknown) => {
      if (typeof logs !== "string" || logs.length <= logLength) return;
      callbacks.onLog(logs.slice(logLength));
      logLength = logs.length;
    };
    // Items are emitted in order, even though converting file items is asynchronous.
    let emitted = 0;
    let queued = 0;
    const converted: unknown[] = [];
    let chain: Promise<void> = Promise.resolve();
    const emitItems = (output: unknown) => {
      if (!iterator || !Array.isArray(output)) return;
      for (; queued < output.length; queued++) {
        const index = queued;
        const item = output[index];
        chain = chain.then(async () => {
          converted[index] = await files.convert(item, outputSchema.items as JsonSchema | undefined);
          callbacks.onOutput(index, converted[index]);
          emitted = index + 1;
        });
      }
    };

    let input: Record<string, unknown>;
    try {
      input = await encodeFileInputs(request.input, inputSchema, components);
    } catch (error) {
      return { status: "failed", error: `could not read a file input: ${messageOf(error)}` };
    }
    const body: Record<string, unknown> = { id: request.id, input };
    if (this.options.stream) {
      const receiver = await this.startReceiver();
      body.webhook = `${receiver.url}/${encodeURIComponent(request.id)}`;
      body.webhook_events_filter = ["start", "output", "logs"];
      this.trackers.set(request.id, {
        onSnapshot: (snapshot) => {
          start();
          emitLogs(snapshot.logs);
          emitItems(snapshot.output);
        },
      });
    }
    const onAbort = () => void this.cancel(request.id, request.kind).catch(() => {});
    request.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const response = await fetch(`${this.baseUrl}/${training ? "trainings" : "predictions"}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      const parsed = parseJson(text);
      if (response.status === 409) return { status: "failed", error: "Cog server is busy (409)" };
      if (response.status === 422)
        return { status: "failed", error: `invalid input: ${describe422(parsed)}` };
      if (!response.ok || !isSnapshot(parsed)) {
        return {
          status: "failed",
          error: `Cog server answered HTTP ${response.status}: ${text.slice(0, 500)}`,
        };
      }
      start();
      emitLogs(parsed.logs);
      emitItems(parsed.output);
      await chain;
      const metrics = numericMetrics(parsed.metrics);
      if (parsed.status === "canceled" || request.signal.aborted) return { status: "canceled" };
      if (parsed.status === "failed")
        return { status: "failed", error: parsed.error ?? "prediction failed", ...metrics };
      if (parsed.status !== "succeeded")
        return { status: "failed", error: `unexpected status ${parsed.status}` };
      const output =
        iterator && Array.isArray(parsed.output)
          ? converted.slice(0, emitted)
          : await files.convert(parsed.output, outputSchema);
      return { status: "succeeded", output, ...metrics };
    } catch (error) {
      if (request.signal.aborted) return { status: "canceled" };
      return { status: "failed", error: `Cog server request failed: ${messageOf(error)}` };
    } finally {
      request.signal.removeEventListener("abort", onAbort);
      this.trackers.delete(request.id);
    }
  }

  async close(): Promise<void> {
    const receiver = await this.receiver;
    if (receiver) await new Promise<void>((resolve) => receiver.server.close(() => resolve()));
  }

  private async getJson(path: string): Promise<unknown> {
    const response = await fetch(this.baseUrl + path);
    if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
    return response.json();
  }

  private startReceiver() {
    this.receiver ??= new Promise((resolve, reject) => {
      const server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (chunk: Buffer) => chunks.push(chunk));
        req.on("end", () => {
          res.end();
          const id = decodeURIComponent((req.url ?? "/").slice(1));
          const snapshot = parseJson(Buffer.concat(chunks).toString());
          if (isSnapshot(snapshot)) this.trackers.get(id)?.onSnapshot(snapshot);
        });
      });
      server.unref();
      const host = this.options.webhookHost ?? "127.0.0.1";
      server.once("error", reject);
      server.listen(0, host, () => {
        const port = (server.address() as AddressInfo).port;
        resolve({ server, url: `http://${host}:${port}` });
      });
    });
    return this.receiver;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isSnapshot(value: unknown): value is Snapshot {
  return (
    typeof value === "object" && value !== null && typeof (value as { status?: unknown }).status === "string"
  );
}

function describe422(body: unknown): string {
  const detail = (body as { detail?: unknown } | undefined)?.detail;
  if (!Array.isArray(detail)) return JSON.stringify(body);
  return detail
    .map((item: { loc?: unknown[]; msg?: string }) => `${(item.loc ?? []).slice(2).join(".")}: ${item.msg}`)
    .join("; ");
}

function numericMetrics(metrics: unknown): { metrics?: Record<string, number> } {
  if (typeof metrics !== "object" || metrics === null) return {};
  const result: Record<string, number> = {};
  for (const [key, value] of Object.entries(metrics)) if (typeof value === "number") result[key] = value;
  return Object.keys(result).length > 0 ? { metrics: result } : {};
}

function resolveRef(
  schema: JsonSchema | undefined,
  components: Record<string, JsonSchema>,
): JsonSchema | undefined {
  let current = schema;
  for (let depth = 0; current && depth < 10; depth++) {
    const ref =
      current.$ref ??
      (Array.isArray(current.allOf) ? (current.allOf[0] as JsonSchema | undefined)?.$ref : undefined);
    if (typeof ref !== "string") return current;
    current = components[ref.split("/").pop() ?? ""];
  }
  return current;
}

/** Local paths given for `format: uri` inputs are sent as data URIs. */
async function encodeFileInputs(
  input: Record<string, unknown>,
  inputSchema: JsonSchema,
  components: Record<string, JsonSchema>,
): Promise<Record<string, unknown>> {
  const properties = (inputSchema.properties ?? {}) as Record<string, JsonSchema>;
  const result: Record<string, unknown> = { ...input };
  const encode = async (value: unknown) => {
    if (typeof value !== "string" || /^(https?:|data:)/i.test(value)) return value;
    const type = contentTypeOf(value) ?? "application/octet-stream";
    return `data:${type};base64,${(await readFile(value)).toString("base64")}`;
  };
  for (const [name, value] of Object.entries(input)) {
    const property = resolveRef(properties[name], components);
    if (!property) continue;
    if (property.format === "uri") result[name] = await encode(value);
    else if (
      property.type === "array" &&
      (property.items as JsonSchema | undefined)?.format === "uri" &&
      Array.isArray(value)
    ) {
      result[name] = await Promise.all(value.map(encode));
    }
  }
  return result;
}

/** Output values the schema marks `format: uri` are fetched/decoded into the scratch dir as FileValues. */
class FileOutputs {
  private count = 0;
  private readonly prefix = randomBytes(3).toString("hex");
  constructor(
    private readonly components: Record<string, JsonSchema>,
    private readonly scratchDir: string,
  ) {}

  async convert(value: unknown, schema: JsonSchema | undefined): Promise<unknown> {
    const resolved = resolveRef(schema, this.components);
    if (!resolved) return value;
    if (typeof value === "string" && resolved.format === "uri") return this.download(value);
    if (Array.isArray(value))
      return Promise.all(value.map((item) => this.convert(item, resolved.items as JsonSchema)));
    if (typeof value === "object" && value !== null) {
      const properties = (resolved.properties ?? {}) as Record<string, JsonSchema>;
      const result: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value))
        result[key] = await this.convert(item, properties[key]);
      return result;
    }
    return value;
  }

  private async download(url: string): Promise<FileValue | string> {
    await mkdir(this.scratchDir, { recursive: true });
    let bytes: Uint8Array;
    let type: string | undefined;
    let name: string;
    if (url.startsWith("data:")) {
      const comma = url.indexOf(",");
      const meta = url.slice(5, comma);
      type = meta.replace(/;base64$/, "") || undefined;
      const data = url.slice(comma + 1);
      bytes = meta.endsWith(";base64") ? Buffer.from(data, "base64") : Buffer.from(decodeURIComponent(data));
      name = `output-${this.prefix}-${++this.count}${type ? extensionOf(type) : ""}`;
    } else if (/^https?:/i.test(url)) {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`downloading ${url}: HTTP ${response.status}`);
      bytes = new Uint8Array(await response.arrayBuffer());
      type = response.headers.get("content-type") ?? undefined;
      name = `${this.prefix}-${++this.count}-${basename(new URL(url).pathname) || "output"}`;
    } else {
      return url;
    }
    const path = join(this.scratchDir, name);
    await writeFile(path, bytes);
    const contentType = type ?? contentTypeOf(path);
    return contentType
      ? { __replicant_file__: true, path, content_type: contentType }
      : { __replicant_file__: true, path };
  }
}
