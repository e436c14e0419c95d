import { createHash } from "node:crypto";
import { isTerminal, WEBHOOK_EVENT_TYPES, type WebhookEventType } from "@replicant/protocol";
import type { AccountRecord, ModelRecord, PredictionRecord, VersionRecord } from "./backends/types.js";
import {
  DEADLINES_QUEUE,
  deadlineJobId,
  PREDICTIONS_QUEUE,
  predictionChannel,
  type ServerContext,
} from "./context.js";
import { badRequest, notFound, ProblemError, unprocessable, validationFailed } from "./errors.js";
import { newId } from "./ids.js";
import { remoteInputUrls } from "./inputs/input-urls.js";
import type { InputValidator } from "./validation.js";
import { outboxFor } from "./webhook-events.js";

export type PredictionTarget =
  | { kind: "version"; ref: string }
  | { kind: "model"; owner: string; name: string }
  | { kind: "deployment"; owner: string; name: string };

export interface CreateOptions {
  preferWaitSeconds?: number | undefined;
  cancelAfterMs?: number | undefined;
  idempotencyKey?: string | undefined;
}

export interface CreateResult {
  record: PredictionRecord;
  replayed: boolean;
}

const VERSION_ID = /^[0-9a-f]{64}$/;

export const invalidVersion = () =>
  unprocessable(
    "Invalid version or not permitted",
    "The specified version does not exist (or perhaps you don't have permission to use it?)",
  );

export function canSee(model: ModelRecord, account: AccountRecord | undefined): boolean {
  return model.visibility === "public" || model.owner_account_id === account?.id;
}

/**
 * Checks of the URLs a create names, before it is stored (deliveries and downloads check again at
 * connect time): both throw a 422 problem.
 */
export interface OutboundUrlChecks {
  /** The webhook URL's scheme, and its address when the host is an IP literal or a localhost name. */
  webhook(url: string): void;
  /** The same for `field`, and its host name's DNS answers. */
  resolved(url: string, field: string): Promise<void>;
}

/** Creating, waiting on and canceling predictions and trainings. */
const RUN_COUNT_FLUSH_MS = 250;

export class PredictionService {
  /** Run counts not yet written, per model id: one write per model every 250 ms instead of one per prediction. */
  private readonly pendingRunCounts = new Map<string, number>();
  private runCountTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: ServerContext,
    private readonly validator: InputValidator,
    private readonly urlChecks: OutboundUrlChecks,
    private readonly wakeWebhooks: () => void,
  ) {}

  /** Writes the run counts still held in memory (on shutdown, and by the timer). */
  async flushRunCounts(): Promise<void> {
    clearTimeout(this.runCountTimer);
    this.runCountTimer = undefined;
    const counts = [...this.pendingRunCounts];
    this.pendingRunCounts.clear();
    await Promise.all(
      counts.map(([modelId, by]) => this.ctx.store.incrementRunCount(modelId, by).catch(() => undefined)),
    );
  }

  private countRun(modelId: string): void {
    this.pendingRunCounts.set(modelId, (this.pendingRunCounts.get(modelId) ?? 0) + 1);
    if (this.runCountTimer !== undefined) return;
    this.runCountTimer = setTimeout(() => void this.flushRunCounts(), RUN_COUNT_FLUSH_MS);
    this.runCountTimer.unref();
  }

  /** Reads and checks the body fields every create endpoint shares. */
  parseBody(
    body: unknown,
    allowed: readonly string[],
    required: readonly string[],
  ): {
    input: Record<string, unknown>;
    webhook: string | null;
    filter: WebhookEventType[] | null;
    rest: Record<string, unknown>;
  } {
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw badRequest("The request body must be a JSON object");
    }
    const fields = body as Record<string, unknown>;
    const problems = [];
    for (const key of Object.keys(fields)) {
      if (!allowed.includes(key)) {
        problems.push({
          type: "additional_property_not_allowed",
          field: "",
          description: `Additional property ${key} is not allowed`,
        });
      }
    }
    for (const key of required) {
      if (fields[key] === undefined)
        problems.push({ type: "required", field: "", description: `${key} is required` });
    }
    if (
      fields.input !== undefined &&
      (typeof fields.input !== "object" || fields.input === null || Array.isArray(fields.input))
    ) {
      problems.push({ type: "invalid_type", field: "input", description: "Invalid type. Expected: object" });
    }
    let webhook: string | null = null;
    if (fields.webhook !== undefined && fields.webhook !== null) {
      if (typeof fields.webhook !== "string") {
        problems.push({
          type: "invalid_type",
          field: "webhook",
          description: "Invalid type. Expected: string",
        });
      } else webhook = fields.webhook;
    }
    let filter: WebhookEventType[] | null = null;
    if (fields.webhook_events_filter !== undefined && fields.webhook_events_filter !== null) {
      const value = fields.webhook_events_filter;
      if (!Array.isArray(value) || value.some((e) => !WEBHOOK_EVENT_TYPES.includes(e as WebhookEventType))) {
        problems.push({
          type: "enum",
          field: "webhook_events_filter",
          description: `webhook_events_filter must be an array of: ${WEBHOOK_EVENT_TYPES.join(", ")}`,
        });
      } else filter = [...new Set(value as WebhookEventType[])];
    }
    if (problems.length > 0) throw validationFailed(problems);
    if (webhook !== null) this.urlChecks.webhook(webhook);
    return { input: (fields.input ?? {}) as Record<string, unknown>, webhook, filter, rest: fields };
  }

  /** `owner/name`, `owner/name:version` or a bare 64-hex version id. */
  async resolveVersionRef(
    account: AccountRecord,
    ref: string,
  ): Promise<{ model: ModelRecord; version: VersionRecord; label: string }> {
    const { store } = this.ctx;
    const colon = ref.indexOf(":");
    if (colon >= 0 || ref.includes("/")) {
      const modelRef = colon >= 0 ? ref.slice(0, colon) : ref;
      const [owner, name, extra] = modelRef.split("/");
      if (!owner || !name || extra !== undefined) throw invalidVersion();
      const model = await store.getModel(owner, name);
      if (!model || !canSee(model, account)) throw invalidVersion();
      if (colon < 0) return this.latestOf(model);
      const version = await this.ctx.versions.get(ref.slice(colon + 1));
      if (!version || version.model_id !== model.id) throw invalidVersion();
      return { model, version, label: version.id };
    }
    if (!VERSION_ID.test(ref)) throw invalidVersion();
    const version = await this.ctx.versions.get(ref);
    const model = version ? await this.ctx.versions.modelOf(version) : undefined;
    if (!version || !model || !canSee(model, account)) throw invalidVersion();
    return { model, version, label: version.id };
  }

  async latestOf(model: ModelRecord): Promise<{ model: ModelRecord; version: VersionRecord; label: string }> {
    const version = model.latest_version_id
      ? await this.ctx.versions.get(model.latest_version_id)
      : undefined;
    if (!version) {
      throw unprocessable(
        "Model has no versions",
        `The model ${model.owner}/${model.name} has no versions to run yet`,
      );
    }
    return { model, version, label: model.is_official ? "hidden" : version.id };
  }

  async resolveTarget(
    account: AccountRecord,
    target: PredictionTarget,
  ): Promise<{ model: ModelRecord; version: VersionRecord; label: string; deployment: string | null }> {
    const { store } = this.ctx;
    if (target.kind === "version")
      return { ...(await this.resolveVersionRef(account, target.ref)), deployment: null };
    if (target.kind === "model") {
      const model = await store.getModel(target.owner, target.name);
      if (!model || !canSee(model, account)) throw notFound(`Model ${target.owner}/${target.name} not found`);
      return { ...(await this.latestOf(model)), deployment: null };
    }
    const deployment = await store.getDeployment(target.owner, target.name);
    if (!deployment || deployment.owner_account_id !== account.id) {
      throw notFound(`Deployment ${target.owner}/${target.name} not found`);
    }
    const release = await store.getCurrentRelease(deployment.id);
    const version = release ? await this.ctx.versions.get(release.version_id) : undefined;
    const model = version ? await this.ctx.versions.modelOf(version) : undefined;
    if (!release || !version || !model) throw invalidVersion();
    if (release.max_instances === 0) {
      throw new ProblemError(
        409,
        "Deployment is disabled",
        "This deployment has max_instances set to 0, so it runs no predictions",
      );
    }
    return { model, version, label: version.id, deployment: `${deployment.owner}/${deployment.name}` };
  }

  async create(
    account: AccountRecord,
    target: PredictionTarget,
    body: unknown,
    options: CreateOptions,
    kind: "prediction" | "training" = "prediction",
    destination: string | null = null,
  ): Promise<CreateResult> {
    const { store, queue, now } = this.ctx;
    // Only a request with an Idempotency-Key is compared with an earlier one (the body may hold a
    // megabyte of data URI: hashing it for nothing is not free).
    const requestHash =
      options.idempotencyKey === undefined
        ? ""
        : createHash("sha256")
            .update(JSON.stringify([target, body, kind, destination]))
            .digest("hex");
    if (options.idempotencyKey !== undefined) {
      const replay = await this.replay(account, options.idempotencyKey, requestHash);
      if (replay) return replay;
    }
    const allowed =
      kind === "training"
        ? ["destination", "input", "webhook", "webhook_events_filter"]
        : target.kind === "version"
          ? ["version", "input", "webhook", "webhook_events_filter", "stream"]
          : ["input", "webhook", "webhook_events_filter", "stream"];
    const parsed = this.parseBody(
      body,
      allowed,
      kind === "training"
        ? ["destination", "input"]
        : target.kind === "version"
          ? ["version", "input"]
          : ["input"],
    );
    const { model, version, label, deployment } = await this.resolveTarget(account, target);
    if (
      kind === "training" &&
      !version.training_schema &&
      !(version.openapi_schema.components as { schemas?: Record<string, unknown> } | undefined)?.schemas
        ?.TrainingInput
    ) {
      throw unprocessable("Model is not trainable", `${model.owner}/${model.name} does not support training`);
    }
    const schemaName = kind === "training" ? "TrainingInput" : "Input";
    const input = this.validator.validate(version.id, version.openapi_schema, parsed.input, schemaName);
    // No await (and no microtask) on the common path: no webhook and no http file inputs.
    const hostNamesChecked = this.checkHostNames(parsed.webhook, version.openapi_schema, schemaName, input);
    if (hostNamesChecked) await hostNamesChecked;
    const created = now();
    const record: PredictionRecord = {
      id: newId(),
      kind,
      account_id: account.id,
      model: `${model.owner}/${model.name}`,
      version_id: version.id,
      version_label: kind === "training" ? version.id : label,
      deployment,
      destination,
      input,
      output: null,
      logs: "",
      error: null,
      status: "starting",
      source: "api",
      data_removed: false,
      created_at: created.toISOString(),
      started_at: null,
      completed_at: null,
      deadline: options.cancelAfterMs
        ? new Date(created.getTime() + options.cancelAfterMs).toISOString()
        : null,
      metrics: null,
      webhook: parsed.webhook,
      webhook_events_filter: parsed.filter,
      attempt: 0,
      streaming: isStreaming(version),
    };
    const outbox = outboxFor(this.ctx, record, "start");
    const waiter = options.preferWaitSeconds ? await this.waitFor(record.id) : undefined;
    const enqueueJobs = () =>
      Promise.all([
        queue.enqueue({ id: record.id, queue: PREDICTIONS_QUEUE }),
        options.cancelAfterMs
          ? queue.enqueue({
              id: deadlineJobId(record.id),
              queue: DEADLINES_QUEUE,
              delayMs: options.cancelAfterMs,
            })
          : undefined,
      ]);
    try {
      // Where the queue commits with the store (embedded), its jobs go in the insert's transaction: one
      // commit fewer, and the prediction is leased a turn sooner. Elsewhere they wait for the insert.
      let enqueued: Promise<unknown> | undefined;
      try {
        const inserting = store.insertPrediction(record, {
          outbox,
          ...(options.idempotencyKey !== undefined
            ? {
                idempotency: {
                  account_id: account.id,
                  key: options.idempotencyKey,
                  request_hash: requestHash,
                  prediction_id: record.id,
                  created_at: record.created_at,
                },
              }
            : {}),
        });
        if (queue.commitsWithStore) enqueued = enqueueJobs();
        await inserting;
      } catch (error) {
        if (enqueued) {
          // Jobs of a prediction that was not inserted: harmless if leased first (a job whose record is
          // missing is completed without running), removed here.
          await enqueued.catch(() => undefined);
          await Promise.all([queue.remove(record.id), queue.remove(deadlineJobId(record.id))]);
        }
        if (
          (error as { code?: unknown }).code === "IDEMPOTENCY_CONFLICT" &&
          options.idempotencyKey !== undefined
        ) {
          const replay = await this.replay(account, options.idempotencyKey, requestHash);
          if (replay) return replay;
        }
        throw error;
      }
      if (outbox.length > 0) this.wakeWebhooks();
      await (enqueued ?? enqueueJobs());
      this.countRun(model.id);
      if (!waiter) return { record, replayed: false };
      const final = await waiter.wait(options.preferWaitSeconds! * 1000);
      return { record: final ?? (await store.getPrediction(record.id)) ?? record, replayed: false };
    } finally {
      waiter?.unsubscribe();
    }
  }

  /**
   * The README's promise: a webhook or file-input URL whose host name resolves to a refused address
   * gets the 422 at create, not a failed delivery or prediction later.
   */
  private checkHostNames(
    webhook: string | null,
    schema: Record<string, unknown>,
    schemaName: string,
    input: Record<string, unknown>,
  ): Promise<unknown> | undefined {
    const urls = remoteInputUrls(schema, schemaName, input, this.ctx.urls.base);
    if (webhook !== null) urls.unshift({ field: "webhook", url: webhook });
    if (urls.length === 0) return undefined;
    // One check per host: all its URLs are http(s) and get the same answers (an input may list many).
    const byHost = new Map<string, { url: string; field: string }>();
    for (const entry of urls) {
      const host = URL.canParse(entry.url) ? new URL(entry.url).hostname : entry.url;
      if (!byHost.has(host)) byHost.set(host, entry);
    }
    return Promise.all([...byHost.values()].map(({ url, field }) => this.urlChecks.resolved(url, field)));
  }

  private async replay(
    account: AccountRecord,
    key: string,
    requestHash: string,
  ): Promise<CreateResult | undefined> {
    const existing = await this.ctx.store.getIdempotency(account.id, key);
    if (!existing) return undefined;
    if (existing.request_hash !== requestHash) {
      throw unprocessable(
        "Idempotency key reused",
        "This Idempotency-Key was already used with a different request; use a new key for a new request",
      );
    }
    const record = await this.ctx.store.getPrediction(existing.prediction_id);
    if (!record) return undefined;
    return { record, replayed: true };
  }

  /** Subscribes before the prediction exists, so its completion cannot be missed. */
  async waitFor(
    id: string,
  ): Promise<{ wait(ms: number): Promise<PredictionRecord | undefined>; unsubscribe(): void }> {
    let resolveDone: (record: PredictionRecord | undefined) => void = () => undefined;
    const done = new Promise<PredictionRecord | undefined>((resolve) => {
      resolveDone = resolve;
    });
    const unsubscribe = await this.ctx.bus.subscribe(predictionChannel(id), (event) => {
      if (event.type === "done") resolveDone(event.record);
    });
    return {
      unsubscribe,
      /** Resolves with the final record when the event carried it, undefined otherwise (or on timeout). */
      wait: async (ms) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), ms);
        });
        const record = await Promise.race([done, timeout]);
        clearTimeout(timer);
        return record;
      },
    };
  }

  /** Holds a GET until the prediction is terminal or the time is up (Replicant's `?wait=N` extension). */
  async waitUntilTerminal(record: PredictionRecord, seconds: number): Promise<PredictionRecord> {
    if (isTerminal(record.status)) return record;
    const waiter = await this.waitFor(record.id);
    try {
      const fresh = await this.ctx.store.getPrediction(record.id);
      if (fresh && isTerminal(fresh.status)) return fresh;
      await waiter.wait(seconds * 1000);
    } finally {
      waiter.unsubscribe();
    }
    return (await this.ctx.store.getPrediction(record.id)) ?? record;
  }

  /**
   * Cancels a prediction or training: the row moves to `canceled` at once (fenced, so a prediction
   * that already finished stays as it was) and the worker running it is told through the event bus.
   */
  async cancel(record: PredictionRecord): Promise<PredictionRecord> {
    if (isTerminal(record.status)) return record;
    const { store, queue, bus } = this.ctx;
    const completedAt = this.ctx.now().toISOString();
    const metrics: Record<string, unknown> = { ...(record.metrics ?? {}) };
    metrics.total_time = (Date.parse(completedAt) - Date.parse(record.created_at)) / 1000;
    if (record.started_at)
      metrics.predict_time = (Date.parse(completedAt) - Date.parse(record.started_at)) / 1000;
    const patch = { status: "canceled" as const, completed_at: completedAt, metrics };
    const outbox = outboxFor(this.ctx, { ...record, ...patch }, "completed");
    const updated = await store.updatePrediction(
      record.id,
      patch,
      { statuses: ["starting", "processing"] },
      outbox,
    );
    if (!updated) return (await store.getPrediction(record.id)) ?? record;
    if (outbox.length > 0) this.wakeWebhooks();
    if (record.status === "starting") await queue.remove(record.id);
    await bus.publish(predictionChannel(record.id), {
      type: "done",
      status: "canceled",
      error: null,
      record: updated,
    });
    return updated;
  }
}

function isStreaming(version: VersionRecord): boolean {
  const schemas = (
    version.openapi_schema.components as { schemas?: Record<string, Record<string, unknown>> } | undefined
  )?.schemas;
  return schemas?.Output?.["x-cog-array-type"] === "iterator";
}
