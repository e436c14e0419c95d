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

/** Runs of one mespeak instance before a fresh one is made (its engine breaks at the 80th). */
export const RUNS_PER_INSTANCE = 50;

/**
 * mespeak with its known defect worked around: the emscripten build of eSpeak breaks at the 80th run of
 * one instance, whatever the text (a corrupt dictionary read, then V8 aborts the whole process on an
 * invalid array size; mespeak's own recovery code is never called). mespeak keeps its instance in module
 * state, so a fresh one is a fresh load of its index (ESpeak.js stays cached): ~20 ms every
 * {@link RUNS_PER_INSTANCE} runs.
 */
export class Speaker {
  private meSpeak: MeSpeak;
  private runs = 0;

  constructor() {
    this.meSpeak = Speaker.load();
  }

  /** A fresh instance with its config and the default voice loaded. */
  private static load(): MeSpeak {
    delete require.cache[MESPEAK_PATH];
    const meSpeak = require(MESPEAK_PATH) as MeSpeak;
    // In Node mespeak cannot fetch its config and voices by URL: they must be passed in as objects.
    meSpeak.loadConfig(require("mespeak/src/mespeak_config.json"));
    meSpeak.loadVoice(require("mespeak/voices/en/en-us.json"));
    return meSpeak;
  }

  /** `meSpeak.speak` with `rawdata` set: the WAV bytes, or null when eSpeak made none. */
  speak(text: string, options: Record<string, unknown> & { voice: string }): number[] | null {
    if (this.runs >= RUNS_PER_INSTANCE) {
      this.meSpeak = Speaker.load();
      this.runs = 0;
    }
    this.runs++;
    const { voice } = options;
    if (!this.meSpeak.isVoiceLoaded(voice))
      this.meSpeak.loadVoice(require(join(VOICES_DIR, `${voice}.json`)));
    return this.meSpeak.speak(text, options);
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
