/**
 * Entry point of a runner child process: `node runner-child.js <predictor.js>`, forked with an IPC channel.
 * Loads the predictor, runs setup once, then serves run/cancel messages concurrently.
 */
import { startEgressForwarder } from "./egress-forwarder.js";
import { captureConsoleOutput, describePredictor, execute, loadPredictor, withLogSink } from "./execute.js";
import type { AnyPredictor } from "./predictor.js";
import type { ChildMessage, HostMessage } from "./runner-protocol.js";

// Each IPC write costs tens of microseconds on both sides (and wakes the server, which then writes to
// every stream, and each stream's client), so messages queued in one event-loop turn go out together,
// and streamed outputs and logs go out at most once every STREAM_GAP_MS, a 60 Hz display's frame: a
// token after a pause leaves at once, tokens that follow it closely share a message. A predictor that
// never yields still streams, as a batch is sent once it is FLUSH_AGE_MS old. Anything else (start,
// done, a failure) leaves at once, after what was queued. At 5 ms, the wake-ups of the server and the
// client slowed a 2,900 tokens/s llama.cpp stream to 0.92-0.94x of the library called directly; at
// 16 ms it ran at 0.98-1.01x (R8, five alternating pairs).
const FLUSH_AGE_MS = 16;
const STREAM_GAP_MS = 16;
let queued: ChildMessage[] = [];
let queuedSince = 0;
let lastFlush = Number.NEGATIVE_INFINITY;
let flushScheduled = false;

const flush = () => {
  if (queued.length === 0) return;
  const messages = queued;
  queued = [];
  process.send?.(messages.length === 1 ? messages[0] : { type: "batch", messages });
};

// Only streamed batches start the gap: the first token after `start` is not held back by it.
const streamFlush = () => {
  lastFlush = performance.now();
  flush();
};

// A flush that comes early (a done message) leaves this one nothing or a little to send: harmless.
const scheduledFlush = () => {
  flushScheduled = false;
  streamFlush();
};

const send = (message: ChildMessage) => {
  const now = performance.now();
  if (queued.length === 0) queuedSince = now;
  queued.push(message);
  if (message.type !== "output" && message.type !== "log") flush();
  else if (now - queuedSince >= FLUSH_AGE_MS) streamFlush();
  else if (!flushScheduled) {
    flushScheduled = true;
    const wait = lastFlush + STREAM_GAP_MS - now;
    if (wait > 0) setTimeout(scheduledFlush, Math.ceil(wait));
    else setImmediate(scheduledFlush);
  }
};

captureConsoleOutput();

async function main() {
  const path = process.argv[2];
  if (!path) throw new Error("usage: runner-child <predictor.js>");
  const weights = process.env.REPLICANT_WEIGHTS || undefined;
  const egress = process.env.REPLICANT_EGRESS_SOCKET;
  if (egress) await startEgressForwarder(egress);
  let setupLogs = "";
  const setupLog = (text: string) => {
    setupLogs += text;
    send({ type: "setup_log", text });
  };
  let predictor: AnyPredictor;
  let state: unknown;
  try {
    // Loading and setup run alone: their output needs no AsyncLocalStorage (see withLogSink).
    predictor = await withLogSink(setupLog, () => loadPredictor(path), true);
    send({ type: "loaded", description: describePredictor(predictor) });
    const setup = predictor.setup;
    if (setup) {
      const ctx = weights
        ? { log: (text: string) => setupLog(text.endsWith("\n") ? text : `${text}\n`), weights }
        : { log: (text: string) => setupLog(text.endsWith("\n") ? text : `${text}\n`) };
      state = await withLogSink(setupLog, () => setup.call(predictor, ctx), true);
    }
  } catch (error) {
    const stack = error instanceof Error && error.stack ? error.stack : String(error);
    setupLogs += `${stack}\n`;
    send({
      type: "setup_failed",
      error: error instanceof Error ? error.message : String(error),
      logs: setupLogs,
    });
    return;
  }

  const running = new Map<string, AbortController>();
  // The host keeps within the predictor's concurrency: with 1, each prediction runs alone.
  const alone = describePredictor(predictor).concurrency === 1;
  process.on("message", (message: HostMessage) => {
    if (message.type === "cancel") {
      running.get(message.id)?.abort();
      return;
    }
    const { id } = message;
    const controller = new AbortController();
    running.set(id, controller);
    const job = { id, kind: message.kind, input: message.input, scratchDir: message.scratchDir, weights };
    execute(
      predictor,
      state,
      job,
      controller.signal,
      {
        log: (text) => send({ type: "log", id, text }),
        output: (index, value) => send({ type: "output", id, index, value }),
      },
      alone,
    ).then((result) => {
      running.delete(id);
      send({ type: "done", id, ...result });
    });
  });
  send({ type: "ready" });
}

process.on("disconnect", () => process.exit(0));
// Anything thrown outside a prediction's promise chain leaves the process in an unknown state: report and exit.
process.on("uncaughtException", (error: unknown) => {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const stack = error instanceof Error && error.stack ? error.stack : message;
  if (!process.connected) process.exit(1);
  flush();
  process.send?.({ type: "fatal", error: message, stack } satisfies ChildMessage, () => process.exit(1));
});
main().catch((error: unknown) => {
  send({ type: "setup_failed", error: String(error), logs: String(error) });
});
