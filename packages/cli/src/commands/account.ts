import { OUTPUT_HELP, OUTPUT_OPTIONS, parseCommand, wantsJson } from "../args.js";
import { withConnection } from "../connect.js";
import { EXIT } from "../errors.js";
import type { CliIo } from "../io.js";
import { printJson } from "../outputs.js";

const HELP = `Usage: replicant account [--json|--text]   (also: replicant whoami)

Shows the account that owns the current token, and the server it is on.

Options:
${OUTPUT_HELP}
`;

export async function main(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(argv, io, HELP, OUTPUT_OPTIONS, { max: 0 });
  if (!parsed) return EXIT.ok;
  return withConnection(io, async ({ client, baseUrl }) => {
    const account = await client.account.get();
    if (wantsJson(parsed.values, io)) printJson(io, account);
    else
      io.stdout.write(
        `${account.username} (${account.type}${account.name ? `, ${account.name}` : ""}) on ${baseUrl}\n`,
      );
    return EXIT.ok;
  });
}
