// Sequential POST /v1/predictions calls through the SDK and through raw fetch, in one process, in
// alternating blocks (so the machine's drift falls on both alike). argv: <base url> <blocks> <calls per
// block>. Variants: sdk, fetch, and fetch again (fetch-aa, the A/A noise figure); for context the SDK made
// to use fetch (sdk-over-fetch: a fetch that is not Node's own, as a mocking library's, so the SDK cannot
// go to undici directly) and the replicate package (replicate). Prints, per variant,
// the median over blocks of {usPerCall, cpuUsPerCall} (cpuUsPerCall: this process's CPU time per call).
import Replicant from "@replicant/sdk";
import Replicate from "replicate";

const [base, blocksText, perBlockText] = process.argv.slice(2);
const blocks = Number(blocksText);
const perBlock = Number(perBlockText);
const token = "r8_bench";
const body = {
  version: "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",
  input: { text: "bench" },
};
const client = new Replicant({ auth: token, baseUrl: `${base}/v1` });
const overFetch = new Replicant({
  auth: token,
  baseUrl: `${base}/v1`,
  fetch: (input, init) => fetch(input, init),
});
const replicate = new Replicate({ auth: token, baseUrl: `${base}/v1` });
const rawFetch = async () => {
  const response = await fetch(`${base}/v1/predictions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
};
const variants = {
  sdk: () => client.predictions.create(body),
  fetch: rawFetch,
  "fetch-aa": rawFetch,
  "sdk-over-fetch": () => overFetch.predictions.create(body),
  replicate: () => replicate.predictions.create(body),
};
const names = Object.keys(variants);

for (const name of names) for (let i = 0; i < Math.min(500, perBlock); i++) await variants[name](); // warm-up
const samples = Object.fromEntries(names.map((name) => [name, { us: [], cpu: [] }]));
for (let block = 0; block < blocks; block++) {
  // Rotate the order so no variant always runs first after a switch.
  for (let k = 0; k < names.length; k++) {
    const name = names[(block + k) % names.length];
    const call = variants[name];
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < perBlock; i++) await call();
    const elapsedUs = (performance.now() - started) * 1000;
    const cpu = process.cpuUsage(cpuBefore);
    samples[name].us.push(elapsedUs / perBlock);
    samples[name].cpu.push((cpu.user + cpu.system) / perBlock);
  }
}
const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
const result = {};
for (const name of names) {
  result[name] = { usPerCall: median(samples[name].us), cpuUsPerCall: median(samples[name].cpu) };
}
process.stdout.write(`${JSON.stringify(result)}\n`);
