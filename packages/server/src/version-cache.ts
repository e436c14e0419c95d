import type { ModelRecord, Store, VersionRecord } from "./backends/types.js";

const TTL_MS = 10_000;
/** Models do change (visibility, description): another process's change shows here within this time. */
const MODEL_TTL_MS = 2_000;
const MAX_ENTRIES = 10_000;

/** Records by id, each kept for `ttlMs` after it was read; a missing record is not kept. */
class TtlMap<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();

  constructor(private readonly ttlMs: number) {}

  async get(id: string, load: (id: string) => Promise<V | undefined>): Promise<V | undefined> {
    const now = Date.now();
    const cached = this.entries.get(id);
    if (cached && cached.until > now) return cached.value;
    const value = await load(id);
    if (value !== undefined) {
      if (this.entries.size > MAX_ENTRIES) this.entries.clear();
      this.entries.set(id, { value, until: now + this.ttlMs });
    } else {
      this.entries.delete(id);
    }
    return value;
  }

  delete(id: string): void {
    this.entries.delete(id);
  }
}

/**
 * Versions never change once created, so the hot path (create → validate → run) reads each one from the
 * store at most every few seconds instead of parsing its schema twice per prediction. A deleted version
 * is dropped at once by the process that deletes it, and within the TTL by the others. The model that
 * owns a version is kept too, for a shorter time: a prediction by version id checks its visibility.
 */
export class VersionCache {
  private readonly versions = new TtlMap<VersionRecord>(TTL_MS);
  private readonly models = new TtlMap<ModelRecord>(MODEL_TTL_MS);

  constructor(private readonly store: Store) {}

  get(id: string): Promise<VersionRecord | undefined> {
    return this.versions.get(id, (versionId) => this.store.getVersion(versionId));
  }

  /** The model a version belongs to (undefined once deleted). */
  modelOf(version: VersionRecord): Promise<ModelRecord | undefined> {
    return this.models.get(version.model_id, (modelId) => this.store.getModelById(modelId));
  }

  forget(id: string): void {
    this.versions.delete(id);
  }

  /** The model was updated or deleted by this process. */
  forgetModel(id: string): void {
    this.models.delete(id);
  }
}
