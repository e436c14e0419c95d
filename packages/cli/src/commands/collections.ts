import { OUTPUT_HELP, OUTPUT_OPTIONS, parseCommand, wantsJson } from "../args.js";
import { withConnection } from "../connect.js";
import { EXIT } from "../errors.js";
import type { CliIo } from "../io.js";
import { printJson } from "../outputs.js";
import { oneLine, printTable } from "../table.js";

const HELP = `Usage: replicant collections [SLUG] [--json|--text]

Lists collections of models, or shows the models of one.

Options:
${OUTPUT_HELP}

Examples:
  replicant collections
  replicant collections text-to-image
`;

export async function main(argv: string[], io: CliIo): Promise<number> {
  const args = argv[0] === "list" ? argv.slice(1) : argv[0] === "get" ? argv.slice(1) : argv;
  const parsed = parseCommand(args, io, HELP, OUTPUT_OPTIONS, { max: 1 });
  if (!parsed) return EXIT.ok;
  const json = wantsJson(parsed.values, io);
  const slug = parsed.positionals[0];
  return withConnection(io, async ({ client }) => {
    if (slug) {
      const collection = await client.collections.get(slug);
      if (json) printJson(io, collection);
      else {
        io.stdout.write(`${collection.name} (${collection.slug})\n${collection.description}\n\n`);
        printTable(
          io,
          ["MODEL", "DESCRIPTION"],
          collection.models.map((m) => [`${m.owner}/${m.name}`, oneLine(m.description)]),
        );
      }
      return EXIT.ok;
    }
    const items = await client.collections.list().toArray();
    if (json) printJson(io, items);
    else
      printTable(
        io,
        ["SLUG", "NAME", "DESCRIPTION"],
        items.map((c) => [c.slug, c.name, oneLine(c.description)]),
      );
    return EXIT.ok;
  });
}
