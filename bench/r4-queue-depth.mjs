// R4: 1,000,000 queued predictions (100,000 with --quick) in the durable SQLite store and queue, with
// the director off (worker: false): server RSS; GET one / list / create latency at c=1 vs the same
// server with an "empty" queue (100 predictions: one full list page, so both pages are the same size);
// enqueue→start p50 of the queue when idle.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  alternate,
  fmt,
  log,
  machine,
  main,
  medianOf,
  QUICK,
  ratio,
  round,
  startProcess,
  WARMUP_S,
  wrk,
} from "./lib.mjs";

const DEEP = Number(process.env.BENCH_R4_DEPTH ?? (QUICK ? 100_000 : 1_000_000));
const EMPTY = 100;
const SECONDS = QUICK ? 1 : 4;

async function prefill(count) {
  const dataDir = mkdtempSync(join(tmpdir(), `replicant-r4-${count}-`));
  const proc = await startProcess("bench/servers/r4-prefill.mjs", [dataDir, String(count)]);
  await proc.exited;
  log(
    `  prefilled ${proc.ready.rows} predictions, ${proc.ready.jobs} queued, in ${proc.ready.seconds.toFixed(1)} s`,
  );
  return { dataDir, ...proc.ready };
}

main(["R4-rss", "R4-latency", "R4-enqueue-start"], async () => {
  const deep = await prefill(DEEP);
  const empty = await prefill(EMPTY);
  try {
    const variants = [
      { name: "deep", data: deep },
      { name: "empty", data: empty },
    ];
    const results = await alternate(variants, async (variant) => {
      const options = { dataDir: variant.data.dataDir, config: { worker: false } };
      const proc = await startProcess("bench/servers/replicant.mjs", [JSON.stringify(options)]);
      try {
        const { url, token } = proc.ready;
        const auth = { authorization: `Bearer ${token}` };
        const targets = {
          get: { url: `${url}/v1/predictions/${variant.data.predictionId}`, headers: auth },
          list: { url: `${url}/v1/predictions`, headers: auth },
          create: {
            url: `${url}/v1/models/replicate/hello-world/predictions`,
            method: "POST",
            body: JSON.stringify({ input: { text: "bench" } }),
            headers: { ...auth, "content-type": "application/json" },
          },
        };
        const out = {};
        for (const [name, target] of Object.entries(targets)) {
          if (WARMUP_S > 0) await wrk(target.url, { ...target, connections: 1, seconds: 1 });
          out[name] = await wrk(target.url, { ...target, connections: 1, seconds: SECONDS });
          if (out[name].non2xx) log(`  ${variant.name} ${name}: ${out[name].non2xx} non-2xx`);
        }
        out.rssMb = proc.rssMb();
        out.rps = out.get.rps;
        out.p50 = out.get.p50;
        return out;
      } finally {
        await proc.stop();
      }
    });
    const lat = {};
    for (const op of ["get", "list", "create"]) {
      lat[op] = {
        deep: medianOf(
          results.deep.map((r) => r[op]),
          "p50",
        ),
        empty: medianOf(
          results.empty.map((r) => r[op]),
          "p50",
        ),
      };
    }
    const worst = Math.max(...Object.values(lat).map((l) => l.deep / l.empty));
    const rss = Math.max(...results.deep.map((r) => r.rssMb));
    const queueDeep = await startProcess("bench/servers/r4-queue-latency.mjs", [
      deep.dataDir,
      QUICK ? "200" : "500",
    ]);
    await queueDeep.exited;
    const queueEmpty = await startProcess("bench/servers/r4-queue-latency.mjs", [
      empty.dataDir,
      QUICK ? "200" : "500",
    ]);
    await queueEmpty.exited;
    const depth = `${DEEP.toLocaleString("en-US")} queued${QUICK ? " (--quick; the full run uses 1,000,000)" : ""}`;
    return [
      ratio(
        "R4-rss",
        round(rss, 1),
        "≤ 300 MB RSS",
        rss <= 300,
        `server RSS with ${depth}, after the get/list/create runs: ${rss.toFixed(0)} MB (empty: ${Math.max(...results.empty.map((r) => r.rssMb)).toFixed(0)} MB); ${machine()}`,
      ),
      ratio(
        "R4-latency",
        round(worst, 2),
        "≤ 2× empty (get, list, create p50 at c=1)",
        worst <= 2,
        `${depth} vs ${EMPTY}: p50 get ${fmt.us(lat.get.deep)} vs ${fmt.us(lat.get.empty)}, list (100 per page) ${fmt.us(lat.list.deep)} vs ${fmt.us(lat.list.empty)}, create ${fmt.us(lat.create.deep)} vs ${fmt.us(lat.create.empty)}; value is the worst ratio; ${results.deep.length} rounds`,
      ),
      ratio(
        "R4-enqueue-start",
        round(queueDeep.ready.p50Us / 1000, 3),
        "≤ 2 ms p50 when idle",
        queueDeep.ready.p50Us <= 2000,
        `enqueue→lease of the SQLite queue (onAvailable, next-turn lease, group commit) in the ${depth} database, on an idle queue: p50 ${fmt.us(queueDeep.ready.p50Us)}, p99 ${fmt.us(queueDeep.ready.p99Us)}; in the empty database p50 ${fmt.us(queueEmpty.ready.p50Us)}; value in ms`,
      ),
    ];
  } finally {
    rmSync(deep.dataDir, { recursive: true, force: true });
    rmSync(empty.dataDir, { recursive: true, force: true });
  }
});
