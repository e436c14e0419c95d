/** True for `{}`-style objects (not arrays, class instances, Blobs, Dates...). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === null || prototype === Object.prototype;
}

/** Walks arrays and plain objects, replacing every leaf with `mapper(leaf)`. Returns a copy. */
export async function transformLeaves(value: unknown, mapper: (leaf: unknown) => unknown): Promise<unknown> {
  if (Array.isArray(value)) {
    const copy: unknown[] = [];
    for (const item of value) copy.push(await transformLeaves(item, mapper));
    return copy;
  }
  if (isPlainObject(value)) {
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) copy[key] = await transformLeaves(item, mapper);
    return copy;
  }
  return await mapper(value);
}

/** Synchronous variant of {@link transformLeaves}. */
export function mapLeaves(value: unknown, mapper: (leaf: unknown) => unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => mapLeaves(item, mapper));
  if (isPlainObject(value)) {
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) copy[key] = mapLeaves(item, mapper);
    return copy;
  }
  return mapper(value);
}
