import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type DirectRunner, directRunner, encodePng, renderText } from "@replicant/model-kit";
import ocr, { terminateWorkers } from "../src/index.js";

// Rendered with the kit's 5×7 bitmap font (no system fonts), scaled up so tesseract sees clean strokes.
const KNOWN_LINE = "REPLICANT READS 42 WORDS";
const KNOWN_BLOCK = "THE QUICK BROWN FOX\nJUMPS OVER 13 LAZY DOGS";

let runner: DirectRunner<typeof ocr.input, typeof ocr.output>;
let state: Parameters<typeof terminateWorkers>[0];

before(async () => {
  runner = await directRunner(ocr);
  state = runner.state as typeof state;
});
after(() => terminateWorkers(state));

async function imageOf(text: string, name: string): Promise<string> {
  const path = join(runner.scratchDir, name);
  await writeFile(path, encodePng(renderText(text, { scale: 3, blur: 1 })));
  return path;
}

test("reads a rendered line exactly", async () => {
  const image = await imageOf(KNOWN_LINE, "line.png");
  assert.equal(await runner.predict({ image, page_segmentation_mode: "single_line" }), KNOWN_LINE);
});

test("reads two rendered lines exactly with automatic page segmentation", async () => {
  const image = await imageOf(KNOWN_BLOCK, "block.png");
  assert.equal(await runner.predict({ image }), KNOWN_BLOCK);
});

test("names the package to install for a language without data", async () => {
  const image = await imageOf("X", "x.png");
  await assert.rejects(runner.predict({ image, language: "xyz" }), /@tesseract\.js-data\/xyz/);
});
