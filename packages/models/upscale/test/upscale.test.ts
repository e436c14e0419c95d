import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import {
  type DirectRunner,
  decodeImageBytes,
  directRunner,
  encodePng,
  type RgbaImage,
} from "@replicant/model-kit";
import upscale from "../src/index.js";

let runner: DirectRunner<typeof upscale.input, typeof upscale.output>;
let source: string;
let sourceImage: RgbaImage;

// A smooth colour gradient with a dark disc: structure the network should preserve.
function testImage(width: number, height: number): RgbaImage {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inDisc = Math.hypot(x - width / 2, y - height / 2) < height / 4;
      const offset = (y * width + x) * 4;
      data.set(inDisc ? [20, 20, 60, 255] : [(x * 255) / width, (y * 255) / height, 160, 255], offset);
    }
  }
  return { width, height, data };
}

before(async () => {
  runner = await directRunner(upscale);
  // 150 px wide so the ×2 run crosses a tile boundary (tiles are 128 px).
  sourceImage = testImage(150, 40);
  source = join(runner.scratchDir, "source.png");
  await writeFile(source, encodePng(sourceImage));
});

async function run(scale: 2 | 3 | 4): Promise<RgbaImage> {
  const result = await runner.predict({ image: source, scale });
  assert.ok(result instanceof Blob);
  assert.equal(result.type, "image/png");
  return decodeImageBytes(new Uint8Array(await result.arrayBuffer()));
}

for (const scale of [2, 3, 4] as const) {
  test(`×${scale} returns a ${150 * scale}×${40 * scale} PNG that looks like the input`, async () => {
    const image = await run(scale);
    assert.equal(image.width, 150 * scale);
    assert.equal(image.height, 40 * scale);
    // Sample each source pixel's block centre in the output: the colours must match closely.
    let error = 0;
    for (let y = 0; y < 40; y++) {
      for (let x = 0; x < 150; x++) {
        const out =
          ((y * scale + Math.floor(scale / 2)) * image.width + x * scale + Math.floor(scale / 2)) * 4;
        const src = (y * 150 + x) * 4;
        for (let c = 0; c < 3; c++)
          error += Math.abs((image.data[out + c] ?? 0) - (sourceImage.data[src + c] ?? 0));
      }
    }
    const meanError = error / (150 * 40 * 3);
    assert.ok(meanError < 12, `mean absolute colour error ${meanError}`);
  });
}

test("rejects a scale outside 2, 3, 4", async () => {
  await assert.rejects(runner.predict({ image: source, scale: 8 as 2 }), /scale/);
});
