import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CliIo } from "../src/io.js";

export const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "replicant.js");

export interface FakeIo extends CliIo {
  out(): string;
  err(): string;
  interruptNow(): void;
}

/** An io whose output is captured, with a fake Ctrl-C. Not a terminal unless `tty`. */
export function fakeIo(
  env: Record<string, string | undefined>,
  options: { stdin?: string; tty?: boolean; cwd?: string } = {},
): FakeIo {
  let stdout = "";
  let stderr = "";
  const controller = new AbortController();
  const text = (chunk: string | Uint8Array) =>
    typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
  return {
    stdout: {
      write: (chunk) => {
        stdout += text(chunk);
      },
      isTTY: options.tty === true,
    },
    stderr: {
      write: (chunk) => {
        stderr += text(chunk);
      },
      isTTY: false,
    },
    stdin: { isTTY: options.stdin === undefined, readAll: async () => Buffer.from(options.stdin ?? "") },
    env,
    cwd: options.cwd ?? process.cwd(),
    interrupt: controller.signal,
    out: () => stdout,
    err: () => stderr,
    interruptNow: () => controller.abort(),
  };
}

export interface Spawned {
  code: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  kill(signal: NodeJS.Signals): void;
  /** Resolves when `pattern` shows up in stdout or stderr. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
}

/** Spawns bin/replicant.js with `env` only (plus PATH and HOME), stdin closed. */
export function spawnCli(args: string[], env: Record<string, string>, cwd?: string): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(cwd ? { cwd } : {}),
  });
  let stdout = "";
  let stderr = "";
  const waiters = new Set<() => void>();
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
    for (const waiter of waiters) waiter();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
    for (const waiter of waiters) waiter();
  });
  const code = new Promise<number | null>((done) => child.on("close", (exitCode) => done(exitCode)));
  return {
    code,
    stdout: () => stdout,
    stderr: () => stderr,
    kill: (signal) => child.kill(signal),
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise((done, fail) => {
        const check = () => {
          if (pattern.test(stdout) || pattern.test(stderr)) {
            waiters.delete(check);
            clearTimeout(timer);
            done();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          fail(new Error(`timed out waiting for ${pattern}; stdout: ${stdout}; stderr: ${stderr}`));
        }, timeoutMs);
        waiters.add(check);
        check();
        void code.then(() => setTimeout(check, 0));
      });
    },
  };
}
