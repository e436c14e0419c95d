import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { OPERATIONS, type OperationId } from "@replicant/protocol";
import { Replicant } from "../src/index.js";
import { BASE_URL, fakeFetch, json, prediction } from "./helpers/fake-fetch.js";

/** One SDK call per operation of Replicate's OpenAPI document. A new operation without an entry fails the build. */
export const OPERATION_CALLS: Record<OperationId, (replicate: Replicant) => Promise<unknown>> = {
  "account.get": (r) => r.account.get(),
  "collections.list": (r) => r.collections.list(),
  "collections.get": (r) => r.collections.get("super-resolution"),
  "deployments.list": (r) => r.deployments.list(),
  "deployments.create": (r) =>
    r.deployments.create({
      name: "d",
      model: "me/m",
      version: "v",
      hardware: "cpu",
      min_instances: 0,
      max_instances: 1,
    }),
  "deployments.delete": (r) => r.deployments.delete("me", "d"),
  "deployments.get": (r) => r.deployments.get("me", "d"),
  "deployments.update": (r) => r.deployments.update("me", "d", { max_instances: 2 }),
  "deployments.predictions.create": (r) =>
    r.deployments.predictions.create("me", "d", { input: { text: "x" } }),
  "files.list": (r) => r.files.list(),
  "files.create": (r) => r.files.create(new Blob(["hello"], { type: "text/plain" }), { purpose: "test" }),
  "files.delete": (r) => r.files.delete("f1"),
  "files.get": (r) => r.files.get("f1"),
  "files.download": (r) => r.files.download("f1", { owner: "me", expiry: 1, signature: "s" }),
  "hardware.list": (r) => r.hardware.list(),
  "models.list": (r) => r.models.list(),
  "models.create": (r) => r.models.create("me", "m", { visibility: "private", hardware: "cpu" }),
  "models.search": (r) => r.models.search("hello"),
  "models.delete": (r) => r.models.delete("me", "m"),
  "models.get": (r) => r.models.get("replicate", "hello-world"),
  "models.update": (r) => r.models.update("me", "m", { description: "new" }),
  "models.examples.list": (r) => r.models.examples.list("replicate", "hello-world"),
  "models.predictions.create": (r) =>
    r.models.predictions.create("replicate", "hello-world", { input: { text: "x" } }),
  "models.readme.get": (r) => r.models.readme.get("replicate", "hello-world"),
  "models.versions.list": (r) => r.models.versions.list("replicate", "hello-world"),
  "models.versions.delete": (r) => r.models.versions.delete("me", "m", "v1"),
  "models.versions.get": (r) => r.models.versions.get("replicate", "hello-world", "v1"),
  "trainings.create": (r) => r.trainings.create("me", "m", "v1", { destination: "me/out", input: {} }),
  "predictions.list": (r) => r.predictions.list(),
  "predictions.create": (r) => r.predictions.create({ version: "v1", input: { text: "x" } }),
  "predictions.get": (r) => r.predictions.get("p1"),
  "predictions.cancel": (r) => r.predictions.cancel("p1"),
  search: (r) => r.search("upscaler", { limit: 3 }),
  "trainings.list": (r) => r.trainings.list(),
  "trainings.get": (r) => r.trainings.get("t1"),
  "trainings.cancel": (r) => r.trainings.cancel("t1"),
  "webhooks.default.secret.get": (r) => r.webhooks.default.secret.get(),
};

function matchesTemplate(pathname: string, template: string): boolean {
  const pattern = template.replace(/\{[^}]+\}/g, "[^/]+");
  return new RegExp(`^/v1${pattern}$`).test(pathname);
}

describe("operations", () => {
  test("every operation in OPERATIONS has an SDK method that sends its method and path", async () => {
    const operationIds = Object.keys(OPERATIONS) as OperationId[];
    assert.equal(operationIds.length, 37);
    for (const operationId of operationIds) {
      const call = OPERATION_CALLS[operationId];
      assert.equal(typeof call, "function", `no SDK call for ${operationId}`);
      const { fetch, requests } = fakeFetch((request) => {
        if (request.method === "DELETE") return new Response(null, { status: 204 });
        if (request.url.includes("/readme"))
          return new Response("# readme", { headers: { "Content-Type": "text/plain" } });
        return json({ ...prediction(), next: null, previous: null, results: [], key: "whsec_x" });
      });
      const replicate = new Replicant({ auth: "r8_test", baseUrl: BASE_URL, fetch });
      await call(replicate);
      const expected = OPERATIONS[operationId];
      assert.equal(requests.length, 1, `${operationId} sent ${requests.length} requests`);
      const request = requests[0]!;
      assert.equal(request.method, expected.method, operationId);
      const pathname = new URL(request.url).pathname;
      assert.ok(matchesTemplate(pathname, expected.path), `${operationId}: ${pathname} vs ${expected.path}`);
    }
  });

  test("list methods are async-iterable across pages, and paginate() yields pages", async () => {
    const { fetch } = fakeFetch((request) => {
      const cursor = new URL(request.url).searchParams.get("cursor");
      if (!cursor)
        return json({
          next: `${BASE_URL}/predictions?cursor=2`,
          previous: null,
          results: [prediction({ id: "a" })],
        });
      return json({
        next: null,
        previous: null,
        results: [prediction({ id: "b" }), prediction({ id: "c" })],
      });
    });
    const replicate = new Replicant({ auth: "r8_test", baseUrl: BASE_URL, fetch });
    const ids: string[] = [];
    for await (const item of replicate.predictions.list()) ids.push(item.id);
    assert.deepEqual(ids, ["a", "b", "c"]);
    const first = await replicate.predictions.list();
    assert.equal(first.results.length, 1);
    const pages: number[] = [];
    for await (const page of replicate.paginate(replicate.predictions.list)) pages.push(page.length);
    assert.deepEqual(pages, [1, 2]);
    assert.deepEqual(
      (await replicate.predictions.list().toArray(2)).map((item) => item.id),
      ["a", "b"],
    );
  });

  test("predictions.list sends its filters; models.search sends QUERY with a text body", async () => {
    const { fetch, requests } = fakeFetch(() => json({ next: null, previous: null, results: [] }));
    const replicate = new Replicant({ auth: "r8_test", baseUrl: BASE_URL, fetch });
    await replicate.predictions.list({ created_after: "2025-01-01T00:00:00Z", source: "web" });
    await replicate.models.search("flux");
    const listUrl = new URL(requests[0]!.url);
    assert.equal(listUrl.searchParams.get("created_after"), "2025-01-01T00:00:00Z");
    assert.equal(listUrl.searchParams.get("source"), "web");
    assert.equal(requests[1]!.method, "QUERY");
    assert.equal(requests[1]!.body, "flux");
    assert.equal(requests[1]!.headers.get("content-type"), "text/plain");
  });

  test("run() routes owner/name, owner/name:version, version ids and deployments", async () => {
    const { fetch, requests } = fakeFetch(() =>
      json(prediction({ status: "succeeded", output: "ok" }), { status: 201 }),
    );
    const replicate = new Replicant({ auth: "r8_test", baseUrl: BASE_URL, fetch });
    const version = "a".repeat(64);
    await replicate.run("replicate/hello-world", { input: {} });
    await replicate.run(`replicate/hello-world:${version}`, { input: {} });
    await replicate.run(version, { input: {} });
    await replicate.run("deployments/acme/app", { input: {} });
    await replicate.run({ deployment: "acme/app" }, { input: {} });
    const paths = requests.map((request) => new URL(request.url).pathname);
    assert.deepEqual(paths, [
      "/v1/models/replicate/hello-world/predictions",
      "/v1/predictions",
      "/v1/predictions",
      "/v1/deployments/acme/app/predictions",
      "/v1/deployments/acme/app/predictions",
    ]);
    assert.equal(JSON.parse(requests[1]!.body ?? "").version, version);
    assert.equal(requests[0]!.headers.get("prefer"), "wait");
  });
});
