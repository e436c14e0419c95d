import { OUTPUT_HELP, OUTPUT_OPTIONS, parseCommand, wantsJson } from "../args.js";
import { withConnection } from "../connect.js";
import { EXIT } from "../errors.js";
import type { CliIo } from "../io.js";
import { printJson } from "../outputs.js";
import { printTable } from "../table.js";

const HELP = `Usage: replicant hardware [--json|--text]

Lists the hardware SKUs that models and deployments can run on.

Options:
${OUTPUT_HELP}
`;

export async function main(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(argv[0] === "list" ? argv.slice(1) : argv, io, HELP, OUTPUT_OPTIONS, {
    max: 0,
  });
  if (!parsed) return EXIT.ok;
  return withConnection(io, async ({ client }) => {
    const items = await client.hardware.list();
    if (wantsJson(parsed.values, io)) printJson(io, items);
    else
      printTable(
        io,
        ["SKU", "NAME"],
        items.map((h) => [h.sku, h.name]),
      );
    return EXIT.ok;
  });
}
