import type {
  Page,
  Prediction,
  SearchResponse,
  StreamEventType,
  Training,
  WebhookEventType,
} from "@replicant/protocol";
import * as Errors from "./core/errors.js";
import {
  APIConnectionError,
  APIError,
  APITimeoutError,
  APIUserAbortError,
  ModelError,
  PredictionCanceledError,
  ReplicantError,
} from "./core/errors.js";
import { encodeFileInputs, type FileEncodingStrategy } from "./core/file-inputs.js";
import { type FetchLike, FileOutput } from "./core/file-output.js";
import { type DeploymentRef, parseModelTarget } from "./core/identifier.js";
import type { ModelRef, UntypedRef } from "./core/model-ref.js";
import { PagePromise } from "./core/pagination.js";
import { RateLimiter } from "./core/rate-limit.js";
import { parseSSEStream, ServerSentEvent } from "./core/sse.js";
import { anySignal } from "./internal/any-signal.js";
import { PLAIN_NODE, readEnv } from "./internal/env.js";
import {
  BufferedAnswer,
  canRequestBuffered,
  headersTimeoutDispatcher,
  isHeadersTimeout,
  isNodeOwnFetch,
  requestBuffered,
} from "./internal/node-undici.js";
import { backoffDelayMs, retryAfterMs } from "./internal/retry.js";
import { sleep, throwIfAborted } from "./internal/sleep.js";
import { mapLeaves } from "./internal/transform.js";
import { Account } from "./resources/account.js";
import { Collections } from "./resources/collections.js";
import { Deployments } from "./resources/deployments.js";
import { Files } from "./resources/files.js";
import { Hardware } from "./resources/hardware.js";
import { Models } from "./resources/models.js";
import { type PredictionCreateOptions, Predictions } from "./resources/predictions.js";
import { Search, type SearchOptions } from "./resources/search.js";
import { Trainings } from "./resources/trainings.js";
import { Webhooks } from "./resources/webhooks.js";

export const SDK_VERSION = "0.1.0";
const DEFAULT_BASE_URL = "https://api.replicate.com/v1";
const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_RETRIES = 3;
const DEFAULT_POLL_INTERVAL_MS = 500;
/** A `Retry-After` longer than this is not waited out: the error is thrown so the caller can decide. */
const MAX_RETRY_AFTER_MS = 60_000;
/**
 * Time limits from this length up are enforced by undici where it can (internal/node-undici.ts): its
 * timer for them fires up to a second late, which a shorter limit should not suffer.
 */
const UNDICI_TIMEOUT_MIN_MS = 5_000;
/** A backstop's lateness beyond undici's limit, for a fetch that ignored it. */
const BACKSTOP_MARGIN_MS = 2_000;
const TERMINAL = new Set(["succeeded", "failed", "canceled", "aborted"]);
/** Replicant's SSE event asking a reader that fell behind to reconnect with Last-Event-ID. */
const RECONNECT_EVENT: StreamEventType = "reconnect";

export interface ClientOptions {
  /** API token. Defaults to `REPLICATE_API_TOKEN`. */
  auth?: string | undefined;
  /** Defaults to `REPLICATE_BASE_URL`, then `https://api.replicate.com/v1`. */
  baseUrl?: string | undefined;
  /** Defaults to `replicant-sdk/<version>`. */
  userAgent?: string | undefined;
  /** A WHATWG fetch. Defaults to `globalThis.fetch`, called unbound (no "Illegal invocation" on Workers). */
  fetch?: FetchLike | undefined;
  /** How file inputs are sent; see {@link FileEncodingStrategy}. Default `"default"`. */
  fileEncodingStrategy?: FileEncodingStrategy | undefined;
  /** Turn file URLs in `run()`/`stream()` outputs into {@link FileOutput} objects. Default `true`. */
  useFileOutput?: boolean | undefined;
  /** Retries after 429, 5xx, timeouts and connection errors. Default 3. */
  maxRetries?: number | undefined;
  /**
   * Per-request time limit to receive response headers, in ms; 0 for none. Default 60 000. On Node's own
   * fetch a limit of 5 s or more is enforced by undici (its timer is exact to about a second), a shorter
   * one and any other fetch's by an AbortSignal.
   */
  timeout?: number | undefined;
  /** Polling interval in ms. Defaults to `REPLICATE_POLL_INTERVAL` (seconds), then 500 ms. */
  pollInterval?: number | undefined;
  /** Headers added to every request. */
  headers?: Record<string, string> | undefined;
  /**
   * The fetch `cache` mode; null to omit. By default `"no-store"` (it stops Next.js from serving stale
   * predictions) wherever fetch may cache, and nothing on Node's own fetch, which has no HTTP cache (there
   * it would only add `Pragma` and `Cache-Control` request headers).
   */
  cache?: RequestCache | null | undefined;
}

export type QueryValue = string | number | boolean | null | undefined;

export interface RequestOptions {
  method?: string;
  /** Query parameters (undefined and null values are left out). */
  params?: Record<string, QueryValue> | undefined;
  /** Alias of `params`. */
  query?: Record<string, QueryValue> | undefined;
  /** Body: a plain value is sent as JSON; FormData, Blob, bytes, streams and strings are sent as they are. */
  data?: unknown;
  /** Alias of `data`. */
  body?: unknown;
  headers?: Record<string, string> | Headers | undefined;
  signal?: AbortSignal | undefined;
  /** Overrides the client's `timeout` (ms) for this request. */
  timeout?: number | undefined;
  /** Overrides the client's `maxRetries` for this request. */
  maxRetries?: number | undefined;
  /** Sent as `Idempotency-Key`, the same on every retry, which makes a POST safe to retry. */
  idempotencyKey?: string | undefined;
  /** Declares the request safe to retry after a 5xx or a dropped connection. Default: not a POST, or keyed. */
  idempotent?: boolean | undefined;
}

/** Controls shared by every resource method. */
export interface RequestControl {
  signal?: AbortSignal | undefined;
  timeout?: number | undefined;
  maxRetries?: number | undefined;
  headers?: Record<string, string> | undefined;
}

export type WaitOptions =
  | { mode: "block"; timeout?: number | undefined; interval?: number | undefined }
  | { mode: "poll"; interval?: number | undefined };

export interface RunOptions<TInput = Record<string, unknown>> {
  input: TInput;
  /** `{ mode: "block", timeout }` (default: `Prefer: wait`, then polling) or `{ mode: "poll", interval }`. */
  wait?: WaitOptions | undefined;
  webhook?: string | undefined;
  webhook_events_filter?: WebhookEventType[] | undefined;
  /** Aborts the create request, the waiting and the stream; rejects with `APIUserAbortError`. */
  signal?: AbortSignal | undefined;
  /** Cancel the prediction on the server when `signal` aborts. Default true. */
  cancelOnAbort?: boolean | undefined;
  /** Server-side deadline, sent as `Cancel-After`: seconds, or a duration such as `"5m"` or `"1h30m"`. */
  cancelAfter?: number | string | undefined;
  /** Overrides the client's `useFileOutput` for this call. */
  useFileOutput?: boolean | undefined;
  /** Overrides the generated `Idempotency-Key` of the create request. */
  idempotencyKey?: string | undefined;
  /** Polling interval in ms after the blocking wait. */
  interval?: number | undefined;
  /** Deprecated on the API; passed through. */
  stream?: boolean | undefined;
}

export type StreamOptions<TInput = Record<string, unknown>> = Omit<RunOptions<TInput>, "wait"> & {
  /** How many times to reconnect a dropped stream (with `Last-Event-ID`) before polling instead. Default 3. */
  maxReconnects?: number | undefined;
};

export interface WaitForOptions {
  /** Polling interval in ms. */
  interval?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** A model bound to a client: call it with an input to run it. */
export interface ModelFunction<TInput, TOutput> {
  (input: TInput, options?: Omit<RunOptions<TInput>, "input">): Promise<TOutput>;
  readonly ref: RunTarget;
  /** Starts a prediction and returns it without waiting. */
  create(
    input: TInput,
    options?: Omit<PredictionCreateOptions, "input" | "model" | "version">,
  ): Promise<Prediction>;
  /** Runs it and yields its server-sent events. */
  stream(
    input: TInput,
    options?: Omit<StreamOptions<TInput>, "input">,
  ): AsyncGenerator<ServerSentEvent<string | FileOutput>>;
}

export interface RunManyProgress {
  total: number;
  completed: number;
  succeeded: number;
  failed: number;
  running: number;
}

export interface RunManyOptions<TInput> extends Omit<RunOptions<TInput>, "input" | "idempotencyKey"> {
  /** Runs at most this many predictions at once. Default 4. */
  concurrency?: number | undefined;
  /** Starts at most this many predictions per minute (spaced evenly). Default: unlimited. */
  ratePerMinute?: number | undefined;
  /** Called after each run settles. */
  onProgress?: ((progress: RunManyProgress) => void) | undefined;
}

export type RunManyResult<TInput, TOutput> =
  | { status: "fulfilled"; input: TInput; value: TOutput }
  | { status: "rejected"; input: TInput; reason: unknown };

/** What run(), stream(), use() and runMany() accept as a model: a reference string, a deployment, or a typed ref. */
export type RunTarget = string | DeploymentRef;

/**
 * A client for Replicate's HTTP API (api.replicate.com or any compatible server, such as Replicant's).
 * Drop-in for the `replicate` package's `Replicate` class.
 *
 * @example
 * const replicate = new Replicant(); // reads REPLICATE_API_TOKEN
 * const output = await replicate.run("replicate/hello-world", { input: { text: "world" } });
 */
export class Replicant {
  auth: string | undefined;
  baseUrl: string;
  userAgent: string;
  /** Replaceable at any time, as with the `replicate` package. */
  fetch: FetchLike;
  fileEncodingStrategy: FileEncodingStrategy;
  useFileOutput: boolean;
  maxRetries: number;
  timeout: number;
  pollInterval: number;
  headers: Record<string, string>;
  /** As given in the options; undefined picks per request (see {@link ClientOptions.cache}). */
  cache: RequestCache | null | undefined;

  readonly account: Account;
  /** The `replicate` package's name for `account.get()`. */
  readonly accounts: { current: (options?: RequestControl) => ReturnType<Account["get"]> };
  readonly collections: Collections;
  readonly deployments: Deployments;
  readonly files: Files;
  readonly hardware: Hardware;
  readonly models: Models;
  readonly predictions: Predictions;
  readonly trainings: Trainings;
  readonly webhooks: Webhooks;
  readonly #search: Search;

  static readonly ReplicantError = Errors.ReplicantError;
  static readonly APIError = Errors.APIError;
  static readonly BadRequestError = Errors.BadRequestError;
  static readonly AuthenticationError = Errors.AuthenticationError;
  static readonly PermissionDeniedError = Errors.PermissionDeniedError;
  static readonly NotFoundError = Errors.NotFoundError;
  static readonly ConflictError = Errors.ConflictError;
  static readonly UnprocessableEntityError = Errors.UnprocessableEntityError;
  static readonly RateLimitError = Errors.RateLimitError;
  static readonly InternalServerError = Errors.InternalServerError;
  static readonly APIConnectionError = Errors.APIConnectionError;
  static readonly APITimeoutError = Errors.APITimeoutError;
  static readonly APIUserAbortError = Errors.APIUserAbortError;
  static readonly ModelError = Errors.ModelError;
  static readonly PredictionCanceledError = Errors.PredictionCanceledError;

  constructor(options: ClientOptions = {}) {
    this.auth = options.auth || readEnv("REPLICATE_API_TOKEN");
    this.baseUrl = options.baseUrl || readEnv("REPLICATE_BASE_URL") || DEFAULT_BASE_URL;
    this.userAgent = options.userAgent || `replicant-sdk/${SDK_VERSION}`;
    this.fetch = options.fetch ?? this.#globalFetch;
    this.fileEncodingStrategy = options.fileEncodingStrategy ?? "default";
    this.useFileOutput = options.useFileOutput !== false;
    this.maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    this.timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
    this.pollInterval = options.pollInterval ?? pollIntervalFromEnv() ?? DEFAULT_POLL_INTERVAL_MS;
    this.headers = { ...options.headers };
    this.cache = options.cache;

    this.account = new Account(this);
    this.accounts = { current: (requestOptions) => this.account.get(requestOptions) };
    this.collections = new Collections(this);
    this.deployments = new Deployments(this);
    this.files = new Files(this);
    this.hardware = new Hardware(this);
    this.models = new Models(this);
    this.predictions = new Predictions(this);
    this.trainings = new Trainings(this);
    this.webhooks = new Webhooks(this);
    this.#search = new Search(this);
  }

  // ---------------------------------------------------------------- low-level HTTP

  /**
   * Sends a request to the API and returns the raw `Response` (as the `replicate` package does). Retries 429,
   * 5xx, timeouts and connection errors with exponential backoff and jitter, honouring `Retry-After`; a POST
   * is retried after a 5xx or a dropped connection only when it carries an `Idempotency-Key`.
   * Throws an {@link APIError} subclass for non-2xx answers.
   *
   * @param route a path relative to `baseUrl` (`/predictions`) or an absolute URL
   */
  request(route: string | URL, options: RequestOptions = {}): Promise<Response> {
    return this.#request(route, options, false) as Promise<Response>;
  }

  /** {@link request}; `buffered` when the caller reads the whole answer, which lets Node skip fetch. */
  async #request(
    route: string | URL,
    options: RequestOptions,
    buffered: boolean,
  ): Promise<Response | BufferedAnswer> {
    const method = (options.method ?? "GET").toUpperCase();
    const url = this.#buildUrl(route, options.params ?? options.query);
    // A plain record with lower-case names: Node's fetch takes it as is, where a WHATWG Headers object
    // costs tens of microseconds a request (R6).
    const headers: Record<string, string> = {};
    for (const name in this.headers) headers[name.toLowerCase()] = this.headers[name] as string;
    headers["user-agent"] = this.userAgent;
    headers.accept = "application/json";
    if (this.auth && this.isOwnOrigin(url)) headers.authorization = `Bearer ${this.auth}`;

    const data = options.data !== undefined ? options.data : options.body;
    let body: BodyInit | undefined;
    if (data === undefined || data === null) body = undefined;
    else if (isPlainObjectOrArray(data)) {
      // The common case first: each `instanceof` in isRawBody reads a lazily defined global.
      body = JSON.stringify(data);
      headers["content-type"] = "application/json";
    } else if (isRawBody(data)) body = data;
    else if (typeof data === "string") {
      body = data;
      headers["content-type"] = "text/plain";
    } else {
      body = JSON.stringify(data);
      headers["content-type"] = "application/json";
    }
    if (options.headers) mergeHeaders(headers, options.headers);
    // The runtime writes the multipart boundary itself; a caller's bare multipart type would drop it.
    if (body !== undefined && typeof body !== "string" && body instanceof FormData)
      delete headers["content-type"];
    if (options.idempotencyKey) headers["idempotency-key"] = options.idempotencyKey;

    const idempotent = options.idempotent ?? (method !== "POST" || headers["idempotency-key"] !== undefined);
    const replayable = body === undefined || typeof body === "string" || !(body instanceof ReadableStream);
    const maxRetries = replayable ? (options.maxRetries ?? this.maxRetries) : 0;
    const timeout = options.timeout ?? this.timeout;
    const summary = { method, url: url.href };

    for (let attempt = 0; ; attempt++) {
      throwIfAborted(options.signal);
      const init: RequestInit & { duplex?: "half" } = { method, headers, body: body ?? null };
      if (!replayable) init.duplex = "half";
      let response: Response | BufferedAnswer;
      try {
        response = await this.#send(url, init, timeout, options.signal, buffered);
      } catch (error) {
        if (error instanceof APIConnectionError && idempotent && attempt < maxRetries) {
          await sleep(backoffDelayMs(attempt), options.signal);
          continue;
        }
        throw error;
      }
      if (response.ok) return response;

      const status = response.status;
      const retryable = status === 429 || (idempotent && (status === 408 || status >= 500));
      if (retryable && attempt < maxRetries) {
        const serverDelay = retryAfterMs(response.headers);
        if (serverDelay === undefined || serverDelay <= MAX_RETRY_AFTER_MS) {
          if (response instanceof Response) await response.body?.cancel().catch(() => {});
          await sleep(serverDelay ?? backoffDelayMs(attempt), options.signal);
          continue;
        }
      }
      if (response instanceof BufferedAnswer)
        throw APIError.fromResponse(summary, response.toResponse(), response.bodyText);
      const text = await response.text().catch(() => "");
      throw APIError.fromResponse(summary, response, text);
    }
  }

  /**
   * One fetch with a time limit on the response headers. The caller's signal stays attached to the body, so
   * aborting also stops a stream being read.
   *
   * @internal
   */
  fetchWithTimeout(
    url: URL,
    init: RequestInit,
    timeout: number,
    userSignal: AbortSignal | undefined,
  ): Promise<Response> {
    return this.#send(url, init, timeout, userSignal, false) as Promise<Response>;
  }

  /**
   * {@link fetchWithTimeout}; `buffered`: the caller reads the whole answer, so on Node's own fetch the
   * request goes to undici's dispatcher directly (internal/node-undici.ts) and is answered read whole.
   */
  async #send(
    url: URL,
    init: RequestInit,
    timeout: number,
    userSignal: AbortSignal | undefined,
    buffered: boolean,
  ): Promise<Response | BufferedAnswer> {
    const summary = { method: init.method ?? "GET", url: url.href };
    const limited = timeout > 0 && Number.isFinite(timeout);
    const onNodeFetch = this.#onNodeFetch() && isNodeOwnFetch(globalThis.fetch);
    // On Node's own fetch undici enforces a limit of 5 s or more, with no signal to track; elsewhere an
    // AbortController's signal does. No limit and no caller's signal: no signal at all.
    const undiciLimit = limited && timeout >= UNDICI_TIMEOUT_MIN_MS && onNodeFetch ? timeout : undefined;
    const direct =
      buffered &&
      onNodeFetch &&
      (init.body === undefined || init.body === null || typeof init.body === "string") &&
      canRequestBuffered();
    const dispatcher =
      undiciLimit !== undefined && !direct && !this.#dispatcherIgnored
        ? headersTimeoutDispatcher(undiciLimit)
        : undefined;
    const timeoutController =
      limited && !dispatcher && !(direct && undiciLimit !== undefined) ? new AbortController() : undefined;
    const signal =
      timeoutController && userSignal
        ? anySignal([userSignal, timeoutController.signal])
        : (timeoutController?.signal ?? userSignal);
    const fullInit: RequestInit & { dispatcher?: unknown } = signal ? { ...init, signal } : { ...init };
    if (dispatcher) fullInit.dispatcher = dispatcher;
    const cache = direct ? null : this.requestCache();
    if (cache) fullInit.cache = cache;
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const send = (requestInit: RequestInit): Promise<Response | BufferedAnswer> => {
      const sending = direct
        ? this.#sendDirect(url, requestInit, undiciLimit)
        : this.fetch(url.href, requestInit);
      if (timeoutController) {
        timer = setTimeout(() => {
          timedOut = true;
          timeoutController.abort();
        }, timeout);
        return sending;
      }
      if (!dispatcher) return sending;
      // A backstop for a fetch that dropped the dispatcher (a library that wraps the global fetch): the
      // caller still gets its timeout, two seconds late, and this client uses signals from then on.
      sending.catch(() => {});
      return new Promise<Response | BufferedAnswer>((resolve, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          this.#dispatcherIgnored = true;
          reject(new APITimeoutError(summary, timeout));
        }, timeout + BACKSTOP_MARGIN_MS);
        sending.then(resolve, reject);
      });
    };
    try {
      try {
        return await send(fullInit);
      } catch (error) {
        // Some runtimes (older Cloudflare Workers) reject the `cache` field: drop it for good and retry.
        if (cache && error instanceof TypeError && /cache/i.test(error.message) && !signal?.aborted) {
          this.cache = null;
          const { cache: _dropped, ...withoutCache } = fullInit;
          clearTimeout(timer);
          return await send(withoutCache);
        }
        throw error;
      }
    } catch (error) {
      if (userSignal?.aborted) throw new APIUserAbortError(userSignal.reason);
      if (timedOut || isHeadersTimeout(error)) throw new APITimeoutError(summary, timeout);
      throw new APIConnectionError(summary, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  /** A buffered request straight to undici; a redirect is left to fetch, which follows it as specified. */
  async #sendDirect(
    url: URL,
    init: RequestInit,
    headersTimeout: number | undefined,
  ): Promise<Response | BufferedAnswer> {
    const headers = init.headers as Record<string, string>;
    const method = init.method ?? "GET";
    const answer = await requestBuffered(
      url,
      method,
      headers,
      (init.body as string | null | undefined) ?? null,
      headersTimeout,
      init.signal ?? undefined,
    );
    if (answer instanceof BufferedAnswer) return answer;
    const followHeaders = { ...headers };
    // As fetch does: the token never goes to another origin, and a request turned into a GET loses its body.
    if (answer.redirect.origin !== url.origin) delete followHeaders.authorization;
    const follow: RequestInit & { dispatcher?: unknown } = {
      ...init,
      method: answer.method,
      headers: followHeaders,
    };
    if (answer.method !== method) {
      follow.body = null;
      delete followHeaders["content-type"];
    }
    const dispatcher = headersTimeout !== undefined ? headersTimeoutDispatcher(headersTimeout) : undefined;
    if (dispatcher) follow.dispatcher = dispatcher;
    return this.fetch(answer.redirect.href, follow);
  }

  /** Set when a request's dispatcher was not honoured: timeouts use signals from then on. */
  #dispatcherIgnored = false;

  /** True when requests go to the global fetch on Node, not patched by Next.js. */
  #onNodeFetch(): boolean {
    return (
      this.fetch === this.#globalFetch &&
      PLAIN_NODE &&
      (globalThis.fetch as { __nextPatched?: unknown }).__nextPatched === undefined
    );
  }

  /** The `cache` mode a request is sent with (see {@link ClientOptions.cache}). @internal */
  requestCache(): RequestCache | null {
    if (this.cache !== undefined) return this.cache;
    return this.#onNodeFetch() ? null : "no-store";
  }

  // The default fetch looks up the global one at each call, so a fetch patched later is used.
  readonly #globalFetch: FetchLike = (input, init) => globalThis.fetch(input, init);

  /** GET and parse the JSON answer. */
  get<T>(path: string | URL, options: Omit<RequestOptions, "method"> = {}): Promise<T> {
    return this.#request(path, { ...options, method: "GET" }, true).then((response) =>
      parseBody<T>(response),
    );
  }

  /** POST and parse the JSON answer. */
  post<T>(path: string | URL, options: Omit<RequestOptions, "method"> = {}): Promise<T> {
    return this.#request(path, { ...options, method: "POST" }, true).then((response) =>
      parseBody<T>(response),
    );
  }

  /** PATCH and parse the JSON answer. */
  patch<T>(path: string | URL, options: Omit<RequestOptions, "method"> = {}): Promise<T> {
    return this.#request(path, { ...options, method: "PATCH" }, true).then((response) =>
      parseBody<T>(response),
    );
  }

  /** DELETE and parse the answer (usually empty). */
  delete<T = undefined>(path: string | URL, options: Omit<RequestOptions, "method"> = {}): Promise<T> {
    return this.#request(path, { ...options, method: "DELETE" }, true).then((response) =>
      parseBody<T>(response),
    );
  }

  /** A list endpoint as a {@link PagePromise}: await it for the first page, iterate it for every item. */
  getPage<T>(path: string, options: Omit<RequestOptions, "method"> = {}): PagePromise<T> {
    const { params: _params, query: _query, ...rest } = options;
    return new PagePromise<T>(
      () => this.get<Page<T>>(path, options),
      (next) => this.get<Page<T>>(next, rest),
    );
  }

  /** True when `url` is on the API's own host, the only place the token is ever sent. */
  isOwnOrigin(url: URL | string): boolean {
    try {
      const target = typeof url === "string" ? new URL(url) : url;
      const base = this.#parsedBase().url;
      return target.hostname === base.hostname && target.port === base.port;
    } catch {
      return false;
    }
  }

  // Parsing URLs costs microseconds a request: the base and the URLs of parameterless routes are
  // parsed once per base URL.
  #base: { href: string; url: URL; routes: Map<string, URL> } | undefined;

  #parsedBase(): { href: string; url: URL; routes: Map<string, URL> } {
    if (this.#base?.href !== this.baseUrl) {
      const withSlash = this.baseUrl.endsWith("/") ? this.baseUrl : `${this.baseUrl}/`;
      this.#base = { href: this.baseUrl, url: new URL(withSlash), routes: new Map() };
    }
    return this.#base;
  }

  /** The request URL; the caller must not modify it (parameterless routes share one). */
  #buildUrl(route: string | URL, params: Record<string, QueryValue> | undefined): URL {
    let url: URL;
    const hasParams = params !== undefined && Object.keys(params).length > 0;
    if (route instanceof URL) url = new URL(route.href);
    else if (/^https?:\/\//i.test(route)) url = new URL(route);
    else {
      const base = this.#parsedBase();
      const cached = hasParams ? undefined : base.routes.get(route);
      if (cached) return cached;
      url = new URL(route.startsWith("/") ? route.slice(1) : route, base.url);
      if (!hasParams) {
        if (base.routes.size >= 256) base.routes.clear();
        base.routes.set(route, url);
      }
    }
    if (hasParams) {
      for (const [key, value] of Object.entries(params)) {
        if (value !== undefined && value !== null) url.searchParams.append(key, String(value));
      }
    }
    return url;
  }

  // ---------------------------------------------------------------- files

  /** Encodes the file inputs of `input` with the client's strategy (used by every create). @internal */
  encodeInput<T>(input: T, signal?: AbortSignal): Promise<T> {
    return encodeFileInputs(input, this.fileEncodingStrategy, async (file) => {
      const created = await this.files.create(file, {}, signal ? { signal } : {});
      return created.urls.get;
    }) as Promise<T>;
  }

  /** Wraps file URLs (`https:`, `data:`, or `http:` on the API's own host) in {@link FileOutput}. */
  toFileOutputs(output: unknown): unknown {
    return mapLeaves(output, (leaf) =>
      typeof leaf === "string" && this.#isFileUrl(leaf) ? this.fileOutput(leaf) : leaf,
    );
  }

  /** A lazy {@link FileOutput} for `url`, downloaded through this client's fetch. */
  fileOutput(url: string, signal?: AbortSignal): FileOutput {
    const headers: Record<string, string> = { "User-Agent": this.userAgent };
    if (this.auth && !url.startsWith("data:") && this.isOwnOrigin(url))
      headers.Authorization = `Bearer ${this.auth}`;
    const options: ConstructorParameters<typeof FileOutput>[1] = {
      fetch: (input, init) => {
        const cache = this.requestCache();
        return this.fetch(input, cache ? { ...init, cache } : init);
      },
      headers,
      timeout: this.timeout,
    };
    if (signal) options.signal = signal;
    return new FileOutput(url, options);
  }

  #isFileUrl(value: string): boolean {
    if (value.startsWith("https:") || value.startsWith("data:")) return true;
    return value.startsWith("http:") && this.isOwnOrigin(value);
  }

  // ---------------------------------------------------------------- helpers

  /** Top-level search over models, collections and docs (`GET /search`, beta). */
  search(query: string, options: SearchOptions = {}): Promise<SearchResponse> {
    return this.#search.get(query, options);
  }

  /**
   * Runs a model and returns its output. By default it holds the create request open (`Prefer: wait`), then
   * polls until the prediction finishes. File URLs in the output become {@link FileOutput}s (lazy).
   *
   * @param ref `owner/name`, `owner/name:version`, a version id, `deployments/owner/name`, `{ deployment }`,
   *   or a typed {@link ModelRef}
   * @param progress called with the prediction when created, on each poll, and when done
   * @throws {@link ModelError} if the prediction fails; {@link PredictionCanceledError} if it is canceled
   *   or aborted by someone else; {@link APIUserAbortError} if `signal` aborts
   */
  run<I, O>(
    ref: ModelRef<I, O>,
    options: RunOptions<I>,
    progress?: (prediction: Prediction) => void,
  ): Promise<O>;
  run<I = Record<string, unknown>, O = unknown, R extends RunTarget = RunTarget>(
    ref: UntypedRef<R>,
    options: RunOptions<I>,
    progress?: (prediction: Prediction) => void,
  ): Promise<O>;
  async run(
    ref: RunTarget,
    options: RunOptions<unknown>,
    progress?: (prediction: Prediction) => void,
  ): Promise<unknown> {
    const {
      wait = { mode: "block" },
      signal,
      cancelOnAbort = true,
      useFileOutput,
      interval,
      ...rest
    } = options;
    throwIfAborted(signal);
    const createOptions: PredictionCreateOptions = {
      ...rest,
      input: rest.input as Record<string, unknown>,
      wait: wait.mode === "block" ? (wait.timeout ?? true) : false,
    };
    if (signal) createOptions.signal = signal;
    let prediction = await this.#create(ref, createOptions);
    progress?.(prediction);
    try {
      if (!TERMINAL.has(prediction.status)) {
        const pollInterval = interval ?? wait.interval;
        prediction = await this.#poll(prediction, { interval: pollInterval, signal }, progress);
      }
    } catch (error) {
      if (error instanceof APIUserAbortError && cancelOnAbort) await this.#cancelQuietly(prediction.id);
      throw error;
    }
    progress?.(prediction);
    throwIfUnsuccessful(prediction);
    const keepFiles = useFileOutput ?? this.useFileOutput;
    return keepFiles ? this.toFileOutputs(prediction.output) : prediction.output;
  }

  /**
   * Returns a callable bound to `ref` and this client. Type it with a {@link ModelRef} or with generics:
   * `const hello = replicate.use<{ text: string }, string>("replicate/hello-world"); await hello({ text })`.
   */
  use<I, O>(ref: ModelRef<I, O>, defaults?: Omit<RunOptions<I>, "input">): ModelFunction<I, O>;
  use<I = Record<string, unknown>, O = unknown, R extends RunTarget = RunTarget>(
    ref: UntypedRef<R>,
    defaults?: Omit<RunOptions<I>, "input">,
  ): ModelFunction<I, O>;
  use<I, O>(ref: RunTarget, defaults: Omit<RunOptions<I>, "input"> = {}): ModelFunction<I, O> {
    const call = (input: I, options: Omit<RunOptions<I>, "input"> = {}) =>
      this.run<I, O>(ref as UntypedRef<RunTarget>, { ...defaults, ...options, input });
    const create = (input: I, options: Omit<PredictionCreateOptions, "input" | "model" | "version"> = {}) =>
      this.#create(ref, { ...options, input: input as Record<string, unknown> });
    const stream = (input: I, options: Omit<StreamOptions<I>, "input"> = {}) =>
      this.stream<I>(ref as UntypedRef<RunTarget>, { ...defaults, ...options, input });
    return Object.assign(call, { ref, create, stream }) as ModelFunction<I, O>;
  }

  /**
   * Runs a model and yields its server-sent events (`output`, `logs`, `error`, `done`) as
   * {@link ServerSentEvent}s. A dropped stream is reconnected with `Last-Event-ID` (at once, and not
   * yielded, when a Replicant server ends it with `reconnect` because the reader fell behind); if it keeps
   * failing, or the model has no stream URL, the prediction is polled and new output and logs are yielded
   * the same way. An `error` event throws {@link ModelError}.
   */
  stream<I, O>(
    ref: ModelRef<I, O>,
    options: StreamOptions<I>,
  ): AsyncGenerator<ServerSentEvent<string | FileOutput>, void, undefined>;
  stream<I = Record<string, unknown>, R extends RunTarget = RunTarget>(
    ref: UntypedRef<R>,
    options: StreamOptions<I>,
  ): AsyncGenerator<ServerSentEvent<string | FileOutput>, void, undefined>;
  async *stream(
    ref: RunTarget,
    options: StreamOptions<unknown>,
  ): AsyncGenerator<ServerSentEvent<string | FileOutput>, void, undefined> {
    const { signal, cancelOnAbort = true, useFileOutput, maxReconnects, interval, ...rest } = options;
    throwIfAborted(signal);
    const createOptions: PredictionCreateOptions = { ...rest, input: rest.input as Record<string, unknown> };
    if (signal) createOptions.signal = signal;
    const prediction = await this.#create(ref, createOptions);
    const streamOptions: StreamPredictionOptions = { cancelOnAbort };
    if (signal) streamOptions.signal = signal;
    if (useFileOutput !== undefined) streamOptions.useFileOutput = useFileOutput;
    if (maxReconnects !== undefined) streamOptions.maxReconnects = maxReconnects;
    if (interval !== undefined) streamOptions.interval = interval;
    yield* this.streamPrediction(prediction, streamOptions);
  }

  /** Streams the events of an existing prediction (see {@link Replicant.stream}). */
  async *streamPrediction(
    prediction: Prediction,
    options: StreamPredictionOptions = {},
  ): AsyncGenerator<ServerSentEvent<string | FileOutput>, void, undefined> {
    const { signal, cancelOnAbort = true } = options;
    const maxReconnects = options.maxReconnects ?? 3;
    const streamUrl = prediction.urls?.stream;
    const fileStream = (options.useFileOutput ?? this.useFileOutput) && isFileStreamUrl(streamUrl);
    const seen = { outputs: 0, outputText: "", logLines: 0 };
    let finished = false;
    try {
      if (streamUrl) {
        let lastEventId: string | undefined;
        let retryMs: number | undefined;
        let failures = 0;
        while (failures <= maxReconnects) {
          let receivedEvent = false;
          let resume = false;
          try {
            const response = await this.#openEventStream(streamUrl, lastEventId, signal);
            for await (const raw of parseSSEStream(response.body ?? new Blob([]).stream(), signal)) {
              lastEventId = raw.id ?? lastEventId;
              retryMs = raw.retry ?? retryMs;
              // A Replicant server ended the stream because this reader fell behind: resume from the
              // last event id at once, unseen by the caller.
              if (raw.event === RECONNECT_EVENT) {
                resume = true;
                break;
              }
              receivedEvent = true;
              if (raw.event === "error") throw await this.#streamError(prediction, raw.data);
              let data: string | FileOutput = raw.data;
              if (raw.event === "output") {
                seen.outputs++;
                seen.outputText += raw.data;
                if (fileStream) data = this.fileOutput(raw.data);
              } else if (raw.event === "logs") {
                seen.logLines += raw.data.split("\n").length;
              }
              yield new ServerSentEvent(raw.event, data, raw.id, raw.retry);
              if (raw.event === "done") {
                finished = true;
                return;
              }
            }
          } catch (error) {
            if (error instanceof ModelError || error instanceof APIUserAbortError) throw error;
            if (
              error instanceof APIError &&
              error.status < 500 &&
              error.status !== 408 &&
              error.status !== 429
            )
              break;
          }
          throwIfAborted(signal);
          // A reconnect asked for after progress costs no retry; one with nothing before it backs off.
          if (resume && receivedEvent) {
            failures = 0;
            continue;
          }
          failures = receivedEvent ? 1 : failures + 1;
          if (failures > maxReconnects) break;
          await sleep(retryMs ?? backoffDelayMs(failures - 1), signal);
        }
      }
      yield* this.#pollEvents(prediction, seen, options);
      finished = true;
    } finally {
      if (!finished && signal?.aborted && cancelOnAbort) await this.#cancelQuietly(prediction.id);
    }
  }

  /**
   * Waits for a prediction (or training) to finish, polling every `interval` ms. Compatible with the
   * `replicate` package: `stop(prediction)` returning true ends the wait early with the current state.
   *
   * @throws {@link ModelError} if it failed
   */
  async wait<T extends Prediction | Training>(
    prediction: T,
    options: WaitForOptions = {},
    stop?: (prediction: T) => Promise<boolean> | boolean,
  ): Promise<T> {
    if (!prediction?.id) throw new ReplicantError("Invalid prediction");
    const result = await this.#poll(prediction, options, undefined, stop);
    if (result.status === "failed") throw new ModelError(result);
    return result;
  }

  /**
   * Iterates the pages of a list, as the `replicate` package does: `for await (const page of
   * replicate.paginate(replicate.predictions.list))` yields arrays of items. (Iterating the list itself,
   * `for await (const prediction of replicate.predictions.list())`, yields the items directly.)
   */
  async *paginate<T>(
    endpoint: () => PromiseLike<Page<T>>,
    options: { signal?: AbortSignal | undefined } = {},
  ): AsyncGenerator<T[], void, undefined> {
    let page = await endpoint();
    yield page.results;
    while (page.next && !options.signal?.aborted) {
      page = await this.get<Page<T>>(page.next, { signal: options.signal });
      yield page.results;
    }
  }

  /**
   * Runs `ref` once per input with bounded concurrency and an optional rate limit, reporting progress.
   * Resolves with one settled result per input, in input order; it never rejects for a failed run.
   */
  runMany<I, O>(
    ref: ModelRef<I, O>,
    inputs: readonly I[],
    options?: RunManyOptions<I>,
  ): Promise<RunManyResult<I, O>[]>;
  runMany<I = Record<string, unknown>, O = unknown, R extends RunTarget = RunTarget>(
    ref: UntypedRef<R>,
    inputs: readonly I[],
    options?: RunManyOptions<I>,
  ): Promise<RunManyResult<I, O>[]>;
  async runMany(
    ref: RunTarget,
    inputs: readonly unknown[],
    options: RunManyOptions<unknown> = {},
  ): Promise<RunManyResult<unknown, unknown>[]> {
    const { concurrency = 4, ratePerMinute, onProgress, ...runOptions } = options;
    const limiter = ratePerMinute ? new RateLimiter(ratePerMinute) : undefined;
    const results: RunManyResult<unknown, unknown>[] = new Array(inputs.length);
    const progress: RunManyProgress = {
      total: inputs.length,
      completed: 0,
      succeeded: 0,
      failed: 0,
      running: 0,
    };
    let next = 0;
    const worker = async () => {
      while (next < inputs.length) {
        const index = next++;
        const input = inputs[index];
        let started = false;
        try {
          await limiter?.acquire(runOptions.signal);
          progress.running++;
          started = true;
          const value = await this.run(ref as UntypedRef<RunTarget>, { ...runOptions, input });
          results[index] = { status: "fulfilled", input, value };
          progress.succeeded++;
        } catch (reason) {
          results[index] = { status: "rejected", input, reason };
          progress.failed++;
        } finally {
          if (started) progress.running--;
          progress.completed = progress.succeeded + progress.failed;
          onProgress?.({ ...progress });
        }
      }
    };
    const workers = Math.max(1, Math.min(concurrency, inputs.length));
    await Promise.all(Array.from({ length: workers }, worker));
    return results;
  }

  // ---------------------------------------------------------------- private

  #create(ref: string | DeploymentRef, options: PredictionCreateOptions): Promise<Prediction> {
    const target = parseModelTarget(ref);
    if (target.kind === "deployment") {
      return this.deployments.predictions.create(target.owner, target.name, options);
    }
    if (target.kind === "model") {
      return this.predictions.create({ ...options, model: `${target.owner}/${target.name}` });
    }
    return this.predictions.create({ ...options, version: target.version });
  }

  async #poll<T extends Prediction | Training>(
    initial: T,
    options: WaitForOptions,
    progress?: (prediction: Prediction) => void,
    stop?: (prediction: T) => Promise<boolean> | boolean,
  ): Promise<T> {
    let current = initial;
    const interval = options.interval ?? this.pollInterval;
    while (!TERMINAL.has(current.status)) {
      if (stop && (await stop(current)) === true) return current;
      await sleep(interval, options.signal);
      current = await this.#fetchState(current, options.signal);
      progress?.(current as Prediction);
    }
    return current;
  }

  #fetchState<T extends Prediction | Training>(current: T, signal: AbortSignal | undefined): Promise<T> {
    const control = signal ? { signal } : {};
    const url = current.urls?.get;
    if (url && this.isOwnOrigin(url)) return this.get<T>(url, control);
    return this.predictions.get(current.id, control) as Promise<T>;
  }

  async #cancelQuietly(id: string): Promise<void> {
    try {
      await this.predictions.cancel(id, { timeout: 10_000, maxRetries: 1 });
    } catch {
      // Best effort: the caller is already getting the abort error.
    }
  }

  async #openEventStream(url: string, lastEventId: string | undefined, signal: AbortSignal | undefined) {
    const target = new URL(url);
    const headers = new Headers({ Accept: "text/event-stream", "Cache-Control": "no-store" });
    headers.set("User-Agent", this.userAgent);
    if (this.auth && this.isOwnOrigin(target)) headers.set("Authorization", `Bearer ${this.auth}`);
    if (lastEventId) headers.set("Last-Event-ID", lastEventId);
    const response = await this.fetchWithTimeout(target, { method: "GET", headers }, this.timeout, signal);
    if (!response.ok) {
      const text = await response.text().catch(() => "");
      throw APIError.fromResponse({ method: "GET", url: target.href }, response, text);
    }
    return response;
  }

  async #streamError(prediction: Prediction, data: string): Promise<ModelError> {
    let detail = data;
    try {
      const parsed = JSON.parse(data) as { detail?: unknown };
      if (typeof parsed.detail === "string") detail = parsed.detail;
    } catch {
      // Plain-text error data.
    }
    let latest: Prediction = { ...prediction, status: "failed", error: detail };
    try {
      const fetched = await this.predictions.get(prediction.id, { timeout: 10_000, maxRetries: 1 });
      latest = { ...fetched, error: fetched.error ?? detail };
    } catch {
      // Keep what the stream said.
    }
    return new ModelError(latest, `Prediction failed: ${detail}`);
  }

  async *#pollEvents(
    prediction: Prediction,
    seen: { outputs: number; outputText: string; logLines: number },
    options: StreamPredictionOptions,
  ): AsyncGenerator<ServerSentEvent<string | FileOutput>, void, undefined> {
    const interval = options.interval ?? this.pollInterval;
    const useFiles = options.useFileOutput ?? this.useFileOutput;
    let current = prediction;
    let first = true;
    while (true) {
      if (!first) await sleep(interval, options.signal);
      first = false;
      current = await this.predictions.get(current.id, options.signal ? { signal: options.signal } : {});
      for (const chunk of newOutput(current.output, seen, TERMINAL.has(current.status))) {
        const data =
          useFiles && typeof chunk === "string" && this.#isFileUrl(chunk) ? this.fileOutput(chunk) : chunk;
        yield new ServerSentEvent("output", data);
      }
      const logLines = (current.logs ?? "").split("\n");
      // The last line may still be growing; only emit it once the prediction is done.
      const complete = TERMINAL.has(current.status)
        ? logLines.filter((line, index) => line !== "" || index < logLines.length - 1)
        : logLines.slice(0, -1);
      for (const line of complete.slice(seen.logLines)) yield new ServerSentEvent("logs", line);
      seen.logLines = Math.max(seen.logLines, complete.length);
      if (TERMINAL.has(current.status)) {
        if (current.status === "failed") {
          yield new ServerSentEvent("error", JSON.stringify({ detail: current.error }));
          throw new ModelError(current);
        }
        const reason = current.status === "succeeded" ? {} : { reason: current.status };
        yield new ServerSentEvent("done", JSON.stringify(reason));
        return;
      }
    }
  }
}

export interface StreamPredictionOptions {
  signal?: AbortSignal | undefined;
  cancelOnAbort?: boolean | undefined;
  useFileOutput?: boolean | undefined;
  maxReconnects?: number | undefined;
  /** Polling interval (ms) of the fallback. */
  interval?: number | undefined;
}

function throwIfUnsuccessful(prediction: Prediction): void {
  if (prediction.status === "failed") throw new ModelError(prediction);
  if (prediction.status === "canceled" || prediction.status === "aborted")
    throw new PredictionCanceledError(prediction);
}

/** Output not yet streamed: new array items, the new suffix of a string, or a whole final value. */
function newOutput(
  output: unknown,
  seen: { outputs: number; outputText: string },
  terminal: boolean,
): string[] {
  if (Array.isArray(output)) {
    const fresh = output
      .slice(seen.outputs)
      .map((item) => (typeof item === "string" ? item : JSON.stringify(item)));
    seen.outputs = output.length;
    seen.outputText += fresh.join("");
    return fresh;
  }
  if (typeof output === "string") {
    if (!output.startsWith(seen.outputText)) return [];
    const suffix = output.slice(seen.outputText.length);
    if (!suffix) return [];
    seen.outputText = output;
    seen.outputs++;
    return [suffix];
  }
  if (terminal && output !== null && output !== undefined && seen.outputs === 0) {
    seen.outputs = 1;
    return [JSON.stringify(output)];
  }
  return [];
}

function isFileStreamUrl(url: string | undefined): boolean {
  if (!url) return false;
  try {
    return new URL(url).pathname.startsWith("/v1/files/");
  } catch {
    return false;
  }
}

function isPlainObjectOrArray(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null || Array.isArray(value);
}

function isRawBody(value: unknown): value is BodyInit {
  return (
    value instanceof FormData ||
    value instanceof Blob ||
    value instanceof ArrayBuffer ||
    ArrayBuffer.isView(value) ||
    value instanceof ReadableStream ||
    value instanceof URLSearchParams
  );
}

async function parseBody<T>(response: Response | BufferedAnswer): Promise<T> {
  if (response.status === 204 || response.status === 205) return undefined as T;
  const text = response instanceof BufferedAnswer ? response.bodyText : await response.text();
  if (!text) return undefined as T;
  const type = response.headers.get("content-type") ?? "";
  if (type.includes("json")) return JSON.parse(text) as T;
  return text as T;
}

function pollIntervalFromEnv(): number | undefined {
  const value = readEnv("REPLICATE_POLL_INTERVAL");
  if (value === undefined) return undefined;
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/** Copies a caller's headers (a record, pairs or a Headers) into a lower-case record, without a Headers object. */
function mergeHeaders(target: Record<string, string>, source: HeadersInit): void {
  if (source instanceof Headers) {
    source.forEach((value, name) => {
      target[name] = value;
    });
  } else if (Array.isArray(source)) {
    for (const [name, value] of source) if (name !== undefined) target[name.toLowerCase()] = String(value);
  } else {
    for (const name in source) {
      const value = (source as Record<string, string | undefined>)[name];
      if (value !== undefined) target[name.toLowerCase()] = String(value);
    }
  }
}
