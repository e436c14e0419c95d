// R6: the SDK. predictions.create per-call time vs raw fetch of the same request (c=1, against a bare
// node:http server answering a prediction, so the client's own cost shows); SSE parse MB/s vs the
// replicate package's parser; `import "@replicant/sdk"` start-up over `node -e 0`.
import { spawnSync } from "node:child_process";
import {
  alternate,
  CLIENT_CORE,
  fmt,
  machine,
  main,
  median,
  QUICK,
  ROOT,
  ROUNDS,
  ratio,
  round,
  startProcess,
} from "./lib.mjs";

// A multiple of the three variants, so each runs first, second and third equally often.
const BLOCKS = QUICK ? 3 : 9;
const PER_BLOCK = 1000;
const IMPORT_RUNS = 20;

async function client(args) {
  const proc = await startProcess("bench/clients/" + args[0], args.slice(1), { core: CLIENT_CORE });
  await proc.exited;
  return proc.ready;
}

main(["R6-create", "R6-sse", "R6-import"], async () => {
  console.error("R6 predictions.create");
  // Each call's time is mostly fetch's own CPU, and this machine drifts by 10 % or more between
  // processes, so one client process runs the SDK and raw fetch in alternating blocks of calls; a second
  // block of raw fetch gives the A/A noise. Each round: a fresh server and client.
  const rounds = [];
  for (let r = 0; r < (QUICK ? ROUNDS : Math.max(ROUNDS, 5)); r++) {
    const server = await startProcess("bench/servers/floor-http.mjs", ["canned"]);
    try {
      rounds.push(await client(["sdk-create.mjs", server.ready.url, String(BLOCKS), String(PER_BLOCK)]));
    } finally {
      await server.stop();
    }
  }
  const createValue = median(rounds.map((r) => r.sdk.usPerCall / r.fetch.usPerCall));
  const createAa = median(rounds.map((r) => r["fetch-aa"].usPerCall / r.fetch.usPerCall));
  const sdkUs = median(rounds.map((r) => r.sdk.usPerCall));
  const fetchUs = median(rounds.map((r) => r.fetch.usPerCall));
  const sdkCpuUs = median(rounds.map((r) => r.sdk.cpuUsPerCall));
  const fetchCpuUs = median(rounds.map((r) => r.fetch.cpuUsPerCall));
  const overFetchValue = median(rounds.map((r) => r["sdk-over-fetch"].usPerCall / r.fetch.usPerCall));
  const replicateValue = median(rounds.map((r) => r.replicate.usPerCall / r.fetch.usPerCall));

  console.error("R6 SSE parse");
  const parse = await alternate([{ name: "sdk" }, { name: "replicate" }], async (variant) => {
    const r = await client(["sse-parse.mjs", variant.name, QUICK ? "4" : "8"]);
    return { ...r, rps: r.mbPerSecond, p50: Number.NaN };
  });
  const sdkMb = median(parse.sdk.map((r) => r.mbPerSecond));
  const replicateMb = median(parse.replicate.map((r) => r.mbPerSecond));

  console.error("R6 import time");
  const time = (args) => {
    const started = process.hrtime.bigint();
    const result = spawnSync("taskset", ["-c", CLIENT_CORE, process.execPath, ...args], { cwd: ROOT });
    if (result.status !== 0) throw new Error(`node ${args.join(" ")}: ${result.stderr}`);
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  const bare = [];
  const sdk = [];
  const importArgs = ["--input-type=module", "-e", 'import "@replicant/sdk";'];
  time(["-e", "0"]);
  time(importArgs);
  for (let i = 0; i < IMPORT_RUNS; i++) {
    if (i % 2 === 0) {
      bare.push(time(["-e", "0"]));
      sdk.push(time(importArgs));
    } else {
      sdk.push(time(importArgs));
      bare.push(time(["-e", "0"]));
    }
  }
  const importMs = median(sdk) - median(bare);
  // Without the SDK: what ESM mode itself costs over `node -e 0`, for context.
  const esm = [];
  for (let i = 0; i < 10; i++) esm.push(time(["--input-type=module", "-e", "0"]));

  const sseValue = sdkMb / replicateMb;
  return [
    ratio(
      "R6-create",
      round(createValue, 3),
      "≤ 1.1× raw fetch time per call",
      createValue <= 1.1,
      `predictions.create ${sdkUs.toFixed(0)} µs/call vs fetch ${fetchUs.toFixed(0)} µs/call (client CPU ${sdkCpuUs.toFixed(0)} vs ${fetchCpuUs.toFixed(0)} µs/call; on Node the SDK sends API calls through undici's dispatcher, not fetch); the SDK made to use fetch ${overFetchValue.toFixed(3)}×, the replicate package ${replicateValue.toFixed(3)}×; value is the median of per-round ratios; A/A fetch/fetch ${createAa.toFixed(3)}×; each round one client process alternating blocks of ${PER_BLOCK.toLocaleString("en-US")} sequential calls, ${BLOCKS} blocks a variant, ${rounds.length} rounds; ${machine()}`,
    ),
    ratio(
      "R6-sse",
      round(sseValue, 2),
      "≥ 2× the replicate package's SSE parse MB/s",
      sseValue >= 2,
      `parseSSEStream ${sdkMb.toFixed(1)} MB/s vs replicate (TextDecoderStream + EventSourceParserStream) ${replicateMb.toFixed(1)} MB/s on the same bytes (1 KB chunks, the replicate parser's best case; output and logs events)`,
    ),
    ratio(
      "R6-import",
      round(importMs, 1),
      "≤ 20 ms over node -e 0",
      importMs <= 20,
      `node --input-type=module -e 'import "@replicant/sdk"' ${median(sdk).toFixed(1)} ms vs node -e 0 ${median(bare).toFixed(1)} ms (medians of ${IMPORT_RUNS}, alternating); ESM mode alone ${fmt.x(median(esm) / median(bare))} of node -e 0 (${median(esm).toFixed(1)} ms)`,
    ),
  ];
});
