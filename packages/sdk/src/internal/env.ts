/** Reads an environment variable where `process` exists (Node, Bun, Deno's Node shim); undefined elsewhere. */
export function readEnv(name: string): string | undefined {
  const holder = globalThis as { process?: { env?: Record<string, string | undefined> } };
  try {
    const value = holder.process?.env?.[name];
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  } catch {
    // Deno without --allow-env throws on access.
    return undefined;
  }
}

/**
 * True on Node itself (not Bun, Deno, an edge runtime or a Next.js server): there the global fetch is
 * undici's, which keeps no HTTP cache. Read once; a Next.js server sets NEXT_RUNTIME before app code runs.
 */
export const PLAIN_NODE: boolean = (() => {
  const holder = globalThis as {
    process?: { versions?: Record<string, string | undefined> };
    EdgeRuntime?: unknown;
  };
  const versions = holder.process?.versions;
  return (
    typeof versions?.node === "string" &&
    versions.bun === undefined &&
    versions.deno === undefined &&
    holder.EdgeRuntime === undefined &&
    readEnv("NEXT_RUNTIME") === undefined
  );
})();
