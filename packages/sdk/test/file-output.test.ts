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

/** A real HTTP server whose download of /stall-headers never answers, /stall-body stops after one chunk,
 * and /steady sends ten chunks 40 ms apart. */
async function slowFileServer() {
  const { createServer } = await import("node:http");
  const server = createServer((request, response) => {
    if (request.url === "/stall-headers") return; // never answers
    response.writeHead(200, { "content-type": "application/octet-stream" });
    if (request.url === "/stall-body") {
      response.write(Buffer.from([1, 2, 3]));
      return; // never ends
    }
    let sent = 0;
    const timer = setInterval(() => {
      response.write(Buffer.from([sent]));
      if (++sent === 10) {
        clearInterval(timer);
        response.end();
      }
    }, 40);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("FileOutput download timeout", () => {
  test("a server that never answers fails the download with APITimeoutError", {
    timeout: 10_000,
  }, async (t) => {
    const server = await slowFileServer();
    t.after(server.close);
    const started = performance.now();
    await assert.rejects(
      new FileOutput(server.url("/stall-headers"), { timeout: 150 }).blob(),
      Replicant.APITimeoutError,
    );
    assert.ok(performance.now() - started < 5000);
    await assert.rejects(
      new Response(new FileOutput(server.url("/stall-headers"), { timeout: 150 })).arrayBuffer(),
      /timed out after 150 ms/,
    );
  });

  test("a body that stops arriving fails, for blob() and for a stream reader alike", {
    timeout: 10_000,
  }, async (t) => {
    const server = await slowFileServer();
    t.after(server.close);
    await assert.rejects(
      new FileOutput(server.url("/stall-body"), { timeout: 150 }).blob(),
      Replicant.APITimeoutError,
    );
    const reader = new FileOutput(server.url("/stall-body"), { timeout: 150 }).getReader();
    const first = await reader.read();
    assert.deepEqual([...(first.value ?? [])], [1, 2, 3]);
    await assert.rejects(reader.read(), Replicant.APITimeoutError);
  });

  test("the timeout is per chunk: a download that keeps arriving may take longer in all", {
    timeout: 10_000,
  }, async (t) => {
    const server = await slowFileServer();
    t.after(server.close);
    const started = performance.now();
    const bytes = await new FileOutput(server.url("/steady"), { timeout: 200 }).bytes();
    assert.deepEqual([...bytes], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(performance.now() - started > 200, "ten chunks 40 ms apart outlast one timeout");
  });

  test("a client's file outputs use its timeout; without one a download waits", {
    timeout: 10_000,
  }, async (t) => {
    const server = await slowFileServer();
    t.after(server.close);
    const replicate = new Replicant({ auth: "r8_x", baseUrl: BASE_URL, timeout: 150 });
    await assert.rejects(replicate.fileOutput(server.url("/stall-body")).blob(), Replicant.APITimeoutError);
    const controller = new AbortController();
    const waiting = new FileOutput(server.url("/stall-body"), { signal: controller.signal }).blob();
    const outcome = await Promise.race([
      waiting.then(
        () => "done",
        () => "failed",
      ),
      new Promise((resolve) => setTimeout(() => resolve("still waiting"), 400)),
    ]);
    assert.equal(outcome, "still waiting");
    controller.abort();
    await assert.rejects(waiting, { name: "AbortError" });
  });
});
