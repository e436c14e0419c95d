import type { Store, VersionRecord } from "./backends/types.js";

const TTL_MS = 10_000;

/**
 * Versions never change once created, so the hot path (create → validate → run) reads each one from the
 * store at most every few seconds instead of parsing its schema twice per prediction. A deleted version
 * is dropped at once by the process that deletes it, and within the TTL by the others.
 */
export class VersionCache {
  private readonly entries = new Map<string, { version: VersionRecord; until: number }>();

  constructor(private readonly store: Store) {}

  async get(id: string): Promise<VersionRecord | undefined> {
    const now = Date.now();
    const cached = this.entries.get(id);
    if (cached && cached.until > now) return cached.version;
    const version = await this.store.getVersion(id);
    if (version) {
      if (this.entries.size > 10_000) this.entries.clear();
      this.entries.set(id, { version, until: now + TTL_MS });
    } else {
      this.entries.delete(id);
    }
    return version;
  }

  forget(id: string): void {
    this.entries.delete(id);
  }
}
