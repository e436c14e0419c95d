// R7 (docs: ../shared/design/performance.md): `replicant --help` start-up against `node -e 0`, the floor.
// 20 runs of each, alternating and reversing the order every round, each a fresh process; the median
// difference must be at most +80 ms. An A/A pair (the floor against itself) shows the noise band.
// Usage: node bench/r7-cli-startup.mjs [--runs 20]   (build first: npx tsc -b packages/cli)
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const bin = join(here, "..", "packages", "cli", "bin", "replicant.js");
const runsFlag = process.argv.indexOf("--runs");
const runs = runsFlag > 0 ? Number(process.argv[runsFlag + 1]) : 20;
const TARGET_MS = 80;

const variants = {
  floor: [process.execPath, "-e", "0"],
  help: [process.execPath, bin, "--help"],
};

function timeOnce([command, ...args]) {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  return elapsed;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

// Warm-up: the file-system cache and Node's compile cache.
for (let i = 0; i < 3; i++) for (const command of Object.values(variants)) timeOnce(command);

const samples = { floor: [], help: [], floorB: [] };
for (let round = 0; round < runs; round++) {
  const order = round % 2 === 0 ? ["floor", "help", "floorB"] : ["floorB", "help", "floor"];
  for (const name of order) samples[name].push(timeOnce(name === "floorB" ? variants.floor : variants[name]));
}

const floor = median(samples.floor);
const help = median(samples.help);
const differences = samples.help.map((value, index) => value - samples.floor[index]);
const added = median(differences);
const noise = median(samples.floorB.map((value, index) => value - samples.floor[index]));
const pass = added <= TARGET_MS;

const rows = [
  ["node -e 0 (floor)", `${floor.toFixed(1)} ms`],
  ["replicant --help", `${help.toFixed(1)} ms`],
  ["A/A noise (floor vs floor)", `${noise >= 0 ? "+" : ""}${noise.toFixed(1)} ms`],
  ["R7 added start-up (median of paired differences)", `+${added.toFixed(1)} ms`],
  ["target", `≤ +${TARGET_MS} ms`],
  ["result", pass ? "PASS" : "FAIL"],
];
const width = Math.max(...rows.map(([label]) => label.length));
console.log(`R7 CLI start-up, ${runs} runs each, alternating`);
for (const [label, value] of rows) console.log(`  ${label.padEnd(width)}  ${value}`);

const resultsDir = join(here, "results");
mkdirSync(resultsDir, { recursive: true });
writeFileSync(
  join(resultsDir, "r7-cli-startup.json"),
  `${JSON.stringify(
    {
      id: "R7",
      what: "replicant --help start-up over node -e 0",
      runs,
      floorMedianMs: floor,
      helpMedianMs: help,
      addedMedianMs: added,
      noiseMedianMs: noise,
      targetMs: TARGET_MS,
      pass,
      node: process.version,
      date: new Date().toISOString(),
    },
    null,
    2,
  )}\n`,
);
process.exitCode = pass ? 0 : 1;
