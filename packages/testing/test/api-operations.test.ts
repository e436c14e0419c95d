// One check per operationId of Replicate's OpenAPI document, over raw HTTP against a real server.
// The table of checks must name every operation: a missing one fails the first test.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { OPERATIONS, type OperationId } from "@replicant/protocol";
import { startTestServer, type TestServer } from "../src/index.js";

let server: TestServer;
let helloVersion = "";

async function api(
  method: string,
  path: string,
  init: { body?: unknown; headers?: Record<string, string>; raw?: BodyInit } = {},
) {
  const headers: Record<string, string> = { authorization: `Bearer ${server.token}`, ...init.headers };
  let body: BodyInit | undefined = init.raw;
  if (init.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(init.body);
  }
  const response = await fetch(`${server.apiUrl}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const text = await response.text();
  const type = response.headers.get("content-type") ?? "";
  const json = type.includes("json") && text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  return { status: response.status, json, text, headers: response.headers };
}

function expectPage(json: Record<string, unknown> | undefined): unknown[] {
  assert.ok(json);
  assert.ok("next" in json && "previous" in json);
  assert.ok(Array.isArray(json.results));
  return json.results as unknown[];
}

async function createModel(name: string, visibility = "private") {
  const res = await api("POST", "/models", { body: { owner: "local", name, visibility, hardware: "cpu" } });
  assert.equal(res.status, 201, res.text);
  return res.json!;
}

async function createDeployment(name: string) {
  const res = await api("POST", "/deployments", {
    body: {
      name,
      model: "replicate/hello-world",
      version: helloVersion,
      hardware: "cpu",
      min_instances: 0,
      max_instances: 1,
    },
  });
  assert.equal(res.status, 200, res.text);
  return res.json!;
}

async function uploadFile(text: string) {
  const form = new FormData();
  form.append("content", new Blob([text], { type: "text/plain" }), "hello.txt");
  form.append("metadata", new Blob([JSON.stringify({ k: "v" })], { type: "application/json" }));
  const res = await api("POST", "/files", { raw: form });
  assert.equal(res.status, 201, res.text);
  return res.json as { id: string; urls: { get: string; download: string }; size: number };
}

const checks: Record<OperationId, () => Promise<void>> = {
  "account.get": async () => {
    const res = await api("GET", "/account");
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { type: "user", username: "local" });
  },
  "collections.list": async () => {
    const res = await api("GET", "/collections");
    assert.equal(res.status, 200);
    assert.ok(expectPage(res.json).some((c) => (c as { slug: string }).slug === "built-in"));
  },
  "collections.get": async () => {
    const res = await api("GET", "/collections/built-in");
    assert.equal(res.status, 200);
    assert.ok((res.json!.models as unknown[]).length >= 4);
    assert.equal((await api("GET", "/collections/nope")).status, 404);
  },
  "deployments.list": async () => {
    await createDeployment("listed");
    const res = await api("GET", "/deployments");
    assert.equal(res.status, 200);
    assert.ok(expectPage(res.json).some((d) => (d as { name: string }).name === "listed"));
  },
  "deployments.create": async () => {
    const json = await createDeployment("created");
    const release = json.current_release as Record<string, unknown>;
    assert.equal(release.number, 1);
    assert.equal(release.version, helloVersion);
    assert.deepEqual(release.configuration, { hardware: "cpu", min_instances: 0, max_instances: 1 });
  },
  "deployments.delete": async () => {
    await createDeployment("doomed");
    assert.equal((await api("DELETE", "/deployments/local/doomed")).status, 204);
    assert.equal((await api("GET", "/deployments/local/doomed")).status, 404);
  },
  "deployments.get": async () => {
    await createDeployment("fetched");
    const res = await api("GET", "/deployments/local/fetched");
    assert.equal(res.status, 200);
    assert.equal(res.json!.owner, "local");
  },
  "deployments.update": async () => {
    await createDeployment("updated");
    const res = await api("PATCH", "/deployments/local/updated", {
      body: { min_instances: 1, max_instances: 3 },
    });
    assert.equal(res.status, 200, res.text);
    const release = res.json!.current_release as { number: number; configuration: { max_instances: number } };
    assert.equal(release.number, 2);
    assert.equal(release.configuration.max_instances, 3);
  },
  "deployments.predictions.create": async () => {
    await createDeployment("runner");
    const res = await api("POST", "/deployments/local/runner/predictions", {
      body: { input: { text: "deploy" } },
      headers: { prefer: "wait=10" },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json!.output, "hello deploy");
    assert.equal(res.json!.deployment, "local/runner");
  },
  "files.list": async () => {
    const file = await uploadFile("listed");
    const res = await api("GET", "/files");
    assert.ok(expectPage(res.json).some((f) => (f as { id: string }).id === file.id));
  },
  "files.create": async () => {
    const file = await uploadFile("created file");
    assert.equal(file.size, 12);
    const res = await api("GET", `/files/${file.id}`);
    assert.deepEqual(res.json!.metadata, { k: "v" });
    assert.equal(res.json!.content_type, "text/plain");
  },
  "files.delete": async () => {
    const file = await uploadFile("deleted");
    assert.equal((await api("DELETE", `/files/${file.id}`)).status, 204);
    assert.equal((await api("GET", `/files/${file.id}`)).status, 404);
  },
  "files.get": async () => {
    const file = await uploadFile("got");
    const res = await api("GET", `/files/${file.id}`);
    assert.equal(res.status, 200);
    assert.equal(res.json!.id, file.id);
  },
  "files.download": async () => {
    const file = await uploadFile("downloaded bytes");
    // Signed URL, no token: the bytes.
    const signed = await fetch(file.urls.download);
    assert.equal(signed.status, 200);
    assert.equal(await signed.text(), "downloaded bytes");
    // Tampered, wrong-length and expired signatures: 404, never 500.
    const url = new URL(file.urls.download);
    for (const mutate of [
      (u: URL) => u.searchParams.set("signature", "AAAA"),
      (u: URL) => u.searchParams.set("signature", `${u.searchParams.get("signature")!.slice(0, -4)}AAA=`),
      (u: URL) => u.searchParams.set("expiry", "1000"),
      (u: URL) => u.searchParams.set("owner", "someone-else"),
    ]) {
      const bad = new URL(url);
      mutate(bad);
      assert.equal((await fetch(bad)).status, 404);
    }
  },
  "hardware.list": async () => {
    const res = await api("GET", "/hardware");
    assert.deepEqual(res.json, [{ name: "CPU", sku: "cpu" }]);
  },
  "models.list": async () => {
    const res = await api("GET", "/models?sort_by=model_created_at&sort_direction=asc");
    assert.equal(res.status, 200);
    assert.ok(expectPage(res.json).length >= 4);
    assert.equal((await api("GET", "/models?sort_by=bogus")).status, 400);
  },
  "models.create": async () => {
    const json = await createModel("created-model");
    assert.equal(json.owner, "local");
    assert.equal(json.run_count, 0);
    assert.equal(json.latest_version, null);
    const duplicate = await api("POST", "/models", {
      body: { owner: "local", name: "created-model", visibility: "private", hardware: "cpu" },
    });
    assert.equal(duplicate.status, 409);
  },
  "models.search": async () => {
    const res = await api("QUERY", "/models", { raw: "hello", headers: { "content-type": "text/plain" } });
    assert.equal(res.status, 200, res.text);
    assert.ok(expectPage(res.json).some((m) => (m as { name: string }).name === "hello-world"));
  },
  "models.delete": async () => {
    await createModel("deleted-model");
    assert.equal((await api("DELETE", "/models/local/deleted-model")).status, 204);
    assert.equal((await api("GET", "/models/local/deleted-model")).status, 404);
  },
  "models.get": async () => {
    const res = await api("GET", "/models/replicate/hello-world");
    assert.equal(res.status, 200);
    assert.equal((res.json!.latest_version as { id: string }).id, helloVersion);
  },
  "models.update": async () => {
    await createModel("updated-model");
    const res = await api("PATCH", "/models/local/updated-model", {
      body: { description: "new", readme: "# Hi" },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json!.description, "new");
    assert.equal((await api("GET", "/models/local/updated-model/readme")).text, "# Hi");
  },
  "models.examples.list": async () => {
    const res = await api("GET", "/models/replicate/hello-world/examples");
    assert.equal(res.status, 200);
    expectPage(res.json);
  },
  "models.predictions.create": async () => {
    const res = await api("POST", "/models/replicate/hello-world/predictions", {
      body: { input: {} },
      headers: { prefer: "wait" },
    });
    assert.equal(res.status, 201);
    assert.equal(res.json!.output, "hello world");
    assert.equal(res.headers.get("location"), (res.json!.urls as { get: string }).get);
  },
  "models.readme.get": async () => {
    const res = await api("GET", "/models/replicate/hello-world/readme");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
    assert.match(res.text, /hello-world/);
  },
  "models.versions.list": async () => {
    const res = await api("GET", "/models/replicate/hello-world/versions");
    assert.equal(expectPage(res.json).length, 1);
  },
  "models.versions.delete": async () => {
    await createModel("trained-then-deleted");
    const training = await api(
      "POST",
      "/models/replicant/hello-trainable/versions/" + trainableVersion + "/trainings",
      {
        body: { destination: "local/trained-then-deleted", input: { greeting: "yo" } },
      },
    );
    assert.equal(training.status, 201, training.text);
    const done = await waitForTraining(training.json!.id as string);
    const version = (done.output as { version: string }).version;
    assert.equal((await api("DELETE", `/models/local/trained-then-deleted/versions/${version}`)).status, 202);
    assert.equal((await api("GET", `/models/local/trained-then-deleted/versions/${version}`)).status, 404);
  },
  "models.versions.get": async () => {
    const res = await api("GET", `/models/replicate/hello-world/versions/${helloVersion}`);
    assert.equal(res.status, 200);
    assert.equal(res.json!.id, helloVersion);
    assert.equal((res.json!.openapi_schema as { openapi: string }).openapi, "3.0.2");
  },
  "trainings.create": async () => {
    await createModel("trained");
    const res = await api(
      "POST",
      `/models/replicant/hello-trainable/versions/${trainableVersion}/trainings`,
      {
        body: { destination: "local/trained", input: { greeting: "hey" } },
      },
    );
    assert.equal(res.status, 201, res.text);
    const done = await waitForTraining(res.json!.id as string);
    assert.equal(done.status, "succeeded");
  },
  "predictions.list": async () => {
    const res = await api("GET", "/predictions");
    expectPage(res.json);
    const future = await api(
      "GET",
      `/predictions?created_after=${encodeURIComponent("2999-01-01T00:00:00Z")}`,
    );
    assert.deepEqual(expectPage(future.json), []);
  },
  "predictions.create": async () => {
    const res = await api("POST", "/predictions", { body: { version: helloVersion, input: { text: "v" } } });
    assert.equal(res.status, 201);
    assert.equal(res.json!.status, "starting");
    assert.equal(res.json!.version, helloVersion);
  },
  "predictions.get": async () => {
    const created = await api("POST", "/predictions", {
      body: { version: "replicate/hello-world", input: {} },
    });
    const res = await api("GET", `/predictions/${created.json!.id as string}?wait=10`);
    assert.equal(res.status, 200);
    assert.equal(res.json!.status, "succeeded");
  },
  "predictions.cancel": async () => {
    const created = await api("POST", "/predictions", {
      body: { version: "replicant/stream-test", input: { tokens: 100, delay_ms: 50 } },
    });
    const res = await api("POST", `/predictions/${created.json!.id as string}/cancel`);
    assert.equal(res.status, 200);
    assert.equal(res.json!.status, "canceled");
  },
  search: async () => {
    const response = await fetch(`${server.apiUrl}/search?query=hello&limit=5`);
    assert.equal(response.status, 200);
    const json = (await response.json()) as {
      query: string;
      models: { model: { name: string } }[];
      collections: unknown[];
      pages: unknown[];
    };
    assert.equal(json.query, "hello");
    assert.ok(json.models.some((m) => m.model.name === "hello-world"));
    assert.ok(Array.isArray(json.collections) && Array.isArray(json.pages));
    assert.equal((await fetch(`${server.apiUrl}/search`)).status, 400);
  },
  "trainings.list": async () => {
    const res = await api("GET", "/trainings");
    expectPage(res.json);
  },
  "trainings.get": async () => {
    await createModel("trained-get");
    const res = await api(
      "POST",
      `/models/replicant/hello-trainable/versions/${trainableVersion}/trainings`,
      {
        body: { destination: "local/trained-get", input: { greeting: "hey" } },
      },
    );
    const got = await api("GET", `/trainings/${res.json!.id as string}`);
    assert.equal(got.status, 200);
    assert.equal(got.json!.id, res.json!.id);
  },
  "trainings.cancel": async () => {
    await createModel("trained-cancel");
    const res = await api(
      "POST",
      `/models/replicant/hello-trainable/versions/${trainableVersion}/trainings`,
      {
        body: { destination: "local/trained-cancel", input: { greeting: "hey" } },
      },
    );
    const canceled = await api("POST", `/trainings/${res.json!.id as string}/cancel`);
    assert.equal(canceled.status, 200);
    assert.ok(["canceled", "succeeded"].includes(canceled.json!.status as string));
  },
  "webhooks.default.secret.get": async () => {
    const res = await api("GET", "/webhooks/default/secret");
    assert.match(res.json!.key as string, /^whsec_[A-Za-z0-9+/=]+$/);
  },
};

let trainableVersion = "";

async function waitForTraining(id: string): Promise<Record<string, unknown>> {
  for (;;) {
    const res = await api("GET", `/trainings/${id}`);
    const status = res.json!.status as string;
    if (!["starting", "processing"].includes(status)) return res.json!;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

before(async () => {
  server = await startTestServer();
  helloVersion = ((await api("GET", "/models/replicate/hello-world")).json!.latest_version as { id: string })
    .id;
  trainableVersion = (
    (await api("GET", "/models/replicant/hello-trainable")).json!.latest_version as { id: string }
  ).id;
});
after(async () => {
  await server.close();
});

describe("every operation of the OpenAPI document", () => {
  it("has a check for each operationId", () => {
    assert.deepEqual(Object.keys(checks).sort(), Object.keys(OPERATIONS).sort());
  });
  for (const [operationId, check] of Object.entries(checks)) {
    const { method, path } = OPERATIONS[operationId as OperationId];
    it(`${operationId} (${method} ${path})`, check);
  }
});
