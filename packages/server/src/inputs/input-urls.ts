import { fileInputFields } from "./materialize-inputs.js";

/** A file input given as an http(s) URL of another host: the director will download it. */
export interface RemoteInputUrl {
  /** e.g. `input.image` or `input.images[2]`, as invalid_fields name it. */
  field: string;
  url: string;
}

type Fields = ReturnType<typeof fileInputFields>;

/** Per schema object (versions are cached, so their schemas are the same objects across creates). */
const fieldsCache = new WeakMap<object, Map<string, Fields>>();

function fieldsOf(schema: Record<string, unknown>, schemaName: string): Fields {
  let bySchemaName = fieldsCache.get(schema);
  if (!bySchemaName) {
    bySchemaName = new Map();
    fieldsCache.set(schema, bySchemaName);
  }
  let fields = bySchemaName.get(schemaName);
  if (!fields) {
    fields = fileInputFields(schema, schemaName);
    bySchemaName.set(schemaName, fields);
  }
  return fields;
}

const HTTP_URL = /^https?:\/\//i;

/**
 * The http(s) URLs among a validated input's file inputs, except this server's own (they are read from
 * storage, never fetched): data URIs and other values are left to the materializer.
 */
export function remoteInputUrls(
  schema: Record<string, unknown>,
  schemaName: string,
  input: Record<string, unknown>,
  publicUrl: string,
): RemoteInputUrl[] {
  const fields = fieldsOf(schema, schemaName);
  if (fields.size === 0) return [];
  const ownOrigin = new URL(publicUrl).origin;
  const found: RemoteInputUrl[] = [];
  const consider = (field: string, value: unknown) => {
    if (typeof value !== "string" || !HTTP_URL.test(value)) return;
    let origin: string;
    try {
      origin = new URL(value).origin;
    } catch {
      origin = "";
    }
    if (origin !== ownOrigin) found.push({ field, url: value });
  };
  for (const [name, kind] of fields) {
    const value = input[name];
    if (kind === "file") consider(`input.${name}`, value);
    else if (Array.isArray(value)) {
      for (const [index, item] of value.entries()) consider(`input.${name}[${index}]`, item);
    }
  }
  return found;
}
