// R5: one SSE stream's events/s through the API's stream route (events published on the prediction's
// channel inside the server, as the director does for a runner's output: a batch of 64 tokens a turn, one
// bus event) vs a bare node:http SSE writer (one res.write per turn's 64 events, as the route writes
// them); with 10,000 streams open, the req/s of a side route (GET /v1/predictions/{id}, c=50) against
// its rate in the same process before they opened; and with 1,000 readers that never read, the server's
// memory against what it held before they came (each stalled stream may hold up to the lag bound, then
// is ended with a `reconnect` event and its buffers freed).
import { readFileSync } from "node:fs";
import {
  alternate,
  CLIENT_CORE,
  DURATION_S,
  fmt,
  log,
  machine,
  main,
  median,
  QUICK,
  ROUNDS,
  ratio,
  round,
  spread,
  startProcess,
  WARMUP_S,
  wrk,
} from "./lib.mjs";

const EVENTS = Number(process.env.BENCH_R5_EVENTS ?? (QUICK ? 200_000 : 1_000_000));
const BATCH = 64;
const STREAMS = Number(process.env.BENCH_R5_STREAMS ?? 10_000);
const STALLED = Number(process.env.BENCH_R5_STALLED ?? 1000);
/** Output sent to each stalled reader: past what loopback's socket buffers take (4-6 MB) plus the bound. */
const STALLED_BYTES = 8 * 1024 * 1024;
/** Which parts run (BENCH_R5_PARTS=events,streams,stalled); all by default. */
const PARTS = new Set((process.env.BENCH_R5_PARTS ?? "events,streams,stalled").split(","));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (n) => `${Math.round(n).toLocaleString("en-US")} MB`;

/** The process's peak RSS so far (VmHWM), MB. */
function peakRssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

/**
 * 1,000 readers open the stream of an unfinished prediction and never read; the prediction's channel
 * gets STALLED_BYTES of output (1,000-character tokens, 64 a turn). Memory is read from the server
 * before they open, once they are open, at its peak, once every stalled stream was ended (the readers
 * still connected) and after they left; "held" is the JavaScript heap and buffers after a full collection.
 */
async function stalledReaders() {
  const server = await startProcess(
    "bench/servers/replicant.mjs",
    [JSON.stringify({ seed: "stream", control: true, config: { worker: false } })],
    { nodeArgs: ["--expose-gc"] },
  );
  let holder;
  try {
    const { url, token, predictionId, control, streamMaxLagBytes, streamMaxStallMs } = server.ready;
    const get = async (path) => (await fetch(`${control}${path}`)).json();
    const listeners = async () => (await get(`/listeners?id=${predictionId}`)).listeners;
    const before = await get("/memory");
    holder = await startProcess(
      "bench/clients/sse-stall.mjs",
      [`${url}/v1/predictions/${predictionId}/stream`, token, String(STALLED)],
      { core: CLIENT_CORE },
    );
    const { opened, failed } = holder.ready;
    const open = await get("/memory");
    const peakBefore = peakRssMb(server.pid);
    const size = 1000;
    const started = performance.now();
    await fetch(
      `${control}/produce?id=${predictionId}&events=${Math.ceil(STALLED_BYTES / size)}&batch=64&size=${size}&end=0`,
    ).then((response) => response.text());
    let left = STALLED;
    while (left > 0 && performance.now() - started < 120_000) {
      await sleep(100);
      // The writer before backpressure held every refused byte: this load ran it out of heap.
      if (server.child.exitCode !== null || server.child.signalCode !== null)
        throw new Error(
          `the server exited (${server.child.exitCode ?? server.child.signalCode}) with ${opened} stalled readers`,
        );
      left = await listeners();
    }
    const endedSeconds = (performance.now() - started) / 1000;
    const peak = peakRssMb(server.pid);
    const ended = await get("/memory");
    await holder.stop();
    holder = undefined;
    await sleep(2000);
    const after = await get("/memory");
    return {
      opened,
      failed,
      left,
      endedSeconds,
      streamMaxLagBytes,
      streamMaxStallMs,
      before,
      open,
      peak: Math.max(peak, peakBefore),
      ended,
      after,
    };
  } finally {
    await holder?.stop();
    await server.stop();
  }
}

async function countEvents(args) {
  const client = await startProcess("bench/clients/sse-count.mjs", args, { core: CLIENT_CORE });
  await client.exited;
  return client.ready;
}

async function oneStream(variant) {
  const server = await startProcess(variant.script, variant.args);
  try {
    const r = server.ready;
    const run = (events) =>
      variant.name === "replicant"
        ? countEvents([
            `${r.url}/v1/predictions/${r.predictionId}/stream`,
            r.token,
            `${r.control}/produce?id=${r.predictionId}&events=${events}&batch=${BATCH}`,
          ])
        : countEvents([`${r.url}/stream?events=${events}&batch=${BATCH}`, "-", "-"]);
    if (variant.name === "replicant") {
      // The stream route ends the stream at `done`; a fresh unfinished prediction per run.
      await run(Math.min(EVENTS, 20_000)); // warm-up
      return { rps: Number.NaN, eventsPerSecond: Number.NaN, needsFresh: true };
    }
    await run(Math.min(EVENTS, 20_000));
    const result = await run(EVENTS);
    return { ...result, rps: result.eventsPerSecond };
  } finally {
    await server.stop();
  }
}

main(["R5-events", "R5-streams", "R5-stalled"], async () => {
  const ratios = [];
  if (PARTS.has("events")) ratios.push(await oneStreamRatio());
  if (PARTS.has("streams")) ratios.push(await manyStreamsRatio());
  if (PARTS.has("stalled")) ratios.push(await stalledRatio());
  return ratios;
});

async function oneStreamRatio() {
  // One stream: each run needs an unfinished prediction, so the server seeds two (warm-up + measure).
  const variants = [
    {
      name: "replicant",
      script: "bench/servers/replicant.mjs",
      args: [JSON.stringify({ seed: "stream", control: true, config: { worker: false } })],
    },
    { name: "floor", script: "bench/servers/floor-http.mjs", args: ["sse"] },
  ];
  console.error("R5 one stream");
  const results = await alternate(variants, async (variant) => {
    if (variant.name === "floor") return oneStream(variant);
    const server = await startProcess(variant.script, variant.args);
    try {
      const { url, token, control } = server.ready;
      const create = async () => {
        const response = await fetch(`${url}/v1/models/replicant/stream-test/predictions`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ input: { tokens: 1 } }),
        });
        return (await response.json()).id;
      };
      const run = async (events) => {
        const id = await create();
        return countEvents([
          `${url}/v1/predictions/${id}/stream`,
          token,
          `${control}/produce?id=${id}&events=${events}&batch=${BATCH}`,
        ]);
      };
      await run(Math.min(EVENTS, 20_000));
      const result = await run(EVENTS);
      return { ...result, rps: result.eventsPerSecond };
    } finally {
      await server.stop();
    }
  });
  const ours = median(results.replicant.map((r) => r.eventsPerSecond));
  const floor = median(results.floor.map((r) => r.eventsPerSecond));
  const eventsValue = ours / floor;
  return ratio(
    "R5-events",
    round(eventsValue, 3),
    "≥ 0.8× floor events/s (one stream)",
    eventsValue >= 0.8,
    `stream route ${Math.round(ours).toLocaleString("en-US")} events/s vs node:http SSE writer ${Math.round(floor).toLocaleString("en-US")} events/s (${EVENTS.toLocaleString("en-US")} output events, ${BATCH} per turn); ${results.floor.length} rounds, floor spread ${fmt.pct(spread(results.floor.map((r) => r.eventsPerSecond)))}; ${machine()}`,
  );
}

async function manyStreamsRatio() {
  console.error(`R5 ${STREAMS} streams`);
  const sideRatios = [];
  const details = [];
  const streamRounds = QUICK ? 1 : Math.max(1, ROUNDS - 1);
  for (let round_ = 0; round_ < streamRounds; round_++) {
    const server = await startProcess("bench/servers/replicant.mjs", [
      JSON.stringify({ seed: "stream", config: { worker: false } }),
    ]);
    let holder;
    try {
      const { url, token, predictionId } = server.ready;
      const side = {
        url: `${url}/v1/predictions/${predictionId}`,
        connections: 50,
        headers: { authorization: `Bearer ${token}` },
      };
      if (WARMUP_S > 0) await wrk(side.url, { ...side, seconds: WARMUP_S });
      const before = await wrk(side.url, side);
      holder = await startProcess(
        "bench/clients/sse-hold.mjs",
        [`${url}/v1/predictions/${predictionId}/stream`, token, String(STREAMS)],
        { core: CLIENT_CORE },
      );
      const rssWith = server.rssMb();
      if (WARMUP_S > 0) await wrk(side.url, { ...side, seconds: 1 });
      const during = await wrk(side.url, side);
      sideRatios.push(during.rps / before.rps);
      details.push(
        `${fmt.rps(during.rps)} with ${holder.ready.opened.toLocaleString("en-US")} open (opened in ${holder.ready.seconds.toFixed(1)} s, server RSS ${rssWith.toFixed(0)} MB) vs ${fmt.rps(before.rps)} before`,
      );
      log(`  round ${round_ + 1}: ${details.at(-1)}`);
    } finally {
      await holder?.stop();
      await server.stop();
    }
  }
  const sideValue = median(sideRatios);
  return ratio(
    "R5-streams",
    round(sideValue, 3),
    "≥ 0.5 of the side route's rate with 10,000 streams open",
    sideValue >= 0.5,
    `GET /v1/predictions/{id} at c=50: ${details.join("; ")}; ${DURATION_S} s runs`,
  );
}

async function stalledRatio() {
  console.error(`R5 ${STALLED} stalled readers`);
  const r = await stalledReaders();
  const bound = r.streamMaxLagBytes / 1048576;
  // The design's worst case: every stalled stream holding the whole lag bound at once.
  const worst = STALLED * bound;
  const growth = r.peak - r.before.rssMb;
  const value = growth / worst;
  const detail = `lag bound ${r.streamMaxLagBytes.toLocaleString("en-US")} bytes or ${r.streamMaxStallMs / 1000} s without a drain; ${r.opened.toLocaleString("en-US")} readers that never read${Object.keys(r.failed).length > 0 ? ` (failed to open: ${JSON.stringify(r.failed)})` : ""}, ${mb(STALLED_BYTES / 1048576)} of output each: ${r.left === 0 ? `all ended by the bound ${r.endedSeconds.toFixed(1)} s after the output began` : `${r.left} not ended after ${r.endedSeconds.toFixed(0)} s`}; server RSS ${mb(r.before.rssMb)} before, ${mb(r.open.rssMb)} with them open, peak ${mb(r.peak)}, ${mb(r.ended.rssMb)} once they were ended (still connected), ${mb(r.after.rssMb)} after they left; held after a full collection ${mb(r.before.liveMb)}, ${mb(r.open.liveMb)}, ${mb(r.ended.liveMb)}, ${mb(r.after.liveMb)}`;
  log(`  ${detail}`);
  return ratio(
    "R5-stalled",
    round(value, 3),
    `peak RSS growth ≤ 1× ${STALLED.toLocaleString("en-US")} × the lag bound, every stalled stream ended`,
    r.left === 0 && value <= 1,
    detail,
  );
}
