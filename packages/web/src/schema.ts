/** Reads a model version's OpenAPI schema (Cog's shape) into form fields, and form values back into input. */

export type FieldKind =
  | "string"
  | "text"
  | "secret"
  | "integer"
  | "number"
  | "boolean"
  | "choice"
  | "file"
  | "json";

export interface Field {
  name: string;
  title: string;
  kind: FieldKind;
  description: string | undefined;
  default: unknown;
  required: boolean;
  minimum: number | undefined;
  maximum: number | undefined;
  choices: (string | number)[] | undefined;
  /** For choices and json: the JSON type of the values. */
  valueType: string | undefined;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function resolveRef(root: Json, ref: unknown): Json | undefined {
  if (typeof ref !== "string" || !ref.startsWith("#/")) return undefined;
  let node: unknown = root;
  for (const part of ref.slice(2).split("/")) {
    if (!isObject(node)) return undefined;
    node = node[part];
  }
  return isObject(node) ? node : undefined;
}

/** A property with `allOf: [{$ref}]` (Cog's choices) or a `$ref` merged with what it points to. */
function flatten(root: Json, property: Json): Json {
  let merged: Json = { ...property };
  const refs: unknown[] = [];
  if (typeof property.$ref === "string") refs.push(property.$ref);
  for (const key of ["allOf", "anyOf"] as const) {
    const list = property[key];
    if (Array.isArray(list)) for (const item of list) if (isObject(item) && item.$ref) refs.push(item.$ref);
  }
  for (const ref of refs) {
    const target = resolveRef(root, ref);
    if (target) merged = { ...target, ...merged };
  }
  return merged;
}

function num(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

export function schemaPart(schema: Json | null | undefined, name: string): Json | undefined {
  const components = isObject(schema?.components) ? schema.components : undefined;
  const schemas = isObject(components?.schemas) ? components.schemas : undefined;
  const part = schemas?.[name];
  return isObject(part) ? part : undefined;
}

export function fieldsOf(schema: Json | null | undefined, part = "Input"): Field[] {
  const input = schemaPart(schema, part);
  if (!schema || !input || !isObject(input.properties)) return [];
  const required = new Set(
    Array.isArray(input.required) ? input.required.filter((r) => typeof r === "string") : [],
  );
  const entries = Object.entries(input.properties).filter((e): e is [string, Json] => isObject(e[1]));
  entries.sort((a, b) => (num(a[1]["x-order"]) ?? 1e9) - (num(b[1]["x-order"]) ?? 1e9));
  return entries.map(([name, raw]) => {
    const p = flatten(schema, raw);
    const type = typeof p.type === "string" ? p.type : undefined;
    const format = typeof p.format === "string" ? p.format : undefined;
    const choices = Array.isArray(p.enum)
      ? p.enum.filter((v): v is string | number => typeof v === "string" || typeof v === "number")
      : undefined;
    let kind: FieldKind;
    if (choices && choices.length > 0) kind = "choice";
    else if (type === "boolean") kind = "boolean";
    else if (type === "integer") kind = "integer";
    else if (type === "number") kind = "number";
    else if (type === "string" && format === "uri") kind = "file";
    else if (type === "string" && (p["x-cog-secret"] === true || format === "password")) kind = "secret";
    else if (type === "string") kind = /prompt|text|description|system/i.test(name) ? "text" : "string";
    else kind = "json";
    return {
      name,
      title: typeof p.title === "string" ? p.title : name,
      kind,
      description: typeof p.description === "string" ? p.description : undefined,
      default: p.default,
      required: required.has(name),
      minimum: num(p.minimum) ?? num(p.exclusiveMinimum),
      maximum: num(p.maximum) ?? num(p.exclusiveMaximum),
      choices,
      valueType: type,
    };
  });
}

/** What a form keeps per field: text as typed, a checkbox's boolean, or an uploaded file's URL. */
export type FormValue = string | boolean | { url: string; name: string; size: number; contentType: string };
export type FormValues = Record<string, FormValue>;

export function initialValues(fields: Field[], from?: Record<string, unknown>): FormValues {
  const values: FormValues = {};
  for (const field of fields) {
    const given = from?.[field.name] ?? field.default;
    if (field.kind === "boolean") values[field.name] = given === true;
    else if (given === undefined || given === null) values[field.name] = "";
    else if (field.kind === "json") values[field.name] = JSON.stringify(given);
    else values[field.name] = String(given);
  }
  return values;
}

/** Turns form values into the prediction's `input`; empty optional fields are left out. Throws on bad JSON. */
export function toInput(fields: Field[], values: FormValues): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const field of fields) {
    const value = values[field.name];
    if (value === undefined) continue;
    if (typeof value === "boolean") {
      input[field.name] = value;
      continue;
    }
    if (typeof value === "object") {
      input[field.name] = value.url;
      continue;
    }
    if (value.trim() === "" && field.kind !== "string" && field.kind !== "text") continue;
    if (value === "" && !field.required) continue;
    switch (field.kind) {
      case "integer":
        input[field.name] = Number.parseInt(value, 10);
        break;
      case "number":
        input[field.name] = Number.parseFloat(value);
        break;
      case "choice":
        input[field.name] =
          field.valueType === "integer" || field.valueType === "number" ? Number(value) : value;
        break;
      case "json":
        try {
          input[field.name] = JSON.parse(value);
        } catch {
          throw new Error(`${field.title}: enter valid JSON`);
        }
        break;
      default:
        input[field.name] = value;
    }
  }
  return input;
}

/** The output's display: text to concatenate (iterators of strings), files or JSON. */
export function outputDisplay(schema: Json | null | undefined): "concatenate" | "other" {
  const output = schemaPart(schema, "Output");
  if (!output) return "other";
  if (output["x-cog-array-display"] === "concatenate") return "concatenate";
  const items = isObject(output.items) ? output.items : undefined;
  if (output.type === "array" && output["x-cog-array-type"] === "iterator" && items?.type === "string") {
    return items.format === "uri" ? "other" : "concatenate";
  }
  return "other";
}
