import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { generateOpenApiSchema, type ModelServer, serveModel } from "../src/index.js";
import example from "./fixtures/cog-example-predictor.js";
import { fixture, receiver, scratch, until } from "./helpers.js";

const servers: ModelServer[] = [];
async function serve(name: string, options: Partial<Parameters<typeof serveModel>[0]> = {}) {
  const server = await serveModel({ predictorPath: fixture(name), port: 0, host: "127.0.0.1", ...options });
  servers.push(server);
  return server;
}
after(() => Promise.all(servers.map((server) => server.close())));

async function call(server: ModelServer, method: string, path: string, body?: unknown, headers = {}) {
  const response = await fetch(server.url + path, {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: await response.json() };
}

async function ready(server: ModelServer) {
  return until(async () => {
    const health = await call(server, "GET", "/health-check");
    return health.body.status === "STARTING" ? undefined : health.body;
  });
}

describe("the example predictor", () => {
  let server: ModelServer;
  before(async () => {
    server = await serve("cog-example-predictor");
  });

  test("health goes STARTING → READY with the setup logs", async () => {
    const first = await call(server, "GET", "/health-check");
    assert.deepEqual(first, { status: 200, body: { status: "STARTING", setup: {} } });
    const health = await ready(server);
    assert.equal(health.status, "READY");
    assert.equal(health.setup.status, "succeeded");
    assert.equal(health.setup.logs, "setting up\n");
    assert.match(health.setup.started_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
  });

  test("GET / and /openapi.json", async () => {
    const index = await call(server, "GET", "/");
    assert.equal(index.body.predictions_cancel_url, "/predictions/{prediction_id}/cancel");
    assert.equal(index.body.trainings_url, undefined);
    const schema = await call(server, "GET", "/openapi.json");
    assert.deepEqual(schema.body, generateOpenApiSchema(example));
  });

  test("a sync prediction answers with Python Cog's full body", async () => {
    const { status, body } = await call(server, "POST", "/predictions", {
      input: { prompt: "world", steps: 2 },
    });
    assert.equal(status, 200);
    assert.deepEqual(Object.keys(body), [
      "input",
      "output",
      "id",
      "version",
      "created_at",
      "started_at",
      "completed_at",
      "logs",
      "error",
      "status",
      "metrics",
    ]);
    assert.deepEqual(body.input, { prompt: "world", steps: 2, scale: 1.5, mode: "fast", sleep: 0 });
    assert.deepEqual(body.output, ["hello world 0 ", "hello world 1 "]);
    assert.equal(body.id, null);
    assert.equal(body.logs, "starting\nstep 0\nstep 1\n");
    assert.equal(body.status, "succeeded");
    assert.equal(typeof body.metrics.predict_time, "number");
  });

  test("invalid input is a 422 in Cog's shape", async () => {
    const cases: [unknown, unknown][] = [
      [{}, { loc: ["body", "input", "prompt"], msg: "field required", type: "value_error.missing" }],
      [
        { prompt: "a", steps: "x" },
        { loc: ["body", "input", "steps"], msg: "value is not a valid integer", type: "type_error.integer" },
      ],
      [
        { prompt: "a", steps: 11 },
        {
          loc: ["body", "input", "steps"],
          msg: "ensure this value is less than or equal to 10",
          type: "value_error.number.not_le",
          ctx: { limit_value: 10 },
        },
      ],
      [
        { prompt: "a", mode: "medium" },
        {
          loc: ["body", "input", "mode"],
          msg: "value is not a valid enumeration member; permitted: 'fast', 'slow'",
          type: "type_error.enum",
          ctx: { enum_values: ["fast", "slow"] },
        },
      ],
    ];
    for (const [input, error] of cases) {
      assert.deepEqual(await call(server, "POST", "/predictions", { input }), {
        status: 422,
        body: { detail: [error] },
      });
    }
    assert.deepEqual(await call(server, "PUT", "/predictions/abc", { id: "other", input: { prompt: "a" } }), {
      status: 422,
      body: {
        detail: [
          {
            loc: ["body", "id"],
            msg: "prediction ID must match the ID supplied in the URL",
            type: "value_error",
          },
        ],
      },
    });
  });

  test("async with webhooks: 202, idempotent PUT, 409 when saturated, cancel, canceled webhook", async () => {
    const hooks = await receiver();
    try {
      const input = { prompt: "w", steps: 10, sleep: 0.1 };
      const async = { prefer: "respond-async", traceparent: "00-abc-def-01" };
      const created = await call(
        server,
        "PUT",
        "/predictions/k1",
        { input, webhook: `${hooks.url}/hook` },
        async,
      );
      assert.equal(created.status, 202);
      assert.equal(created.body.id, "k1");
      assert.equal(created.body.status, "processing");
      const again = await call(
        server,
        "PUT",
        "/predictions/k1",
        { input, webhook: `${hooks.url}/hook` },
        async,
      );
      assert.equal(again.status, 202);
      assert.equal(again.body.id, "k1");
      assert.deepEqual(await call(server, "PUT", "/predictions/k2", { input }, async), {
        status: 409,
        body: { detail: "Already running a prediction" },
      });
      assert.equal((await call(server, "GET", "/health-check")).body.status, "BUSY");
      await hooks.waitFor((r) => JSON.parse(r.body.toString()).output?.length >= 2);
      assert.deepEqual(await call(server, "POST", "/predictions/k1/cancel"), { status: 200, body: {} });
      const terminal = await hooks.waitFor((r) => JSON.parse(r.body.toString()).status === "canceled");
      const body = JSON.parse(terminal.body.toString());
      assert.ok(body.output.length >= 2 && body.output.length < 10);
      assert.equal(terminal.headers.traceparent, "00-abc-def-01");
      const first = JSON.parse(hooks.requests[0]!.body.toString());
      assert.equal(first.status, "processing");
      assert.deepEqual(await call(server, "POST", "/predictions/k1/cancel"), { status: 404, body: {} });
      await until(async () => (await call(server, "GET", "/health-check")).body.status === "READY");
    } finally {
      await hooks.close();
    }
  });

  test("webhook_events_filter limits the events sent", async () => {
    const hooks = await receiver();
    try {
      const request = {
        id: "filtered",
        input: { prompt: "w", steps: 3 },
        webhook: `${hooks.url}/hook`,
        webhook_events_filter: ["completed"],
      };
      assert.equal(
        (await call(server, "POST", "/predictions", request, { prefer: "respond-async" })).status,
        202,
      );
      const terminal = await hooks.waitFor(() => true);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(hooks.requests.length, 1);
      const body = JSON.parse(terminal.body.toString());
      assert.equal(body.status, "succeeded");
      assert.deepEqual(body.output, ["hello w 0 ", "hello w 1 ", "hello w 2 "]);
    } finally {
      await hooks.close();
    }
  });
});

describe("files, secrets and training", () => {
  let server: ModelServer;
  let hooks: Awaited<ReturnType<typeof receiver>>;
  before(async () => {
    hooks = await receiver({ "/inputs/photo.png": "downloaded bytes" });
    server = await serve("files-predictor", { uploadUrl: `${hooks.url}/upload` });
    await ready(server);
  });
  after(() => hooks.close());

  test("URL and data-URI file inputs are fetched to local files; secrets are masked", async () => {
    const { body } = await call(server, "POST", "/predictions", {
      input: { infile: `${hooks.url}/inputs/photo.png`, key: "s3cret" },
    });
    assert.equal(body.status, "succeeded", body.error);
    assert.equal(body.output.infile_text, "downloaded bytes");
    assert.match(body.output.echoed, /photo\.png$/);
    assert.deepEqual(body.input, { infile: `${hooks.url}/inputs/photo.png`, key: "**********" });
    // The prediction's own directory (its downloaded input, its outputs) is removed after the response.
    const directory = dirname(body.output.echoed);
    await until(() => !existsSync(directory), 2000);
    const dataUri = await call(server, "POST", "/predictions", {
      input: { infile: `data:text/plain;base64,${Buffer.from("inline").toString("base64")}` },
    });
    assert.equal(dataUri.body.output.infile_text, "inline");
    const bad = await call(server, "POST", "/predictions", { input: { infile: "/etc/passwd" } });
    assert.equal(bad.status, 422);
    assert.equal(bad.body.detail[0].type, "value_error.url.scheme");
  });

  test("file outputs are PUT to the upload URL (Location without its query)", async () => {
    const { body } = await call(server, "POST", "/predictions", { id: "up1", input: {} });
    assert.equal(body.status, "succeeded", body.error);
    assert.match(body.output.path, new RegExp(`^${hooks.url}/upload/out\\.txt$`));
    const upload = hooks.requests.findLast((r) => r.url === "/upload/out.txt")!;
    assert.equal(upload.method, "PUT");
    assert.equal(upload.headers["content-type"], "text/plain");
    assert.equal(upload.headers["x-prediction-id"], "up1");
    assert.equal(upload.body.toString(), "from a path");
    assert.match(body.output.blob, /\/upload\/output-.*\.png$/);
  });

  test("output_file_prefix sends multipart PUTs", async () => {
    const { body } = await call(server, "POST", "/predictions", {
      input: {},
      output_file_prefix: `${hooks.url}/prefix/`,
    });
    assert.equal(body.output.path, `${hooks.url}/prefix/out.txt`);
    const put = hooks.requests.find((r) => r.url === "/prefix/out.txt")!;
    assert.match(String(put.headers["content-type"]), /^multipart\/form-data; boundary=/);
    assert.match(put.body.toString(), /name="file"; filename="out.txt"[\s\S]*from a path/);
  });

  test("trainings return weights", async () => {
    const { body } = await call(server, "POST", "/trainings", { input: { n: 5 } });
    assert.equal(body.status, "succeeded", body.error);
    assert.match(body.output.weights, /\/upload\/weights\.txt$/);
    assert.equal((await call(server, "GET", "/")).body.trainings_url, "/trainings");
  });
});

describe("data URIs by default", () => {
  test("without an upload URL file outputs are data URIs", async () => {
    const server = await serve("files-predictor");
    await ready(server);
    const { body } = await call(server, "POST", "/predictions", { input: {} });
    assert.equal(body.output.path, `data:text/plain;base64,${Buffer.from("from a path").toString("base64")}`);
    assert.equal(
      body.output.buffer,
      `data:application/octet-stream;base64,${Buffer.from("from a buffer").toString("base64")}`,
    );
  });
});

describe("failures", () => {
  test("a failing setup is SETUP_FAILED with its logs, and predictions get 503", async () => {
    const server = await serve("flaky-setup-predictor", {
      runner: { env: { FLAKY_SETUP_COUNTER: join(scratch(), "count") } },
    });
    const health = await ready(server);
    assert.equal(health.status, "SETUP_FAILED");
    assert.equal(health.setup.status, "failed");
    assert.match(health.setup.logs, /loading weights \(attempt 1\)\nError: weights are not there yet/);
    assert.equal((await call(server, "POST", "/predictions", { input: {} })).status, 503);
  });

  test("a prediction that raises is a 200 with status failed; a dead runner makes the server DEFUNCT", async () => {
    const server = await serve("misbehaving-predictor");
    await ready(server);
    const failed = await call(server, "POST", "/predictions", { input: { behaviour: "throw" } });
    assert.equal(failed.status, 200);
    assert.equal(failed.body.status, "failed");
    assert.equal(failed.body.error, "boom");
    assert.match(failed.body.logs, /Error: boom/);
    const crashed = await call(server, "POST", "/predictions", { input: { behaviour: "exit" } });
    assert.equal(crashed.body.status, "failed");
    assert.match(crashed.body.error, /exited unexpectedly/);
    assert.equal((await call(server, "GET", "/health-check")).body.status, "DEFUNCT");
  });

  test("POST /shutdown stops the server", async () => {
    const server = await serve("echo-predictor");
    assert.deepEqual(await call(server, "POST", "/shutdown"), { status: 200, body: {} });
    await server.closed;
  });
});
