import type { ModelVersion } from "@replicant/protocol";
import type { RequestControl } from "../client.js";
import type { PagePromise } from "../core/pagination.js";
import { APIResource, path } from "./resource.js";

/** `models.versions.list`, `models.versions.get`, `models.versions.delete`. */
export class Versions extends APIResource {
  /** Lists a model's versions, most recent first. */
  list = (modelOwner: string, modelName: string, options: RequestControl = {}): PagePromise<ModelVersion> =>
    this.client.getPage<ModelVersion>(path`/models/${modelOwner}/${modelName}/versions`, options);

  /** Gets one version, with its `openapi_schema` (feed it to `generateModelTypes`). */
  get = (
    modelOwner: string,
    modelName: string,
    versionId: string,
    options: RequestControl = {},
  ): Promise<ModelVersion> =>
    this.client.get<ModelVersion>(path`/models/${modelOwner}/${modelName}/versions/${versionId}`, options);

  /** Deletes a version (the API answers 202: deletion happens in the background). Resolves true. */
  delete = async (
    modelOwner: string,
    modelName: string,
    versionId: string,
    options: RequestControl = {},
  ): Promise<boolean> => {
    const response = await this.client.request(
      path`/models/${modelOwner}/${modelName}/versions/${versionId}`,
      {
        ...options,
        method: "DELETE",
      },
    );
    await response.body?.cancel();
    return response.ok;
  };
}
