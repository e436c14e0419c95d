import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CogClient, generateOpenApiSchema, isFileValue, type ModelServer, serveModel } from "../src/index.js";
import example from "./fixtures/cog-example-predictor.js";
import { fixture, recorder, request, scratch, until } from "./helpers.js";

describe("against serveModel", () => {
  let exampleServer: ModelServer;
  let filesServer: ModelServer;
  before(async () => {
    exampleServer = await serveModel({
      predictorPath: fixture("cog-example-predictor"),
      port: 0,
      host: "127.0.0.1",
    });
    filesServer = await serveModel({ predictorPath: fixture("files-predictor"), port: 0, host: "127.0.0.1" });
  });
  after(() => Promise.all([exampleServer.close(), filesServer.close()]));

  test("waits for readiness, reads the schema, runs a prediction", async () => {
    const client = new CogClient({ baseUrl: exampleServer.url });
    const health = await client.waitUntilReady(20_000, 20);
    assert.equal(health.status, "READY");
    assert.deepEqual(await client.schema(), generateOpenApiSchema(example));
    const callbacks = recorder();
    const result = await client.run(request({ prompt: "w", steps: 2 }), callbacks);
    assert.equal(result.status, "succeeded");
    assert.ok(result.status === "succeeded");
    assert.deepEqual(result.output, ["hello w 0 ", "hello w 1 "]);
    assert.equal(typeof result.metrics?.predict_time, "number");
    assert.equal(callbacks.started, true);
    assert.equal(callbacks.logs, "starting\nstep 0\nstep 1\n");
    assert.deepEqual(callbacks.outputs, ["hello w 0 ", "hello w 1 "]);
    const invalid = await client.run(request({ prompt: "w", steps: 99 }), recorder());
    assert.deepEqual(invalid, {
      status: "failed",
      error: "invalid input: steps: ensure this value is less than or equal to 10",
    });
  });

  test("streams logs and outputs through webhooks while the prediction runs, and cancels", async () => {
    const client = new CogClient({ baseUrl: exampleServer.url, stream: true });
    await client.waitUntilReady(20_000, 20);
    const controller = new AbortController();
    const callbacks = recorder();
    const running = client.run(
      request({ prompt: "s", steps: 10, sleep: 0.1 }, { signal: controller.signal }),
      callbacks,
    );
    await until(() => callbacks.outputs.length >= 2);
    assert.equal(callbacks.started, true);
    assert.match(callbacks.logs, /^starting\nstep 0\n/);
    controller.abort();
    assert.deepEqual(await running, { status: "canceled" });
    assert.ok(callbacks.outputs.length < 10);
    await client.close();
  });

  test("file inputs are sent as data URIs and file outputs come back as FileValues", async () => {
    const client = new CogClient({ baseUrl: filesServer.url });
    await client.waitUntilReady(20_000, 20);
    const infile = join(scratch(), "in.txt");
    writeFileSync(infile, "local input");
    const run = request({ infile });
    const result = await client.run(run, recorder());
    assert.ok(result.status === "succeeded", JSON.stringify(result));
    const output = result.output as Record<string, unknown>;
    assert.equal(output.infile_text, "local input");
    const path = output.path;
    assert.ok(isFileValue(path));
    assert.ok(path.path.startsWith(run.scratchDir));
    assert.equal(path.content_type, "text/plain");
    assert.equal(readFileSync(path.path, "utf8"), "from a path");
    const training = await client.run(request({ n: 2 }, { kind: "training" }), recorder());
    assert.ok(training.status === "succeeded");
    const weights = (training.output as { weights: unknown }).weights;
    assert.ok(isFileValue(weights));
    assert.equal(readFileSync(weights.path, "utf8"), "ww");
  });
});

describe("against a server answering with coglet's shapes", () => {
  const schema = generateOpenApiSchema(example);
  let busy = false;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.url === "/health-check") {
        return json(200, {
          status: "READY",
          setup: { status: "succeeded", logs: "" },
          version: { coglet: "0.17.0" },
        });
      }
      if (req.url === "/openapi.json") return json(200, schema);
      if (req.method === "POST" && req.url === "/predictions") {
        if (busy) return json(409, { error: "At capacity - all prediction slots busy", status: "failed" });
        const body = JSON.parse(Buffer.concat(chunks).toString());
        if (body.input.prompt === "fail") {
          return json(200, {
            id: body.id,
            logs: "oops\n",
            status: "failed",
            error: "bad prompt",
            metrics: { predict_time: 0.1 },
          });
        }
        return json(200, {
          id: body.id,
          output: ["a", "b"],
          logs: "starting\n",
          status: "succeeded",
          metrics: { predict_time: 0.01, tokens: 2 },
        });
      }
      json(404, {});
    });
  });
  let client: CogClient;
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    client = new CogClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("a slim sync body", async () => {
    assert.equal((await client.waitUntilReady(1000)).version?.coglet, "0.17.0");
    const callbacks = recorder();
    assert.deepEqual(await client.run(request({ prompt: "x" }), callbacks), {
      status: "succeeded",
      output: ["a", "b"],
      metrics: { predict_time: 0.01, tokens: 2 },
    });
    assert.deepEqual(callbacks.outputs, ["a", "b"]);
    assert.equal(callbacks.logs, "starting\n");
  });

  test("a failed prediction and coglet's 409", async () => {
    assert.deepEqual(await client.run(request({ prompt: "fail" }), recorder()), {
      status: "failed",
      error: "bad prompt",
      metrics: { predict_time: 0.1 },
    });
    busy = true;
    assert.deepEqual(await client.run(request({ prompt: "x" }), recorder()), {
      status: "failed",
      error: "Cog server is busy (409)",
    });
    busy = false;
  });
});
