import { parseCommand } from "../args.js";
import { withConnection } from "../connect.js";
import { CliError, EXIT } from "../errors.js";
import type { CliIo } from "../io.js";
import { openInBrowser } from "../predict.js";

const HELP = `Usage: replicant open [--print]

Opens the server's web playground in a browser, signed in with the current token, through a one-time
sign-in link (valid once, for 5 minutes). The link is printed too.

Options:
  --print, --no-browser    only print the link

The server is the one other commands use (REPLICATE_API_TOKEN and REPLICATE_BASE_URL, \`replicant
login\`, or the \`replicant serve\` running on $REPLICANT_HOME); REPLICANT_NO_BROWSER=1 also only prints.

Example:
  replicant open --print
`;

/** The playground URL of an API base URL (`…/v1`), where its sign-in link's code goes. */
function playgroundUrl(baseUrl: string, code: string): string {
  return `${baseUrl.replace(/\/v1\/*$/, "")}/?login=${encodeURIComponent(code)}`;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    argv,
    io,
    HELP,
    {
      print: { type: "boolean", default: false },
      "no-browser": { type: "boolean", default: false },
    },
    { max: 0 },
  );
  if (!parsed) return EXIT.ok;
  const printOnly =
    parsed.values.print || parsed.values["no-browser"] || Boolean(io.env.REPLICANT_NO_BROWSER);
  const embedded =
    "no server is running for this command: the embedded default stops when `replicant open` exits, so start one with `replicant serve` and run `replicant open` again";
  return withConnection(
    io,
    async ({ client, baseUrl }) => {
      let code: string;
      try {
        ({ code } = await client.post<{ code: string }>("/replicant/login-links"));
      } catch (error) {
        if ((error as { status?: unknown }).status === 404)
          throw new CliError(
            `${baseUrl} issues no sign-in links (only a Replicant server does)`,
            EXIT.notFound,
          );
        throw error;
      }
      // The address this command reached the server at, which this machine's browser can reach too.
      const url = playgroundUrl(baseUrl, code);
      io.stdout.write(`${url}\n`);
      if (!printOnly) await openInBrowser(url);
      return EXIT.ok;
    },
    { embedded },
  );
}
