import type { Prediction, Training } from "@replicant/sdk";
import type { Connection } from "./connect.js";
import { CliError, EXIT } from "./errors.js";
import type { CliIo } from "./io.js";
import { createProgress } from "./progress.js";

const TERMINAL = new Set(["succeeded", "failed", "canceled", "aborted"]);

export function isTerminal(status: string): boolean {
  return TERMINAL.has(status);
}

export interface FollowOptions {
  label: string;
  showLogs: boolean;
  progress: boolean;
  /** Each output chunk as it streams (the `stream` command prints them). */
  onOutput?: ((chunk: string) => void) | undefined;
  /** Each log line as it arrives (`predictions logs --follow` prints them to stdout). */
  onLog?: ((line: string) => void) | undefined;
}

/** Cancels `id` after Ctrl-C and ends the command with exit 130. */
export async function cancelOnInterrupt(connection: Connection, io: CliIo, id: string): Promise<never> {
  try {
    await connection.client.predictions.cancel(id, { timeout: 10_000, maxRetries: 1 });
    io.stderr.write(`replicant: interrupted; canceled prediction ${id}\n`);
  } catch {
    io.stderr.write(
      `replicant: interrupted; could not cancel ${id}: run \`replicant predictions cancel ${id}\`\n`,
    );
  }
  throw new CliError("interrupted", EXIT.interrupted);
}

/**
 * Follows a prediction until it ends: its server-sent events (or polling where there is no stream) feed the
 * progress display, live logs and streamed output. Ctrl-C cancels the prediction and exits 130. Resolves with
 * the final prediction, whatever its status.
 */
export async function followPrediction(
  connection: Connection,
  io: CliIo,
  prediction: Prediction,
  options: FollowOptions,
): Promise<Prediction> {
  const { client } = connection;
  if (io.interrupt.aborted) return cancelOnInterrupt(connection, io, prediction.id);
  if (isTerminal(prediction.status)) return prediction;
  const display = await createProgress(io, {
    label: options.label,
    showLogs: options.showLogs,
    enabled: options.progress,
  });
  display.status(prediction.status);
  try {
    const events = client.streamPrediction(prediction, {
      signal: io.interrupt,
      cancelOnAbort: false,
      useFileOutput: false,
    });
    for await (const event of events) {
      if (event.event === "output") {
        display.status("processing");
        if (options.onOutput) {
          display.stop();
          options.onOutput(String(event.data));
        }
      } else if (event.event === "logs") {
        display.status("processing");
        for (const line of String(event.data).split("\n")) {
          if (!line) continue;
          display.log(line);
          options.onLog?.(line);
        }
      } else if (event.event === "done") {
        break;
      }
    }
  } catch (error) {
    display.stop();
    if (io.interrupt.aborted) return cancelOnInterrupt(connection, io, prediction.id);
    // A failed prediction: its final state is fetched below, so the caller reports it in one place.
    if (!(error instanceof Error && error.name === "ModelError")) throw error;
  } finally {
    display.stop();
  }
  return waitForEnd(connection, io, prediction);
}

/** The final state, polling briefly in case the stream ended a moment before the store was updated. */
async function waitForEnd<T extends Prediction | Training>(
  connection: Connection,
  io: CliIo,
  initial: T,
): Promise<T> {
  const { client } = connection;
  for (let attempt = 0; ; attempt++) {
    const current = (await client.predictions.get(initial.id)) as T;
    if (isTerminal(current.status)) return current;
    if (io.interrupt.aborted) return cancelOnInterrupt(connection, io, initial.id);
    await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** Math.min(attempt, 5))));
  }
}

/** Polls a training until it ends, with the same display (trainings have no stream). */
export async function followTraining(
  connection: Connection,
  io: CliIo,
  training: Training,
  options: Omit<FollowOptions, "onOutput">,
): Promise<Training> {
  const { client } = connection;
  const display = await createProgress(io, {
    label: options.label,
    showLogs: options.showLogs,
    enabled: options.progress,
  });
  let current = training;
  let logLines = 0;
  try {
    while (!isTerminal(current.status)) {
      display.status(current.status);
      const lines = (current.logs ?? "").split("\n").slice(0, -1);
      for (const line of lines.slice(logLines)) display.log(line);
      logLines = Math.max(logLines, lines.length);
      await new Promise((resolve) => setTimeout(resolve, client.pollInterval));
      if (io.interrupt.aborted) {
        display.stop();
        await client.trainings.cancel(current.id).catch(() => undefined);
        io.stderr.write(`replicant: interrupted; canceled training ${current.id}\n`);
        throw new CliError("interrupted", EXIT.interrupted);
      }
      current = await client.trainings.get(current.id);
    }
  } finally {
    display.stop();
  }
  return current;
}
