import { fileURLToPath } from "node:url";
import type { BuiltinModel } from "./builtin-model.js";
import { installedModelPackages } from "./model-packages.js";

export type { BuiltinModel } from "./builtin-model.js";

const predictor = (file: string) => fileURLToPath(new URL(`./predictors/${file}.js`, import.meta.url));

export const BUILTIN_MODELS: readonly BuiltinModel[] = [
  {
    owner: "replicate",
    name: "hello-world",
    // Replicate's own version id of replicate/hello-world, so code pinned to it runs here too.
    versionId: "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",
    description: "A tiny model that says hello",
    readme: "# hello-world\n\nSays hello: input `text`, output `hello <text>`.\n",
    predictorPath: predictor("hello-world"),
  },
  {
    owner: "replicant",
    name: "stream-test",
    versionId: "3f1e0c1e7a2b4d5c8e9f00112233445566778899aabbccddeeff001122334455",
    description: "Streams tokens with a delay, for testing streaming clients",
    readme:
      "# stream-test\n\nEmits `token-1 `, `token-2 `, … with `delay_ms` between them and one log line each. Set `fail` to end in an error; `token_size` pads each token.\n",
    predictorPath: predictor("stream-test"),
  },
  {
    owner: "replicant",
    name: "file-echo",
    versionId: "9a8b7c6d5e4f30211203948576abcdef0123456789abcdef0123456789abcdef",
    description: "Returns the file it is given, for testing file inputs and outputs",
    readme: "# file-echo\n\nInput `file`; output: the same bytes as a file.\n",
    predictorPath: predictor("file-echo"),
  },
  {
    owner: "replicant",
    name: "hello-trainable",
    versionId: "7e1d2c3b4a5968778695a4b3c2d1e0f0123456789abcdef0123456789abcdef0",
    description: "A hello model you can fine-tune with a greeting",
    readme: "# hello-trainable\n\nTrain with `greeting`; the new version says `<greeting> <text>`.\n",
    predictorPath: predictor("hello-trainable"),
  },
];

let catalog: Promise<readonly BuiltinModel[]> | undefined;

/** The core built-ins plus the model packages installed beside the server (looked up once). */
export function builtinCatalog(): Promise<readonly BuiltinModel[]> {
  catalog ??= installedModelPackages().then((packages) => [...BUILTIN_MODELS, ...packages]);
  return catalog;
}

export async function findBuiltin(name: string): Promise<BuiltinModel | undefined> {
  return (await builtinCatalog()).find((m) => `${m.owner}/${m.name}` === name);
}
