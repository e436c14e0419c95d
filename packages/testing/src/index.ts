export * from "./cluster.js";
export * from "./conformance/index.js";
export * from "./server.js";
