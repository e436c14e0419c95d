import type { PredictionStatus, WebhookEventType } from "./status.js";

export interface Page<T> {
  next: string | null;
  previous: string | null;
  results: T[];
}

export interface Account {
  type: "user" | "organization";
  username: string;
  name?: string;
  github_url?: string;
  avatar_url?: string;
}

export interface PredictionUrls {
  get: string;
  cancel: string;
  web: string;
  stream?: string;
}

export interface PredictionMetrics {
  predict_time?: number;
  total_time?: number;
  [name: string]: unknown;
}

export interface Prediction {
  id: string;
  model: string;
  version: string;
  input: Record<string, unknown>;
  output: unknown;
  logs: string;
  error: string | null;
  status: PredictionStatus;
  source: "api" | "web";
  data_removed: boolean;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  deadline?: string;
  deployment?: string;
  metrics: PredictionMetrics;
  urls: PredictionUrls;
  webhook?: string;
  webhook_events_filter?: WebhookEventType[];
}

export interface Training {
  id: string;
  model: string;
  version: string;
  destination?: string;
  input: Record<string, unknown>;
  output: { version: string; weights: string } | null;
  logs: string;
  error: string | null;
  status: PredictionStatus;
  source: "api" | "web";
  data_removed: boolean;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  metrics: PredictionMetrics;
  urls: { get: string; cancel: string; web: string };
  webhook?: string;
  webhook_events_filter?: WebhookEventType[];
}

export interface ModelVersion {
  id: string;
  created_at: string;
  cog_version: string | null;
  openapi_schema: Record<string, unknown> | null;
}

export interface Model {
  url: string;
  owner: string;
  name: string;
  description: string | null;
  visibility: "public" | "private";
  github_url: string | null;
  paper_url: string | null;
  license_url: string | null;
  run_count: number;
  cover_image_url: string | null;
  default_example: Prediction | null;
  latest_version: ModelVersion | null;
  is_official: boolean;
}

export interface DeploymentConfiguration {
  hardware: string;
  min_instances: number;
  max_instances: number;
}

export interface DeploymentRelease {
  number: number;
  model: string;
  version: string;
  created_at: string;
  created_by: Account;
  configuration: DeploymentConfiguration;
}

export interface Deployment {
  owner: string;
  name: string;
  current_release: DeploymentRelease;
}

export interface FileObject {
  id: string;
  name?: string;
  content_type: string;
  size: number;
  etag?: string;
  checksums: { sha256: string };
  metadata: Record<string, unknown>;
  created_at: string;
  expires_at: string | null;
  urls: { get: string; download?: string };
}

export interface Hardware {
  name: string;
  sku: string;
}

export interface CollectionSummary {
  name: string;
  slug: string;
  description: string;
}

export interface Collection extends CollectionSummary {
  full_description: string | null;
  models: Model[];
}

export interface SearchResponse {
  query: string;
  models: {
    model: Model;
    metadata: { generated_description: string | null; tags: string[]; score: number | null };
  }[];
  collections: { name: string; slug: string; description: string; models: string[] | null }[];
  pages: { name: string; href: string }[];
}

export interface WebhookSecret {
  key: string;
}

/** Body of `POST /v1/predictions`. */
export interface VersionPredictionRequest {
  version: string;
  input: Record<string, unknown>;
  webhook?: string;
  webhook_events_filter?: WebhookEventType[];
  stream?: boolean;
}

/** Body of `POST /v1/models/{owner}/{name}/predictions` and deployments' predictions. */
export type PredictionRequest = Omit<VersionPredictionRequest, "version">;

export interface TrainingRequest {
  destination: string;
  input: Record<string, unknown>;
  webhook?: string;
  webhook_events_filter?: WebhookEventType[];
}

export interface ModelCreateRequest {
  owner: string;
  name: string;
  visibility: "public" | "private";
  hardware: string;
  description?: string;
  github_url?: string;
  paper_url?: string;
  license_url?: string;
  cover_image_url?: string;
}

export interface ModelUpdateRequest {
  description?: string;
  readme?: string;
  github_url?: string;
  paper_url?: string;
  weights_url?: string;
  license_url?: string;
}

export interface DeploymentCreateRequest {
  name: string;
  model: string;
  version: string;
  hardware: string;
  min_instances: number;
  max_instances: number;
}

export type DeploymentUpdateRequest = Partial<
  Pick<DeploymentCreateRequest, "hardware" | "min_instances" | "max_instances" | "version">
>;
