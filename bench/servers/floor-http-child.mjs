// R3's floor for a predictor isolated in a process: bare node:http that hands each POST's input to a
// child process over Node's IPC channel (JSON serialization, as the runner host uses) and answers with
// what the child sends back; the child echoes it. No validation, no predictor, no Cog response fields:
// the least one round trip to a predictor's process costs a request on this machine.
import { fork } from "node:child_process";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";

if (process.argv[2] === "child") {
  process.on("message", (message) => process.send({ id: message.id, output: message.input }));
  process.on("disconnect", () => process.exit(0));
} else {
  const child = fork(fileURLToPath(import.meta.url), ["child"], { serialization: "json" });
  const waiting = new Map();
  let nextId = 0;
  child.on("message", ({ id, output }) => {
    const res = waiting.get(id);
    waiting.delete(id);
    const body = JSON.stringify({ status: "succeeded", output });
    res.writeHead(200, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
    });
    res.end(body);
  });
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      const id = nextId++;
      waiting.set(id, res);
      child.send({ id, input: JSON.parse(Buffer.concat(chunks).toString("utf8")).input });
    });
  });
  server.keepAliveTimeout = 72_000;
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address();
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
  });
  process.on("SIGTERM", () => {
    child.kill();
    process.exit(0);
  });
}
