/** Messages between a runner host (parent) and a runner child process, sent over the fork IPC channel. */
import type { InputDecls } from "./inputs.js";
import type { OutputSpec } from "./outputs.js";

/** Everything about a predictor that is data (no functions): enough for schemas and input validation. */
export interface PredictorDescription {
  input: InputDecls;
  output: OutputSpec;
  train?: { input: InputDecls };
  concurrency: number;
}

export type RunKind = "prediction" | "training";

export type HostMessage =
  | { type: "run"; id: string; kind: RunKind; input: Record<string, unknown>; scratchDir: string }
  | { type: "cancel"; id: string };

export type DoneMessage = {
  type: "done";
  id: string;
  status: "succeeded" | "failed" | "canceled";
  output?: unknown;
  /** The output is the list of streamed items (not repeated in this message). */
  outputIsItems?: true;
  error?: string;
  metrics?: Record<string, number>;
};

export type ChildMessage =
  | { type: "loaded"; description: PredictorDescription }
  | { type: "setup_log"; text: string }
  | { type: "ready" }
  | { type: "setup_failed"; error: string; logs: string }
  | { type: "log"; id: string; text: string }
  /** An uncaught exception: the child exits right after sending this. */
  | { type: "fatal"; error: string; stack: string }
  | { type: "output"; id: string; index: number; value: unknown }
  | DoneMessage
  /** Messages sent in one event-loop turn, in order: one IPC write instead of one per token or log line. */
  | { type: "batch"; messages: ChildMessage[] };
