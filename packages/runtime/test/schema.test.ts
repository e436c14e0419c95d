import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { cogTitle, definePredictor, generateOpenApiSchema, input, output } from "../src/index.js";
import type { JsonSchema } from "../src/schema.js";
import example from "./fixtures/cog-example-predictor.js";

interface Fixture {
  openapi: string;
  info: unknown;
  operationIds: Record<string, string>;
  components: { schemas: Record<string, unknown> };
}
const fixture: Fixture = JSON.parse(
  readFileSync(new URL("../../test/fixtures/cog-example-schema.json", import.meta.url), "utf8"),
);

test("the example predictor's schema equals the one Python Cog served", () => {
  const schema = generateOpenApiSchema(example);
  assert.equal(schema.openapi, fixture.openapi);
  assert.deepEqual(schema.info, fixture.info);
  assert.deepEqual(schema.components.schemas, fixture.components.schemas);
  const operationIds: Record<string, string> = {};
  for (const [path, item] of Object.entries(schema.paths)) {
    for (const [method, operation] of Object.entries(item as Record<string, { operationId: string }>)) {
      operationIds[`${method.toUpperCase()} ${path}`] = operation.operationId;
    }
  }
  assert.deepEqual(operationIds, fixture.operationIds);
});

test("titles follow Python's str.title()", () => {
  assert.equal(cogTitle("optional_str"), "Optional Str");
  assert.equal(cogTitle("num_inference_steps"), "Num Inference Steps");
  assert.equal(cogTitle("lora2scale"), "Lora2Scale");
  assert.equal(cogTitle("HTTPProxy"), "Httpproxy");
});

function inputProperty(spec: ReturnType<typeof input.string> | object, name = "x"): JsonSchema {
  const schema = generateOpenApiSchema({ input: { [name]: spec } as never, output: output.string() });
  const inputSchema = schema.components.schemas.Input as {
    properties: Record<string, JsonSchema>;
    required?: string[];
  };
  return { ...inputSchema.properties[name], required: inputSchema.required ?? [] };
}

test("input option: description", () => {
  assert.equal(inputProperty(input.string({ description: "Some text" })).description, "Some text");
});
test("input option: default (and not required)", () => {
  const p = inputProperty(input.string({ default: "world" }));
  assert.equal(p.default, "world");
  assert.deepEqual(p.required, []);
});
test("input option: no default means required", () => {
  assert.deepEqual(inputProperty(input.integer()).required, ["x"]);
});
test("input option: ge / le", () => {
  const p = inputProperty(input.number({ ge: 0, le: 1 }));
  assert.equal(p.minimum, 0);
  assert.equal(p.maximum, 1);
});
test("input option: min_length / max_length", () => {
  const p = inputProperty(input.string({ min_length: 2, max_length: 5 }));
  assert.equal(p.minLength, 2);
  assert.equal(p.maxLength, 5);
});
test("input option: regex", () => {
  assert.equal(inputProperty(input.string({ regex: "^a+$" })).pattern, "^a+$");
});
test("input option: choices become an enum component referenced with allOf", () => {
  const schema = generateOpenApiSchema({
    input: { int_choices: input.integer({ choices: [3, 4, 5] }) },
    output: output.string(),
  });
  assert.deepEqual(schema.components.schemas.int_choices, {
    enum: [3, 4, 5],
    type: "integer",
    description: "An enumeration.",
    title: "int_choices",
  });
  const inputSchema = schema.components.schemas.Input as { properties: Record<string, JsonSchema> };
  assert.deepEqual(inputSchema.properties.int_choices, {
    allOf: [{ $ref: "#/components/schemas/int_choices" }],
    "x-order": 0,
  });
});
test("input option: deprecated", () => {
  assert.equal(inputProperty(input.string({ deprecated: true })).deprecated, true);
});
test("input option: optional is nullable and not required", () => {
  const p = inputProperty(input.string({ optional: true }), "optional_str");
  assert.deepEqual(p, { nullable: true, title: "Optional Str", type: "string", "x-order": 0, required: [] });
  assert.equal(inputProperty(input.integer({ default: null })).nullable, true);
});
test("input type: file is a uri", () => {
  const p = inputProperty(input.file({ description: "a file" }), "infile");
  assert.deepEqual(p, {
    title: "Infile",
    type: "string",
    description: "a file",
    format: "uri",
    "x-order": 0,
    required: ["infile"],
  });
});
test("input type: secret", () => {
  const p = inputProperty(input.secret(), "key");
  assert.deepEqual(p, {
    title: "Key",
    type: "string",
    format: "password",
    writeOnly: true,
    "x-cog-secret": true,
    "x-order": 0,
    required: ["key"],
  });
});
test("input type: boolean and array, with x-order following declaration order", () => {
  const schema = generateOpenApiSchema({
    input: { a: input.boolean({ default: false }), b: input.array(input.file()) },
    output: output.string(),
  });
  const props = (schema.components.schemas.Input as { properties: Record<string, JsonSchema> }).properties;
  assert.deepEqual(props.a, { title: "A", type: "boolean", default: false, "x-order": 0 });
  assert.deepEqual(props.b, {
    title: "B",
    type: "array",
    items: { type: "string", format: "uri" },
    "x-order": 1,
  });
});

function outputSchema(spec: Parameters<typeof generateOpenApiSchema>[0]["output"]) {
  return generateOpenApiSchema({ input: {}, output: spec }).components.schemas;
}
test("output type: scalars", () => {
  assert.deepEqual(outputSchema(output.string()).Output, { title: "Output", type: "string" });
  assert.deepEqual(outputSchema(output.integer()).Output, { title: "Output", type: "integer" });
  assert.deepEqual(outputSchema(output.number()).Output, { title: "Output", type: "number" });
  assert.deepEqual(outputSchema(output.boolean()).Output, { title: "Output", type: "boolean" });
  assert.deepEqual(outputSchema(output.json()).Output, { title: "Output", type: "object" });
});
test("output type: file", () => {
  assert.deepEqual(outputSchema(output.file()).Output, { title: "Output", type: "string", format: "uri" });
});
test("output type: array is a plain array", () => {
  assert.deepEqual(outputSchema(output.array(output.string())).Output, {
    title: "Output",
    type: "array",
    items: { type: "string" },
  });
});
test("output type: iterator", () => {
  assert.deepEqual(outputSchema(output.iterator(output.string())).Output, {
    title: "Output",
    type: "array",
    items: { type: "string" },
    "x-cog-array-type": "iterator",
  });
});
test("output type: object, named Output or another model name", () => {
  assert.deepEqual(outputSchema(output.object({ text: output.string(), file: output.file() })).Output, {
    title: "Output",
    required: ["text", "file"],
    type: "object",
    properties: {
      text: { title: "Text", type: "string" },
      file: { title: "File", type: "string", format: "uri" },
    },
  });
  const named = outputSchema(output.object({ text: output.string() }, { name: "Out" }));
  assert.deepEqual(named.Output, { $ref: "#/components/schemas/Out", title: "Output" });
  assert.equal((named.Out as { title: string }).title, "Out");
});
test("training adds TrainingInput/TrainingOutput and the /trainings paths", () => {
  const predictor = definePredictor({
    input: {},
    output: output.string(),
    predict: () => "",
    train: { input: { n: input.integer({ default: 5 }) }, run: () => "/tmp/weights" },
  });
  const schema = generateOpenApiSchema(predictor);
  assert.deepEqual(schema.components.schemas.TrainingOutput, {
    title: "TrainingOutput",
    required: ["weights"],
    type: "object",
    properties: { weights: { title: "Weights", type: "string", format: "uri" } },
  });
  assert.ok(schema.components.schemas.TrainingInput);
  assert.ok(schema.components.schemas.TrainingRequest);
  assert.ok(schema.paths["/trainings"]);
  assert.ok(schema.paths["/trainings/{training_id}/cancel"]);
  assert.equal(generateOpenApiSchema(example).paths["/trainings"], undefined);
});
