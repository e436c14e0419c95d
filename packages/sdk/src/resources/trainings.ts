import type { Training, WebhookEventType } from "@replicant/protocol";
import type { RequestControl } from "../client.js";
import type { PagePromise } from "../core/pagination.js";
import { randomId } from "../internal/random-id.js";
import { dropUndefined } from "./predictions.js";
import { APIResource, path } from "./resource.js";

export interface TrainingCreateOptions extends RequestControl {
  /** The model that receives the trained version: `owner/name`. */
  destination: `${string}/${string}`;
  input: Record<string, unknown>;
  webhook?: string | undefined;
  webhook_events_filter?: WebhookEventType[] | undefined;
  /** Overrides the generated `Idempotency-Key`. */
  idempotencyKey?: string | undefined;
}

/** `trainings.create`, `trainings.get`, `trainings.list`, `trainings.cancel`. */
export class Trainings extends APIResource {
  /** Starts a training of a version. File inputs are encoded like prediction inputs. */
  create = async (
    modelOwner: string,
    modelName: string,
    versionId: string,
    options: TrainingCreateOptions,
  ): Promise<Training> => {
    const { signal, timeout, maxRetries, headers, idempotencyKey, ...body } = options;
    const input = await this.client.encodeInput(body.input, signal);
    return this.client.post<Training>(
      path`/models/${modelOwner}/${modelName}/versions/${versionId}/trainings`,
      {
        data: dropUndefined({ ...body, input }),
        signal,
        timeout,
        maxRetries,
        headers,
        idempotencyKey: idempotencyKey ?? randomId(),
      },
    );
  };

  get = (trainingId: string, options: RequestControl = {}): Promise<Training> =>
    this.client.get<Training>(path`/trainings/${trainingId}`, options);

  cancel = (trainingId: string, options: RequestControl = {}): Promise<Training> =>
    this.client.post<Training>(path`/trainings/${trainingId}/cancel`, { ...options, idempotent: true });

  list = (options: RequestControl = {}): PagePromise<Training> =>
    this.client.getPage<Training>("/trainings", options);
}
