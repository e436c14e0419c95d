import type { Model, ModelCreateRequest, ModelUpdateRequest, Page, Prediction } from "@replicant/protocol";
import type { RequestControl } from "../client.js";
import { PagePromise } from "../core/pagination.js";
import { randomId } from "../internal/random-id.js";
import {
  createPrediction,
  type PredictionCreateControl,
  type PredictionRequestFields,
} from "./predictions.js";
import { APIResource, path } from "./resource.js";
import { Versions } from "./versions.js";

export interface ModelListOptions extends RequestControl {
  sort_by?: "model_created_at" | "latest_version_created_at" | undefined;
  sort_direction?: "asc" | "desc" | undefined;
}

export type ModelCreateOptions = Omit<ModelCreateRequest, "owner" | "name"> &
  RequestControl & { idempotencyKey?: string };

/**
 * `models.*`: get, list, create, update, delete, search, plus `versions`, `examples`, `readme` and
 * `predictions` (official models).
 */
export class Models extends APIResource {
  readonly versions = new Versions(this.client);

  readonly examples = {
    /** Example predictions saved by the model's author. */
    list: (modelOwner: string, modelName: string, options: RequestControl = {}): PagePromise<Prediction> =>
      this.client.getPage<Prediction>(path`/models/${modelOwner}/${modelName}/examples`, options),
  };

  readonly readme = {
    /** The model's README, as Markdown text. */
    get: (modelOwner: string, modelName: string, options: RequestControl = {}): Promise<string> =>
      this.client
        .request(path`/models/${modelOwner}/${modelName}/readme`, { ...options, method: "GET" })
        .then((response) => response.text()),
  };

  readonly predictions = {
    /** Creates a prediction with an official model (no version needed). */
    create: (
      modelOwner: string,
      modelName: string,
      options: PredictionRequestFields & PredictionCreateControl,
    ): Promise<Prediction> =>
      createPrediction(this.client, path`/models/${modelOwner}/${modelName}/predictions`, options),
  };

  get = (modelOwner: string, modelName: string, options: RequestControl = {}): Promise<Model> =>
    this.client.get<Model>(path`/models/${modelOwner}/${modelName}`, options);

  /** Lists public models. Await for the first page, or `for await` over every model. */
  list = (options: ModelListOptions = {}): PagePromise<Model> => {
    const { sort_by, sort_direction, ...control } = options;
    return this.client.getPage<Model>("/models", { ...control, params: { sort_by, sort_direction } });
  };

  /**
   * Creates a model: `create(owner, name, { visibility, hardware, ... })` as in the `replicate` package, or
   * `create({ owner, name, visibility, hardware, ... })`.
   */
  create = (
    ownerOrRequest: string | (ModelCreateRequest & RequestControl & { idempotencyKey?: string }),
    modelName?: string,
    options?: ModelCreateOptions,
  ): Promise<Model> => {
    const merged =
      typeof ownerOrRequest === "string"
        ? { owner: ownerOrRequest, name: modelName ?? "", ...options }
        : ownerOrRequest;
    const { signal, timeout, maxRetries, headers, idempotencyKey, ...body } = merged;
    return this.client.post<Model>("/models", {
      data: body,
      signal,
      timeout,
      maxRetries,
      headers,
      idempotencyKey: idempotencyKey ?? randomId(),
    });
  };

  /** Updates a model's metadata (description, readme, URLs). */
  update = (
    modelOwner: string,
    modelName: string,
    changes: ModelUpdateRequest,
    options: RequestControl = {},
  ): Promise<Model> =>
    this.client.patch<Model>(path`/models/${modelOwner}/${modelName}`, { ...options, data: changes });

  /** Deletes a private model that has no versions. Resolves true. */
  delete = async (modelOwner: string, modelName: string, options: RequestControl = {}): Promise<boolean> => {
    await this.client.delete(path`/models/${modelOwner}/${modelName}`, options);
    return true;
  };

  /** Searches public models (HTTP `QUERY /models` with a plain-text body). */
  search = (query: string, options: RequestControl = {}): PagePromise<Model> =>
    new PagePromise<Model>(
      () =>
        this.client
          .request("/models", {
            ...options,
            method: "QUERY",
            data: query,
            headers: { ...options.headers, "Content-Type": "text/plain" },
          })
          .then((response) => response.json() as Promise<Page<Model>>),
      (next) => this.client.get<Page<Model>>(next, options),
    );
}
