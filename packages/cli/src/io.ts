import { getEventListeners } from "node:events";
import type { Writable } from "node:stream";

/** Where a command writes: text goes through `write`; `stream` is the real stream, for spinners. */
export interface CliOutput {
  write(chunk: string | Uint8Array): void;
  isTTY: boolean;
  columns?: number | undefined;
  stream?: Writable | undefined;
}

/** Everything a command touches outside itself, so tests can call commands as functions. */
export interface CliIo {
  stdout: CliOutput;
  stderr: CliOutput;
  stdin: { isTTY: boolean; readAll(): Promise<Buffer> };
  env: Record<string, string | undefined>;
  cwd: string;
  /** Aborts when the user presses Ctrl-C (SIGINT). */
  interrupt: AbortSignal;
}

/**
 * The io of the real process. Ctrl-C aborts `interrupt` when a command listens for it (to cancel its
 * prediction first); otherwise, or on a second Ctrl-C, the process exits at once with 130.
 */
export function processIo(): CliIo {
  const controller = new AbortController();
  process.on("SIGINT", () => {
    // Someone else handling SIGINT (serve) or the abort (a running prediction) keeps the process alive.
    const handled =
      process.listenerCount("SIGINT") > 1 || getEventListeners(controller.signal, "abort").length > 0;
    if (controller.signal.aborted || !handled) {
      process.stderr.write("\n");
      process.exit(130);
    }
    controller.abort(new Error("interrupted"));
  });
  return {
    stdout: {
      write: (text) => void process.stdout.write(text),
      isTTY: process.stdout.isTTY === true,
      columns: process.stdout.columns,
      stream: process.stdout,
    },
    stderr: {
      write: (text) => void process.stderr.write(text),
      isTTY: process.stderr.isTTY === true,
      columns: process.stderr.columns,
      stream: process.stderr,
    },
    stdin: {
      isTTY: process.stdin.isTTY === true,
      async readAll() {
        const chunks: Buffer[] = [];
        for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
        return Buffer.concat(chunks);
      },
    },
    env: process.env,
    cwd: process.cwd(),
    interrupt: controller.signal,
  };
}

/** Declares that the caller handles Ctrl-C itself (see processIo); call the result to stop. */
export function holdInterrupt(io: CliIo): () => void {
  const listener = () => undefined;
  io.interrupt.addEventListener("abort", listener);
  return () => io.interrupt.removeEventListener("abort", listener);
}

/** Sets the exit code once stdout and stderr have flushed (pipes are asynchronous), then exits. */
export function exitAfterFlush(code: number): void {
  process.exitCode = code;
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write("", done);
  process.stderr.write("", done);
}
