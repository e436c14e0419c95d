// Profiles the server under one benchmark's load (the V8 profiler from the inspector, started once the
// server is ready, so start-up is left out) and prints the functions
// with the most self time. Usage: node bench/profile.mjs r1|r2|r2c1 [seconds] [outDir]
// The .cpuprofile lands in outDir (default /tmp/replicant-prof); render it with bench/flamegraph.mjs.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startProcess, wrk } from "./lib.mjs";

const which = process.argv[2] ?? "r1";
const seconds = Number(process.argv[3] ?? 5);
const outDir = process.argv[4] ?? "/tmp/replicant-prof";
mkdirSync(outDir, { recursive: true });

const path = join(outDir, `${which}-${Date.now()}.cpuprofile`);
const proc = await startProcess("bench/servers/replicant.mjs", [JSON.stringify({ seed: "wait" })], {
  env: { BENCH_PROFILE: path },
});
const { url, token, predictionId, versionId } = proc.ready;
const headers = { authorization: `Bearer ${token}` };
const target =
  which === "r1"
    ? { url: `${url}/v1/predictions/${predictionId}`, connections: 50, headers }
    : {
        url: `${url}/v1/predictions`,
        connections: which === "r2c1" ? 1 : 50,
        method: "POST",
        body: JSON.stringify({ version: versionId, input: { text: "bench" } }),
        headers: { ...headers, "content-type": "application/json", prefer: "wait" },
      };
// Stopped whatever happens (wrk missing or failing), so no server is left running.
const result = await wrk(target.url, { ...target, seconds }).finally(() => proc.stop());
console.error(`${which}: ${Math.round(result.rps)} req/s, p50 ${result.p50} µs, non-2xx ${result.non2xx}`);

console.log(path);
const profile = JSON.parse(readFileSync(path, "utf8"));
const self = new Map();
const dt = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  dt.set(profile.samples[i], (dt.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
let total = 0;
for (const node of profile.nodes) {
  const t = dt.get(node.id) ?? 0;
  total += t;
  const f = node.callFrame;
  const key = `${f.functionName || "(anonymous)"} ${f.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*\/packages\//, "")}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + t);
}
const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 40));
for (const [key, t] of top) console.log(`${((100 * t) / total).toFixed(1).padStart(5)} %  ${key}`);
