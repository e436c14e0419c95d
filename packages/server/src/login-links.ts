import { randomBytes } from "node:crypto";
import { sha256Hex } from "./ids.js";

/** How long a sign-in link works, unused. */
export const LOGIN_LINK_TTL_MS = 5 * 60_000;

/** Unused links kept at most; past it the oldest are dropped (a flood of issues cannot grow memory). */
const MAX_PENDING = 1000;

interface Pending {
  token: string;
  expiresAt: number;
}

/**
 * One-time codes of the playground's sign-in links (`/?login=CODE`), as Jupyter's token URLs: each code
 * stands for one API token, works once, and expires. They live in this process's memory only, keyed by
 * the code's SHA-256, so a lookup compares no secret byte by byte and a heap dump holds no usable code.
 */
export class LoginLinks {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly nowMs: () => number,
    private readonly ttlMs = LOGIN_LINK_TTL_MS,
  ) {}

  /** A new code (256 random bits, base64url) for `token`, and when it expires. */
  issue(token: string): { code: string; expiresAt: Date } {
    const now = this.nowMs();
    for (const [key, entry] of this.pending) if (entry.expiresAt <= now) this.pending.delete(key);
    while (this.pending.size >= MAX_PENDING) {
      const oldest = this.pending.keys().next().value;
      if (oldest === undefined) break;
      this.pending.delete(oldest);
    }
    const code = randomBytes(32).toString("base64url");
    const expiresAt = now + this.ttlMs;
    this.pending.set(sha256Hex(code), { token, expiresAt });
    return { code, expiresAt: new Date(expiresAt) };
  }

  /** The token of an unused, unexpired code; the code is spent either way. */
  redeem(code: string): string | undefined {
    if (!/^[A-Za-z0-9_-]{43}$/.test(code)) return undefined;
    const key = sha256Hex(code);
    const entry = this.pending.get(key);
    if (entry === undefined) return undefined;
    this.pending.delete(key);
    return entry.expiresAt > this.nowMs() ? entry.token : undefined;
  }
}
