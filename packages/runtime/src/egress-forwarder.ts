/**
 * Inside a sandbox whose only way out is the server's egress proxy (a unix socket): a loopback listener
 * at the port HTTP_PROXY names, piping each connection to that socket, so proxy-aware clients work
 * unchanged. Started by the runner child before the predictor loads.
 */
import { connect, createServer } from "node:net";

/** The port of the proxy inside a sandbox (its network namespace is private, so the port is free). */
export const EGRESS_PROXY_PORT = 3128;

export function startEgressForwarder(socketPath: string): Promise<void> {
  const server = createServer((client) => {
    const upstream = connect(socketPath);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.unref();
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(EGRESS_PROXY_PORT, "127.0.0.1", () => resolve());
  });
}
