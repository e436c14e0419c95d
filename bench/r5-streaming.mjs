// R5: one SSE stream's events/s through the API's stream route (events published on the prediction's
// channel inside the server, as the director does for a runner's output: a batch of 64 tokens a turn, one
// bus event) vs a bare node:http SSE writer (one res.write per turn's 64 events, as the route writes
// them); and, with 10,000 streams open, the req/s of a
// side route (GET /v1/predictions/{id}, c=50) against its rate in the same process before they opened.
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

main(["R5-events", "R5-streams"], async () => {
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
  return [
    ratio(
      "R5-events",
      round(eventsValue, 3),
      "≥ 0.8× floor events/s (one stream)",
      eventsValue >= 0.8,
      `stream route ${Math.round(ours).toLocaleString("en-US")} events/s vs node:http SSE writer ${Math.round(floor).toLocaleString("en-US")} events/s (${EVENTS.toLocaleString("en-US")} output events, ${BATCH} per turn); ${results.floor.length} rounds, floor spread ${fmt.pct(spread(results.floor.map((r) => r.eventsPerSecond)))}; ${machine()}`,
    ),
    ratio(
      "R5-streams",
      round(sideValue, 3),
      "≥ 0.5 of the side route's rate with 10,000 streams open",
      sideValue >= 0.5,
      `GET /v1/predictions/{id} at c=50: ${details.join("; ")}; ${DURATION_S} s runs`,
    ),
  ];
});
