// R2: POST /v1/predictions with Prefer: wait on replicate/hello-world (durable embedded SQLite store,
// the predictor in its own runner process) at c=50 and c=1, vs a bare node:http echo of the same body.
import {
  alternate,
  fmt,
  machine,
  main,
  measureFresh,
  median,
  medianOf,
  ratio,
  round,
  spread,
} from "./lib.mjs";

const THROUGHPUT_TARGET = 1 / 15;
const ADDED_P50_TARGET_US = 1000;

function target(variant, connections) {
  return (ready) => {
    const body = JSON.stringify({ version: ready.versionId ?? "0".repeat(64), input: { text: "bench" } });
    const headers = { "content-type": "application/json" };
    if (variant.name === "replicant") {
      headers.authorization = `Bearer ${ready.token}`;
      headers.prefer = "wait";
    }
    return { url: `${ready.url}/v1/predictions`, method: "POST", body, headers, connections };
  };
}

main(["R2", "R2-c1"], async () => {
  const variants = [
    { name: "replicant", script: "bench/servers/replicant.mjs", args: [JSON.stringify({ seed: "wait" })] },
    { name: "floor", script: "bench/servers/floor-http.mjs", args: ["json"] },
  ];
  const out = [];
  for (const connections of [50, 1]) {
    console.error(`R2 c=${connections}`);
    const results = await alternate(variants, (variant) =>
      measureFresh(variant, target(variant, connections)),
    );
    const ours = results.replicant;
    const floor = results.floor;
    const oursRps = medianOf(ours, "rps");
    const floorRps = medianOf(floor, "rps");
    const non2xx = ours.reduce((s, r) => s + r.non2xx, 0);
    const common = `${ours.length} rounds, floor spread ${fmt.pct(spread(floor.map((r) => r.rps)))}, ours ${fmt.pct(spread(ours.map((r) => r.rps)))}${non2xx ? `, ${non2xx} non-2xx` : ""}; ${machine()}`;
    if (connections === 50) {
      const value = oursRps / floorRps;
      out.push(
        ratio(
          "R2",
          round(value, 4),
          "≥ 1/15 (0.0667) of floor req/s (c=50)",
          value >= THROUGHPUT_TARGET && non2xx === 0,
          `predictions ${fmt.rps(oursRps)} (1/${Math.round(1 / value)} of floor; ${fmt.us(medianOf(ours, "cpuUsPerReq"))} CPU/req incl. runner, p50 ${fmt.us(medianOf(ours, "p50"))}) vs node:http echo ${fmt.rps(floorRps)} (${fmt.us(medianOf(floor, "cpuUsPerReq"))} CPU/req); ${common}`,
        ),
      );
    } else {
      const added = median(ours.map((r, i) => r.p50 - floor[i].p50));
      out.push(
        ratio(
          "R2-c1",
          Math.round(added),
          "≤ 1000 µs added p50 (c=1)",
          added <= ADDED_P50_TARGET_US && non2xx === 0,
          `p50 ${fmt.us(medianOf(ours, "p50"))} vs floor ${fmt.us(medianOf(floor, "p50"))} (µs added, median of per-round differences); ${fmt.us(medianOf(ours, "cpuUsPerReq"))} CPU/req incl. runner (the server and its runner share one core, so at c=1 each request waits for all of it) vs ${fmt.us(medianOf(floor, "cpuUsPerReq"))}; p99 ${fmt.us(medianOf(ours, "p99"))} vs ${fmt.us(medianOf(floor, "p99"))}; ${fmt.rps(oursRps)} vs ${fmt.rps(floorRps)}; ${common}`,
        ),
      );
    }
  }
  return out;
});
