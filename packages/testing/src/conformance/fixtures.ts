import type {
  AccountRecord,
  DeploymentRecord,
  FileRecord,
  ModelRecord,
  OutboxInsert,
  PredictionRecord,
  ReleaseRecord,
  VersionRecord,
} from "@replicant/server";

const BASE_TIME = Date.parse("2025-01-01T00:00:00.000Z");

/** An ISO timestamp `seconds` after a fixed base time. */
export function at(seconds: number): string {
  return new Date(BASE_TIME + seconds * 1000).toISOString();
}

let counter = 0;
/** A unique id with a prefix; unique across the process so suites can share a backend. */
export function uniqueId(prefix: string): string {
  counter += 1;
  return `${prefix}${process.pid.toString(36)}${counter.toString(36).padStart(6, "0")}`;
}

export function makeAccount(overrides: Partial<AccountRecord> = {}): AccountRecord {
  const id = overrides.id ?? uniqueId("acc");
  return {
    id,
    username: `user-${id}`,
    type: "user",
    name: "A User",
    github_url: null,
    avatar_url: "https://example.com/a.png",
    webhook_secret: `whsec_${id}`,
    created_at: at(0),
    ...overrides,
  };
}

export function makeModel(owner: AccountRecord, overrides: Partial<ModelRecord> = {}): ModelRecord {
  const id = overrides.id ?? uniqueId("mod");
  return {
    id,
    owner_account_id: owner.id,
    owner: owner.username,
    name: `model-${id}`,
    description: "A model",
    visibility: "public",
    hardware: "cpu",
    github_url: null,
    paper_url: "https://example.com/paper",
    license_url: null,
    cover_image_url: null,
    weights_url: null,
    readme: "# Readme",
    run_count: 0,
    is_official: false,
    latest_version_id: null,
    latest_version_created_at: null,
    default_example_id: null,
    created_at: at(1),
    ...overrides,
  };
}

export function makeVersion(model: ModelRecord, overrides: Partial<VersionRecord> = {}): VersionRecord {
  return {
    id: uniqueId("ver"),
    model_id: model.id,
    openapi_schema: { openapi: "3.0.2", components: { schemas: { Input: { type: "object" } } } },
    cog_version: "0.9.0",
    runner: { kind: "builtin", name: "hello-world" },
    training_schema: null,
    created_at: at(2),
    ...overrides,
  };
}

export function makePrediction(
  account: AccountRecord,
  overrides: Partial<PredictionRecord> = {},
): PredictionRecord {
  return {
    id: uniqueId("pred"),
    kind: "prediction",
    account_id: account.id,
    model: "owner/model",
    version_id: "version-1",
    version_label: "version-1",
    deployment: null,
    destination: null,
    input: { prompt: "a photo of a cat", steps: 25, nested: { list: [1, "two", null, true] } },
    output: null,
    logs: "",
    error: null,
    status: "starting",
    source: "api",
    data_removed: false,
    created_at: at(10),
    started_at: null,
    completed_at: null,
    deadline: null,
    metrics: null,
    webhook: "https://example.com/hook",
    webhook_events_filter: ["start", "completed"],
    attempt: 0,
    streaming: false,
    ...overrides,
  };
}

export function makeOutbox(
  prediction: PredictionRecord,
  overrides: Partial<OutboxInsert> = {},
): OutboxInsert {
  const id = overrides.id ?? uniqueId("out");
  return {
    id,
    prediction_id: prediction.id,
    account_id: prediction.account_id,
    event: "completed",
    webhook_id: `msg_${id}`,
    url: "https://example.com/hook",
    body: JSON.stringify({ id: prediction.id, status: prediction.status }),
    next_attempt_at: at(10),
    created_at: at(10),
    ...overrides,
  };
}

export function makeDeployment(
  owner: AccountRecord,
  overrides: Partial<DeploymentRecord> = {},
): DeploymentRecord {
  const id = overrides.id ?? uniqueId("dep");
  return {
    id,
    owner_account_id: owner.id,
    owner: owner.username,
    name: `deployment-${id}`,
    created_at: at(3),
    ...overrides,
  };
}

export function makeRelease(
  deployment: DeploymentRecord,
  version: VersionRecord,
  overrides: Partial<ReleaseRecord> = {},
): ReleaseRecord {
  return {
    deployment_id: deployment.id,
    number: 1,
    model: "owner/model",
    version_id: version.id,
    hardware: "cpu",
    min_instances: 0,
    max_instances: 2,
    created_by_account_id: deployment.owner_account_id,
    created_at: at(3),
    ...overrides,
  };
}

export function makeFile(account: AccountRecord, overrides: Partial<FileRecord> = {}): FileRecord {
  const id = overrides.id ?? uniqueId("file");
  return {
    id,
    account_id: account.id,
    name: "cat.png",
    content_type: "image/png",
    size: 1234,
    sha256: "0".repeat(64),
    metadata: { source: "upload", tags: ["a", "b"] },
    blob_key: `files/${id}`,
    created_at: at(4),
    expires_at: null,
    ...overrides,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns true, failing after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs = 2000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
