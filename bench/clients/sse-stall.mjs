// Opens N SSE streams on raw sockets and never reads their events (each socket is paused once its
// response headers are in). argv: <stream url> <token> <N>. Prints {opened, failed, seconds} once every
// stream is open, then holds them until SIGTERM.
import { connect } from "node:net";

const [url, token, countText] = process.argv.slice(2);
const count = Number(countText);
const target = new URL(url);
const request = `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`;
const started = performance.now();
const sockets = [];
let opened = 0;
const errors = new Map();
const fail = (why) => errors.set(why, (errors.get(why) ?? 0) + 1);
const open = () =>
  new Promise((resolve) => {
    const socket = connect(Number(target.port), target.hostname, () => socket.write(request));
    sockets.push(socket);
    let head = "";
    const timer = setTimeout(() => {
      fail("no headers after 10 s");
      resolve();
    }, 10_000);
    const onData = (chunk) => {
      head += chunk.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.pause();
      if (head.startsWith("HTTP/1.1 200")) opened++;
      else fail(head.slice(0, 12));
      resolve();
    };
    socket.on("data", onData);
    socket.on("error", (error) => {
      clearTimeout(timer);
      fail(error.code ?? error.message);
      resolve();
    });
  });
const WAVE = 250;
for (let i = 0; i < count; i += WAVE) {
  await Promise.all(Array.from({ length: Math.min(WAVE, count - i) }, open));
}
process.stdout.write(
  `${JSON.stringify({ opened, failed: Object.fromEntries(errors), seconds: (performance.now() - started) / 1000 })}\n`,
);
process.on("SIGTERM", () => {
  for (const socket of sockets) socket.destroy();
  process.exit(0);
});
setInterval(() => {}, 1 << 30);
