// The command table and dispatcher. Only this file and errors.ts load before a command is chosen, and every
// command module is imported on demand, so `replicant --help` costs about what `node -e 0` does (R7).
import { describeError, EXIT, EXIT_CODES_HELP } from "./errors.js";
import type { CliIo } from "./io.js";

export const VERSION = "0.1.0";

type CommandMain = (argv: string[], io: CliIo) => Promise<number>;

interface CommandEntry {
  summary: string;
  load: () => Promise<CommandMain>;
  hidden?: boolean;
}

export const COMMANDS: Record<string, CommandEntry> = {
  run: {
    summary: "Run a model and print its output",
    load: async () => (await import("./commands/run.js")).main,
  },
  stream: {
    summary: "Run a model and print its output as it streams",
    load: async () => (await import("./commands/stream.js")).main,
  },
  predictions: {
    summary: "Create, get, list and cancel predictions; follow their logs",
    load: async () => (await import("./commands/predictions.js")).main,
  },
  models: {
    summary: "List, get, search, create, update and delete models; versions, schema, readme",
    load: async () => (await import("./commands/models.js")).main,
  },
  collections: {
    summary: "List collections of models, or show one",
    load: async () => (await import("./commands/collections.js")).main,
  },
  deployments: {
    summary: "Manage deployments and run predictions on them",
    load: async () => (await import("./commands/deployments.js")).main,
  },
  trainings: {
    summary: "Create, get, list and cancel trainings",
    load: async () => (await import("./commands/trainings.js")).main,
  },
  files: {
    summary: "Upload, list, get, download and delete files",
    load: async () => (await import("./commands/files.js")).main,
  },
  hardware: {
    summary: "List the hardware models and deployments can run on",
    load: async () => (await import("./commands/hardware.js")).main,
  },
  account: {
    summary: "Show the account of the current token",
    load: async () => (await import("./commands/account.js")).main,
  },
  whoami: {
    summary: "Same as account",
    load: async () => (await import("./commands/account.js")).main,
    hidden: true,
  },
  webhooks: {
    summary: "Show the signing secret, verify a delivery, or listen and forward to a local app",
    load: async () => (await import("./commands/webhooks.js")).main,
  },
  types: {
    summary: "Generate TypeScript types for a model's inputs and output",
    load: async () => (await import("./commands/types.js")).main,
  },
  login: {
    summary: "Save a token for a server (Replicate's cloud or a Replicant)",
    load: async () => (await import("./commands/login.js")).login,
  },
  logout: {
    summary: "Forget the token saved for a server",
    load: async () => (await import("./commands/login.js")).logout,
  },
  open: {
    summary: "Open the web playground, signed in, through a one-time link",
    load: async () => (await import("./commands/open.js")).main,
  },
  serve: {
    summary: "Run a Replicate-compatible API server",
    load: async () => (await import("./commands/serve.js")).main,
  },
  "serve-model": {
    summary: "Serve one predictor with Cog's HTTP protocol",
    load: async () => (await import("./commands/serve-model.js")).main,
  },
  push: {
    summary: "Push a predictor, a Cog server or a GGUF to a server as a new model version",
    load: async () => (await import("./commands/push.js")).main,
  },
  grant: {
    summary: "Grant an account a permission on this server (push)",
    load: async () => (await import("./commands/grants.js")).grant,
  },
  revoke: {
    summary: "Revoke an account's permission on this server",
    load: async () => (await import("./commands/grants.js")).revoke,
  },
};

export function globalHelp(): string {
  const rows = Object.entries(COMMANDS)
    .filter(([, c]) => !c.hidden)
    .map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`)
    .join("\n");
  return `replicant: run machine-learning models behind Replicate's HTTP API, from the terminal

Usage: replicant <command> [options]

Commands:
${rows}

Run \`replicant <command> --help\` for a command's options and examples.

Where commands run:
  REPLICATE_API_TOKEN      a token; with REPLICATE_BASE_URL (default https://api.replicate.com/v1)
  replicant login          or save a token per server in $REPLICANT_HOME/credentials.json (mode 0600)
  (neither)                the embedded default: a server in this process on $REPLICANT_HOME
                           (default ~/.replicant), or the \`replicant serve\` already running there

Output is text on a terminal and JSON when piped (--json and --text choose).

${EXIT_CODES_HELP}

Examples:
  replicant run replicate/hello-world -i text=world
  replicant run replicant/file-echo -i file=@photo.png --save out/
  replicant stream replicant/stream-test -i tokens=5
  replicant predictions logs p_123 --follow
  replicant webhooks listen --forward-to http://localhost:3000/webhooks
  replicant login http://127.0.0.1:5000/v1
`;
}

/** Runs one command line. Never throws: errors become one line on stderr and an exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    if (name === "help" && rest[0] && COMMANDS[rest[0]]) return runCli([rest[0], "--help"], io);
    io.stdout.write(globalHelp());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === "--version" || name === "-v" || name === "version") {
    io.stdout.write(`${VERSION}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr.write(`replicant: unknown command "${name}": run \`replicant --help\` to see the commands\n`);
    return EXIT.usage;
  }
  try {
    return await (await command.load())(rest, io);
  } catch (error) {
    const { message, exitCode } = describeError(error, { baseUrl: baseUrlOf(error) });
    io.stderr.write(`replicant: ${message}\n`);
    if (io.env.REPLICANT_DEBUG && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`);
    return exitCode;
  }
}

function baseUrlOf(error: unknown): string | undefined {
  const url = (error as { request?: { url?: unknown } } | null)?.request?.url;
  if (typeof url !== "string") return undefined;
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}
