import type { ServerContext } from "./context.js";
import type { MaterializeInputs } from "./director.js";
import { materializeInputs } from "./inputs/materialize-inputs.js";
import { createGuardedFetch } from "./net/guarded-fetch.js";

/**
 * File inputs become local files before a run: data URIs are decoded, this server's file URLs are read
 * from storage (only the prediction's own account's files, or a valid signed download URL), and other
 * URLs are downloaded through the SSRF-guarded fetch.
 */
export function createInputMaterializer(ctx: ServerContext): MaterializeInputs {
  const fetch = createGuardedFetch({
    allowPrivate: ctx.config.allowPrivateUrls,
    timeoutMs: 120_000,
    maxBytes: ctx.config.fileSizeLimit,
    maxRedirects: 5,
    userAgent: "replicant/0.1",
  });
  return async (record, version, scratchDir) =>
    materializeInputs({
      input: record.input ?? {},
      schema: record.kind === "training" ? trainingAsInput(version.openapi_schema) : version.openapi_schema,
      directory: scratchDir,
      fetch,
      publicUrl: ctx.urls.base,
      maxFileBytes: ctx.config.fileSizeLimit,
      resolveOwnFile: async (id, url) => {
        const file = await ctx.store.getFile(id);
        if (!file) return undefined;
        let allowed = file.account_id === record.account_id;
        if (!allowed && url.pathname.endsWith("/download")) {
          const owner = url.searchParams.get("owner") ?? "";
          const fileOwner = await ctx.store.getAccountById(file.account_id);
          allowed =
            owner === fileOwner?.username &&
            ctx.urls.verifyFileDownload(
              owner,
              id,
              url.searchParams.get("expiry") ?? "",
              url.searchParams.get("signature") ?? "",
              Math.floor(ctx.now().getTime() / 1000),
            );
        }
        if (!allowed) return undefined;
        const stream = await ctx.blobs.get(file.blob_key);
        return stream ? { stream, contentType: file.content_type, name: file.name } : undefined;
      },
    });
}

/** A training's inputs are described by TrainingInput; the materializer reads `Input`. */
function trainingAsInput(schema: Record<string, unknown>): Record<string, unknown> {
  const components = (schema.components ?? {}) as { schemas?: Record<string, unknown> };
  const schemas = components.schemas ?? {};
  return {
    ...schema,
    components: { ...components, schemas: { ...schemas, Input: schemas.TrainingInput ?? {} } },
  };
}
