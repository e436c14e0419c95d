import type { Operation, Schema } from "./openapi.js";
import type { Random } from "./random.js";
import { type Hints, mutateJsonBody, validValue } from "./schema-values.js";

/** What the fuzzer knows of the server: tokens and values that name existing resources. */
export interface Fixtures {
  token: string;
  /** A token of another account: its requests see none of the fixtures. */
  otherToken: string;
  /** Per operation id, sets of path parameters that name existing resources. */
  pathParams: Record<string, Record<string, string>[]>;
  /** Per operation id, sets of query parameters that reach real code (a signed download's). */
  queryParams: Record<string, Record<string, string>[]>;
  /** Per operation id, body property hints. */
  bodyHints: Record<string, Hints>;
}

export interface FuzzRequest {
  method: string;
  /** Path and query, under the API's `/v1`. */
  path: string;
  headers: Record<string, string>;
  body: string | Uint8Array | undefined;
  /** What was done to a valid request, "valid" when nothing. */
  mutation: string;
}

/**
 * Path parameter values that break naive routing and lookups. Not `..` or `.`: the client's URL parser
 * resolves them, and the request goes to another operation.
 */
const BAD_SEGMENTS = [
  "",
  "%00",
  "%2F",
  "a%2Fb",
  "%E0%A4%A",
  "%ZZ",
  "%C0%AF",
  "%F0%9F%98%80",
  "%20",
  "a".repeat(201),
  "a".repeat(4000),
  "null",
  "-1",
  "0",
  "~",
  "%27%20OR%201%3D1",
  "caf%C3%A9",
];

const CONTENT_TYPES = [
  "text/plain",
  "application/xml",
  "application/x-www-form-urlencoded",
  "multipart/form-data",
  "multipart/form-data; boundary=x",
  "application/json; charset=utf-16",
  "application/json; charset=latin1",
  "application/problem+json",
  "application/octet-stream",
  "*/*",
  "",
  "garbage",
  "application/json, text/plain",
  "Application/JSON",
];

const AUTHORIZATIONS = (f: Fixtures) => [
  undefined,
  "Bearer",
  "Bearer r8_not_a_token",
  `Token ${f.token}`,
  `Bearer ${f.otherToken}`,
  `Basic ${Buffer.from("a:b").toString("base64")}`,
  `Bearer ${"x".repeat(600)}`,
  `bearer  ${f.token}`,
  "Bearer \u00e9\u00e9",
  `Bearer ${f.token} extra`,
];

const PREFERS = [
  "wait",
  "wait=1",
  "wait=0",
  "wait=61",
  "wait=abc",
  "wait=1.5",
  "respond-async",
  "wait=-1",
  "x".repeat(300),
];
const CANCEL_AFTERS = [
  "5s",
  "1m",
  "1h30m",
  "0",
  "4s",
  "-5s",
  "abc",
  "99999999999h",
  "1m1m",
  "1.5s",
  "",
  "1d",
];

/**
 * Encodes what a path or query may carry; values that are already escapes stay as they are, and a lone
 * surrogate (which encodeURIComponent refuses) goes as the invalid UTF-8 of its code unit.
 */
function encode(value: string): string {
  if (/%[0-9A-Za-z]{0,2}/.test(value)) return value;
  let out = "";
  for (const c of value) {
    out += c.length === 1 && c >= "\ud800" && c <= "\udfff" ? "%ED%A0%80" : encodeURIComponent(c);
  }
  return out;
}

function fillPath(template: string, params: Record<string, string>): string {
  return template.replace(/\{([^}]+)\}/g, (_m, name: string) => encode(params[name] ?? "x"));
}

function queryString(query: [string, string][]): string {
  if (query.length === 0) return "";
  return `?${query.map(([k, v]) => `${encodeURIComponent(k)}=${encode(v)}`).join("&")}`;
}

/** A multipart body for files.create: valid parts, or one thing wrong with them. */
function multipartBody(random: Random, mutate: boolean): { type: string; body: Uint8Array; label: string } {
  const boundary = `fuzz${random.word(8, 16)}`;
  const parts: { name: string; filename?: string; type?: string; data: Uint8Array | string }[] = [
    {
      name: "content",
      filename: `${random.word()}.bin`,
      type: "application/octet-stream",
      data: random.bytes(random.int(0, 2048)),
    },
  ];
  if (random.chance(0.5)) parts.push({ name: "filename", data: `${random.word()}.txt` });
  if (random.chance(0.5)) parts.push({ name: "type", data: random.pick(["text/plain", "image/png"]) });
  if (random.chance(0.5))
    parts.push({ name: "metadata", data: JSON.stringify({ customer_reference_id: random.int(0, 999) }) });
  let label = "valid";
  let type = `multipart/form-data; boundary=${boundary}`;
  let truncate = false;
  if (mutate) {
    switch (random.int(0, 10)) {
      case 0:
        parts.shift();
        label = "no content part";
        break;
      case 1:
        parts.push({ ...parts[0]!, name: "content" });
        label = "two content parts";
        break;
      case 2:
        parts.push({
          name: "metadata",
          data: random.pick(["{", "[]", "1", "null", `{"a":${"[".repeat(5000)}`]),
        });
        label = "bad metadata";
        break;
      case 3:
        parts.push({ name: "filename", data: "f".repeat(random.pick([256, 70_000])) });
        label = "long filename";
        break;
      case 4:
        type = "multipart/form-data";
        label = "no boundary";
        break;
      case 5:
        type = `multipart/form-data; boundary=${random.pick(["", "other", "b".repeat(300), '"unterminated'])}`;
        label = "bogus boundary";
        break;
      case 6:
        truncate = true;
        label = "truncated";
        break;
      case 7:
        for (let i = 0; i < 30; i++) parts.push({ name: `field${i}`, data: "x" });
        label = "too many parts";
        break;
      case 8:
        parts.push({ name: random.nasty().slice(0, 100) || "__proto__", data: "x" });
        label = "odd field name";
        break;
      case 9:
        parts.push({ name: "extra", filename: "x.bin", data: "file" });
        label = "unexpected file part";
        break;
      default:
        parts.push({ name: "__proto__", data: '{"polluted":1}' });
        label = "proto field";
    }
  }
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename !== undefined ? `; filename="${part.filename}"` : ""}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n`));
    if (part.type) chunks.push(Buffer.from(`Content-Type: ${part.type}\r\n`));
    chunks.push(Buffer.from("\r\n"), Buffer.from(part.data), Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  let body: Uint8Array = Buffer.concat(chunks);
  if (truncate) body = body.subarray(0, random.int(0, Math.max(0, body.length - 8)));
  return { type, body, label };
}

/** One request for `operation`: valid (reaching the fixtures), or with one thing mutated. */
export function buildRequest(
  document: Schema,
  operation: Operation,
  fixtures: Fixtures,
  random: Random,
): FuzzRequest {
  const mutate = random.chance(0.65);
  const families: string[] = ["headers", "query", "auth"];
  if (operation.parameters.some((p) => p.in === "path")) families.push("path", "path");
  if (operation.body) families.push("body", "body", "body", "content-type");
  const family = mutate ? random.pick(families) : "none";
  const labels: string[] = [];

  // Path: a binding that names existing resources, or an invented one.
  const bindings = fixtures.pathParams[operation.id] ?? [];
  const params: Record<string, string> =
    bindings.length > 0 && random.chance(0.9) ? { ...random.pick(bindings) } : {};
  for (const p of operation.parameters)
    if (p.in === "path" && params[p.name] === undefined) params[p.name] = random.word();
  if (family === "path") {
    const names = operation.parameters.filter((p) => p.in === "path").map((p) => p.name);
    const name = random.pick(names);
    params[name] = random.chance(0.7) ? random.pick(BAD_SEGMENTS) : random.nasty();
    // An empty last segment is another operation's path (`/files/` is files.list).
    if (params[name] === "" && operation.path.endsWith(`{${name}}`)) params[name] = "%20";
    labels.push(`path ${name}`);
  }

  // Query: documented parameters from their schemas (or a fixture set), plus a cursor on lists.
  const query: [string, string][] = [];
  const querySets = fixtures.queryParams[operation.id] ?? [];
  const fixed = querySets.length > 0 ? random.pick(querySets) : {};
  for (const p of operation.parameters.filter((p) => p.in === "query")) {
    if (fixed[p.name] !== undefined) query.push([p.name, fixed[p.name]!]);
    else if (p.required || random.chance(0.4))
      query.push([p.name, String(validValue(document, p.schema, random))]);
  }
  if (family === "query") {
    const kind = random.int(0, 5);
    if (kind === 0 && query.length > 0) {
      query.splice(random.int(0, query.length - 1), 1);
      labels.push("query dropped");
    } else if (kind === 1 && query.length > 0) {
      const at = random.int(0, query.length - 1);
      query[at] = [
        query[at]![0],
        random.pick(BAD_SEGMENTS.concat([random.nasty(), "1e400", "-1", "99999999999999999999"])),
      ];
      labels.push(`query ${query[at]![0]} odd`);
    } else if (kind === 2 && query.length > 0) {
      query.push(query[0]!);
      labels.push("query repeated");
    } else if (kind === 3) {
      const b64 = (text: string) => Buffer.from(text).toString("base64url");
      query.push([
        "cursor",
        random.pick([
          "abc",
          "",
          b64("[1,2]"),
          b64('{"p":1}'),
          b64('["2024-01-01T00:00:00.000Z","a\\u0000b"]'),
          b64(JSON.stringify(["x".repeat(300), "y"])),
          "%ZZ",
          "x".repeat(600),
          b64('["2999-01-01T00:00:00.000Z","zzzz"]'),
        ]),
      ]);
      labels.push("cursor");
    } else {
      query.push([
        random.pick(["limit", "wait", "sort_by", "page", "__proto__", random.word()]),
        random.nasty().slice(0, 200),
      ]);
      labels.push("query extra");
    }
  }

  // Headers: a valid token, the documented Prefer and Cancel-After, an Idempotency-Key sometimes.
  const headers: Record<string, string> = { authorization: `Bearer ${fixtures.token}` };
  const headerNames = operation.parameters.filter((p) => p.in === "header").map((p) => p.name.toLowerCase());
  if (headerNames.includes("prefer") && random.chance(0.3)) headers.prefer = `wait=${random.int(1, 3)}`;
  if (headerNames.includes("cancel-after") && random.chance(0.3))
    headers["cancel-after"] = random.pick(["5s", "10m", "1h"]);
  if (operation.method === "POST" && operation.id.endsWith("create") && random.chance(0.2)) {
    headers["idempotency-key"] = random.word(8, 32);
  }
  if (family === "auth") {
    const value = random.pick(AUTHORIZATIONS(fixtures));
    if (value === undefined) delete headers.authorization;
    else headers.authorization = value;
    labels.push("authorization");
  } else if (family === "headers") {
    // Node refuses to send CR, LF and NUL in header values: those go as "?".
    const odd = random
      .nasty()
      .replace(/[^\t\x20-\x7e\x80-\xff]/g, "?")
      .slice(0, 8000);
    const [name, value] = random.pick<[string, () => string]>([
      ["prefer", () => random.pick(PREFERS)],
      ["cancel-after", () => random.pick(CANCEL_AFTERS)],
      ["idempotency-key", () => random.pick(["", "x".repeat(5000), "\u00ff\u00fe", odd])],
      ["accept", () => random.pick(["text/event-stream", "application/xml", "*/*;q=0", "garbage"])],
      ["last-event-id", () => random.pick(["1:2", "-1", "x".repeat(300), ":"])],
      [`x-${random.word()}`, () => odd],
    ]);
    headers[name] = value();
    labels.push(`header ${name}`);
  }

  // Body.
  let body: string | Uint8Array | undefined;
  if (operation.body) {
    const { contentType, schema } = operation.body;
    if (contentType === "multipart/form-data") {
      const multipart = multipartBody(random, family === "body");
      headers["content-type"] = multipart.type;
      body = multipart.body;
      if (family === "body") labels.push(`multipart ${multipart.label}`);
    } else if (contentType === "text/plain") {
      headers["content-type"] = "text/plain";
      body = family === "body" ? random.nasty() : random.pick(["hello", "upscale", "llm", random.word()]);
      if (family === "body") labels.push("text body");
    } else {
      headers["content-type"] = "application/json";
      const valid = validValue(document, schema, random, fixtures.bodyHints[operation.id] ?? {}) as Record<
        string,
        unknown
      >;
      if (family === "body") {
        const mutation = mutateJsonBody(document, schema, valid, random);
        body = mutation.body;
        labels.push(mutation.label);
      } else body = JSON.stringify(valid);
    }
    if (family === "content-type") {
      headers["content-type"] = random.pick(CONTENT_TYPES);
      if (headers["content-type"] === "") delete headers["content-type"];
      labels.push("content type");
    }
  } else if (mutate && operation.method !== "GET" && random.chance(0.15)) {
    // A body where none is expected.
    headers["content-type"] = random.pick(["application/json", "text/plain"]);
    body = random.pick(['{"a":1}', "x", deepBody()]);
    labels.push("unexpected body");
  }

  return {
    method: operation.method,
    path: `${fillPath(operation.path, params)}${queryString(query)}`,
    headers,
    body,
    mutation: labels.length > 0 ? labels.join(", ") : "valid",
  };
}

function deepBody(): string {
  return `${"[".repeat(100)}${"]".repeat(100)}`;
}
