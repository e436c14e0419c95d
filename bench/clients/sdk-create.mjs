// Sequential POST /v1/predictions calls, through the SDK or raw fetch. argv: sdk|fetch <base url> <N>.
// Prints {usPerCall, cpuUsPerCall} (cpuUsPerCall: this client process's CPU time per call).
import Replicant from "@replicant/sdk";

const [mode, base, countText] = process.argv.slice(2);
const count = Number(countText);
const token = "r8_bench";
const body = {
  version: "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",
  input: { text: "bench" },
};
let call;
if (mode === "sdk") {
  const client = new Replicant({ auth: token, baseUrl: `${base}/v1` });
  call = () => client.predictions.create(body);
} else {
  call = async () => {
    const response = await fetch(`${base}/v1/predictions`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  };
}
for (let i = 0; i < Math.min(500, count); i++) await call(); // warm-up
const cpuBefore = process.cpuUsage();
const started = performance.now();
for (let i = 0; i < count; i++) await call();
const usPerCall = ((performance.now() - started) * 1000) / count;
const cpu = process.cpuUsage(cpuBefore);
process.stdout.write(`${JSON.stringify({ usPerCall, cpuUsPerCall: (cpu.user + cpu.system) / count })}\n`);
