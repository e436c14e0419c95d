/**
 * What this machine lets the server use to contain pushed code, found once per process: whether it runs
 * as root (then runners get users of their own), a working bubblewrap, util-linux's setpriv and prlimit,
 * and the cgroups it can create children in.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from "node:fs";
import { delimiter, join } from "node:path";

export interface CgroupParent {
  version: 1 | 2;
  /** v1: the controller of this hierarchy; v2: every controller is in the one hierarchy. */
  controllers: readonly ("memory" | "pids" | "cpu")[];
  /** The server's own cgroup, where runner cgroups are created. */
  dir: string;
}

export interface HostContainment {
  root: boolean;
  bwrap: string | undefined;
  setpriv: string | undefined;
  prlimit: string | undefined;
  /** util-linux's unshare: a network namespace of its own for a runner without bubblewrap (root only). */
  unshare: string | undefined;
  cgroups: CgroupParent[];
}

/** The first user id given to runners (far above any login user's). */
export const RUNNER_ID_BASE = 1_000_000_000;

let detected: HostContainment | undefined;

export function hostContainment(): HostContainment {
  detected ??= detect();
  return detected;
}

function detect(): HostContainment {
  const root = process.getuid?.() === 0;
  const setpriv = findProgram("setpriv");
  const bwrapPath = findProgram("bwrap");
  return {
    root,
    bwrap: bwrapPath && bwrapWorks(bwrapPath, root) ? bwrapPath : undefined,
    setpriv,
    prlimit: findProgram("prlimit"),
    unshare: root ? findProgram("unshare") : undefined,
    cgroups: process.platform === "linux" ? writableCgroups() : [],
  };
}

export function findProgram(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(delimiter)) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** bubblewrap can make its namespaces here (as the unprivileged user runners get, when root). */
function bwrapWorks(bwrap: string, root: boolean): boolean {
  const args = ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-net", "--die-with-parent"];
  const result = spawnSync(bwrap, [...args, "--ro-bind", "/", "/", "true"], {
    stdio: "ignore",
    timeout: 5000,
    ...(root ? { uid: RUNNER_ID_BASE, gid: RUNNER_ID_BASE } : {}),
  });
  return result.status === 0;
}

/** The cgroups (v2, or v1's memory, pids and cpu hierarchies) this process may create children in. */
function writableCgroups(): CgroupParent[] {
  let lines: string[];
  try {
    lines = readFileSync("/proc/self/cgroup", "utf8").trim().split("\n");
  } catch {
    return [];
  }
  const found: CgroupParent[] = [];
  if (existsSync("/sys/fs/cgroup/cgroup.controllers")) {
    const own = lines.find((line) => line.startsWith("0::"))?.slice(3);
    if (own === undefined) return [];
    const dir = join("/sys/fs/cgroup", own);
    const enabled = readOr(join(dir, "cgroup.subtree_control")).split(/\s+/);
    const controllers = (["memory", "pids", "cpu"] as const).filter((c) => enabled.includes(c));
    if (controllers.length > 0 && canCreateChild(dir)) found.push({ version: 2, controllers, dir });
    for (const parent of found) removeStaleRunnerCgroups(parent.dir);
    return found;
  }
  for (const controller of ["memory", "pids", "cpu"] as const) {
    const line = lines.find((l) => l.split(":")[1]?.split(",").includes(controller));
    const own = line?.split(":").slice(2).join(":");
    const mount = join("/sys/fs/cgroup", controller);
    if (own === undefined || !existsSync(join(mount, "cgroup.procs"))) continue;
    const dir = join(mount, own);
    if (canCreateChild(dir)) found.push({ version: 1, controllers: [controller], dir });
  }
  for (const parent of found) removeStaleRunnerCgroups(parent.dir);
  return found;
}

/** Removes runner cgroups a crashed server left (rmdir only succeeds on an empty cgroup). */
function removeStaleRunnerCgroups(dir: string): void {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir).filter((name) => name.startsWith("replicant-runner-"));
  } catch {
    return;
  }
  for (const name of entries) {
    const owner = Number(name.split("-")[2]);
    if (owner === process.pid || processAlive(owner)) continue;
    try {
      rmdirSync(join(dir, name));
    } catch {
      // still has processes, or already gone
    }
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function canCreateChild(dir: string): boolean {
  const probe = join(dir, `replicant-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
    return true;
  } catch {
    return false;
  }
}

function readOr(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
