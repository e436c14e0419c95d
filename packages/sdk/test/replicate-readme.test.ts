// The usage examples of the `replicate` package's README (v1.4.0), with only the import swapped, run against a
// real Replicant server. Model names are swapped for the server's built-in models (hello-world, file-echo,
// stream-test, hello-trainable), and TypeScript needs a cast where the README's JavaScript destructures
// `run()`'s output; the calls themselves are the README's.
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startTestServer, type TestServer } from "@replicant/testing";
// was: import Replicate, { type Prediction, validateWebhook } from "replicate";
import Replicate, { type FileOutput, type Prediction, validateWebhook } from "../src/index.js";

let server: TestServer;
let replicate: Replicate;
let helloVersion: string;
let fileEchoVersion: string;

before(async () => {
  server = await startTestServer();
  process.env.REPLICATE_API_TOKEN = server.token;
  process.env.REPLICATE_BASE_URL = server.apiUrl;
  replicate = new Replicate({
    // get your token from https://replicate.com/account/api-tokens
    auth: server.token, // defaults to process.env.REPLICATE_API_TOKEN
    baseUrl: server.apiUrl,
  });
  helloVersion = (await replicate.models.get("replicate", "hello-world")).latest_version!.id;
  fileEchoVersion = (await replicate.models.get("replicant", "file-echo")).latest_version!.id;
});

after(async () => {
  delete process.env.REPLICATE_API_TOKEN;
  delete process.env.REPLICATE_BASE_URL;
  await server.close();
});

describe("replicate README: Usage", () => {
  test("run a model and await the result (FileOutput with url() and blob())", async () => {
    const model = `replicant/file-echo:${fileEchoVersion}`;
    const input = {
      file: new Blob(["a 19th century portrait of a raccoon gentleman wearing a suit"]),
    };
    const [output] = [(await replicate.run(model, { input })) as FileOutput];
    assert.ok(output);
    console.log(output.url()); // 'https://replicate.delivery/pbxt/.../out-0.png'
    console.log(output.blob()); // Blob
    assert.ok(output.url() instanceof URL);
    assert.equal(
      await (await output.blob()).text(),
      "a 19th century portrait of a raccoon gentleman wearing a suit",
    );
  });

  test("run a model in the background, get it later, or wait for it", async () => {
    let prediction = await replicate.predictions.create({
      version: helloVersion,
      input: {
        text: "painting of a cat by andy warhol",
      },
    });
    prediction = await replicate.predictions.get(prediction.id);
    prediction = await replicate.wait(prediction);
    console.log(prediction.output);
    assert.equal(prediction.output, "hello painting of a cat by andy warhol");
  });

  test("run a model that takes a file input from the local device", async () => {
    const path = join(await fs.mkdtemp(join(tmpdir(), "readme-")), "image.png");
    await fs.writeFile(path, new Uint8Array([137, 80, 78, 71]));
    const model = `replicant/file-echo:${fileEchoVersion}`;
    const input = {
      file: await fs.readFile(path),
    };
    const [output] = [(await replicate.run(model, { input })) as FileOutput];
    assert.deepEqual(new Uint8Array(await output!.arrayBuffer()), new Uint8Array([137, 80, 78, 71]));
  });
});

describe("replicate README: TypeScript usage", () => {
  test("the Prediction type with an onProgress callback", async () => {
    const replicate = new Replicate();
    const model = "replicate/hello-world";
    const prompt = "a 19th century portrait of a raccoon gentleman wearing a suit";
    const seen: Prediction[] = [];
    function onProgress(prediction: Prediction) {
      seen.push(prediction);
    }
    const output = await replicate.run(model, { input: { text: prompt } }, onProgress);
    console.log({ output });
    assert.equal(output, `hello ${prompt}`);
    assert.equal(seen.at(-1)?.status, "succeeded");
  });
});

describe("replicate README: Webhooks and verifying webhooks", () => {
  test("predictions.create with webhook + webhook_events_filter, validated with validateWebhook", async () => {
    const secret = (await replicate.webhooks.default.secret.get()).key;
    const results: { valid: boolean; body: Prediction }[] = [];
    const receiver = createServer((incoming, response) => {
      const chunks: Buffer[] = [];
      incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
      incoming.on("end", async () => {
        const headers = new Headers();
        for (const [key, value] of Object.entries(incoming.headers))
          if (typeof value === "string") headers.set(key, value);
        // The README's Next.js handler, given a web-standard Request.
        const request = new Request(`http://127.0.0.1${incoming.url}`, {
          method: "POST",
          headers,
          body: Buffer.concat(chunks),
        });
        const webhookIsValid = await validateWebhook(request.clone(), secret);
        const body = (await request.json()) as Prediction;
        results.push({ valid: webhookIsValid, body });
        response.writeHead(webhookIsValid ? 200 : 401).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    try {
      const callbackURL = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks/replicate`;
      const input = { text: "webhook" };
      await replicate.predictions.create({
        version: helloVersion,
        input: input,
        webhook: callbackURL,
        webhook_events_filter: ["completed"],
      });
      const deadline = Date.now() + 10_000;
      while (results.length === 0 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(results[0]?.valid, true);
      assert.equal(results[0]?.body.output, "hello webhook");
    } finally {
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });

  test("validateWebhook with the request data passed directly", async () => {
    const secret = (await replicate.webhooks.default.secret.get()).key;
    const { signWebhook } = await import("../src/index.js");
    const timestamp = String(Math.floor(Date.now() / 1000));
    const body = JSON.stringify({ id: "xyz", status: "succeeded" });
    const requestData = {
      id: "123", // the `Webhook-Id` header
      timestamp, // the `Webhook-Timestamp` header
      signature: await signWebhook({ id: "123", timestamp, body }, secret), // the `Webhook-Signature` header
      body, // the request body as a string, ArrayBuffer or ReadableStream
      secret, // the webhook secret, obtained from the `replicate.webhooks.defaul.secret` endpoint
    };
    const webhookIsValid = await validateWebhook(requestData);
    assert.equal(webhookIsValid, true);
    const crypto = (await import("node:crypto")).webcrypto as Crypto;
    assert.equal(await validateWebhook(requestData, crypto), true);
  });
});

describe("replicate README: API", () => {
  test("constructor with a custom fetch that adds headers", async () => {
    const sent: string[] = [];
    const customFetch = (url: string | URL | Request, options?: RequestInit) => {
      // biome-ignore lint/complexity/useOptionalChain: the README's own code
      const headers = options && options.headers ? new Headers(options.headers) : new Headers();
      headers.set("X-Custom-Header", "some value");
      sent.push(headers.get("X-Custom-Header") ?? "");
      return fetch(url, { ...options, headers });
    };
    const replicate = new Replicate({ fetch: customFetch });
    await replicate.hardware.list();
    assert.deepEqual(sent, ["some value"]);
  });

  test("replicate.run with wait options and a progress logger", async () => {
    const model = `replicate/hello-world:${helloVersion}`;
    const input = { text: "a 19th century portrait of a raccoon gentleman wearing a suit" };
    const onProgress = (prediction: Prediction) => {
      const last_log_line = prediction.logs.split("\n").pop();
      console.log({ id: prediction.id, log: last_log_line });
    };
    const output = await replicate.run(model, { input }, onProgress);
    assert.equal(output, `hello ${input.text}`);
    const polled = await replicate.run(model, { input, wait: { mode: "poll", interval: 50 } });
    assert.equal(polled, output);
    const blocked = await replicate.run(model, { input, wait: { mode: "block", timeout: 10 } });
    assert.equal(blocked, output);
  });

  test("replicate.stream", async () => {
    const model = "replicant/stream-test";
    const options = {
      input: {
        tokens: 4,
        delay_ms: 5,
      },
      // webhook: "https://smee.io/dMUlmOMkzeyRGjW" // optional
    };
    const output = [];
    for await (const { event, data } of replicate.stream(model, options)) {
      if (event === "output") {
        output.push(data);
      }
    }
    console.log(output.join("").trim());
    assert.equal(output.join("").trim(), "token-1 token-2 token-3 token-4");
  });

  test("models, hardware, versions and collections", async () => {
    const model = await replicate.models.get("replicate", "hello-world");
    assert.equal(model.description, "A tiny model that says hello");
    assert.ok((await replicate.models.list()).results.length >= 4);
    assert.ok((await replicate.models.search("hello")).results.length >= 1);
    const created = await replicate.models.create("local", "readme-model", {
      visibility: "private",
      hardware: "cpu",
      description: "A README model",
    });
    assert.equal(created.name, "readme-model");
    assert.deepEqual(await replicate.hardware.list(), [{ name: "CPU", sku: "cpu" }]);
    const versions = await replicate.models.versions.list("replicate", "hello-world");
    assert.equal(versions.results[0]?.id, helloVersion);
    const version = await replicate.models.versions.get("replicate", "hello-world", helloVersion);
    assert.equal(version.id, helloVersion);
    assert.ok((await replicate.collections.list()).results.length >= 1);
    assert.equal((await replicate.collections.get("built-in")).slug, "built-in");
  });

  test("predictions: create, get, cancel, list", async () => {
    const response = await replicate.predictions.create({
      version: "replicant/stream-test",
      input: { tokens: 100, delay_ms: 50 },
    });
    assert.equal((await replicate.predictions.get(response.id)).id, response.id);
    assert.equal((await replicate.predictions.cancel(response.id)).status, "canceled");
    assert.ok(
      (await replicate.predictions.list()).results.some((prediction) => prediction.id === response.id),
    );
  });

  test("trainings: create, get, cancel, list", async () => {
    await replicate.models.create("local", "readme-trained", { visibility: "private", hardware: "cpu" });
    const trainable = await replicate.models.get("replicant", "hello-trainable");
    const training = await replicate.trainings.create(
      "replicant",
      "hello-trainable",
      trainable.latest_version!.id,
      {
        destination: "local/readme-trained",
        input: { greeting: "howdy" },
      },
    );
    assert.equal((await replicate.trainings.get(training.id)).id, training.id);
    const canceled = await replicate.trainings.cancel(training.id);
    assert.ok(["canceled", "succeeded"].includes(canceled.status));
    assert.ok((await replicate.trainings.list()).results.length >= 1);
  });

  test("deployments: create, list, update, predictions.create", async () => {
    const deployment = await replicate.deployments.create({
      name: "my-app-image-generator",
      model: "replicate/hello-world",
      version: helloVersion,
      hardware: "cpu",
      min_instances: 0,
      max_instances: 1,
    });
    assert.equal(deployment.current_release.number, 1);
    assert.ok((await replicate.deployments.list()).results.length >= 1);
    const updated = await replicate.deployments.update("local", "my-app-image-generator", {
      max_instances: 2,
    });
    assert.equal(updated.current_release.number, 2);
    let prediction = await replicate.deployments.predictions.create("local", "my-app-image-generator", {
      input: { text: "deployed" },
    });
    prediction = await replicate.wait(prediction);
    assert.equal(prediction.output, "hello deployed");
  });

  test("files: create, list, get, delete", async () => {
    const file = new File(["webp bytes"], "photo.webp", { type: "image/webp" });
    const response = await replicate.files.create(file, { customer_reference_id: "123" });
    assert.equal(response.content_type, "image/webp");
    assert.ok((await replicate.files.list()).results.some((item) => item.id === response.id));
    assert.deepEqual((await replicate.files.get(response.id)).metadata, { customer_reference_id: "123" });
    assert.equal(await replicate.files.delete(response.id), true);
  });

  test("replicate.paginate, by loop and one page at a time", async () => {
    await replicate.run("replicate/hello-world", { input: { text: "paged" } });
    let pages = 0;
    for await (const page of replicate.paginate(replicate.predictions.list)) {
      /* do something with page of results */
      assert.ok(Array.isArray(page));
      pages++;
    }
    assert.ok(pages >= 1);
    const paginator = replicate.paginate(replicate.predictions.list);
    const page1 = await paginator.next();
    assert.ok(Array.isArray(page1.value));
  });

  test("replicate.request", async () => {
    const response = await replicate.request("/predictions", {
      method: "POST",
      data: { version: "replicate/hello-world", input: { text: "low level" } },
      headers: { Prefer: "wait" },
    });
    assert.equal(((await response.json()) as Prediction).output, "hello low level");
  });

  test("FileOutput: url(), fs.writeFile, new Response(output), chunked reads; useFileOutput: false", async () => {
    const bytes = new TextEncoder().encode("astronaut riding a rocket like a horse");
    const run = async () =>
      (await replicate.run("replicant/file-echo", { input: { file: new Blob([bytes]) } })) as
        | FileOutput[]
        | FileOutput;
    const first = await run();
    const [output] = Array.isArray(first) ? first : [first];
    assert.ok(output);
    console.log(output.url()); //=> "http://example.com"
    const path = join(await fs.mkdtemp(join(tmpdir(), "readme-")), "my-image.png");
    await fs.writeFile(path, output);
    assert.deepEqual(new Uint8Array(await fs.readFile(path)), bytes);
    const streamed = await run();
    assert.deepEqual(new Uint8Array(await new Response(streamed as FileOutput).arrayBuffer()), bytes);
    const chunked = (await run()) as FileOutput;
    const chunks: Uint8Array[] = [];
    for await (const chunk of chunked) {
      chunks.push(chunk); // UInt8Array
    }
    assert.deepEqual(new Uint8Array(Buffer.concat(chunks)), bytes);

    const plain = new Replicate({ useFileOutput: false });
    const url = await plain.run("replicant/file-echo", { input: { file: new Blob([bytes]) } });
    assert.equal(typeof url, "string");
  });

  test("Troubleshooting: Next.js fetch override with cache: no-store", async () => {
    const replicate = new Replicate({});
    const seen: (RequestCache | undefined)[] = [];
    replicate.fetch = (url, options) => {
      seen.push(options?.cache);
      return fetch(url, { ...options, cache: "no-store" });
    };
    assert.equal(await replicate.run("replicate/hello-world", { input: { text: "next" } }), "hello next");
    assert.ok(
      seen.every((mode) => mode === "no-store"),
      "the SDK already sends no-store",
    );
  });
});
