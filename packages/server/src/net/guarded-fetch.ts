import type { LookupAddress, LookupOptions } from "node:dns";
import type { LookupFunction } from "node:net";
import { Agent, buildConnector, type Headers, fetch as undiciFetch } from "undici";
import { AddressPolicy, type PrivateAddressPolicy, parseIpLiteral } from "./address-policy.js";
import {
  describeUrl,
  type HostResolver,
  parseOutboundUrl,
  type ResolvedAddress,
  resolveAllowed,
  systemResolver,
  UrlRefusedError,
} from "./url-guard.js";

export interface GuardedFetchOptions {
  allowPrivate: PrivateAddressPolicy;
  /** Whole request, body included. */
  timeoutMs: number;
  /** Response bodies larger than this fail while being read. */
  maxBytes: number;
  /** 0 returns 3xx responses as they are (webhooks); otherwise each hop is checked again. */
  maxRedirects: number;
  /** DNS resolution used at connect time; tests inject one. Defaults to dns.lookup({ all: true }). */
  lookup?: HostResolver;
  /** Sent when the request sets no user-agent. */
  userAgent?: string;
}

export interface GuardedRequestInit {
  method?: string;
  headers?: Record<string, string>;
  /** Buffered so it can be sent again on a 307/308 hop. */
  body?: string | Uint8Array;
  signal?: AbortSignal;
  /** Per-request overrides of the factory's limits. */
  timeoutMs?: number;
  maxBytes?: number;
  maxRedirects?: number;
}

export type OutboundFailure = "timeout" | "too-large" | "too-many-redirects" | "bad-redirect" | "network";

/** A request that could not complete, with a message meant for the user (it may become a prediction's error). */
export class OutboundRequestError extends Error {
  readonly code = "OUTBOUND_REQUEST_FAILED";

  constructor(
    readonly reason: OutboundFailure,
    message: string,
  ) {
    super(message);
    this.name = "OutboundRequestError";
  }
}

export interface GuardedFetch {
  (input: string | URL, init?: GuardedRequestInit): Promise<GuardedResponse>;
  /** Closes pooled connections. */
  close(): Promise<void>;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * fetch for URLs that users supply (webhooks, input files), safe against SSRF: every address is checked
 * when the connection is made (IP literals directly, host names on every DNS answer), so DNS rebinding
 * fails; redirects are followed by hand with the same check on each hop; bodies and time are capped.
 * Throws UrlRefusedError for policy refusals and OutboundRequestError for everything else.
 */
export function createGuardedFetch(options: GuardedFetchOptions): GuardedFetch {
  const policy = new AddressPolicy(options.allowPrivate);
  const agent = new Agent({
    connect: createGuardedConnector({ ...options, policy }),
    // A kept-alive socket was validated when it was opened, so reusing it is safe.
    keepAliveTimeout: 4_000,
  });

  const guardedFetch = async (
    input: string | URL,
    init: GuardedRequestInit = {},
  ): Promise<GuardedResponse> => {
    const timeoutMs = init.timeoutMs ?? options.timeoutMs;
    const maxBytes = init.maxBytes ?? options.maxBytes;
    const maxRedirects = init.maxRedirects ?? options.maxRedirects;
    let url = parseOutboundUrl(input, policy);

    const deadline = new AbortController();
    const timer = setTimeout(() => {
      deadline.abort(
        new OutboundRequestError("timeout", `${describeUrl(url)} timed out after ${timeoutMs} ms`),
      );
    }, timeoutMs);
    timer.unref();
    const done = () => clearTimeout(timer);
    const signal = init.signal ? AbortSignal.any([init.signal, deadline.signal]) : deadline.signal;

    let method = (init.method ?? "GET").toUpperCase();
    let body = init.body;
    const headers = new Map(Object.entries(init.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    if (!headers.has("user-agent")) headers.set("user-agent", options.userAgent ?? "replicant");
    try {
      for (let hop = 0; ; hop++) {
        const request = withCredentialsAsHeader(url, headers);
        const response = await undiciFetch(request.url, {
          method,
          headers: Object.fromEntries(request.headers),
          ...(body !== undefined ? { body } : {}),
          redirect: "manual",
          signal,
          dispatcher: agent,
        }).catch((error: unknown) => {
          throw translateError(error, url, signal);
        });
        const location = response.headers.get("location");
        if (maxRedirects <= 0 || !REDIRECT_STATUSES.has(response.status) || location === null) {
          return new GuardedResponse(response, url, hop > 0, maxBytes, signal, done);
        }
        await response.body?.cancel().catch(() => {});
        if (hop >= maxRedirects) {
          throw new OutboundRequestError(
            "too-many-redirects",
            `${describeUrl(url)} redirected more than ${maxRedirects} times`,
          );
        }
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw new OutboundRequestError("bad-redirect", `${describeUrl(url)} redirected to an invalid URL`);
        }
        try {
          next = parseOutboundUrl(next, policy);
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          throw new UrlRefusedError(`${describeUrl(url)} redirected to a refused URL: ${reason}`);
        }
        if (next.origin !== url.origin) {
          headers.delete("authorization");
          headers.delete("cookie");
        }
        if (
          response.status === 303 ||
          ((response.status === 301 || response.status === 302) && method === "POST")
        ) {
          method = method === "HEAD" ? "HEAD" : "GET";
          body = undefined;
          headers.delete("content-type");
          headers.delete("content-length");
        }
        url = next;
      }
    } catch (error) {
      done();
      throw error;
    }
  };
  return Object.assign(guardedFetch, { close: () => agent.close() });
}

/**
 * An undici connector (for `new Agent({ connect })`) that refuses non-public destinations. IP literals are checked here (undici never calls `lookup` for them), host names through
 * a lookup that resolves every address, refuses the name if any answer is non-public, and hands only
 * validated addresses to the socket. So the address dialled is always one that was checked.
 */
export function createGuardedConnector(options: {
  allowPrivate: PrivateAddressPolicy;
  policy?: AddressPolicy;
  lookup?: HostResolver;
  timeoutMs: number;
}): buildConnector.connector {
  const policy = options.policy ?? new AddressPolicy(options.allowPrivate);
  const resolve = options.lookup ?? systemResolver;
  const checkingLookup: LookupFunction = (hostname, lookupOptions: LookupOptions, callback) => {
    resolveAllowed(hostname, policy, resolve).then(
      (answers) => {
        const usable = answers.filter(
          (a) =>
            lookupOptions.family == null || lookupOptions.family === 0 || a.family === lookupOptions.family,
        );
        const first = usable[0];
        if (!first) {
          callback(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }), "", 0);
          return;
        }
        if (lookupOptions.all) callback(null, usable.map(toLookupAddress));
        else callback(null, first.address, first.family);
      },
      (error: unknown) => callback(error as NodeJS.ErrnoException, "", 0),
    );
  };
  const connect = buildConnector({ timeout: options.timeoutMs, lookup: checkingLookup });
  return (connectOptions, callback) => {
    const literal = parseIpLiteral(connectOptions.hostname);
    const refusal = literal
      ? policy.check(connectOptions.hostname)
      : policy.checkLocalhostName(connectOptions.hostname);
    if (refusal) {
      callback(new UrlRefusedError(refusal), null);
      return;
    }
    connect(connectOptions, callback);
  };
}

function toLookupAddress(answer: ResolvedAddress): LookupAddress {
  return { address: answer.address, family: answer.family };
}

/** fetch refuses URLs with credentials; send them as Basic authentication instead. */
function withCredentialsAsHeader(
  url: URL,
  headers: Map<string, string>,
): { url: string; headers: Map<string, string> } {
  if (url.username === "" && url.password === "") return { url: url.href, headers };
  const bare = new URL(url.href);
  bare.username = "";
  bare.password = "";
  const result = new Map(headers);
  if (!result.has("authorization")) {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    result.set("authorization", `Basic ${Buffer.from(credentials).toString("base64")}`);
  }
  return { url: bare.href, headers: result };
}

const NETWORK_MESSAGES: Record<string, string> = {
  ECONNREFUSED: "refused the connection",
  ECONNRESET: "closed the connection",
  ENOTFOUND: "could not be resolved",
  EAI_AGAIN: "could not be resolved (temporary DNS failure)",
  ETIMEDOUT: "did not answer in time",
  UND_ERR_CONNECT_TIMEOUT: "did not accept the connection in time",
  UND_ERR_SOCKET: "closed the connection",
  EHOSTUNREACH: "is unreachable",
  ENETUNREACH: "is unreachable",
  CERT_HAS_EXPIRED: "has an expired TLS certificate",
  DEPTH_ZERO_SELF_SIGNED_CERT: "has a self-signed TLS certificate",
  ERR_TLS_CERT_ALTNAME_INVALID: "has a TLS certificate for another name",
};

/** Turns undici's "fetch failed" (and aborts) into our two error types with readable messages. */
function translateError(error: unknown, url: URL, signal: AbortSignal): Error {
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof OutboundRequestError) return reason;
    return new OutboundRequestError("network", `The request to ${describeUrl(url)} was cancelled`);
  }
  let cause: unknown = error;
  for (let depth = 0; depth < 4 && cause instanceof Error; depth++) {
    if (cause instanceof UrlRefusedError) {
      return new UrlRefusedError(
        `${describeUrl(url)} is not allowed: ${cause.message}. Only public addresses may be used unless the server is configured to allow private URLs.`,
      );
    }
    if (cause instanceof OutboundRequestError) return cause;
    const code = (cause as NodeJS.ErrnoException).code;
    if (code && NETWORK_MESSAGES[code]) {
      return new OutboundRequestError("network", `${url.host} ${NETWORK_MESSAGES[code]}`);
    }
    if (!(cause as Error).cause) break;
    cause = (cause as Error).cause;
  }
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new OutboundRequestError("network", `The request to ${describeUrl(url)} failed: ${detail}`);
}

type UndiciResponse = Awaited<ReturnType<typeof undiciFetch>>;

/** A fetch Response whose body is capped at maxBytes and bounded by the request's deadline. */
export class GuardedResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Headers;
  /** The URL that answered, after redirects. */
  readonly url: string;
  readonly redirected: boolean;
  readonly body: ReadableStream<Uint8Array> | null;
  private used = false;

  constructor(
    response: UndiciResponse,
    url: URL,
    redirected: boolean,
    maxBytes: number,
    signal: AbortSignal,
    done: () => void,
  ) {
    this.status = response.status;
    this.statusText = response.statusText;
    this.headers = response.headers;
    this.url = url.href;
    this.redirected = redirected;
    const source = response.body;
    if (!source || NULL_BODY_STATUSES.has(response.status)) {
      void source?.cancel().catch(() => {});
      done();
      this.body = null;
      return;
    }
    const declared = Number(response.headers.get("content-length") ?? Number.NaN);
    const tooLarge = () =>
      new OutboundRequestError(
        "too-large",
        `${describeUrl(url)} is larger than the limit of ${maxBytes} bytes`,
      );
    const reader = source.getReader();
    let received = 0;
    this.body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          if (declared > maxBytes) throw tooLarge();
          const { done: finished, value } = await reader.read();
          if (finished) {
            done();
            controller.close();
            return;
          }
          received += value.byteLength;
          if (received > maxBytes) throw tooLarge();
          controller.enqueue(value);
        } catch (error) {
          done();
          reader.cancel().catch(() => {});
          controller.error(
            error instanceof OutboundRequestError ? error : translateError(error, url, signal),
          );
        }
      },
      cancel(reason) {
        done();
        return reader.cancel(reason);
      },
    });
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get bodyUsed(): boolean {
    return this.used;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.bytes();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array> {
    const stream = this.take();
    if (!stream) return new Uint8Array();
    const chunks: Uint8Array[] = [];
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
    return Buffer.concat(chunks);
  }

  async text(): Promise<string> {
    return new TextDecoder().decode(await this.bytes());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  /** Drops the body without reading it (frees the connection and the deadline timer). */
  async discard(): Promise<void> {
    if (this.used) return;
    const stream = this.take();
    await stream?.cancel().catch(() => {});
  }

  /** The body stream, for reading once; a second call throws, as fetch does. */
  take(): ReadableStream<Uint8Array> | null {
    if (this.used) throw new TypeError("The response body was already used");
    this.used = true;
    return this.body;
  }
}
