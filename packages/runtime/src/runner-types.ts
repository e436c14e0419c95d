/**
 * The runner interface the server's director drives. Structurally identical to
 * packages/server/src/runners/types.ts so the server can re-export these (runtime must not import server).
 */

/** A file produced by a predictor, before the server stores it and replaces it with a URL. */
export interface FileValue {
  /** Marker so a FileValue can be told from user JSON after crossing a process boundary. */
  __replicant_file__: true;
  /** Absolute path of the file on this machine. */
  path: string;
  content_type?: string;
  /**
   * Set (not enumerable) on files from a contained runner: the directories the file must be read from,
   * with `openBeneath`, since the runner may swap it for a link after it was checked.
   */
  confinedTo?: readonly string[];
}

export function isFileValue(value: unknown): value is FileValue {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { __replicant_file__?: unknown }).__replicant_file__ === true &&
    typeof (value as { path?: unknown }).path === "string"
  );
}

/** Whether a value is or holds a FileValue anywhere inside it. */
export function hasFiles(value: unknown): boolean {
  if (value === null || typeof value !== "object") return false;
  if (isFileValue(value)) return true;
  if (Array.isArray(value)) return value.some(hasFiles);
  for (const key in value) if (hasFiles((value as Record<string, unknown>)[key])) return true;
  return false;
}

export interface RunRequest {
  id: string;
  input: Record<string, unknown>;
  /** Aborted when the prediction is canceled or times out. */
  signal: AbortSignal;
  /** A directory the run may write into; removed by the director afterwards. */
  scratchDir: string;
  /** Training runs call `train()` instead of `predict()`. */
  kind: "prediction" | "training";
}

export interface RunCallbacks {
  /** The predictor began running (the prediction becomes `processing`). */
  onStart(): void;
  onLog(text: string): void;
  /** One item of an iterator output, in order from 0. */
  onOutput(index: number, value: unknown): void;
  /**
   * Consecutive items that arrived together (a runner process's batch), from `index`: one call where
   * `onOutput` would be called for each. Optional: without it, `onOutput` is called for each.
   */
  onOutputs?(index: number, values: unknown[]): void;
}

export type RunResult =
  | { status: "succeeded"; output: unknown; metrics?: Record<string, number> }
  | { status: "failed"; error: string; metrics?: Record<string, number> }
  | { status: "canceled" };

export interface ModelRunner {
  run(request: RunRequest, callbacks: RunCallbacks): Promise<RunResult>;
  close(): Promise<void>;
}
