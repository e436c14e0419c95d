import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";

// ajv-formats is CommonJS; under NodeNext its default export is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export type Schema = Record<string, unknown>;

export interface Parameter {
  name: string;
  in: "path" | "query" | "header";
  required: boolean;
  schema: Schema;
}

export interface DocumentedResponse {
  /** Media type → schema (undefined when the document gives none). */
  content: Map<string, Schema | undefined>;
}

export interface Operation {
  id: string;
  method: string;
  /** The document's template, e.g. `/models/{model_owner}/{model_name}`. */
  path: string;
  parameters: Parameter[];
  body: { contentType: string; schema: Schema; required: boolean } | undefined;
  responses: Map<number, DocumentedResponse>;
}

const METHODS = ["get", "post", "put", "patch", "delete", "query"];

/** `$ref: "#/components/…"` resolved against the document, once. */
export function resolve(document: Schema, node: unknown): Schema {
  let current = node as Schema;
  for (let hops = 0; typeof current?.$ref === "string" && hops < 10; hops++) {
    const path = (current.$ref as string).replace(/^#\//, "").split("/");
    current = path.reduce<Schema>((at, key) => (at[key] ?? {}) as Schema, document);
  }
  return current ?? {};
}

/** Every operation of an OpenAPI document, with its parameters, request body and responses resolved. */
export function operationsOf(document: Schema): Operation[] {
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(document.paths as Record<string, Schema>)) {
    for (const method of METHODS) {
      const operation = item[method] as Schema | undefined;
      if (!operation) continue;
      const parameters = [
        ...((item.parameters as unknown[]) ?? []),
        ...((operation.parameters as unknown[]) ?? []),
      ].map((p) => {
        const parameter = resolve(document, p);
        return {
          name: String(parameter.name),
          in: parameter.in as Parameter["in"],
          required: parameter.required === true,
          schema: resolve(document, parameter.schema),
        };
      });
      let body: Operation["body"];
      const requestBody = operation.requestBody ? resolve(document, operation.requestBody) : undefined;
      const contents = Object.entries((requestBody?.content ?? {}) as Record<string, Schema>);
      if (contents[0]) {
        const [contentType, media] = contents[0];
        body = {
          contentType,
          schema: resolve(document, media.schema),
          required: requestBody?.required === true,
        };
      }
      const responses = new Map<number, DocumentedResponse>();
      for (const [status, response] of Object.entries(operation.responses as Record<string, Schema>)) {
        const content = new Map<string, Schema | undefined>();
        const media = (resolve(document, response).content ?? {}) as Record<string, Schema>;
        for (const [type, entry] of Object.entries(media))
          content.set(type, entry.schema as Schema | undefined);
        responses.set(Number(status), { content });
      }
      operations.push({
        id: String(operation.operationId),
        method: method.toUpperCase(),
        path,
        parameters,
        body,
        responses,
      });
    }
  }
  return operations;
}

/**
 * OpenAPI 3.0's `nullable: true` (which this 3.1 document still uses) as JSON Schema: `type` gains "null"
 * (and `enum` gains null).
 */
export function toJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (typeof node !== "object" || node === null) return node;
  const source = node as Schema;
  const out: Schema = {};
  for (const [key, child] of Object.entries(source)) {
    if (key === "nullable" || key === "example") continue;
    out[key] = toJsonSchema(child);
  }
  return source.nullable === true ? makeNullable(out) : out;
}

function makeNullable(schema: Schema): Schema {
  const out: Schema = { ...schema };
  if (typeof out.type === "string") out.type = [out.type, "null"];
  if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  if (out.type === undefined && out.enum === undefined && out.$ref !== undefined) {
    return { anyOf: [{ $ref: out.$ref }, { type: "null" }] };
  }
  return out;
}

/** Validates response bodies against the document's schemas (formats and `required` enforced). */
export class ResponseSchemas {
  private readonly ajv = new Ajv({ strict: false, allErrors: false, validateFormats: true });
  private readonly cache = new Map<Schema, ValidateFunction>();
  private readonly components: unknown;

  constructor(document: Schema) {
    addFormats(this.ajv);
    this.ajv.addFormat("int64", true);
    this.components = (toJsonSchema(document) as Schema).components;
  }

  /** Undefined when `value` conforms to `schema` (one of the document's); otherwise Ajv's first error. */
  check(schema: Schema, value: unknown): string | undefined {
    let validate = this.cache.get(schema);
    if (!validate) {
      // $refs point at #/components/…: the root keeps the (converted) components beside the schema.
      validate = this.ajv.compile({ ...(toJsonSchema(schema) as Schema), components: this.components });
      this.cache.set(schema, validate);
    }
    if (validate(value)) return undefined;
    const error = validate.errors?.[0];
    return error ? `${error.instancePath || "/"} ${error.message ?? "is invalid"}` : "is invalid";
  }
}
