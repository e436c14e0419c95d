// Every built-in model through the full API path: the official `replicate` client → a real server →
// runner processes → the model package, on small inputs with checked outputs.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeImageBytes, encodePng, type RgbaImage, renderText } from "@replicant/model-kit";
import { writeTinyGguf } from "@replicant/model-llm-gguf/tiny-gguf";
import Replicate from "replicate";
import { startTestServer, type TestServer } from "../src/index.js";

let server: TestServer;
let replicate: Replicate;

// REPLICANT_TEST_GGUF if set, else the shared 1.75 MB random llama, else a tiny random llama written here.
const SHARED_GGUF = new URL("../../../../../shared/models/llama-2-tiny-random.gguf", import.meta.url)
  .pathname;
const ggufDir = await mkdtemp(join(tmpdir(), "replicant-models-api-gguf-"));
after(() => rm(ggufDir, { recursive: true, force: true }));
async function testGguf(): Promise<string> {
  const configured = process.env.REPLICANT_TEST_GGUF;
  if (configured !== undefined && configured !== "") return configured;
  if (existsSync(SHARED_GGUF)) return SHARED_GGUF;
  const path = join(ggufDir, "tiny-random.gguf");
  await writeTinyGguf(path);
  return path;
}
const GGUF = await testGguf();

function pngDataUri(image: RgbaImage): string {
  return `data:image/png;base64,${encodePng(image).toString("base64")}`;
}

function gradient(width: number, height: number, disc: boolean): RgbaImage {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inDisc = disc && Math.hypot(x - width / 2, y - height / 2) < height / 4;
      data.set(
        inDisc ? [20, 20, 60, 255] : [(x * 255) / width, (y * 255) / height, 160, 255],
        (y * width + x) * 4,
      );
    }
  }
  return { width, height, data };
}

/** File outputs over plain http are URL strings (the official client wraps only https: and data:). */
async function bytesOf(output: unknown): Promise<Uint8Array> {
  if (typeof output === "string") return new Uint8Array(await (await fetch(output)).arrayBuffer());
  const file = output as { blob(): Promise<Blob> };
  return new Uint8Array(await (await file.blob()).arrayBuffer());
}

before(async () => {
  server = await startTestServer({ fileOutputs: "url" });
  replicate = new Replicate({ auth: server.token, baseUrl: server.apiUrl });
});
after(async () => {
  await server.close();
});

describe("built-in models through the API", { timeout: 240_000 }, () => {
  it("lists the models in models.list and the built-in collection", async () => {
    const collection = await replicate.collections.get("built-in");
    const names = (collection.models ?? []).map((m) => m.name);
    for (const name of ["ocr", "upscale", "classify", "char-lm", "tts", "background-removal"])
      assert.ok(names.includes(name), name);
  });

  it("ocr reads a rendered known string exactly", async () => {
    const text = "REPLICANT READS 42 WORDS";
    const output = await replicate.run("replicant/ocr", {
      input: {
        image: pngDataUri(renderText(text, { scale: 3, blur: 1 })),
        page_segmentation_mode: "single_line",
      },
    });
    assert.equal(output, text);
  });

  it("upscale returns the right dimensions", async () => {
    const output = await replicate.run("replicant/upscale", {
      input: { image: pngDataUri(gradient(60, 30, false)), scale: 2 },
    });
    const image = decodeImageBytes(await bytesOf(output));
    assert.equal(image.width, 120);
    assert.equal(image.height, 60);
  });

  it("classify ranks a rendered document Neutral first", async () => {
    const output = (await replicate.run("replicant/classify", {
      input: { image: pngDataUri(renderText("REPLICANT\nCLASSIFIES\nTHIS PAGE", { scale: 5 })) },
    })) as { label: string; probability: number }[];
    assert.equal(output[0]?.label, "Neutral");
    assert.ok((output[0]?.probability ?? 0) > 0.9);
  });

  it("tts returns a valid WAV of plausible length", async () => {
    const output = await replicate.run("replicant/tts", {
      input: { text: "Hello from Replicant, a server for models." },
    });
    const wav = await bytesOf(output);
    const tag = (offset: number) => new TextDecoder().decode(wav.slice(offset, offset + 4));
    assert.equal(tag(0), "RIFF");
    assert.equal(tag(8), "WAVE");
    const view = new DataView(wav.buffer, wav.byteOffset, wav.byteLength);
    const byteRate = view.getUint32(28, true);
    const seconds = (wav.length - 44) / byteRate;
    assert.ok(seconds > 1 && seconds < 8, `${seconds} s`);
  });

  it("background removal leaves transparent pixels", async () => {
    const output = await replicate.run("replicant/background-removal", {
      input: { image: pngDataUri(gradient(256, 192, true)), model: "small" },
    });
    const image = decodeImageBytes(await bytesOf(output));
    const alpha = (x: number, y: number) => image.data[(y * image.width + x) * 4 + 3] ?? 255;
    assert.ok(alpha(2, 2) < 32, `corner alpha ${alpha(2, 2)}`);
    assert.ok(alpha(128, 96) > 200, `centre alpha ${alpha(128, 96)}`);
  });

  it("char-lm streams tokens, and training on a text makes it use that text's vocabulary", async () => {
    const tokens: string[] = [];
    for await (const event of replicate.stream("replicant/char-lm", {
      input: { prompt: "Alice ", max_tokens: 40, seed: 3 },
    })) {
      if (event.event === "output") tokens.push(event.data);
    }
    assert.equal(tokens.length, 40);

    const account = await replicate.accounts.current();
    await replicate.models.create(account.username, "zorp-lm", { visibility: "private", hardware: "cpu" });
    const base = await replicate.models.get("replicant", "char-lm");
    const text = "zorp blenk quiffle marrow zorp quiffle blenk snark. ".repeat(20);
    const training = await replicate.trainings.create("replicant", "char-lm", base.latest_version!.id, {
      destination: `${account.username}/zorp-lm`,
      input: { text_file: `data:text/plain;base64,${Buffer.from(text).toString("base64")}` },
    });
    let done = training;
    while (["starting", "processing"].includes(done.status)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      done = await replicate.trainings.get(training.id);
    }
    assert.equal(done.status, "succeeded", `${String(done.error)}\n${done.logs ?? ""}`);
    const version = (done.output as { version: string }).version;
    const output = (await replicate.run(
      `${account.username}/zorp-lm:${version}` as `${string}/${string}:${string}`,
      {
        input: { prompt: "zorp ", max_tokens: 200, seed: 1 },
      },
    )) as string[];
    const vocabulary = new Set(text.match(/[a-z]+/g));
    const generated = output.join("").match(/[a-z]+/g) ?? [];
    const share = generated.filter((w) => vocabulary.has(w)).length / generated.length;
    assert.ok(share > 0.8, `only ${share} of the words come from the training text`);
  });

  it("a pushed GGUF model streams the tokens asked for", {
    skip: existsSync(GGUF) ? false : `REPLICANT_TEST_GGUF is set to ${GGUF}, which is missing`,
  }, async () => {
    const account = await replicate.accounts.current();
    await replicate.models.create(account.username, "tiny-llama", { visibility: "private", hardware: "cpu" });
    const response = await fetch(
      `${server.apiUrl}/replicant/models/${account.username}/tiny-llama/versions`,
      {
        method: "POST",
        headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
        body: JSON.stringify({ template: "llm-gguf", weights_path: GGUF }),
      },
    );
    assert.equal(response.status, 201, await response.clone().text());
    const tokens: string[] = [];
    for await (const event of replicate.stream(`${account.username}/tiny-llama` as `${string}/${string}`, {
      input: { prompt: "Once upon a time", max_tokens: 12, seed: 1 },
    })) {
      if (event.event === "output") tokens.push(event.data);
    }
    assert.equal(tokens.length, 12);
  });
});
