// Opens N SSE streams (one socket each) and holds them open. argv: <stream url> <token> <N>.
// Prints {opened, seconds} once every stream has its response headers, then waits for SIGTERM.
import { Agent, request } from "node:http";

const [url, token, countText] = process.argv.slice(2);
const count = Number(countText);
const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
const started = performance.now();
let opened = 0;
const errors = new Map();
const fail = (error) =>
  errors.set(error.code ?? error.message, (errors.get(error.code ?? error.message) ?? 0) + 1);
const open = () =>
  new Promise((resolve) => {
    const req = request(
      url,
      { agent, headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" } },
      (res) => {
        clearTimeout(timer);
        if (res.statusCode !== 200) fail(new Error(`HTTP ${res.statusCode}`));
        else opened++;
        res.resume();
        resolve();
      },
    );
    const timer = setTimeout(() => {
      fail(new Error("no headers after 10 s"));
      resolve();
    }, 10_000);
    req.on("error", (error) => {
      clearTimeout(timer);
      fail(error);
      resolve();
    });
    req.end();
  });
const WAVE = 250;
for (let i = 0; i < count; i += WAVE) {
  await Promise.all(Array.from({ length: Math.min(WAVE, count - i) }, open));
}
process.stdout.write(
  `${JSON.stringify({ opened, failed: Object.fromEntries(errors), seconds: (performance.now() - started) / 1000 })}\n`,
);
process.on("SIGTERM", () => process.exit(0));
setInterval(() => {}, 1 << 30);
