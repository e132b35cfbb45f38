/**
 * The one endpoint vocabulary: addresses, endpoints (address + port), virtual-service matches and
 * their canonical keys. Config load makes every address canonical once (RFC 5952 for IPv6) and
 * builds these values; engines, the CLI, metrics and sync compare and print them, never re-parse
 * text with regular expressions. Pure: no I/O.
 */
import { canonicalIp, type IpFamily } from './inet.js';

export type { IpFamily } from './inet.js';

export type L4Protocol = 'tcp' | 'udp';

/** An IP address and a port. `address` is canonical text; port 0 = "the packet's own port" (fwmark / port-set services). */
export interface Endpoint {
  readonly address: string;
  readonly family: IpFamily;
  readonly port: number;
}

/** An inclusive port range; a single port is { from: p, to: p }. */
export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/** How a virtual service matches traffic: an address with one or more ports/ranges, or a firewall mark. */
export type ServiceMatch =
  | {
      readonly kind: 'addr';
      readonly protocol: L4Protocol;
      readonly address: string;
      readonly family: IpFamily;
      /** Sorted, non-overlapping; most services have exactly one single-port range. */
      readonly ports: readonly PortRange[];
    }
  | { readonly kind: 'fwmark'; readonly mark: number; readonly family: IpFamily };

/**
 * Canonical service key, e.g. "tcp/10.0.0.50:80", "udp/[fd00::50]:53", "tcp/10.0.0.50:21,10000-20000",
 * "fwmark/1" (IPv4) or "fwmark6/1" (IPv6). Equal services have equal keys however the config spelled them.
 */
export type ServiceKey = string & { readonly __serviceKey: true };

/** Canonical address text of either family, or null. */
export function canonicalAddress(text: string): { address: string; family: IpFamily } | null {
  const v4 = canonicalIp(text, 4);
  if (v4 !== null) return { address: v4, family: 4 };
  const v6 = canonicalIp(text, 6);
  return v6 === null ? null : { address: v6, family: 6 };
}

/** An endpoint with a canonical address; throws RangeError on a bad address or port. */
export function endpoint(address: string, port: number): Endpoint {
  const a = canonicalAddress(address);
  if (!a) throw new RangeError(`not an IP address: ${JSON.stringify(address)}`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`not a port: ${port}`);
  return { address: a.address, family: a.family, port };
}

/** "10.0.0.1" / "fd00::1" for port 0, else "10.0.0.1:80" / "[fd00::1]:80". */
export function endpointText(e: Pick<Endpoint, 'address' | 'port'>): string {
  const v6 = e.address.includes(':');
  if (e.port === 0) return e.address;
  return v6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** Parses "ADDR:PORT", "[V6]:PORT" (or a bare address when `allowNoPort`, giving port 0). */
export function parseEndpointText(text: string, allowNoPort = false): Endpoint | null {
  const bracket = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  let addr: string;
  let portText: string | undefined;
  if (bracket) {
    addr = bracket[1]!;
    portText = bracket[2];
  } else if (text.split(':').length === 2) {
    [addr, portText] = text.split(':') as [string, string];
  } else {
    addr = text;
    portText = undefined;
  }
  const a = canonicalAddress(addr);
  if (!a) return null;
  if (portText === undefined) return allowNoPort ? { ...a, port: 0 } : null;
  if (!/^\d{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port < 1 || port > 65535) return null;
  return { ...a, port };
}

export function endpointsEqual(a: Endpoint, b: Endpoint): boolean {
  return a.address === b.address && a.port === b.port;
}

function portsText(ports: readonly PortRange[]): string {
  return ports.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`)).join(',');
}

/** The canonical key of a service match. */
export function serviceKey(m: ServiceMatch): ServiceKey {
  if (m.kind === 'fwmark') return `${m.family === 4 ? 'fwmark' : 'fwmark6'}/${m.mark}` as ServiceKey;
  const addr = m.family === 6 ? `[${m.address}]` : m.address;
  return `${m.protocol}/${addr}:${portsText(m.ports)}` as ServiceKey;
}

/** Whether `port` is one of the service's ports (always true for fwmark services). */
export function matchesPort(m: ServiceMatch, port: number): boolean {
  return m.kind === 'fwmark' || m.ports.some((r) => port >= r.from && port <= r.to);
}

/** A single-port address service, the common case. */
export function addrMatch(protocol: L4Protocol, address: string, port: number): ServiceMatch {
  const e = endpoint(address, port);
  return { kind: 'addr', protocol, address: e.address, family: e.family, ports: [{ from: port, to: port }] };
}

/** The one port of a single-port service, else undefined (port sets and fwmark services). */
export function singlePort(m: ServiceMatch): number | undefined {
  return m.kind === 'addr' && m.ports.length === 1 && m.ports[0]!.from === m.ports[0]!.to ? m.ports[0]!.from : undefined;
}

/**
 * ipvsadm's way of naming a service: "TCP  10.0.0.50:80", "UDP  [fd00::50]:53", "FWM  1",
 * "TCP  10.0.0.50:21,10000-20000" (the last is ours: IPVS has no port sets).
 */
export function ipvsadmServiceText(m: ServiceMatch): string {
  if (m.kind === 'fwmark') return `FWM  ${m.mark}${m.family === 6 ? ' IPv6' : ''}`;
  const addr = m.family === 6 ? `[${m.address}]` : m.address;
  return `${m.protocol.toUpperCase()}  ${addr}:${portsText(m.ports)}`;
}

/**
 * The CLI's service argument (`keepalive-ts weight <vs> ...`): "ADDR:PORT" (TCP), "udp:ADDR:PORT",
 * "tcp:ADDR:PORT", "fwmark:N" (IPv4; "fwmark6:N" for IPv6); IPv6 addresses in brackets.
 * Returns the canonical key, or null when the text is not of that form.
 */
export function parseServiceArg(text: string): ServiceKey | null {
  const fw = /^(fwmark6?):(\d{1,10})$/.exec(text);
  if (fw) {
    const mark = Number(fw[2]);
    if (mark < 1 || mark > 0xffffffff) return null;
    return serviceKey({ kind: 'fwmark', mark, family: fw[1] === 'fwmark6' ? 6 : 4 });
  }
  let protocol: L4Protocol = 'tcp';
  let rest = text;
  // IPv6 addresses must be bracketed, so a leading "tcp:"/"udp:" is always the protocol.
  const p = /^(tcp|udp):(.*)$/i.exec(text);
  if (p) {
    protocol = p[1]!.toLowerCase() as L4Protocol;
    rest = p[2]!;
  }
  const e = parseEndpointText(rest);
  if (!e) return null;
  return serviceKey(addrMatch(protocol, e.address, e.port));
}
