import { resolve } from "node:path";
import type { Prediction, PredictionCreateOptions, WebhookEventType } from "@replicant/sdk";
import {
  OUTPUT_HELP,
  OUTPUT_OPTIONS,
  optionalValue,
  parseCommand,
  parseModelName,
  wantsJson,
} from "./args.js";
import { type Connection, connect } from "./connect.js";
import { EXIT, usageError } from "./errors.js";
import { cancelOnInterrupt, followPrediction } from "./follow.js";
import { buildInput, inputSchemaOf } from "./inputs.js";
import { type CliIo, holdInterrupt } from "./io.js";
import { concatenateHint, outputText, printJson, saveOutputs } from "./outputs.js";

export type PredictMode = "run" | "stream" | "create" | "deployment";

const COMMON_OPTIONS = {
  input: { type: "string", short: "i", multiple: true, default: [] as string[] },
  save: { type: "string" },
  logs: { type: "boolean", default: false },
  quiet: { type: "boolean", short: "q", default: false },
  web: { type: "boolean", default: false },
  wait: { type: "boolean", default: false },
  webhook: { type: "string" },
  "webhook-events": { type: "string" },
  "cancel-after": { type: "string" },
  ...OUTPUT_OPTIONS,
} as const;

const INPUT_HELP = `Inputs:
  -i, --input key=value    an input (repeatable). Values follow the model's schema: integers, numbers,
                           booleans (true/false), enums (checked), arrays as JSON or repeated keys
  -i key=@path             upload a local file and pass its URL (key=@@text for a literal @)
  -                        read a JSON object of inputs from stdin (also read when stdin is piped and
                           there is no -i)`;

const OUTPUT_FLAGS_HELP = `Output:
  --save [DIR]             download file outputs into DIR (default .), named output.<ext>, output-0.<ext>...
                           from their content type; never overwrites
${OUTPUT_HELP}
  --logs                   print the model's logs live on stderr
  -q, --quiet              no progress display or notices on stderr
  --web                    print (and on a terminal, open) the prediction's web page

Other:
  --webhook URL            POST the prediction to URL as it changes
  --webhook-events LIST    which events: start,output,logs,completed (default completed)
  --cancel-after DURATION  a deadline on the server, e.g. 90s or 5m`;

export const HELP: Record<PredictMode, string> = {
  run: `Usage: replicant run MODEL [-i key=value ...] [options]

Runs a model, shows its progress, and prints its output. MODEL is owner/name, owner/name:version or a
version id. Ctrl-C cancels the prediction (exit 130).

${INPUT_HELP}

${OUTPUT_FLAGS_HELP}

Examples:
  replicant run replicate/hello-world -i text=world
  replicant run replicant/file-echo -i file=@photo.png --save out/
  echo '{"text":"world"}' | replicant run replicate/hello-world --json
  replicant run replicant/stream-test -i tokens=5 --logs
`,
  stream: `Usage: replicant stream MODEL [-i key=value ...] [options]

Runs a model and prints its output as it streams (server-sent events; polling where the server has no
stream). With --json, prints one JSON event per line. Ctrl-C cancels the prediction (exit 130).

${INPUT_HELP}

${OUTPUT_FLAGS_HELP}

Examples:
  replicant stream replicant/stream-test -i tokens=5 -i delay_ms=100
  replicant stream meta/meta-llama-3-8b-instruct -i prompt="Write a haiku" --json
`,
  create: `Usage: replicant predictions create MODEL [-i key=value ...] [--wait] [options]

Creates a prediction and prints it without waiting (its id: follow it with \`replicant predictions get ID\`
or \`replicant predictions logs ID --follow\`). With --wait it waits, like \`replicant run\`.

${INPUT_HELP}

${OUTPUT_FLAGS_HELP}
  --wait                   wait for the prediction to finish

Examples:
  replicant predictions create replicant/stream-test -i tokens=50
  replicant predictions create replicate/hello-world -i text=you --wait --json
`,
  deployment: `Usage: replicant deployments run OWNER/NAME [-i key=value ...] [options]

Runs a prediction on a deployment (its current release) and prints its output, like \`replicant run\`.

${INPUT_HELP}

${OUTPUT_FLAGS_HELP}

Example:
  replicant deployments run acme/hello -i text=world
`,
};

const EVENTS: WebhookEventType[] = ["start", "output", "logs", "completed"];

/** Where a prediction goes, and the schema that coerces its inputs. */
interface Target {
  label: string;
  create: Pick<PredictionCreateOptions, "model" | "version" | "deployment">;
  openapiSchema: unknown;
}

async function resolveTarget(connection: Connection, ref: string, mode: PredictMode): Promise<Target> {
  const { client } = connection;
  if (mode === "deployment") {
    const { owner, name } = parseModelName(ref, "deployment");
    const deployment = await client.deployments.get(owner, name);
    const [modelOwner, modelName] = deployment.current_release.model.split("/");
    const version = await client.models.versions
      .get(modelOwner ?? "", modelName ?? "", deployment.current_release.version)
      .catch(() => undefined);
    return {
      label: `deployments/${owner}/${name}`,
      create: { deployment: `${owner}/${name}` },
      openapiSchema: version?.openapi_schema,
    };
  }
  if (/^[0-9a-f]{64}$/.test(ref))
    return { label: ref.slice(0, 12), create: { version: ref }, openapiSchema: undefined };
  const { owner, name, version } = parseModelName(ref);
  if (version) {
    const found = await client.models.versions.get(owner, name, version);
    return { label: `${owner}/${name}`, create: { version }, openapiSchema: found.openapi_schema };
  }
  const model = await client.models.get(owner, name);
  const latest = model.latest_version;
  // Official models run by name; others by their latest version, which works on every server.
  const create = model.is_official || !latest ? { model: `${owner}/${name}` } : { version: latest.id };
  return { label: `${owner}/${name}`, create, openapiSchema: latest?.openapi_schema };
}

/** `run`, `stream`, `predictions create` and `deployments run`. */
export async function predict(mode: PredictMode, argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(optionalValue(argv, "--save", "."), io, HELP[mode], COMMON_OPTIONS, {
    min: 1,
    max: 2,
  });
  if (!parsed) return EXIT.ok;
  const { values, positionals } = parsed;
  const ref = positionals[0]!;
  const stdinFlag = positionals[1];
  if (stdinFlag !== undefined && stdinFlag !== "-")
    throw usageError(`unexpected argument "${stdinFlag}": inputs are -i key=value`);
  const json = wantsJson(values, io);
  const events = values["webhook-events"]?.split(",").map((e) => e.trim()) ?? [];
  for (const event of events) {
    if (!EVENTS.includes(event as WebhookEventType))
      throw usageError(`--webhook-events takes ${EVENTS.join(",")}, got "${event}"`);
  }
  const wait = mode !== "create" || values.wait;

  const connection = await connect(io);
  const release = holdInterrupt(io);
  try {
    const target = await resolveTarget(connection, ref, mode);
    const input = await buildInput(values.input, inputSchemaOf(target.openapiSchema), io, {
      stdin: stdinFlag === "-" ? "yes" : "auto",
    });
    const options: PredictionCreateOptions = { ...target.create, input };
    if (values.webhook) options.webhook = values.webhook;
    if (events.length) options.webhook_events_filter = events as WebhookEventType[];
    if (values["cancel-after"]) options.cancelAfter = values["cancel-after"];
    // Not aborted by Ctrl-C: the create finishes, so the prediction can then be canceled by id.
    let prediction: Prediction = await connection.client.predictions.create(options);
    if (io.interrupt.aborted) return cancelOnInterrupt(connection, io, prediction.id);
    if (!values.quiet && mode !== "create") io.stderr.write(`replicant: started ${prediction.id}\n`);
    if (values.web) await showWebPage(io, prediction, values.quiet);
    if (!wait) {
      if (json) printJson(io, prediction);
      else io.stdout.write(`${prediction.id} ${prediction.status}\n`);
      return EXIT.ok;
    }
    const streaming = mode === "stream";
    prediction = await followPrediction(connection, io, prediction, {
      label: target.label,
      showLogs: values.logs,
      progress: !values.quiet,
      onOutput: streaming
        ? (chunk) => {
            if (json) io.stdout.write(`${JSON.stringify({ event: "output", data: chunk })}\n`);
            else io.stdout.write(chunk);
          }
        : undefined,
    });
    let output = prediction.output;
    if (values.save !== undefined && prediction.status === "succeeded") {
      const saved = await saveOutputs(
        connection.client,
        output,
        resolve(io.cwd, values.save),
        io.cwd,
        io.interrupt,
      );
      output = saved.output;
      if (!values.quiet) for (const path of saved.paths) io.stderr.write(`replicant: saved ${path}\n`);
    }
    if (streaming) {
      if (json)
        io.stdout.write(
          `${JSON.stringify({ event: "done", data: { status: prediction.status, id: prediction.id } })}\n`,
        );
      else io.stdout.write("\n");
    } else if (json) {
      printJson(io, values.save !== undefined ? { ...prediction, output } : prediction);
    } else if (prediction.status === "succeeded") {
      const text = outputText(output, concatenateHint(target.openapiSchema));
      io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
    }
    return reportEnd(io, prediction);
  } finally {
    release();
    await connection.close();
  }
}

/** Exit 0 for success; a one-line reason on stderr and exit 1 otherwise. */
export function reportEnd(io: CliIo, prediction: Pick<Prediction, "id" | "status" | "error">): number {
  if (prediction.status === "succeeded") return EXIT.ok;
  const reason =
    prediction.status === "failed"
      ? `failed: ${String(prediction.error ?? "unknown error")}`
      : `was ${prediction.status}`;
  io.stderr.write(
    `replicant: prediction ${prediction.id} ${reason}; see \`replicant predictions logs ${prediction.id}\`\n`,
  );
  return EXIT.failed;
}

async function showWebPage(io: CliIo, prediction: Prediction, quiet: boolean): Promise<void> {
  const url = prediction.urls?.web;
  if (!url) {
    if (!quiet) io.stderr.write("replicant: this server gives no web page for predictions\n");
    return;
  }
  io.stderr.write(`replicant: ${url}\n`);
  if (io.stdout.isTTY && !io.env.REPLICANT_NO_BROWSER) await openInBrowser(url);
}

/** Opens `url` with the platform's opener; quietly does nothing when there is none. */
export async function openInBrowser(url: string): Promise<void> {
  const { spawn } = await import("node:child_process");
  const command = process.platform === "darwin" ? "open" : process.platform === "win32" ? "cmd" : "xdg-open";
  const args = process.platform === "win32" ? ["/c", "start", "", url] : [url];
  await new Promise<void>((done) => {
    const child = spawn(command, args, { stdio: "ignore", detached: true });
    child.on("error", () => done());
    child.on("spawn", () => {
      child.unref();
      done();
    });
  });
}
