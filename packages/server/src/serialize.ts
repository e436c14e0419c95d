import type {
  Account,
  Deployment,
  FileObject,
  Model,
  ModelVersion,
  Prediction,
  Training,
} from "@replicant/protocol";
import type {
  AccountRecord,
  DeploymentRecord,
  FileRecord,
  ModelRecord,
  PredictionRecord,
  ReleaseRecord,
  VersionRecord,
} from "./backends/types.js";
import type { UrlSigner } from "./urls.js";

/** Converts stored records to Replicate's wire shapes. Only these functions decide what clients see. */

const STREAM_URL_LIFETIME_S = 24 * 60 * 60;

export function accountJson(account: AccountRecord): Account {
  const json: Account = { type: account.type, username: account.username };
  if (account.name !== null) json.name = account.name;
  if (account.github_url !== null) json.github_url = account.github_url;
  if (account.avatar_url !== null) json.avatar_url = account.avatar_url;
  return json;
}

export function predictionJson(p: PredictionRecord, urls: UrlSigner): Prediction {
  const createdSeconds = Math.floor(Date.parse(p.created_at) / 1000);
  const json: Prediction = {
    id: p.id,
    model: p.model,
    version: p.version_label,
    input: p.input ?? {},
    output: p.output ?? null,
    logs: p.logs,
    error: p.error,
    status: p.status,
    source: p.source,
    data_removed: p.data_removed,
    created_at: p.created_at,
    started_at: p.started_at,
    completed_at: p.completed_at,
    metrics: p.metrics ?? {},
    urls: {
      get: urls.api(`/predictions/${p.id}`),
      cancel: urls.api(`/predictions/${p.id}/cancel`),
      web: urls.web(`/p/${p.id}`),
      stream: urls.predictionStream(p.id, createdSeconds + STREAM_URL_LIFETIME_S),
    },
  };
  if (p.deadline !== null) json.deadline = p.deadline;
  if (p.deployment !== null) json.deployment = p.deployment;
  if (p.webhook !== null) json.webhook = p.webhook;
  if (p.webhook_events_filter !== null) json.webhook_events_filter = p.webhook_events_filter;
  return json;
}

const finishedPredictionText = new WeakMap<PredictionRecord, { urls: UrlSigner; text: string }>();

/**
 * {@link predictionJson} as JSON text. A frozen record is a finished one the store shares between reads
 * (see FinishedRecordCache), so its text is kept with it and serialized once.
 */
export function predictionJsonText(p: PredictionRecord, urls: UrlSigner): string {
  if (!Object.isFrozen(p)) return JSON.stringify(predictionJson(p, urls));
  const kept = finishedPredictionText.get(p);
  if (kept?.urls === urls) return kept.text;
  const text = JSON.stringify(predictionJson(p, urls));
  finishedPredictionText.set(p, { urls, text });
  return text;
}

export function trainingJson(p: PredictionRecord, urls: UrlSigner): Training {
  const json: Training = {
    id: p.id,
    model: p.model,
    version: p.version_label,
    input: p.input ?? {},
    output: (p.output ?? null) as Training["output"],
    logs: p.logs,
    error: p.error,
    status: p.status,
    source: p.source,
    data_removed: p.data_removed,
    created_at: p.created_at,
    started_at: p.started_at,
    completed_at: p.completed_at,
    metrics: p.metrics ?? {},
    urls: {
      get: urls.api(`/trainings/${p.id}`),
      cancel: urls.api(`/trainings/${p.id}/cancel`),
      web: urls.web(`/p/${p.id}`),
    },
  };
  if (p.destination !== null) json.destination = p.destination;
  if (p.webhook !== null) json.webhook = p.webhook;
  if (p.webhook_events_filter !== null) json.webhook_events_filter = p.webhook_events_filter;
  return json;
}

export function versionJson(v: VersionRecord): ModelVersion {
  return { id: v.id, created_at: v.created_at, cog_version: v.cog_version, openapi_schema: v.openapi_schema };
}

export function modelJson(
  m: ModelRecord,
  urls: UrlSigner,
  latest: VersionRecord | undefined,
  defaultExample: Prediction | null = null,
): Model {
  return {
    url: urls.web(`/${m.owner}/${m.name}`),
    owner: m.owner,
    name: m.name,
    description: m.description,
    visibility: m.visibility,
    github_url: m.github_url,
    paper_url: m.paper_url,
    license_url: m.license_url,
    run_count: m.run_count,
    cover_image_url: m.cover_image_url,
    default_example: defaultExample,
    latest_version: latest ? versionJson(latest) : null,
    is_official: m.is_official,
  };
}

export function deploymentJson(
  d: DeploymentRecord,
  release: ReleaseRecord,
  createdBy: AccountRecord,
): Deployment {
  return {
    owner: d.owner,
    name: d.name,
    current_release: {
      number: release.number,
      model: release.model,
      version: release.version_id,
      created_at: release.created_at,
      created_by: accountJson(createdBy),
      configuration: {
        hardware: release.hardware,
        min_instances: release.min_instances,
        max_instances: release.max_instances,
      },
    },
  };
}

export function fileJson(f: FileRecord, owner: string, urls: UrlSigner, nowSeconds: number): FileObject {
  const expiry = f.expires_at ? Math.floor(Date.parse(f.expires_at) / 1000) : nowSeconds + 3600;
  return {
    id: f.id,
    name: f.name,
    content_type: f.content_type,
    size: f.size,
    etag: f.sha256,
    checksums: { sha256: f.sha256 },
    metadata: f.metadata,
    created_at: f.created_at,
    expires_at: f.expires_at,
    urls: { get: urls.api(`/files/${f.id}`), download: urls.fileDownload(owner, f.id, expiry) },
  };
}
