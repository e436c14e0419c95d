import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

/**
 * Which non-public addresses outbound requests (webhooks, input files) may reach.
 * - `false` (default): only public unicast addresses.
 * - `true`: anything (local development against services on this machine or network).
 * - a list of CIDRs or single addresses, e.g. `["127.0.0.1/32", "10.1.0.0/16"]`: public addresses plus
 *   these; everything else stays refused.
 */
export type PrivateAddressPolicy = boolean | readonly string[];

type Address = ipaddr.IPv4 | ipaddr.IPv6;

const RANGE_DESCRIPTIONS: Record<string, string> = {
  loopback: "a loopback address",
  private: "a private network address",
  linkLocal: "a link-local address (this range holds cloud metadata services)",
  uniqueLocal: "a private (unique local) IPv6 address",
  carrierGradeNat: "a carrier-grade NAT address",
  multicast: "a multicast address",
  broadcast: "the broadcast address",
  unspecified: "the unspecified address (it reaches this machine)",
  reserved: "a reserved address",
  teredo: "a Teredo tunnel address",
};

/** Parses an IP literal, with or without IPv6 brackets; undefined when it is not one. */
export function parseIpLiteral(host: string): Address | undefined {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  // net.isIP is strict (no "127.1" or "0x7f.1"): only canonical forms reach ipaddr.js.
  if (isIP(bare) === 0) return undefined;
  try {
    return ipaddr.parse(bare);
  } catch {
    return undefined;
  }
}

/**
 * The IPv4 address an IPv6 address stands for, when it embeds one: IPv4-mapped (::ffff:a.b.c.d),
 * IPv4-compatible (::a.b.c.d), NAT64 well-known prefix (64:ff9b::/96) and 6to4 (2002:aabb:ccdd::).
 */
export function embeddedIpv4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const p = address.parts;
  const fromWords = (high: number, low: number) =>
    new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
  if (address.isIPv4MappedAddress()) return address.toIPv4Address();
  if (p[0] === 0x64 && p[1] === 0xff9b && p[2] === 0 && p[3] === 0 && p[4] === 0 && p[5] === 0) {
    return fromWords(p[6] ?? 0, p[7] ?? 0);
  }
  if (p[0] === 0x2002) return fromWords(p[1] ?? 0, p[2] ?? 0);
  if (p.slice(0, 6).every((word) => word === 0) && ((p[6] ?? 0) !== 0 || (p[7] ?? 0) > 1)) {
    return fromWords(p[6] ?? 0, p[7] ?? 0);
  }
  return undefined;
}

function describeRange(range: string): string {
  return RANGE_DESCRIPTIONS[range] ?? `a non-public address (${range})`;
}

function parseAllowList(list: readonly string[]): [Address, number][] {
  return list.map((entry) => {
    if (ipaddr.isValidCIDR(entry)) return ipaddr.parseCIDR(entry);
    const single = parseIpLiteral(entry);
    if (!single) throw new Error(`Invalid address or CIDR in the private address allowlist: ${entry}`);
    return [single, single.kind() === "ipv4" ? 32 : 128];
  });
}

function inList(address: Address, list: [Address, number][]): boolean {
  return list.some(([network, bits]) => network.kind() === address.kind() && address.match(network, bits));
}

/** Decides whether an address may be dialled. Build once per policy; `check` is cheap. */
export class AddressPolicy {
  private readonly allowAll: boolean;
  private readonly allowList: [Address, number][];

  constructor(policy: PrivateAddressPolicy) {
    this.allowAll = policy === true;
    this.allowList = Array.isArray(policy) ? parseAllowList(policy) : [];
  }

  get allowsEverything(): boolean {
    return this.allowAll;
  }

  /** Undefined when the address is allowed; otherwise why not, e.g. "127.0.0.1 is a loopback address". */
  check(literal: string): string | undefined {
    if (this.allowAll) return undefined;
    const address = parseIpLiteral(literal);
    if (!address) return `${literal} is not an IP address`;
    const embedded = address.kind() === "ipv6" ? embeddedIpv4(address as ipaddr.IPv6) : undefined;
    const judged: Address = embedded ?? address;
    const shown = address.kind() === "ipv6" ? (address as ipaddr.IPv6).toRFC5952String() : address.toString();
    if (inList(address, this.allowList) || (embedded && inList(embedded, this.allowList))) return undefined;
    const range = judged.range();
    if (range === "unicast") return undefined;
    const via = embedded ? ` (it embeds ${embedded.toString()})` : "";
    return `${shown} is ${describeRange(range)}${via}`;
  }

  /**
   * `localhost` and `*.localhost` always mean this machine (RFC 6761), whatever a resolver says, so
   * they are judged as the loopback addresses.
   */
  checkLocalhostName(hostname: string): string | undefined {
    if (!isLocalhostName(hostname)) return undefined;
    if (this.check("127.0.0.1") === undefined || this.check("::1") === undefined) return undefined;
    return `${hostname} is this machine (a loopback name)`;
  }
}

export function isLocalhostName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.+$/, "");
  return name === "localhost" || name.endsWith(".localhost");
}
