// Reads one SSE stream and counts its events until `done`. argv: <stream url> <token|-> <produce url|->.
// With a produce URL, the events are triggered once the stream's headers have arrived. The clock runs
// from the first chunk of events to `done`, for the API and the floor alike (what it took to start
// producing, a request to the control port for the API, is not the stream's rate). Prints
// {events, seconds, eventsPerSecond, bytes}.
import { get, request } from "node:http";

const [url, token, produce] = process.argv.slice(2);
const headers = { accept: "text/event-stream" };
if (token && token !== "-") headers.authorization = `Bearer ${token}`;
const result = await new Promise((resolve, reject) => {
  let started;
  const req = request(url, { headers }, (res) => {
    if (res.statusCode !== 200) return reject(new Error(`stream: HTTP ${res.statusCode}`));
    let events = 0;
    let bytes = 0;
    let last = "";
    res.setEncoding("utf8");
    res.on("data", (chunk) => {
      started ??= performance.now();
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
    if (produce && produce !== "-") get(produce, (r) => r.resume()).on("error", reject);
  });
  req.on("error", reject);
  req.end();
});
process.stdout.write(`${JSON.stringify(result)}\n`);
