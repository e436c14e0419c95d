// Every operation and helper of the SDK against a real Replicant server (from @replicant/testing).
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { OPERATIONS, type OperationId, type Prediction, type Training } from "@replicant/protocol";
import { startTestServer, type TestServer } from "@replicant/testing";
import {
  APIUserAbortError,
  AuthenticationError,
  ConflictError,
  FileOutput,
  ModelError,
  modelRef,
  NotFoundError,
  Replicant,
  UnprocessableEntityError,
  verifyWebhook,
} from "../src/index.js";

let server: TestServer;
let replicate: Replicant;
let helloVersion = "";
let trainableVersion = "";

before(async () => {
  server = await startTestServer();
  replicate = new Replicant({ auth: server.token, baseUrl: server.apiUrl, pollInterval: 20 });
  helloVersion = (await replicate.models.get("replicate", "hello-world")).latest_version!.id;
  trainableVersion = (await replicate.models.get("replicant", "hello-trainable")).latest_version!.id;
});

after(async () => {
  await server.close();
});

let counter = 0;
const unique = (prefix: string) => `${prefix}-${++counter}`;

async function createModel(name: string) {
  return replicate.models.create("local", name, { visibility: "private", hardware: "cpu" });
}

async function createDeployment(name: string) {
  return replicate.deployments.create({
    name,
    model: "replicate/hello-world",
    version: helloVersion,
    hardware: "cpu",
    min_instances: 0,
    max_instances: 1,
  });
}

async function train(destination: string): Promise<Training> {
  await createModel(destination);
  const training = await replicate.trainings.create("replicant", "hello-trainable", trainableVersion, {
    destination: `local/${destination}`,
    input: { greeting: "hey" },
  });
  return replicate.wait(training, { interval: 10 });
}

/** One SDK call per operation, each checked against the server's answer. */
const checks: Record<OperationId, () => Promise<void>> = {
  "account.get": async () => {
    assert.deepEqual(await replicate.account.get(), { type: "user", username: "local" });
    assert.equal((await replicate.accounts.current()).username, "local");
  },
  "collections.list": async () => {
    const slugs: string[] = [];
    for await (const collection of replicate.collections.list()) slugs.push(collection.slug);
    assert.ok(slugs.includes("built-in"));
  },
  "collections.get": async () => {
    const collection = await replicate.collections.get("built-in");
    assert.ok(collection.models.some((model) => model.name === "hello-world"));
    await assert.rejects(replicate.collections.get("nope"), NotFoundError);
  },
  "deployments.list": async () => {
    const name = unique("listed");
    await createDeployment(name);
    const names = (await replicate.deployments.list().toArray()).map((deployment) => deployment.name);
    assert.ok(names.includes(name));
  },
  "deployments.create": async () => {
    const deployment = await createDeployment(unique("created"));
    assert.equal(deployment.current_release.number, 1);
    assert.equal(deployment.current_release.version, helloVersion);
  },
  "deployments.delete": async () => {
    const name = unique("doomed");
    await createDeployment(name);
    assert.equal(await replicate.deployments.delete("local", name), true);
    await assert.rejects(replicate.deployments.get("local", name), NotFoundError);
  },
  "deployments.get": async () => {
    const name = unique("fetched");
    await createDeployment(name);
    assert.equal((await replicate.deployments.get("local", name)).owner, "local");
  },
  "deployments.update": async () => {
    const name = unique("updated");
    await createDeployment(name);
    const updated = await replicate.deployments.update("local", name, { min_instances: 1, max_instances: 3 });
    assert.equal(updated.current_release.number, 2);
    assert.equal(updated.current_release.configuration.max_instances, 3);
  },
  "deployments.predictions.create": async () => {
    const name = unique("runner");
    await createDeployment(name);
    const prediction = await replicate.deployments.predictions.create("local", name, {
      input: { text: "deploy" },
      wait: 10,
    });
    assert.equal(prediction.output, "hello deploy");
    assert.equal(prediction.deployment, `local/${name}`);
  },
  "files.list": async () => {
    const file = await replicate.files.create(new Blob(["listed"], { type: "text/plain" }));
    const ids: string[] = [];
    for await (const item of replicate.files.list()) ids.push(item.id);
    assert.ok(ids.includes(file.id));
  },
  "files.create": async () => {
    const file = await replicate.files.create(
      new File(["created file"], "hello.txt", { type: "text/plain" }),
      {
        k: "v",
      },
    );
    assert.equal(file.size, 12);
    assert.equal(file.content_type, "text/plain");
    assert.deepEqual((await replicate.files.get(file.id)).metadata, { k: "v" });
    const fromBuffer = await replicate.files.create(Buffer.from("buffer bytes"));
    assert.equal(fromBuffer.size, 12);
  },
  "files.delete": async () => {
    const file = await replicate.files.create(new Blob(["deleted"]));
    assert.equal(await replicate.files.delete(file.id), true);
    await assert.rejects(replicate.files.get(file.id), NotFoundError);
  },
  "files.get": async () => {
    const file = await replicate.files.create(new Blob(["got"]));
    assert.equal((await replicate.files.get(file.id)).id, file.id);
  },
  "files.download": async () => {
    const file = await replicate.files.create(new Blob(["downloaded bytes"], { type: "text/plain" }));
    assert.equal(await (await replicate.files.download(file)).text(), "downloaded bytes");
    const signed = new URL(file.urls.download!);
    const params = Object.fromEntries(signed.searchParams) as {
      owner: string;
      expiry: string;
      signature: string;
    };
    assert.equal(await (await replicate.files.download(file.id, params)).text(), "downloaded bytes");
    // Without a token the signature is what grants access: a tampered one is refused.
    const anonymous = new Replicant({ auth: "", baseUrl: server.apiUrl });
    assert.equal(await (await anonymous.files.download(file.id, params)).text(), "downloaded bytes");
    await assert.rejects(anonymous.files.download(file.id, { ...params, signature: "AAAA" }), NotFoundError);
  },
  "hardware.list": async () => {
    assert.deepEqual(await replicate.hardware.list(), [{ name: "CPU", sku: "cpu" }]);
  },
  "models.list": async () => {
    const models = await replicate.models
      .list({ sort_by: "model_created_at", sort_direction: "asc" })
      .toArray();
    assert.ok(models.length >= 4);
  },
  "models.create": async () => {
    const name = unique("created-model");
    const model = await createModel(name);
    assert.equal(model.owner, "local");
    assert.equal(model.latest_version, null);
    await assert.rejects(createModel(name), ConflictError);
    const objectForm = await replicate.models.create({
      owner: "local",
      name: unique("object-form"),
      visibility: "private",
      hardware: "cpu",
    });
    assert.equal(objectForm.visibility, "private");
  },
  "models.search": async () => {
    const page = await replicate.models.search("hello");
    assert.ok(page.results.some((model) => model.name === "hello-world"));
  },
  "models.delete": async () => {
    const name = unique("deleted-model");
    await createModel(name);
    assert.equal(await replicate.models.delete("local", name), true);
    await assert.rejects(replicate.models.get("local", name), NotFoundError);
  },
  "models.get": async () => {
    assert.equal((await replicate.models.get("replicate", "hello-world")).latest_version?.id, helloVersion);
  },
  "models.update": async () => {
    const name = unique("updated-model");
    await createModel(name);
    const updated = await replicate.models.update("local", name, { description: "new", readme: "# Hi" });
    assert.equal(updated.description, "new");
    assert.equal(await replicate.models.readme.get("local", name), "# Hi");
  },
  "models.examples.list": async () => {
    const page = await replicate.models.examples.list("replicate", "hello-world");
    assert.ok(Array.isArray(page.results));
  },
  "models.predictions.create": async () => {
    const prediction = await replicate.models.predictions.create("replicate", "hello-world", {
      input: {},
      wait: true,
    });
    assert.equal(prediction.output, "hello world");
  },
  "models.readme.get": async () => {
    assert.match(await replicate.models.readme.get("replicate", "hello-world"), /hello-world/);
  },
  "models.versions.list": async () => {
    const versions = await replicate.models.versions.list("replicate", "hello-world").toArray();
    assert.deepEqual(
      versions.map((version) => version.id),
      [helloVersion],
    );
  },
  "models.versions.delete": async () => {
    const name = unique("trained-then-deleted");
    const done = await train(name);
    const version = done.output!.version;
    assert.equal(await replicate.models.versions.delete("local", name, version), true);
    await assert.rejects(replicate.models.versions.get("local", name, version), NotFoundError);
  },
  "models.versions.get": async () => {
    const version = await replicate.models.versions.get("replicate", "hello-world", helloVersion);
    assert.equal((version.openapi_schema as { openapi: string }).openapi, "3.0.2");
  },
  "trainings.create": async () => {
    const name = unique("trained");
    const done = await train(name);
    assert.equal(done.status, "succeeded");
    const output = await replicate.run(`local/${name}:${done.output!.version}`, { input: { text: "there" } });
    assert.equal(output, "hey there");
  },
  "predictions.list": async () => {
    await replicate.run("replicate/hello-world", { input: { text: "listed" } });
    const first = await replicate.predictions.list();
    assert.ok(first.results.length > 0);
    const future = await replicate.predictions.list({ created_after: "2999-01-01T00:00:00Z" });
    assert.deepEqual(future.results, []);
  },
  "predictions.create": async () => {
    const prediction = await replicate.predictions.create({ version: helloVersion, input: { text: "v" } });
    assert.equal(prediction.version, helloVersion);
    assert.ok(["starting", "processing", "succeeded"].includes(prediction.status));
    const official = await replicate.predictions.create({
      model: "replicate/hello-world",
      input: {},
      wait: true,
    });
    assert.equal(official.output, "hello world");
  },
  "predictions.get": async () => {
    const created = await replicate.predictions.create({ version: "replicate/hello-world", input: {} });
    const done = await replicate.wait(await replicate.predictions.get(created.id));
    assert.equal(done.output, "hello world");
  },
  "predictions.cancel": async () => {
    const created = await replicate.predictions.create({
      version: "replicant/stream-test",
      input: { tokens: 100, delay_ms: 50 },
    });
    assert.equal((await replicate.predictions.cancel(created.id)).status, "canceled");
  },
  search: async () => {
    const result = await replicate.search("hello", { limit: 5 });
    assert.equal(result.query, "hello");
    assert.ok(result.models.some((entry) => entry.model.name === "hello-world"));
  },
  "trainings.list": async () => {
    const page = await replicate.trainings.list();
    assert.ok(Array.isArray(page.results));
  },
  "trainings.get": async () => {
    const name = unique("trained-get");
    await createModel(name);
    const training = await replicate.trainings.create("replicant", "hello-trainable", trainableVersion, {
      destination: `local/${name}`,
      input: { greeting: "hey" },
    });
    assert.equal((await replicate.trainings.get(training.id)).id, training.id);
  },
  "trainings.cancel": async () => {
    const name = unique("trained-cancel");
    await createModel(name);
    const training = await replicate.trainings.create("replicant", "hello-trainable", trainableVersion, {
      destination: `local/${name}`,
      input: { greeting: "hey" },
    });
    const canceled = await replicate.trainings.cancel(training.id);
    assert.ok(["canceled", "succeeded"].includes(canceled.status));
  },
  "webhooks.default.secret.get": async () => {
    assert.match((await replicate.webhooks.default.secret.get()).key, /^whsec_/);
  },
};

describe("every operation against a real server", () => {
  test("has a check for each operationId", () => {
    assert.deepEqual(Object.keys(checks).sort(), Object.keys(OPERATIONS).sort());
  });
  for (const [operationId, check] of Object.entries(checks)) {
    test(operationId, check);
  }
});

describe("helpers against a real server", () => {
  test("run(): official model, version ref, deployment, typed ModelRef, progress", async () => {
    const updates: string[] = [];
    assert.equal(await replicate.run("replicate/hello-world", { input: { text: "a" } }), "hello a");
    assert.equal(
      await replicate.run(`replicate/hello-world:${helloVersion}`, { input: { text: "b" } }),
      "hello b",
    );
    const name = unique("run-deployment");
    await createDeployment(name);
    assert.equal(await replicate.run(`deployments/local/${name}`, { input: { text: "c" } }), "hello c");
    const hello = modelRef<{ text?: string }, string>("replicate/hello-world");
    const typed: string = await replicate.run(hello, { input: { text: "d" } }, (p) => updates.push(p.status));
    assert.equal(typed, "hello d");
    assert.equal(updates.at(-1), "succeeded");
    const polled = await replicate.run("replicate/hello-world", {
      input: { text: "e" },
      wait: { mode: "poll" },
    });
    assert.equal(polled, "hello e");
  });

  test("use() returns a callable that runs, creates and streams", async () => {
    const hello = replicate.use(modelRef<{ text: string }, string>("replicate/hello-world"));
    assert.equal(await hello({ text: "use" }), "hello use");
    const streamer = replicate.use<{ tokens: number; delay_ms: number }, string[]>("replicant/stream-test");
    assert.deepEqual(await streamer({ tokens: 2, delay_ms: 1 }), ["token-1 ", "token-2 "]);
    let text = "";
    for await (const event of streamer.stream({ tokens: 3, delay_ms: 1 })) text += String(event);
    assert.equal(text, "token-1 token-2 token-3 ");
  });

  test("stream() yields tokens and logs live, and an error event throws ModelError", async () => {
    const events: string[] = [];
    for await (const event of replicate.stream("replicant/stream-test", {
      input: { tokens: 3, delay_ms: 20 },
    })) {
      events.push(event.event);
    }
    assert.equal(events.filter((event) => event === "output").length, 3);
    assert.ok(events.includes("logs"));
    assert.equal(events.at(-1), "done");
    await assert.rejects(async () => {
      for await (const _event of replicate.stream("replicant/stream-test", {
        input: { tokens: 1, delay_ms: 1, fail: true },
      })) {
        // drain
      }
    }, ModelError);
  });

  test("a stream cut mid-way reconnects with Last-Event-ID and loses nothing", async () => {
    let cut = false;
    const lastEventIds: (string | null)[] = [];
    const flaky = new Replicant({
      auth: server.token,
      baseUrl: server.apiUrl,
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        if (new Headers(init?.headers).get("accept") !== "text/event-stream") return response;
        lastEventIds.push(new Headers(init?.headers).get("last-event-id"));
        if (cut || !response.body) return response;
        cut = true;
        // Pass bytes through up to the end of the first output event, then end the body as if the
        // connection dropped.
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let text = "";
        while (!/event: output[\s\S]*?\n\n/.test(text)) {
          const { done, value } = await reader.read();
          if (done) break;
          text += decoder.decode(value, { stream: true });
        }
        await reader.cancel();
        const upToFirstOutput = text.slice(
          0,
          text.search(/event: output/) + text.slice(text.search(/event: output/)).indexOf("\n\n") + 2,
        );
        return new Response(upToFirstOutput, { status: 200, headers: response.headers });
      },
    });
    const outputs: string[] = [];
    for await (const event of flaky.stream("replicant/stream-test", { input: { tokens: 5, delay_ms: 30 } })) {
      if (event.event === "output") outputs.push(String(event));
    }
    assert.deepEqual(outputs, ["token-1 ", "token-2 ", "token-3 ", "token-4 ", "token-5 "]);
    assert.equal(lastEventIds[0], null);
    assert.equal(lastEventIds.length, 2);
    assert.ok(lastEventIds[1], "the reconnect carries Last-Event-ID");
  });

  test("FileOutput from file-echo is lazy and round-trips bytes; both file strategies work", async () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 251, 252]);
    for (const strategy of ["upload", "data-uri", "default"] as const) {
      const client = new Replicant({
        auth: server.token,
        baseUrl: server.apiUrl,
        fileEncodingStrategy: strategy,
      });
      const output = await client.run("replicant/file-echo", { input: { file: new Blob([bytes]) } });
      assert.ok(output instanceof FileOutput, strategy);
      assert.deepEqual(await output.bytes(), bytes, strategy);
      assert.equal(JSON.stringify(output), JSON.stringify(output.href));
    }
    const urls = await replicate.run("replicant/file-echo", {
      input: { file: Buffer.from("x") },
      useFileOutput: false,
    });
    assert.equal(typeof urls, "string");
  });

  test("wait(), paginate() and list iteration", async () => {
    const created = await replicate.predictions.create({
      model: "replicate/hello-world",
      input: { text: "w" },
    });
    assert.equal((await replicate.wait(created)).output, "hello w");
    let pages = 0;
    for await (const page of replicate.paginate(replicate.predictions.list)) {
      pages++;
      assert.ok(Array.isArray(page));
    }
    assert.ok(pages >= 1);
    let count = 0;
    for await (const _prediction of replicate.predictions.list()) count++;
    assert.ok(count >= 1);
  });

  test("runMany() runs a batch with limits and progress", async () => {
    let lastCompleted = 0;
    const results = await replicate.runMany<{ text: string }, string>(
      "replicate/hello-world",
      ["a", "b", "c", "d"].map((text) => ({ text })),
      { concurrency: 2, ratePerMinute: 6000, onProgress: (progress) => (lastCompleted = progress.completed) },
    );
    assert.deepEqual(
      results.map((result) => (result.status === "fulfilled" ? result.value : null)),
      ["hello a", "hello b", "hello c", "hello d"],
    );
    assert.equal(lastCompleted, 4);
  });

  test("the same Idempotency-Key and body give the same prediction, marked as replayed", async () => {
    const key = `key-${Date.now()}`;
    const first = await replicate.request("/predictions", {
      method: "POST",
      data: { version: "replicate/hello-world", input: { text: "once" } },
      idempotencyKey: key,
    });
    const second = await replicate.request("/predictions", {
      method: "POST",
      data: { version: "replicate/hello-world", input: { text: "once" } },
      idempotencyKey: key,
    });
    const firstPrediction = (await first.json()) as Prediction;
    const secondPrediction = (await second.json()) as Prediction;
    assert.equal(firstPrediction.id, secondPrediction.id);
    assert.equal(second.headers.get("idempotent-replayed"), "true");
  });

  test("cancelAfter sets a deadline; aborting run() cancels the prediction on the server", async () => {
    const withDeadline = await replicate.predictions.create({
      model: "replicate/hello-world",
      input: {},
      cancelAfter: "5m",
    });
    assert.ok(withDeadline.deadline, "the server reports the deadline");
    const controller = new AbortController();
    const seen: Prediction[] = [];
    const run = replicate.run(
      "replicant/stream-test",
      { input: { tokens: 200, delay_ms: 50 }, wait: { mode: "poll" }, signal: controller.signal },
      (prediction) => {
        seen.push(prediction);
        if (seen.length === 1) setTimeout(() => controller.abort(), 100);
      },
    );
    await assert.rejects(run, APIUserAbortError);
    const id = seen[0]!.id;
    const after = await replicate.wait(await replicate.predictions.get(id));
    assert.equal(after.status, "canceled");
  });

  test("errors: 401, 404, 422 with invalid_fields", async () => {
    const stranger = new Replicant({ auth: "r8_wrong", baseUrl: server.apiUrl });
    await assert.rejects(stranger.account.get(), AuthenticationError);
    await assert.rejects(replicate.predictions.get("doesnotexist"), NotFoundError);
    await assert.rejects(
      replicate.run("replicant/stream-test", { input: { tokens: "many" } }),
      (error: unknown) => {
        assert.ok(error instanceof UnprocessableEntityError);
        assert.ok(error.invalidFields.length > 0 || error.detail, "the problem says what was wrong");
        return true;
      },
    );
  });

  test("webhooks from the server verify with verifyWebhook and the default secret", async () => {
    const deliveries: { headers: IncomingHttpHeaders; body: string }[] = [];
    const receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        deliveries.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
        response.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    try {
      const port = (receiver.address() as AddressInfo).port;
      await replicate.run("replicate/hello-world", {
        input: { text: "hook" },
        webhook: `http://127.0.0.1:${port}/hook`,
        webhook_events_filter: ["completed"],
      });
      const deadline = Date.now() + 10_000;
      while (deliveries.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const delivery = deliveries[0];
      assert.ok(delivery, "a webhook arrived");
      const { key } = await replicate.webhooks.default.secret.get();
      const headers = Object.fromEntries(
        Object.entries(delivery.headers).filter(
          (entry): entry is [string, string] => typeof entry[1] === "string",
        ),
      );
      const payload = await verifyWebhook<Prediction>({ headers, body: delivery.body }, key);
      assert.equal(payload.output, "hello hook");
    } finally {
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });
});
