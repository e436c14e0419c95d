// Regenerates weights/default.json from the committed corpus (run after changing either).
import { readFile, writeFile } from "node:fs/promises";
import { DEFAULT_CORPUS_PATH, DEFAULT_WEIGHTS_PATH, trainWeights } from "../src/index.js";

const weights = trainWeights(await readFile(DEFAULT_CORPUS_PATH, "utf8"));
await writeFile(DEFAULT_WEIGHTS_PATH, `${JSON.stringify(weights)}\n`);
console.log(`wrote ${DEFAULT_WEIGHTS_PATH}: ${Object.keys(weights.counts).length} contexts`);
