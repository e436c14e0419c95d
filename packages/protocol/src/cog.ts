/** Cog's OpenAPI schema extensions, used in every model version's `openapi_schema`. */
export const X_ORDER = "x-order";
export const X_COG_ARRAY_TYPE = "x-cog-array-type";
export const X_COG_ARRAY_DISPLAY = "x-cog-array-display";
export const X_COG_SECRET = "x-cog-secret";

/** Cog's prediction statuses on its own HTTP protocol. */
export type CogStatus = "starting" | "processing" | "succeeded" | "failed" | "canceled";
export type CogHealth = "STARTING" | "READY" | "BUSY" | "SETUP_FAILED" | "DEFUNCT" | "UNKNOWN";
