export * from "./blob-store.js";
export * from "./event-bus.js";
export * from "./queue.js";
export * from "./store.js";
