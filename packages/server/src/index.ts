export { type Backends, openEmbeddedBackends, ReplicantServer } from "./app.js";
export * from "./backends/index.js";
export * from "./backends/types.js";
export { BUILTIN_MODELS, type BuiltinModel } from "./builtin/index.js";
export { defaultConfig, type ServerConfig } from "./config.js";
export type { ServerContext } from "./context.js";
export { ProblemError } from "./errors.js";
export type { FileValue, ModelRunner, RunCallbacks, RunRequest, RunResult } from "./runners/types.js";
export { signWebhook } from "./webhooks/signing.js";
