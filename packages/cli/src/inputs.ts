import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { fromPath } from "@replicant/sdk";
import { usageError } from "./errors.js";
import type { CliIo } from "./io.js";

type Json = Record<string, unknown>;

/** What the CLI needs of one input: its JSON type, item type, allowed values and whether it is a file. */
export interface InputProperty {
  type: string | undefined;
  itemType: string | undefined;
  enum: unknown[] | undefined;
  isFile: boolean;
}

export interface InputSchema {
  properties: Record<string, InputProperty>;
  required: string[];
}

function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads Cog's `components.schemas.Input`, following `allOf: [{ $ref }]` to enums. */
export function inputSchemaOf(openapiSchema: unknown, component = "Input"): InputSchema | undefined {
  if (!isRecord(openapiSchema) || !isRecord(openapiSchema.components)) return undefined;
  const schemas = openapiSchema.components.schemas;
  const inputSchema = isRecord(schemas) ? schemas[component] : undefined;
  if (!isRecord(schemas) || !isRecord(inputSchema)) return undefined;
  const resolveRef = (schema: Json): Json => {
    const first = Array.isArray(schema.allOf) ? schema.allOf.find(isRecord) : undefined;
    const ref = typeof schema.$ref === "string" ? schema.$ref : first?.$ref;
    if (typeof ref !== "string") return schema;
    const target = schemas[ref.split("/").pop() ?? ""];
    return isRecord(target) ? { ...target, ...schema } : schema;
  };
  const properties: Record<string, InputProperty> = {};
  const rawProperties = isRecord(inputSchema.properties) ? inputSchema.properties : {};
  for (const [key, raw] of Object.entries(rawProperties)) {
    if (!isRecord(raw)) continue;
    const schema = resolveRef(raw);
    const items = isRecord(schema.items) ? resolveRef(schema.items) : undefined;
    properties[key] = {
      type: typeof schema.type === "string" ? schema.type : undefined,
      itemType: typeof items?.type === "string" ? items.type : undefined,
      enum: Array.isArray(schema.enum) ? schema.enum : undefined,
      isFile: schema.format === "uri" || items?.format === "uri",
    };
  }
  const required = Array.isArray(inputSchema.required)
    ? inputSchema.required.filter((r): r is string => typeof r === "string")
    : [];
  return { properties, required };
}

/** Coerces one `-i` value by the property's type; `@path` becomes a file to upload. */
export async function coerceValue(
  key: string,
  raw: string,
  property: InputProperty | undefined,
  cwd: string,
): Promise<unknown> {
  if (raw.startsWith("@@")) return raw.slice(1);
  if (raw.startsWith("@")) return localFile(key, raw.slice(1), cwd);
  const type = property?.type;
  let value: unknown;
  if (type === "array") {
    if (raw.trim().startsWith("[")) value = parseJson(key, raw);
    else value = [await coerceScalar(key, raw, property?.itemType)];
  } else if (type === "object") {
    value = parseJson(key, raw);
  } else {
    value = await coerceScalar(key, raw, type);
  }
  if (property?.enum && !property.enum.some((allowed) => allowed === value)) {
    throw usageError(
      `input ${key} must be one of ${property.enum.map((v) => JSON.stringify(v)).join(", ")}; got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

async function coerceScalar(key: string, raw: string, type: string | undefined): Promise<unknown> {
  if (type === "integer" || type === "number") {
    const n = raw.trim() === "" ? Number.NaN : Number(raw);
    if (!Number.isFinite(n)) throw usageError(`input ${key} must be a number, got "${raw}"`);
    if (type === "integer" && !Number.isInteger(n))
      throw usageError(`input ${key} must be an integer, got "${raw}"`);
    return n;
  }
  if (type === "boolean") {
    const lower = raw.toLowerCase();
    if (["true", "1", "yes"].includes(lower)) return true;
    if (["false", "0", "no"].includes(lower)) return false;
    throw usageError(`input ${key} must be true or false, got "${raw}"`);
  }
  return raw;
}

function parseJson(key: string, raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    throw usageError(`input ${key} must be JSON here (e.g. ${key}='["a","b"]'), got ${raw}`);
  }
}

async function localFile(key: string, path: string, cwd: string): Promise<unknown> {
  const full = resolve(cwd, path);
  try {
    const info = await stat(full);
    if (!info.isFile()) throw new Error("not a file");
  } catch {
    throw usageError(`input ${key}: no file at ${path} (use ${key}=@@text for a value that starts with @)`);
  }
  return fromPath(full);
}

/**
 * Builds a prediction input from `-i key=value` pairs (repeated keys make arrays) on top of JSON read from
 * stdin (`-` as an argument, or stdin piped with no -i). Unknown keys and bad values are usage errors.
 */
export async function buildInput(
  pairs: string[],
  schema: InputSchema | undefined,
  io: CliIo,
  options: { stdin: "yes" | "no" | "auto" },
): Promise<Record<string, unknown>> {
  let input: Record<string, unknown> = {};
  const readStdin =
    options.stdin === "yes" || (options.stdin === "auto" && pairs.length === 0 && !io.stdin.isTTY);
  if (readStdin) {
    const text = (await io.stdin.readAll()).toString("utf8").trim();
    if (text) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw usageError('stdin is not JSON: pipe an object such as {"text":"world"}, or use -i key=value');
      }
      if (!isRecord(parsed)) throw usageError("the JSON on stdin must be an object of inputs");
      input = isRecord(parsed.input) && Object.keys(parsed).length === 1 ? parsed.input : parsed;
    }
  }
  const repeated = new Set<string>();
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw usageError(`inputs are key=value (or key=@file), got "${pair}"`);
    const key = pair.slice(0, eq);
    const property = schema?.properties[key];
    if (schema && Object.keys(schema.properties).length > 0 && !property) {
      throw usageError(
        `the model has no input "${key}"; its inputs: ${Object.keys(schema.properties).join(", ")}`,
      );
    }
    const value = await coerceValue(key, pair.slice(eq + 1), property, io.cwd);
    if (key in input && repeated.has(key)) {
      const previous = input[key];
      input[key] =
        Array.isArray(previous) && property?.type === "array"
          ? [...previous, ...(Array.isArray(value) ? value : [value])]
          : [...(Array.isArray(previous) ? previous : [previous]), value];
    } else {
      input[key] = value;
    }
    repeated.add(key);
  }
  return input;
}
