// A Replicant API server for the benchmarks: the real server (startTestServer from @replicant/testing,
// durable embedded SQLite store, runners in their own processes), started with the JSON options in
// argv[2]. Prints one ready line: {url, token, predictionId?, versionId, control?}.
//
// options: { config: Partial<ServerConfig>, dataDir?: string, seed?: "wait" | "queued" | "stream",
//            control?: boolean }
//   seed "wait":   one hello-world prediction run with Prefer: wait (warms the runner process).
//   seed "queued": one hello-world prediction created without waiting (worker off: it stays queued).
//   seed "stream": one replicant/stream-test prediction left unfinished (worker off), for SSE.
//   control:       a side HTTP port; GET /produce?id=&events=&batch=&size=&end= publishes output events
//                  to a prediction's stream channel from inside the server process (the runner's path:
//                  one `outputs` event of `batch` tokens per turn, as the director publishes a runner's
//                  batch; `size` pads each token to that many characters, `end=0` leaves out `done`).
//                  GET /listeners?id= counts the channel's listeners; GET /memory the process's memory
//                  (after a full collection when it runs with --expose-gc).
import { createServer } from "node:http";
import { startTestServer } from "@replicant/testing";

const options = JSON.parse(process.argv[2] ?? "{}");
const server = await startTestServer({
  ...(options.config ?? {}),
  ...(options.dataDir ? { dataDir: options.dataDir } : {}),
});
const auth = { authorization: `Bearer ${server.token}`, "content-type": "application/json" };

async function api(method, path, body, headers = {}) {
  const response = await fetch(`${server.apiUrl}${path}`, {
    method,
    headers: { ...auth, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

const { streamMaxLagBytes, streamMaxStallMs } = server.server.ctx.config;
const ready = {
  url: server.url,
  token: server.token,
  dataDir: server.dataDir,
  streamMaxLagBytes,
  streamMaxStallMs,
};
const hello = await api("GET", "/models/replicate/hello-world").catch(() => undefined);
ready.versionId = hello?.latest_version?.id;
if (options.seed === "wait" || options.seed === "queued") {
  const prediction = await api(
    "POST",
    "/predictions",
    { version: ready.versionId, input: { text: "bench" } },
    options.seed === "wait" ? { prefer: "wait" } : {},
  );
  if (options.seed === "wait" && prediction.status !== "succeeded")
    throw new Error(`seed: ${prediction.status}`);
  ready.predictionId = prediction.id;
} else if (options.seed === "stream") {
  const prediction = await api("POST", "/models/replicant/stream-test/predictions", { input: { tokens: 1 } });
  ready.predictionId = prediction.id;
}

if (options.control) {
  const { bus } = server.server.ctx;
  const control = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/rss") {
      res.end(JSON.stringify({ rssMb: process.memoryUsage().rss / 1048576 }));
      return;
    }
    if (url.pathname === "/listeners") {
      res.end(JSON.stringify({ listeners: bus.listenerCount(`prediction:${url.searchParams.get("id")}`) }));
      return;
    }
    if (url.pathname === "/memory") {
      globalThis.gc?.();
      const { rss, heapUsed, external } = process.memoryUsage();
      res.end(JSON.stringify({ rssMb: rss / 1048576, liveMb: (heapUsed + external) / 1048576 }));
      return;
    }
    if (url.pathname !== "/produce") return res.writeHead(404).end();
    const id = url.searchParams.get("id");
    const events = Number(url.searchParams.get("events") ?? 1000);
    const batch = Number(url.searchParams.get("batch") ?? 64);
    const size = Number(url.searchParams.get("size") ?? 0);
    const end = url.searchParams.get("end") !== "0";
    const channel = `prediction:${id}`;
    let sent = 0;
    // A runner's batch of tokens reaches the director as one IPC message and goes on the bus as one
    // `outputs` event (director.ts, recordOutputs): one event per turn here too.
    const step = () => {
      const last = Math.min(events, sent + batch);
      const values = [];
      if (size > 0) for (let i = sent; i < last; i++) values.push(`token-${i} `.padEnd(size, "."));
      else for (let i = sent; i < last; i++) values.push(`token-${i} `);
      void bus.publish(channel, { type: "outputs", index: sent, values });
      sent = last;
      if (sent < events) setImmediate(step);
      else if (end) void bus.publish(channel, { type: "done", status: "succeeded", error: null });
    };
    setImmediate(step);
    res.end("ok");
  });
  await new Promise((resolve) => control.listen(0, "127.0.0.1", resolve));
  ready.control = `http://127.0.0.1:${control.address().port}`;
}

// BENCH_PROFILE=<file>: CPU-profile the server from now (start-up excluded) until SIGTERM.
let stopProfile = async () => {};
if (process.env.BENCH_PROFILE) {
  const { Session } = await import("node:inspector");
  const { writeFileSync } = await import("node:fs");
  const session = new Session();
  session.connect();
  const post = (method, params) =>
    new Promise((resolve, reject) =>
      session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))),
    );
  await post("Profiler.enable");
  await post("Profiler.setSamplingInterval", { interval: 200 });
  await post("Profiler.start");
  stopProfile = async () => {
    const { profile } = await post("Profiler.stop");
    writeFileSync(process.env.BENCH_PROFILE, JSON.stringify(profile));
  };
}

process.stdout.write(`${JSON.stringify(ready)}\n`);

let closing = false;
process.on("SIGTERM", () => {
  if (closing) return;
  closing = true;
  stopProfile()
    .then(() => server.close())
    .finally(() => process.exit(0));
});
