import { createWriteStream } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, rename, rm, stat } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { CogClient, type RunnerLaunch, RunnerPool } from "@replicant/runtime";
import type { PredictionRecord, ReleaseRecord, RunnerSpec, VersionRecord } from "./backends/types.js";
import { findBuiltin } from "./builtin/index.js";
import { extractBundle, predictorInBundle } from "./bundles.js";
import type { ServerContext } from "./context.js";
import type { RunnerResolver } from "./director.js";
import type { FileOutputs } from "./file-outputs.js";
import { newId, newVersionId } from "./ids.js";
import {
  bundleLaunch,
  runnerId,
  shareBundleWithRunners,
  shareWeightsWithRunners,
} from "./runners/bundle-sandbox.js";
import { EgressProxy } from "./runners/egress-proxy.js";
import { hostContainment } from "./runners/host-containment.js";
import { runnerEnvironment } from "./runners/runner-environment.js";
import { isFileValue, type ModelRunner } from "./runners/types.js";

/** Directories runners use, outside the data directory (which stays 0700): all 0711, entries private. */
interface RunnerDirectories {
  root: string;
  scratch: string;
  homes: string;
  bundles: string;
}

/**
 * What a pushed bundle's runners run in here: `auto` becomes bwrap where it works, else process; `bwrap`
 * without a working bubblewrap is an error.
 */
export function resolveSandbox(mode: "auto" | "bwrap" | "process" | "none"): "bwrap" | "process" | "none" {
  if (mode === "none" || mode === "process") return mode;
  const bwrap = hostContainment().bwrap !== undefined;
  if (mode === "bwrap" && !bwrap)
    throw new Error(
      "--sandbox bwrap: bubblewrap is not installed or cannot create namespaces here (apt install bubblewrap)",
    );
  return bwrap ? "bwrap" : "process";
}

/**
 * Maps a version's RunnerSpec to something that runs it, and turns a finished training into the
 * destination model's new version.
 */
export class RunnerRegistry implements RunnerResolver {
  private readonly weightsDir: string;
  /** One pool per version (and weights), or per deployment release. */
  private readonly pools = new Map<string, ModelRunner>();
  /** The warmDeployments() pass under way, and whether another was asked for meanwhile. */
  private warming: Promise<void> | undefined;
  private warmAgain = false;
  private closed = false;
  private directories: Promise<RunnerDirectories> | undefined;
  /** Per version that asked for network under bubblewrap: its way out, through the SSRF policy. */
  private readonly egress = new Map<string, Promise<EgressProxy>>();

  constructor(private readonly ctx: ServerContext) {
    this.weightsDir = join(ctx.config.dataDir, "cache", "weights");
  }

  /** The runners' directories, made on first use under the system's temporary directory. */
  runnerDirectories(): Promise<RunnerDirectories> {
    this.directories ??= (async () => {
      const root = await mkdtemp(join(tmpdir(), "replicant-runners-"));
      const dirs = {
        root,
        scratch: join(root, "scratch"),
        homes: join(root, "homes"),
        bundles: join(root, "bundles"),
      };
      await chmod(root, 0o711);
      for (const dir of [dirs.scratch, dirs.homes, dirs.bundles]) await mkdir(dir, { mode: 0o711 });
      for (const dir of [dirs.scratch, dirs.homes, dirs.bundles]) await chmod(dir, 0o711);
      return dirs;
    })();
    return this.directories;
  }

  /** Where the director makes each run's scratch directory. */
  async scratchRoot(): Promise<string> {
    return (await this.runnerDirectories()).scratch;
  }

  async resolve(version: VersionRecord, record?: PredictionRecord): Promise<ModelRunner> {
    const spec = version.runner;
    if (spec.kind === "cog") return this.cogClient(version.id, spec.url);
    if (record?.deployment) {
      const [owner, name] = record.deployment.split("/");
      const deployment = owner && name ? await this.ctx.store.getDeployment(owner, name) : undefined;
      const release = deployment ? await this.ctx.store.getCurrentRelease(deployment.id) : undefined;
      if (release) return this.deploymentPool(record.deployment, release, version);
    }
    return this.pool(version, `version:${version.id}`, { minInstances: 0, maxInstances: 1 });
  }

  /**
   * Starts, before any prediction, the instances each deployment's current release keeps running
   * (`min_instances`), and closes the pools of releases that are no longer current (replaced or deleted
   * deployments). Run at start, after a deployment changes in this process, and every few seconds (a
   * scale-out worker hears of changes made through other processes that way).
   */
  async warmDeployments(): Promise<void> {
    if (this.warming) {
      this.warmAgain = true;
      return this.warming;
    }
    this.warming = (async () => {
      do {
        this.warmAgain = false;
        if (this.closed) return;
        const current = await this.ctx.store.listCurrentReleases();
        const keys = new Set(current.map(({ deployment, release }) => deploymentKey(deployment, release)));
        this.retirePools((key) => key.startsWith("deployment:") && !keys.has(key));
        for (const { deployment, release } of current) {
          if (release.min_instances === 0 || this.closed) continue;
          try {
            const version = await this.ctx.versions.get(release.version_id);
            if (version) await this.deploymentPool(deployment, release, version);
          } catch (error) {
            // One deployment whose model cannot start must not keep the others cold; its predictions
            // report the cause.
            console.error(`deployment ${deployment}: could not start its instances:`, error);
          }
        }
      } while (this.warmAgain);
    })().finally(() => {
      this.warming = undefined;
    });
    return this.warming;
  }

  private deploymentPool(
    deployment: string,
    release: ReleaseRecord,
    version: VersionRecord,
  ): Promise<ModelRunner> {
    const key = deploymentKey(deployment, release);
    this.retireOlderReleases(deployment, key);
    return this.pool(version, key, {
      minInstances: release.min_instances,
      maxInstances: Math.max(1, release.max_instances),
    });
  }

  /** The pool under `key`, created (with its minimum of processes started) on first use. */
  private async pool(
    version: VersionRecord,
    key: string,
    sizing: { minInstances: number; maxInstances: number },
  ): Promise<ModelRunner> {
    const existing = this.pools.get(key);
    if (existing) return existing;
    const spec = version.runner;
    if (spec.kind === "cog") return this.cogClient(version.id, spec.url);
    const sandbox = spec.kind === "bundle" ? resolveSandbox(this.ctx.config.sandbox) : "none";
    let predictorPath: string;
    let weights = spec.weights ? await this.localWeights(spec.weights) : undefined;
    let launch: () => RunnerLaunch;
    if (spec.kind === "bundle" && sandbox !== "none") {
      const contained = await this.containedBundle(version.id, spec, weights, sandbox);
      predictorPath = contained.predictorPath;
      weights = contained.weights;
      launch = contained.launch;
    } else {
      predictorPath = await this.predictorPath(version.id, spec);
      launch = await this.trustedLaunch(spec);
    }
    // Two callers may have awaited the same paths: the first to get here creates the pool.
    const raced = this.pools.get(key);
    if (raced) return raced;
    if (this.closed) throw new Error("the server is shutting down");
    const pool = new RunnerPool({
      predictorPath,
      launch,
      ...sizing,
      idleTimeoutMs: this.ctx.config.runnerIdleTimeoutMs,
      ...(weights ? { weights } : {}),
      ...(this.ctx.config.runnerMaxOldSpaceMb
        ? { maxOldSpaceSizeMb: this.ctx.config.runnerMaxOldSpaceMb }
        : {}),
    });
    this.pools.set(key, pool);
    return pool;
  }

  /**
   * A pushed bundle, unpacked outside the data directory where only its version's runners can read it,
   * and how its processes start contained (docs/security.md).
   */
  private async containedBundle(
    versionId: string,
    spec: Extract<RunnerSpec, { kind: "bundle" }>,
    weights: string | undefined,
    mode: "bwrap" | "process",
  ): Promise<{ predictorPath: string; weights: string | undefined; launch: () => RunnerLaunch }> {
    const dirs = await this.runnerDirectories();
    const host = hostContainment();
    const bundleDir = await extractBundle(this.ctx.blobs, spec.bundle, join(dirs.bundles, versionId));
    shareBundleWithRunners(bundleDir, versionId, host.root);
    const predictorPath = await predictorInBundle(bundleDir, spec.predictor);
    let sharedWeights: string | undefined;
    if (weights) {
      sharedWeights = join(dirs.bundles, `${versionId}.weights`);
      await copyFile(weights, sharedWeights);
      shareWeightsWithRunners(sharedWeights, versionId, host.root);
    }
    let network: { egressSocket: string | undefined } | undefined;
    if (spec.network)
      network = { egressSocket: mode === "bwrap" ? await this.egressSocket(versionId) : undefined };
    const launch = bundleLaunch({
      host,
      mode,
      versionId,
      bundleDir,
      scratchRoot: dirs.scratch,
      homesRoot: dirs.homes,
      weights: sharedWeights,
      declaredEnv: spec.env,
      limits: this.ctx.config.runnerLimits,
      network,
    });
    return { predictorPath, weights: sharedWeights, launch };
  }

  /** The egress proxy socket of a version (one per version, shared by its processes). */
  private async egressSocket(versionId: string): Promise<string> {
    let proxy = this.egress.get(versionId);
    if (!proxy) {
      const dirs = await this.runnerDirectories();
      proxy = EgressProxy.start({
        // A short name: a unix socket's path is limited to about 100 bytes.
        socketPath: join(dirs.root, `egress-${versionId.slice(0, 16)}.sock`),
        allowPrivate: this.ctx.config.allowPrivateUrls,
        group: hostContainment().root ? runnerId(versionId) : undefined,
      });
      this.egress.set(versionId, proxy);
    }
    return (await proxy).socketPath;
  }

  /** Built-in models and trusted bundles run as the server, with a built environment all the same. */
  private async trustedLaunch(spec: Exclude<RunnerSpec, { kind: "cog" }>): Promise<() => RunnerLaunch> {
    const builtin = spec.kind === "builtin" ? await findBuiltin(spec.name) : undefined;
    const env = runnerEnvironment({
      home: process.env.HOME ?? homedir(),
      tmpDir: tmpdir(),
      passThrough: builtin?.environment,
      declared: spec.kind === "bundle" ? spec.env : undefined,
    });
    return () => ({ prefix: [], env });
  }

  /** A version backed by a Cog-protocol server: its predictions are sent there (logs and outputs streamed back). */
  private cogClient(versionId: string, url: string): ModelRunner {
    const key = `cog:${versionId}`;
    const existing = this.pools.get(key);
    if (existing) return existing;
    const client = new CogClient({ baseUrl: url, stream: true });
    this.pools.set(key, client);
    return client;
  }

  private async predictorPath(
    versionId: string,
    spec: Exclude<RunnerSpec, { kind: "cog" }>,
  ): Promise<string> {
    if (spec.kind === "builtin") {
      const builtin = await findBuiltin(spec.name);
      if (!builtin) throw new Error(`This server has no built-in model ${spec.name}`);
      return builtin.predictorPath;
    }
    if (spec.kind === "package") return spec.path;
    const root = await extractBundle(
      this.ctx.blobs,
      spec.bundle,
      join(this.ctx.config.dataDir, "cache", "bundles", versionId),
    );
    return predictorInBundle(root, spec.predictor);
  }

  /** A new release replaces the deployment's pool; the old one finishes what it runs and closes. */
  private retireOlderReleases(deployment: string, currentKey: string): void {
    this.retirePools((key) => key !== currentKey && key.startsWith(`deployment:${deployment}:`));
  }

  /** Drops the pools whose keys match; each finishes what it runs, then closes. */
  private retirePools(matches: (key: string) => boolean): void {
    for (const [key, runner] of this.pools) {
      if (matches(key)) {
        this.pools.delete(key);
        void runner.close();
      }
    }
  }

  /** A local copy of a weights blob, cached by key (keys are content-unique: weights/<training id>/…). */
  private async localWeights(blobKey: string): Promise<string> {
    if (blobKey.startsWith("local:")) return blobKey.slice("local:".length);
    const path = join(this.weightsDir, blobKey.replace(/[^A-Za-z0-9._-]/g, "_"));
    try {
      await stat(path);
      return path;
    } catch {
      const stream = await this.ctx.blobs.get(blobKey);
      if (!stream) throw new Error("The trained weights of this version are missing");
      await mkdir(this.weightsDir, { recursive: true });
      const temp = `${path}.${newId()}.tmp`;
      await pipeline(stream, createWriteStream(temp));
      await rename(temp, path);
      return path;
    }
  }

  /** Stores the weights, creates the destination's new version, and returns `{ version, weights }`. */
  async finishTraining(
    record: PredictionRecord,
    output: unknown,
    fileOutputs: FileOutputs,
    scratchDir?: string,
  ): Promise<unknown> {
    const { store } = this.ctx;
    const weights = (output as { weights?: unknown } | null)?.weights;
    if (!isFileValue(weights)) throw new Error("The training did not return a weights file");
    const file = await fileOutputs.storeFile(record, weights, scratchDir);
    // Weights outlive the retention period of outputs: the new version needs them.
    const weightsKey = `weights/${record.id}/${file.id}`;
    const source = await this.ctx.blobs.get(file.blob_key);
    if (!source) throw new Error("The training's weights could not be stored");
    await this.ctx.blobs.put(weightsKey, source);
    const base = await store.getVersion(record.version_id);
    const [owner, name] = (record.destination ?? "").split("/");
    const destination = owner && name ? await store.getModel(owner, name) : undefined;
    if (!base || !destination)
      throw new Error(`The destination model ${record.destination ?? ""} no longer exists`);
    const runner: RunnerSpec = { ...base.runner, weights: weightsKey } as RunnerSpec;
    const versionId = newVersionId();
    await store.createVersion({
      id: versionId,
      model_id: destination.id,
      openapi_schema: base.openapi_schema,
      cog_version: base.cog_version,
      runner,
      training_schema: base.training_schema,
      created_at: this.ctx.now().toISOString(),
    });
    return { version: versionId, weights: await fileOutputs.downloadUrl(record, file) };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.warming?.catch(() => undefined);
    const pools = [...this.pools.values()].map((runner) => runner.close());
    this.pools.clear();
    await Promise.all(pools);
    for (const proxy of this.egress.values()) await (await proxy.catch(() => undefined))?.close();
    this.egress.clear();
    const dirs = await this.directories?.catch(() => undefined);
    if (dirs) await rm(dirs.root, { recursive: true, force: true }).catch(() => undefined);
  }
}

function deploymentKey(deployment: string, release: ReleaseRecord): string {
  return `deployment:${deployment}:${release.number}`;
}
