#!/usr/bin/env node
/** `replicant-cog-serve <predictor.js> [--host H] [--upload-url URL]`: Cog's `python -m cog.server.http`. */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { serveModel } from "./cog-server.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    host: { type: "string", default: "0.0.0.0" },
    "upload-url": { type: "string" },
    "await-explicit-shutdown": { type: "string", default: "false" },
  },
});
const predictor = positionals[0];
if (!predictor) {
  console.error("usage: replicant-cog-serve <predictor.js> [--host H] [--upload-url URL]");
  process.exit(2);
}
const server = await serveModel({
  predictorPath: resolve(predictor),
  host: values.host,
  ...(values["upload-url"] ? { uploadUrl: values["upload-url"] } : {}),
});
console.error(JSON.stringify({ message: "serving", url: server.url }));
if (values["await-explicit-shutdown"] !== "true") {
  process.once("SIGTERM", () => void server.close());
}
process.once("SIGINT", () => void server.close());
await server.closed;
process.exit(0);
