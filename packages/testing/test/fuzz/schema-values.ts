import { resolve, type Schema } from "./openapi.js";
import type { Random } from "./random.js";

/** Values that reach real code for a property (an existing version, owner, hardware…), by name. */
export type Hints = Record<string, ((random: Random) => unknown) | undefined>;

/**
 * A value the schema accepts: required properties always, optional ones half the time, hinted
 * properties from their hint (random strings rarely name anything that exists).
 */
export function validValue(document: Schema, node: unknown, random: Random, hints: Hints = {}): unknown {
  const schema = resolve(document, node);
  if (Array.isArray(schema.enum)) return random.pick(schema.enum as unknown[]);
  const required = new Set((schema.required as string[] | undefined) ?? []);
  switch (schema.type) {
    case "object": {
      const value: Record<string, unknown> = {};
      for (const [name, property] of Object.entries((schema.properties as Schema | undefined) ?? {})) {
        if (!required.has(name) && random.chance(0.5)) continue;
        const hint = hints[name];
        value[name] = hint ? hint(random) : validValue(document, property, random, {});
      }
      return value;
    }
    case "array":
      return Array.from({ length: random.int(0, 3) }, () => validValue(document, schema.items, random, {}));
    case "integer": {
      const min = typeof schema.minimum === "number" ? schema.minimum : 0;
      const max = typeof schema.maximum === "number" ? schema.maximum : 1000;
      return random.int(min, max);
    }
    case "number":
      return random.int(0, 100_000) / 100;
    case "boolean":
      return random.chance(0.5);
    case "string": {
      if (schema.format === "date-time") return new Date(random.int(0, 2_000_000_000) * 1000).toISOString();
      if (schema.format === "uri") return `https://example.com/${random.word()}`;
      if (schema.format === "binary") return random.word(0, 64);
      const max = typeof schema.maxLength === "number" ? schema.maxLength : 24;
      return random.word(1, Math.max(1, Math.min(max, 24)));
    }
    default:
      return random.pick([null, 1, "text", true, { a: 1 }, [1, 2]]);
  }
}

/** A value of another JSON type than `schema` allows. */
export function wrongType(document: Schema, node: unknown, random: Random): unknown {
  const type = resolve(document, node).type;
  const others: unknown[] = [null, 0, -1.5, "text", true, [], {}, [1, "a"], { nested: { a: [] } }];
  const matches = (value: unknown) =>
    (type === "string" && typeof value === "string") ||
    ((type === "integer" || type === "number") && typeof value === "number") ||
    (type === "boolean" && typeof value === "boolean") ||
    (type === "array" && Array.isArray(value)) ||
    (type === "object" && typeof value === "object" && value !== null && !Array.isArray(value));
  return random.pick(others.filter((value) => !matches(value)));
}

/** `levels` nested arrays around a value. */
export function deepNesting(levels: number): string {
  return `${"[".repeat(levels)}1${"]".repeat(levels)}`;
}

export interface BodyMutation {
  label: string;
  /** The body to send: JSON text or raw bytes. */
  body: string | Uint8Array;
}

/**
 * One mutation of a valid JSON object body: a property dropped, of the wrong type, out of range, huge or
 * odd; the body deep, truncated, not an object, poisoned, empty, or not JSON at all.
 */
export function mutateJsonBody(
  document: Schema,
  node: unknown,
  valid: Record<string, unknown>,
  random: Random,
): BodyMutation {
  const schema = resolve(document, node);
  const properties = (schema.properties as Schema | undefined) ?? {};
  const names = Object.keys(properties);
  const required = (schema.required as string[] | undefined) ?? [];
  const copy: Record<string, unknown> = { ...valid };
  const someName = () => (names.length > 0 ? random.pick(names) : "input");
  switch (random.int(0, 15)) {
    case 0: {
      const name = required.length > 0 ? random.pick(required) : someName();
      delete copy[name];
      return { label: `drop ${name}`, body: JSON.stringify(copy) };
    }
    case 1:
    case 2: {
      const name = someName();
      copy[name] = wrongType(document, properties[name], random);
      return { label: `wrong type ${name}`, body: JSON.stringify(copy) };
    }
    case 3:
      copy[random.pick(["extra", "id", "status", "owner_account_id", "__proto__x"])] = random.word();
      return { label: "extra property", body: JSON.stringify(copy) };
    case 4: {
      const name = someName();
      copy[name] = random.nasty();
      return { label: `nasty string ${name}`, body: JSON.stringify(copy) };
    }
    case 5: {
      const name = someName();
      const property = resolve(document, properties[name]);
      const min = typeof property.minimum === "number" ? property.minimum : 0;
      const max = typeof property.maximum === "number" ? property.maximum : 1000;
      const value = random.pick([min - 1, max + 1, 1.5, -0, 2 ** 53, -(2 ** 31) - 1]);
      copy[name] = value;
      return { label: `out of range ${name}`, body: JSON.stringify(copy) };
    }
    case 6: {
      // Numbers JSON.stringify cannot write: JSON.parse reads them as Infinity or a rounded value.
      const name = someName();
      const text = JSON.stringify({ ...copy, [name]: 0 });
      const number = random.pick(["1e400", "-1e400", "123456789012345678901234567890", "1.0e-400"]);
      return { label: `odd number ${name}`, body: text.replace(`"${name}":0`, `"${name}":${number}`) };
    }
    case 7: {
      const name = someName();
      const levels = random.pick([63, 65, 100, 3000, 20_000]);
      const text = JSON.stringify({ ...copy, [name]: 0 });
      return {
        label: `nested ${levels}`,
        body: text.replace(`"${name}":0`, `"${name}":${deepNesting(levels)}`),
      };
    }
    case 8: {
      const text = JSON.stringify(copy);
      return { label: "truncated", body: text.slice(0, random.int(0, Math.max(0, text.length - 1))) };
    }
    case 9:
      return {
        label: "not an object",
        body: random.pick(["[]", "null", "1", '"text"', "true", "[{}]", '{"input":{}}[]']),
      };
    case 10:
      return {
        label: "poisoned",
        body: random.pick([
          '{"__proto__":{"polluted":1}}',
          '{"constructor":{"prototype":{"polluted":1}}}',
          `{"input":{"__proto__":{"polluted":1}},"version":"x"}`,
        ]),
      };
    case 11:
      return { label: "empty", body: random.pick(["", " ", "\n"]) };
    case 12:
      return { label: "random bytes", body: random.bytes(random.int(1, 512)) };
    case 13:
      // Invalid UTF-8 and a BOM around otherwise valid JSON.
      return {
        label: "bad encoding",
        body: Buffer.concat([
          Buffer.from(random.pick([[0xef, 0xbb, 0xbf], [0xff, 0xfe], [0xc3]])),
          Buffer.from(JSON.stringify(copy)),
        ]),
      };
    case 14: {
      const name = someName();
      copy[name] = "x".repeat(random.pick([10_000, 200_000]));
      return { label: `huge ${name}`, body: JSON.stringify(copy) };
    }
    default:
      return { label: "duplicate keys", body: `${JSON.stringify(copy).slice(0, -1)},"input":[],"input":7}` };
  }
}
