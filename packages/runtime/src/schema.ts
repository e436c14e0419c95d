/** Cog-compatible OpenAPI document for a predictor (the shape Python Cog's FastAPI server serves). */
import { X_COG_ARRAY_DISPLAY, X_COG_ARRAY_TYPE, X_COG_SECRET, X_ORDER } from "@replicant/protocol";
import type { InputDecls, InputSpec } from "./inputs.js";
import { hasDefault, isOptionalInput } from "./inputs.js";
import type { OutputSpec } from "./outputs.js";

export type JsonSchema = Record<string, unknown>;

export interface OpenApiDocument {
  openapi: "3.0.2";
  info: { title: "Cog"; version: "0.1.0" };
  paths: Record<string, unknown>;
  components: { schemas: Record<string, JsonSchema> };
}

/** The declarations the schema needs; a loaded predictor or its serialized description both fit. */
export interface PredictorShape {
  input: InputDecls;
  output: OutputSpec;
  train?: { input: InputDecls } | undefined;
}

/** Python's str.title() followed by "_" → " ", which is how pydantic titles Cog's fields. */
export function cogTitle(name: string): string {
  let result = "";
  let previousCased = false;
  for (const char of name) {
    const cased = char.toLowerCase() !== char.toUpperCase();
    result += cased ? (previousCased ? char.toLowerCase() : char.toUpperCase()) : char;
    previousCased = cased;
  }
  return result.replaceAll("_", " ");
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

function valueSchema(spec: InputSpec): JsonSchema {
  switch (spec.kind) {
    case "string":
      return { type: "string" };
    case "integer":
      return { type: "integer" };
    case "number":
      return { type: "number" };
    case "boolean":
      return { type: "boolean" };
    case "file":
      return { type: "string", format: "uri" };
    case "secret":
      return { type: "string", format: "password", writeOnly: true, [X_COG_SECRET]: true };
    case "array":
      return { type: "array", items: spec.items ? valueSchema(spec.items) : {} };
  }
}

function inputObjectSchema(
  title: string,
  decls: InputDecls,
  schemas: Record<string, JsonSchema>,
): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  let order = 0;
  for (const [name, spec] of Object.entries(decls)) {
    const o = spec.options;
    let property: JsonSchema;
    if (o.choices && (spec.kind === "string" || spec.kind === "integer")) {
      // Cog turns choices into an enum component named after the parameter, referenced through allOf.
      schemas[name] = {
        title: name,
        enum: [...o.choices],
        type: spec.kind,
        description: "An enumeration.",
      };
      property = { allOf: [ref(name)] };
    } else {
      property = { title: cogTitle(name), ...valueSchema(spec) };
    }
    if (o.ge !== undefined) property.minimum = o.ge;
    if (o.le !== undefined) property.maximum = o.le;
    if (o.min_length !== undefined) property.minLength = o.min_length;
    if (o.max_length !== undefined) property.maxLength = o.max_length;
    if (o.regex !== undefined) property.pattern = o.regex;
    if (o.description !== undefined) property.description = o.description;
    if (hasDefault(spec)) property.default = o.default;
    if (isOptionalInput(spec)) property.nullable = true;
    else if (!hasDefault(spec)) required.push(name);
    if (o.deprecated) property.deprecated = true;
    property[X_ORDER] = order++;
    properties[name] = property;
  }
  return required.length > 0
    ? { title, required, type: "object", properties }
    : { title, type: "object", properties };
}

function outputValueSchema(spec: OutputSpec, schemas: Record<string, JsonSchema>): JsonSchema {
  switch (spec.kind) {
    case "string":
    case "integer":
    case "number":
    case "boolean":
      return { type: spec.kind };
    case "file":
      return { type: "string", format: "uri" };
    case "json":
      return { type: "object" };
    case "array":
      return { type: "array", items: spec.items ? outputValueSchema(spec.items, schemas) : {} };
    case "iterator": {
      const schema: JsonSchema = {
        type: "array",
        items: spec.items ? outputValueSchema(spec.items, schemas) : {},
        [X_COG_ARRAY_TYPE]: "iterator",
      };
      if (spec.display) schema[X_COG_ARRAY_DISPLAY] = spec.display;
      return schema;
    }
    case "object": {
      const properties: Record<string, JsonSchema> = {};
      for (const [name, property] of Object.entries(spec.properties ?? {})) {
        properties[name] = { title: cogTitle(name), ...outputValueSchema(property, schemas) };
      }
      return { type: "object", required: Object.keys(properties), properties };
    }
  }
}

function outputSchema(title: string, spec: OutputSpec, schemas: Record<string, JsonSchema>): JsonSchema {
  if (spec.kind === "object") {
    const { type, required, properties } = outputValueSchema(spec, schemas);
    const name = spec.name ?? title;
    const model: JsonSchema = { title: name, required, type, properties };
    if (name === title) return model;
    // A model class with another name becomes its own component, referenced from Output.
    schemas[name] = model;
    return { ...ref(name), title };
  }
  return { title, ...outputValueSchema(spec, schemas) };
}

const requestSchema = (title: string, inputName: string): JsonSchema => ({
  title,
  type: "object",
  properties: {
    input: ref(inputName),
    id: { title: "Id", type: "string" },
    created_at: { title: "Created At", type: "string", format: "date-time" },
    context: { title: "Context", type: "object", additionalProperties: { type: "string" } },
    output_file_prefix: { title: "Output File Prefix", type: "string" },
    webhook: { title: "Webhook", maxLength: 65536, minLength: 1, type: "string", format: "uri" },
    webhook_events_filter: {
      type: "array",
      items: ref("WebhookEvent"),
      default: ["start", "output", "logs", "completed"],
    },
  },
});

const responseSchema = (title: string, inputName: string, outputName: string): JsonSchema => ({
  title,
  type: "object",
  properties: {
    input: ref(inputName),
    output: ref(outputName),
    id: { title: "Id", type: "string" },
    version: { title: "Version", type: "string" },
    created_at: { title: "Created At", type: "string", format: "date-time" },
    started_at: { title: "Started At", type: "string", format: "date-time" },
    completed_at: { title: "Completed At", type: "string", format: "date-time" },
    logs: { title: "Logs", type: "string", default: "" },
    error: { title: "Error", type: "string" },
    status: ref("Status"),
    metrics: { title: "Metrics", type: "object" },
  },
});

const json = (schema: JsonSchema) => ({ "application/json": { schema } });
const ok = (schema: JsonSchema) => ({ description: "Successful Response", content: json(schema) });
const invalid = { description: "Validation Error", content: json(ref("HTTPValidationError")) };

function operations(
  collection: "predictions" | "trainings",
  requestName: string,
  responseName: string,
): Record<string, unknown> {
  const singular = collection === "predictions" ? "prediction" : "training";
  const verb = collection === "predictions" ? "predict" : "train";
  const idParam = `${singular}_id`;
  const summary = collection === "predictions" ? "Predict" : "Train";
  const prefer = {
    required: false,
    schema: { title: "Prefer", type: "string" },
    name: "prefer",
    in: "header",
  };
  const pathParam = {
    required: true,
    schema: { title: cogTitle(idParam), type: "string" },
    name: idParam,
    in: "path",
  };
  const body = { content: json(ref(requestName)) };
  return {
    [`/${collection}`]: {
      post: {
        summary,
        description: collection === "predictions" ? "Run a single prediction on the model" : undefined,
        operationId: `${verb}_${collection}_post`,
        parameters: [prefer],
        requestBody: body,
        responses: { "200": ok(ref(responseName)), "422": invalid },
      },
    },
    [`/${collection}/{${idParam}}`]: {
      put: {
        summary: `${summary} Idempotent`,
        description: `Run a single ${singular} on the model (idempotent creation).`,
        operationId: `${verb}_idempotent_${collection}__${idParam}__put`,
        parameters: [pathParam, prefer],
        requestBody: { ...body, required: true },
        responses: { "200": ok(ref(responseName)), "422": invalid },
      },
    },
    [`/${collection}/{${idParam}}/cancel`]: {
      post: {
        summary: `Cancel`,
        description: `Cancel a running ${singular}`,
        operationId: `cancel${collection === "predictions" ? "" : "_training"}_${collection}__${idParam}__cancel_post`,
        parameters: [pathParam],
        responses: { "200": ok({}), "422": invalid },
      },
    },
  };
}

/** Builds the OpenAPI document Cog would serve at /openapi.json for this predictor. */
export function generateOpenApiSchema(predictor: PredictorShape): OpenApiDocument {
  const schemas: Record<string, JsonSchema> = {};
  schemas.Input = inputObjectSchema("Input", predictor.input, schemas);
  schemas.Output = outputSchema("Output", predictor.output, schemas);
  schemas.PredictionRequest = requestSchema("PredictionRequest", "Input");
  schemas.PredictionResponse = responseSchema("PredictionResponse", "Input", "Output");
  schemas.Status = {
    title: "Status",
    enum: ["starting", "processing", "succeeded", "canceled", "failed"],
    type: "string",
    description: "An enumeration.",
  };
  schemas.WebhookEvent = {
    title: "WebhookEvent",
    enum: ["start", "output", "logs", "completed"],
    type: "string",
    description: "An enumeration.",
  };
  schemas.HTTPValidationError = {
    title: "HTTPValidationError",
    type: "object",
    properties: { detail: { title: "Detail", type: "array", items: ref("ValidationError") } },
  };
  schemas.ValidationError = {
    title: "ValidationError",
    required: ["loc", "msg", "type"],
    type: "object",
    properties: {
      loc: { title: "Location", type: "array", items: { anyOf: [{ type: "string" }, { type: "integer" }] } },
      msg: { title: "Message", type: "string" },
      type: { title: "Error Type", type: "string" },
    },
  };
  let paths: Record<string, unknown> = {
    "/": {
      get: {
        summary: "Root",
        operationId: "root__get",
        responses: { "200": ok({ title: "Response Root  Get" }) },
      },
    },
    "/health-check": {
      get: {
        summary: "Healthcheck",
        operationId: "healthcheck_health_check_get",
        responses: { "200": ok({ title: "Response Healthcheck Health Check Get" }) },
      },
    },
    ...operations("predictions", "PredictionRequest", "PredictionResponse"),
  };
  if (predictor.train) {
    schemas.TrainingInput = inputObjectSchema("TrainingInput", predictor.train.input, schemas);
    schemas.TrainingOutput = {
      title: "TrainingOutput",
      required: ["weights"],
      type: "object",
      properties: { weights: { title: "Weights", type: "string", format: "uri" } },
    };
    schemas.TrainingRequest = requestSchema("TrainingRequest", "TrainingInput");
    schemas.TrainingResponse = responseSchema("TrainingResponse", "TrainingInput", "TrainingOutput");
    paths = { ...paths, ...operations("trainings", "TrainingRequest", "TrainingResponse") };
  }
  paths["/shutdown"] = {
    post: {
      summary: "Start Shutdown",
      operationId: "start_shutdown_shutdown_post",
      responses: { "200": ok({ title: "Response Start Shutdown Shutdown Post" }) },
    },
  };
  // JSON round trip drops the undefined descriptions above, as serving the document would.
  return JSON.parse(
    JSON.stringify({
      openapi: "3.0.2",
      info: { title: "Cog", version: "0.1.0" },
      paths,
      components: { schemas },
    }),
  );
}
