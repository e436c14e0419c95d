/**
 * Background removal with @imgly/background-removal-node: an ONNX segmentation model whose weights ship in the
 * npm package, run by onnxruntime-node on the CPU. AGPL-3.0, so this package is optional: the server and CLI do
 * not depend on it.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { removeBackground } from "@imgly/background-removal-node";
import { definePredictor, input, output } from "@replicant/runtime";

const require = createRequire(import.meta.url);

/**
 * Where the model files are. imgly's default is `file://<cwd>/node_modules/...`, which breaks whenever the
 * runner's working directory is not the install root, so point it at the resolved package.
 */
export function modelsUrl(): string {
  const entry = require.resolve("@imgly/background-removal-node");
  let root = dirname(entry);
  while (!root.endsWith("background-removal-node")) root = dirname(root);
  return pathToFileURL(join(root, "dist")).href + "/";
}

function imageType(bytes: Uint8Array): string {
  if (bytes[0] === 0x89 && bytes[1] === 0x50) return "image/png";
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return "image/jpeg";
  if (bytes[0] === 0x52 && bytes[1] === 0x49 && bytes[8] === 0x57) return "image/webp";
  throw new Error("unsupported image format: expected PNG, JPEG or WebP");
}

export default definePredictor({
  input: {
    image: input.file({ description: "PNG, JPEG or WebP image" }),
    model: input.string({
      default: "medium",
      choices: ["small", "medium"],
      description: "Segmentation model: small is faster, medium cuts cleaner edges",
    }),
  },
  output: output.file(),
  setup(ctx) {
    const publicPath = modelsUrl();
    ctx.log(`imgly models at ${publicPath}`);
    return { publicPath };
  },
  async predict({ image, model }, ctx) {
    const bytes = new Uint8Array(await readFile(image));
    const blob = new Blob([bytes], { type: imageType(bytes) });
    const result = await removeBackground(blob, {
      publicPath: ctx.state.publicPath,
      model,
      output: { format: "image/png" },
    });
    return new Blob([new Uint8Array(await result.arrayBuffer())], { type: "image/png" });
  },
});
