/**
 * A tiny llama with seeded random weights, written as a GGUF v3 file (about 40 KB): gibberish text, but a real
 * SentencePiece-style tokenizer, sampler and token stream through llama.cpp. Tests generate it when no GGUF
 * is at hand, so no .gguf file is ever committed.
 *
 * The shape follows llama-2-tiny-random.gguf (1 block, 8-wide embeddings, 2 heads of 4, a 32-wide
 * feed-forward, 4096 context), with every tensor F32 and a vocabulary of a few hundred tokens instead of
 * 32000: `<unk>`, `<s>`, `</s>`, the byte tokens `<0x00>`..`<0xFF>` (llama.cpp's byte fallback, and its
 * newline token), then `▁`, printable ASCII and a few dozen words with every `▁`-prefix of each (so the
 * bigram merges reach the whole word).
 *
 * The output rows of the special and byte tokens are zero, so their logit is always 0 while the text tokens'
 * are random: greedy and top-k sampling pick text tokens, and a generation runs to its token limit instead of
 * ending early on `</s>` or emitting lone bytes.
 */
import { writeFile } from "node:fs/promises";

export interface TinyGgufOptions {
  /** Seed of the weights (default 1): the same seed writes the same bytes. */
  seed?: number;
}

/** The model's hyperparameters, for tests that check them. */
export const TINY_GGUF = {
  embeddingLength: 8,
  blockCount: 1,
  feedForwardLength: 32,
  headCount: 2,
  headCountKv: 2,
  contextLength: 4096,
} as const;

const ALIGNMENT = 32;

const WORDS = [
  "once",
  "upon",
  "time",
  "there",
  "was",
  "the",
  "and",
  "a",
  "to",
  "of",
  "in",
  "is",
  "it",
  "hello",
  "world",
  "goodbye",
  "hi",
  "be",
  "brief",
  "tiny",
  "random",
  "llama",
  "model",
  "token",
  "story",
  "cat",
  "dog",
  "sun",
  "moon",
  "sky",
];

// GGUF metadata value types.
const U32 = 4;
const I32 = 5;
const F32 = 6;
const BOOL = 7;
const STRING = 8;
const ARRAY = 9;

// tokenizer.ggml.token_type values.
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const BYTE = 6;

// ggml tensor types.
const GGML_F32 = 0;
const ALL_F32 = 0; // general.file_type

/** A growable little-endian byte buffer. */
class Writer {
  private bytes = new Uint8Array(1 << 16);
  private view = new DataView(this.bytes.buffer);
  length = 0;

  private reserve(n: number): number {
    const at = this.length;
    if (at + n > this.bytes.length) {
      let size = this.bytes.length * 2;
      while (at + n > size) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.bytes.subarray(0, at));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    this.length += n;
    return at;
  }
  u32(value: number): void {
    this.view.setUint32(this.reserve(4), value, true);
  }
  i32(value: number): void {
    this.view.setInt32(this.reserve(4), value, true);
  }
  u64(value: number): void {
    this.view.setBigUint64(this.reserve(8), BigInt(value), true);
  }
  f32(value: number): void {
    this.view.setFloat32(this.reserve(4), value, true);
  }
  u8(value: number): void {
    this.view.setUint8(this.reserve(1), value);
  }
  string(value: string): void {
    const encoded = new TextEncoder().encode(value);
    this.u64(encoded.length);
    this.bytes.set(encoded, this.reserve(encoded.length));
  }
  f32s(values: Float32Array): void {
    for (const value of values) this.f32(value);
  }
  align(): void {
    this.reserve((ALIGNMENT - (this.length % ALIGNMENT)) % ALIGNMENT);
  }
  result(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}

type Metadata =
  | { type: "u32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "strings"; value: string[] }
  | { type: "f32s"; value: number[] }
  | { type: "i32s"; value: number[] };

function writeMetadata(out: Writer, key: string, entry: Metadata): void {
  out.string(key);
  switch (entry.type) {
    case "u32":
      out.u32(U32);
      out.u32(entry.value);
      return;
    case "f32":
      out.u32(F32);
      out.f32(entry.value);
      return;
    case "bool":
      out.u32(BOOL);
      out.u8(entry.value ? 1 : 0);
      return;
    case "string":
      out.u32(STRING);
      out.string(entry.value);
      return;
    case "strings":
      out.u32(ARRAY);
      out.u32(STRING);
      out.u64(entry.value.length);
      for (const value of entry.value) out.string(value);
      return;
    case "f32s":
      out.u32(ARRAY);
      out.u32(F32);
      out.u64(entry.value.length);
      for (const value of entry.value) out.f32(value);
      return;
    case "i32s":
      out.u32(ARRAY);
      out.u32(I32);
      out.u64(entry.value.length);
      for (const value of entry.value) out.i32(value);
      return;
  }
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Vocabulary {
  tokens: string[];
  scores: number[];
  types: number[];
  /** Tokens that generation should pick: the NORMAL ones. */
  text: boolean[];
}

function vocabulary(): Vocabulary {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [UNKNOWN, CONTROL, CONTROL];
  for (let byte = 0; byte < 256; byte++) {
    tokens.push(`<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(BYTE);
  }
  const pieces = new Set<string>(["▁"]);
  for (let code = 0x21; code < 0x7f; code++) pieces.add(String.fromCharCode(code));
  for (const word of WORDS) {
    for (let end = 1; end <= word.length; end++) pieces.add(`▁${word.slice(0, end)}`);
  }
  const scores = tokens.map(() => 0);
  let rank = 0;
  for (const piece of pieces) {
    tokens.push(piece);
    types.push(NORMAL);
    scores.push(-rank++);
  }
  return { tokens, scores, types, text: types.map((type) => type === NORMAL) };
}

interface Tensor {
  name: string;
  /** ggml order: the innermost (row) dimension first. */
  dims: number[];
  data: Float32Array;
}

/** Writes a tiny random-weight llama GGUF (v3, F32, 32-byte aligned) to `path`. */
export async function writeTinyGguf(path: string, options: TinyGgufOptions = {}): Promise<void> {
  await writeFile(path, tinyGguf(options));
}

/** The bytes of the GGUF that {@link writeTinyGguf} writes. */
export function tinyGguf(options: TinyGgufOptions = {}): Uint8Array {
  const next = random(options.seed ?? 1);
  const vocab = vocabulary();
  const nVocab = vocab.tokens.length;
  const { embeddingLength: nEmbd, feedForwardLength: nFf, headCount, headCountKv } = TINY_GGUF;
  const nEmbdKv = (nEmbd / headCount) * headCountKv;

  const uniform = (size: number, scale: number): Float32Array => {
    const data = new Float32Array(size);
    for (let i = 0; i < size; i++) data[i] = (next() * 2 - 1) * scale;
    return data;
  };
  const ones = (size: number): Float32Array => new Float32Array(size).fill(1);
  const matrix = (name: string, cols: number, rows: number): Tensor => ({
    name,
    dims: [cols, rows],
    data: uniform(cols * rows, 1 / Math.sqrt(cols)),
  });

  const output = uniform(nEmbd * nVocab, 1);
  vocab.text.forEach((isText, token) => {
    if (!isText) output.fill(0, token * nEmbd, (token + 1) * nEmbd);
  });
  const tensors: Tensor[] = [
    { name: "token_embd.weight", dims: [nEmbd, nVocab], data: uniform(nEmbd * nVocab, 1) },
  ];
  for (let block = 0; block < TINY_GGUF.blockCount; block++) {
    const blk = `blk.${block}`;
    tensors.push(
      { name: `${blk}.attn_norm.weight`, dims: [nEmbd], data: ones(nEmbd) },
      matrix(`${blk}.attn_q.weight`, nEmbd, nEmbd),
      matrix(`${blk}.attn_k.weight`, nEmbd, nEmbdKv),
      matrix(`${blk}.attn_v.weight`, nEmbd, nEmbdKv),
      matrix(`${blk}.attn_output.weight`, nEmbd, nEmbd),
      { name: `${blk}.ffn_norm.weight`, dims: [nEmbd], data: ones(nEmbd) },
      matrix(`${blk}.ffn_gate.weight`, nEmbd, nFf),
      matrix(`${blk}.ffn_up.weight`, nEmbd, nFf),
      matrix(`${blk}.ffn_down.weight`, nFf, nEmbd),
    );
  }
  tensors.push(
    { name: "output_norm.weight", dims: [nEmbd], data: ones(nEmbd) },
    { name: "output.weight", dims: [nEmbd, nVocab], data: output },
  );

  const metadata: [string, Metadata][] = [
    ["general.architecture", { type: "string", value: "llama" }],
    ["general.name", { type: "string", value: "tiny random llama" }],
    ["general.alignment", { type: "u32", value: ALIGNMENT }],
    ["general.file_type", { type: "u32", value: ALL_F32 }],
    ["llama.context_length", { type: "u32", value: TINY_GGUF.contextLength }],
    ["llama.embedding_length", { type: "u32", value: nEmbd }],
    ["llama.block_count", { type: "u32", value: TINY_GGUF.blockCount }],
    ["llama.feed_forward_length", { type: "u32", value: nFf }],
    ["llama.rope.dimension_count", { type: "u32", value: nEmbd / headCount }],
    ["llama.attention.head_count", { type: "u32", value: headCount }],
    ["llama.attention.head_count_kv", { type: "u32", value: headCountKv }],
    ["llama.attention.layer_norm_rms_epsilon", { type: "f32", value: 1e-5 }],
    ["tokenizer.ggml.model", { type: "string", value: "llama" }],
    ["tokenizer.ggml.tokens", { type: "strings", value: vocab.tokens }],
    ["tokenizer.ggml.scores", { type: "f32s", value: vocab.scores }],
    ["tokenizer.ggml.token_type", { type: "i32s", value: vocab.types }],
    ["tokenizer.ggml.bos_token_id", { type: "u32", value: 1 }],
    ["tokenizer.ggml.eos_token_id", { type: "u32", value: 2 }],
    ["tokenizer.ggml.unknown_token_id", { type: "u32", value: 0 }],
    ["tokenizer.ggml.add_bos_token", { type: "bool", value: true }],
    ["tokenizer.ggml.add_eos_token", { type: "bool", value: false }],
  ];

  const out = new Writer();
  out.u32(0x46554747); // "GGUF"
  out.u32(3);
  out.u64(tensors.length);
  out.u64(metadata.length);
  for (const [key, entry] of metadata) writeMetadata(out, key, entry);
  let offset = 0;
  for (const tensor of tensors) {
    out.string(tensor.name);
    out.u32(tensor.dims.length);
    for (const dim of tensor.dims) out.u64(dim);
    out.u32(GGML_F32);
    out.u64(offset);
    offset += Math.ceil((tensor.data.length * 4) / ALIGNMENT) * ALIGNMENT;
  }
  out.align();
  for (const tensor of tensors) {
    out.f32s(tensor.data);
    out.align();
  }
  return out.result();
}
