import { isTerminal, STREAM_RECONNECT_EVENT } from "@replicant/protocol";
import type { PredictionEvent, PredictionRecord } from "../backends/types.js";
import { predictionChannel } from "../context.js";
import { notFound } from "../errors.js";
import { addRoute, params, query } from "../http.js";
import { EventWriter } from "../sse-writer.js";
import type { RouteDeps } from "./deps.js";

const HEARTBEAT_MS = 15_000;

/**
 * Events waiting behind a catch-up (a store read) at most; past it the client is sent `reconnect`, so a
 * slow store cannot make a stream hold an unbounded queue (a reconnect reads the store again).
 */
const MAX_QUEUED_EVENTS = 1024;

/** Writes one server-sent event; multi-line data becomes several `data:` lines. */
function writeEvent(out: EventWriter, event: string, data: string, id: string): void {
  // One template for the common case (a streamed token): this runs once per event.
  if (!data.includes("\n")) {
    out.write(`event: ${event}\nid: ${id}\ndata: ${data}\n\n`, id);
    return;
  }
  let chunk = `event: ${event}\nid: ${id}\n`;
  for (const line of data.split("\n")) chunk += `data: ${line}\n`;
  out.write(`${chunk}\n`, id);
}

function outputText(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * `urls.stream`: SSE with Replicate's events `output`, `logs`, `error` and `done`. A late client gets
 * the output and logs so far, then live events; event ids are `<outputs>:<log bytes>`, so a client that
 * reconnects with Last-Event-ID resumes where it was. A client that falls too far behind (see
 * EventWriter) gets `reconnect` instead of the rest, and resumes that way.
 */
export function registerStreamRoutes({ app, table, ctx }: RouteDeps): void {
  addRoute(
    app,
    table,
    "GET",
    "/v1/predictions/:prediction_id/stream",
    async (request, reply) => {
      const id = params(request).prediction_id ?? "";
      const q = query(request);
      const nowSeconds = Math.floor(ctx.now().getTime() / 1000);
      const record = await ctx.store.getPrediction(id);
      const signed =
        q.expiry !== undefined &&
        q.signature !== undefined &&
        ctx.urls.verifyPredictionStream(id, q.expiry, q.signature, nowSeconds);
      if (!record || (!signed && request.account?.id !== record.account_id))
        throw notFound("Prediction not found");

      let outputsSent = 0;
      let logsSent = 0;
      const lastEventId = request.headers["last-event-id"];
      if (typeof lastEventId === "string") {
        const match = /^(\d+):(\d+)$/.exec(lastEventId);
        if (match) {
          outputsSent = Number(match[1]);
          logsSent = Number(match[2]);
        }
      }

      const buffered: PredictionEvent[] = [];
      let overflowed = false;
      let live: ((event: PredictionEvent) => void) | undefined;
      const unsubscribe = await ctx.bus.subscribe(predictionChannel(id), (event) => {
        if (event.type === "replay") return;
        if (live) live(event);
        else if (buffered.length < MAX_QUEUED_EVENTS) buffered.push(event);
        else overflowed = true;
      });
      // What a running prediction produced reaches the store at its next flush (up to 100 ms): its
      // director publishes it at once (a prefix from index and offset 0, written as soon as it comes,
      // ahead of any catch-up), so a reader that joined late does not wait for that flush. Not awaited:
      // on Redis that would hold the headers for a round trip; if it fails, the flush still comes.
      if (!isTerminal(record.status))
        void ctx.bus.publish(predictionChannel(id), { type: "replay" }).catch(() => undefined);

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        // Headers set by hooks (CORS, nosniff) are kept: hijack bypasses Fastify's reply.
        ...(reply.getHeaders() as Record<string, string>),
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      });
      // Send the headers now: a client waits for them to know the stream is open, and a prediction
      // with nothing to send yet would otherwise hold them until its first event or heartbeat.
      res.flushHeaders();
      let closed = false;
      const eventId = () => `${outputsSent}:${logsSent}`;
      const out = new EventWriter(
        res,
        { maxLagBytes: ctx.config.streamMaxLagBytes, maxStallMs: ctx.config.streamMaxStallMs },
        eventId(),
      );
      // A client with events waiting needs no keepalive.
      const heartbeat = setInterval(() => {
        if (out.idle) out.write(": keepalive\n\n");
      }, HEARTBEAT_MS);
      const close = () => {
        if (closed) return;
        closed = true;
        clearInterval(heartbeat);
        unsubscribe();
        out.end();
      };
      // Too far behind: nothing more is held for this client; it resumes from what reached its socket.
      const cut = () => {
        if (closed) return;
        closed = true;
        clearInterval(heartbeat);
        unsubscribe();
        buffered.length = 0;
        const data = JSON.stringify({
          reason: "client_behind",
          last_event_id: out.lastSentId,
          detail: "The client fell too far behind the stream; reconnect with Last-Event-ID to resume",
        });
        // No id: the client's last event id (the last event it received) is where it resumes.
        out.cut(`event: ${STREAM_RECONNECT_EVENT}\ndata: ${data}\n\n`);
      };
      out.onLag = cut;
      res.on("close", close);

      const sendOutput = (index: number, value: unknown) => {
        if (index < outputsSent) return;
        outputsSent = index + 1;
        writeEvent(out, "output", outputText(value), eventId());
      };
      // Outputs from `index` (a runner's batch, or what the store holds): the leading one-line strings
      // (streamed tokens, the hot path) go into one chunk, as a bare SSE writer would write them.
      const sendOutputs = (index: number, values: unknown[]) => {
        let i = Math.max(0, outputsSent - index);
        let chunk = "";
        const afterOutputs = `:${logsSent}\ndata: `;
        for (; i < values.length; i++) {
          const value = values[i];
          if (typeof value !== "string" || value.includes("\n")) break;
          outputsSent = index + i + 1;
          chunk += `event: output\nid: ${outputsSent}${afterOutputs}${value}\n\n`;
        }
        if (chunk !== "") out.write(chunk, eventId());
        for (; i < values.length; i++) sendOutput(index + i, values[i]);
      };
      const sendLogs = (offset: number, text: string) => {
        const end = offset + text.length;
        if (end <= logsSent) return;
        const fresh = text.slice(Math.max(0, logsSent - offset));
        logsSent = end;
        writeEvent(out, "logs", fresh.replace(/\n$/, ""), eventId());
      };
      const finish = (final: PredictionRecord) => {
        if (final.status === "succeeded") {
          if (Array.isArray(final.output) && final.streaming) sendOutputs(0, final.output);
          else if (outputsSent === 0 && final.output !== null) sendOutput(0, final.output);
          writeEvent(out, "done", "{}", eventId());
        } else if (final.status === "failed") {
          writeEvent(out, "error", JSON.stringify({ detail: final.error ?? "Prediction failed" }), eventId());
          writeEvent(out, "done", JSON.stringify({ reason: "error" }), eventId());
        } else {
          writeEvent(out, "done", JSON.stringify({ reason: "canceled" }), eventId());
        }
        close();
      };

      // The stored prefix first, then what arrived meanwhile, then live events.
      const current = (await ctx.store.getPrediction(id)) ?? record;
      if (current.logs) sendLogs(0, current.logs);
      if (current.streaming && Array.isArray(current.output)) sendOutputs(0, current.output);
      if (isTerminal(current.status)) return finish(current);
      // Events published before this client subscribed may not be flushed to the store yet: on a gap,
      // read the store again until it covers the gap, then go on with live events in order.
      const catchUp = async (outputIndex: number, logOffset: number) => {
        for (let tries = 0; tries < 100 && !closed; tries++) {
          const stored = await ctx.store.getPrediction(id);
          if (stored?.logs && logsSent < logOffset) sendLogs(0, stored.logs.slice(0, logOffset));
          if (stored && Array.isArray(stored.output)) {
            for (let i = outputsSent; i < Math.min(outputIndex, stored.output.length); i++)
              sendOutput(i, stored.output[i]);
          }
          if (outputsSent >= outputIndex && logsSent >= logOffset) return;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      };
      const deliver = async (event: PredictionEvent) => {
        if (closed) return;
        if (event.type === "output") {
          if (event.index > outputsSent) await catchUp(event.index, 0);
          sendOutput(event.index, event.value);
        } else if (event.type === "outputs") {
          if (event.index > outputsSent) await catchUp(event.index, 0);
          sendOutputs(event.index, event.values);
        } else if (event.type === "logs") {
          if (event.offset > logsSent) await catchUp(0, event.offset);
          sendLogs(event.offset, event.text);
        } else if (event.type === "done") {
          const final = await ctx.store.getPrediction(id);
          finish(final ?? current);
        }
      };
      let chain = Promise.resolve();
      let queued = 0;
      const handle = (event: PredictionEvent) => {
        // An output or logs event that continues what was sent (the common case, in order; or a replay of
        // a prefix) is written at once, even past a catch-up in the chain: it only appends to its sequence.
        // Anything else keeps its place in the chain.
        if (!closed) {
          if (event.type === "output" && event.index === outputsSent) {
            sendOutput(event.index, event.value);
            return;
          }
          if (event.type === "outputs" && event.index <= outputsSent) {
            sendOutputs(event.index, event.values);
            return;
          }
          if (event.type === "logs" && event.offset <= logsSent) {
            sendLogs(event.offset, event.text);
            return;
          }
        }
        if (closed) return;
        if (++queued > MAX_QUEUED_EVENTS) return cut();
        chain = chain
          .then(() => {
            queued--;
            return deliver(event);
          })
          .catch(close);
      };
      if (overflowed) return cut();
      for (const event of buffered) handle(event);
      buffered.length = 0;
      live = handle;
    },
    { public: true },
  );
}
