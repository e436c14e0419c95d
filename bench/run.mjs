// `npm run bench [-- --quick]`: runs every ratio script in bench/ (files named r<digits>-*.mjs|js|cjs|sh,
// in numeric order), one at a time, prints one table and writes bench/results/latest.json (quick.json
// with --quick, partial.json with --only).
// The contract a ratio script follows is in bench/README.md.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BENCH_DIR, machine, QUICK } from "./lib.mjs";

const only = process.argv
  .find((a) => a.startsWith("--only="))
  ?.slice(7)
  .split(",");
const SCRIPT = /^r(\d+)-.*\.(mjs|js|cjs|sh)$/;
const scripts = readdirSync(BENCH_DIR)
  .filter((f) => SCRIPT.test(f))
  .filter((f) => !only || only.some((o) => f.startsWith(o.toLowerCase())))
  .sort((a, b) => Number(SCRIPT.exec(a)[1]) - Number(SCRIPT.exec(b)[1]) || a.localeCompare(b));
const TIMEOUT_MS = Number(process.env.BENCH_SCRIPT_TIMEOUT_MS ?? (QUICK ? 150_000 : 900_000));

/**
 * Scripts written before the contract leave their results in bench/results/<script>.json instead of a
 * last stdout line: R7's { id, addedMedianMs, targetMs, pass, … } and R8's { results: [{ model, ratio,
 * target, pass } | { model, skipped }] }. Read those when they were written by this run.
 */
function fromResultFile(file, since) {
  const path = join(BENCH_DIR, "results", file.replace(/\.(mjs|js|cjs|sh)$/, ".json"));
  if (!existsSync(path) || statSync(path).mtimeMs < since) return undefined;
  const data = JSON.parse(readFileSync(path, "utf8"));
  if (data.id && "addedMedianMs" in data) {
    return [
      {
        id: data.id,
        value: Math.round(data.addedMedianMs * 10) / 10,
        target: `≤ +${data.targetMs} ms over node -e 0`,
        pass: data.pass,
        detail: `replicant --help ${data.helpMedianMs?.toFixed?.(1)} ms vs node -e 0 ${data.floorMedianMs?.toFixed?.(1)} ms (medians of ${data.runs}); A/A noise ${data.noiseMedianMs?.toFixed?.(1)} ms`,
      },
    ];
  }
  if (Array.isArray(data.results)) {
    return data.results.map((r) =>
      r.skipped
        ? {
            id: `R8-${r.model}`,
            value: null,
            target: "≤ 1.03× direct",
            pass: null,
            detail: `skipped: ${r.skipped}`,
          }
        : {
            id: `R8-${r.model}`,
            value: Math.round(r.ratio * 1000) / 1000,
            target: `≤ ${r.target}× the library called directly`,
            pass: r.pass,
            detail: `predictor ${r.predictor.toFixed(1)} ms vs direct ${r.direct.toFixed(1)} ms (${r.rounds} rounds, in process)`,
          },
    );
  }
  return undefined;
}

function runScript(file) {
  // --quick goes to the scripts that know it (all get BENCH_QUICK=1 in their environment).
  const source = readFileSync(join(BENCH_DIR, file), "utf8");
  const knowsQuick = source.includes('from "./lib.mjs"') || /["'`]--quick["'`]/.test(source);
  const args = QUICK && knowsQuick ? ["--quick"] : [];
  const [command, argv] = file.endsWith(".sh")
    ? ["bash", [join(BENCH_DIR, file), ...args]]
    : [process.execPath, [join(BENCH_DIR, file), ...args]];
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(command, argv, {
      cwd: join(BENCH_DIR, ".."),
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, ...(QUICK ? { BENCH_QUICK: "1" } : {}) },
    });
    let stdout = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    const timer = setTimeout(() => {
      process.stderr.write(`${file}: timed out after ${TIMEOUT_MS / 1000} s\n`);
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 5000).unref();
    }, TIMEOUT_MS);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      const last = stdout.trim().split("\n").at(-1) ?? "";
      try {
        const parsed = JSON.parse(last);
        if (!Array.isArray(parsed.ratios)) throw new Error("no ratios array");
        resolve({ ratios: parsed.ratios, seconds });
      } catch (error) {
        const adapted = fromResultFile(file, started);
        if (adapted) return resolve({ ratios: adapted, seconds });
        resolve({
          seconds,
          ratios: [
            {
              id: file.replace(/\.(mjs|js|cjs|sh)$/, ""),
              value: null,
              target: "",
              pass: false,
              detail: `${file} gave no result line (exit ${code ?? signal}): ${error.message}`,
            },
          ],
        });
      }
    });
  });
}

const all = [];
const started = Date.now();
for (const file of scripts) {
  process.stderr.write(`\n== ${file}${QUICK ? " (--quick)" : ""}\n`);
  const { ratios, seconds } = await runScript(file);
  process.stderr.write(`== ${file}: ${seconds} s\n`);
  for (const r of ratios)
    all.push({ id: r.id, value: r.value, target: r.target, pass: r.pass, detail: r.detail });
}

const status = (r) => (r.pass === true ? "PASS" : r.pass === false ? "FAIL" : "N/A");
const rows = [
  ["id", "value", "target", "result", "detail"],
  ...all.map((r) => [r.id, String(r.value ?? "—"), r.target, status(r), r.detail]),
];
const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((row) => row[i].length)));
const line = (row) => [...row.slice(0, 4).map((cell, i) => cell.padEnd(widths[i])), row[4]].join(" | ");
const table = [
  line(rows[0]),
  widths.map((w) => "-".repeat(w)).join("-|-") + "-|-------",
  ...rows.slice(1).map(line),
].join("\n");
const passed = all.filter((r) => r.pass === true).length;
const summary = `${passed} of ${all.length} targets met${QUICK ? " (--quick)" : ""}; ${machine()}; ${((Date.now() - started) / 1000).toFixed(0)} s`;
console.log(`\n${table}\n\n${summary}`);

// Only a full run replaces the committed latest.json; --quick and --only runs leave theirs beside it.
const resultName = only ? "partial.json" : QUICK ? "quick.json" : "latest.json";
mkdirSync(join(BENCH_DIR, "results"), { recursive: true });
writeFileSync(join(BENCH_DIR, "results", resultName), `${JSON.stringify({ ratios: all }, null, 2)}\n`);
console.log(`written: bench/results/${resultName}`);
