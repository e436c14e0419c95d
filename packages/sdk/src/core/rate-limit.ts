import { sleep } from "../internal/sleep.js";

/**
 * Spaces out starts so that no more than `ratePerMinute` happen in any minute, evenly (one every
 * 60 000 / rate ms), which keeps bursts under Replicate's 600 creates per minute.
 */
export class RateLimiter {
  readonly #intervalMs: number;
  #nextSlot = 0;

  constructor(ratePerMinute: number) {
    if (!(ratePerMinute > 0)) throw new RangeError("ratePerMinute must be a positive number");
    this.#intervalMs = 60_000 / ratePerMinute;
  }

  /** Resolves when the caller may start; slots are handed out in call order. */
  async acquire(signal?: AbortSignal): Promise<void> {
    const now = Date.now();
    const slot = Math.max(now, this.#nextSlot);
    this.#nextSlot = slot + this.#intervalMs;
    if (slot > now) await sleep(slot - now, signal);
  }
}
