import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import { type DirectRunner, directRunner, encodePng, renderText } from "@replicant/model-kit";
import classify from "../src/index.js";

let runner: DirectRunner<typeof classify.input, typeof classify.output>;

before(async () => {
  runner = await directRunner(classify);
});

// A page of black text on white is the textbook "Neutral" image for this model (its Neutral class was
// trained on everyday photos and documents); MobileNetV2 gives it Neutral ≈ 1.0. A flat-colour fill, by
// contrast, lands in Drawing, so the check is not just "Neutral always wins".
test("ranks Neutral first for a rendered text document", async () => {
  const image = join(runner.scratchDir, "document.png");
  await writeFile(image, encodePng(renderText("REPLICANT\nCLASSIFIES\nTHIS PAGE", { scale: 5 })));
  const labels = await runner.predict({ image });
  assert.equal(labels[0]?.label, "Neutral");
  assert.ok((labels[0]?.probability ?? 0) > 0.9, JSON.stringify(labels));
  assert.deepEqual(labels.map((l) => l.label).sort(), ["Drawing", "Hentai", "Neutral", "Porn", "Sexy"]);
  const total = labels.reduce((sum, l) => sum + l.probability, 0);
  assert.ok(Math.abs(total - 1) < 1e-3, `probabilities sum to ${total}`);
});

test("ranks Drawing first for a flat colour fill", async () => {
  const width = 224;
  const height = 224;
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < data.length; i += 4) data.set([128, 128, 128, 255], i);
  const image = join(runner.scratchDir, "flat.png");
  await writeFile(image, encodePng({ width, height, data }));
  const labels = await runner.predict({ image });
  assert.equal(labels[0]?.label, "Drawing", JSON.stringify(labels));
});
