import { mkdtempSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { RunCallbacks, RunRequest } from "../src/index.js";

/** Absolute path of a compiled fixture predictor (dist/test/fixtures/<name>.js). */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}.js`, import.meta.url));
}

export function scratch(): string {
  return mkdtempSync(join(tmpdir(), "replicant-runtime-test-"));
}

let nextId = 0;

export function request(
  input: Record<string, unknown>,
  options: { signal?: AbortSignal; kind?: RunRequest["kind"]; id?: string } = {},
): RunRequest {
  return {
    id: options.id ?? `test-${process.pid}-${++nextId}`,
    input,
    signal: options.signal ?? new AbortController().signal,
    scratchDir: scratch(),
    kind: options.kind ?? "prediction",
  };
}

export interface Recorded extends RunCallbacks {
  started: boolean;
  logs: string;
  outputs: unknown[];
}

export function recorder(): Recorded {
  const recorded: Recorded = {
    started: false,
    logs: "",
    outputs: [],
    onStart() {
      recorded.started = true;
    },
    onLog(text) {
      recorded.logs += text;
    },
    onOutput(index, value) {
      recorded.outputs[index] = value;
    },
  };
  return recorded;
}

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A local HTTP server that records every request (webhooks, uploads) and serves `files`. */
export async function receiver(files: Record<string, string> = {}) {
  const requests: Received[] = [];
  const waiters: (() => void)[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      requests.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      for (const wake of waiters.splice(0)) wake();
      const file = files[req.url ?? ""];
      if (req.method === "GET" && file !== undefined) return res.end(file);
      if (req.method === "PUT" && req.url?.startsWith("/upload/")) {
        res.writeHead(200, { location: `http://127.0.0.1:${port}${req.url}?sig=abc` });
        return res.end();
      }
      res.end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    /** Resolves once a recorded request satisfies `predicate`. */
    async waitFor(predicate: (request: Received) => boolean, timeoutMs = 10_000): Promise<Received> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = requests.find(predicate);
        if (found) return found;
        if (Date.now() > deadline) throw new Error("timed out waiting for a request");
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Polls until `check` returns a truthy value. */
export async function until<T>(check: () => Promise<T> | T, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
