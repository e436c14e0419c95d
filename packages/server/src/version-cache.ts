import type { ModelRecord, Store, VersionRecord } from "./backends/types.js";

const TTL_MS = 10_000;
/** Models do change (visibility, description): another process's change shows here within this time. */
const MODEL_TTL_MS = 2_000;
const MAX_ENTRIES = 10_000;

/**
 * Versions never change once created, so the hot path (create → validate → run) reads each one from the
 * store at most every few seconds instead of parsing its schema twice per prediction. A deleted version
 * is dropped at once by the process that deletes it, and within the TTL by the others. The model that
 * owns a version is kept too, for a shorter time: a prediction by version id checks its visibility.
 */
export class VersionCache {
  private readonly entries = new Map<string, { version: VersionRecord; until: number }>();
  private readonly models = new Map<string, { model: ModelRecord; until: number }>();

  constructor(private readonly store: Store) {}

  async get(id: string): Promise<VersionRecord | undefined> {
    const now = Date.now();
    const cached = this.entries.get(id);
    if (cached && cached.until > now) return cached.version;
    const version = await this.store.getVersion(id);
    if (version) {
      if (this.entries.size > MAX_ENTRIES) this.entries.clear();
      this.entries.set(id, { version, until: now + TTL_MS });
    } else {
      this.entries.delete(id);
    }
    return version;
  }

  /** The model a version belongs to (undefined once deleted). */
  async modelOf(version: VersionRecord): Promise<ModelRecord | undefined> {
    const now = Date.now();
    const cached = this.models.get(version.model_id);
    if (cached && cached.until > now) return cached.model;
    const model = await this.store.getModelById(version.model_id);
    if (model) {
      if (this.models.size > MAX_ENTRIES) this.models.clear();
      this.models.set(model.id, { model, until: now + MODEL_TTL_MS });
    } else {
      this.models.delete(version.model_id);
    }
    return model;
  }

  forget(id: string): void {
    this.entries.delete(id);
  }

  /** The model was updated or deleted by this process. */
  forgetModel(id: string): void {
    this.models.delete(id);
  }
}
