import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { encodeFileInputs, FileOutput, fromPath, Replicant } from "../src/index.js";
import { BASE_URL, fakeFetch, json, prediction } from "./helpers/fake-fetch.js";

const noUpload = async (): Promise<string> => {
  throw new Error("should not upload");
};

describe("file inputs", () => {
  test("data-uri strategy encodes Blob, Buffer, Uint8Array, ArrayBuffer and streams, and nothing else", async () => {
    const stream = new Blob(["stream"]).stream();
    const encoded = (await encodeFileInputs(
      {
        blob: new Blob(["hi"], { type: "text/plain" }),
        buffer: Buffer.from("buf"),
        bytes: new Uint8Array([1, 2]),
        arrayBuffer: new Uint8Array([3]).buffer,
        nested: [{ stream }],
        text: "plain",
        url: new URL("https://example.test/a.png"),
        number: 1,
      },
      "data-uri",
      noUpload,
    )) as Record<string, unknown>;
    assert.equal(encoded.blob, "data:text/plain;base64,aGk=");
    assert.equal(encoded.buffer, "data:application/octet-stream;base64,YnVm");
    assert.equal(encoded.bytes, "data:application/octet-stream;base64,AQI=");
    assert.equal(encoded.arrayBuffer, "data:application/octet-stream;base64,Aw==");
    assert.deepEqual(encoded.nested, [{ stream: "data:application/octet-stream;base64,c3RyZWFt" }]);
    assert.equal(encoded.text, "plain");
    assert.equal(encoded.url, "https://example.test/a.png");
    assert.equal(encoded.number, 1);
  });

  test("upload strategy uploads and passes the file URL; outputs of earlier runs become their URLs", async () => {
    const uploaded: Blob[] = [];
    const encoded = (await encodeFileInputs(
      { image: new Blob(["x"]), previous: new FileOutput("https://files.example.test/out.png") },
      "upload",
      async (file) => {
        uploaded.push(file);
        return "https://api.example.test/v1/files/f1";
      },
    )) as Record<string, unknown>;
    assert.equal(encoded.image, "https://api.example.test/v1/files/f1");
    assert.equal(encoded.previous, "https://files.example.test/out.png");
    assert.equal(uploaded.length, 1);
  });

  test("paths (fromPath or file: URLs) are read through the Node-only helper", async () => {
    const directory = await mkdtemp(join(tmpdir(), "replicant-sdk-"));
    const file = join(directory, "cat.png");
    await writeFile(file, "meow");
    const encoded = (await encodeFileInputs(
      { a: fromPath(file), b: pathToFileURL(file) },
      "data-uri",
      noUpload,
    )) as Record<string, unknown>;
    assert.equal(encoded.a, `data:image/png;base64,${Buffer.from("meow").toString("base64")}`);
    assert.equal(encoded.b, encoded.a);
  });

  test("the client's data-uri strategy sends the input, never the client (replicate 1.4.0's token leak)", async () => {
    const { fetch, requests } = fakeFetch(() => json(prediction(), { status: 201 }));
    const replicate = new Replicant({
      auth: "r8_secret",
      baseUrl: BASE_URL,
      fetch,
      fileEncodingStrategy: "data-uri",
    });
    await replicate.predictions.create({ version: "v", input: { image: new Blob(["x"]) } });
    const body = requests[0]!.body ?? "";
    assert.ok(!body.includes("r8_secret"));
    assert.deepEqual(JSON.parse(body).input, { image: "data:application/octet-stream;base64,eA==" });
  });

  test("the default strategy uploads through files.create, and falls back to data URIs when uploads fail with 5xx", async () => {
    const uploads = fakeFetch((request) =>
      request.url.endsWith("/files")
        ? json({ id: "f1", urls: { get: `${BASE_URL}/files/f1` } }, { status: 201 })
        : json(prediction(), { status: 201 }),
    );
    await new Replicant({ auth: "r8_x", baseUrl: BASE_URL, fetch: uploads.fetch }).predictions.create({
      version: "v",
      input: { image: new Blob(["x"]) },
    });
    assert.equal(uploads.requests[0]!.url, `${BASE_URL}/files`);
    assert.ok(uploads.requests[0]!.rawBody instanceof FormData);
    assert.deepEqual(JSON.parse(uploads.requests[1]!.body ?? "").input, { image: `${BASE_URL}/files/f1` });

    const broken = fakeFetch((request) =>
      request.url.endsWith("/files")
        ? new Response("", { status: 500 })
        : json(prediction(), { status: 201 }),
    );
    await new Replicant({
      auth: "r8_x",
      baseUrl: BASE_URL,
      fetch: broken.fetch,
      maxRetries: 0,
    }).predictions.create({
      version: "v",
      input: { image: new Blob(["x"]) },
    });
    const last = broken.requests[broken.requests.length - 1]!;
    assert.deepEqual(JSON.parse(last.body ?? "").input, {
      image: "data:application/octet-stream;base64,eA==",
    });
  });
});
