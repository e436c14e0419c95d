/**
 * A small seeded generator (mulberry32): every fuzz case draws from its own stream, derived from the run's
 * seed and the case's index, so a case is the same whatever ran before it or beside it.
 */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The stream of case `index` of the run seeded with `seed`. */
  static forCase(seed: number, index: number): Random {
    let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return new Random((h ^ (h >>> 16)) >>> 0);
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.int(0, items.length - 1)] as T;
  }

  /** Letters and digits, like most ids and names. */
  word(min = 1, max = 12): string {
    const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    let text = "";
    for (let i = this.int(min, max); i > 0; i--) text += alphabet[this.int(0, alphabet.length - 1)];
    return text;
  }

  bytes(length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) bytes[i] = this.int(0, 255);
    return bytes;
  }

  /** A string that breaks naive code: empty, huge, control characters, lone surrogates, markup, paths. */
  nasty(): string {
    switch (this.int(0, 13)) {
      case 0:
        return "";
      case 1:
        return "x".repeat(this.pick([201, 256, 1025, 10_000, 100_000]));
      case 2:
        return "a\u0000b";
      case 3:
        return "\ud800";
      case 4:
        return "\udfff\ud800x";
      case 5:
        return "../../etc/passwd";
      case 6:
        return "<script>alert(1)</script>";
      case 7:
        return "line\r\nInjected: yes";
      case 8:
        return "😀ü\u202e\ufeff";
      case 9:
        return "%00%ff%E0%A4%A";
      case 10:
        return " ";
      case 11:
        return "null";
      case 12:
        return String.fromCharCode(...Array.from({ length: this.int(1, 40) }, () => this.int(0, 0xffff)));
      default:
        return `${this.word()}'"; DROP TABLE predictions; --`;
    }
  }
}
