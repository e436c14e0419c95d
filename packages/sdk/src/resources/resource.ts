import type { Replicant } from "../client.js";

/** Base of every resource: holds the client it sends requests through. */
export abstract class APIResource {
  protected readonly client: Replicant;
  constructor(client: Replicant) {
    this.client = client;
  }
}

/** Builds a path from a template, URL-encoding each segment: `path\`/models/${owner}/${name}\``. */
export function path(strings: TemplateStringsArray, ...segments: string[]): string {
  return strings.reduce((result, text, index) => {
    const segment = segments[index - 1];
    return result + (segment === undefined ? "" : encodeURIComponent(segment)) + text;
  });
}

/** Splits `owner/name` into its two parts. */
export function splitModelName(model: string): [string, string] {
  const [owner, name, ...rest] = model.split("/");
  if (!owner || !name || rest.length > 0) throw new TypeError(`Expected "owner/name", got "${model}"`);
  return [owner, name];
}
