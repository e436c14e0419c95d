import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { AccountRecord, VersionRecord } from "../backends/types.js";
import { predictorSchema } from "../bootstrap.js";
import { findBuiltin } from "../builtin/index.js";
import { extractBundle, isSafeRelativePath, predictorInBundle } from "../bundles.js";
import type { ServerContext } from "../context.js";
import { badRequest, notFound, ProblemError, validationFailed } from "../errors.js";
import { accountOf, addRoute, params } from "../http.js";
import { newVersionId } from "../ids.js";
import { createGuardedFetch } from "../net/guarded-fetch.js";
import { checkOutboundUrl } from "../net/url-guard.js";
import { declaredEnvironmentProblem } from "../runners/runner-environment.js";
import { versionJson } from "../serialize.js";
import type { RouteDeps } from "./deps.js";

type Schema = { components?: { schemas?: Record<string, unknown> } };

function checkSchema(schema: unknown): Record<string, unknown> {
  const components = (schema as Schema | null)?.components?.schemas;
  if (typeof schema !== "object" || schema === null || !components || typeof components.Input !== "object") {
    throw validationFailed([
      {
        type: "invalid_schema",
        field: "openapi_schema",
        description: "openapi_schema must be an OpenAPI document with components.schemas.Input",
      },
    ]);
  }
  return schema as Record<string, unknown>;
}

/**
 * Pushing runs the account's code (or weights, or a Cog server's answers) on this server: by default only
 * the default account and the accounts it granted `push` may (`--allow-push-from-all` opens it).
 */
async function checkPushAllowed(ctx: ServerContext, account: AccountRecord): Promise<void> {
  const { config, store } = ctx;
  if (config.allowPushFromAll || account.username === config.defaultUsername) return;
  if ((await store.listPermissions(account.id)).includes("push")) return;
  throw new ProblemError(
    403,
    "Push not allowed",
    `The account ${account.username} may not push models to this server. Ask its operator to run \`replicant grant ${account.username} push\` (as the server's default account), or to start it with --allow-push-from-all.`,
  );
}

/**
 * Replicant-only: `POST /v1/replicant/models/{owner}/{name}/versions` creates a version of a model the
 * caller owns, backed by a Cog-protocol server (`cog_url`) or by a pushed predictor bundle (`bundle_file`,
 * a .tar.gz uploaded through the Files API, with its `predictor` module and `openapi_schema`).
 */
export function registerPushRoutes({ app, table, ctx }: RouteDeps): void {
  const fetchSchema = createGuardedFetch({
    allowPrivate: ctx.config.allowPrivateUrls,
    timeoutMs: 15_000,
    maxBytes: 4 * 1024 * 1024,
    maxRedirects: 0,
  });
  app.addHook("onClose", async () => fetchSchema.close());

  addRoute(
    app,
    table,
    "POST",
    "/v1/replicant/models/:model_owner/:model_name/versions",
    async (request, reply) => {
      const account = accountOf(request);
      const { model_owner, model_name } = params(request);
      const model = await ctx.store.getModel(model_owner ?? "", model_name ?? "");
      if (!model || (model.visibility === "private" && model.owner_account_id !== account.id))
        throw notFound("Model not found");
      if (model.owner_account_id !== account.id)
        throw new ProblemError(403, "Forbidden", "You can only push versions of models you own");
      await checkPushAllowed(ctx, account);
      const body = request.body as Record<string, unknown> | undefined;
      if (typeof body !== "object" || body === null)
        throw badRequest("The request body must be a JSON object");

      let version: VersionRecord;
      const id = newVersionId();
      const createdAt = ctx.now().toISOString();
      if (typeof body.cog_url === "string") {
        const base = checkOutboundUrl(body.cog_url, {
          allowPrivate: ctx.config.allowPrivateUrls,
          field: "cog_url",
        })
          .toString()
          .replace(/\/+$/, "");
        let schema: unknown;
        try {
          const response = await fetchSchema(`${base}/openapi.json`);
          if (!response.ok) throw new Error(`it answered ${response.status}`);
          schema = await response.json();
        } catch (error) {
          throw new ProblemError(
            422,
            "Cog server unreachable",
            `Could not read ${base}/openapi.json: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
        version = {
          id,
          model_id: model.id,
          openapi_schema: checkSchema(schema),
          cog_version: "cog-protocol",
          runner: { kind: "cog", url: base },
          training_schema: null,
          created_at: createdAt,
        };
      } else if (typeof body.bundle_file === "string") {
        const file = await ctx.store.getFile(body.bundle_file);
        if (!file || file.account_id !== account.id) throw notFound("Bundle file not found");
        const predictor = body.predictor;
        if (typeof predictor !== "string" || !isSafeRelativePath(predictor)) {
          throw validationFailed([
            {
              type: "invalid",
              field: "predictor",
              description: "predictor must be a relative path inside the bundle",
            },
          ]);
        }
        let env: Record<string, string> | undefined;
        if (body.env !== undefined) {
          const problem = declaredEnvironmentProblem(body.env);
          if (problem) throw validationFailed([{ type: "invalid", field: "env", description: problem }]);
          env = body.env as Record<string, string>;
        }
        if (body.network !== undefined && typeof body.network !== "boolean") {
          throw validationFailed([
            { type: "invalid_type", field: "network", description: "network must be true or false" },
          ]);
        }
        const network = body.network === true;
        // The bundle is copied out of the Files API so that the file's expiry does not remove the version's code.
        const bundleKey = `bundles/${id}.tar.gz`;
        const source = await ctx.blobs.get(file.blob_key);
        if (!source) throw notFound("Bundle file not found");
        await ctx.blobs.put(bundleKey, source);
        // Unpack now too, so a bad bundle is refused here rather than failing its first prediction.
        try {
          const root = await extractBundle(
            ctx.blobs,
            bundleKey,
            join(ctx.config.dataDir, "cache", "bundles", id),
          );
          await predictorInBundle(root, predictor);
        } catch (error) {
          await ctx.blobs.delete(bundleKey);
          throw new ProblemError(
            422,
            "Invalid bundle",
            error instanceof Error ? error.message : String(error),
          );
        }
        version = {
          id,
          model_id: model.id,
          openapi_schema: checkSchema(body.openapi_schema),
          cog_version: "replicant",
          runner: {
            kind: "bundle",
            bundle: bundleKey,
            predictor,
            ...(env ? { env } : {}),
            ...(network ? { network } : {}),
          },
          training_schema: null,
          created_at: createdAt,
        };
      } else if (typeof body.template === "string") {
        // A model package that needs the user's weights (e.g. a GGUF for llm-gguf).
        const template = await findBuiltin(`replicant/${body.template}`);
        if (template?.listed !== false) {
          throw validationFailed([
            {
              type: "enum",
              field: "template",
              description: "template must be llm-gguf or llm-gguf-embeddings, installed on this server",
            },
          ]);
        }
        let weights: string;
        if (typeof body.weights_file === "string") {
          const file = await ctx.store.getFile(body.weights_file);
          if (!file || file.account_id !== account.id) throw notFound("Weights file not found");
          weights = `weights/${id}/${file.id}`;
          const source = await ctx.blobs.get(file.blob_key);
          if (!source) throw notFound("Weights file not found");
          await ctx.blobs.put(weights, source);
        } else if (typeof body.weights_path === "string") {
          // Weights too large to upload can be named by path, by the server's own (default) account only.
          if (account.username !== ctx.config.defaultUsername) {
            throw new ProblemError(
              403,
              "Forbidden",
              "Only the server's default account can use weights_path",
            );
          }
          if (!isAbsolute(body.weights_path) || !existsSync(body.weights_path)) {
            throw validationFailed([
              {
                type: "invalid",
                field: "weights_path",
                description: "weights_path must be an absolute path of a file on the server",
              },
            ]);
          }
          weights = `local:${body.weights_path}`;
        } else {
          throw validationFailed([
            {
              type: "required",
              field: "weights_file",
              description: "weights_file or weights_path is required",
            },
          ]);
        }
        version = {
          id,
          model_id: model.id,
          openapi_schema: await predictorSchema(template.predictorPath),
          cog_version: "replicant",
          runner: { kind: "builtin", name: `replicant/${body.template}`, weights },
          training_schema: null,
          created_at: createdAt,
        };
      } else {
        throw validationFailed([
          { type: "required", field: "", description: "cog_url, bundle_file or template is required" },
        ]);
      }
      await ctx.store.createVersion(version);
      ctx.versions.forgetModel(version.model_id);
      return reply.code(201).send(versionJson(version));
    },
  );
}
