import { type ParseArgsConfig, parseArgs } from "node:util";
import { usageError } from "./errors.js";
import type { CliIo } from "./io.js";

type Options = NonNullable<ParseArgsConfig["options"]>;
type ParsedCommand<O extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
>;

/** `--json` / `--text`: how results are printed (JSON by default when stdout is not a terminal). */
export const OUTPUT_OPTIONS = {
  json: { type: "boolean", default: false },
  text: { type: "boolean", default: false },
} as const satisfies Options;

export const OUTPUT_HELP = `  --json                   print JSON (the default when stdout is not a terminal)
  --text                   print text even when stdout is not a terminal`;

export const LIST_OPTIONS = {
  limit: { type: "string" },
  all: { type: "boolean", default: false },
} as const satisfies Options;

export const LIST_HELP = `  --limit N                show at most N items (default: the first page)
  --all                    follow every page`;

/**
 * Parses a command's arguments with Node's `util.parseArgs`. Returns undefined after printing `help` when
 * asked (-h, --help); throws a usage error (exit 2) naming the flag otherwise.
 */
export function parseCommand<const O extends Options>(
  argv: string[],
  io: CliIo,
  help: string,
  options: O,
  positionals: { min?: number; max?: number } = {},
): ParsedCommand<O> | undefined {
  if (argv.includes("--help") || argv.includes("-h")) {
    io.stdout.write(help.endsWith("\n") ? help : `${help}\n`);
    return undefined;
  }
  let parsed: ParsedCommand<O>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    const message = (error as Error).message.split("\n")[0] ?? "invalid arguments";
    throw usageError(`${message.replace(/\.$/, "")}. ${firstUsageLine(help)}`);
  }
  const count = parsed.positionals.length;
  if (count < (positionals.min ?? 0)) throw usageError(`missing an argument. ${firstUsageLine(help)}`);
  if (count > (positionals.max ?? Number.POSITIVE_INFINITY))
    throw usageError(
      `unexpected argument "${parsed.positionals[positionals.max ?? 0]}". ${firstUsageLine(help)}`,
    );
  return parsed;
}

function firstUsageLine(help: string): string {
  const line = help.split("\n").find((l) => l.startsWith("Usage:"));
  return line ? `${line.trim()} (see --help)` : "See --help.";
}

/** JSON when asked, text when asked, else JSON when stdout is not a terminal. */
export function wantsJson(
  values: { json?: boolean | undefined; text?: boolean | undefined },
  io: CliIo,
): boolean {
  if (values.json) return true;
  if (values.text) return false;
  return !io.stdout.isTTY;
}

/** Lets a string flag be given without a value (`--save` alone): inserts `fallback` when none follows. */
export function optionalValue(argv: string[], flag: string, fallback: string): string[] {
  const out: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    out.push(arg);
    if (arg === flag) {
      const next = argv[index + 1];
      if (next === undefined || next.startsWith("-")) out.push(fallback);
    }
  }
  return out;
}

export function parseLimit(values: {
  limit?: string | undefined;
  all?: boolean | undefined;
}): number | undefined {
  if (values.all) return Number.POSITIVE_INFINITY;
  if (values.limit === undefined) return undefined;
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1)
    throw usageError(`--limit must be a positive integer, got ${values.limit}`);
  return limit;
}

export interface Subcommand {
  summary: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

/** Runs `group <sub> ...`: prints the group's help for no sub-command or --help, a usage error for an unknown one. */
export async function dispatch(
  group: string,
  argv: string[],
  io: CliIo,
  help: string,
  subcommands: Record<string, Subcommand>,
  fallback?: string,
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined && fallback) return subcommands[fallback]!.run([], io);
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(help.endsWith("\n") ? help : `${help}\n`);
    return name === undefined ? 2 : 0;
  }
  const sub = subcommands[name];
  if (!sub) {
    throw usageError(
      `unknown command "${group} ${name}": use one of ${Object.keys(subcommands).join(", ")} (see \`replicant ${group} --help\`)`,
    );
  }
  return sub.run(rest, io);
}

export function subcommandList(subcommands: Record<string, Subcommand>): string {
  return Object.entries(subcommands)
    .map(([name, sub]) => `  ${name.padEnd(12)} ${sub.summary}`)
    .join("\n");
}

/** Splits `owner/name` (and an optional `:version`), or throws a usage error. */
export function parseModelName(
  ref: string | undefined,
  what = "model",
): { owner: string; name: string; version?: string } {
  const match = ref ? /^([^/\s:]+)\/([^/\s:]+)(?::([0-9a-zA-Z]+))?$/.exec(ref) : null;
  if (!match)
    throw usageError(
      `give a ${what} as owner/name${what === "model" ? "[:version]" : ""}, got "${ref ?? ""}"`,
    );
  const result: { owner: string; name: string; version?: string } = { owner: match[1]!, name: match[2]! };
  if (match[3]) result.version = match[3];
  return result;
}
