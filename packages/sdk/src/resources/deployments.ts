import type {
  Deployment,
  DeploymentCreateRequest,
  DeploymentUpdateRequest,
  Prediction,
} from "@replicant/protocol";
import type { RequestControl } from "../client.js";
import type { PagePromise } from "../core/pagination.js";
import { randomId } from "../internal/random-id.js";
import {
  createPrediction,
  type PredictionCreateControl,
  type PredictionRequestFields,
} from "./predictions.js";
import { APIResource, path } from "./resource.js";

/** `deployments.*`: get, list, create, update, delete, and `predictions.create`. */
export class Deployments extends APIResource {
  readonly predictions = {
    /** Creates a prediction on a deployment (its current release's version). */
    create: (
      deploymentOwner: string,
      deploymentName: string,
      options: PredictionRequestFields & PredictionCreateControl,
    ): Promise<Prediction> =>
      createPrediction(
        this.client,
        path`/deployments/${deploymentOwner}/${deploymentName}/predictions`,
        options,
      ),
  };

  get = (
    deploymentOwner: string,
    deploymentName: string,
    options: RequestControl = {},
  ): Promise<Deployment> =>
    this.client.get<Deployment>(path`/deployments/${deploymentOwner}/${deploymentName}`, options);

  list = (options: RequestControl = {}): PagePromise<Deployment> =>
    this.client.getPage<Deployment>("/deployments", options);

  create = (
    deploymentConfig: DeploymentCreateRequest,
    options: RequestControl & { idempotencyKey?: string } = {},
  ): Promise<Deployment> => {
    const { idempotencyKey, ...control } = options;
    return this.client.post<Deployment>("/deployments", {
      ...control,
      data: deploymentConfig,
      idempotencyKey: idempotencyKey ?? randomId(),
    });
  };

  /** Changes hardware, scaling or version; each change makes a new release. */
  update = (
    deploymentOwner: string,
    deploymentName: string,
    deploymentConfig: DeploymentUpdateRequest,
    options: RequestControl = {},
  ): Promise<Deployment> =>
    this.client.patch<Deployment>(path`/deployments/${deploymentOwner}/${deploymentName}`, {
      ...options,
      data: deploymentConfig,
    });

  /** Deletes a deployment. Resolves true (the `replicate` package's contract). */
  delete = async (
    deploymentOwner: string,
    deploymentName: string,
    options: RequestControl = {},
  ): Promise<boolean> => {
    await this.client.delete(path`/deployments/${deploymentOwner}/${deploymentName}`, options);
    return true;
  };
}
