/**
 * Image upscaling with ESRGAN-slim (an RDN super-resolution network trained on DIV2K) from the
 * `@upscalerjs/esrgan-slim` package, whose Keras-converted weights are loaded straight from disk. The
 * `upscaler` library itself is not used: its Node entry requires `@tensorflow/tfjs-node`, which cannot install
 * offline, and its browser build does not load in Node. Runs on tfjs with the WASM backend.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { decodeImageFile, encodePng, fromRgb, type RgbaImage, toRgb } from "@replicant/model-kit";
import { definePredictor, input, output } from "@replicant/runtime";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";

const require = createRequire(import.meta.url);

/** The package root: its exports map hides package.json, so walk up from the main entry. */
function esrganSlimRoot(): string {
  let directory = dirname(require.resolve("@upscalerjs/esrgan-slim"));
  while (!existsSync(join(directory, "models", "x2", "model.json"))) {
    const parent = dirname(directory);
    if (parent === directory) throw new Error("cannot find the models directory of @upscalerjs/esrgan-slim");
    directory = parent;
  }
  return directory;
}

export const SCALES = [2, 3, 4] as const;
export type Scale = (typeof SCALES)[number];

/** Input tile edge: the patch size the weights were trained with; bounds memory for large images. */
const TILE = 128;
/** Context added around each tile so the seams between tiles don't show. */
const TILE_PADDING = 8;

interface ModelJson {
  modelTopology: tf.io.ModelArtifacts["modelTopology"];
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

/** Loads the layers model for one scale from the package's `models/x<scale>/` directory. */
export async function loadEsrganSlim(scale: Scale): Promise<tf.LayersModel> {
  const directory = join(esrganSlimRoot(), "models", `x${scale}`);
  const json = JSON.parse(await readFile(join(directory, "model.json"), "utf8")) as ModelJson;
  const weightSpecs = json.weightsManifest.flatMap((group) => group.weights);
  const shards = await Promise.all(
    json.weightsManifest.flatMap((group) => group.paths).map((path) => readFile(join(directory, path))),
  );
  const weightData = new Uint8Array(Buffer.concat(shards)).buffer;
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData }));
}

export async function useWasmBackend(): Promise<void> {
  if (tf.getBackend() === "wasm") return;
  if (!(await tf.setBackend("wasm"))) throw new Error("tfjs WASM backend failed to initialize");
  await tf.ready();
}

/** Upscales RGB pixels tile by tile; the model takes and returns values in 0…255. */
export function upscalePixels(
  model: tf.LayersModel,
  scale: number,
  rgb: Uint8Array,
  width: number,
  height: number,
) {
  const outWidth = width * scale;
  const outHeight = height * scale;
  const result = new Uint8Array(outWidth * outHeight * 3);
  const source = tf.tensor3d(rgb, [height, width, 3], "int32");
  try {
    for (let top = 0; top < height; top += TILE) {
      for (let left = 0; left < width; left += TILE) {
        const bottom = Math.min(height, top + TILE);
        const right = Math.min(width, left + TILE);
        const padTop = Math.max(0, top - TILE_PADDING);
        const padLeft = Math.max(0, left - TILE_PADDING);
        const padBottom = Math.min(height, bottom + TILE_PADDING);
        const padRight = Math.min(width, right + TILE_PADDING);
        const tile = tf.tidy(() => {
          const crop = tf.slice(source, [padTop, padLeft, 0], [padBottom - padTop, padRight - padLeft, 3]);
          const upscaled = model.predict(crop.toFloat().expandDims(0)) as tf.Tensor4D;
          // Keep only this tile's own area (drop the upscaled padding).
          const inner = tf.slice(
            upscaled.squeeze([0]),
            [(top - padTop) * scale, (left - padLeft) * scale, 0],
            [(bottom - top) * scale, (right - left) * scale, 3],
          );
          return inner.clipByValue(0, 255).round().toInt();
        });
        const values = tile.dataSync();
        tile.dispose();
        const tileWidth = (right - left) * scale;
        for (let y = 0; y < (bottom - top) * scale; y++) {
          const row = values.subarray(y * tileWidth * 3, (y + 1) * tileWidth * 3);
          result.set(row, ((top * scale + y) * outWidth + left * scale) * 3);
        }
      }
    }
  } finally {
    source.dispose();
  }
  return { width: outWidth, height: outHeight, rgb: result };
}

export default definePredictor({
  input: {
    image: input.file({ description: "PNG or JPEG image" }),
    scale: input.integer({ default: 2, choices: SCALES, description: "Upscaling factor" }),
  },
  output: output.file(),
  async setup(ctx) {
    await useWasmBackend();
    const models = new Map<Scale, tf.LayersModel>();
    for (const scale of SCALES) models.set(scale, await loadEsrganSlim(scale));
    ctx.log(`ESRGAN-slim ×2/×3/×4 loaded on tfjs ${tf.getBackend()}`);
    return { models };
  },
  async predict({ image, scale }, ctx) {
    const model = ctx.state.models.get(scale);
    if (!model) throw new Error(`no model for scale ${scale}`);
    const decoded: RgbaImage = await decodeImageFile(image);
    const maxPixels = Number(process.env.REPLICANT_UPSCALE_MAX_PIXELS ?? 1024 * 1024);
    if (decoded.width * decoded.height > maxPixels) {
      throw new Error(
        `image is ${decoded.width}×${decoded.height}; the limit is ${maxPixels} input pixels (REPLICANT_UPSCALE_MAX_PIXELS)`,
      );
    }
    const started = performance.now();
    const upscaled = upscalePixels(model, scale, toRgb(decoded), decoded.width, decoded.height);
    ctx.metric("upscale_time", (performance.now() - started) / 1000);
    const png = encodePng(fromRgb(upscaled.rgb, upscaled.width, upscaled.height));
    return new Blob([new Uint8Array(png)], { type: "image/png" });
  },
});
