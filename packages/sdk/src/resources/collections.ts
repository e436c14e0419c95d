import type { Collection, CollectionSummary } from "@replicant/protocol";
import type { RequestControl } from "../client.js";
import type { PagePromise } from "../core/pagination.js";
import { APIResource, path } from "./resource.js";

/** `collections.list`, `collections.get`. */
export class Collections extends APIResource {
  list = (options: RequestControl = {}): PagePromise<CollectionSummary> =>
    this.client.getPage<CollectionSummary>("/collections", options);

  get = (collectionSlug: string, options: RequestControl = {}): Promise<Collection> =>
    this.client.get<Collection>(path`/collections/${collectionSlug}`, options);
}
