// SSE parsing throughput on the same bytes: the SDK's parseSSEStream vs the replicate package's
// pipeline (TextDecoderStream + its vendored EventSourceParserStream, as lib/stream.js does).
// argv: sdk|replicate <MB>. Prints {mbPerSecond, events}.
import { createRequire } from "node:module";
import { parseSSEStream } from "@replicant/sdk";

const [which, mbText] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const { EventSourceParserStream } = require("replicate/vendor/eventsource-parser/stream.js");

const parts = [];
let size = 0;
for (let i = 0; size < Number(mbText ?? 16) * 1048576; i++) {
  const event =
    i % 10 === 9
      ? `event: logs\nid: ${i}:${i * 20}\ndata: emitting token ${i}\n\n`
      : `event: output\nid: ${i}:${i * 20}\ndata: token-${i} \n\n`;
  parts.push(event);
  size += event.length;
}
const bytes = new TextEncoder().encode(parts.join(""));
// 1 KB: live streams arrive an event or a few at a time. (The replicate parser slows down with larger
// chunks: 3.7 MB/s at 1 KB, 1.1 MB/s at 4 KB, far less at 64 KB, so this is its best case.)
const CHUNK = 1024;
const body = () =>
  new ReadableStream({
    start(controller) {
      for (let o = 0; o < bytes.length; o += CHUNK) controller.enqueue(bytes.subarray(o, o + CHUNK));
      controller.close();
    },
  });

async function run() {
  let events = 0;
  const started = performance.now();
  if (which === "sdk") {
    for await (const _event of parseSSEStream(body())) events++;
  } else {
    const stream = body().pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
    for await (const _event of stream) events++;
  }
  return { seconds: (performance.now() - started) / 1000, events };
}
await run(); // warm-up
const runs = [];
for (let i = 0; i < 3; i++) runs.push(await run());
runs.sort((a, b) => a.seconds - b.seconds);
const best = runs[1];
process.stdout.write(
  `${JSON.stringify({ mbPerSecond: bytes.length / 1048576 / best.seconds, events: best.events })}\n`,
);
