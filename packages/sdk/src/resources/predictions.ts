import type { Prediction, WebhookEventType } from "@replicant/protocol";
import type { Replicant, RequestControl } from "../client.js";
import { ReplicantError } from "../core/errors.js";
import type { PagePromise } from "../core/pagination.js";
import { randomId } from "../internal/random-id.js";
import { APIResource, path, splitModelName } from "./resource.js";

/** Options of every prediction create (`predictions`, `models.predictions`, `deployments.predictions`). */
export interface PredictionCreateControl extends RequestControl {
  /** `true` sends `Prefer: wait` (the server holds up to 60 s); a number sends `Prefer: wait=N` (1-60 s). */
  wait?: boolean | number | undefined;
  /** Server-side deadline, sent as `Cancel-After`: seconds, or a duration such as `"90s"` or `"1h30m"`. */
  cancelAfter?: number | string | undefined;
  /** Overrides the generated `Idempotency-Key` (one per call, the same on each retry). */
  idempotencyKey?: string | undefined;
}

export interface PredictionRequestFields<TInput = Record<string, unknown>> {
  input: TInput;
  webhook?: string | undefined;
  webhook_events_filter?: WebhookEventType[] | undefined;
  /** Deprecated on the API (streaming models always get `urls.stream`); passed through. */
  stream?: boolean | undefined;
}

export interface PredictionCreateOptions<TInput = Record<string, unknown>>
  extends PredictionCreateControl,
    PredictionRequestFields<TInput> {
  /** An official model, `owner/name`: posts to `/models/{owner}/{name}/predictions`. */
  model?: string | undefined;
  /** A version id (or `owner/name:version`, or `owner/name` for official models): posts to `/predictions`. */
  version?: string | undefined;
  /** A deployment, `owner/name`: posts to `/deployments/{owner}/{name}/predictions`. */
  deployment?: string | undefined;
}

export interface PredictionListOptions extends RequestControl {
  /** ISO 8601 date-time: predictions created at or after it. */
  created_after?: string | undefined;
  /** ISO 8601 date-time: predictions created before it. */
  created_before?: string | undefined;
  /** Only `"web"` is accepted by the API. */
  source?: "web" | undefined;
}

/** `predictions.create`, `predictions.get`, `predictions.list`, `predictions.cancel`. */
export class Predictions extends APIResource {
  /**
   * Creates a prediction. `{ version }` posts to `/predictions`, `{ model }` to the official model's endpoint,
   * `{ deployment }` to the deployment's. File inputs are encoded with the client's `fileEncodingStrategy`.
   */
  create = (options: PredictionCreateOptions): Promise<Prediction> => {
    const { model, version, deployment, ...rest } = options;
    if (version) return createPrediction(this.client, "/predictions", { ...rest, version });
    if (model) {
      const [owner, name] = splitModelName(model);
      return createPrediction(this.client, path`/models/${owner}/${name}/predictions`, rest);
    }
    if (deployment) {
      const [owner, name] = splitModelName(deployment);
      return createPrediction(this.client, path`/deployments/${owner}/${name}/predictions`, rest);
    }
    return Promise.reject(new ReplicantError("Either model, version or deployment must be specified"));
  };

  /** Gets a prediction by id. */
  get = (predictionId: string, options: RequestControl = {}): Promise<Prediction> =>
    this.client.get<Prediction>(path`/predictions/${predictionId}`, options);

  /** Cancels a prediction (safe to retry: canceling twice changes nothing). */
  cancel = (predictionId: string, options: RequestControl = {}): Promise<Prediction> =>
    this.client.post<Prediction>(path`/predictions/${predictionId}/cancel`, { ...options, idempotent: true });

  /** Lists predictions, most recent first. Await for the first page, or `for await` over every prediction. */
  list = (options: PredictionListOptions = {}): PagePromise<Prediction> => {
    const { created_after, created_before, source, ...control } = options;
    return this.client.getPage<Prediction>("/predictions", {
      ...control,
      params: { created_after, created_before, source },
    });
  };
}

/**
 * Sends one prediction create: `Prefer` and `Cancel-After` headers, file inputs encoded, and an
 * `Idempotency-Key` so a retried POST can never start a second prediction.
 *
 * @internal
 */
export async function createPrediction(
  client: Replicant,
  route: string,
  options: PredictionCreateControl & PredictionRequestFields & { version?: string },
): Promise<Prediction> {
  const { wait, cancelAfter, idempotencyKey, signal, timeout, maxRetries, headers, ...fields } = options;
  if (fields.webhook) {
    try {
      new URL(fields.webhook);
    } catch {
      throw new ReplicantError(`Invalid webhook URL: ${fields.webhook}`);
    }
  }
  const requestHeaders: Record<string, string> = { ...headers };
  let requestTimeout = timeout ?? client.timeout;
  if (wait) {
    const seconds = wait === true ? 60 : Math.min(60, Math.max(1, Math.ceil(wait)));
    requestHeaders.Prefer = wait === true ? "wait" : `wait=${seconds}`;
    // The server may hold the request for the whole wait; the timeout must outlast it.
    requestTimeout = Math.max(requestTimeout, seconds * 1000 + 15_000);
  }
  if (cancelAfter !== undefined) requestHeaders["Cancel-After"] = formatDuration(cancelAfter);
  const input = await client.encodeInput(fields.input, signal);
  return client.post<Prediction>(route, {
    data: dropUndefined({ ...fields, input }),
    headers: requestHeaders,
    signal,
    timeout: requestTimeout,
    maxRetries,
    idempotencyKey: idempotencyKey ?? randomId(),
  });
}

/** `90` → `"90s"`; strings such as `"1h30m"` pass through. */
export function formatDuration(duration: number | string): string {
  if (typeof duration === "string") return duration;
  if (!(duration > 0)) throw new RangeError("cancelAfter must be positive");
  return `${Math.ceil(duration)}s`;
}

export function dropUndefined<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined)) as T;
}
