export * from "./cog.js";
export * from "./cog-wire.js";
export * from "./operations.js";
export * from "./problem.js";
export * from "./resources.js";
export * from "./status.js";
export * from "./webhook.js";
