// R1: GET /v1/predictions/{id} (auth + store read) at c=50 vs a bare node:http JSON echo of a
// prediction-shaped document. The echo also runs against itself (A/A) to show the noise band.
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

const TARGET = 0.6;

main(["R1"], async () => {
  const variants = [
    { name: "replicant", script: "bench/servers/replicant.mjs", args: [JSON.stringify({ seed: "wait" })] },
    { name: "floor", script: "bench/servers/floor-http.mjs", args: ["json"] },
    { name: "floor-aa", script: "bench/servers/floor-http.mjs", args: ["json"] },
  ];
  const results = await alternate(variants, (variant) =>
    measureFresh(variant, (ready) =>
      variant.name === "replicant"
        ? {
            url: `${ready.url}/v1/predictions/${ready.predictionId}`,
            connections: 50,
            headers: { authorization: `Bearer ${ready.token}` },
          }
        : { url: `${ready.url}/v1/predictions/q2k8x1fjxdrm80cmt1jbm0ha9r`, connections: 50 },
    ),
  );
  const ours = medianOf(results.replicant, "rps");
  const floor = medianOf(results.floor, "rps");
  const aa = median(results["floor-aa"].map((r, i) => r.rps / results.floor[i].rps));
  const value = ours / floor;
  return [
    ratio(
      "R1",
      round(value),
      `≥ ${TARGET}× floor req/s (c=50)`,
      value >= TARGET,
      `GET /v1/predictions/{id} ${fmt.rps(ours)} (${fmt.us(medianOf(results.replicant, "cpuUsPerReq"))} CPU/req, p50 ${fmt.us(medianOf(results.replicant, "p50"))}) vs node:http ${fmt.rps(floor)} (${fmt.us(medianOf(results.floor, "cpuUsPerReq"))} CPU/req); A/A floor/floor ${fmt.x(aa, 3)}, round spread ${fmt.pct(spread(results.floor.map((r) => r.rps)))}; ${results.replicant.length} rounds; ${machine()}`,
    ),
  ];
});
