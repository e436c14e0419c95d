// kill -9 of a real server process (real SQLite file) while predictions are queued and running: after a
// restart on the same data directory every accepted prediction reaches a terminal state and the
// pending webhooks are still delivered.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../../../cli/bin/replicant.js", import.meta.url));
const TOKEN = "r8_crash_test_token_0123456789abcdefghij";

async function startServer(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [
      CLI,
      "serve",
      "--port",
      "0",
      "--data",
      dataDir,
      "--allow-private-urls",
      "--concurrency",
      "4",
      "--log-level",
      "error",
    ],
    { env: { ...process.env, REPLICANT_ADMIN_TOKEN: TOKEN }, stdio: ["ignore", "pipe", "inherit"] },
  );
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1]) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code}: ${output}`)));
  });
  return { child, url };
}

async function api(url: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${url}/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe("crash recovery", () => {
  it("nothing accepted is lost across a kill -9", { timeout: 60_000 }, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "replicant-crash-"));
    dirs.push(dataDir);
    const delivered = new Map<string, string[]>();
    const receiver = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => {
        body += chunk.toString();
      });
      request.on("end", () => {
        const prediction = JSON.parse(body) as { id: string; status: string };
        delivered.set(prediction.id, [...(delivered.get(prediction.id) ?? []), prediction.status]);
        response.writeHead(200).end();
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

    const first = await startServer(dataDir);
    const accepted: string[] = [];
    // 4 run at once (concurrency 4) for ~10 s each; the rest wait in the queue.
    for (let i = 0; i < 12; i++) {
      const res = await api(first.url, "POST", "/predictions", {
        version: "replicant/stream-test",
        input: { tokens: 200, delay_ms: 50 },
        webhook: hook,
        webhook_events_filter: ["completed"],
      });
      assert.equal(res.status, 201);
      accepted.push(res.json.id as string);
    }
    for (let i = 0; i < 10; i++) {
      const res = await api(first.url, "POST", "/predictions", {
        version: "replicate/hello-world",
        input: { text: String(i) },
      });
      assert.equal(res.status, 201);
      accepted.push(res.json.id as string);
    }
    // Let the first ones start.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await api(first.url, "GET", `/predictions/${accepted[0]}`);
      if (res.json.status === "processing" || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    first.child.kill("SIGKILL");
    await once(first.child, "exit");

    const second = await startServer(dataDir);
    try {
      const final = new Map<string, Record<string, unknown>>();
      const until = Date.now() + 40_000;
      while (final.size < accepted.length && Date.now() < until) {
        for (const id of accepted) {
          if (final.has(id)) continue;
          const res = await api(second.url, "GET", `/predictions/${id}`);
          assert.equal(res.status, 200, `prediction ${id} was lost`);
          if (["succeeded", "failed", "canceled", "aborted"].includes(res.json.status as string))
            final.set(id, res.json);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(final.size, accepted.length, "every accepted prediction reached a terminal state");
      const interrupted = [...final.values()].filter((p) => p.status === "failed");
      assert.ok(interrupted.length >= 1, "the predictions running at the crash failed");
      for (const p of interrupted)
        assert.match(p.error as string, /server stopped while this prediction was running/);
      for (const p of final.values()) if (p.status !== "failed") assert.equal(p.status, "succeeded");
      // The queued ones ran after the restart.
      assert.ok(
        [...final.values()].filter((p) => p.model === "replicant/stream-test" && p.status === "succeeded")
          .length >= 1,
      );
      // Every prediction that asked for a completed webhook gets one.
      const withWebhooks = accepted.slice(0, 12);
      const webhookDeadline = Date.now() + 10_000;
      while (withWebhooks.some((id) => !delivered.has(id)) && Date.now() < webhookDeadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      for (const id of withWebhooks) {
        assert.ok(delivered.has(id), `completed webhook for ${id}`);
        assert.equal(delivered.get(id)?.at(-1), final.get(id)?.status);
      }
    } finally {
      second.child.kill("SIGTERM");
      await once(second.child, "exit");
      receiver.close();
    }
  });
});
