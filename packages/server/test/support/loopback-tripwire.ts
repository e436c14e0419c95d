import type { LookupAddress } from "node:dns";
import net from "node:net";

/**
 * A test safety net: while installed, any socket that would connect somewhere other than loopback is
 * stopped before it is dialled and recorded in `blocked`. Tests that feed public-looking addresses to
 * the code under test assert `blocked` stays empty, so a bug can never send a packet off this machine.
 */
export interface LoopbackTripwire {
  readonly blocked: string[];
  uninstall(): void;
}

export function isLoopbackAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, "").toLowerCase();
  if (net.isIPv4(bare)) return bare.startsWith("127.");
  if (bare === "::1") return true;
  return /^::ffff:127\./.test(bare);
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;
type Lookup = (hostname: string, options: object, callback: LookupCallback) => void;

interface ConnectOptions {
  host?: string;
  port?: number;
  path?: string;
  lookup?: Lookup;
}

export function installLoopbackTripwire(): LoopbackTripwire {
  const original = net.Socket.prototype.connect;
  const blocked: string[] = [];
  function guardedConnect(this: net.Socket, ...args: unknown[]): net.Socket {
    // net.connect passes its normalized [options, callback] array; tls.connect passes options.
    const first = Array.isArray(args[0]) ? args[0][0] : args[0];
    if (first && typeof first === "object") {
      const options = first as ConnectOptions;
      const host = options.host ?? "localhost";
      if (options.path === undefined || options.path === null) {
        if (net.isIP(host)) {
          if (!isLoopbackAddress(host)) return refuse(this, host);
        } else if (options.lookup) {
          const lookup = options.lookup;
          options.lookup = (hostname, lookupOptions, callback) => {
            lookup(hostname, lookupOptions, (error, address, family) => {
              if (error) return callback(error, address, family);
              const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address];
              const outside = addresses.find((a) => !isLoopbackAddress(a));
              if (outside !== undefined) {
                blocked.push(outside);
                return callback(new Error(`tripwire: refused to dial ${outside}`), "", 0);
              }
              callback(null, address, family);
            });
          };
        } else if (host !== "localhost") {
          return refuse(this, host);
        }
      }
    }
    return (original as (...a: unknown[]) => net.Socket).apply(this, args);
  }
  function refuse(socket: net.Socket, host: string): net.Socket {
    blocked.push(host);
    process.nextTick(() => socket.destroy(new Error(`tripwire: refused to dial ${host}`)));
    return socket;
  }
  net.Socket.prototype.connect = guardedConnect as typeof original;
  return {
    blocked,
    uninstall() {
      net.Socket.prototype.connect = original;
    },
  };
}
