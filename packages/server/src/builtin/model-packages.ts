import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BuiltinModel } from "./builtin-model.js";

/**
 * Model packages (packages/models/*) that the server offers when they are installed. Listed ones appear
 * in models.list and the built-in collection; the others are templates that need weights from the user
 * (`replicant push OWNER/NAME --gguf FILE`).
 */
const LLM_ENVIRONMENT = ["REPLICANT_LLM_THREADS", "REPLICANT_GGUF_PATH"];
const PACKAGES: readonly { name: string; specifier: string; listed: boolean; environment?: string[] }[] = [
  { name: "ocr", specifier: "@replicant/model-ocr", listed: true },
  {
    name: "upscale",
    specifier: "@replicant/model-upscale",
    listed: true,
    environment: ["REPLICANT_UPSCALE_MAX_PIXELS"],
  },
  {
    name: "classify",
    specifier: "@replicant/model-classify",
    listed: true,
    environment: ["REPLICANT_CLASSIFY_MODEL"],
  },
  { name: "char-lm", specifier: "@replicant/model-char-lm", listed: true },
  { name: "tts", specifier: "@replicant/model-tts", listed: true },
  { name: "background-removal", specifier: "@replicant/model-background-removal", listed: true },
  { name: "llm-gguf", specifier: "@replicant/model-llm-gguf", listed: false, environment: LLM_ENVIRONMENT },
  {
    name: "llm-gguf-embeddings",
    specifier: "@replicant/model-llm-gguf/embeddings",
    listed: false,
    environment: LLM_ENVIRONMENT,
  },
];

function resolveInstalled(specifier: string): string | undefined {
  try {
    const path = fileURLToPath(import.meta.resolve(specifier));
    return existsSync(path) ? path : undefined;
  } catch {
    return undefined; // not installed: an optional package
  }
}

async function packageManifest(
  entry: string,
): Promise<{ dir: string; name: string; version: string; description?: string }> {
  let dir = dirname(entry);
  while (dir !== dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      const json = JSON.parse(await readFile(manifest, "utf8")) as {
        name?: string;
        version?: string;
        description?: string;
      };
      if (json.name)
        return {
          dir,
          name: json.name,
          version: json.version ?? "0.0.0",
          ...(json.description ? { description: json.description } : {}),
        };
    }
    dir = dirname(dir);
  }
  throw new Error(`no package.json above ${entry}`);
}

/** The installed model packages, as built-in models owned by `replicant`. */
export async function installedModelPackages(): Promise<BuiltinModel[]> {
  const models: BuiltinModel[] = [];
  for (const pkg of PACKAGES) {
    const predictorPath = resolveInstalled(pkg.specifier);
    if (!predictorPath) continue;
    const manifest = await packageManifest(predictorPath);
    const readmePath = join(manifest.dir, "README.md");
    models.push({
      owner: "replicant",
      name: pkg.name,
      // A new package version is a new model version.
      versionId: createHash("sha256").update(`${pkg.specifier}@${manifest.version}`).digest("hex"),
      description: manifest.description ?? pkg.name,
      readme: existsSync(readmePath) ? await readFile(readmePath, "utf8") : `# ${pkg.name}\n`,
      predictorPath,
      listed: pkg.listed,
      ...(pkg.environment ? { environment: pkg.environment } : {}),
    });
  }
  return models;
}
