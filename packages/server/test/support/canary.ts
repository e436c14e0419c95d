import net from "node:net";

/**
 * A loopback TCP listener that counts accepted connections. SSRF tests point refused URLs at its port
 * and assert the count stays 0. It listens on 127.0.0.1, 127.0.0.2 and ::1 on the same port (where
 * the machine allows), so a leak through any loopback spelling would be seen.
 */
export interface Canary {
  readonly port: number;
  readonly connections: number;
  close(): Promise<void>;
}

function listen(server: net.Server, host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onError = () => resolve(false);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve(true);
    });
  });
}

export async function startCanary(): Promise<Canary> {
  let connections = 0;
  const make = () =>
    net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
  for (let attempt = 0; attempt < 20; attempt++) {
    const primary = make();
    await listen(primary, "127.0.0.1", 0);
    const address = primary.address();
    const port = typeof address === "object" && address ? address.port : 0;
    const servers = [primary];
    let ok = true;
    for (const host of ["127.0.0.2", "::1"]) {
      const extra = make();
      if (await listen(extra, host, port)) servers.push(extra);
      else if (host === "127.0.0.2") ok = false;
    }
    if (!ok) {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      continue;
    }
    return {
      port,
      get connections() {
        return connections;
      },
      close: async () => {
        await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      },
    };
  }
  throw new Error("could not start the canary");
}
