import type { Training } from "@replicant/sdk";
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
import { followTraining } from "../follow.js";
import { buildInput, inputSchemaOf } from "../inputs.js";
import { type CliIo, holdInterrupt } from "../io.js";
import { printJson } from "../outputs.js";
import { collect, printTable, shortDate } from "../table.js";

const SUBCOMMANDS: Record<string, Subcommand> = {
  create: { summary: "Start a training of a model version (--wait to wait for it)", run: create },
  get: { summary: "Show a training", run: get },
  list: { summary: "List your trainings", run: list },
  cancel: { summary: "Cancel a training", run: cancel },
};

const HELP = `Usage: replicant trainings <command> [options]

Commands:
${subcommandList(SUBCOMMANDS)}

Examples:
  replicant trainings create replicant/hello-trainable:VERSION --destination local/my-model -i prefix=hi --wait
  replicant trainings list
`;

export function main(argv: string[], io: CliIo): Promise<number> {
  return dispatch("trainings", argv, io, HELP, SUBCOMMANDS);
}

function printTraining(io: CliIo, training: Training, json: boolean): void {
  if (json) {
    printJson(io, training);
    return;
  }
  const lines = [
    `${training.id} ${training.status}`,
    `  model: ${training.model}:${training.version.slice(0, 12)}`,
  ];
  if (training.destination) lines.push(`  destination: ${training.destination}`);
  if (training.output?.version) lines.push(`  new version: ${training.output.version}`);
  if (training.error) lines.push(`  error: ${training.error}`);
  io.stdout.write(`${lines.join("\n")}\n`);
}

async function create(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant trainings create OWNER/NAME[:VERSION] --destination OWNER/NAME [-i key=value ...] [options]

Starts a training; the trained weights become a new version of the destination model. Inputs follow the
version's training schema (-i key=value, key=@file uploads, - reads JSON from stdin).

Options:
  --destination OWNER/NAME the model that receives the new version (required)
  -i, --input key=value    a training input (repeatable)
  --wait                   wait for it to finish (Ctrl-C cancels it, exit 130)
  --logs                   with --wait, print its logs live
  --webhook URL            POST the training to URL as it changes
${OUTPUT_HELP}
`;
  const parsed = parseCommand(
    argv,
    io,
    help,
    {
      destination: { type: "string" },
      input: { type: "string", short: "i", multiple: true, default: [] as string[] },
      wait: { type: "boolean", default: false },
      logs: { type: "boolean", default: false },
      webhook: { type: "string" },
      ...OUTPUT_OPTIONS,
    },
    { min: 1, max: 2 },
  );
  if (!parsed) return EXIT.ok;
  const { values, positionals } = parsed;
  const { owner, name, version: pinned } = parseModelName(positionals[0]);
  if (!values.destination)
    throw usageError("give --destination OWNER/NAME, the model that receives the trained version");
  const destination = parseModelName(values.destination);
  const json = wantsJson(values, io);
  return withConnection(io, async (connection) => {
    const { client } = connection;
    const version = pinned
      ? await client.models.versions.get(owner, name, pinned)
      : (await client.models.get(owner, name)).latest_version;
    if (!version) throw usageError(`${owner}/${name} has no version to train`);
    const input = await buildInput(values.input, inputSchemaOf(version.openapi_schema, "TrainingInput"), io, {
      stdin: positionals[1] === "-" ? "yes" : "auto",
    });
    const release = holdInterrupt(io);
    try {
      let training = await client.trainings.create(owner, name, version.id, {
        destination: `${destination.owner}/${destination.name}`,
        input,
        ...(values.webhook ? { webhook: values.webhook } : {}),
      });
      if (values.wait) {
        training = await followTraining(connection, io, training, {
          label: `training ${owner}/${name}`,
          showLogs: values.logs,
          progress: true,
        });
      }
      printTraining(io, training, json);
      if (!values.wait || training.status === "succeeded") return EXIT.ok;
      io.stderr.write(
        `replicant: training ${training.id} ${training.status}${training.error ? `: ${training.error}` : ""}\n`,
      );
      return EXIT.failed;
    } finally {
      release();
    }
  });
}

async function get(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    argv,
    io,
    "Usage: replicant trainings get ID [--json|--text]\n",
    OUTPUT_OPTIONS,
    { min: 1, max: 1 },
  );
  if (!parsed) return EXIT.ok;
  return withConnection(io, async ({ client }) => {
    printTraining(io, await client.trainings.get(parsed.positionals[0]!), wantsJson(parsed.values, io));
    return EXIT.ok;
  });
}

async function list(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    argv,
    io,
    `Usage: replicant trainings list [--limit N | --all] [--json|--text]\n\nOptions:\n${LIST_HELP}\n${OUTPUT_HELP}\n`,
    { ...LIST_OPTIONS, ...OUTPUT_OPTIONS },
    { max: 0 },
  );
  if (!parsed) return EXIT.ok;
  const limit = parseLimit(parsed.values);
  return withConnection(io, async ({ client }) => {
    const items = await collect(client.trainings.list(), limit);
    if (wantsJson(parsed.values, io)) printJson(io, items);
    else
      printTable(
        io,
        ["ID", "MODEL", "DESTINATION", "STATUS", "CREATED"],
        items.map((t) => [t.id, t.model, t.destination ?? "", t.status, shortDate(t.created_at)]),
      );
    return EXIT.ok;
  });
}

async function cancel(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    argv,
    io,
    "Usage: replicant trainings cancel ID [--json|--text]\n",
    OUTPUT_OPTIONS,
    { min: 1, max: 1 },
  );
  if (!parsed) return EXIT.ok;
  return withConnection(io, async ({ client }) => {
    printTraining(io, await client.trainings.cancel(parsed.positionals[0]!), wantsJson(parsed.values, io));
    return EXIT.ok;
  });
}
