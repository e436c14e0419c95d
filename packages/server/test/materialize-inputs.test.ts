import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { Readable } from "node:stream";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  fileExtensionFor,
  fileInputFields,
  InputFileError,
  type MaterializeInputsOptions,
  materializeInputs,
  type OwnFile,
} from "../src/inputs/index.js";
import { createGuardedFetch, type GuardedFetch } from "../src/net/index.js";
import { type Canary, startCanary } from "./support/canary.js";
import { startHttpServer, type TestServer } from "./support/http-server.js";
import { installLoopbackTripwire, type LoopbackTripwire } from "./support/loopback-tripwire.js";

const SCHEMA = {
  openapi: "3.0.2",
  components: {
    schemas: {
      Input: {
        type: "object",
        properties: {
          image: { type: "string", format: "uri", title: "Image" },
          images: { type: "array", items: { type: "string", format: "uri" } },
          mask: { anyOf: [{ type: "string", format: "uri" }, { type: "null" }] },
          audio: { allOf: [{ $ref: "#/components/schemas/AudioFile" }] },
          prompt: { type: "string" },
          count: { type: "integer" },
          tags: { type: "array", items: { type: "string" } },
        },
      },
      AudioFile: { type: "string", format: "uri" },
    },
  },
};

const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==",
  "base64",
);

let tripwire: LoopbackTripwire;
let canary: Canary;
let files: TestServer;
let fetch: GuardedFetch;
let root: string;
let scratch: string;
let requests: string[] = [];
const ownFiles = new Map<string, OwnFile | (() => Readable)>();
let ownLookups: { id: string; url: string }[] = [];

before(async () => {
  tripwire = installLoopbackTripwire();
  canary = await startCanary();
  root = await mkdtemp(join(tmpdir(), "replicant-inputs-"));
  files = await startHttpServer((req, res) => {
    const path = req.url ?? "/";
    requests.push(path);
    if (path.startsWith("/cat.png") || path === "/no-extension") {
      res.writeHead(200, { "content-type": "image/png" });
      res.end(PNG);
    } else if (path === "/voice") {
      res.writeHead(200, { "content-type": "audio/wav; codecs=1" });
      res.end("RIFF....WAVE");
    } else if (path === "/weights.safetensors") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.end("weights");
    } else if (path.startsWith("/..")) {
      res.writeHead(200, { "content-type": "text/x-shellscript" });
      res.end("echo pwned");
    } else if (path === "/big") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(64 * 1024, 7);
      let sent = 0;
      const pump = () => {
        while (!res.destroyed && sent < 64 && res.write(chunk)) sent++;
        if (sent >= 64) res.end();
        else if (!res.destroyed) res.once("drain", pump);
      };
      pump();
    } else if (path === "/slow") {
      res.writeHead(200);
      const timer = setInterval(() => res.write("x"), 50);
      res.on("close", () => clearInterval(timer));
    } else if (path === "/moved") {
      res.writeHead(302, { location: "/cat.png" });
      res.end();
    } else if (path === "/to-private") {
      res.writeHead(302, { location: `http://127.0.0.2:${canary.port}/secret` });
      res.end();
    } else {
      res.writeHead(404);
      res.end("missing");
    }
  });
  fetch = createGuardedFetch({
    allowPrivate: ["127.0.0.1/32"],
    timeoutMs: 5_000,
    maxBytes: 1 << 30,
    maxRedirects: 3,
  });
});

after(async () => {
  await fetch.close();
  await files.close();
  await rm(root, { recursive: true, force: true });
  await canary.close();
  tripwire.uninstall();
  assert.equal(canary.connections, 0, "own-file URLs and refused URLs never open a connection");
  assert.deepEqual(tripwire.blocked, []);
});

beforeEach(async () => {
  scratch = await mkdtemp(join(root, "p-"));
  requests = [];
  ownLookups = [];
  ownFiles.clear();
});

/** The server's own public URL points at the canary: fetching an own-file URL over HTTP would show. */
const publicUrl = () => `http://127.0.0.1:${canary.port}/base`;

function run(input: Record<string, unknown>, overrides: Partial<MaterializeInputsOptions> = {}) {
  return materializeInputs({
    input,
    schema: SCHEMA,
    directory: scratch,
    fetch,
    publicUrl: publicUrl(),
    resolveOwnFile: async (id, url) => {
      ownLookups.push({ id, url: url.href });
      const entry = ownFiles.get(id);
      return typeof entry === "function" ? entry() : entry;
    },
    ...overrides,
  });
}

async function fails(promise: Promise<unknown>, pattern: RegExp, field?: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof InputFileError, `expected InputFileError, got ${String(error)}`);
    assert.match(error.message, pattern);
    if (field !== undefined) assert.equal(error.field, field);
    return true;
  });
}

const listScratch = () => readdir(scratch);

describe("fileInputFields", () => {
  test("finds uri properties, arrays of them, anyOf/allOf and $ref forms", () => {
    assert.deepEqual(
      [...fileInputFields(SCHEMA)],
      [
        ["image", "file"],
        ["images", "file-array"],
        ["mask", "file"],
        ["audio", "file"],
      ],
    );
    assert.equal(fileInputFields({}).size, 0);
    assert.equal(fileInputFields({ components: { schemas: { Input: { properties: "nope" } } } }).size, 0);
  });

  test("extensions come from a known content type, else a safe URL extension", () => {
    assert.equal(fileExtensionFor({ contentType: "image/jpeg", name: "/x.jpeg" }), ".jpg");
    assert.equal(
      fileExtensionFor({ contentType: "application/octet-stream", name: "/w.safetensors" }),
      ".safetensors",
    );
    assert.equal(fileExtensionFor({ contentType: null, name: "/a/b/Clip.MP4" }), ".mp4");
    assert.equal(fileExtensionFor({ name: "../../etc/passwd" }), "");
    assert.equal(fileExtensionFor({ name: "evil.sh;rm -rf" }), "");
    assert.equal(fileExtensionFor({ name: "x.tar.gz" }), ".gz");
    assert.equal(fileExtensionFor({ name: "dots/..", contentType: "" }), "");
  });
});

describe("materializeInputs", () => {
  test("downloads http(s) file inputs to local paths and leaves other fields alone", async () => {
    const input = {
      image: `${files.origin}/cat.png?size=small`,
      prompt: "a cat",
      count: 2,
      tags: [`${files.origin}/not-a-file-field`],
    };
    const snapshot = structuredClone(input);
    const result = await run(input);
    assert.deepEqual(input, snapshot, "the input is not modified");
    assert.equal(result.prompt, "a cat");
    assert.equal(result.count, 2);
    assert.deepEqual(result.tags, input.tags);
    const path = String(result.image);
    assert.ok(isAbsolute(path));
    assert.equal(dirname(path), scratch);
    assert.match(path, /\/[0-9a-f-]{36}\.png$/);
    assert.deepEqual(await readFile(path), PNG);
    assert.deepEqual(requests, ["/cat.png?size=small"]);
  });

  test("arrays, anyOf and $ref fields, data URIs and URLs together", async () => {
    const result = await run({
      images: [`${files.origin}/cat.png`, `data:image/png;base64,${PNG.toString("base64")}`, 42],
      mask: `${files.origin}/voice`,
      audio: "data:text/plain;charset=utf-8,hello%20w%C3%B6rld%21 ✓",
    });
    const images = result.images as unknown[];
    assert.equal(images.length, 3);
    assert.match(String(images[0]), /\.png$/);
    assert.match(String(images[1]), /\.png$/);
    assert.equal(images[2], 42);
    assert.deepEqual(await readFile(String(images[1])), PNG);
    assert.match(String(result.mask), /\.wav$/);
    assert.match(String(result.audio), /\.txt$/);
    assert.equal(await readFile(String(result.audio), "utf8"), "hello wörld! ✓");
    assert.equal((await listScratch()).length, 4);
  });

  test("the file name never comes from the URL path", async () => {
    const result = await run({ image: `${files.origin}/..%2F..%2Fevil.sh` });
    assert.equal(dirname(String(result.image)), scratch);
    // Only a safe extension survives from the URL; the name is random and the file stays in scratch.
    assert.match(String(result.image), /\/[0-9a-f-]{36}\.sh$/);
    const extension = await run({ image: `${files.origin}/weights.safetensors` });
    assert.match(String(extension.image), /\/[0-9a-f-]{36}\.safetensors$/);
  });

  test("this server's file URLs are read through resolveOwnFile, never over HTTP", async () => {
    ownFiles.set("file1", { stream: Readable.from([PNG]), contentType: "image/png", name: "../../x.sh" });
    ownFiles.set("file2", () => Readable.from([Buffer.from("plain stream")]));
    const result = await run({
      image: `${publicUrl()}/v1/files/file1`,
      images: [`${publicUrl()}/v1/files/file2/download?owner=alice&expiry=1&signature=abc`],
    });
    assert.match(String(result.image), /\.png$/);
    assert.deepEqual(await readFile(String(result.image)), PNG);
    const [plain] = result.images as string[];
    assert.equal(await readFile(String(plain), "utf8"), "plain stream");
    assert.deepEqual(ownLookups, [
      { id: "file1", url: `${publicUrl()}/v1/files/file1` },
      { id: "file2", url: `${publicUrl()}/v1/files/file2/download?owner=alice&expiry=1&signature=abc` },
    ]);
    assert.equal(canary.connections, 0);
  });

  test("an own file that is missing or not the caller's is a clear error", async () => {
    await fails(
      run({ image: `${publicUrl()}/v1/files/someone-elses` }),
      /Input "image": file someone-elses was not found/,
    );
    await fails(run({ image: `${publicUrl()}/v1/predictions` }), /points at this server but not at a file/);
    await fails(run({ image: `${publicUrl()}/v1/files/a/b` }), /points at this server but not at a file/);
  });

  test("data URIs: base64 and percent-encoded, capped, validated", async () => {
    const ok = await run({ image: "data:,plain%20text" }, { maxDataUriBytes: 10 });
    assert.equal(await readFile(String(ok.image), "utf8"), "plain text");
    assert.match(String(ok.image), /\.txt$/);
    const spaced = await run({
      image: `data:image/png;base64,${PNG.toString("base64").replace(/(.{10})/g, "$1 ")}`,
    });
    assert.deepEqual(await readFile(String(spaced.image)), PNG);

    await fails(
      run(
        { image: `data:image/png;base64,${Buffer.alloc(2000).toString("base64")}` },
        { maxDataUriBytes: 1000 },
      ),
      /data URI larger than the limit of 1000 bytes/,
      "image",
    );
    await fails(
      run({ image: `data:text/plain,${"x".repeat(1001)}` }, { maxDataUriBytes: 1000 }),
      /larger than the limit/,
    );
    await fails(run({ image: "data:image/png;base64,@@@" }), /base64 content is not valid/);
    await fails(run({ image: "data:image/png;base64" }), /not a valid data URI/);
  });

  test("follows redirects through the guard", async () => {
    const result = await run({ image: `${files.origin}/moved` });
    assert.deepEqual(await readFile(String(result.image)), PNG);
  });

  test("download failures say which input and why", async () => {
    await fails(
      run({ image: `${files.origin}/missing.png` }),
      /Could not download input "image": .*\/missing\.png answered 404 Not Found/,
    );
    await fails(
      run({ images: [`${files.origin}/cat.png`, `http://127.0.0.2:${canary.port}/x`] }),
      /Could not download input "images\[1\]": .*127\.0\.0\.2 is a loopback address/,
      "images[1]",
    );
    await fails(run({ image: `${files.origin}/to-private` }), /redirected to a refused URL/);
    await fails(run({ image: "ftp://example.com/cat.png" }), /unsupported scheme "ftp:"/);
    await fails(run({ image: "just some text" }), /must be a URL or a data URI/);
    await fails(run({ image: `${files.origin}/slow` }, { timeoutMs: 300 }), /timed out after 300 ms/);
    assert.deepEqual(await listScratch(), [], "no files are left behind by failures");
  });

  test("files larger than the cap are cut off and removed", async () => {
    await fails(
      run({ image: `${files.origin}/cat.png`, mask: `${files.origin}/big` }, { maxFileBytes: 1024 * 1024 }),
      /larger than the limit of 1048576 bytes/,
      "mask",
    );
    assert.deepEqual(await listScratch(), []);
    ownFiles.set("huge", () => Readable.from([Buffer.alloc(600), Buffer.alloc(600)]));
    await fails(
      run({ image: `${publicUrl()}/v1/files/huge` }, { maxFileBytes: 1000 }),
      /file huge is larger than the limit/,
    );
    assert.deepEqual(await listScratch(), []);
  });

  test("cancelling stops the downloads", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    await fails(run({ image: `${files.origin}/slow` }, { signal: controller.signal }), /canceled/);
    assert.ok(Date.now() - started < 2_000);
    assert.deepEqual(await listScratch(), []);
  });

  test("an input without file fields is returned as a copy without work", async () => {
    const input = { prompt: "x" };
    const result = await run(input, { schema: {} });
    assert.deepEqual(result, input);
    assert.notEqual(result, input);
  });
});
