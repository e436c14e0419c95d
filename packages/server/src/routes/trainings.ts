import type { FastifyRequest } from "fastify";
import type { PredictionRecord } from "../backends/types.js";
import { notFound, ProblemError, validationFailed } from "../errors.js";
import { accountOf, addRoute, cursorOf, params, toPage } from "../http.js";
import { trainingJson } from "../serialize.js";
import type { RouteDeps } from "./deps.js";
import { idempotencyKeyOf } from "./predictions.js";

export function registerTrainingRoutes({ app, table, ctx, predictions }: RouteDeps): void {
  const { store, urls } = ctx;

  async function ownTraining(request: FastifyRequest): Promise<PredictionRecord> {
    const record = await store.getPrediction(params(request).training_id ?? "");
    if (record?.kind !== "training" || record.account_id !== accountOf(request).id)
      throw notFound("Training not found");
    return record;
  }

  addRoute(
    app,
    table,
    "POST",
    "/v1/models/:model_owner/:model_name/versions/:version_id/trainings",
    async (request, reply) => {
      const account = accountOf(request);
      const { model_owner, model_name, version_id } = params(request);
      const body = (request.body ?? {}) as Record<string, unknown>;
      const destination = typeof body === "object" ? body.destination : undefined;
      if (typeof destination !== "string") {
        throw validationFailed([
          { type: "required", field: "destination", description: "destination is required" },
        ]);
      }
      const [destOwner, destName, extra] = destination.split("/");
      const destModel =
        destOwner && destName && extra === undefined ? await store.getModel(destOwner, destName) : undefined;
      if (!destModel || destModel.owner_account_id !== account.id) {
        throw new ProblemError(
          422,
          "Invalid destination",
          `The destination ${destination} must be an existing model owned by ${account.username}`,
        );
      }
      const result = await predictions.create(
        account,
        { kind: "version", ref: `${model_owner}/${model_name}:${version_id}` },
        body,
        { idempotencyKey: idempotencyKeyOf(request) },
        "training",
        destination,
      );
      if (result.replayed) reply.header("idempotent-replayed", "true");
      return reply.code(201).send(trainingJson(result.record, urls));
    },
    { createsPrediction: true },
  );

  addRoute(app, table, "GET", "/v1/trainings", async (request) => {
    const page = await store.listPredictions({
      account_id: accountOf(request).id,
      kind: "training",
      cursor: cursorOf(request),
      limit: 100,
    });
    return toPage(request, urls.api(""), page, (t) => trainingJson(t, urls));
  });

  addRoute(app, table, "GET", "/v1/trainings/:training_id", async (request) =>
    trainingJson(await ownTraining(request), urls),
  );

  addRoute(app, table, "POST", "/v1/trainings/:training_id/cancel", async (request) =>
    trainingJson(await predictions.cancel(await ownTraining(request)), urls),
  );
}
