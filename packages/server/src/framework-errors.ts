import { PROBLEM_CONTENT_TYPE } from "@replicant/protocol";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { ProblemError } from "./errors.js";

/**
 * Errors raised below the routes (Fastify's router, Node's HTTP parser, the multipart parser) as
 * problems, so that no answer of this server is Fastify's own `{statusCode, error, message}` JSON.
 */

/** A path parameter longer than the router's limit: no resource has such an id. */
export function longParameterProblem(maxParamLength: number): ProblemError {
  return new ProblemError(
    404,
    "Not found",
    `No resource at this path: a path parameter is longer than ${maxParamLength} characters`,
  );
}

/** Fastify's `frameworkErrors` option: the router's bad-URL and parameter-length errors. */
export function frameworkErrorHandler(maxParamLength: number) {
  return (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void => {
    const problem =
      error.code === "FST_ERR_BAD_URL"
        ? new ProblemError(400, "Bad request", "The URL path is not valid percent-encoded UTF-8")
        : error.code === "FST_ERR_MAX_PARAM_LENGTH"
          ? longParameterProblem(maxParamLength)
          : new ProblemError(400, "Bad request", "The request could not be routed");
    reply
      .code(problem.status)
      .header("x-content-type-options", "nosniff")
      .type(PROBLEM_CONTENT_TYPE)
      .send(problem.toProblem());
  };
}

/** What @fastify/busboy throws or emits for a body that is not valid multipart (it sets no error code). */
const MULTIPART_SYNTAX_ERRORS = [
  /^Multipart: Boundary not found$/,
  /^Boundary required$/,
  /^Unexpected end of multipart data$/,
  /terminated early due to unexpected end of multipart data$/,
  /^The needle cannot (?:be an empty|have a length bigger)/,
  /^Unsupported Content-Type\.$/,
  /^Malformed part header$/,
];

/** A multipart body the parser could not read: no or a bogus boundary, a truncated part. */
export function multipartSyntaxProblem(error: Error): ProblemError | undefined {
  if ((error as { code?: unknown }).code !== undefined) return undefined;
  if (!MULTIPART_SYNTAX_ERRORS.some((pattern) => pattern.test(error.message))) return undefined;
  return new ProblemError(400, "Bad request", `The multipart/form-data body is not valid: ${error.message}`);
}
