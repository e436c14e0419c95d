/**
 * OCR with tesseract.js. Language data comes from the `@tesseract.js-data/<lang>` npm packages and is read
 * from disk, so nothing is downloaded at run time (tesseract's default langPath is a CDN).
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { definePredictor, input, output } from "@replicant/runtime";
import { createWorker, OEM, PSM, type Worker } from "tesseract.js";

const require = createRequire(import.meta.url);

/** Tesseract's page-segmentation modes, by the names its CLI documents (`--psm N`). */
export const PAGE_SEGMENTATION_MODES = {
  auto: PSM.AUTO,
  single_column: PSM.SINGLE_COLUMN,
  single_block: PSM.SINGLE_BLOCK,
  single_line: PSM.SINGLE_LINE,
  single_word: PSM.SINGLE_WORD,
  sparse_text: PSM.SPARSE_TEXT,
} as const;
type PageSegmentationMode = keyof typeof PAGE_SEGMENTATION_MODES;

/**
 * The directory holding `<lang>.traineddata.gz` for the LSTM engine, from the language's npm package.
 * Throws a message naming the package to install when it is missing.
 */
export function languageDataPath(language: string): string {
  const packageName = `@tesseract.js-data/${language}`;
  let packageJson: string;
  try {
    packageJson = require.resolve(`${packageName}/package.json`);
  } catch {
    throw new Error(`no language data for "${language}": install the npm package ${packageName}`);
  }
  // "_best_int" is the integer-quantized LSTM model tesseract.js itself picks for OEM.LSTM_ONLY.
  return join(dirname(packageJson), "4.0.0_best_int");
}

async function startWorker(language: string): Promise<Worker> {
  return createWorker(language, OEM.LSTM_ONLY, {
    langPath: languageDataPath(language),
    gzip: true,
    // The data is already on disk: don't copy it into a cache directory.
    cacheMethod: "none",
  });
}

interface OcrState {
  workers: Map<string, Promise<Worker>>;
}

function workerFor(state: OcrState, language: string): Promise<Worker> {
  let worker = state.workers.get(language);
  if (!worker) {
    worker = startWorker(language);
    // A failed start must not be cached: the next request retries (e.g. after the package is installed).
    worker.catch(() => state.workers.delete(language));
    state.workers.set(language, worker);
  }
  return worker;
}

export default definePredictor({
  input: {
    image: input.file({ description: "Image with text (PNG, JPEG, BMP or other formats tesseract reads)" }),
    language: input.string({
      default: "eng",
      regex: "^[a-z_]+$",
      description: "Tesseract language code; `@tesseract.js-data/<code>` must be installed (eng is)",
    }),
    page_segmentation_mode: input.string({
      default: "auto",
      choices: Object.keys(PAGE_SEGMENTATION_MODES) as PageSegmentationMode[],
      description:
        "How tesseract splits the page: a whole page, one block, one line, one word, or sparse text",
    }),
  },
  output: output.string(),
  async setup(ctx) {
    const state: OcrState = { workers: new Map() };
    await workerFor(state, "eng");
    ctx.log("tesseract worker ready (eng)");
    return state;
  },
  async predict({ image, language, page_segmentation_mode }, ctx) {
    const worker = await workerFor(ctx.state, language);
    // One worker serves predictions one at a time (concurrency 1), so setting parameters per call is safe.
    await worker.setParameters({ tessedit_pageseg_mode: PAGE_SEGMENTATION_MODES[page_segmentation_mode] });
    const result = await worker.recognize(image);
    ctx.metric("confidence", result.data.confidence);
    return result.data.text.trim();
  },
});

/** Stops the tesseract worker threads (they keep the process alive). */
export async function terminateWorkers(state: OcrState): Promise<void> {
  const workers = [...state.workers.values()];
  state.workers.clear();
  await Promise.all(workers.map(async (worker) => (await worker).terminate()));
}
