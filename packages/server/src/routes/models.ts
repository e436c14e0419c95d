import type { Model } from "@replicant/protocol";
import { fullFormats } from "ajv-formats/dist/formats.js";
import type { FastifyRequest } from "fastify";
import type { ModelRecord } from "../backends/types.js";
import { badRequest, conflict, notFound, ProblemError, validationFailed } from "../errors.js";
import { accountOf, addRoute, cursorOf, params, query, searchText, sendNoContent, toPage } from "../http.js";
import { newId } from "../ids.js";
import { canSee } from "../predictions-service.js";
import { modelJson, predictionJson, versionJson } from "../serialize.js";
import type { RouteDeps } from "./deps.js";
import { HARDWARE } from "./hardware.js";

const PAGE_SIZE = 100;
const NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/;
const URL_FIELDS: readonly string[] = [
  "github_url",
  "paper_url",
  "license_url",
  "cover_image_url",
  "weights_url",
];
/** The `uri` format Replicate's document gives these fields, as Ajv checks it. */
const isUri = fullFormats.uri as (value: string) => boolean;

/** A JSON string's value; text that only looks quoted is searched as it is. */
function parseQuoted(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function registerModelRoutes({ app, table, ctx }: RouteDeps): void {
  const { store, urls } = ctx;

  async function toJson(model: ModelRecord): Promise<Model> {
    const latest = model.latest_version_id ? await store.getVersion(model.latest_version_id) : undefined;
    const example = model.default_example_id
      ? await store.getPrediction(model.default_example_id)
      : undefined;
    return modelJson(model, urls, latest, example ? predictionJson(example, urls) : null);
  }

  async function visibleModel(request: FastifyRequest): Promise<ModelRecord> {
    const { model_owner, model_name } = params(request);
    const model = await store.getModel(model_owner ?? "", model_name ?? "");
    if (!model || !canSee(model, request.account)) throw notFound("Model not found");
    return model;
  }

  async function ownModel(request: FastifyRequest): Promise<ModelRecord> {
    const model = await visibleModel(request);
    if (model.owner_account_id !== accountOf(request).id) {
      throw new ProblemError(403, "Forbidden", "You can only change models that you own");
    }
    return model;
  }

  function stringField(
    body: Record<string, unknown>,
    key: string,
    problems: { type: string; field: string; description: string }[],
  ) {
    const value = body[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "string") {
      problems.push({ type: "invalid_type", field: key, description: "Invalid type. Expected: string" });
      return undefined;
    }
    // Models answer these as `format: uri`: refuse what would make every later read non-conforming.
    if (URL_FIELDS.includes(key) && (value.length > 2048 || !/^https?:\/\//i.test(value) || !isUri(value))) {
      problems.push({ type: "invalid_url", field: key, description: `${key} must be an http or https URL` });
      return undefined;
    }
    return value;
  }

  addRoute(app, table, "GET", "/v1/models", async (request) => {
    const q = query(request);
    const sortBy = q.sort_by ?? "latest_version_created_at";
    const direction = q.sort_direction ?? "desc";
    if (sortBy !== "model_created_at" && sortBy !== "latest_version_created_at") {
      throw badRequest("sort_by must be model_created_at or latest_version_created_at");
    }
    if (direction !== "asc" && direction !== "desc") throw badRequest("sort_direction must be asc or desc");
    const page = await store.listModels({
      visible_to: request.account?.id ?? null,
      sort_by: sortBy,
      sort_direction: direction,
      cursor: cursorOf(request),
      limit: PAGE_SIZE,
    });
    const results = await Promise.all(page.items.map(toJson));
    return toPage(request, urls.api(""), { items: results, next: page.next }, (m) => m);
  });

  addRoute(app, table, "QUERY", "/v1/models", async (request) => {
    let text = typeof request.body === "string" ? request.body.trim() : "";
    // The official JS client JSON-encodes the query, so it arrives quoted.
    if (/^".*"$/s.test(text)) text = String(parseQuoted(text)).trim();
    if (!text) throw badRequest("The request body must be the search query, as text/plain");
    const found = await store.searchModels(searchText(text), request.account?.id ?? null, PAGE_SIZE);
    return { next: null, previous: null, results: await Promise.all(found.map(toJson)) };
  });

  addRoute(app, table, "POST", "/v1/models", async (request, reply) => {
    const account = accountOf(request);
    const body = request.body;
    if (typeof body !== "object" || body === null || Array.isArray(body))
      throw badRequest("The request body must be a JSON object");
    const fields = body as Record<string, unknown>;
    const problems: { type: string; field: string; description: string }[] = [];
    for (const key of ["owner", "name", "visibility", "hardware"]) {
      if (fields[key] === undefined || fields[key] === null)
        problems.push({ type: "required", field: key, description: `${key} is required` });
    }
    const owner = stringField(fields, "owner", problems);
    const name = stringField(fields, "name", problems);
    const visibility = stringField(fields, "visibility", problems);
    const hardware = stringField(fields, "hardware", problems);
    if (name !== undefined && !NAME.test(name)) {
      problems.push({
        type: "string_pattern",
        field: "name",
        description:
          "Model names are lowercase letters, digits, dashes, underscores and dots, up to 100 characters",
      });
    }
    if (visibility !== undefined && visibility !== "public" && visibility !== "private") {
      problems.push({
        type: "enum",
        field: "visibility",
        description: "visibility must be one of the following: public, private",
      });
    }
    if (hardware !== undefined && !HARDWARE.some((h) => h.sku === hardware)) {
      problems.push({
        type: "enum",
        field: "hardware",
        description: `hardware must be one of: ${HARDWARE.map((h) => h.sku).join(", ")}`,
      });
    }
    const optional: Record<string, string | undefined> = {};
    for (const key of ["description", ...URL_FIELDS]) optional[key] = stringField(fields, key, problems);
    if (problems.length > 0) throw validationFailed(problems);
    if (owner !== account.username) {
      throw new ProblemError(403, "Forbidden", `You can only create models owned by ${account.username}`);
    }
    if (await store.getModel(owner, name!)) throw conflict(`A model named ${owner}/${name} already exists`);
    const model: ModelRecord = {
      id: newId(),
      owner_account_id: account.id,
      owner,
      name: name!,
      description: optional.description ?? null,
      visibility: visibility as "public" | "private",
      hardware: hardware!,
      github_url: optional.github_url ?? null,
      paper_url: optional.paper_url ?? null,
      license_url: optional.license_url ?? null,
      cover_image_url: optional.cover_image_url ?? null,
      weights_url: null,
      readme: null,
      run_count: 0,
      is_official: false,
      latest_version_id: null,
      latest_version_created_at: null,
      default_example_id: null,
      created_at: ctx.now().toISOString(),
    };
    await store.createModel(model);
    return reply.code(201).send(await toJson(model));
  });

  addRoute(app, table, "GET", "/v1/models/:model_owner/:model_name", async (request) =>
    toJson(await visibleModel(request)),
  );

  addRoute(app, table, "PATCH", "/v1/models/:model_owner/:model_name", async (request) => {
    const model = await ownModel(request);
    const body = request.body;
    if (typeof body !== "object" || body === null || Array.isArray(body))
      throw badRequest("The request body must be a JSON object");
    const fields = body as Record<string, unknown>;
    const allowed = ["description", "readme", "github_url", "paper_url", "weights_url", "license_url"];
    const problems: { type: string; field: string; description: string }[] = [];
    const patch: Record<string, string> = {};
    for (const key of Object.keys(fields)) {
      if (!allowed.includes(key)) {
        problems.push({
          type: "additional_property_not_allowed",
          field: "",
          description: `Additional property ${key} is not allowed`,
        });
        continue;
      }
      const value = stringField(fields, key, problems);
      if (value !== undefined) patch[key] = value;
    }
    if (problems.length > 0) throw validationFailed(problems);
    await store.updateModel(model.id, patch);
    ctx.versions.forgetModel(model.id);
    return toJson((await store.getModelById(model.id)) ?? model);
  });

  addRoute(app, table, "DELETE", "/v1/models/:model_owner/:model_name", async (request, reply) => {
    const model = await ownModel(request);
    if (model.visibility !== "private") throw conflict("Only private models can be deleted");
    if (model.latest_version_id) throw conflict("Delete the model's versions before deleting the model");
    await store.deleteModel(model.id);
    ctx.versions.forgetModel(model.id);
    return sendNoContent(reply);
  });

  addRoute(app, table, "GET", "/v1/models/:model_owner/:model_name/examples", async (request) => {
    const model = await visibleModel(request);
    const example = model.default_example_id
      ? await store.getPrediction(model.default_example_id)
      : undefined;
    return { next: null, previous: null, results: example ? [predictionJson(example, urls)] : [] };
  });

  addRoute(app, table, "GET", "/v1/models/:model_owner/:model_name/readme", async (request, reply) => {
    const model = await visibleModel(request);
    if (!model.readme) throw notFound("README not found");
    return reply.type("text/plain; charset=utf-8").send(model.readme);
  });

  addRoute(app, table, "GET", "/v1/models/:model_owner/:model_name/versions", async (request) => {
    const model = await visibleModel(request);
    const page = await store.listVersions(model.id, { cursor: cursorOf(request), limit: PAGE_SIZE });
    return toPage(request, urls.api(""), page, versionJson);
  });

  addRoute(app, table, "GET", "/v1/models/:model_owner/:model_name/versions/:version_id", async (request) => {
    const model = await visibleModel(request);
    const version = await store.getVersion(params(request).version_id ?? "");
    if (!version || version.model_id !== model.id) throw notFound("Version not found");
    return versionJson(version);
  });

  addRoute(
    app,
    table,
    "DELETE",
    "/v1/models/:model_owner/:model_name/versions/:version_id",
    async (request, reply) => {
      const model = await ownModel(request);
      const version = await store.getVersion(params(request).version_id ?? "");
      if (!version || version.model_id !== model.id) throw notFound("Version not found");
      if (model.visibility !== "private") throw conflict("Only versions of private models can be deleted");
      if (await store.isVersionInUse(version.id)) {
        throw conflict(
          "This version has predictions, trainings or a deployment that use it, so it cannot be deleted",
        );
      }
      await store.deleteVersion(version.id);
      ctx.versions.forgetModel(version.model_id);
      ctx.versions.forget(version.id);
      return sendNoContent(reply, 202);
    },
  );
}
