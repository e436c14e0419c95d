import type { Collection, SearchResponse } from "@replicant/protocol";
import { badRequest, notFound } from "../errors.js";
import { accountOf, addRoute, cursorOf, params, query, searchText, toPage } from "../http.js";
import { canSee } from "../predictions-service.js";
import { accountJson, modelJson } from "../serialize.js";
import type { RouteDeps } from "./deps.js";

/** account, webhooks' secret, collections and search: small read-only resources. */
export function registerAccountRoutes({ app, table, ctx }: RouteDeps): void {
  const { store, urls } = ctx;

  addRoute(app, table, "GET", "/v1/account", async (request) => accountJson(accountOf(request)));

  addRoute(app, table, "GET", "/v1/webhooks/default/secret", async (request) => ({
    key: accountOf(request).webhook_secret,
  }));

  addRoute(app, table, "GET", "/v1/collections", async (request) => {
    const page = await store.listCollections({ cursor: cursorOf(request), limit: 100 });
    return toPage(request, urls.api(""), page, (c) => ({
      name: c.name,
      slug: c.slug,
      description: c.description,
    }));
  });

  addRoute(app, table, "GET", "/v1/collections/:collection_slug", async (request): Promise<Collection> => {
    const found = await store.getCollection(params(request).collection_slug ?? "");
    if (!found) throw notFound("Collection not found");
    const models = [];
    for (const id of found.model_ids) {
      const model = await store.getModelById(id);
      if (!model || !canSee(model, request.account)) continue;
      const latest = model.latest_version_id ? await store.getVersion(model.latest_version_id) : undefined;
      models.push(modelJson(model, urls, latest));
    }
    return { ...found.collection, models };
  });

  addRoute(
    app,
    table,
    "GET",
    "/v1/search",
    async (request): Promise<SearchResponse> => {
      const q = query(request);
      const text = q.query?.trim();
      if (!text) throw badRequest('Query parameter "query" is required');
      const limit = q.limit === undefined ? 20 : Number(q.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 50)
        throw badRequest("limit must be an integer between 1 and 50");
      searchText(text);
      const models = await store.searchModels(text, request.account?.id ?? null, limit);
      const collections = await store.searchCollections(text, limit);
      const modelResults = await Promise.all(
        models.map(async (model) => {
          const latest = model.latest_version_id
            ? await store.getVersion(model.latest_version_id)
            : undefined;
          return {
            model: modelJson(model, urls, latest),
            metadata: { generated_description: model.description, tags: [], score: null },
          };
        }),
      );
      const collectionResults = await Promise.all(
        collections.map(async (c) => {
          const detail = await store.getCollection(c.slug);
          const names: string[] = [];
          for (const id of detail?.model_ids ?? []) {
            const model = await store.getModelById(id);
            if (model && canSee(model, request.account)) names.push(`${model.owner}/${model.name}`);
          }
          return { name: c.name, slug: c.slug, description: c.description, models: names };
        }),
      );
      return { query: text, models: modelResults, collections: collectionResults, pages: [] };
    },
    { public: true },
  );
}
