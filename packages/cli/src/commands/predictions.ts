import type { Prediction } from "@replicant/sdk";
import {
  dispatch,
  LIST_HELP,
  LIST_OPTIONS,
  OUTPUT_HELP,
  OUTPUT_OPTIONS,
  parseCommand,
  parseLimit,
  type Subcommand,
  subcommandList,
  wantsJson,
} from "../args.js";
import { connect } from "../connect.js";
import { EXIT } from "../errors.js";
import { isTerminal } from "../follow.js";
import { type CliIo, holdInterrupt } from "../io.js";
import { outputText, printJson } from "../outputs.js";
import { predict } from "../predict.js";
import { collect, printTable, shortDate } from "../table.js";

const SUBCOMMANDS: Record<string, Subcommand> = {
  create: {
    summary: "Create a prediction (add --wait to wait for it)",
    run: (argv, io) => predict("create", argv, io),
  },
  get: { summary: "Show a prediction: status, output, error", run: get },
  list: { summary: "List your predictions, newest first", run: list },
  cancel: { summary: "Cancel a prediction", run: cancel },
  logs: { summary: "Print a prediction's logs (--follow to keep printing them)", run: logs },
};

const HELP = `Usage: replicant predictions <command> [options]

Commands:
${subcommandList(SUBCOMMANDS)}

Examples:
  replicant predictions create replicant/stream-test -i tokens=100
  replicant predictions get p_123
  replicant predictions list --limit 20
  replicant predictions logs p_123 --follow
  replicant predictions cancel p_123
`;

export function main(argv: string[], io: CliIo): Promise<number> {
  return dispatch("predictions", argv, io, HELP, SUBCOMMANDS);
}

async function get(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant predictions get ID [--json|--text]

Shows a prediction: its model, status, times, output or error.

Options:
${OUTPUT_HELP}

Example:
  replicant predictions get p_123 --json
`;
  const parsed = parseCommand(argv, io, help, OUTPUT_OPTIONS, { min: 1, max: 1 });
  if (!parsed) return EXIT.ok;
  const connection = await connect(io);
  try {
    const prediction = await connection.client.predictions.get(parsed.positionals[0]!);
    if (wantsJson(parsed.values, io)) printJson(io, prediction);
    else printPrediction(io, prediction);
    return EXIT.ok;
  } finally {
    await connection.close();
  }
}

export function printPrediction(io: CliIo, prediction: Prediction): void {
  const rows: [string, string][] = [
    ["id", prediction.id],
    [
      "model",
      prediction.version ? `${prediction.model}:${prediction.version.slice(0, 12)}` : prediction.model,
    ],
    ["status", prediction.status],
    ["created", shortDate(prediction.created_at)],
  ];
  if (prediction.completed_at) rows.push(["completed", shortDate(prediction.completed_at)]);
  const seconds = prediction.metrics?.predict_time;
  if (typeof seconds === "number") rows.push(["predict time", `${seconds.toFixed(3)}s`]);
  if (prediction.error) rows.push(["error", String(prediction.error)]);
  if (prediction.urls?.web) rows.push(["web", prediction.urls.web]);
  io.stdout.write(`${rows.map(([k, v]) => `${`${k}:`.padEnd(14)}${v}`).join("\n")}\n`);
  if (prediction.status === "succeeded") io.stdout.write(`output:\n${outputText(prediction.output)}\n`);
}

async function list(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant predictions list [--limit N | --all] [--json|--text]

Lists your predictions, newest first.

Options:
${LIST_HELP}
${OUTPUT_HELP}
`;
  const parsed = parseCommand(argv, io, help, { ...LIST_OPTIONS, ...OUTPUT_OPTIONS }, { max: 0 });
  if (!parsed) return EXIT.ok;
  const limit = parseLimit(parsed.values);
  const connection = await connect(io);
  try {
    const items = await collect(connection.client.predictions.list(), limit);
    if (wantsJson(parsed.values, io)) printJson(io, items);
    else
      printTable(
        io,
        ["ID", "MODEL", "STATUS", "CREATED"],
        items.map((p) => [p.id, p.model, p.status, shortDate(p.created_at)]),
      );
    return EXIT.ok;
  } finally {
    await connection.close();
  }
}

async function cancel(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant predictions cancel ID [--json|--text]

Cancels a prediction that is starting or processing (a finished one is left as it is).

Example:
  replicant predictions cancel p_123
`;
  const parsed = parseCommand(argv, io, help, OUTPUT_OPTIONS, { min: 1, max: 1 });
  if (!parsed) return EXIT.ok;
  const connection = await connect(io);
  try {
    const prediction = await connection.client.predictions.cancel(parsed.positionals[0]!);
    if (wantsJson(parsed.values, io)) printJson(io, prediction);
    else io.stdout.write(`${prediction.id} ${prediction.status}\n`);
    return EXIT.ok;
  } finally {
    await connection.close();
  }
}

async function logs(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant predictions logs ID [--follow]

Prints a prediction's logs. With --follow (-f), keeps printing new lines until it ends; then exits 0 if
it succeeded, 1 otherwise. Ctrl-C stops following (the prediction keeps running).

Example:
  replicant predictions logs p_123 --follow
`;
  const parsed = parseCommand(
    argv,
    io,
    help,
    { follow: { type: "boolean", short: "f", default: false } },
    { min: 1, max: 1 },
  );
  if (!parsed) return EXIT.ok;
  const connection = await connect(io);
  try {
    const prediction = await connection.client.predictions.get(parsed.positionals[0]!);
    if (!parsed.values.follow || isTerminal(prediction.status)) {
      const text = prediction.logs ?? "";
      io.stdout.write(text && !text.endsWith("\n") ? `${text}\n` : text);
      return EXIT.ok;
    }
    // The stream replays the logs so far, then live lines; Ctrl-C only stops following.
    const release = holdInterrupt(io);
    try {
      const controller = new AbortController();
      io.interrupt.addEventListener("abort", () => controller.abort(), { once: true });
      const events = connection.client.streamPrediction(prediction, {
        signal: controller.signal,
        cancelOnAbort: false,
        useFileOutput: false,
      });
      for await (const event of events) {
        if (event.event === "logs") {
          for (const line of String(event.data).split("\n")) if (line) io.stdout.write(`${line}\n`);
        } else if (event.event === "done") break;
      }
    } catch (error) {
      if (io.interrupt.aborted) return EXIT.interrupted;
      if (!(error instanceof Error && error.name === "ModelError")) throw error;
    } finally {
      release();
    }
    const final = await connection.client.predictions.get(prediction.id);
    return final.status === "succeeded" ? EXIT.ok : EXIT.failed;
  } finally {
    await connection.close();
  }
}
