export * from "./bitmap-font.js";
export * from "./direct-run.js";
export * from "./image.js";
