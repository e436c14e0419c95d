/**
 * What the director needs from whatever runs a model version: a pool of runner processes, an external
 * Cog server, or anything else with the same shape. The types live in @replicant/runtime, which
 * implements them; the server only re-exports them.
 */
export {
  type FileValue,
  hasFiles,
  isFileValue,
  type ModelRunner,
  type RunCallbacks,
  type RunRequest,
  type RunResult,
} from "@replicant/runtime";
