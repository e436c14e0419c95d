import { parseCommand } from "../args.js";
import { CLI_USER_AGENT } from "../connect.js";
import { credentialsPath, readCredentials, writeCredentials } from "../credentials.js";
import { CliError, EXIT, usageError } from "../errors.js";
import type { CliIo } from "../io.js";
import { DEFAULT_BASE_URL, normalizeBaseUrl, replicantHome } from "../paths.js";

const LOGIN_HELP = `Usage: replicant login [BASE_URL] [--token TOKEN]

Saves a token for a server and makes it the default for later commands (REPLICATE_API_TOKEN still wins).
Tokens are kept per server in $REPLICANT_HOME/credentials.json (default ~/.replicant), mode 0600.
The token is read from --token, else from stdin when piped, else asked for (hidden). It is checked
against the server first (--no-verify skips that).

BASE_URL defaults to REPLICATE_BASE_URL, then ${DEFAULT_BASE_URL}; http://host:port means http://host:port/v1.

Examples:
  replicant login                                     # Replicate's cloud
  replicant login http://127.0.0.1:5000 --token r8_...  # a Replicant server
  echo "$TOKEN" | replicant login https://replicant.example.com
`;

const LOGOUT_HELP = `Usage: replicant logout [BASE_URL | --all]

Forgets the token saved for BASE_URL (default: the current default server), or every saved token.
`;

export async function login(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    argv,
    io,
    LOGIN_HELP,
    { token: { type: "string" }, "no-verify": { type: "boolean", default: false } },
    { max: 1 },
  );
  if (!parsed) return EXIT.ok;
  const baseUrl = normalizeBaseUrl(parsed.positionals[0] ?? io.env.REPLICATE_BASE_URL ?? DEFAULT_BASE_URL);
  let token = parsed.values.token?.trim();
  if (!token)
    token = io.stdin.isTTY
      ? await promptHidden(io, `Token for ${baseUrl}: `)
      : (await io.stdin.readAll()).toString("utf8").trim();
  if (!token) throw usageError("no token given: pass --token, pipe it on stdin, or type it when asked");

  let username: string | undefined;
  if (!parsed.values["no-verify"]) {
    const { Replicant } = await import("@replicant/sdk");
    const client = new Replicant({ auth: token, baseUrl, userAgent: CLI_USER_AGENT, maxRetries: 1 });
    try {
      username = (await client.account.get()).username;
    } catch (error) {
      if ((error as { status?: number }).status === 401)
        throw new CliError(
          `${baseUrl} rejected that token: check it and run \`replicant login\` again`,
          EXIT.auth,
        );
      throw error;
    }
  }
  const home = replicantHome(io.env);
  const credentials = await readCredentials(home);
  credentials.hosts[baseUrl] = username ? { token, username } : { token };
  credentials.default = baseUrl;
  await writeCredentials(home, credentials);
  io.stdout.write(
    `Logged in to ${baseUrl}${username ? ` as ${username}` : ""} (saved in ${credentialsPath(home)})\n`,
  );
  return EXIT.ok;
}

export async function logout(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    argv,
    io,
    LOGOUT_HELP,
    { all: { type: "boolean", default: false } },
    { max: 1 },
  );
  if (!parsed) return EXIT.ok;
  const home = replicantHome(io.env);
  const credentials = await readCredentials(home);
  if (parsed.values.all) {
    await writeCredentials(home, { hosts: {} });
    io.stdout.write(`Logged out of ${Object.keys(credentials.hosts).length} server(s)\n`);
    return EXIT.ok;
  }
  const target = parsed.positionals[0] ? normalizeBaseUrl(parsed.positionals[0]) : credentials.default;
  if (!target || !credentials.hosts[target]) {
    io.stderr.write(`replicant: not logged in${target ? ` to ${target}` : ""}\n`);
    return EXIT.ok;
  }
  delete credentials.hosts[target];
  if (credentials.default === target) credentials.default = undefined;
  await writeCredentials(home, credentials);
  io.stdout.write(`Logged out of ${target}\n`);
  return EXIT.ok;
}

/** Reads a line from the terminal without echoing it. */
async function promptHidden(io: CliIo, question: string): Promise<string> {
  io.stderr.write(question);
  const stdin = process.stdin;
  stdin.setRawMode?.(true);
  stdin.resume();
  stdin.setEncoding("utf8");
  try {
    return await new Promise<string>((done, fail) => {
      let text = "";
      const onData = (chunk: string) => {
        for (const char of chunk) {
          if (char === "\r" || char === "\n") {
            stdin.off("data", onData);
            return done(text);
          }
          if (char === "\u0003") {
            stdin.off("data", onData);
            return fail(new CliError("interrupted", EXIT.interrupted));
          }
          if (char === "\u007f") text = text.slice(0, -1);
          else text += char;
        }
      };
      stdin.on("data", onData);
    });
  } finally {
    stdin.setRawMode?.(false);
    stdin.pause();
    io.stderr.write("\n");
  }
}
