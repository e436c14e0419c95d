import type { BlobStore, EventBus, JobQueue, Store } from "./backends/types.js";
import type { ServerConfig } from "./config.js";
import type { UrlSigner } from "./urls.js";
import type { VersionCache } from "./version-cache.js";

/** What every route, the director and the webhook dispatcher share. */
export interface ServerContext {
  config: ServerConfig;
  store: Store;
  queue: JobQueue;
  blobs: BlobStore;
  bus: EventBus;
  urls: UrlSigner;
  /** Versions by id, cached: they never change. */
  versions: VersionCache;
  /** Current time; tests may replace it. */
  now: () => Date;
  /** Drops a revoked token from caches. */
  onTokenRevoked?: (hash: string) => void;
  /** A deployment was created, released again or deleted through this process: warm or retire its runners. */
  onDeploymentsChanged?: () => void;
}

export const PREDICTIONS_QUEUE = "predictions";
/** Cancel-After deadlines: one delayed job per prediction that has one. */
export const DEADLINES_QUEUE = "deadlines";
const DEADLINE_JOB_PREFIX = "deadline:";

/** The id of a prediction's job on DEADLINES_QUEUE. */
export function deadlineJobId(predictionId: string): string {
  return `${DEADLINE_JOB_PREFIX}${predictionId}`;
}

/** The prediction a DEADLINES_QUEUE job is for. */
export function predictionOfDeadlineJob(jobId: string): string {
  return jobId.slice(DEADLINE_JOB_PREFIX.length);
}

export function predictionChannel(id: string): string {
  return `prediction:${id}`;
}
