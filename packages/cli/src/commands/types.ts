import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parseCommand, parseModelName } from "../args.js";
import { withConnection } from "../connect.js";
import { EXIT, usageError } from "../errors.js";
import type { CliIo } from "../io.js";

const HELP = `Usage: replicant types MODEL[:VERSION] [--out FILE] [options]

Generates TypeScript types for a model version's inputs and output (from its OpenAPI schema, with the
SDK's type generator), plus a typed ModelRef, so \`replicate.run(ref, { input })\` checks its input and
knows its output type.

Options:
  -o, --out FILE           write to FILE (default: print)
  --name NAME              base of the type names (default: the model's name: HelloWorldInput...)
  --import-from MODULE     where FileInput/FileOutput/ModelRef come from (default @replicant/sdk)
  --urls                   type file outputs as URL strings instead of FileOutput

Examples:
  replicant types replicate/hello-world
  replicant types replicant/stream-test -o src/models/stream-test.ts

  // then, in your code:
  import { streamTest } from "./models/stream-test.js";
  const output = await replicate.run(streamTest, { input: { tokens: 3 } }); // string[]
`;

export async function main(argv: string[], io: CliIo): Promise<number> {
  const args = argv[0] === "add" ? argv.slice(1) : argv;
  const parsed = parseCommand(
    args,
    io,
    HELP,
    {
      out: { type: "string", short: "o" },
      name: { type: "string" },
      "import-from": { type: "string" },
      urls: { type: "boolean", default: false },
    },
    { min: 1, max: 1 },
  );
  if (!parsed) return EXIT.ok;
  const { values } = parsed;
  const ref = parsed.positionals[0]!;
  const { owner, name, version } = parseModelName(ref);
  return withConnection(io, async ({ client }) => {
    const found = version
      ? await client.models.versions.get(owner, name, version)
      : (await client.models.get(owner, name)).latest_version;
    if (!found) throw usageError(`${owner}/${name} has no version yet, so no schema to generate types from`);
    const { generateModelTypes } = await import("@replicant/sdk");
    const source = generateModelTypes(found.openapi_schema, {
      name: values.name ?? name,
      ref: version ? `${owner}/${name}:${version}` : `${owner}/${name}`,
      importFrom: values["import-from"],
      useFileOutput: !values.urls,
    });
    if (!values.out || values.out === "-") {
      io.stdout.write(source);
      return EXIT.ok;
    }
    const path = resolve(io.cwd, values.out);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, source);
    io.stderr.write(`replicant: wrote types for ${owner}/${name} to ${values.out}\n`);
    return EXIT.ok;
  });
}
