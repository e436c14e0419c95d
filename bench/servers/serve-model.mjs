// The runtime's Cog-protocol server (serveModel from @replicant/runtime) on a trivial
// predict(text) -> text (the built-in hello-world predictor). argv[2]: "process" (default, like Cog:
// the predictor in a child process) or "in-process". Ready once GET /health-check says READY.
import { fileURLToPath } from "node:url";
import { serveModel } from "@replicant/runtime";

const isolation = process.argv[2] === "in-process" ? "in-process" : "process";
const predictorPath = fileURLToPath(
  new URL("../../packages/server/dist/src/builtin/predictors/hello-world.js", import.meta.url),
);
const started = performance.now();
const server = await serveModel({ predictorPath, port: 0, host: "127.0.0.1", isolation });
for (;;) {
  const health = await fetch(`${server.url}/health-check`).then((r) => r.json());
  if (health.status === "READY") break;
  if (health.status === "SETUP_FAILED") throw new Error("setup failed");
  await new Promise((r) => setTimeout(r, 5));
}
const readyMs = performance.now() - started;
process.stdout.write(`${JSON.stringify({ url: server.url, readyMs })}\n`);
process.on("SIGTERM", () => {
  server.close().finally(() => process.exit(0));
});
