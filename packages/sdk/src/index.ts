import { Replicant } from "./client.js";

export type {
  Account,
  Collection,
  CollectionSummary,
  Deployment,
  FileObject,
  Hardware,
  Model,
  ModelVersion,
  Page,
  Prediction,
  PredictionStatus,
  Problem,
  SearchResponse,
  Training,
  WebhookEventType,
  WebhookSecret,
} from "@replicant/protocol";
export {
  type ClientOptions,
  type ModelFunction,
  type QueryValue,
  Replicant,
  type RequestControl,
  type RequestOptions,
  type RunManyOptions,
  type RunManyProgress,
  type RunManyResult,
  type RunOptions,
  SDK_VERSION,
  type StreamOptions,
  type StreamPredictionOptions,
  type WaitForOptions,
  type WaitOptions,
} from "./client.js";
export {
  APIConnectionError,
  APIError,
  /** The `replicate` package's name for {@link APIError}. */
  APIError as ApiError,
  APITimeoutError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  InternalServerError,
  isReplicantError,
  ModelError,
  NotFoundError,
  PermissionDeniedError,
  PredictionCanceledError,
  RateLimitError,
  ReplicantError,
  type RequestSummary,
  UnprocessableEntityError,
  WebhookVerificationError,
  type WebhookVerificationFailure,
} from "./core/errors.js";
export {
  encodeFileInputs,
  type FileEncodingStrategy,
  type FileInput,
  type FileUploader,
  fromPath,
  LocalPath,
  MAX_DATA_URI_BYTES,
} from "./core/file-inputs.js";
export {
  type FetchLike,
  FileOutput,
  type FileOutputOptions,
  type FileUrl,
  parseDataUri,
} from "./core/file-output.js";
export {
  type DeploymentRef,
  type ModelTarget,
  parseModelTarget,
  parseProgressFromLogs,
} from "./core/identifier.js";
export { type ModelRef, modelRef } from "./core/model-ref.js";
export { type GenerateModelTypesOptions, generateModelTypes } from "./core/model-types.js";
export { PagePromise } from "./core/pagination.js";
export { RateLimiter } from "./core/rate-limit.js";
export { parseSSEStream, type RawServerSentEvent, ServerSentEvent, SSEParser } from "./core/sse.js";
export {
  DEFAULT_WEBHOOK_TOLERANCE_SECONDS,
  signWebhook,
  validateWebhook,
  verifyWebhook,
  type WebhookParts,
  type WebhookRequestLike,
  type WebhookVerifyOptions,
} from "./core/webhooks.js";
export type { FileCreateOptions, FileDownloadParams, UploadableFile } from "./resources/files.js";
export type { ModelCreateOptions, ModelListOptions } from "./resources/models.js";
export type {
  PredictionCreateControl,
  PredictionCreateOptions,
  PredictionListOptions,
  PredictionRequestFields,
} from "./resources/predictions.js";
export type { SearchOptions } from "./resources/search.js";
export type { TrainingCreateOptions } from "./resources/trainings.js";

/** Also the default export, so `import Replicate from "@replicant/sdk"` replaces `import Replicate from "replicate"`. */
export default Replicant;
