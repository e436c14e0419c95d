import assert from "node:assert/strict";
import { before, test } from "node:test";
import { type DirectRunner, directRunner } from "@replicant/model-kit";
import tts, { RUNS_PER_INSTANCE, Speaker } from "../src/index.js";

let runner: DirectRunner<typeof tts.input, typeof tts.output>;

before(async () => {
  runner = await directRunner(tts);
});

interface Wav {
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  seconds: number;
  samples: Int16Array;
}

/** Parses a PCM WAV file's RIFF chunks, failing on anything malformed. */
function parseWav(bytes: Uint8Array): Wav {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (offset: number) => String.fromCharCode(...bytes.subarray(offset, offset + 4));
  assert.equal(tag(0), "RIFF");
  assert.equal(tag(8), "WAVE");
  let offset = 12;
  let format: Omit<Wav, "seconds" | "samples"> | undefined;
  while (offset + 8 <= bytes.length) {
    const id = tag(offset);
    const size = view.getUint32(offset + 4, true);
    if (id === "fmt ") {
      assert.equal(view.getUint16(offset + 8, true), 1, "PCM");
      format = {
        channels: view.getUint16(offset + 10, true),
        sampleRate: view.getUint32(offset + 12, true),
        bitsPerSample: view.getUint16(offset + 22, true),
      };
    }
    if (id === "data") {
      assert.ok(format, "fmt chunk before data");
      const end = Math.min(bytes.length, offset + 8 + size);
      const data = bytes.slice(offset + 8, end);
      const samples = new Int16Array(data.buffer, 0, Math.floor(data.length / 2));
      return { ...format, seconds: samples.length / format.channels / format.sampleRate, samples };
    }
    offset += 8 + size + (size % 2);
  }
  throw new Error("no data chunk");
}

async function speak(input: Parameters<typeof runner.predict>[0]): Promise<Wav> {
  const result = await runner.predict(input);
  assert.ok(result instanceof Blob);
  assert.equal(result.type, "audio/wav");
  return parseWav(new Uint8Array(await result.arrayBuffer()));
}

test("speaks a sentence as a valid 16-bit PCM WAV of plausible length", async () => {
  // 9 words at 175 words per minute: about 3 s of speech.
  const wav = await speak({ text: "The quick brown fox jumps over the lazy dog today." });
  assert.equal(wav.channels, 1);
  assert.equal(wav.bitsPerSample, 16);
  assert.equal(wav.sampleRate, 22050);
  assert.ok(wav.seconds > 1.5 && wav.seconds < 6, `${wav.seconds} s`);
  const peak = wav.samples.reduce((max, s) => Math.max(max, Math.abs(s)), 0);
  assert.ok(peak > 1000, `the audio is silent (peak ${peak})`);
});

test("a faster speed gives shorter audio", async () => {
  const text = "Replicant runs models on your own machines.";
  const slow = await speak({ text, speed: 120 });
  const fast = await speak({ text, speed: 300 });
  assert.ok(fast.seconds < slow.seconds * 0.75, `${fast.seconds} s vs ${slow.seconds} s`);
});

test("speaks another language voice", async () => {
  const wav = await speak({ text: "Guten Tag, wie geht es dir?", voice: "de", variant: "f2" });
  assert.ok(wav.seconds > 0.8, `${wav.seconds} s`);
});

test("speaks past mespeak's 80th run in one process (a fresh engine before its heap runs out)", async () => {
  // Without the fresh engine the 80th run aborted the whole process: each run leaks ~650 KB of 50 MB.
  assert.ok(RUNS_PER_INSTANCE < 80);
  const speaker = new Speaker();
  const first = speaker.speak("Hi.", { rawdata: "array", voice: "en/en-us" });
  for (let run = 2; run <= 170; run++) {
    const wav = speaker.speak("Hi.", { rawdata: "array", voice: run % 2 ? "en/en-us" : "de" });
    assert.ok(wav && wav.length > 1000, `run ${run} made no audio`);
    if (run % 2) assert.deepEqual(wav, first, `run ${run} differs from the first`);
  }
  // Made from the heap's measured top (~75 runs an engine), not the fixed fallback (3 in 170 runs).
  assert.equal(speaker.reloads, 2);
});
