import type { FastifyReply, FastifyRequest } from "fastify";
import type { PredictionRecord } from "../backends/types.js";
import { badRequest, notFound } from "../errors.js";
import { parseCancelAfter, parsePreferWait } from "../headers.js";
import { accountOf, addRoute, cursorOf, params, query, toPage } from "../http.js";
import type { CreateResult, PredictionTarget } from "../predictions-service.js";
import { predictionJson, predictionJsonText } from "../serialize.js";
import type { RouteDeps } from "./deps.js";

const PAGE_SIZE = 100;
const JSON_UTF8 = "application/json; charset=utf-8";

export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const key = request.headers["idempotency-key"];
  if (key === undefined) return undefined;
  if (typeof key !== "string" || key.length === 0 || key.length > 255) {
    throw badRequest("Idempotency-Key must be a string of 1 to 255 characters");
  }
  return key;
}

function dateQuery(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  const time = Date.parse(value);
  if (Number.isNaN(time)) throw badRequest(`${name} must be an ISO 8601 date-time`);
  return new Date(time).toISOString();
}

export function registerPredictionRoutes({ app, table, ctx, predictions }: RouteDeps): void {
  /** Shared by the three create endpoints; 201 when done or async, 202 when a wait ran out. */
  async function create(request: FastifyRequest, reply: FastifyReply, target: PredictionTarget) {
    const account = accountOf(request);
    const prefer = request.headers.prefer;
    const preferWaitSeconds = parsePreferWait(Array.isArray(prefer) ? prefer.join(",") : prefer);
    const cancelAfterMs = parseCancelAfter(request.headers["cancel-after"] as string | undefined);
    const result: CreateResult = await predictions.create(account, target, request.body, {
      preferWaitSeconds,
      cancelAfterMs,
      idempotencyKey: idempotencyKeyOf(request),
    });
    const json = predictionJson(result.record, ctx.urls);
    if (result.replayed) reply.header("idempotent-replayed", "true");
    const unfinished = preferWaitSeconds !== undefined && result.record.completed_at === null;
    return reply
      .code(unfinished ? 202 : 201)
      .header("location", json.urls.get)
      .send(json);
  }

  async function ownPrediction(request: FastifyRequest): Promise<PredictionRecord> {
    const record = await ctx.store.getPrediction(params(request).prediction_id ?? "");
    if (record?.kind !== "prediction" || record.account_id !== accountOf(request).id) {
      throw notFound("Prediction not found");
    }
    return record;
  }

  addRoute(
    app,
    table,
    "POST",
    "/v1/predictions",
    async (request, reply) => {
      const body = request.body as { version?: unknown } | null;
      const version = body && typeof body === "object" ? body.version : undefined;
      return create(request, reply, { kind: "version", ref: typeof version === "string" ? version : "" });
    },
    { createsPrediction: true },
  );

  addRoute(
    app,
    table,
    "POST",
    "/v1/models/:model_owner/:model_name/predictions",
    async (request, reply) => {
      const { model_owner, model_name } = params(request);
      return create(request, reply, { kind: "model", owner: model_owner ?? "", name: model_name ?? "" });
    },
    { createsPrediction: true },
  );

  addRoute(
    app,
    table,
    "POST",
    "/v1/deployments/:deployment_owner/:deployment_name/predictions",
    async (request, reply) => {
      const { deployment_owner, deployment_name } = params(request);
      return create(request, reply, {
        kind: "deployment",
        owner: deployment_owner ?? "",
        name: deployment_name ?? "",
      });
    },
    { createsPrediction: true },
  );

  addRoute(app, table, "GET", "/v1/predictions", async (request) => {
    const account = accountOf(request);
    const q = query(request);
    const page = await ctx.store.listPredictions({
      account_id: account.id,
      kind: "prediction",
      cursor: cursorOf(request),
      limit: PAGE_SIZE,
      created_after: dateQuery(q.created_after, "created_after"),
      created_before: dateQuery(q.created_before, "created_before"),
    });
    return toPage(request, ctx.urls.api(""), page, (p) => predictionJson(p, ctx.urls));
  });

  addRoute(app, table, "GET", "/v1/predictions/:prediction_id", async (request, reply) => {
    let record = await ownPrediction(request);
    // Replicant extension: ?wait=N holds the request until the prediction is terminal (≤ 60 s).
    const wait = query(request).wait;
    if (wait !== undefined) {
      const seconds = Number(wait);
      if (!Number.isInteger(seconds) || seconds < 1 || seconds > 60) {
        throw badRequest("wait must be a whole number of seconds between 1 and 60");
      }
      record = await predictions.waitUntilTerminal(record, seconds);
    }
    return reply.type(JSON_UTF8).send(predictionJsonText(record, ctx.urls));
  });

  addRoute(app, table, "POST", "/v1/predictions/:prediction_id/cancel", async (request) => {
    const record = await ownPrediction(request);
    return predictionJson(await predictions.cancel(record), ctx.urls);
  });
}
