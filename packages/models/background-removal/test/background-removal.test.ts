import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { decodeImageBytes, directRunner, encodePng, type RgbaImage } from "@replicant/model-kit";
import backgroundRemoval from "../src/index.js";

// A dark, shaded ball on a flat light backdrop: the salient object the segmentation model is trained to keep.
function ballOnBackdrop(width: number, height: number): RgbaImage {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const d = Math.hypot(x - width / 2, y - height / 2) / (height / 3);
      const offset = (y * width + x) * 4;
      if (d < 1) {
        const shade = Math.round(40 + 120 * (1 - d));
        data.set([shade + 60, shade / 2, shade / 3, 255], offset);
      } else {
        data.set([235, 235, 228, 255], offset);
      }
    }
  }
  return { width, height, data };
}

test("makes the background transparent and keeps the object", { timeout: 60_000 }, async () => {
  const runner = await directRunner(backgroundRemoval);
  const source = join(runner.scratchDir, "ball.png");
  await writeFile(source, encodePng(ballOnBackdrop(256, 192)));
  const result = await runner.predict({ image: source, model: "small" });
  assert.ok(result instanceof Blob);
  const image = decodeImageBytes(new Uint8Array(await result.arrayBuffer()));
  assert.equal(image.width, 256);
  assert.equal(image.height, 192);
  const alpha = (x: number, y: number) => image.data[(y * image.width + x) * 4 + 3] ?? -1;
  for (const [x, y] of [
    [4, 4],
    [251, 4],
    [4, 187],
    [251, 187],
  ] as const) {
    assert.ok(alpha(x, y) < 32, `corner (${x}, ${y}) alpha ${alpha(x, y)}`);
  }
  assert.ok(alpha(128, 96) > 200, `centre alpha ${alpha(128, 96)}`);
});
