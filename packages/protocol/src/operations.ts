/** Every operation of Replicate's OpenAPI document (openapi/replicate-openapi.json), by operationId. */
export interface OperationInfo {
  method: "GET" | "POST" | "PATCH" | "DELETE" | "QUERY";
  path: string;
}

export const OPERATIONS = {
  "account.get": { method: "GET", path: "/account" },
  "collections.list": { method: "GET", path: "/collections" },
  "collections.get": { method: "GET", path: "/collections/{collection_slug}" },
  "deployments.list": { method: "GET", path: "/deployments" },
  "deployments.create": { method: "POST", path: "/deployments" },
  "deployments.delete": { method: "DELETE", path: "/deployments/{deployment_owner}/{deployment_name}" },
  "deployments.get": { method: "GET", path: "/deployments/{deployment_owner}/{deployment_name}" },
  "deployments.update": { method: "PATCH", path: "/deployments/{deployment_owner}/{deployment_name}" },
  "deployments.predictions.create": {
    method: "POST",
    path: "/deployments/{deployment_owner}/{deployment_name}/predictions",
  },
  "files.list": { method: "GET", path: "/files" },
  "files.create": { method: "POST", path: "/files" },
  "files.delete": { method: "DELETE", path: "/files/{file_id}" },
  "files.get": { method: "GET", path: "/files/{file_id}" },
  "files.download": { method: "GET", path: "/files/{file_id}/download" },
  "hardware.list": { method: "GET", path: "/hardware" },
  "models.list": { method: "GET", path: "/models" },
  "models.create": { method: "POST", path: "/models" },
  "models.search": { method: "QUERY", path: "/models" },
  "models.delete": { method: "DELETE", path: "/models/{model_owner}/{model_name}" },
  "models.get": { method: "GET", path: "/models/{model_owner}/{model_name}" },
  "models.update": { method: "PATCH", path: "/models/{model_owner}/{model_name}" },
  "models.examples.list": { method: "GET", path: "/models/{model_owner}/{model_name}/examples" },
  "models.predictions.create": { method: "POST", path: "/models/{model_owner}/{model_name}/predictions" },
  "models.readme.get": { method: "GET", path: "/models/{model_owner}/{model_name}/readme" },
  "models.versions.list": { method: "GET", path: "/models/{model_owner}/{model_name}/versions" },
  "models.versions.delete": {
    method: "DELETE",
    path: "/models/{model_owner}/{model_name}/versions/{version_id}",
  },
  "models.versions.get": { method: "GET", path: "/models/{model_owner}/{model_name}/versions/{version_id}" },
  "trainings.create": {
    method: "POST",
    path: "/models/{model_owner}/{model_name}/versions/{version_id}/trainings",
  },
  "predictions.list": { method: "GET", path: "/predictions" },
  "predictions.create": { method: "POST", path: "/predictions" },
  "predictions.get": { method: "GET", path: "/predictions/{prediction_id}" },
  "predictions.cancel": { method: "POST", path: "/predictions/{prediction_id}/cancel" },
  search: { method: "GET", path: "/search" },
  "trainings.list": { method: "GET", path: "/trainings" },
  "trainings.get": { method: "GET", path: "/trainings/{training_id}" },
  "trainings.cancel": { method: "POST", path: "/trainings/{training_id}/cancel" },
  "webhooks.default.secret.get": { method: "GET", path: "/webhooks/default/secret" },
} as const satisfies Record<string, OperationInfo>;

export type OperationId = keyof typeof OPERATIONS;
