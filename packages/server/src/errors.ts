import type { InvalidField, Problem } from "@replicant/protocol";

/**
 * An error that becomes a problem+json response. Throw it from any route; the error handler in
 * app.ts renders it. Anything else thrown becomes a 500 without internals.
 */
export class ProblemError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly invalidFields: InvalidField[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    status: number,
    title: string,
    detail: string,
    extra: { invalidFields?: InvalidField[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.name = "ProblemError";
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.invalidFields = extra.invalidFields;
    this.headers = extra.headers;
  }

  toProblem(): Problem {
    const problem: Problem = { title: this.title, detail: this.detail, status: this.status };
    if (this.invalidFields) problem.invalid_fields = this.invalidFields;
    return problem;
  }
}

export const badRequest = (detail: string) => new ProblemError(400, "Bad request", detail);
export const unauthenticated = (detail: string) => new ProblemError(401, "Unauthenticated", detail);
export const notFound = (detail = "Not found") => new ProblemError(404, "Not found", detail);
export const conflict = (detail: string) => new ProblemError(409, "Conflict", detail);
export const unprocessable = (title: string, detail: string, invalidFields?: InvalidField[]) =>
  new ProblemError(422, title, detail, invalidFields ? { invalidFields } : {});

/** 422 with `invalid_fields`, the shape Replicate uses for input validation failures. */
export function validationFailed(fields: InvalidField[]): ProblemError {
  const detail = fields.map((f) => `- ${f.field}: ${f.description}\n`).join("");
  return new ProblemError(422, "Input validation failed", detail, { invalidFields: fields });
}
