import type { CogHealth, CogStatus } from "./cog.js";

/** Bodies on Cog's own HTTP protocol (a model container), both Python Cog (≤0.16) and coglet (≥0.17). */

export type CogWebhookEvent = "start" | "output" | "logs" | "completed";
export const COG_WEBHOOK_EVENTS: readonly CogWebhookEvent[] = ["start", "output", "logs", "completed"];

export interface CogPredictionRequest {
  input?: Record<string, unknown> | null;
  id?: string | null;
  created_at?: string | null;
  context?: Record<string, string> | null;
  /** Deprecated, Python only, sync only: multipart PUT of each output file to `<prefix><basename>`. */
  output_file_prefix?: string | null;
  webhook?: string | null;
  webhook_events_filter?: CogWebhookEvent[] | null;
}

/** Python Cog sends every field; coglet sends a subset. Only `status` is always present. */
export interface CogPredictionResponse {
  input?: Record<string, unknown> | null;
  output?: unknown;
  id?: string | null;
  version?: string | null;
  created_at?: string | null;
  started_at?: string | null;
  completed_at?: string | null;
  logs?: string | null;
  error?: string | null;
  status: CogStatus;
  metrics?: Record<string, unknown> | null;
}

export interface CogValidationErrorItem {
  loc: (string | number)[];
  msg: string;
  type: string;
  ctx?: Record<string, unknown>;
}

export interface CogValidationErrorBody {
  detail: CogValidationErrorItem[];
}

export interface CogSetupResult {
  started_at?: string;
  completed_at?: string;
  logs?: string;
  status?: "starting" | "succeeded" | "failed";
}

export interface CogHealthCheckResponse {
  status: CogHealth | "UNHEALTHY";
  setup: CogSetupResult;
  user_healthcheck_error?: string;
  /** coglet only. */
  version?: Record<string, string>;
}
