import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { generateModelTypes } from "../src/index.js";

// A Cog-shaped version schema: ordered inputs, an enum through allOf/$ref, a file input, bounds, defaults.
const imageModelSchema = {
  openapi: "3.0.2",
  components: {
    schemas: {
      Input: {
        type: "object",
        title: "Input",
        required: ["prompt"],
        properties: {
          seed: { type: "integer", title: "Seed", "x-order": 3, description: "Random seed", nullable: true },
          prompt: { type: "string", title: "Prompt", "x-order": 0, description: "What to draw" },
          image: { type: "string", format: "uri", title: "Image", "x-order": 1, description: "Init image" },
          scheduler: {
            allOf: [{ $ref: "#/components/schemas/scheduler" }],
            default: "K_EULER",
            "x-order": 2,
            description: "Scheduler */ with a comment terminator",
          },
          num_outputs: { type: "integer", minimum: 1, maximum: 4, default: 1, "x-order": 4 },
          "guidance-scale": { type: "number", "x-order": 5 },
          tags: { type: "array", items: { type: "string" }, "x-order": 6 },
        },
      },
      scheduler: { type: "string", enum: ["K_EULER", "DDIM", "DPMSolverMultistep"], title: "scheduler" },
      Output: { type: "array", items: { type: "string", format: "uri" }, title: "Output" },
    },
  },
};

const languageModelSchema = {
  components: {
    schemas: {
      Input: { type: "object", properties: { prompt: { type: "string" }, max_tokens: { type: "integer" } } },
      Output: {
        type: "array",
        items: { type: "string" },
        "x-cog-array-type": "iterator",
        "x-cog-array-display": "concatenate",
      },
    },
  },
};

const here = dirname(fileURLToPath(import.meta.url));
const sdkEntry = join(here, "..", "src", "index.js");

function typeCheck(files: Record<string, string>): string[] {
  const directory = join(here, "generated-types");
  mkdirSync(directory, { recursive: true });
  const paths = Object.entries(files).map(([name, source]) => {
    const file = join(directory, name);
    writeFileSync(file, source);
    return file;
  });
  const program = ts.createProgram(paths, {
    strict: true,
    noEmit: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ["lib.es2023.d.ts", "lib.dom.d.ts", "lib.dom.iterable.d.ts"],
    types: [],
    skipLibCheck: true,
  });
  return ts
    .getPreEmitDiagnostics(program)
    .map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"));
}

describe("generateModelTypes", () => {
  const source = generateModelTypes(imageModelSchema, {
    name: "stable-diffusion",
    ref: "stability-ai/stable-diffusion:27b93a24",
    importFrom: sdkEntry,
  });

  test("emits ordered, documented Input and Output types", () => {
    assert.match(source, /export interface StableDiffusionInput \{/);
    assert.match(source, /prompt: string;/, "required stays required");
    assert.match(source, /image\?: FileInput;/, "format uri input is a FileInput");
    assert.match(
      source,
      /scheduler\?: "K_EULER" \| "DDIM" \| "DPMSolverMultistep";/,
      "enum through allOf/$ref",
    );
    assert.match(source, /seed\?: number \| null;/);
    assert.match(source, /"guidance-scale"\?: number;/, "non-identifier keys are quoted");
    assert.match(source, /tags\?: string\[\];/);
    assert.match(source, /@defaultValue "K_EULER"/);
    assert.match(source, /Minimum: 1/);
    assert.ok(!source.includes("terminator */"), "comment terminators in descriptions are escaped");
    assert.match(source, /export type StableDiffusionOutput = FileOutput\[\];/);
    assert.match(
      source,
      /export const stableDiffusion = "stability-ai\/stable-diffusion:27b93a24" as ModelRef<StableDiffusionInput, StableDiffusionOutput>;/,
    );
    const order = ["prompt", "image", "scheduler", "seed", "num_outputs"].map((key) =>
      source.indexOf(`  ${key}`),
    );
    assert.deepEqual(
      [...order].sort((left, right) => left - right),
      order,
      "x-order is respected",
    );
  });

  test("iterator outputs are typed as arrays and documented as streamed; useFileOutput: false gives strings", () => {
    const language = generateModelTypes(languageModelSchema, { name: "llama" });
    assert.match(language, /export type LlamaOutput = string\[\];/);
    assert.match(language, /Streamed: the model yields text chunks/);
    assert.ok(!language.includes("import type"), "no imports when nothing needs them");
    const urls = generateModelTypes(imageModelSchema, { name: "sd", useFileOutput: false });
    assert.match(urls, /export type SdOutput = string\[\];/);
  });

  test("the generated source compiles, and run()/use()/runMany() are typed by it", () => {
    const usage = `
import { Replicant, type FileOutput } from ${JSON.stringify(sdkEntry)};
import { stableDiffusion, type StableDiffusionInput, type StableDiffusionOutput } from "./stable-diffusion.js";

export async function main(replicate: Replicant): Promise<void> {
  const images = await replicate.run(stableDiffusion, { input: { prompt: "a cat", scheduler: "DDIM" } });
  const first: FileOutput | undefined = images[0];
  const url: string = String(first?.url);
  const draw = replicate.use(stableDiffusion);
  const more: StableDiffusionOutput = await draw({ prompt: "a dog", image: new Blob([]) });
  const generic = await replicate.run<{ text: string }, string>("replicate/hello-world", { input: { text: "x" } });
  const upper: string = generic.toUpperCase();
  const results = await replicate.runMany(stableDiffusion, [{ prompt: "a" }, { prompt: "b" }], { concurrency: 2 });
  for (const result of results) if (result.status === "fulfilled") result.value satisfies StableDiffusionOutput;
  const input: StableDiffusionInput = { prompt: "p" };
  void [url, more, upper, input];
}
`;
    const errors = typeCheck({ "stable-diffusion.ts": source, "usage.ts": usage });
    assert.deepEqual(errors, []);
  });

  test("wrong inputs do not compile", () => {
    const misuse = `
import { Replicant } from ${JSON.stringify(sdkEntry)};
import { stableDiffusion } from "./stable-diffusion.js";
export async function main(replicate: Replicant): Promise<void> {
  await replicate.run(stableDiffusion, { input: { prompt: "a", scheduler: "NOPE" } });
  await replicate.run(stableDiffusion, { input: { scheduler: "DDIM" } });
  const output: string = await replicate.run(stableDiffusion, { input: { prompt: "a" } });
  void output;
}
`;
    const errors = typeCheck({ "stable-diffusion.ts": source, "misuse.ts": misuse });
    assert.equal(errors.length, 3, errors.join("\n"));
  });
});
