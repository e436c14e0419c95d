// Versions backed by a Cog-protocol server: `serve-model` (our runtime's Cog server) started by the test,
// registered with push (cog_url), and run through the API with the official client.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type ModelServer, serveModel } from "@replicant/runtime";
import Replicate from "replicate";
import { startTestServer, type TestServer } from "../src/index.js";

const STREAM_PREDICTOR = fileURLToPath(
  new URL("../../../server/dist/src/builtin/predictors/stream-test.js", import.meta.url),
);
const HELLO_PREDICTOR = fileURLToPath(
  new URL("../../../server/dist/src/builtin/predictors/hello-world.js", import.meta.url),
);

let server: TestServer;
let replicate: Replicate;
const cogServers: ModelServer[] = [];

async function pushCog(name: string, predictorPath: string): Promise<string> {
  const cog = await serveModel({ predictorPath, port: 0, host: "127.0.0.1" });
  cogServers.push(cog);
  await replicate.models.create("local", name, { visibility: "private", hardware: "cpu" });
  const response = await fetch(`${server.apiUrl}/replicant/models/local/${name}/versions`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
    body: JSON.stringify({ cog_url: cog.url }),
  });
  const body = (await response.json()) as {
    id: string;
    openapi_schema: { components: { schemas: Record<string, unknown> } };
  };
  assert.equal(response.status, 201, JSON.stringify(body));
  assert.ok(body.openapi_schema.components.schemas.Input);
  return body.id;
}

before(async () => {
  server = await startTestServer();
  replicate = new Replicate({ auth: server.token, baseUrl: server.apiUrl });
});
after(async () => {
  await server.close();
  for (const cog of cogServers) await cog.close();
});

describe("Cog-protocol servers behind the API", { timeout: 60_000 }, () => {
  it("runs a prediction on a Cog server", async () => {
    await pushCog("cog-hello", HELLO_PREDICTOR);
    assert.equal(await replicate.run("local/cog-hello", { input: { text: "cog" } }), "hello cog");
  });

  it("streams an iterator's outputs and logs from a Cog server, and cancels", async () => {
    await pushCog("cog-stream", STREAM_PREDICTOR);
    const outputs: string[] = [];
    for await (const event of replicate.stream("local/cog-stream", { input: { tokens: 4, delay_ms: 30 } })) {
      if (event.event === "output") outputs.push(event.data);
    }
    assert.deepEqual(outputs, ["token-1 ", "token-2 ", "token-3 ", "token-4 "]);
    const prediction = await replicate.predictions.create({
      model: "local/cog-stream",
      input: { tokens: 500, delay_ms: 20 },
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await replicate.predictions.cancel(prediction.id);
    const done = await replicate.predictions.get(prediction.id);
    assert.equal(done.status, "canceled");
  });

  it("refuses a cog_url that does not answer", async () => {
    await replicate.models.create("local", "cog-dead", { visibility: "private", hardware: "cpu" });
    const response = await fetch(`${server.apiUrl}/replicant/models/local/cog-dead/versions`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
      body: JSON.stringify({ cog_url: "http://127.0.0.1:9" }),
    });
    assert.equal(response.status, 422);
  });
});
