// R9: predictions/s of replicate/hello-world (POST /v1/predictions with Prefer: wait) through a
// scale-out cluster (2 API processes of `replicant serve --role api` on PostgreSQL, Redis and s3rver,
// packages/testing/src/cluster.ts) with 2 worker processes vs 1 worker process, alternating rounds,
// each round a fresh cluster. Load: one wrk per API process (the client spreads the load, as a load
// balancer would; an in-process proxy would take CPU from the cluster), c=25 each.
//
// Two regimes, same run:
// - R9: workers at serve's default concurrency (32). On a small machine every process (APIs, workers,
//   their runners, PostgreSQL, Redis, wrk) shares the cores, so this is bounded by CPU, not by workers.
// - R9-slots: each worker has 4 slots (--concurrency 4) and the model holds a slot 100 ms
//   (replicant/stream-test, 1 token after 100 ms), so the deployment's capacity is its worker slots
//   and the CPU is not saturated: the case scale-out is for (workers are the bottleneck, not the machine).
// A one-off profile on a 2-core machine (per-process CPU from /proc during an R9 round with 1 worker):
// per hello-world prediction ≈ 3.6 ms CPU in the API processes, ≈ 2.6 ms in the worker, ≈ 2–3 ms in
// PostgreSQL backends and ≈ 0.9 ms in Redis, about 10 ms in all: ~150 predictions/s fill both cores.
// Run `npm run build` first (the cluster runs packages/cli/bin/replicant.js).
import { readFileSync } from "node:fs";
import { clusterServicesUp, startTestCluster } from "../packages/testing/dist/src/cluster.js";
import {
  alternate,
  DURATION_S,
  fmt,
  log,
  machine,
  main,
  medianOf,
  QUICK,
  ratio,
  round,
  WARMUP_S,
  wrk,
} from "./lib.mjs";

const TARGET = 1.8;
const CONNECTIONS_PER_API = 25;

/** Busy and total jiffies of the whole machine (/proc/stat), to report CPU saturation. */
function cpuJiffies() {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = fields[3] + (fields[4] ?? 0);
  const total = fields.reduce((s, n) => s + n, 0);
  return { busy: total - idle, total };
}

async function measure(variant, regime) {
  const cluster = await startTestCluster({
    workers: variant.workers,
    workerConcurrency: regime.concurrency,
    apiArgs: ["--rate-limit", "off"],
    workerArgs: ["--rate-limit", "off"],
    logLevel: "error",
  });
  try {
    const body = JSON.stringify(regime.prediction);
    const headers = {
      authorization: `Bearer ${cluster.token}`,
      "content-type": "application/json",
      prefer: "wait",
    };
    const run = (seconds) =>
      Promise.all(
        cluster.apis.map((api) =>
          wrk(`${api.url}/v1/predictions`, {
            method: "POST",
            body,
            headers,
            connections: regime.connections,
            seconds,
          }),
        ),
      );
    if (WARMUP_S > 0) await run(WARMUP_S);
    const before = cpuJiffies();
    const results = await run(DURATION_S);
    const after = cpuJiffies();
    const rps = results.reduce((s, r) => s + r.rps, 0);
    const non2xx = results.reduce((s, r) => s + r.non2xx, 0);
    const p50 = Math.max(...results.map((r) => r.p50));
    const cpuBusy = (after.busy - before.busy) / Math.max(1, after.total - before.total);
    return {
      rps,
      p50,
      non2xx,
      cpuBusy,
      errors: results
        .map((r) => r.errors)
        .filter(Boolean)
        .join("; "),
    };
  } catch (error) {
    log(cluster.output());
    throw error;
  } finally {
    await cluster.close();
  }
}

main(["R9", "R9-slots"], async () => {
  if (!(await clusterServicesUp())) {
    const why = "PostgreSQL (127.0.0.1:5432) or Redis (127.0.0.1:6379) is unreachable; not measured";
    return [ratio("R9", null, `≥ ${TARGET}×`, null, why), ratio("R9-slots", null, `≥ ${TARGET}×`, null, why)];
  }
  const variants = [
    { name: "2 workers", workers: 2 },
    { name: "1 worker", workers: 1 },
  ];
  const regimes = [
    {
      id: "R9",
      concurrency: 32,
      connections: CONNECTIONS_PER_API,
      prediction: { version: "replicate/hello-world", input: { text: "bench" } },
      what: "hello-world, default worker concurrency (32)",
    },
    {
      id: "R9-slots",
      concurrency: 4,
      connections: 10,
      prediction: { version: "replicant/stream-test", input: { tokens: 1, delay_ms: 100 } },
      what: "a model holding its slot 100 ms (replicant/stream-test, 1 token, delay 100 ms), 4 slots per worker (--concurrency 4)",
    },
  ];
  const out = [];
  for (const regime of regimes) {
    log(`${regime.id}: ${regime.what}`);
    // A round here starts four fresh clusters: --quick keeps to one round so that it stays under 3 minutes.
    const results = await alternate(variants, (variant) => measure(variant, regime), QUICK ? 1 : undefined);
    const two = results["2 workers"];
    const one = results["1 worker"];
    const value = medianOf(two, "rps") / medianOf(one, "rps");
    const non2xx = [...two, ...one].reduce((s, r) => s + r.non2xx, 0);
    const cpu = `machine CPU busy ${fmt.pct(medianOf(two, "cpuBusy"))} (2 workers) / ${fmt.pct(medianOf(one, "cpuBusy"))} (1 worker)`;
    const bound =
      value < TARGET && medianOf(one, "cpuBusy") > 0.9
        ? "; short of the target because the machine is CPU-bound already with 1 worker: both API processes, the workers and their runner processes, PostgreSQL, Redis and wrk share its cores, so a second worker process adds no CPU to spend"
        : "";
    out.push(
      ratio(
        regime.id,
        round(value, 3),
        `≥ ${TARGET}× (2 worker processes vs 1)`,
        value >= TARGET && non2xx === 0,
        `Prefer: wait, ${regime.what}, 2 API processes, c=${regime.connections * 2}: ${fmt.rps(medianOf(two, "rps"))} (p50 ${fmt.us(medianOf(two, "p50"))}) with 2 workers vs ${fmt.rps(medianOf(one, "rps"))} (p50 ${fmt.us(medianOf(one, "p50"))}) with 1; ${cpu}${non2xx ? `; ${non2xx} non-2xx` : ""}${bound}; ${two.length} rounds, each a fresh cluster on PostgreSQL + Redis + s3rver; ${machine()}`,
      ),
    );
  }
  return out;
});
