import type { IncomingMessage, Server, ServerOptions, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { PROBLEM_CONTENT_TYPE } from "@replicant/protocol";
import type { ServerConfig } from "./config.js";

/**
 * How often Node looks for connections past `headersTimeout`/`requestTimeout` (its default, 30 s, lets a
 * slowloris socket live up to 30 s past the timeout), and how often slow bodies are looked for.
 */
function checkIntervalMs(config: ServerConfig): number {
  const drip = config.bodyDripFloor === false ? 1000 : config.bodyDripFloor.windowMs;
  return Math.max(50, Math.floor(Math.min(1000, config.headersTimeoutMs / 4, drip / 4)));
}

/**
 * The Fastify options that bound a request's arrival: headers within `headersTimeoutMs`, the whole
 * request within `requestTimeoutMs` (only the request: SSE and `Prefer: wait` responses are not bounded,
 * nor are keep-alive sockets between requests, which `keepAliveTimeout` closes).
 */
export function requestTimeoutOptions(config: ServerConfig): {
  requestTimeout: number;
  http: ServerOptions;
  clientErrorHandler: (error: Error & { code?: string }, socket: Socket) => void;
} {
  return {
    requestTimeout: config.requestTimeoutMs,
    http: {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      connectionsCheckingInterval: checkIntervalMs(config),
    },
    clientErrorHandler,
  };
}

/** Requests Node rejects before they reach a route (timeouts, malformed or oversized headers): problem+json. */
function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  if (error.code === "ERR_HTTP_REQUEST_TIMEOUT")
    rejectConnection(socket, 408, "Request Timeout", "The request did not arrive in time");
  else if (error.code === "HPE_HEADER_OVERFLOW")
    rejectConnection(socket, 431, "Request Header Fields Too Large", "The request headers are too large");
  else rejectConnection(socket, 400, "Bad request", "The request is not valid HTTP");
}

/** Answers with a problem (unless a response already started on the socket) and closes the connection. */
function rejectConnection(socket: Socket, status: number, title: string, detail: string): void {
  // Node's own rule: bytes written after a response's headers would corrupt it.
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const body = JSON.stringify({ title, detail, status });
    socket.write(
      `HTTP/1.1 ${status} ${title}\r\ncontent-type: ${PROBLEM_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

interface WatchedBody {
  socket: Socket;
  windowStart: number;
  bytesAtStart: number;
}

/**
 * Node bounds a body only by `requestTimeout`; a client dripping a byte a second holds a connection (and
 * whatever reads the body) that long. A body that delivers fewer than `floor.bytes` in a window of
 * `floor.windowMs`, and is not complete, is answered 408 and its connection closed. A body the server has
 * not read yet (bytes waiting in the request) starts a new window: that stall is ours, not the client's.
 * Per request: one map entry, for requests that have a body; one interval sweeps them all.
 */
export function watchRequestBodies(server: Server, config: ServerConfig): () => void {
  const floor = config.bodyDripFloor;
  if (floor === false) return () => {};
  const watched = new Map<IncomingMessage, WatchedBody>();
  const onRequest = (request: IncomingMessage) => {
    const length = request.headers["content-length"];
    if (length === undefined ? request.headers["transfer-encoding"] === undefined : length === "0") return;
    watched.set(request, {
      socket: request.socket,
      windowStart: performance.now(),
      bytesAtStart: request.socket.bytesRead,
    });
  };
  const sweep = () => {
    const now = performance.now();
    for (const [request, body] of watched) {
      if (request.complete || body.socket.destroyed) {
        watched.delete(request);
      } else if (request.readableLength > 0) {
        body.windowStart = now;
        body.bytesAtStart = body.socket.bytesRead;
      } else if (now - body.windowStart >= floor.windowMs) {
        if (body.socket.bytesRead - body.bytesAtStart < floor.bytes) {
          watched.delete(request);
          rejectConnection(
            body.socket,
            408,
            "Request Timeout",
            `The request body arrived slower than ${floor.bytes} bytes in ${floor.windowMs / 1000} s`,
          );
        } else {
          body.windowStart = now;
          body.bytesAtStart = body.socket.bytesRead;
        }
      }
    }
  };
  server.on("request", onRequest);
  const timer = setInterval(sweep, checkIntervalMs(config));
  timer.unref();
  return () => {
    clearInterval(timer);
    server.off("request", onRequest);
    watched.clear();
  };
}
