/**
 * The only way out of a sandbox whose version asked for network: an HTTP proxy on a unix socket that
 * applies the server's SSRF policy to every destination (CONNECT for TLS, absolute-form requests for
 * plain HTTP). The host name is resolved here, every answer checked, and a checked address dialled.
 */
import { chmodSync, chownSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { AddressPolicy, type PrivateAddressPolicy, parseIpLiteral } from "../net/address-policy.js";
import { type HostResolver, resolveAllowed, systemResolver, UrlRefusedError } from "../net/url-guard.js";

const MAX_HEAD_BYTES = 16 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;
const IDLE_TIMEOUT_MS = 5 * 60_000;
/** A request's head must arrive within this long (a runner must not hold proxy sockets by dripping). */
const HEAD_TIMEOUT_MS = 10_000;
/** Connections one version's runners may hold open through the proxy (each costs the server two sockets). */
const MAX_CONNECTIONS = 256;

export interface EgressProxyOptions {
  socketPath: string;
  allowPrivate: PrivateAddressPolicy;
  /** Who may connect to the socket: the version's runners (mode 0660, this group). */
  group?: number | undefined;
  lookup?: HostResolver;
}

export class EgressProxy {
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly socketPath: string,
  ) {}

  static async start(options: EgressProxyOptions): Promise<EgressProxy> {
    const policy = new AddressPolicy(options.allowPrivate);
    const resolve = options.lookup ?? systemResolver;
    rmSync(options.socketPath, { force: true });
    const server = createServer();
    server.maxConnections = MAX_CONNECTIONS;
    const proxy = new EgressProxy(server, options.socketPath);
    server.on("connection", (socket) => proxy.accept(socket, policy, resolve));
    await new Promise<void>((done, fail) => {
      server.once("error", fail);
      server.listen(options.socketPath, () => done());
    });
    if (options.group !== undefined) chownSync(options.socketPath, 0, options.group);
    chmodSync(options.socketPath, options.group !== undefined ? 0o660 : 0o600);
    return proxy;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((done) => this.server.close(() => done()));
    rmSync(this.socketPath, { force: true });
  }

  private accept(client: Socket, policy: AddressPolicy, resolve: HostResolver): void {
    this.sockets.add(client);
    client.on("close", () => this.sockets.delete(client));
    client.on("error", () => client.destroy());
    client.setTimeout(IDLE_TIMEOUT_MS, () => client.destroy());
    let head = Buffer.alloc(0);
    const headTimer = setTimeout(() => client.destroy(), HEAD_TIMEOUT_MS);
    client.once("close", () => clearTimeout(headTimer));
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > MAX_HEAD_BYTES) refuse(client, 431, "Request Header Fields Too Large", "");
        return;
      }
      client.off("data", onData);
      clearTimeout(headTimer);
      client.pause();
      const request = parseRequest(head.subarray(0, end).toString("latin1"));
      const rest = head.subarray(end + 4);
      if (!request) return refuse(client, 400, "Bad Request", "expected CONNECT or an absolute-form request");
      void this.open(client, request, rest, policy, resolve);
    };
    client.on("data", onData);
  }

  private async open(
    client: Socket,
    request: ProxyRequest,
    rest: Buffer,
    policy: AddressPolicy,
    resolve: HostResolver,
  ): Promise<void> {
    const checked = await checkedAddress(request.host, policy, resolve);
    if ("why" in checked) return refuse(client, 403, "Forbidden", checked.why);
    const upstream = connect({ host: checked.address, port: request.port, timeout: CONNECT_TIMEOUT_MS });
    this.sockets.add(upstream);
    upstream.on("close", () => {
      this.sockets.delete(upstream);
      client.destroy();
    });
    upstream.once("timeout", () => upstream.destroy());
    upstream.on("error", () => {
      if (!client.destroyed && client.bytesWritten === 0)
        refuse(client, 502, "Bad Gateway", `could not connect to ${request.host}:${request.port}`);
      upstream.destroy();
    });
    client.on("close", () => upstream.destroy());
    upstream.once("connect", () => {
      upstream.setTimeout(IDLE_TIMEOUT_MS);
      if (request.connect) client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      else upstream.write(request.forwardHead);
      if (rest.length > 0) upstream.write(rest);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  }
}

interface ProxyRequest {
  connect: boolean;
  host: string;
  port: number;
  /** Plain HTTP: the request's head in origin form, ready to send upstream. */
  forwardHead: string;
}

function parseRequest(head: string): ProxyRequest | undefined {
  const [line = "", ...headers] = head.split("\r\n");
  const match = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(line);
  if (!match) return undefined;
  const [, method = "", target = ""] = match;
  if (method === "CONNECT") {
    const at = target.lastIndexOf(":");
    const port = Number(target.slice(at + 1));
    const host = target.slice(0, at).replace(/^\[|\]$/g, "");
    if (at <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
    return { connect: true, host, port, forwardHead: "" };
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:") return undefined;
  const kept = headers.filter((h) => !/^proxy-/i.test(h));
  return {
    connect: false,
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: Number(url.port || 80),
    forwardHead: `${method} ${url.pathname}${url.search} HTTP/1.1\r\n${kept.join("\r\n")}\r\n\r\n`,
  };
}

/** The address to dial for `host`, checked by the SSRF policy, or why there is none. */
async function checkedAddress(
  host: string,
  policy: AddressPolicy,
  resolve: HostResolver,
): Promise<{ address: string } | { why: string }> {
  if (parseIpLiteral(host)) {
    const why = policy.check(host);
    return why ? { why } : { address: host };
  }
  try {
    const first = (await resolveAllowed(host, policy, resolve))[0];
    return first ? { address: first.address } : { why: `${host} has no address` };
  } catch (error) {
    return { why: error instanceof UrlRefusedError ? error.message : `${host} does not resolve` };
  }
}

function refuse(client: Socket, status: number, title: string, detail: string): void {
  if (client.destroyed) return;
  client.end(
    `HTTP/1.1 ${status} ${title}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${detail}\n`,
  );
}
