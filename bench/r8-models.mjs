// R8 (docs: shared/design/performance.md): the overhead of running each built-in model through the
// full API path (the SDK's create with Prefer: wait → server → runner process → predictor → file outputs stored
// and returned as the server's defaults return them: up to 1 MB inline as a data URI on plain http, and
// decoded by the client; `--file-outputs url` makes every file a download) over calling the model library directly, measured side by side in one run; the predictor
// interface alone (in process) is reported beside it, and so is the null path: the same client's create
// answered at once by bare node:http, right after a direct call, as a share of that call (what no server
// can win back from the 3 % on this machine).
// Usage: npm run build && node bench/r8-models.mjs [--rounds 5] [--only ocr,classify] [--with-background-removal]
//        [--file-outputs auto|url]
// The ratio is the median of per-round ratios (each round runs every variant once, in alternating order,
// so a machine drifting between rounds moves both sides alike); a full run takes rounds until each
// variant has run BENCH_R8_MEASURE_MS (5,000) in all, and at least --rounds.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    // --quick (from `npm run bench -- --quick`): 3 rounds.
    rounds: { type: "string", default: process.argv.includes("--quick") ? "3" : "5" },
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    "with-background-removal": { type: "boolean", default: false },
    // The server's setting (ServerConfig.fileOutputs); its default, "auto", is the embedded default's path.
    "file-outputs": { type: "string", default: "auto" },
    gguf: {
      type: "string",
      default: new URL("../../shared/models/llama-2-tiny-random.gguf", import.meta.url).pathname,
    },
  },
});
const rounds = Number(values.rounds);
// Five rounds of a 25–75 ms call is a third of a second: one slow moment of this machine decided a median.
const MEASURE_MS = Number(process.env.BENCH_R8_MEASURE_MS ?? (values.quick ? 0 : 5000));
const MAX_ROUNDS = 201;
/** Rounds go on until `spent` (ms per variant) reaches MEASURE_MS everywhere, and at least `rounds`. */
const moreRounds = (round, spent) =>
  round < rounds || (round < MAX_ROUNDS && spent.some((ms) => ms < MEASURE_MS));
const kit = await import("@replicant/model-kit");
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function time(fn) {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

// Warm-up: the variants take turns until each has run for WARM_MS and at least WARM_CALLS times. One call
// each was not enough: the runner process is a fresh V8, and a JavaScript model there (tts, char-lm)
// took 30–40 calls to reach the speed the bench process, which runs both in-process variants, had long
// reached (tts: 40–45 ms a call in the runner after 12 calls, 25 ms after 35, direct 25 ms).
const WARM_MS = Number(process.env.BENCH_R8_WARM_MS ?? (values.quick ? 1000 : 2000));
const WARM_CALLS = 5;

async function warmUp(fns) {
  const spent = fns.map(() => 0);
  const calls = fns.map(() => 0);
  while (spent.some((ms, i) => ms < WARM_MS || calls[i] < WARM_CALLS)) {
    for (const [i, fn] of fns.entries()) {
      if (spent[i] >= WARM_MS && calls[i] >= WARM_CALLS) continue;
      spent[i] += await time(fn);
      calls[i]++;
    }
  }
}

// The server runs in its own process, as in production (and as R1/R2 run it), unpinned: the models'
// thread pools get both cores in every variant. In this process it would share the heap, the JIT and
// the event loop with the direct calls it is compared with.
const { startProcess } = await import("./lib.mjs");
const serverProcess = await startProcess(
  "bench/servers/replicant.mjs",
  [JSON.stringify({ config: { fileOutputs: values["file-outputs"] } })],
  { core: "0-1" },
);
const server = { apiUrl: `${serverProcess.ready.url}/v1`, token: serverProcess.ready.token };
// The client is Replicant's SDK, as a user's program calls the server (on Node it sends API calls through
// undici's dispatcher; R6 compares it with raw fetch). File outputs are left as the server returns them.
const { Replicant } = await import("@replicant/sdk");
const client = new Replicant({ auth: server.token, baseUrl: server.apiUrl, useFileOutput: false });
// The least any HTTP API can add on this machine: the same client's create against bare node:http
// answering a canned finished prediction at once (no store, no runner, no model), right after a direct call.
const nullProcess = await startProcess("bench/servers/floor-http.mjs", ["canned"], { core: "0-1" });
const nullClient = new Replicant({
  auth: "none",
  baseUrl: `${nullProcess.ready.url}/v1`,
  useFileOutput: false,
});
const viaNullServer = () =>
  nullClient.predictions.create({ model: "replicate/hello-world", input: { text: "x" }, wait: true });

/** A prediction through the whole API path; a file output is downloaded or decoded, as a client would. */
async function viaApi(model, input) {
  const prediction = await client.predictions.create({ model, input, wait: true });
  if (prediction.status !== "succeeded")
    throw new Error(`${model}: ${prediction.status} ${prediction.error ?? prediction.detail ?? ""}`);
  const output = prediction.output;
  if (typeof output === "string" && output.startsWith("http")) await (await fetch(output)).arrayBuffer();
  else if (typeof output === "string" && output.startsWith("data:"))
    Buffer.from(output.slice(output.indexOf(",") + 1), "base64");
  return prediction;
}

/**
 * A streamed prediction through the API: created with `stream: true`, read from its SSE stream URL.
 * Returns when each `output` event arrived, and the time from the create request to the first.
 */
async function streamViaApi(model, input) {
  const sent = performance.now();
  const response = await fetch(`${server.apiUrl}/models/${model}/predictions`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
    body: JSON.stringify({ input, stream: true }),
  });
  const prediction = await response.json();
  const events = await fetch(prediction.urls.stream, { headers: { accept: "text/event-stream" } });
  const arrivals = [];
  const decoder = new TextDecoder();
  let buffer = "";
  let done = false;
  for await (const chunk of events.body) {
    const now = performance.now();
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (event.startsWith("event: output")) arrivals.push(now);
      else if (event.startsWith("event: error")) throw new Error(`${model}: ${event}`);
      else if (event.startsWith("event: done")) done = true;
      end = buffer.indexOf("\n\n");
    }
    if (done) break;
  }
  return { arrivals, firstMs: (arrivals[0] ?? Number.NaN) - sent };
}

/** Tokens per second between the first and the last token: the streaming rate, start-up aside. */
function tokensPerSecond(arrivals) {
  const first = arrivals[0];
  const last = arrivals.at(-1);
  return arrivals.length > 1 ? ((arrivals.length - 1) * 1000) / (last - first) : Number.NaN;
}

/** Alternates direct and API streaming runs, rotating the order; medians of tokens/s and first-token ms. */
async function compareStreaming(direct, api) {
  const directRates = [];
  const apiRates = [];
  const apiFirst = [];
  const directFirst = [];
  const runDirect = async () => {
    const started = performance.now();
    const arrivals = await direct();
    directRates.push(tokensPerSecond(arrivals));
    directFirst.push(arrivals[0] - started);
  };
  const runApi = async () => {
    const { arrivals, firstMs } = await api();
    apiRates.push(tokensPerSecond(arrivals));
    apiFirst.push(firstMs);
  };
  await warmUp([runDirect, runApi]);
  directRates.length = apiRates.length = apiFirst.length = directFirst.length = 0;
  const spent = [0, 0];
  let round = 0;
  for (; moreRounds(round, spent); round++) {
    if (round % 2 === 0) {
      spent[0] += await time(runDirect);
      spent[1] += await time(runApi);
    } else {
      spent[1] += await time(runApi);
      spent[0] += await time(runDirect);
    }
  }
  return {
    direct: median(directRates),
    api: median(apiRates),
    ratio: median(apiRates.map((rate, i) => rate / directRates[i])),
    directFirstMs: median(directFirst),
    apiFirstMs: median(apiFirst),
    rounds: round,
  };
}

const dataUri = (bytes, type) => `data:${type};base64,${Buffer.from(bytes).toString("base64")}`;

/**
 * Alternates direct, predictor and API calls, reversing the order each round. Returns the median ms of
 * each variant, and the medians of the per-round ratios over direct (`ratio` for the API path).
 */
async function compare(direct, viaPredictor, api) {
  const variants = [["direct", direct], ["predictor", viaPredictor], ...(api ? [["api", api]] : [])];
  const times = Object.fromEntries(variants.map(([name]) => [name, []]));
  await warmUp(variants.map(([, fn]) => fn));
  const spent = Object.fromEntries(variants.map(([name]) => [name, 0]));
  let round = 0;
  for (; moreRounds(round, Object.values(spent)); round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const [name, fn] of order) {
      const ms = await time(fn);
      times[name].push(ms);
      spent[name] += ms;
    }
  }
  const perRound = (name) => median(times[name].map((ms, i) => ms / times.direct[i]));
  return {
    ...Object.fromEntries(Object.entries(times).map(([name, xs]) => [name, median(xs)])),
    ratio: api ? perRound("api") : Number.NaN,
    predictorRatio: perRound("predictor"),
    rounds: round,
    ...(api ? await nullPathAfter(direct, median(times.direct)) : {}),
  };
}

/**
 * The null server's create, each right after a direct call (as the API path follows one in `compare`):
 * its median ms and its median share of the direct call, the part of the 3 % no server can win back.
 */
async function nullPathAfter(direct, directMs) {
  const directTimes = [];
  const nullTimes = [];
  const count = Math.max(rounds, Math.min(MAX_ROUNDS, Math.ceil(MEASURE_MS / 2 / directMs)));
  for (let i = 0; i < WARM_CALLS; i++) await viaNullServer();
  for (let i = 0; i < count; i++) {
    directTimes.push(await time(direct));
    nullTimes.push(await time(viaNullServer));
  }
  return {
    nullMs: median(nullTimes),
    nullShare: median(nullTimes.map((ms, i) => ms / directTimes[i])),
    nullRounds: count,
  };
}

const results = [];
const cases = {
  async ocr() {
    const { default: ocr, terminateWorkers } = await import("@replicant/model-ocr");
    const runner = await kit.directRunner(ocr);
    const image = join(runner.scratchDir, "text.png");
    await writeFile(
      image,
      kit.encodePng(kit.renderText("THE QUICK BROWN FOX\nJUMPS OVER 13 LAZY DOGS", { scale: 3 })),
    );
    const worker = await runner.state.workers.get("eng");
    const imageBytes = await readFile(image);
    const r = await compare(
      () => worker.recognize(image),
      () => runner.predict({ image }),
      () => viaApi("replicant/ocr", { image: dataUri(imageBytes, "image/png") }),
    );
    await terminateWorkers(runner.state);
    return r;
  },
  async classify() {
    const { default: classify, classifyPixels } = await import("@replicant/model-classify");
    const runner = await kit.directRunner(classify);
    const image = join(runner.scratchDir, "doc.png");
    await writeFile(image, kit.encodePng(kit.renderText("CLASSIFY\nTHIS", { scale: 6 })));
    return compare(
      async () => {
        const decoded = await kit.decodeImageFile(image);
        await classifyPixels(runner.state.model, kit.toRgb(decoded), decoded.width, decoded.height);
      },
      () => runner.predict({ image }),
      async () => viaApi("replicant/classify", { image: dataUri(await readFile(image), "image/png") }),
    );
  },
  async upscale() {
    const { default: upscale, upscalePixels } = await import("@replicant/model-upscale");
    const runner = await kit.directRunner(upscale);
    const rgba = kit.renderText("UP", { scale: 8 });
    const image = join(runner.scratchDir, "up.png");
    await writeFile(image, kit.encodePng(rgba));
    return compare(
      async () => {
        const decoded = await kit.decodeImageFile(image);
        const out = upscalePixels(
          runner.state.models.get(2),
          2,
          kit.toRgb(decoded),
          decoded.width,
          decoded.height,
        );
        kit.encodePng(kit.fromRgb(out.rgb, out.width, out.height));
      },
      () => runner.predict({ image, scale: 2 }),
      async () =>
        viaApi("replicant/upscale", { image: dataUri(await readFile(image), "image/png"), scale: 2 }),
    );
  },
  async tts() {
    const { default: tts } = await import("@replicant/model-tts");
    const runner = await kit.directRunner(tts);
    const text = "The quick brown fox jumps over the lazy dog.";
    return compare(
      () => runner.state.speaker.speak(text, { rawdata: "array", voice: "en/en-us", speed: 175, pitch: 50 }),
      () => runner.predict({ text }),
      () => viaApi("replicant/tts", { text }),
    );
  },
  async "char-lm"() {
    const { default: charLm, randomSource } = await import("@replicant/model-char-lm");
    const runner = await kit.directRunner(charLm);
    const model = runner.state.model;
    return compare(
      () => {
        const random = randomSource(1);
        let history = "Alice ";
        for (let i = 0; i < 500; i++) history = (history + model.sample(history, 0.7, random)).slice(-10);
      },
      async () => kit.collect(await runner.predict({ prompt: "Alice ", max_tokens: 500, seed: 1 })),
      () => viaApi("replicant/char-lm", { prompt: "Alice ", max_tokens: 500, seed: 1 }),
    );
  },
  async "llm-gguf"() {
    const { existsSync } = await import("node:fs");
    if (!existsSync(values.gguf)) {
      // A fresh clone has no ../shared: write the tests' tiny random-weight GGUF instead.
      const { writeTinyGguf } = await import("@replicant/model-llm-gguf/tiny-gguf");
      const { tmpdir } = await import("node:os");
      values.gguf = join(tmpdir(), "replicant-bench-tiny.gguf");
      await writeTinyGguf(values.gguf);
    }
    const { default: llm } = await import("@replicant/model-llm-gguf");
    const { LlamaCompletion } = await import("node-llama-cpp");
    const runner = await kit.directRunner(llm, { weights: values.gguf });
    const headers = { authorization: `Bearer ${server.token}`, "content-type": "application/json" };
    await fetch(`${server.apiUrl}/models`, {
      method: "POST",
      headers,
      body: JSON.stringify({ owner: "local", name: "bench-llm", visibility: "private", hardware: "cpu" }),
    });
    await fetch(`${server.apiUrl}/replicant/models/local/bench-llm/versions`, {
      method: "POST",
      headers,
      body: JSON.stringify({ template: "llm-gguf", weights_path: values.gguf }),
    });
    const { model, context } = runner.state;
    const tokens = 128;
    const prompt = "Once upon a time";
    // The predictor's default sampling (temperature 0.7, top_p 0.95, top_k 40) and its text per token:
    // node-llama-cpp's own defaults (greedy, tokens only) would do less work than the API path is asked to.
    const sampling = { maxTokens: tokens, seed: 1, temperature: 0.7, topP: 0.95, topK: 40 };
    /** The library called directly: one completion, each token's text handed to `onText`. */
    const generate = async (onText) => {
      const sequence = context.getSequence();
      const completion = new LlamaCompletion({ contextSequence: sequence });
      await completion.generateCompletion(prompt, {
        ...sampling,
        onToken: (t) => {
          for (const token of t) onText(model.detokenize([token]));
        },
      });
      completion.dispose();
      sequence.dispose();
    };
    const stream = await compareStreaming(
      async () => {
        const arrivals = [];
        await generate(() => arrivals.push(performance.now()));
        return arrivals;
      },
      () => streamViaApi("local/bench-llm", { prompt, max_tokens: tokens, seed: 1 }),
    );
    const times = await compare(
      async () => {
        const text = [];
        await generate((piece) => text.push(piece));
      },
      async () => kit.collect(await runner.predict({ prompt, max_tokens: tokens, seed: 1 })),
      () => viaApi("local/bench-llm", { prompt, max_tokens: tokens, seed: 1 }),
    );
    return { ...times, stream };
  },
  async "background-removal"() {
    if (!values["with-background-removal"])
      return { skipped: "pass --with-background-removal (about 4 s a call)" };
    const { default: bg, modelsUrl } = await import("@replicant/model-background-removal");
    const { removeBackground } = await import("@imgly/background-removal-node");
    const runner = await kit.directRunner(bg);
    const image = join(runner.scratchDir, "bg.png");
    const bytes = kit.encodePng(kit.renderText("BG", { scale: 16 }));
    await writeFile(image, bytes);
    return compare(
      () =>
        removeBackground(new Blob([bytes], { type: "image/png" }), {
          publicPath: modelsUrl(),
          model: "small",
          output: { format: "image/png" },
        }),
      () => runner.predict({ image, model: "small" }),
    );
  },
};

const only = values.only?.split(",");
for (const [name, run] of Object.entries(cases)) {
  if (only && !only.includes(name)) continue;
  try {
    results.push({ model: name, ...(await run()) });
  } catch (error) {
    results.push({
      model: name,
      skipped: `failed: ${error instanceof Error ? error.message : String(error)}`,
    });
  }
}

// Target (R8): the full API path's overhead ≤ 3 % over the library called directly (ratio ≤ 1.03).
console.log(
  "\nR8 models: full API path and predictor interface vs direct library call (medians of per-round ratios)",
);
console.log(
  "model               direct ms   predictor ms   API ms   API ratio   target   result   null server",
);
const table = [];
const ratios = [];
for (const r of results) {
  if (r.skipped) {
    console.log(`${r.model.padEnd(20)}skipped: ${r.skipped}`);
    table.push(r);
    ratios.push({
      id: `R8-${r.model}`,
      value: null,
      target: "≤ 1.03× direct",
      pass: null,
      detail: `skipped: ${r.skipped}`,
    });
    continue;
  }
  if (r.stream) {
    const streamRatio = r.stream.ratio;
    ratios.push({
      id: `R8-${r.model}-stream`,
      value: Math.round(streamRatio * 1000) / 1000,
      target: "≥ 0.95× direct streamed tokens/s (full API path, SSE)",
      pass: streamRatio >= 0.95,
      detail: `API stream ${r.stream.api.toFixed(0)} tokens/s vs direct ${r.stream.direct.toFixed(0)} tokens/s, first to last token; first token ${r.stream.apiFirstMs.toFixed(1)} ms after the create request vs ${r.stream.directFirstMs.toFixed(1)} ms direct; value is the median of per-round ratios, ${r.stream.rounds} rounds`,
    });
    console.log(
      `${`${r.model} stream`.padEnd(20)}${r.stream.direct.toFixed(0).padStart(9)}   tokens/s direct, ${r.stream.api.toFixed(0)} via API SSE: ${streamRatio.toFixed(3)}   ≥ 0.95   ${streamRatio >= 0.95 ? "PASS" : "FAIL"}`,
    );
  }
  const ratio = r.ratio;
  const pass = ratio <= 1.03;
  table.push({ ...r, ratio, target: 1.03, pass });
  ratios.push({
    id: `R8-${r.model}`,
    value: Math.round(ratio * 1000) / 1000,
    target: "≤ 1.03× the library called directly (full API path)",
    pass,
    detail: `API path ${r.api.toFixed(1)} ms vs direct ${r.direct.toFixed(1)} ms; predictor in process ${r.predictor.toFixed(1)} ms (${r.predictorRatio.toFixed(3)}×); value is the median of per-round ratios, ${r.rounds} rounds; the least an HTTP API adds here (the same client's create answered at once by bare node:http with a canned prediction, right after the direct call): ${r.nullMs.toFixed(2)} ms, ${(r.nullShare * 100).toFixed(1)} % of the direct call (${r.nullRounds} rounds); client: the SDK's predictions.create with wait; file outputs: ${values["file-outputs"] === "auto" ? "the server's default (≤ 1 MB inline as a data URI, decoded by the client)" : "downloaded from their URLs"}`,
  });
  console.log(
    `${r.model.padEnd(20)}${r.direct.toFixed(1).padStart(9)}   ${r.predictor.toFixed(1).padStart(12)}   ${r.api.toFixed(1).padStart(6)}   ${ratio.toFixed(3).padStart(9)}   ≤ 1.03   ${pass ? "PASS" : "FAIL"}     ${r.nullMs.toFixed(2)} ms = ${(r.nullShare * 100).toFixed(1)} %`,
  );
}
const { mkdir } = await import("node:fs/promises");
await mkdir(new URL("./results/", import.meta.url), { recursive: true });
await writeFile(
  new URL("./results/r8-models.json", import.meta.url),
  `${JSON.stringify({ results: table }, null, 2)}\n`,
);
await serverProcess.stop();
await nullProcess.stop();
console.log(JSON.stringify({ ratios }));
process.exit(0);
