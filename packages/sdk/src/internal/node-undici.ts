/**
 * Node's own HTTP client, undici, used below its `fetch` where that is safe. Nothing here imports a Node
 * module: the global dispatcher is read from the symbol undici keeps it under, so the SDK still bundles for
 * browsers and edge runtimes, where every function here declines and the caller uses fetch.
 *
 * - `requestBuffered` sends an API call with the dispatcher's own `request()` and reads the answer whole. It
 *   skips fetch's WHATWG machinery (Request, body and response streams, header guards):
 *   a loopback call takes about a third of fetch's time (R6 in docs/performance.md). The dispatcher is the
 *   one fetch would use, so a proxy or mock agent installed with `setGlobalDispatcher` still carries it.
 * - `headersTimeoutDispatcher` gives fetch (streams, uploads) a per-request limit on the response headers as
 *   undici's documented `headersTimeout` dispatch option instead of an AbortSignal, which undici tracks with
 *   a WeakRef, a FinalizationRegistry entry and a listener.
 */

/** The symbol undici (Node's own and the npm package alike) keeps its global dispatcher under. */
const GLOBAL_DISPATCHER = Symbol.for("undici.globalDispatcher.1");

type Dispatch = (options: Record<string, unknown>, handler: unknown) => unknown;

interface RequestAnswer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: { arrayBuffer(): Promise<ArrayBuffer>; text(): Promise<string>; dump(): Promise<void> };
}

/** The part of undici's Dispatcher used here; typed locally so the SDK needs no undici types. */
export interface ComposableDispatcher {
  dispatch: Dispatch;
  compose?: (...interceptors: ((dispatch: Dispatch) => Dispatch)[]) => ComposableDispatcher;
  request?: (options: Record<string, unknown>) => Promise<RequestAnswer>;
}

function globalDispatcher(): ComposableDispatcher | undefined {
  return (globalThis as Record<symbol, unknown>)[GLOBAL_DISPATCHER] as ComposableDispatcher | undefined;
}

let checkedFetch: unknown;
let checkedIsNodeOwn = false;

/**
 * True when `candidate` is Node's own fetch (a lazy loader of its bundled undici), not one a test library or
 * framework put in its place, before or after the SDK loaded: bypassing that would bypass its mocks.
 */
export function isNodeOwnFetch(candidate: unknown): boolean {
  if (candidate !== checkedFetch) {
    checkedFetch = candidate;
    checkedIsNodeOwn =
      typeof candidate === "function" &&
      Function.prototype.toString.call(candidate).includes("internal/deps/undici/undici");
  }
  return checkedIsNodeOwn;
}

const composed = new WeakMap<object, Map<number, ComposableDispatcher>>();

/** A dispatcher that sends every request with `headersTimeout: timeoutMs`, or undefined where there is none. */
export function headersTimeoutDispatcher(timeoutMs: number): ComposableDispatcher | undefined {
  const global = globalDispatcher();
  if (typeof global?.compose !== "function") return undefined;
  let byTimeout = composed.get(global);
  if (!byTimeout) {
    byTimeout = new Map();
    composed.set(global, byTimeout);
  }
  let dispatcher = byTimeout.get(timeoutMs);
  if (!dispatcher) {
    // Two parameters: compose checks the interceptor's arity.
    dispatcher = global.compose(
      (dispatch) => (options, handler) => dispatch({ ...options, headersTimeout: timeoutMs }, handler),
    );
    byTimeout.set(timeoutMs, dispatcher);
  }
  return dispatcher;
}

/** True for the error undici gives up with when `headersTimeout` passed (directly or as fetch's cause). */
export function isHeadersTimeout(error: unknown): boolean {
  const failure = error as { code?: unknown; cause?: { code?: unknown } } | undefined;
  return failure?.code === "UND_ERR_HEADERS_TIMEOUT" || failure?.cause?.code === "UND_ERR_HEADERS_TIMEOUT";
}

/** True where {@link requestBuffered} can send: undici's global dispatcher exists (Node's first fetch makes it). */
export function canRequestBuffered(): boolean {
  return typeof globalDispatcher()?.request === "function";
}

/** An answer that fetch must finish: a redirect, which fetch follows as its specification says. */
export interface Redirected {
  redirect: URL;
  /** The method to follow it with: GET where fetch turns a POST (301, 302) or anything (303) into one. */
  method: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** What fetch sends and decodes; DecompressionStream (a global on Node 18+) decodes both. */
const ACCEPT_ENCODING = "gzip, deflate";

/** An answer read whole. The WHATWG `Response` (a stream inside) is made only where one is handed out. */
export class BufferedAnswer {
  constructor(
    readonly status: number,
    readonly headers: Headers,
    readonly bodyText: string,
  ) {}

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  toResponse(): Response {
    const empty = this.status === 204 || this.status === 205 || this.status === 304;
    return new Response(empty ? null : this.bodyText, { status: this.status, headers: this.headers });
  }
}

/**
 * One request through undici's global dispatcher, its answer read whole (callers parse it; a stream or a
 * download goes through fetch instead). Errors are undici's own (`code` `UND_ERR_HEADERS_TIMEOUT`,
 * `UND_ERR_ABORTED`, `ECONNREFUSED`...).
 */
export async function requestBuffered(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | null,
  headersTimeout: number | undefined,
  signal: AbortSignal | undefined,
): Promise<BufferedAnswer | Redirected> {
  const dispatcher = globalDispatcher();
  if (typeof dispatcher?.request !== "function") throw new Error("undici's global dispatcher is missing");
  const options: Record<string, unknown> = {
    origin: url.origin,
    path: url.pathname + url.search,
    method,
    headers:
      headers["accept-encoding"] === undefined ? { ...headers, "accept-encoding": ACCEPT_ENCODING } : headers,
    body,
  };
  if (headersTimeout !== undefined) options.headersTimeout = headersTimeout;
  if (signal) options.signal = signal;
  const answer = await dispatcher.request(options);
  const status = answer.statusCode;
  if (status < 200 || status > 599) {
    await answer.body.dump();
    throw new Error(`unexpected HTTP status ${status}`);
  }
  const location = answer.headers.location;
  if (REDIRECTS.has(status) && typeof location === "string") {
    await answer.body.dump();
    const becomesGet =
      (status === 303 && method !== "HEAD") || ((status === 301 || status === 302) && method === "POST");
    return { redirect: new URL(location, url), method: becomesGet ? "GET" : method };
  }
  const responseHeaders = new Headers();
  for (const name in answer.headers) {
    const value = answer.headers[name];
    if (typeof value === "string") responseHeaders.append(name, value);
    else if (value) for (const item of value) responseHeaders.append(name, item);
  }
  const encoding = responseHeaders.get("content-encoding")?.trim().toLowerCase();
  if (encoding === "gzip" || encoding === "x-gzip" || encoding === "deflate") {
    const decoded = new Blob([await answer.body.arrayBuffer()])
      .stream()
      .pipeThrough(new DecompressionStream(encoding === "deflate" ? "deflate" : "gzip"));
    return new BufferedAnswer(status, responseHeaders, await new Response(decoded).text());
  }
  return new BufferedAnswer(status, responseHeaders, await answer.body.text());
}
