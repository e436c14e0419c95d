/**
 * Text to speech with mespeak: eSpeak compiled to JavaScript, with its voice data in the npm package.
 * mespeak is GPL-3.0, so this package is optional: the server and CLI do not depend on it.
 */
import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { definePredictor, input, output } from "@replicant/runtime";

const require = createRequire(import.meta.url);

interface MeSpeak {
  loadConfig(config: unknown): void;
  loadVoice(voice: unknown): void;
  isVoiceLoaded(id: string): boolean;
  speak(text: string, options: Record<string, unknown>): number[] | null;
}

const VOICES_DIR = join(dirname(require.resolve("mespeak/package.json")), "voices");

/** Voice ids as mespeak names them ("en/en-us", "de", …), from the voice files in the package. */
export const VOICES: string[] = readdirSync(VOICES_DIR, { recursive: true, encoding: "utf8" })
  .filter((file) => file.endsWith(".json"))
  .map((file) => file.replace(/\.json$/, "").replaceAll("\\", "/"))
  .sort();

/** eSpeak's voice variants (pitch and formant presets), applied on top of a language voice. */
export const VARIANTS = [
  "default",
  "f1",
  "f2",
  "f3",
  "f4",
  "f5",
  "m1",
  "m2",
  "m3",
  "m4",
  "m5",
  "m6",
  "m7",
  "croak",
  "klatt",
  "whisper",
];

const MESPEAK_PATH = require.resolve("mespeak");
const ESPEAK_PATH = require.resolve("mespeak/src/ESpeak.js");

/** What mespeak's emscripten build of eSpeak exposes: its module (heap, allocator) and file system. */
interface Engine {
  Module?: {
    HEAP8?: Int8Array;
    allocate?: (data: number[], type: string, kind: number) => number;
    ALLOC_STATIC?: number;
  };
}

/**
 * Runs of one engine before a fresh one is made, used only when the engine's heap cannot be read (a
 * different mespeak build): eSpeak leaks ~650 KB of its 50 MB heap a run, so it breaks at the 80th.
 */
export const RUNS_PER_INSTANCE = 50;

/** Heap left free before a run, as a multiple of the most one run has taken so far. */
const HEADROOM_RUNS = 3;

/**
 * mespeak with its known defect worked around. Its emscripten build of eSpeak (2011) allocates with a bump
 * allocator that never frees, in a fixed 50 MB heap, and every run loads eSpeak's data again: each run
 * takes ~650 KB for good (whatever the text or voice), and the 80th run reads its dictionary past the end
 * of the heap (a corrupt read, then V8 aborts the whole process on an invalid array size; mespeak's own
 * recovery code is never called). So the speaker reads the heap's top after each run and makes a fresh
 * engine before a run could overflow it: ~20–40 ms (mostly mespeak decoding its config) every ~75 runs.
 * mespeak keeps its engine in module state, so a fresh one is a fresh load of its index (ESpeak.js, the
 * engine's code, stays cached).
 */
export class Speaker {
  private meSpeak: MeSpeak;
  private engine: Engine | undefined;
  private runs = 0;
  private largestRun = 0;
  /** Fresh engines made after the first, so far. */
  reloads = 0;

  constructor() {
    [this.meSpeak, this.engine] = Speaker.load();
  }

  /** A fresh instance with its config and the default voice loaded, and its engine when it can be seen. */
  private static load(): [MeSpeak, Engine | undefined] {
    const ESpeak = require(ESPEAK_PATH) as new () => Engine;
    const cached = require.cache[ESPEAK_PATH];
    let engine: Engine | undefined;
    // mespeak's index constructs its engine from ESpeak.js's export: wrapped for the load, to keep a handle.
    if (cached)
      cached.exports = function Engine() {
        engine = new ESpeak();
        return engine;
      };
    let meSpeak: MeSpeak;
    try {
      delete require.cache[MESPEAK_PATH];
      meSpeak = require(MESPEAK_PATH) as MeSpeak;
    } finally {
      if (cached) cached.exports = ESpeak;
    }
    // In Node mespeak cannot fetch its config and voices by URL: they must be passed in as objects.
    meSpeak.loadConfig(require("mespeak/src/mespeak_config.json"));
    meSpeak.loadVoice(require("mespeak/voices/en/en-us.json"));
    return [meSpeak, engine];
  }

  /** Bytes the engine's heap has left, or undefined when it cannot be read. */
  private heapLeft(): number | undefined {
    const module = this.engine?.Module;
    if (!module?.HEAP8 || !module.allocate || module.ALLOC_STATIC === undefined) return undefined;
    // A static allocation returns the allocator's top (and takes 4 bytes of the heap).
    return module.HEAP8.length - module.allocate([0], "i8", module.ALLOC_STATIC);
  }

  /** `meSpeak.speak` with `rawdata` set: the WAV bytes, or null when eSpeak made none. */
  speak(text: string, options: Record<string, unknown> & { voice: string }): number[] | null {
    let left = this.heapLeft();
    const full =
      left === undefined
        ? this.runs >= RUNS_PER_INSTANCE
        : left < HEADROOM_RUNS * Math.max(this.largestRun, 1 << 20);
    if (full) {
      [this.meSpeak, this.engine] = Speaker.load();
      this.runs = 0;
      this.reloads++;
      left = this.heapLeft();
    }
    this.runs++;
    const { voice } = options;
    if (!this.meSpeak.isVoiceLoaded(voice))
      this.meSpeak.loadVoice(require(join(VOICES_DIR, `${voice}.json`)));
    const wav = this.meSpeak.speak(text, options);
    // What this run took (a voice loaded for it included: the headroom only grows with it).
    const after = this.heapLeft();
    if (left !== undefined && after !== undefined) this.largestRun = Math.max(this.largestRun, left - after);
    return wav;
  }
}

export default definePredictor({
  input: {
    text: input.string({ min_length: 1, max_length: 20000, description: "Text to speak" }),
    voice: input.string({ default: "en/en-us", choices: VOICES, description: "Language voice" }),
    variant: input.string({
      default: "default",
      choices: VARIANTS,
      description: "Voice variant (m1…m7 male, f1…f5 female)",
    }),
    speed: input.integer({ default: 175, ge: 80, le: 450, description: "Speaking rate in words per minute" }),
    pitch: input.integer({ default: 50, ge: 0, le: 99, description: "Base pitch" }),
  },
  output: output.file(),
  setup(ctx) {
    const speaker = new Speaker();
    ctx.log(`mespeak ready; ${VOICES.length} voices`);
    return { speaker };
  },
  predict({ text, voice, variant, speed, pitch }, ctx) {
    const options: Record<string, unknown> & { voice: string } = { rawdata: "array", voice, speed, pitch };
    if (variant !== "default") options.variant = variant;
    const wav = ctx.state.speaker.speak(text, options);
    if (!wav || wav.length === 0) throw new Error("eSpeak produced no audio");
    return new Blob([new Uint8Array(wav)], { type: "audio/wav" });
  },
});
