/**
 * Image classification with nsfwjs: a MobileNetV2 (or V2Mid) fine-tuned on five content classes (Drawing,
 * Hentai, Neutral, Porn, Sexy). The weights are compiled into the npm package, so nothing is fetched.
 * Runs on tfjs with the WASM backend (tfjs-node cannot install offline; the pure-JS CPU backend is ~15× slower).
 */
import { decodeImageFile, toRgb } from "@replicant/model-kit";
import { definePredictor, input, output } from "@replicant/runtime";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { load, type NSFWJS } from "nsfwjs";

export const MODELS = ["MobileNetV2", "MobileNetV2Mid"] as const;

/** Selects tfjs's WASM backend once per process (single-threaded: the threaded build needs a browser). */
export async function useWasmBackend(): Promise<void> {
  if (tf.getBackend() === "wasm") return;
  if (!(await tf.setBackend("wasm"))) throw new Error("tfjs WASM backend failed to initialize");
  await tf.ready();
}

/** Classifies RGB pixels; returns every class with its probability, most likely first. */
export async function classifyPixels(
  model: NSFWJS,
  rgb: Uint8Array,
  width: number,
  height: number,
): Promise<{ label: string; probability: number }[]> {
  const image = tf.tensor3d(rgb, [height, width, 3], "int32");
  try {
    const predictions = await model.classify(image, 5);
    return predictions.map((p: { className: string; probability: number }) => ({
      label: p.className,
      probability: p.probability,
    }));
  } finally {
    image.dispose();
  }
}

export default definePredictor({
  input: {
    image: input.file({ description: "PNG or JPEG image" }),
  },
  output: output.array(
    output.object({ label: output.string(), probability: output.number() }, { name: "Prediction" }),
  ),
  async setup(ctx) {
    await useWasmBackend();
    const name = process.env.REPLICANT_CLASSIFY_MODEL ?? "MobileNetV2";
    if (!(MODELS as readonly string[]).includes(name)) {
      throw new Error(`REPLICANT_CLASSIFY_MODEL must be one of ${MODELS.join(", ")}, got ${name}`);
    }
    const model = await load(name);
    ctx.log(`nsfwjs ${name} loaded on tfjs ${tf.getBackend()}`);
    return { model };
  },
  async predict({ image }, ctx) {
    const decoded = await decodeImageFile(image);
    return classifyPixels(ctx.state.model, toRgb(decoded), decoded.width, decoded.height);
  },
});
