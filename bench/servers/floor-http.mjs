// The floors: bare node:http servers. `json` answers GET with a prediction-shaped JSON document
// (serialized once) and echoes POST bodies; `canned` answers every POST with that
// prediction document; `sse` streams events on demand.
import { createServer } from "node:http";

const mode = process.argv[2] ?? "json";

/** The shape and size of what GET /v1/predictions/{id} returns. */
const SAMPLE = {
  id: "q2k8x1fjxdrm80cmt1jbm0ha9r",
  model: "replicate/hello-world",
  version: "hidden",
  input: { text: "bench" },
  output: "hello bench",
  logs: "",
  error: null,
  status: "succeeded",
  source: "api",
  data_removed: false,
  created_at: "2025-01-01T00:00:00.000Z",
  started_at: "2025-01-01T00:00:00.001Z",
  completed_at: "2025-01-01T00:00:00.002Z",
  metrics: { predict_time: 0.001, total_time: 0.002 },
  urls: {
    get: "http://127.0.0.1:5000/v1/predictions/q2k8x1fjxdrm80cmt1jbm0ha9r",
    cancel: "http://127.0.0.1:5000/v1/predictions/q2k8x1fjxdrm80cmt1jbm0ha9r/cancel",
    web: "http://127.0.0.1:5000/p/q2k8x1fjxdrm80cmt1jbm0ha9r",
    stream:
      "http://127.0.0.1:5000/v1/predictions/q2k8x1fjxdrm80cmt1jbm0ha9r/stream?expiry=1735776000&signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
  },
};

// GET sends text made once, as the API does for a finished prediction (FinishedRecordCache).
const SAMPLE_TEXT = JSON.stringify(SAMPLE);

function json(res, status, value) {
  const body = typeof value === "string" ? value : JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/**
 * Writes `count` output events, `batch` per turn of the event loop, then `done` (as the API's stream);
 * the events of a turn leave in one write, as the stream route sends them.
 */
function sse(res, count, batch) {
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-store",
    connection: "keep-alive",
  });
  let sent = 0;
  const step = () => {
    const end = Math.min(count, sent + batch);
    let text = "";
    for (; sent < end; sent++) text += `event: output\nid: ${sent + 1}:0\ndata: token-${sent} \n\n`;
    if (sent < count) {
      res.write(text);
      setImmediate(step);
    } else {
      res.write(`${text}event: done\nid: ${sent}:0\ndata: {}\n\n`);
      res.end();
    }
  };
  step();
}

const server = createServer((req, res) => {
  if (mode === "sse" && req.url?.startsWith("/stream")) {
    const url = new URL(req.url, "http://x");
    return sse(
      res,
      Number(url.searchParams.get("events") ?? 1000),
      Number(url.searchParams.get("batch") ?? 64),
    );
  }
  if (req.method === "GET") return json(res, 200, SAMPLE_TEXT);
  if (mode === "canned") {
    // What the SDK benchmark calls: POST /v1/predictions answers a prediction, as the API does.
    req.resume();
    req.on("end", () => json(res, 201, SAMPLE));
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const text = Buffer.concat(chunks).toString("utf8");
    json(res, 201, text ? JSON.parse(text) : {});
  });
});
server.keepAliveTimeout = 72_000;
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});
process.on("SIGTERM", () => process.exit(0));
