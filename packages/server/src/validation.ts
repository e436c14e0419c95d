import type { InvalidField } from "@replicant/protocol";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { validationFailed } from "./errors.js";

// ajv-formats is CommonJS; under NodeNext its default export is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/**
 * Validates prediction inputs against a version's OpenAPI schema (Cog's shape), applying defaults, and
 * reports failures the way Replicate does: 422 "Input validation failed" with `invalid_fields`.
 * Compiled validators are cached per schema object key (the version id).
 */
export class InputValidator {
  private readonly ajv: Ajv;
  private readonly cache = new Map<string, ValidateFunction>();

  constructor() {
    this.ajv = new Ajv({ strict: false, useDefaults: true, allErrors: true, coerceTypes: false });
    addFormats(this.ajv);
  }

  /**
   * Returns a copy of `input` with defaults applied, or throws a 422 problem.
   * `schemaName` is "Input" for predictions and "TrainingInput" for trainings.
   */
  validate(
    cacheKey: string,
    openapi: Record<string, unknown>,
    input: unknown,
    schemaName = "Input",
  ): Record<string, unknown> {
    const validator = this.compile(`${cacheKey}:${schemaName}`, openapi, schemaName);
    const copy = structuredClone(input) as Record<string, unknown>;
    if (validator && !validator(copy)) throw validationFailed(toInvalidFields(validator.errors ?? []));
    return copy;
  }

  private compile(
    key: string,
    openapi: Record<string, unknown>,
    schemaName: string,
  ): ValidateFunction | undefined {
    const cached = this.cache.get(key);
    if (cached) return cached;
    const components = (openapi.components ?? {}) as { schemas?: Record<string, unknown> };
    if (!components.schemas?.[schemaName]) return undefined;
    // $refs in Cog schemas point at #/components/schemas/…, so the root keeps the components.
    const validator = this.ajv.compile({ $ref: `#/components/schemas/${schemaName}`, components });
    this.cache.set(key, validator);
    return validator;
  }
}

function fieldName(error: ErrorObject): string {
  const path = error.instancePath
    .split("/")
    .filter(Boolean)
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"));
  return ["input", ...path].join(".");
}

function lastSegment(field: string): string {
  return field.split(".").at(-1) ?? field;
}

function toInvalidFields(errors: ErrorObject[]): InvalidField[] {
  const fields: InvalidField[] = [];
  for (const error of errors) {
    const field = fieldName(error);
    const params = error.params as Record<string, unknown>;
    switch (error.keyword) {
      case "required":
        fields.push({
          type: "required",
          field,
          description: `${String(params.missingProperty)} is required`,
        });
        break;
      case "maximum":
        fields.push({
          type: "number_lte",
          field,
          description: `Must be less than or equal to ${String(params.limit)}`,
        });
        break;
      case "minimum":
        fields.push({
          type: "number_gte",
          field,
          description: `Must be greater than or equal to ${String(params.limit)}`,
        });
        break;
      case "exclusiveMaximum":
        fields.push({ type: "number_lt", field, description: `Must be less than ${String(params.limit)}` });
        break;
      case "exclusiveMinimum":
        fields.push({
          type: "number_gt",
          field,
          description: `Must be greater than ${String(params.limit)}`,
        });
        break;
      case "maxLength":
        fields.push({
          type: "string_lte",
          field,
          description: `String length must be less than or equal to ${String(params.limit)}`,
        });
        break;
      case "minLength":
        fields.push({
          type: "string_gte",
          field,
          description: `String length must be greater than or equal to ${String(params.limit)}`,
        });
        break;
      case "pattern":
        fields.push({
          type: "string_pattern",
          field,
          description: `Does not match pattern '${String(params.pattern)}'`,
        });
        break;
      case "enum": {
        const allowed = (params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ");
        fields.push({
          type: "enum",
          field,
          description: `${lastSegment(field)} must be one of the following: ${allowed}`,
        });
        break;
      }
      case "type":
        fields.push({
          type: "invalid_type",
          field,
          description: `Invalid type. Expected: ${String(params.type)}`,
        });
        break;
      case "format":
        fields.push({
          type: "format",
          field,
          description: `Does not match format '${String(params.format)}'`,
        });
        break;
      case "additionalProperties":
        fields.push({
          type: "additional_property_not_allowed",
          field,
          description: `Additional property ${String(params.additionalProperty)} is not allowed`,
        });
        break;
      case "if":
      case "allOf":
        break; // the failing sub-schema is reported on its own
      default:
        fields.push({ type: error.keyword, field, description: error.message ?? "is invalid" });
    }
  }
  return fields;
}
