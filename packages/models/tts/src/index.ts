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
    const meSpeak = require("mespeak") as MeSpeak;
    // In Node mespeak cannot fetch its config and voices by URL: they must be passed in as objects.
    meSpeak.loadConfig(require("mespeak/src/mespeak_config.json"));
    meSpeak.loadVoice(require("mespeak/voices/en/en-us.json"));
    ctx.log(`mespeak ready; ${VOICES.length} voices`);
    return { meSpeak };
  },
  predict({ text, voice, variant, speed, pitch }, ctx) {
    const { meSpeak } = ctx.state;
    if (!meSpeak.isVoiceLoaded(voice)) meSpeak.loadVoice(require(join(VOICES_DIR, `${voice}.json`)));
    const options: Record<string, unknown> = { rawdata: "array", voice, speed, pitch };
    if (variant !== "default") options.variant = variant;
    const wav = meSpeak.speak(text, options);
    if (!wav || wav.length === 0) throw new Error("eSpeak produced no audio");
    return new Blob([new Uint8Array(wav)], { type: "audio/wav" });
  },
});
