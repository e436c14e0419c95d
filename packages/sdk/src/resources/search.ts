import type { SearchResponse } from "@replicant/protocol";
import type { RequestControl } from "../client.js";
import { APIResource } from "./resource.js";

export interface SearchOptions extends RequestControl {
  /** Maximum number of model results, 1-50 (server default 20). */
  limit?: number | undefined;
}

/** `search` (`GET /search`, beta): models, collections and docs matching a query. Exposed as `client.search()`. */
export class Search extends APIResource {
  get = (query: string, options: SearchOptions = {}): Promise<SearchResponse> => {
    const { limit, ...control } = options;
    return this.client.get<SearchResponse>("/search", { ...control, params: { query, limit } });
  };
}
