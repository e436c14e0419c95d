import { ReplicantError } from "./errors.js";

/** Where `run()`, `stream()` and `use()` send a prediction. */
export type ModelTarget =
  | { kind: "model"; owner: string; name: string }
  | { kind: "version"; owner: string | undefined; name: string | undefined; version: string }
  | { kind: "deployment"; owner: string; name: string };

/** A deployment to run, as an alternative to a model reference string. */
export interface DeploymentRef {
  deployment: `${string}/${string}`;
}

const VERSION_ID = /^[0-9a-f]{64}$/;

/**
 * Parses `owner/name`, `owner/name:version`, a bare 64-hex version id, `deployments/owner/name`, or
 * `{ deployment: "owner/name" }`.
 */
export function parseModelTarget(ref: string | DeploymentRef): ModelTarget {
  if (typeof ref !== "string") {
    const [owner, name, ...rest] = ref.deployment.split("/");
    if (!owner || !name || rest.length > 0) throw invalid(ref.deployment);
    return { kind: "deployment", owner, name };
  }
  if (VERSION_ID.test(ref)) return { kind: "version", owner: undefined, name: undefined, version: ref };
  const deployment = /^deployments\/([^/]+)\/([^/:]+)$/.exec(ref);
  if (deployment) return { kind: "deployment", owner: deployment[1]!, name: deployment[2]! };
  const match = /^([^/]+)\/([^/:]+)(?::(.+))?$/.exec(ref);
  if (!match) throw invalid(ref);
  const [, owner, name, version] = match;
  if (version) return { kind: "version", owner: owner!, name: name!, version };
  return { kind: "model", owner: owner!, name: name! };
}

function invalid(ref: string): ReplicantError {
  return new ReplicantError(
    `Invalid reference to model version: ${ref}. Expected format: owner/name, owner/name:version or deployments/owner/name`,
  );
}

/** Reads tqdm-style progress (`76%|███   | 7568/10000 [...]`) from the last matching log line. */
export function parseProgressFromLogs(
  input: { logs?: string | null } | string | null | undefined,
): { percentage: number; current: number; total: number } | null {
  const logs = typeof input === "string" ? input : input?.logs;
  if (!logs) return null;
  const pattern = /^\s*(\d+)%\s*\|.+?\|\s*(\d+)\/(\d+)/;
  for (const line of logs.split("\n").reverse()) {
    const match = pattern.exec(line);
    if (match) {
      return {
        percentage: Number.parseInt(match[1]!, 10) / 100,
        current: Number.parseInt(match[2]!, 10),
        total: Number.parseInt(match[3]!, 10),
      };
    }
  }
  return null;
}
