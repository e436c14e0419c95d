// Exit codes, documented in `replicant --help`. Kept free of imports so start-up stays cheap.
export const EXIT = {
  ok: 0,
  /** The prediction (or training) failed or was canceled; a webhook did not verify. */
  failed: 1,
  /** The command line was wrong: unknown command or flag, bad input value. */
  usage: 2,
  /** No token, or the server rejected it. */
  auth: 3,
  notFound: 4,
  /** The server could not be reached, or answered 5xx or 429. */
  network: 5,
  interrupted: 130,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0    success
  1    the prediction or training failed or was canceled; a webhook did not verify
  2    usage error: unknown command or flag, invalid input
  3    authentication: no token, or the server rejected it
  4    not found: model, version, prediction, file, deployment...
  5    network or server error (unreachable, 5xx, rate limited)
  130  interrupted with Ctrl-C (a running prediction is canceled first)`;

/** An error meant for the user: one line saying what to do next, and the exit code. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, EXIT.usage);
}

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  status?: unknown;
  detail?: unknown;
  title?: unknown;
  invalidFields?: unknown;
  request?: unknown;
  prediction?: unknown;
  code?: unknown;
}

/** Turns any error (CLI, SDK, Node) into one line and an exit code. Matches SDK errors by name, not class. */
export function describeError(
  error: unknown,
  context: { baseUrl?: string | undefined } = {},
): {
  message: string;
  exitCode: number;
} {
  if (error instanceof CliError) return { message: error.message, exitCode: error.exitCode };
  const e = (typeof error === "object" && error !== null ? error : {}) as ErrorLike;
  const name = typeof e.name === "string" ? e.name : "";
  const raw = typeof e.message === "string" ? e.message : String(error);
  const where = context.baseUrl ? ` at ${context.baseUrl}` : "";
  if (name === "AbortError") return { message: "interrupted", exitCode: EXIT.interrupted };
  if (name === "ModelError" || name === "PredictionCanceledError") {
    const prediction = e.prediction as { id?: string; status?: string; error?: unknown } | undefined;
    const id = prediction?.id ? ` ${prediction.id}` : "";
    const hint = prediction?.id ? `; see its logs with \`replicant predictions logs${id}\`` : "";
    const reason =
      prediction?.status === "failed"
        ? `failed: ${typeof prediction.error === "string" ? prediction.error : JSON.stringify(prediction.error)}`
        : `was ${prediction?.status ?? "canceled"}`;
    return { message: `the prediction${id} ${reason}${hint}`, exitCode: EXIT.failed };
  }
  if (typeof e.status === "number") {
    const detail = typeof e.detail === "string" && e.detail ? e.detail : raw;
    const status = e.status;
    if (status === 401)
      return {
        message: `the server${where} rejected the token (401): run \`replicant login\` or set REPLICATE_API_TOKEN`,
        exitCode: EXIT.auth,
      };
    if (status === 403) return { message: `not allowed (403): ${detail}`, exitCode: EXIT.auth };
    if (status === 404)
      return { message: `not found (404): ${detail}; check the name or id`, exitCode: EXIT.notFound };
    if (status === 422 || status === 400) {
      const fields = Array.isArray(e.invalidFields)
        ? (e.invalidFields as { field?: string; message?: string; description?: string }[])
            .map((f) => `${f.field ?? "?"}: ${f.message ?? f.description ?? "invalid"}`)
            .join("; ")
        : "";
      return {
        message: `the server refused the request (${status}): ${fields || detail}`,
        exitCode: EXIT.usage,
      };
    }
    if (status === 429)
      return { message: `rate limited (429)${where}: wait a little and try again`, exitCode: EXIT.network };
    if (status >= 500)
      return {
        message: `the server${where} failed (${status}): ${detail}; try again, or check its logs`,
        exitCode: EXIT.network,
      };
    return { message: `the server${where} answered ${status}: ${detail}`, exitCode: EXIT.failed };
  }
  if (name === "APIConnectionError" || name === "APITimeoutError") {
    return {
      message: `could not reach the server${where}: is it running? Check REPLICATE_BASE_URL (${raw})`,
      exitCode: EXIT.network,
    };
  }
  if (e.code === "ENOENT" && typeof e.message === "string")
    return { message: `${raw}: check the path`, exitCode: EXIT.usage };
  return { message: raw, exitCode: EXIT.failed };
}
