/**
 * Finished predictions read in the last moment, kept in memory. A finished record changes only when
 * retention removes its data, so clients fetching a result again (and again) skip the database.
 *
 * Writes through the same store drop the entry at once; a write by another process (scale-out) shows
 * within `ttlMs`. A read that overlapped any write is not kept, so an awaited read cannot put back a
 * record that a write made stale while it ran.
 */
export class FinishedRecordCache<T extends { id: string }> {
  readonly #entries = new Map<string, { record: T; expires: number }>();
  #writes = 0;

  constructor(
    private readonly ttlMs = 1000,
    private readonly capacity = 1024,
  ) {}

  /** Take before a read; give back to {@link keep} with what the read found. */
  get writes(): number {
    return this.#writes;
  }

  get(id: string): T | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    if (entry.expires > Date.now()) return entry.record;
    this.#entries.delete(id);
    return undefined;
  }

  /** Keeps a finished record (frozen: holders share it) unless a write happened since `writesBefore`. */
  keep(record: T, writesBefore: number): T {
    if (writesBefore !== this.#writes) return record;
    if (this.#entries.size >= this.capacity) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    Object.freeze(record);
    this.#entries.set(record.id, { record, expires: Date.now() + this.ttlMs });
    return record;
  }

  /** Call before (and the store calls again after) any write to the record. */
  drop(id: string): void {
    this.#writes++;
    this.#entries.delete(id);
  }
}
