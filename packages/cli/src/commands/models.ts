import type { Model, ModelVersion } from "@replicant/sdk";
import {
  dispatch,
  LIST_HELP,
  LIST_OPTIONS,
  OUTPUT_HELP,
  OUTPUT_OPTIONS,
  parseCommand,
  parseLimit,
  parseModelName,
  type Subcommand,
  subcommandList,
  wantsJson,
} from "../args.js";
import { withConnection as withClient } from "../connect.js";
import { EXIT, usageError } from "../errors.js";
import { inputSchemaOf } from "../inputs.js";
import type { CliIo } from "../io.js";
import { printJson } from "../outputs.js";
import { collect, oneLine, printTable, shortDate } from "../table.js";

const SUBCOMMANDS: Record<string, Subcommand> = {
  list: { summary: "List public models", run: list },
  get: { summary: "Show a model", run: get },
  search: { summary: "Search public models", run: search },
  create: { summary: "Create a model", run: create },
  update: { summary: "Change a model's description, readme or links", run: update },
  delete: { summary: "Delete a model (private, with no versions)", run: remove },
  versions: { summary: "List a model's versions, show one, or delete one", run: versions },
  examples: { summary: "List a model's example predictions", run: examples },
  readme: { summary: "Print a model's README", run: readme },
  schema: { summary: "Show a model's inputs and output (or its OpenAPI schema with --json)", run: schema },
};

const HELP = `Usage: replicant models <command> [options]

Commands:
${subcommandList(SUBCOMMANDS)}

Examples:
  replicant models search "hello"
  replicant models get replicate/hello-world
  replicant models schema replicant/stream-test
  replicant models create acme/my-model --visibility private --hardware cpu
  replicant models versions replicate/hello-world
`;

export function main(argv: string[], io: CliIo): Promise<number> {
  return dispatch("models", argv, io, HELP, SUBCOMMANDS);
}

function printModels(io: CliIo, models: Model[], json: boolean): void {
  if (json) printJson(io, models);
  else
    printTable(
      io,
      ["MODEL", "RUNS", "DESCRIPTION"],
      models.map((m) => [`${m.owner}/${m.name}`, String(m.run_count ?? 0), oneLine(m.description)]),
    );
}

async function list(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant models list [--limit N | --all] [--json|--text]

Options:
${LIST_HELP}
${OUTPUT_HELP}
`;
  const parsed = parseCommand(argv, io, help, { ...LIST_OPTIONS, ...OUTPUT_OPTIONS }, { max: 0 });
  if (!parsed) return EXIT.ok;
  const limit = parseLimit(parsed.values);
  return withClient(io, async ({ client }) => {
    printModels(io, await collect(client.models.list(), limit), wantsJson(parsed.values, io));
    return EXIT.ok;
  });
}

async function search(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant models search QUERY [--limit N] [--json|--text]

Searches public models by name and description.

Example:
  replicant models search "text to speech"
`;
  const parsed = parseCommand(argv, io, help, { ...LIST_OPTIONS, ...OUTPUT_OPTIONS }, { min: 1 });
  if (!parsed) return EXIT.ok;
  const limit = parseLimit(parsed.values);
  return withClient(io, async ({ client }) => {
    const models = await collect(client.models.search(parsed.positionals.join(" ")), limit);
    printModels(io, models, wantsJson(parsed.values, io));
    return EXIT.ok;
  });
}

async function get(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant models get OWNER/NAME [--json|--text]

Example:
  replicant models get replicate/hello-world
`;
  const parsed = parseCommand(argv, io, help, OUTPUT_OPTIONS, { min: 1, max: 1 });
  if (!parsed) return EXIT.ok;
  const { owner, name } = parseModelName(parsed.positionals[0]);
  return withClient(io, async ({ client }) => {
    const model = await client.models.get(owner, name);
    if (wantsJson(parsed.values, io)) printJson(io, model);
    else {
      const rows: [string, string][] = [
        ["model", `${model.owner}/${model.name}`],
        ["description", model.description ?? ""],
        ["visibility", model.visibility],
        ["runs", String(model.run_count ?? 0)],
        ["latest version", model.latest_version?.id ?? "(none)"],
        ["url", model.url],
      ];
      if (model.github_url) rows.push(["github", model.github_url]);
      io.stdout.write(`${rows.map(([k, v]) => `${`${k}:`.padEnd(16)}${v}`).join("\n")}\n`);
    }
    return EXIT.ok;
  });
}

const MODEL_FIELDS = {
  description: { type: "string" },
  "github-url": { type: "string" },
  "paper-url": { type: "string" },
  "license-url": { type: "string" },
  "cover-image-url": { type: "string" },
} as const;

async function create(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant models create OWNER/NAME --hardware SKU [--visibility public|private] [options]

Options:
  --hardware SKU           hardware to run on (see \`replicant hardware\`; default cpu)
  --visibility V           public or private (default private)
  --description TEXT
  --github-url URL, --paper-url URL, --license-url URL, --cover-image-url URL
${OUTPUT_HELP}

Example:
  replicant models create acme/my-model --hardware cpu --description "My model"
`;
  const parsed = parseCommand(
    argv,
    io,
    help,
    {
      hardware: { type: "string", default: "cpu" },
      visibility: { type: "string", default: "private" },
      ...MODEL_FIELDS,
      ...OUTPUT_OPTIONS,
    },
    { min: 1, max: 1 },
  );
  if (!parsed) return EXIT.ok;
  const { values } = parsed;
  const { owner, name } = parseModelName(parsed.positionals[0]);
  if (values.visibility !== "public" && values.visibility !== "private")
    throw usageError(`--visibility must be public or private, got ${values.visibility}`);
  const visibility = values.visibility;
  return withClient(io, async ({ client }) => {
    const model = await client.models.create({
      owner,
      name,
      visibility,
      hardware: values.hardware,
      ...optionalFields(values),
    });
    if (wantsJson(values, io)) printJson(io, model);
    else io.stdout.write(`created ${model.owner}/${model.name} (${model.visibility})\n`);
    return EXIT.ok;
  });
}

function optionalFields(values: Partial<Record<keyof typeof MODEL_FIELDS | "readme", string | undefined>>) {
  const fields: Record<string, string> = {};
  if (values.description !== undefined) fields.description = values.description;
  if (values.readme !== undefined) fields.readme = values.readme;
  if (values["github-url"] !== undefined) fields.github_url = values["github-url"];
  if (values["paper-url"] !== undefined) fields.paper_url = values["paper-url"];
  if (values["license-url"] !== undefined) fields.license_url = values["license-url"];
  if (values["cover-image-url"] !== undefined) fields.cover_image_url = values["cover-image-url"];
  return fields;
}

async function update(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant models update OWNER/NAME [--description TEXT] [--readme FILE|-] [options]

Options:
  --description TEXT
  --readme FILE            Markdown read from FILE (- for stdin)
  --github-url URL, --paper-url URL, --license-url URL
${OUTPUT_HELP}

Example:
  replicant models update acme/my-model --description "Better" --readme README.md
`;
  const parsed = parseCommand(
    argv,
    io,
    help,
    { ...MODEL_FIELDS, readme: { type: "string" }, ...OUTPUT_OPTIONS },
    { min: 1, max: 1 },
  );
  if (!parsed) return EXIT.ok;
  const { values } = parsed;
  const { owner, name } = parseModelName(parsed.positionals[0]);
  let readmeText: string | undefined;
  if (values.readme !== undefined) {
    if (values.readme === "-") readmeText = (await io.stdin.readAll()).toString("utf8");
    else {
      const { readFile } = await import("node:fs/promises");
      const { resolve } = await import("node:path");
      readmeText = await readFile(resolve(io.cwd, values.readme), "utf8");
    }
  }
  const { "cover-image-url": _cover, ...rest } = values;
  const changes = optionalFields({ ...rest, readme: readmeText });
  if (Object.keys(changes).length === 0)
    throw usageError("nothing to change: give --description, --readme or a URL flag");
  return withClient(io, async ({ client }) => {
    const model = await client.models.update(owner, name, changes);
    if (wantsJson(values, io)) printJson(io, model);
    else io.stdout.write(`updated ${model.owner}/${model.name}\n`);
    return EXIT.ok;
  });
}

async function remove(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant models delete OWNER/NAME

Deletes a private model that has no versions (delete them first with \`replicant models versions delete\`).
`;
  const parsed = parseCommand(argv, io, help, {}, { min: 1, max: 1 });
  if (!parsed) return EXIT.ok;
  const { owner, name } = parseModelName(parsed.positionals[0]);
  return withClient(io, async ({ client }) => {
    await client.models.delete(owner, name);
    io.stdout.write(`deleted ${owner}/${name}\n`);
    return EXIT.ok;
  });
}

async function versions(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant models versions OWNER/NAME [VERSION] [--json|--text]
       replicant models versions delete OWNER/NAME:VERSION

Lists a model's versions (newest first), shows one, or deletes one.

Options:
${LIST_HELP}
${OUTPUT_HELP}

Examples:
  replicant models versions replicate/hello-world
  replicant models versions replicate/hello-world 5c7d5dc6dd8b...
`;
  const parsed = parseCommand(argv, io, help, { ...LIST_OPTIONS, ...OUTPUT_OPTIONS }, { min: 1, max: 2 });
  if (!parsed) return EXIT.ok;
  const json = wantsJson(parsed.values, io);
  if (parsed.positionals[0] === "delete") {
    const { owner, name, version } = parseModelName(parsed.positionals[1]);
    if (!version) throw usageError("give the version to delete as OWNER/NAME:VERSION");
    return withClient(io, async ({ client }) => {
      await client.models.versions.delete(owner, name, version);
      io.stdout.write(`deleting ${owner}/${name}:${version}\n`);
      return EXIT.ok;
    });
  }
  const { owner, name, version: inline } = parseModelName(parsed.positionals[0]);
  const version = parsed.positionals[1] ?? inline;
  const limit = parseLimit(parsed.values);
  return withClient(io, async ({ client }) => {
    if (version) {
      const found = await client.models.versions.get(owner, name, version);
      if (json) printJson(io, found);
      else io.stdout.write(`${found.id}  ${shortDate(found.created_at)}  cog ${found.cog_version ?? "?"}\n`);
      return EXIT.ok;
    }
    const items: ModelVersion[] = await collect(client.models.versions.list(owner, name), limit);
    if (json) printJson(io, items);
    else
      printTable(
        io,
        ["VERSION", "CREATED", "COG"],
        items.map((v) => [v.id, shortDate(v.created_at), v.cog_version ?? ""]),
      );
    return EXIT.ok;
  });
}

async function examples(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant models examples OWNER/NAME [--json|--text]

Lists the example predictions saved by a model's author: their inputs and outputs.
`;
  const parsed = parseCommand(argv, io, help, { ...LIST_OPTIONS, ...OUTPUT_OPTIONS }, { min: 1, max: 1 });
  if (!parsed) return EXIT.ok;
  const { owner, name } = parseModelName(parsed.positionals[0]);
  const limit = parseLimit(parsed.values);
  return withClient(io, async ({ client }) => {
    const items = await collect(client.models.examples.list(owner, name), limit);
    if (wantsJson(parsed.values, io)) printJson(io, items);
    else
      printTable(
        io,
        ["ID", "INPUT", "OUTPUT"],
        items.map((p) => [p.id, oneLine(JSON.stringify(p.input), 50), oneLine(JSON.stringify(p.output), 50)]),
      );
    return EXIT.ok;
  });
}

async function readme(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant models readme OWNER/NAME

Prints a model's README (Markdown).
`;
  const parsed = parseCommand(argv, io, help, {}, { min: 1, max: 1 });
  if (!parsed) return EXIT.ok;
  const { owner, name } = parseModelName(parsed.positionals[0]);
  return withClient(io, async ({ client }) => {
    const text = await client.models.readme.get(owner, name);
    io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
    return EXIT.ok;
  });
}

async function schema(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant models schema OWNER/NAME[:VERSION] [--json|--text]

Shows a model version's inputs (type, default, allowed values) and output type; --json prints the
whole OpenAPI schema.

Example:
  replicant models schema replicant/stream-test
`;
  const parsed = parseCommand(argv, io, help, OUTPUT_OPTIONS, { min: 1, max: 1 });
  if (!parsed) return EXIT.ok;
  const { owner, name, version } = parseModelName(parsed.positionals[0]);
  return withClient(io, async ({ client }) => {
    const found = version
      ? await client.models.versions.get(owner, name, version)
      : (await client.models.get(owner, name)).latest_version;
    if (!found) throw usageError(`${owner}/${name} has no version yet, so no schema`);
    const openapi = found.openapi_schema;
    if (wantsJson(parsed.values, io)) {
      printJson(io, openapi);
      return EXIT.ok;
    }
    const inputs = inputSchemaOf(openapi);
    const raw = (
      openapi as {
        components?: {
          schemas?: Record<
            string,
            { properties?: Record<string, Record<string, unknown>>; type?: string; items?: { type?: string } }
          >;
        };
      }
    ).components?.schemas;
    const rows = Object.entries(inputs?.properties ?? {}).map(([key, property]) => {
      const details = raw?.Input?.properties?.[key] ?? {};
      const type = property.isFile
        ? "file"
        : property.type === "array"
          ? `${property.itemType ?? "any"}[]`
          : (property.type ?? "any");
      const notes = [
        inputs?.required.includes(key) ? "required" : `default ${JSON.stringify(details.default ?? null)}`,
        property.enum ? `one of ${property.enum.map((v) => JSON.stringify(v)).join(", ")}` : "",
        typeof details.minimum === "number" ? `min ${details.minimum}` : "",
        typeof details.maximum === "number" ? `max ${details.maximum}` : "",
      ].filter(Boolean);
      return [key, type, notes.join("; "), oneLine(String(details.description ?? ""), 50)];
    });
    io.stdout.write(`${owner}/${name}:${found.id}\n\nInputs:\n`);
    printTable(io, ["NAME", "TYPE", "DETAILS", "DESCRIPTION"], rows);
    const output = raw?.Output;
    const outputType =
      output?.type === "array" ? `${output.items?.type ?? "any"}[]` : (output?.type ?? "any");
    io.stdout.write(`\nOutput: ${outputType}\n`);
    return EXIT.ok;
  });
}
