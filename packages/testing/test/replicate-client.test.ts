// The official `replicate` npm package (1.4.0), unchanged, against a real Replicant server on port 0.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import Replicate, { type Prediction, validateWebhook } from "replicate";
import { startTestServer, type TestServer } from "../src/index.js";

let server: TestServer;
let replicate: Replicate;

before(async () => {
  server = await startTestServer();
  replicate = new Replicate({ auth: server.token, baseUrl: server.apiUrl });
});
after(async () => {
  await server.close();
});

async function waitFor(prediction: Prediction): Promise<Prediction> {
  return replicate.wait(prediction, { interval: 20 });
}

describe("official replicate client: run and predictions", () => {
  it("run() an owner/name model returns its output", async () => {
    const output = await replicate.run("replicate/hello-world", { input: { text: "Alice" } });
    assert.equal(output, "hello Alice");
  });

  it("run() with owner/name:version", async () => {
    const model = await replicate.models.get("replicate", "hello-world");
    const version = model.latest_version?.id;
    assert.ok(version);
    const output = await replicate.run(`replicate/hello-world:${version}`, { input: { text: "Bob" } });
    assert.equal(output, "hello Bob");
  });

  it("run() in poll mode with a progress callback", async () => {
    const seen: string[] = [];
    const output = await replicate.run(
      "replicant/stream-test",
      { input: { tokens: 3, delay_ms: 5 }, wait: { mode: "poll", interval: 20 } },
      (prediction) => seen.push(prediction.status),
    );
    assert.deepEqual(output, ["token-1 ", "token-2 ", "token-3 "]);
    assert.equal(seen.at(-1), "succeeded");
  });

  it("predictions create, get, list and wait", async () => {
    const created = await replicate.predictions.create({
      model: "replicate/hello-world",
      input: { text: "list" },
    });
    assert.equal(created.status, "starting");
    assert.match(created.id, /^[a-z0-9]{26}$/);
    assert.ok(created.urls.get.endsWith(`/v1/predictions/${created.id}`));
    const done = await waitFor(created);
    assert.equal(done.status, "succeeded");
    assert.equal(done.output, "hello list");
    assert.equal(typeof done.metrics?.predict_time, "number");
    const got = await replicate.predictions.get(created.id);
    assert.equal(got.id, created.id);
    const page = await replicate.predictions.list();
    assert.ok(page.results.some((p) => p.id === created.id));
  });

  it("predictions.create with wait returns the finished prediction", async () => {
    const model = await replicate.models.get("replicate", "hello-world");
    const prediction = await replicate.predictions.create({
      version: model.latest_version!.id,
      input: { text: "sync" },
      wait: 10,
    });
    assert.equal(prediction.status, "succeeded");
    assert.equal(prediction.output, "hello sync");
  });

  it("paginates past 100 predictions, newest first, with no duplicates", async () => {
    const fresh = await startTestServer();
    try {
      const client = new Replicate({ auth: fresh.token, baseUrl: fresh.apiUrl });
      const created: string[] = [];
      for (let i = 0; i < 105; i++) {
        const p = await client.predictions.create({
          model: "replicate/hello-world",
          input: { text: String(i) },
        });
        created.push(p.id);
      }
      const ids: string[] = [];
      let pages = 0;
      for await (const page of client.paginate(() => client.predictions.list())) {
        pages++;
        ids.push(...page.map((p) => p.id));
      }
      assert.equal(pages, 2);
      assert.equal(ids.length, 105);
      assert.equal(new Set(ids).size, 105);
      assert.deepEqual(ids, [...created].reverse());
    } finally {
      await fresh.close();
    }
  });

  it("cancels a running prediction", async () => {
    const prediction = await replicate.predictions.create({
      model: "replicant/stream-test",
      input: { tokens: 1000, delay_ms: 20 },
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const canceled = await replicate.predictions.cancel(prediction.id);
    assert.equal(canceled.status, "canceled");
    const later = await replicate.predictions.get(prediction.id);
    assert.equal(later.status, "canceled");
    assert.ok(later.completed_at);
  });

  it("a failed prediction rejects run() and keeps its error and logs", async () => {
    await assert.rejects(
      replicate.run("replicant/stream-test", { input: { tokens: 2, delay_ms: 1, fail: true } }),
      /stream-test failed as requested/,
    );
    const prediction = await replicate.predictions.create({
      model: "replicant/stream-test",
      input: { tokens: 2, delay_ms: 1, fail: true },
      wait: 10,
    });
    const done = await replicate.predictions.get(prediction.id);
    assert.equal(done.status, "failed");
    assert.equal(done.error, "stream-test failed as requested");
    assert.match(done.logs ?? "", /emitting token 2/);
  });

  it("422 on invalid input, with Replicate's problem body", async () => {
    await assert.rejects(
      replicate.predictions.create({ model: "replicant/stream-test", input: { tokens: "many" } }),
      (error: Error & { response?: Response }) => {
        assert.equal(error.response?.status, 422);
        assert.match(error.message, /Input validation failed/);
        assert.match(error.message, /input\.tokens/);
        return true;
      },
    );
  });

  it("404 for an unknown model and an unknown prediction", async () => {
    await assert.rejects(
      replicate.models.get("nobody", "nothing"),
      (error: Error & { response?: Response }) => {
        assert.equal(error.response?.status, 404);
        return true;
      },
    );
    await assert.rejects(
      replicate.predictions.get("doesnotexist"),
      (error: Error & { response?: Response }) => {
        assert.equal(error.response?.status, 404);
        return true;
      },
    );
  });
});

describe("official replicate client: streaming", () => {
  it("stream() yields output events and ends with done", async () => {
    const events: { event: string; data: string }[] = [];
    for await (const event of replicate.stream("replicant/stream-test", {
      input: { tokens: 4, delay_ms: 10 },
    })) {
      events.push({ event: event.event, data: event.data });
    }
    const output = events.filter((e) => e.event === "output").map((e) => e.data);
    assert.deepEqual(output, ["token-1 ", "token-2 ", "token-3 ", "token-4 "]);
    assert.equal(events.at(-1)?.event, "done");
  });

  it("stream() of a failing prediction throws its error", async () => {
    await assert.rejects(async () => {
      for await (const _ of replicate.stream("replicant/stream-test", {
        input: { tokens: 2, delay_ms: 1, fail: true },
      })) {
        // drain
      }
    }, /stream-test failed as requested/);
  });
});

describe("official replicate client: files", () => {
  it("files create, get, list and delete", async () => {
    const file = await replicate.files.create(new Blob(["hello file"], { type: "text/plain" }), {
      purpose: "test",
    });
    assert.equal(file.size, 10);
    assert.equal(file.content_type, "text/plain");
    assert.deepEqual(file.metadata, { purpose: "test" });
    assert.match(file.checksums.sha256, /^[0-9a-f]{64}$/);
    const got = await replicate.files.get(file.id);
    assert.equal(got.id, file.id);
    const page = await replicate.files.list();
    assert.ok(page.results.some((f) => f.id === file.id));
    assert.equal(await replicate.files.delete(file.id), true);
    await assert.rejects(replicate.files.get(file.id), (error: Error & { response?: Response }) => {
      assert.equal(error.response?.status, 404);
      return true;
    });
  });

  it("a Blob input is uploaded and comes back as a FileOutput with the same bytes", async () => {
    const bytes = new Uint8Array(4096).map((_, i) => i % 251);
    const output = (await replicate.run("replicant/file-echo", {
      input: { file: new Blob([bytes], { type: "application/octet-stream" }) },
    })) as { blob(): Promise<Blob>; url(): URL };
    assert.equal(typeof output.blob, "function");
    const back = new Uint8Array(await (await output.blob()).arrayBuffer());
    assert.deepEqual(back, bytes);
  });

  it("a data-URI input string comes back as the same bytes", async () => {
    // (replicate 1.4.0's fileEncodingStrategy "data-uri" passes its arguments in the wrong order, so
    // the data URI is given directly.)
    const input = `data:text/plain;base64,${Buffer.from("data uri bytes").toString("base64")}`;
    const output = (await replicate.run("replicant/file-echo", { input: { file: input } })) as {
      blob(): Promise<Blob>;
    };
    assert.equal(await (await output.blob()).text(), "data uri bytes");
  });
});

describe("official replicate client: models, versions, collections, search, hardware, account", () => {
  it("models create and versions list", async () => {
    const account = await replicate.accounts.current();
    const model = await replicate.models.create(account.username, "my-model", {
      visibility: "private",
      hardware: "cpu",
      description: "A test model",
    });
    assert.equal(model.owner, account.username);
    assert.equal(model.visibility, "private");
    assert.equal(model.latest_version, null);
    const versions = await replicate.models.versions.list(account.username, "my-model");
    assert.deepEqual(versions.results, []);
    const builtinVersions = await replicate.models.versions.list("replicate", "hello-world");
    assert.equal(builtinVersions.results.length, 1);
    const version = await replicate.models.versions.get(
      "replicate",
      "hello-world",
      builtinVersions.results[0]!.id,
    );
    assert.ok(version.openapi_schema);
  });

  it("models list and search", async () => {
    const page = await replicate.models.list();
    const names = page.results.map((m) => `${m.owner}/${m.name}`);
    assert.ok(names.includes("replicate/hello-world"));
    const found = await replicate.models.search("stream");
    assert.ok(found.results.some((m) => m.name === "stream-test"));
  });

  it("collections list and get", async () => {
    const page = await replicate.collections.list();
    assert.ok(page.results.some((c) => c.slug === "built-in"));
    const collection = await replicate.collections.get("built-in");
    assert.ok(collection.models?.some((m) => m.name === "hello-world"));
  });

  it("hardware and account", async () => {
    const hardware = await replicate.hardware.list();
    assert.ok(hardware.some((h) => h.sku === "cpu"));
    const account = await replicate.accounts.current();
    assert.equal(account.username, "local");
    assert.equal(account.type, "user");
  });
});

describe("official replicate client: deployments", () => {
  it("create, get, list, update, predict and delete", async () => {
    const account = await replicate.accounts.current();
    const model = await replicate.models.get("replicate", "hello-world");
    const deployment = await replicate.deployments.create({
      name: "greeter",
      model: "replicate/hello-world",
      version: model.latest_version!.id,
      hardware: "cpu",
      min_instances: 0,
      max_instances: 1,
    });
    assert.equal(deployment.owner, account.username);
    assert.equal(deployment.current_release.number, 1);
    const got = await replicate.deployments.get(account.username, "greeter");
    assert.equal(got.name, "greeter");
    const list = await replicate.deployments.list();
    assert.ok(list.results.some((d) => d.name === "greeter"));
    const updated = await replicate.deployments.update(account.username, "greeter", { max_instances: 2 });
    assert.equal(updated.current_release.number, 2);
    assert.equal(updated.current_release.configuration.max_instances, 2);
    const prediction = await replicate.deployments.predictions.create(account.username, "greeter", {
      input: { text: "deployment" },
      wait: 10,
    });
    assert.equal(prediction.output, "hello deployment");
    const viaRun = await replicate
      .run(`${account.username}/greeter` as `${string}/${string}`, {
        input: { text: "x" },
      })
      .catch(() => "not a model");
    assert.equal(viaRun, "not a model");
    assert.equal(await replicate.deployments.delete(account.username, "greeter"), true);
    await assert.rejects(replicate.deployments.get(account.username, "greeter"));
  });
});

describe("official replicate client: trainings", () => {
  it("a training creates a new version of the destination that then runs", async () => {
    const account = await replicate.accounts.current();
    await replicate.models.create(account.username, "greeter-trained", {
      visibility: "private",
      hardware: "cpu",
    });
    const base = await replicate.models.get("replicant", "hello-trainable");
    const training = await replicate.trainings.create(
      "replicant",
      "hello-trainable",
      base.latest_version!.id,
      {
        destination: `${account.username}/greeter-trained`,
        input: { greeting: "bonjour" },
      },
    );
    assert.equal(training.status, "starting");
    let done = training;
    while (done.status === "starting" || done.status === "processing") {
      await new Promise((resolve) => setTimeout(resolve, 20));
      done = await replicate.trainings.get(training.id);
    }
    assert.equal(done.status, "succeeded");
    const output = done.output as { version: string; weights: string };
    assert.match(output.version, /^[0-9a-f]{64}$/);
    const list = await replicate.trainings.list();
    assert.ok(list.results.some((t) => t.id === training.id));
    const result = await replicate.run(
      `${account.username}/greeter-trained:${output.version}` as `${string}/${string}:${string}`,
      {
        input: { text: "monde" },
      },
    );
    assert.equal(result, "bonjour monde");
  });

  it("a training can be canceled", async () => {
    const account = await replicate.accounts.current();
    const base = await replicate.models.get("replicant", "hello-trainable");
    await replicate.models.create(account.username, "cancel-target", {
      visibility: "private",
      hardware: "cpu",
    });
    const training = await replicate.trainings.create(
      "replicant",
      "hello-trainable",
      base.latest_version!.id,
      {
        destination: `${account.username}/cancel-target`,
        input: { greeting: "hi" },
      },
    );
    const canceled = await replicate.trainings.cancel(training.id);
    assert.ok(["canceled", "succeeded"].includes(canceled.status));
  });
});

describe("official replicate client: webhooks", () => {
  let receiver: Server;
  const received: { headers: IncomingMessage["headers"]; body: string }[] = [];
  let receiverUrl = "";

  before(async () => {
    receiver = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => {
        body += chunk.toString("utf8");
      });
      request.on("end", () => {
        received.push({ headers: request.headers, body });
        response.writeHead(200).end();
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  });
  after(() => {
    receiver.close();
  });

  it("delivers signed webhooks that validateWebhook accepts", async () => {
    const { key } = await replicate.webhooks.default.secret.get();
    assert.match(key, /^whsec_/);
    const prediction = await replicate.predictions.create({
      model: "replicate/hello-world",
      input: { text: "hook" },
      webhook: receiverUrl,
      webhook_events_filter: ["start", "completed"],
    });
    const deadline = Date.now() + 10_000;
    const mine = () => received.filter((r) => JSON.parse(r.body).id === prediction.id);
    while (mine().length < 2 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    const deliveries = mine();
    assert.equal(deliveries.length, 2);
    const statuses = deliveries.map((d) => JSON.parse(d.body).status as string);
    assert.ok(statuses.includes("succeeded"));
    for (const delivery of deliveries) {
      const valid = await validateWebhook({
        id: String(delivery.headers["webhook-id"]),
        timestamp: String(delivery.headers["webhook-timestamp"]),
        signature: String(delivery.headers["webhook-signature"]),
        body: delivery.body,
        secret: key,
      });
      assert.equal(valid, true);
      const request = new Request(receiverUrl, {
        method: "POST",
        headers: {
          "webhook-id": String(delivery.headers["webhook-id"]),
          "webhook-timestamp": String(delivery.headers["webhook-timestamp"]),
          "webhook-signature": String(delivery.headers["webhook-signature"]),
        },
        body: delivery.body,
      });
      assert.equal(await validateWebhook(request, key), true);
      assert.equal(
        await validateWebhook({
          id: String(delivery.headers["webhook-id"]),
          timestamp: String(delivery.headers["webhook-timestamp"]),
          signature: String(delivery.headers["webhook-signature"]),
          body: `${delivery.body} `,
          secret: key,
        }),
        false,
      );
    }
  });
});
