/**
 * A per-request limit on the wait for response headers, given to undici itself (Node's own fetch) as its
 * documented `headersTimeout` dispatch option, instead of an AbortSignal per request: undici tracks a
 * request's signal with a WeakRef, a FinalizationRegistry entry and a listener, ~60 µs of a local call
 * (R6 in docs/performance.md). undici closes the connection when the limit passes, as an abort would.
 *
 * The dispatcher is composed over the global one, read at each call, so a proxy or mock agent installed
 * with `setGlobalDispatcher` still applies. Where there is no composable global dispatcher (not Node's
 * fetch, or an undici without `compose`), callers fall back to a signal.
 */

/** The symbol undici (Node's own and the npm package alike) keeps its global dispatcher under. */
const GLOBAL_DISPATCHER = Symbol.for("undici.globalDispatcher.1");

type Dispatch = (options: Record<string, unknown>, handler: unknown) => unknown;

/** The part of undici's Dispatcher used here; typed locally so the SDK needs no undici types. */
export interface ComposableDispatcher {
  dispatch: Dispatch;
  compose?: (...interceptors: ((dispatch: Dispatch) => Dispatch)[]) => ComposableDispatcher;
}

const composed = new WeakMap<object, Map<number, ComposableDispatcher>>();

/** A dispatcher that sends every request with `headersTimeout: timeoutMs`, or undefined where there is none. */
export function headersTimeoutDispatcher(timeoutMs: number): ComposableDispatcher | undefined {
  const global = (globalThis as Record<symbol, unknown>)[GLOBAL_DISPATCHER] as
    | ComposableDispatcher
    | undefined;
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

/** True for the error Node's fetch rejects with when undici's `headersTimeout` passed. */
export function isHeadersTimeout(error: unknown): boolean {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  return cause?.code === "UND_ERR_HEADERS_TIMEOUT";
}
