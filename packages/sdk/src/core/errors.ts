import type { InvalidField, Prediction, Problem, Training } from "@replicant/protocol";

const ERROR_MARKER = Symbol.for("replicant.error");

/**
 * Root of every error this SDK throws. Use `instanceof ReplicantError`, or {@link isReplicantError} when two
 * copies of the package may be installed (instanceof fails across copies).
 */
export class ReplicantError extends Error {
  override name = "ReplicantError";
  readonly [ERROR_MARKER] = true;
}

/** True for any error thrown by any copy of this SDK. */
export function isReplicantError(value: unknown): value is ReplicantError {
  return typeof value === "object" && value !== null && ERROR_MARKER in value;
}

/** What the SDK knows about the request that failed (bodies are left out: they may hold secrets). */
export interface RequestSummary {
  method: string;
  url: string;
}

/**
 * The API answered with a non-2xx status. `problem` holds the parsed RFC 7807 body when there was one.
 * `response` is the raw `Response` (its body is already consumed; the text is in `body`).
 */
export class APIError<TStatus extends number = number> extends ReplicantError {
  override name = "APIError";
  readonly status: TStatus;
  readonly headers: Headers;
  readonly problem: Problem | undefined;
  /** The response body as text (empty when there was none). */
  readonly body: string;
  readonly request: RequestSummary;
  readonly response: Response;

  constructor(status: TStatus, request: RequestSummary, response: Response, body: string) {
    const problem = parseProblem(body, status);
    super(errorMessage(status, request, response, problem, body));
    this.status = status;
    this.headers = response.headers;
    this.problem = problem;
    this.body = body;
    this.request = request;
    this.response = response;
  }

  get title(): string | undefined {
    return this.problem?.title;
  }

  get detail(): string | undefined {
    return this.problem?.detail;
  }

  /** The fields that failed validation, on a 422 "Input validation failed" problem. */
  get invalidFields(): InvalidField[] {
    return this.problem?.invalid_fields ?? [];
  }

  /** Builds the subclass that matches `status`. */
  static fromResponse(request: RequestSummary, response: Response, body: string): APIError {
    const status = response.status;
    if (status === 400) return new BadRequestError(status, request, response, body);
    if (status === 401) return new AuthenticationError(status, request, response, body);
    if (status === 403) return new PermissionDeniedError(status, request, response, body);
    if (status === 404) return new NotFoundError(status, request, response, body);
    if (status === 409) return new ConflictError(status, request, response, body);
    if (status === 422) return new UnprocessableEntityError(status, request, response, body);
    if (status === 429) return new RateLimitError(status, request, response, body);
    if (status >= 500) return new InternalServerError(status, request, response, body);
    return new APIError(status, request, response, body);
  }
}

export class BadRequestError extends APIError<400> {
  override name = "BadRequestError";
}
export class AuthenticationError extends APIError<401> {
  override name = "AuthenticationError";
}
export class PermissionDeniedError extends APIError<403> {
  override name = "PermissionDeniedError";
}
export class NotFoundError extends APIError<404> {
  override name = "NotFoundError";
}
export class ConflictError extends APIError<409> {
  override name = "ConflictError";
}
export class UnprocessableEntityError extends APIError<422> {
  override name = "UnprocessableEntityError";
}
export class RateLimitError extends APIError<429> {
  override name = "RateLimitError";
}
export class InternalServerError extends APIError<number> {
  override name = "InternalServerError";
}

/** The request never got an HTTP response (DNS, refused connection, reset, TLS...). `cause` holds why. */
export class APIConnectionError extends ReplicantError {
  override name = "APIConnectionError";
  readonly request: RequestSummary;
  constructor(request: RequestSummary, options?: { cause?: unknown; message?: string }) {
    super(options?.message ?? `Connection error: ${request.method} ${request.url}`, {
      cause: options?.cause,
    });
    this.request = request;
  }
}

/** The request did not get response headers within the client's `timeout`. */
export class APITimeoutError extends APIConnectionError {
  override name = "APITimeoutError";
  constructor(request: RequestSummary, timeoutMs: number) {
    super(request, { message: `Request timed out after ${timeoutMs} ms: ${request.method} ${request.url}` });
  }
}

/**
 * The caller's `AbortSignal` fired. Its `name` is `"AbortError"`, like the DOM's, so existing
 * `error.name === "AbortError"` checks keep working.
 */
export class APIUserAbortError extends ReplicantError {
  override name = "AbortError";
  /** The signal's `reason`. */
  readonly reason: unknown;
  constructor(reason?: unknown) {
    super(reason instanceof Error && reason.name !== "AbortError" ? reason.message : "Request was aborted.", {
      cause: reason,
    });
    this.reason = reason;
  }
}

/** A prediction (or training) ended `failed`. `prediction` holds it, with `error` and `logs`. */
export class ModelError extends ReplicantError {
  override name = "ModelError";
  readonly prediction: Prediction | Training;
  constructor(prediction: Prediction | Training, message?: string) {
    super(message ?? `Prediction failed: ${formatModelError(prediction.error)}`);
    this.prediction = prediction;
  }
  get id(): string {
    return this.prediction.id;
  }
  get status(): string {
    return this.prediction.status;
  }
  get logs(): string {
    return this.prediction.logs ?? "";
  }
  /** The last `lines` lines of the logs, which usually hold the traceback. */
  logsTail(lines = 20): string {
    return this.logs.split("\n").slice(-lines).join("\n");
  }
}

/** A prediction ended `canceled` or `aborted` without this client asking (a deadline, another client). */
export class PredictionCanceledError extends ModelError {
  override name = "PredictionCanceledError";
  constructor(prediction: Prediction | Training) {
    super(prediction, `Prediction ${prediction.id} ended with status ${prediction.status}`);
  }
}

/** A webhook failed verification; `reason` says which check failed. */
export class WebhookVerificationError extends ReplicantError {
  override name = "WebhookVerificationError";
  readonly reason: WebhookVerificationFailure;
  constructor(reason: WebhookVerificationFailure, message: string) {
    super(message);
    this.reason = reason;
  }
}

export type WebhookVerificationFailure =
  | "missing_headers"
  | "missing_body"
  | "invalid_secret"
  | "invalid_timestamp"
  | "timestamp_out_of_tolerance"
  | "invalid_signature";

function formatModelError(error: unknown): string {
  if (error === null || error === undefined) return "unknown error";
  return typeof error === "string" ? error : JSON.stringify(error);
}

function parseProblem(body: string, status: number): Problem | undefined {
  if (!body) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const record = parsed as Record<string, unknown>;
  const problem: Problem = {
    title: typeof record.title === "string" ? record.title : "",
    detail: typeof record.detail === "string" ? record.detail : "",
    status: typeof record.status === "number" ? record.status : status,
  };
  if (typeof record.type === "string") problem.type = record.type;
  if (typeof record.instance === "string") problem.instance = record.instance;
  if (Array.isArray(record.invalid_fields)) problem.invalid_fields = record.invalid_fields as InvalidField[];
  return problem;
}

function errorMessage(
  status: number,
  request: RequestSummary,
  response: Response,
  problem: Problem | undefined,
  body: string,
): string {
  const prefix = `Request to ${request.method} ${request.url} failed with status ${status}`;
  if (problem && (problem.title || problem.detail)) {
    const parts = [problem.title, problem.detail].filter(Boolean).join(": ");
    return `${prefix}: ${parts}`;
  }
  if (body) return `${prefix} ${response.statusText}: ${body.slice(0, 500)}`;
  return `${prefix} ${response.statusText} (no body)`;
}
