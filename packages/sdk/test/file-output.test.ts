import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FileOutput, parseDataUri, Replicant } from "../src/index.js";
import { BASE_URL, fakeFetch, json, prediction } from "./helpers/fake-fetch.js";

const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);

function fileServer() {
  return fakeFetch(() => new Response(png, { headers: { "Content-Type": "image/png" } }));
}

describe("FileOutput", () => {
  test("is lazy: nothing is downloaded until it is read", async () => {
    const { fetch, requests } = fileServer();
    const output = new FileOutput("https://files.example.test/out.png", { fetch });
    assert.equal(String(output), "https://files.example.test/out.png");
    assert.equal(`${output.url}`, "https://files.example.test/out.png");
    assert.ok(output.url() instanceof URL, "url() returns a URL, as in the replicate package");
    assert.equal(output.url.href, "https://files.example.test/out.png");
    assert.equal(JSON.stringify({ images: [output] }), '{"images":["https://files.example.test/out.png"]}');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(requests.length, 0);
  });

  test("blob(), arrayBuffer(), text() and bytes() download once and keep the content type", async () => {
    const { fetch, requests } = fileServer();
    const output = new FileOutput("https://files.example.test/out.png", { fetch });
    const blob = await output.blob();
    assert.equal(blob.type, "image/png");
    assert.deepEqual(new Uint8Array(await output.arrayBuffer()), png);
    assert.deepEqual(await output.bytes(), png);
    assert.equal((await output.text()).length, new TextDecoder().decode(png).length);
    assert.equal(output.contentType, "image/png");
    assert.equal(requests.length, 1);
  });

  test("is a ReadableStream: a reader, for await, and new Response(output) all work", async () => {
    const { fetch } = fileServer();
    const chunks: Uint8Array[] = [];
    for await (const chunk of new FileOutput("https://files.example.test/a.png", { fetch }))
      chunks.push(chunk);
    assert.deepEqual(Buffer.concat(chunks), Buffer.from(png));
    const output = new FileOutput("https://files.example.test/b.png", { fetch });
    assert.ok(output instanceof ReadableStream);
    assert.deepEqual(new Uint8Array(await new Response(output).arrayBuffer()), png);
  });

  test("data: URIs are decoded locally without fetching", async () => {
    const { fetch, requests } = fileServer();
    const output = new FileOutput(`data:image/png;base64,${Buffer.from(png).toString("base64")}`, { fetch });
    assert.equal(output.contentType, "image/png");
    assert.deepEqual(await output.bytes(), png);
    assert.equal((await output.blob()).type, "image/png");
    const text = new FileOutput("data:,hello%20world", { fetch });
    assert.equal(await text.text(), "hello world");
    assert.equal(requests.length, 0);
    assert.equal(
      parseDataUri("data:text/plain;charset=utf-8,%E2%9C%93").contentType,
      "text/plain;charset=utf-8",
    );
    assert.equal(
      new TextDecoder().decode(parseDataUri("data:text/plain;charset=utf-8,%E2%9C%93").bytes),
      "✓",
    );
  });

  test("a failed download rejects with the status-typed error, and can be retried", async () => {
    let calls = 0;
    const { fetch } = fakeFetch(() => {
      calls++;
      return calls === 1 ? new Response("gone", { status: 404 }) : new Response(png);
    });
    const output = new FileOutput("https://files.example.test/x.png", { fetch });
    await assert.rejects(output.blob(), Replicant.NotFoundError);
    assert.deepEqual(await output.bytes(), png);
  });

  test("run() wraps https:, data: and same-host http: URLs, leaves other strings, and never downloads", async () => {
    const httpBase = "http://127.0.0.1:9999/v1";
    const output = {
      image: "https://files.example.test/out.png",
      inline: "data:text/plain;base64,aGk=",
      local: "http://127.0.0.1:9999/v1/files/abc/download",
      elsewhere: "http://other.example.test/x",
      text: "hello",
      count: 3,
    };
    const { fetch, requests } = fakeFetch(() =>
      json(prediction({ status: "succeeded", output }), { status: 201 }),
    );
    const replicate = new Replicant({ auth: "r8_x", baseUrl: httpBase, fetch });
    const result = (await replicate.run("a/b", { input: {} })) as Record<string, unknown>;
    assert.ok(result.image instanceof FileOutput);
    assert.ok(result.inline instanceof FileOutput);
    assert.ok(result.local instanceof FileOutput);
    assert.equal(result.elsewhere, "http://other.example.test/x");
    assert.equal(result.text, "hello");
    assert.equal(result.count, 3);
    assert.deepEqual(JSON.parse(JSON.stringify(result)), output);
    assert.equal(requests.length, 1);
    const plain = (await replicate.run("a/b", { input: {}, useFileOutput: false })) as Record<
      string,
      unknown
    >;
    assert.equal(plain.image, output.image);
  });

  test("the token goes only with downloads from the API's own host", async () => {
    const { fetch, requests } = fileServer();
    const replicate = new Replicant({ auth: "r8_secret", baseUrl: BASE_URL, fetch });
    await replicate.fileOutput(`${BASE_URL}/files/abc/download`).blob();
    await replicate.fileOutput("https://cdn.example.test/out.png").blob();
    assert.equal(requests[0]!.headers.get("authorization"), "Bearer r8_secret");
    assert.equal(requests[1]!.headers.get("authorization"), null);
  });
});
