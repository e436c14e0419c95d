import type { Deployment, DeploymentUpdateRequest } from "@replicant/protocol";
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
import { withConnection } from "../connect.js";
import { EXIT, usageError } from "../errors.js";
import type { CliIo } from "../io.js";
import { printJson } from "../outputs.js";
import { predict } from "../predict.js";
import { collect, printTable } from "../table.js";

const SUBCOMMANDS: Record<string, Subcommand> = {
  list: { summary: "List your deployments", run: list },
  get: { summary: "Show a deployment and its current release", run: get },
  create: { summary: "Create a deployment of a model version", run: create },
  update: { summary: "Change a deployment's version, hardware or scaling (a new release)", run: update },
  delete: { summary: "Delete a deployment", run: remove },
  run: {
    summary: "Run a prediction on a deployment and print its output",
    run: (argv, io) => predict("deployment", argv, io),
  },
};

const HELP = `Usage: replicant deployments <command> [options]

Commands:
${subcommandList(SUBCOMMANDS)}

Examples:
  replicant deployments create hello --model replicate/hello-world --hardware cpu
  replicant deployments run local/hello -i text=world
  replicant deployments update local/hello --max-instances 3
`;

export function main(argv: string[], io: CliIo): Promise<number> {
  return dispatch("deployments", argv, io, HELP, SUBCOMMANDS);
}

function printDeployment(io: CliIo, deployment: Deployment, json: boolean): void {
  if (json) {
    printJson(io, deployment);
    return;
  }
  const release = deployment.current_release;
  const config = release.configuration;
  io.stdout.write(
    `${deployment.owner}/${deployment.name}\n  release ${release.number}: ${release.model}:${release.version.slice(0, 12)}\n` +
      `  hardware ${config.hardware}, instances ${config.min_instances}-${config.max_instances}\n`,
  );
}

async function list(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    argv,
    io,
    `Usage: replicant deployments list [--limit N | --all] [--json|--text]\n\nOptions:\n${LIST_HELP}\n${OUTPUT_HELP}\n`,
    { ...LIST_OPTIONS, ...OUTPUT_OPTIONS },
    { max: 0 },
  );
  if (!parsed) return EXIT.ok;
  const limit = parseLimit(parsed.values);
  return withConnection(io, async ({ client }) => {
    const items = await collect(client.deployments.list(), limit);
    if (wantsJson(parsed.values, io)) printJson(io, items);
    else
      printTable(
        io,
        ["DEPLOYMENT", "RELEASE", "MODEL", "HARDWARE", "INSTANCES"],
        items.map((d) => {
          const r = d.current_release;
          return [
            `${d.owner}/${d.name}`,
            String(r.number),
            `${r.model}:${r.version.slice(0, 12)}`,
            r.configuration.hardware,
            `${r.configuration.min_instances}-${r.configuration.max_instances}`,
          ];
        }),
      );
    return EXIT.ok;
  });
}

async function get(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    argv,
    io,
    "Usage: replicant deployments get OWNER/NAME [--json|--text]\n",
    OUTPUT_OPTIONS,
    { min: 1, max: 1 },
  );
  if (!parsed) return EXIT.ok;
  const { owner, name } = parseModelName(parsed.positionals[0], "deployment");
  return withConnection(io, async ({ client }) => {
    printDeployment(io, await client.deployments.get(owner, name), wantsJson(parsed.values, io));
    return EXIT.ok;
  });
}

const SCALING = {
  hardware: { type: "string" },
  "min-instances": { type: "string" },
  "max-instances": { type: "string" },
  version: { type: "string" },
} as const;

function instances(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw usageError(`${flag} must be a whole number, got ${value}`);
  return n;
}

async function create(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant deployments create NAME --model OWNER/NAME [--version ID] [options]

Options:
  --model OWNER/NAME       the model to deploy (required)
  --version ID             its version (default: the latest)
  --hardware SKU           default cpu (see \`replicant hardware\`)
  --min-instances N        default 0
  --max-instances N        default 1
${OUTPUT_HELP}

Example:
  replicant deployments create hello --model replicate/hello-world --max-instances 2
`;
  const parsed = parseCommand(
    argv,
    io,
    help,
    { model: { type: "string" }, ...SCALING, ...OUTPUT_OPTIONS },
    { min: 1, max: 1 },
  );
  if (!parsed) return EXIT.ok;
  const { values } = parsed;
  if (!values.model) throw usageError("give the model to deploy with --model OWNER/NAME");
  const model = parseModelName(values.model);
  return withConnection(io, async ({ client }) => {
    let version = values.version ?? model.version;
    if (!version) {
      const found = await client.models.get(model.owner, model.name);
      if (!found.latest_version) throw usageError(`${values.model} has no version to deploy`);
      version = found.latest_version.id;
    }
    const deployment = await client.deployments.create({
      name: parsed.positionals[0]!,
      model: `${model.owner}/${model.name}`,
      version,
      hardware: values.hardware ?? "cpu",
      min_instances: instances(values["min-instances"], "--min-instances") ?? 0,
      max_instances: instances(values["max-instances"], "--max-instances") ?? 1,
    });
    printDeployment(io, deployment, wantsJson(values, io));
    return EXIT.ok;
  });
}

async function update(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant deployments update OWNER/NAME [--version ID] [--hardware SKU] [--min-instances N] [--max-instances N]

Each change makes a new release.
`;
  const parsed = parseCommand(argv, io, help, { ...SCALING, ...OUTPUT_OPTIONS }, { min: 1, max: 1 });
  if (!parsed) return EXIT.ok;
  const { values } = parsed;
  const { owner, name } = parseModelName(parsed.positionals[0], "deployment");
  const changes: DeploymentUpdateRequest = {};
  if (values.version !== undefined) changes.version = values.version;
  if (values.hardware !== undefined) changes.hardware = values.hardware;
  const min = instances(values["min-instances"], "--min-instances");
  const max = instances(values["max-instances"], "--max-instances");
  if (min !== undefined) changes.min_instances = min;
  if (max !== undefined) changes.max_instances = max;
  if (Object.keys(changes).length === 0)
    throw usageError("nothing to change: give --version, --hardware, --min-instances or --max-instances");
  return withConnection(io, async ({ client }) => {
    printDeployment(io, await client.deployments.update(owner, name, changes), wantsJson(values, io));
    return EXIT.ok;
  });
}

async function remove(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    argv,
    io,
    "Usage: replicant deployments delete OWNER/NAME\n",
    {},
    { min: 1, max: 1 },
  );
  if (!parsed) return EXIT.ok;
  const { owner, name } = parseModelName(parsed.positionals[0], "deployment");
  return withConnection(io, async ({ client }) => {
    await client.deployments.delete(owner, name);
    io.stdout.write(`deleted ${owner}/${name}\n`);
    return EXIT.ok;
  });
}
