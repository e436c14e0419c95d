import type { Operation, ResponseSchemas, Schema } from "./openapi.js";

/**
 * Error statuses any operation may answer though the document lists few: malformed requests (400),
 * authentication (401) and permission (403), missing resources and paths (404), methods (405),
 * conflicts such as a disabled deployment (409), bodies too large (413), path parameters too long
 * (414), wrong content types (415), failed validation (422) and headers too large (431). Never 406,
 * 429 (rate limits are off here) or any 5xx.
 */
export const GENERIC_ERROR_STATUSES: readonly number[] = [
  400, 401, 403, 404, 405, 409, 413, 414, 415, 422, 431,
];

export interface Answer {
  status: number;
  headers: Headers;
  body: Buffer;
}

function mediaType(headers: Headers): string {
  return (headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

function parseJson(body: Buffer): { value?: unknown; error?: string } {
  try {
    return { value: JSON.parse(body.toString("utf8")) };
  } catch (error) {
    return { error: `body is not JSON (${(error as Error).message.slice(0, 60)})` };
  }
}

/**
 * Why an answer does not conform to the operation's documentation, or undefined when it does:
 * status documented (or a generic error), content type, body against the documented schema, and
 * every error a problem whose `status` is the HTTP status.
 */
export function nonConformance(
  operation: Operation,
  answer: Answer,
  schemas: ResponseSchemas,
): string | undefined {
  const { status, headers, body } = answer;
  if (status >= 500) return `server error ${status}`;
  const documented = operation.responses.get(status);
  if (!documented && !(status >= 400 && GENERIC_ERROR_STATUSES.includes(status))) {
    return `status ${status} is not documented (documented: ${[...operation.responses.keys()].join(", ")})`;
  }
  const type = mediaType(headers);
  if (status >= 400) {
    if (type !== "application/problem+json") return `error ${status} has content type "${type}"`;
    const { value, error } = parseJson(body);
    if (error) return `error ${status}: ${error}`;
    const problem = value as Record<string, unknown>;
    if (typeof problem?.title !== "string" || typeof problem.detail !== "string") {
      return `error ${status} is not a problem: ${body.toString("utf8").slice(0, 120)}`;
    }
    if (problem.status !== status) return `problem status ${String(problem.status)} on a ${status}`;
    if (status === 405 && !headers.get("allow")) return "405 without Allow";
    const schema =
      documented?.content.get("application/problem+json") ?? documented?.content.get("application/json");
    const mismatch = schema ? schemas.check(schema, value) : undefined;
    return mismatch ? `error ${status} body ${mismatch}` : undefined;
  }
  if (!documented) return undefined;
  if (documented.content.size === 0) {
    return status === 204 && body.length > 0 ? "204 with a body" : undefined;
  }
  if (documented.content.has("application/json")) {
    if (type !== "application/json")
      return `${status} has content type "${type}", documented application/json`;
    const { value, error } = parseJson(body);
    if (error) return `${status}: ${error}`;
    const schema: Schema | undefined = documented.content.get("application/json");
    const mismatch = schema ? schemas.check(schema, value) : undefined;
    return mismatch ? `${status} body ${mismatch}` : undefined;
  }
  if (documented.content.has("text/plain") && type !== "text/plain") {
    return `${status} has content type "${type}", documented text/plain`;
  }
  // Binary downloads carry the file's own type.
  return undefined;
}
