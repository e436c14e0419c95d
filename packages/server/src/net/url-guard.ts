import { lookup as dnsLookup } from "node:dns/promises";
import { ProblemError } from "../errors.js";
import { AddressPolicy, type PrivateAddressPolicy, parseIpLiteral } from "./address-policy.js";

export type { PrivateAddressPolicy } from "./address-policy.js";

/** One DNS answer, as `dns.lookup(host, { all: true })` returns them. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to every address it has. Injectable so tests can simulate DNS. */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: HostResolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/** An outbound URL refused by policy: wrong scheme or a non-public destination. */
export class UrlRefusedError extends Error {
  readonly code = "URL_REFUSED";

  constructor(message: string) {
    super(message);
    this.name = "UrlRefusedError";
  }
}

/**
 * Every address `hostname` resolves to, when each is allowed: a `localhost` name, or a name with any
 * refused answer, is refused (UrlRefusedError). What the connection-time guards dial is one of these.
 */
export async function resolveAllowed(
  hostname: string,
  policy: AddressPolicy,
  resolve: HostResolver = systemResolver,
): Promise<ResolvedAddress[]> {
  const localhost = policy.checkLocalhostName(hostname);
  if (localhost) throw new UrlRefusedError(localhost);
  const answers = await resolve(hostname);
  for (const answer of answers) {
    const why = policy.check(answer.address);
    if (why) throw new UrlRefusedError(`${hostname} resolves to a refused address: ${why}`);
  }
  return answers;
}

export interface OutboundUrlOptions {
  allowPrivate: PrivateAddressPolicy;
}

const ALLOWED_PROTOCOLS = new Set(["http:", "https:"]);

/** Hides query strings and credentials (they often hold tokens) when a URL appears in a message. */
export function describeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function policyOf(options: OutboundUrlOptions | AddressPolicy): AddressPolicy {
  return options instanceof AddressPolicy ? options : new AddressPolicy(options.allowPrivate);
}

const HOW_TO_ALLOW =
  "Only public addresses may be used unless the server is configured to allow private URLs.";

/**
 * Parses a URL with the WHATWG parser (the same parse the request will use) and checks its scheme and,
 * when the host is an IP literal or a localhost name, its address. Throws UrlRefusedError.
 * Host names are only checked for real when they are resolved, at connect time.
 */
export function parseOutboundUrl(input: string | URL, options: OutboundUrlOptions | AddressPolicy): URL {
  let url: URL;
  try {
    url = typeof input === "string" ? new URL(input) : new URL(input.href);
  } catch {
    throw new UrlRefusedError(`"${truncate(String(input))}" is not a valid URL.`);
  }
  if (!ALLOWED_PROTOCOLS.has(url.protocol)) {
    throw new UrlRefusedError(
      `The URL scheme "${url.protocol.replace(/:$/, "")}" is not allowed; use http or https.`,
    );
  }
  const policy = policyOf(options);
  const literal = parseIpLiteral(url.hostname);
  const refusal = literal ? policy.check(url.hostname) : policy.checkLocalhostName(url.hostname);
  if (refusal) throw new UrlRefusedError(`${describeUrl(url)} is not allowed: ${refusal}. ${HOW_TO_ALLOW}`);
  return url;
}

/**
 * The create-time check for webhook and input URLs: returns the parsed URL, or throws a 422
 * ProblemError whose detail says what is wrong. `field` (e.g. "webhook") prefixes the detail.
 */
export function checkOutboundUrl(url: string, options: OutboundUrlOptions & { field?: string }): URL {
  try {
    return parseOutboundUrl(url, options);
  } catch (error) {
    throw toProblem(error, options.field);
  }
}

/**
 * Like checkOutboundUrl, and also resolves a host name and refuses it when any answer is non-public.
 * A name that does not resolve (or not within `timeoutMs`) is accepted: the request will fail later
 * with a clear error, and the connect-time check still runs on every request, so this only gives an
 * earlier, clearer answer.
 */
export async function checkOutboundUrlResolved(
  url: string,
  options: OutboundUrlOptions & { field?: string; resolve?: HostResolver; timeoutMs?: number },
): Promise<URL> {
  const parsed = checkOutboundUrl(url, options);
  if (parseIpLiteral(parsed.hostname)) return parsed;
  const policy = policyOf(options);
  if (policy.allowsEverything) return parsed;
  let answers: ResolvedAddress[];
  try {
    answers = await withTimeout((options.resolve ?? systemResolver)(parsed.hostname), options.timeoutMs);
  } catch {
    return parsed;
  }
  for (const answer of answers) {
    const refusal = policy.check(answer.address);
    if (refusal) {
      const error = new UrlRefusedError(
        `${describeUrl(parsed)} is not allowed: ${parsed.hostname} resolves to a refused address: ${refusal}. ${HOW_TO_ALLOW}`,
      );
      throw toProblem(error, options.field);
    }
  }
  return parsed;
}

/** A lookup cannot be aborted; past the timeout its answer is ignored. */
function withTimeout<T>(promise: Promise<T>, ms: number | undefined): Promise<T> {
  if (ms === undefined) return promise;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function toProblem(error: unknown, field: string | undefined): unknown {
  if (!(error instanceof UrlRefusedError)) return error;
  const detail = field ? `${field}: ${error.message}` : error.message;
  return new ProblemError(422, "Invalid URL", detail, {
    invalidFields: [{ type: "invalid_url", field: field ?? "url", description: error.message }],
  });
}

function truncate(text: string): string {
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}
