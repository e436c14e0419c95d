import type { FastifyRequest } from "fastify";
import type { DeploymentRecord, ReleaseRecord } from "../backends/types.js";
import { badRequest, conflict, notFound, validationFailed } from "../errors.js";
import { accountOf, addRoute, cursorOf, params, sendNoContent, toPage } from "../http.js";
import { newId } from "../ids.js";
import { deploymentJson } from "../serialize.js";
import type { RouteDeps } from "./deps.js";
import { HARDWARE } from "./hardware.js";

const NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/;
type Problems = { type: string; field: string; description: string }[];

function intField(
  fields: Record<string, unknown>,
  key: string,
  min: number,
  max: number,
  problems: Problems,
) {
  const value = fields[key];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    problems.push({ type: "invalid_type", field: key, description: "Invalid type. Expected: integer" });
  } else if (value < min) {
    problems.push({ type: "number_gte", field: key, description: `Must be greater than or equal to ${min}` });
  } else if (value > max) {
    problems.push({ type: "number_lte", field: key, description: `Must be less than or equal to ${max}` });
  } else return value;
  return undefined;
}

export function registerDeploymentRoutes({ app, table, ctx, predictions }: RouteDeps): void {
  const { store, urls } = ctx;

  async function ownDeployment(request: FastifyRequest): Promise<DeploymentRecord> {
    const { deployment_owner, deployment_name } = params(request);
    const deployment = await store.getDeployment(deployment_owner ?? "", deployment_name ?? "");
    if (!deployment || deployment.owner_account_id !== accountOf(request).id)
      throw notFound("Deployment not found");
    return deployment;
  }

  async function toJson(deployment: DeploymentRecord, release?: ReleaseRecord) {
    const current = release ?? (await store.getCurrentRelease(deployment.id));
    if (!current) throw notFound("Deployment not found");
    const creator = await store.getAccountById(current.created_by_account_id);
    if (!creator) throw notFound("Deployment not found");
    return deploymentJson(deployment, current, creator);
  }

  function objectBody(request: FastifyRequest): Record<string, unknown> {
    const body = request.body;
    if (typeof body !== "object" || body === null || Array.isArray(body))
      throw badRequest("The request body must be a JSON object");
    return body as Record<string, unknown>;
  }

  function checkHardware(value: unknown, problems: Problems): string | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "string" || !HARDWARE.some((h) => h.sku === value)) {
      problems.push({
        type: "enum",
        field: "hardware",
        description: `hardware must be one of: ${HARDWARE.map((h) => h.sku).join(", ")}`,
      });
      return undefined;
    }
    return value;
  }

  addRoute(app, table, "GET", "/v1/deployments", async (request) => {
    const page = await store.listDeployments(accountOf(request).id, {
      cursor: cursorOf(request),
      limit: 100,
    });
    const items = await Promise.all(page.items.map((d) => toJson(d)));
    return toPage(request, urls.api(""), { items, next: page.next }, (d) => d);
  });

  addRoute(app, table, "POST", "/v1/deployments", async (request, reply) => {
    const account = accountOf(request);
    const fields = objectBody(request);
    const problems: Problems = [];
    for (const key of ["name", "model", "version", "hardware", "min_instances", "max_instances"]) {
      if (fields[key] === undefined)
        problems.push({ type: "required", field: key, description: `${key} is required` });
    }
    const name = fields.name;
    if (name !== undefined && (typeof name !== "string" || !NAME.test(name))) {
      problems.push({
        type: "string_pattern",
        field: "name",
        description: "Deployment names are lowercase letters, digits, dashes, underscores and dots",
      });
    }
    const hardware = checkHardware(fields.hardware, problems);
    const min = intField(fields, "min_instances", 0, 5, problems);
    const max = intField(fields, "max_instances", 0, 20, problems);
    if (min !== undefined && max !== undefined && min > max) {
      problems.push({
        type: "number_lte",
        field: "min_instances",
        description: "min_instances must not exceed max_instances",
      });
    }
    if (problems.length > 0) throw validationFailed(problems);
    const { model, version } = await predictions.resolveVersionRef(
      account,
      `${String(fields.model)}:${String(fields.version)}`,
    );
    if (await store.getDeployment(account.username, name as string)) {
      throw conflict(`A deployment named ${account.username}/${String(name)} already exists`);
    }
    const now = ctx.now().toISOString();
    const deployment: DeploymentRecord = {
      id: newId(),
      owner_account_id: account.id,
      owner: account.username,
      name: name as string,
      created_at: now,
    };
    const release: ReleaseRecord = {
      deployment_id: deployment.id,
      number: 1,
      model: `${model.owner}/${model.name}`,
      version_id: version.id,
      hardware: hardware!,
      min_instances: min!,
      max_instances: max!,
      created_by_account_id: account.id,
      created_at: now,
    };
    await store.createDeployment(deployment, release);
    ctx.onDeploymentsChanged?.();
    return reply.code(200).send(await toJson(deployment, release));
  });

  addRoute(app, table, "GET", "/v1/deployments/:deployment_owner/:deployment_name", async (request) =>
    toJson(await ownDeployment(request)),
  );

  addRoute(app, table, "PATCH", "/v1/deployments/:deployment_owner/:deployment_name", async (request) => {
    const account = accountOf(request);
    const deployment = await ownDeployment(request);
    const current = await store.getCurrentRelease(deployment.id);
    if (!current) throw notFound("Deployment not found");
    const fields = objectBody(request);
    const problems: Problems = [];
    for (const key of Object.keys(fields)) {
      if (!["hardware", "min_instances", "max_instances", "version"].includes(key)) {
        problems.push({
          type: "additional_property_not_allowed",
          field: "",
          description: `Additional property ${key} is not allowed`,
        });
      }
    }
    const hardware = checkHardware(fields.hardware, problems);
    const min = intField(fields, "min_instances", 0, 5, problems) ?? current.min_instances;
    const max = intField(fields, "max_instances", 0, 20, problems) ?? current.max_instances;
    if (min > max)
      problems.push({
        type: "number_lte",
        field: "min_instances",
        description: "min_instances must not exceed max_instances",
      });
    if (fields.version !== undefined && typeof fields.version !== "string") {
      problems.push({
        type: "invalid_type",
        field: "version",
        description: "Invalid type. Expected: string",
      });
    }
    if (problems.length > 0) throw validationFailed(problems);
    let versionId = current.version_id;
    if (typeof fields.version === "string") {
      versionId = (await predictions.resolveVersionRef(account, `${current.model}:${fields.version}`)).version
        .id;
    }
    const release: ReleaseRecord = {
      ...current,
      number: current.number + 1,
      version_id: versionId,
      hardware: hardware ?? current.hardware,
      min_instances: min,
      max_instances: max,
      created_by_account_id: account.id,
      created_at: ctx.now().toISOString(),
    };
    await store.addRelease(release);
    ctx.onDeploymentsChanged?.();
    return toJson(deployment, release);
  });

  addRoute(
    app,
    table,
    "DELETE",
    "/v1/deployments/:deployment_owner/:deployment_name",
    async (request, reply) => {
      const deployment = await ownDeployment(request);
      await store.deleteDeployment(deployment.id);
      ctx.onDeploymentsChanged?.();
      return sendNoContent(reply);
    },
  );
}
