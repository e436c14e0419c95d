/**
 * How a pushed bundle's runner processes start: a user of their own (when the server is root), a private
 * home, the bundle read-only, the data directory out of reach, limits from cgroups (else prlimit), and,
 * where bubblewrap works, new mount, PID, IPC, UTS, user and network namespaces.
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { readFile, rm, rmdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { EGRESS_PROXY_PORT, type RunnerLaunch } from "@replicant/runtime";
import { type CgroupParent, type HostContainment, RUNNER_ID_BASE } from "./host-containment.js";
import { runnerEnvironment } from "./runner-environment.js";

export type SandboxMode = "auto" | "bwrap" | "process" | "none";

export interface RunnerLimits {
  /** Memory of a runner process and everything it starts, MB. */
  memoryMb: number;
  /** Processes and threads of a runner (a fork bomb stops there). */
  pids: number;
  /** CPU cores' worth of time; undefined leaves CPU unlimited. */
  cpus?: number | undefined;
}

export interface BundleLaunchOptions {
  host: HostContainment;
  /** "bwrap" or "process": what `auto` resolved to. */
  mode: "bwrap" | "process";
  /** Stable per version: its runners share a user id, other versions' runners do not. */
  versionId: string;
  bundleDir: string;
  /** Where the director makes each run's scratch directory. */
  scratchRoot: string;
  /** Where each process's home is made. */
  homesRoot: string;
  weights?: string | undefined;
  declaredEnv?: Record<string, string> | undefined;
  limits: RunnerLimits;
  /**
   * The version asked for network: under bubblewrap its only way out is this egress proxy socket (the
   * server's SSRF policy); in the process mode it shares the host's network. Without it, no network.
   */
  network?: { egressSocket: string | undefined } | undefined;
}

/** The user and group id of a version's runners when the server is root. */
export function runnerId(versionId: string): number {
  return RUNNER_ID_BASE + (createHash("sha256").update(versionId).digest().readUInt32BE(0) % RUNNER_ID_BASE);
}

let processSeq = 0;

/** A launch factory for RunnerHost: each call prepares one process's home and cgroup. */
export function bundleLaunch(options: BundleLaunchOptions): () => RunnerLaunch {
  const { host, limits } = options;
  const id = host.root ? runnerId(options.versionId) : undefined;
  return () => {
    const home = join(options.homesRoot, `${process.pid}-${++processSeq}`);
    mkdirSync(home, { mode: 0o700 });
    if (id !== undefined) chownSync(home, id, id);
    const cgroups = createCgroups(host.cgroups, `replicant-runner-${process.pid}-${processSeq}`, limits, id);
    const hasMemoryCgroup = cgroups.some((c) => c.controllers.includes("memory"));
    const prefix: string[] = [];
    if (cgroups.length > 0) {
      // The shell moves itself into the cgroups, then becomes the rest of the command (same pid).
      const procs = cgroups.map((c) => `'${join(c.dir, "cgroup.procs")}'`).join(" ");
      prefix.push("/bin/sh", "-c", `for f in ${procs}; do echo $$ > "$f" || exit 125; done; exec "$@"`, "sh");
    }
    // Without bubblewrap, root can still give the runner a network namespace with nothing in it.
    if (options.mode === "process" && !options.network && host.unshare)
      prefix.push(host.unshare, "--net", "--");
    const useSetpriv = id !== undefined && host.setpriv !== undefined;
    if (useSetpriv) {
      prefix.push(host.setpriv!, `--reuid=${id}`, `--regid=${id}`, "--clear-groups", "--no-new-privs", "--");
    }
    if (host.prlimit) {
      prefix.push(host.prlimit, "--core=0", "--nofile=4096:4096");
      // RLIMIT_NPROC counts the processes of a user: only meaningful for a user of the runner's own.
      if (id !== undefined) prefix.push(`--nproc=${limits.pids}:${limits.pids}`);
      if (!hasMemoryCgroup) {
        const bytes = limits.memoryMb * 1024 * 1024;
        prefix.push(`--data=${bytes}:${bytes}`);
      }
      prefix.push("--");
    }
    if (options.mode === "bwrap" && host.bwrap) prefix.push(host.bwrap, ...bwrapArguments(options, home));
    const env = runnerEnvironment({ home, declared: options.declaredEnv });
    const egress = options.mode === "bwrap" ? options.network?.egressSocket : undefined;
    if (egress) {
      const proxy = `http://127.0.0.1:${EGRESS_PROXY_PORT}`;
      Object.assign(env, {
        REPLICANT_EGRESS_SOCKET: egress,
        HTTP_PROXY: proxy,
        HTTPS_PROXY: proxy,
        http_proxy: proxy,
        https_proxy: proxy,
        // Node 22.21+/24: fetch and http follow the variables above.
        NODE_USE_ENV_PROXY: "1",
      });
    }
    return {
      prefix,
      env,
      ...(id !== undefined && !useSetpriv ? { uid: id, gid: id } : {}),
      cwd: home,
      fileRoots: [home],
      memoryLimitMb: limits.memoryMb,
      ...(id !== undefined ? { scratchOwner: { uid: id, gid: id } } : {}),
      release: async () => {
        await Promise.all(cgroups.map((cgroup) => removeCgroup(cgroup.dir)));
        await rm(home, { recursive: true, force: true });
      },
    };
  };
}

/**
 * Makes a bundle directory readable by its version's runners only: owned by root with the runners' group,
 * mode 0750, its files read-only for them.
 */
export function shareBundleWithRunners(bundleDir: string, versionId: string, root: boolean): void {
  if (!root) return;
  const id = runnerId(versionId);
  chownSync(bundleDir, 0, id);
  chmodSync(bundleDir, 0o750);
}

/** A weights file the runners read: a copy beside the bundles, readable by the version's group. */
export function shareWeightsWithRunners(path: string, versionId: string, root: boolean): void {
  if (!root) return;
  chownSync(path, 0, runnerId(versionId));
  chmodSync(path, 0o640);
}

function bwrapArguments(options: BundleLaunchOptions, home: string): string[] {
  const args = [
    "--unshare-user",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--unshare-net", // with network asked for, the egress proxy's socket is the only way out
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
    "--hostname",
    "replicant-runner",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
  ];
  for (const path of ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]) {
    const stat = lstatOrUndefined(path);
    if (stat?.isSymbolicLink()) args.push("--symlink", readlinkSync(path), path);
    else if (stat?.isDirectory()) args.push("--ro-bind", path, path);
  }
  for (const path of [
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/localtime",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
  ]) {
    args.push("--ro-bind-try", path, path);
  }
  const node = realpathSync(process.execPath);
  if (!node.startsWith("/usr/")) args.push("--ro-bind", dirname(dirname(node)), dirname(dirname(node)));
  for (const [source, target] of runtimeMounts()) args.push("--ro-bind", source, target);
  args.push("--ro-bind", options.bundleDir, options.bundleDir);
  if (options.weights) args.push("--ro-bind", options.weights, options.weights);
  const egress = options.network?.egressSocket;
  if (egress) args.push("--bind", egress, egress);
  args.push("--bind", options.scratchRoot, options.scratchRoot);
  args.push("--bind", home, home);
  args.push("--chdir", home);
  return args;
}

let mounts: [string, string][] | undefined;

/**
 * The server's @replicant/runtime (which bundles link to) and what it imports, each mounted where the
 * runtime resolves it.
 */
function runtimeMounts(): [string, string][] {
  if (mounts) return mounts;
  const runtimeEntry = fileURLToPath(import.meta.resolve("@replicant/runtime"));
  const runtimeDir = packageRoot(runtimeEntry);
  const found: [string, string][] = [[runtimeDir, runtimeDir]];
  const require = createRequire(runtimeEntry);
  for (const name of ["@replicant/protocol"]) {
    const candidates = require.resolve.paths(name) ?? [];
    const where = candidates.map((dir) => join(dir, name)).find((path) => existsSync(path));
    if (where) found.push([realpathSync(where), where]);
  }
  mounts = found;
  return found;
}

function packageRoot(entry: string): string {
  let dir = dirname(realpathSync(entry));
  while (dir !== dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name)
      return dir;
    dir = dirname(dir);
  }
  throw new Error(`no package.json above ${entry}`);
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

interface RunnerCgroup {
  dir: string;
  controllers: readonly string[];
}

function createCgroups(
  parents: readonly CgroupParent[],
  name: string,
  limits: RunnerLimits,
  id: number | undefined,
): RunnerCgroup[] {
  const created: RunnerCgroup[] = [];
  for (const parent of parents) {
    const dir = join(parent.dir, name);
    try {
      mkdirSync(dir);
      for (const controller of parent.controllers) writeLimits(parent.version, controller, dir, limits);
      if (id !== undefined) chownSync(join(dir, "cgroup.procs"), id, id);
      created.push({ dir, controllers: parent.controllers });
    } catch {
      // Just made and empty: nothing to wait for.
      try {
        rmdirSync(dir);
      } catch {
        // never made
      }
    }
  }
  return created;
}

function writeLimits(version: 1 | 2, controller: string, dir: string, limits: RunnerLimits): void {
  const bytes = String(limits.memoryMb * 1024 * 1024);
  const write = (file: string, value: string, optional = false) => {
    try {
      writeFileSync(join(dir, file), value);
    } catch (error) {
      if (!optional) throw error;
    }
  };
  if (controller === "memory") {
    if (version === 2) {
      write("memory.max", bytes);
      write("memory.swap.max", "0", true);
    } else {
      write("memory.limit_in_bytes", bytes);
      write("memory.memsw.limit_in_bytes", bytes, true);
    }
  } else if (controller === "pids") {
    write("pids.max", String(limits.pids));
  } else if (controller === "cpu" && limits.cpus !== undefined) {
    const period = 100_000;
    const quota = Math.max(1000, Math.round(limits.cpus * period));
    if (version === 2) write("cpu.max", `${quota} ${period}`);
    else {
      write("cpu.cfs_period_us", String(period));
      write("cpu.cfs_quota_us", String(quota));
    }
  }
}

/** Kills what is left in a runner's cgroup (v1 has no cgroup.kill) and removes it once it is empty. */
async function removeCgroup(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 20 && existsSync(dir); attempt++) {
    let pids: number[] = [];
    try {
      pids = (await readFile(join(dir, "cgroup.procs"), "utf8")).split("\n").filter(Boolean).map(Number);
    } catch {
      // gone already
    }
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // exited meanwhile
      }
    }
    try {
      await rmdir(dir);
      return;
    } catch {
      await sleep(10); // its processes are still exiting
    }
  }
}
