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
