// Reads one SSE stream and counts its events until `done`. argv: <stream url> <token|-> <produce url|->.
// With a produce URL, the events are triggered once the stream's headers have arrived. Prints
// {events, seconds, eventsPerSecond, bytes}.
import { request } from "node:http";

const [url, token, produce] = process.argv.slice(2);
const headers = { accept: "text/event-stream" };
if (token && token !== "-") headers.authorization = `Bearer ${token}`;
const result = await new Promise((resolve, reject) => {
  let started = performance.now();
  const req = request(url, { headers }, (res) => {
    if (res.statusCode !== 200) return reject(new Error(`stream: HTTP ${res.statusCode}`));
    let events = 0;
    let bytes = 0;
    let last = "";
    res.setEncoding("utf8");
    res.on("data", (chunk) => {
      bytes += chunk.length;
      const text = last + chunk;
      let i = text.indexOf("\n\n");
      while (i >= 0) {
        events++;
        i = text.indexOf("\n\n", i + 2);
      }
      last = text.endsWith("\n") && !text.endsWith("\n\n") ? "\n" : "";
      if (text.includes("event: done")) {
        const seconds = (performance.now() - started) / 1000;
        resolve({ events, seconds, eventsPerSecond: events / seconds, bytes });
        req.destroy();
      }
    });
    if (produce && produce !== "-") {
      started = performance.now();
      fetch(produce).catch(reject);
    }
  });
  req.on("error", reject);
  req.end();
});
process.stdout.write(`${JSON.stringify(result)}\n`);
