import { readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { usageError } from "./errors.js";

/** `replicant.json` in a predictor directory: which module is the predictor, and how to run it. */
export interface PredictorManifest {
  /** Path of the compiled predictor module, relative to the directory. */
  predictor: string;
  hardware?: string;
  description?: string;
  /** Environment variables the predictor's runner processes get on the server. */
  env?: Record<string, string>;
  /** The predictor needs the network: on the server it goes out only through its SSRF policy. */
  network?: boolean;
}

/**
 * Resolves PATH for `serve-model` and `push`: a predictor module itself, or a directory whose
 * `replicant.json` names it.
 */
export async function resolvePredictor(
  path: string,
): Promise<{ dir: string; predictorPath: string; manifest: PredictorManifest }> {
  const full = resolve(path);
  const info = await stat(full).catch(() => undefined);
  if (!info) throw usageError(`${path} does not exist`);
  if (info.isFile()) {
    return {
      dir: resolve(full, ".."),
      predictorPath: full,
      manifest: { predictor: full.split("/").at(-1) ?? full },
    };
  }
  let manifest: PredictorManifest;
  try {
    manifest = JSON.parse(await readFile(join(full, "replicant.json"), "utf8")) as PredictorManifest;
  } catch {
    throw usageError(
      `${path} has no readable replicant.json; it should say {"predictor": "dist/predict.js"}`,
    );
  }
  if (typeof manifest.predictor !== "string")
    throw usageError(`replicant.json in ${path} must name a "predictor" module`);
  const predictorPath = resolve(full, manifest.predictor);
  if (!predictorPath.startsWith(`${full}/`))
    throw usageError(`the predictor ${manifest.predictor} must be inside ${path}`);
  if (!(await stat(predictorPath).catch(() => undefined))?.isFile()) {
    throw usageError(`${manifest.predictor} does not exist in ${path}: build the predictor first`);
  }
  return { dir: full, predictorPath, manifest };
}
