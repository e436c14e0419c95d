/**
 * A character-level n-gram language model with Witten–Bell interpolation: each order's estimate is mixed
 * with the next-shorter context's in proportion to how many distinct characters followed the context, down to
 * a uniform distribution over the vocabulary. Counts are additive, which makes fine-tuning "count the new
 * text, weighted" and keeps the weights a small JSON file.
 */

export const WEIGHTS_FORMAT = "replicant-char-lm";

export interface CharModelWeights {
  format: typeof WEIGHTS_FORMAT;
  version: 1;
  /** Longest n-gram: contexts are 0 … order-1 characters. */
  order: number;
  /** context → next character → (weighted) count. */
  counts: Record<string, Record<string, number>>;
}

export function emptyWeights(order: number): CharModelWeights {
  if (!Number.isInteger(order) || order < 1 || order > 12)
    throw new Error(`order must be 1…12, got ${order}`);
  return { format: WEIGHTS_FORMAT, version: 1, order, counts: {} };
}

/** Adds `text`'s n-gram counts, each multiplied by `weight`, to `weights` (in place). */
export function addText(weights: CharModelWeights, text: string, weight = 1): void {
  const chars = [...text.replace(/\r\n?/g, "\n")];
  for (let i = 0; i < chars.length; i++) {
    const next = chars[i]!;
    for (let k = 0; k < weights.order && k <= i; k++) {
      const context = chars.slice(i - k, i).join("");
      let row = weights.counts[context];
      if (!row) {
        row = {};
        weights.counts[context] = row;
      }
      row[next] = (row[next] ?? 0) + weight;
    }
  }
}

export function parseWeights(json: string): CharModelWeights {
  const value = JSON.parse(json) as Partial<CharModelWeights>;
  if (
    value.format !== WEIGHTS_FORMAT ||
    value.version !== 1 ||
    typeof value.order !== "number" ||
    !value.counts
  ) {
    throw new Error(`not ${WEIGHTS_FORMAT} v1 weights`);
  }
  return value as CharModelWeights;
}

/** A deterministic PRNG (mulberry32) so `seed` reproduces a generation. */
export function randomSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class CharModel {
  readonly vocabulary: string[];
  private readonly totals = new Map<string, { total: number; distinct: number }>();

  constructor(readonly weights: CharModelWeights) {
    for (const [context, row] of Object.entries(weights.counts)) {
      const values = Object.values(row);
      this.totals.set(context, { total: values.reduce((a, b) => a + b, 0), distinct: values.length });
    }
    this.vocabulary = Object.keys(weights.counts[""] ?? {}).sort();
    if (this.vocabulary.length === 0)
      throw new Error("the weights have no characters: train on a non-empty text");
  }

  /** P(next | the last order-1 characters of `history`) for every vocabulary character. */
  distribution(history: string): Float64Array {
    const chars = [...history];
    const probabilities = new Float64Array(this.vocabulary.length).fill(1 / this.vocabulary.length);
    // From the empty context up to the longest one seen in training, each level interpolates the one below.
    for (let k = 0; k < this.weights.order && k <= chars.length; k++) {
      const context = chars.slice(chars.length - k).join("");
      const row = this.weights.counts[context];
      const stats = this.totals.get(context);
      if (!row || !stats) break;
      const denominator = stats.total + stats.distinct;
      this.vocabulary.forEach((char, i) => {
        probabilities[i] = ((row[char] ?? 0) + stats.distinct * probabilities[i]!) / denominator;
      });
    }
    return probabilities;
  }

  /** Samples one character; temperature 0 takes the most likely one. */
  sample(history: string, temperature: number, random: () => number): string {
    const probabilities = this.distribution(history);
    if (temperature <= 0) {
      let best = 0;
      probabilities.forEach((p, i) => {
        if (p > probabilities[best]!) best = i;
      });
      return this.vocabulary[best]!;
    }
    const scaled = probabilities.map((p) => p ** (1 / temperature));
    const total = scaled.reduce((a, b) => a + b, 0);
    let r = random() * total;
    for (let i = 0; i < scaled.length; i++) {
      r -= scaled[i]!;
      if (r <= 0) return this.vocabulary[i]!;
    }
    return this.vocabulary[this.vocabulary.length - 1]!;
  }
}
