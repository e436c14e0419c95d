// Shared helpers of the ratio scripts: pinned processes, wrk runs, rounds, medians, the result line.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = dirname(BENCH_DIR);
export const QUICK = process.argv.includes("--quick") || process.env.BENCH_QUICK === "1";

/** Core of the process under test and core of the load generator (taskset -c). */
export const SERVER_CORE = process.env.BENCH_SERVER_CORE ?? "0";
export const CLIENT_CORE = process.env.BENCH_CLIENT_CORE ?? (cpus().length > 1 ? "1" : "0");

/** Rounds, warm-up and measuring time of one wrk run, in seconds. */
// --quick: one round, to stay under 3 minutes on a slow day (a smoke check; the full run alternates 3).
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 3));
export const WARMUP_S = Number(process.env.BENCH_WARMUP ?? (QUICK ? 1 : 2));
/**
 * The warm-up of a c=1 (latency) run. A fresh server's JIT needs thousands of requests to reach its steady
 * state, which c=1 gives slowly: R2's server answered hello-world at c=1 with a p50 of 2.67 ms in its first
 * 3 s, 2.26 ms in the next 3 and 1.1–1.5 ms from 9 s on (V8 still compiling, and running unoptimized code).
 */
export const LATENCY_WARMUP_S = Number(process.env.BENCH_LATENCY_WARMUP ?? (QUICK ? 2 : 10));
export const DURATION_S = Number(process.env.BENCH_DURATION ?? (QUICK ? 2 : 5));

export function log(...args) {
  console.error(...args);
}

export function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Spread of a set of samples: (max - min) / median. */
export function spread(values) {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length < 2) return 0;
  return (Math.max(...finite) - Math.min(...finite)) / median(finite);
}

export const fmt = {
  rps: (n) => (Number.isFinite(n) ? `${Math.round(n).toLocaleString("en-US")} req/s` : "n/a"),
  us: (n) => (Number.isFinite(n) ? `${Math.round(n)} µs` : "n/a"),
  pct: (n) => `${(n * 100).toFixed(1)} %`,
  x: (n, digits = 2) => (Number.isFinite(n) ? `${n.toFixed(digits)}×` : "n/a"),
};

export function round(n, digits = 3) {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** The machine, for the detail of a result. */
export function machine() {
  const cpu = cpus()[0]?.model?.trim() ?? "unknown CPU";
  return `${cpu}, ${cpus().length} cores, Node ${process.version}`;
}

/** The runner's contract: the last stdout line of a ratio script is `{"ratios":[…]}`. */
export function emit(ratios) {
  process.stdout.write(`${JSON.stringify({ ratios })}\n`);
}

/** `ulimit -n` for the processes we start (10,000 SSE streams need more than the default 1024). */
const NOFILE = 65536;

/**
 * Starts `node <script> [args]` pinned to `core`, and waits for its first stdout line, a JSON object
 * (the script's "ready" message). stderr is passed through.
 */
export async function startProcess(script, args = [], { core = SERVER_CORE, nodeArgs = [], env } = {}) {
  const command = `ulimit -n ${NOFILE} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec taskset -c ${core} "$0" "$@"`;
  const child = spawn("bash", ["-c", command, process.execPath, ...nodeArgs, script, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const ready = await new Promise((resolve, reject) => {
    let buffer = "";
    const onData = (chunk) => {
      buffer += chunk;
      const nl = buffer.indexOf("\n");
      if (nl < 0) return;
      child.stdout.off("data", onData);
      try {
        resolve(JSON.parse(buffer.slice(0, nl)));
      } catch (error) {
        reject(new Error(`${script}: bad ready line ${buffer.slice(0, nl)}: ${error}`));
      }
    };
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", onData);
    exited.then(({ code, signal }) => reject(new Error(`${script} exited (${code ?? signal}) before ready`)));
  });
  child.stdout.resume();
  return {
    pid: child.pid,
    ready,
    child,
    exited,
    /** User+system CPU seconds of the process and its descendants (runner children included). */
    cpuSeconds: () => treeCpuSeconds(child.pid),
    rssMb: () => rssMb(child.pid),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function descendants(pid) {
  const out = [pid];
  try {
    for (const task of readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/)) {
      if (task) out.push(...descendants(Number(task)));
    }
  } catch {}
  return out;
}

const TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim() || 100);

function treeCpuSeconds(pid) {
  let ticks = 0;
  for (const p of descendants(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {}
  }
  return ticks / TICKS;
}

export function rssMb(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
    return kb / 1024;
  } catch {
    return Number.NaN;
  }
}

let wrkChecked = false;
function checkWrk() {
  if (wrkChecked) return;
  const probe = spawnSync("wrk", ["--version"], { encoding: "utf8" });
  if (probe.error) throw new Error("wrk is not installed: apt-get install -y wrk");
  wrkChecked = true;
}

function luaString(s) {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/**
 * One wrk run (no pipelining, one thread, `connections` keep-alive connections) pinned to the client
 * core. Returns req/s, latency percentiles in µs, non-2xx count and socket errors.
 */
export async function wrk(
  url,
  { connections = 50, seconds = DURATION_S, method = "GET", body, headers = {} } = {},
) {
  checkWrk();
  const script = join(tmpdir(), `bench-wrk-${process.pid}-${Math.random().toString(36).slice(2)}.lua`);
  const lines = [`wrk.method = ${luaString(method)}`];
  if (body !== undefined) lines.push(`wrk.body = ${luaString(body)}`);
  for (const [name, value] of Object.entries(headers))
    lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  writeFileSync(script, `${lines.join("\n")}\n`);
  const args = [
    "-c",
    CLIENT_CORE,
    "wrk",
    "-t1",
    `-c${connections}`,
    `-d${seconds}s`,
    "--latency",
    "--timeout",
    "10s",
    "-s",
    script,
    url,
  ];
  const output = await new Promise((resolve, reject) => {
    const child = spawn("taskset", args, { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (c) => {
      text += c;
    });
    child.stderr.on("data", (c) => {
      text += c;
    });
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}: ${text}`)),
    );
  });
  return parseWrk(output);
}

function toMicros(value, unit) {
  const n = Number(value);
  if (unit === "us") return n;
  if (unit === "ms") return n * 1000;
  if (unit === "s") return n * 1e6;
  return n;
}

export function parseWrk(text) {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? Number.NaN);
  const latency = {};
  for (const match of text.matchAll(/^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$/gm)) {
    latency[`p${match[1]}`] = toMicros(match[2], match[3]);
  }
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const errors = /Socket errors:([^\n]+)/.exec(text)?.[1]?.trim();
  const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? 0);
  return { rps, requests, p50: latency.p50, p99: latency.p99, non2xx, errors, raw: text };
}

/**
 * Measures one variant in a fresh process: start it, warm up, measure with wrk (recording the
 * process tree's CPU time per request), stop it.
 */
export async function measureFresh(variant, request) {
  const proc = await startProcess(variant.script, variant.args ?? []);
  try {
    const target = typeof request === "function" ? request(proc.ready) : request;
    const warmup = (target.connections ?? 50) <= 1 ? Math.max(WARMUP_S, LATENCY_WARMUP_S) : WARMUP_S;
    if (warmup > 0) await wrk(target.url, { ...target, seconds: warmup });
    const cpuBefore = proc.cpuSeconds();
    const result = await wrk(target.url, target);
    const cpu = proc.cpuSeconds() - cpuBefore;
    result.cpuUsPerReq = result.requests > 0 ? (cpu * 1e6) / result.requests : Number.NaN;
    result.rssMb = proc.rssMb();
    if (result.non2xx > 0 || result.errors) {
      log(`  ${variant.name}: ${result.non2xx} non-2xx, errors: ${result.errors ?? "none"}`);
    }
    return result;
  } finally {
    await proc.stop();
  }
}

/**
 * Runs every variant `rounds` times, alternating them and reversing the order each round, each run
 * in a fresh process. Returns { name: [result per round] }.
 */
export async function alternate(variants, run, rounds = ROUNDS) {
  const results = Object.fromEntries(variants.map((v) => [v.name, []]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? variants : [...variants].reverse();
    for (const variant of order) {
      const result = await run(variant);
      results[variant.name].push(result);
      log(
        `  round ${r + 1} ${variant.name}: ${fmt.rps(result.rps)}, p50 ${fmt.us(result.p50)}` +
          (Number.isFinite(result.cpuUsPerReq) ? `, ${fmt.us(result.cpuUsPerReq)} CPU/req` : ""),
      );
    }
  }
  return results;
}

export function medianOf(results, key) {
  return median(results.map((r) => r[key]));
}

/** A result entry; `target` is a human string, `pass` a boolean (or null when not measured). */
export function ratio(id, value, target, pass, detail) {
  return { id, value, target, pass, detail };
}

/** Runs a ratio script's main and always emits a result line, even when it throws. */
export async function main(ids, body) {
  try {
    const ratios = await body();
    emit(ratios);
  } catch (error) {
    log(error?.stack ?? error);
    emit(ids.map((id) => ratio(id, null, "", false, `bench script failed: ${error?.message ?? error}`)));
    process.exitCode = 1;
  }
}
