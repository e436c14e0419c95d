import { parseCommand } from "../args.js";
import { EXIT } from "../errors.js";
import type { CliIo } from "../io.js";
import { resolvePredictor } from "../predictor-dir.js";

const HELP = `Usage: replicant serve-model PATH [options]

Serves one predictor with Cog's HTTP protocol (GET /, /health-check, /openapi.json; POST /predictions,
PUT /predictions/{id}, POST /predictions/{id}/cancel, POST /shutdown), so it runs wherever Cog's servers
do and any Cog-protocol client can drive it. PATH is a compiled predictor module, or a directory whose
replicant.json names one ({"predictor": "dist/predict.js"}).

Options:
  --port PORT       port to listen on (default $PORT, else 5000; 0 picks a free one)
  --host HOST       address to listen on (default 0.0.0.0)
  --upload-url URL  PUT file outputs there instead of returning data URIs (Cog's --upload-url)
  --in-process      run the predictor in this process (lowest latency, no isolation)

Example:
  replicant serve-model ./my-model --port 5000
  curl -s -X POST localhost:5000/predictions -H 'content-type: application/json' -d '{"input":{"text":"hi"}}'
`;

export async function main(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    argv,
    io,
    HELP,
    {
      port: { type: "string" },
      host: { type: "string", default: "0.0.0.0" },
      "upload-url": { type: "string" },
      "in-process": { type: "boolean", default: false },
    },
    { min: 1, max: 1 },
  );
  if (!parsed) return EXIT.ok;
  const { predictorPath } = await resolvePredictor(parsed.positionals[0] ?? "");
  const portText = parsed.values.port ?? io.env.PORT ?? "5000";
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be 0–65535, got ${portText}`);
  const { serveModel } = await import("@replicant/runtime");
  const server = await serveModel({
    predictorPath,
    port,
    host: parsed.values.host,
    ...(parsed.values["upload-url"] ? { uploadUrl: parsed.values["upload-url"] } : {}),
    isolation: parsed.values["in-process"] ? "in-process" : "process",
  });
  io.stderr.write(`Serving ${predictorPath} with Cog's HTTP protocol on ${server.url}\n`);
  const stop = () => void server.close();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await server.closed;
  return EXIT.ok;
}
