/**
 * The environment of a runner process: built, never inherited. A predictor sees what Node and the
 * runtime need, the variables its version declares, and nothing of the server's own (tokens, database
 * URLs, S3 credentials).
 */

/** Taken from the server's environment when set: how to find programs, and the locale and time zone. */
const PASSED_THROUGH = ["PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ"] as const;

const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin";

/** Names a version may not declare: they would change how the runtime or the dynamic linker behaves. */
const RESERVED = /^(?:PATH|HOME|TMPDIR|TMP|TEMP|USER|LOGNAME|SHELL|REPLICANT_WEIGHTS|NODE_.*|LD_.*|UV_.*)$/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const MAX_VARIABLES = 64;
const MAX_VALUE_BYTES = 4096;

export interface RunnerEnvironmentOptions {
  /** HOME of the process, and TMPDIR unless `tmpDir` says otherwise. */
  home: string;
  tmpDir?: string | undefined;
  /** The variables the version declares (a pushed bundle's manifest). */
  declared?: Record<string, string> | undefined;
  /** Names of the server's own variables the runner may read (a built-in model's settings). */
  passThrough?: readonly string[] | undefined;
  /** The server's environment (default `process.env`). */
  source?: NodeJS.ProcessEnv;
}

export function runnerEnvironment(options: RunnerEnvironmentOptions): Record<string, string> {
  const source = options.source ?? process.env;
  const env: Record<string, string> = {};
  for (const name of [...PASSED_THROUGH, ...(options.passThrough ?? [])]) {
    const value = source[name];
    if (value !== undefined) env[name] = value;
  }
  env.PATH ??= DEFAULT_PATH;
  Object.assign(env, options.declared ?? {});
  env.HOME = options.home;
  env.TMPDIR = options.tmpDir ?? options.home;
  return env;
}

/** Why a version's declared environment is refused, or undefined when it is fine. */
export function declaredEnvironmentProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return "env must be an object of variable names to string values";
  const entries = Object.entries(value);
  if (entries.length > MAX_VARIABLES) return `env may declare at most ${MAX_VARIABLES} variables`;
  for (const [name, text] of entries) {
    if (!NAME.test(name)) return `env: ${JSON.stringify(name.slice(0, 64))} is not a variable name`;
    if (RESERVED.test(name)) return `env: ${name} is set by the server and cannot be declared`;
    if (typeof text !== "string") return `env: the value of ${name} must be a string`;
    if (Buffer.byteLength(text) > MAX_VALUE_BYTES || text.includes("\0"))
      return `env: the value of ${name} must be at most ${MAX_VALUE_BYTES} bytes, with no NUL`;
  }
  return undefined;
}
