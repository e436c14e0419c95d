import type { Page } from "@replicant/protocol";
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from "fastify";
import type { AccountRecord, PageResult } from "./backends/types.js";
import { badRequest, notFound, unauthenticated } from "./errors.js";

declare module "fastify" {
  interface FastifyRequest {
    account: AccountRecord | undefined;
  }
  interface FastifyContextConfig {
    /** The route needs no API token (search, signed downloads and streams). */
    public?: boolean;
    /** Counted against the prediction-create rate limit instead of the general one. */
    createsPrediction?: boolean;
  }
}

export type Method = "GET" | "POST" | "PATCH" | "DELETE" | "QUERY" | "PUT";

/**
 * Known paths and their methods, so that a known path with the wrong method answers 405 with
 * `Allow` instead of the router's 404.
 */
export class RouteTable {
  private readonly entries: { source: string; pattern: RegExp; methods: Set<string> }[] = [];

  add(method: Method, path: string): void {
    const source = `^${path.replace(/:[A-Za-z_]+/g, "[^/]+")}/?$`;
    let entry = this.entries.find((e) => e.source === source);
    if (!entry) {
      entry = { source, pattern: new RegExp(source), methods: new Set() };
      this.entries.push(entry);
    }
    entry.methods.add(method);
    if (method === "GET") entry.methods.add("HEAD");
  }

  allowed(path: string): string[] | undefined {
    const entry = this.entries.find((e) => e.pattern.test(path));
    return entry ? [...entry.methods] : undefined;
  }
}

export interface RouteOptions {
  public?: boolean;
  createsPrediction?: boolean;
}

export function addRoute(
  app: FastifyInstance,
  table: RouteTable,
  method: Method,
  path: string,
  handler: RouteHandlerMethod,
  options: RouteOptions = {},
): void {
  table.add(method, path);
  app.route({ method, url: path, handler, config: { ...options } });
}

/** The token of an `Authorization: Bearer|Token …` header, or undefined. */
export function bearerToken(header: string): string | undefined {
  return /^(?:Bearer|Token) +(\S{1,512})$/i.exec(header.trim())?.[1];
}

/** The authenticated account; routes marked public may have none. */
export function accountOf(request: FastifyRequest): AccountRecord {
  if (!request.account) throw unauthenticated("You did not pass an authentication token");
  return request.account;
}

export function params(request: FastifyRequest): Record<string, string> {
  return request.params as Record<string, string>;
}

export function query(request: FastifyRequest): Record<string, string | undefined> {
  const raw = request.query as Record<string, unknown>;
  const result: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (Array.isArray(value)) throw badRequest(`Query parameter ${key} was given more than once`);
    result[key] = typeof value === "string" ? value : undefined;
  }
  return result;
}

/** Cursors are opaque; a tampered one is a 400, never a 500. */
export function cursorOf(request: FastifyRequest): string | undefined {
  const cursor = query(request).cursor;
  if (cursor === undefined) return undefined;
  if (cursor.length > 512 || !/^[A-Za-z0-9_=-]*$/.test(cursor)) throw badRequest("The cursor is not valid");
  return cursor;
}

/** Longer search text is refused: SQLite refuses LIKE patterns past 50,000 bytes, and no name is this long. */
const MAX_SEARCH_LENGTH = 1000;

export function searchText(text: string): string {
  if (text.length > MAX_SEARCH_LENGTH) {
    throw badRequest(`The search query is longer than ${MAX_SEARCH_LENGTH} characters`);
  }
  return text;
}

/** A Replicate list page: `next` is a full URL carrying the cursor and the other query parameters. */
export function toPage<R, T>(
  request: FastifyRequest,
  baseUrl: string,
  result: PageResult<R>,
  map: (item: R) => T,
): Page<T> {
  let next: string | null = null;
  if (result.next) {
    const url = new URL(`${baseUrl}${request.url.replace(/^\/v1/, "").split("?")[0]}`);
    for (const [key, value] of Object.entries(query(request))) {
      if (key !== "cursor" && value !== undefined) url.searchParams.set(key, value);
    }
    url.searchParams.set("cursor", result.next);
    next = url.toString();
  }
  return { next, previous: null, results: result.items.map(map) };
}

export function requireFound<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw notFound(`${what} not found`);
  return value;
}

export function sendNoContent(reply: FastifyReply, status = 204): FastifyReply {
  return reply.code(status).send();
}
