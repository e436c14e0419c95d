/** Validates and completes predictor inputs the way Cog (pydantic v1) does, with Cog's 422 error items. */
import type { CogValidationErrorItem } from "@replicant/protocol";
import type { InputDecls, InputSpec } from "./inputs.js";
import { hasDefault, isOptionalInput } from "./inputs.js";

export type ValidationResult =
  | { ok: true; value: Record<string, unknown> }
  | { ok: false; errors: CogValidationErrorItem[] };

const regexCache = new Map<string, RegExp>();

function checkValue(
  spec: InputSpec,
  value: unknown,
  loc: (string | number)[],
  errors: CogValidationErrorItem[],
) {
  const o = spec.options;
  const fail = (msg: string, type: string, ctx?: Record<string, unknown>) => {
    errors.push(ctx ? { loc, msg, type, ctx } : { loc, msg, type });
  };
  switch (spec.kind) {
    case "string":
    case "secret":
    case "file":
      if (typeof value !== "string") return fail("str type expected", "type_error.str");
      break;
    case "integer":
      if (typeof value !== "number" || !Number.isInteger(value))
        return fail("value is not a valid integer", "type_error.integer");
      break;
    case "number":
      if (typeof value !== "number" || !Number.isFinite(value))
        return fail("value is not a valid float", "type_error.float");
      break;
    case "boolean":
      if (typeof value !== "boolean")
        return fail("value could not be parsed to a boolean", "type_error.bool");
      break;
    case "array": {
      if (!Array.isArray(value)) return fail("value is not a valid list", "type_error.list");
      const items = spec.items;
      if (items) value.forEach((item, index) => void checkValue(items, item, [...loc, index], errors));
      return;
    }
  }
  if (o.choices && !o.choices.includes(value as string | number)) {
    const permitted = o.choices.map((choice) => `'${choice}'`).join(", ");
    return fail(`value is not a valid enumeration member; permitted: ${permitted}`, "type_error.enum", {
      enum_values: [...o.choices],
    });
  }
  if (typeof value === "number") {
    if (o.ge !== undefined && value < o.ge)
      return fail(`ensure this value is greater than or equal to ${o.ge}`, "value_error.number.not_ge", {
        limit_value: o.ge,
      });
    if (o.le !== undefined && value > o.le)
      return fail(`ensure this value is less than or equal to ${o.le}`, "value_error.number.not_le", {
        limit_value: o.le,
      });
  }
  if (typeof value === "string") {
    if (o.min_length !== undefined && value.length < o.min_length)
      return fail(
        `ensure this value has at least ${o.min_length} characters`,
        "value_error.any_str.min_length",
        {
          limit_value: o.min_length,
        },
      );
    if (o.max_length !== undefined && value.length > o.max_length)
      return fail(
        `ensure this value has at most ${o.max_length} characters`,
        "value_error.any_str.max_length",
        {
          limit_value: o.max_length,
        },
      );
    if (o.regex !== undefined) {
      let regex = regexCache.get(o.regex);
      if (!regex) {
        regex = new RegExp(o.regex, "u");
        regexCache.set(o.regex, regex);
      }
      if (!regex.test(value))
        return fail(`string does not match regex "${o.regex}"`, "value_error.str.regex", {
          pattern: o.regex,
        });
    }
  }
}

/**
 * Checks `raw` against the declarations, fills in defaults and drops unknown keys (Python Cog ignores them).
 * `loc` prefixes each error location, Cog's is ["body", "input"].
 */
export function validateInput(
  decls: InputDecls,
  raw: unknown,
  loc: (string | number)[] = ["body", "input"],
): ValidationResult {
  const source = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  const value: Record<string, unknown> = {};
  const errors: CogValidationErrorItem[] = [];
  for (const name in decls) {
    const spec = decls[name]!;
    const given = source[name];
    if (given === undefined || given === null) {
      if (hasDefault(spec)) value[name] = structuredClone(spec.options.default);
      else if (isOptionalInput(spec)) continue;
      else if (given === null)
        errors.push({
          loc: [...loc, name],
          msg: "none is not an allowed value",
          type: "type_error.none.not_allowed",
        });
      else errors.push({ loc: [...loc, name], msg: "field required", type: "value_error.missing" });
      continue;
    }
    const before = errors.length;
    checkValue(spec, given, [...loc, name], errors);
    if (errors.length === before) value[name] = given;
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value };
}

/** One line per error, e.g. `n: ensure this value is less than or equal to 10`. */
export function formatValidationErrors(errors: CogValidationErrorItem[]): string {
  return errors
    .map((error) => `${error.loc.slice(2).join(".") || error.loc.join(".")}: ${error.msg}`)
    .join("\n");
}
