/**
 * The one endpoint vocabulary: addresses, endpoints (address + port), virtual-service matches and
 * their canonical keys. Config load makes every address canonical once (RFC 5952 for IPv6) and
 * builds these values; engines, the CLI, metrics and sync compare and print them, never re-parse
 * text with regular expressions. Pure: no I/O.
 */
import { canonicalIp, formatIp, parseIp, type IpFamily } from './inet.js';

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

/** A service with its canonical key (made once at config load). */
export interface VirtualService {
  readonly key: ServiceKey;
  readonly match: ServiceMatch;
}

/**
 * The key of a virtual server of a virtual_server_group: "tcp/group:web", "udp/group:dns". Not a
 * data-plane key (each member is a service of its own): the identity of the shared pool, its
 * health and its status entry.
 */
export type GroupKey = string & { readonly __groupKey: true };

/** A virtual server's identity: its one service's key, or the group key. */
export type VirtualServerKey = ServiceKey | GroupKey;

export function groupKey(protocol: L4Protocol, name: string): GroupKey {
  return `${protocol}/group:${name}` as GroupKey;
}

/** The names a virtual_server_group may have (they appear in keys, metrics labels and the CLI). */
export const GROUP_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

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
 * "tcp:ADDR:PORT", "fwmark:N" (IPv4; "fwmark6:N" for IPv6), "group:NAME" ("udp:group:NAME") for
 * a virtual server of a virtual_server_group; IPv6 addresses in brackets.
 * Returns the canonical key, or null when the text is not of that form.
 */
export function parseServiceArg(text: string): VirtualServerKey | null {
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
  const g = /^group:(.+)$/.exec(rest);
  if (g) return GROUP_NAME_RE.test(g[1]!) ? groupKey(protocol, g[1]!) : null;
  const e = parseEndpointText(rest);
  if (!e) return null;
  return serviceKey(addrMatch(protocol, e.address, e.port));
}

// ------------------------------------------------------------------------------------------------
// Address ranges and virtual_server_group members (keepalived's syntax).

/** The most addresses one range may stand for: each address is a service of its own. */
export const MAX_RANGE_ADDRESSES = 256;

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

const fail = (error: string): { ok: false; error: string } => ({ ok: false, error });

const toBig = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).toString('hex')}`);
const fromBig = (v: bigint, len: number): Buffer => Buffer.from(v.toString(16).padStart(len * 2, '0'), 'hex');

/**
 * keepalived's address ranges (virtual_server_group): "10.0.0.1" (one address), "10.0.0.1-10"
 * (the last byte up to 10; IPv6 "fd00::1-a", the last group up to 0xa), "10.0.0.250-10.0.1.10"
 * (two addresses), "10.0.0.8/29" (a network, host bits clear). Returns the canonical addresses in
 * order, at most `limit` of them.
 */
export function parseAddressRange(text: string, limit = MAX_RANGE_ADDRESSES): ParseResult<{ addresses: string[]; family: IpFamily }> {
  const slash = text.indexOf('/');
  let start: { address: string; family: IpFamily } | null;
  let first: bigint;
  let last: bigint;
  if (slash >= 0) {
    start = canonicalAddress(text.slice(0, slash));
    const prefixText = text.slice(slash + 1);
    if (!start) return fail(`${JSON.stringify(text.slice(0, slash))} is not an IP address`);
    const bits = start.family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) < 1 || Number(prefixText) > bits) return fail(`prefix length must be 1..${bits}, got ${JSON.stringify(prefixText)}`);
    const host = BigInt(bits - Number(prefixText));
    first = toBig(parseIp(start.address, start.family)!);
    if (first & ((1n << host) - 1n)) return fail(`${text} has host bits set (the network is ${formatIp(fromBig(first & ~((1n << host) - 1n), bits / 8))}/${prefixText})`);
    last = first + (1n << host) - 1n;
  } else {
    const dash = text.indexOf('-');
    const startText = dash < 0 ? text : text.slice(0, dash);
    start = canonicalAddress(startText);
    if (!start) return fail(`${JSON.stringify(startText)} is not an IP address`);
    const bytes = parseIp(start.address, start.family)!;
    first = toBig(bytes);
    if (dash < 0) {
      last = first;
    } else {
      const endText = text.slice(dash + 1);
      const full = canonicalAddress(endText);
      const end = Buffer.from(bytes);
      if (full) {
        if (full.family !== start.family) return fail(`${text}: both ends must be of one address family`);
        parseIp(full.address, full.family)!.copy(end);
      } else if (start.family === 4 && /^\d{1,3}$/.test(endText) && Number(endText) <= 255) {
        end[3] = Number(endText);
      } else if (start.family === 6 && /^[0-9a-fA-F]{1,4}$/.test(endText)) {
        end.writeUInt16BE(parseInt(endText, 16), 14);
      } else {
        return fail(`${JSON.stringify(endText)} is not the end of a range (${start.family === 4 ? 'the last byte 0..255' : 'the last group, hex'}, or a whole address)`);
      }
      last = toBig(end);
      if (last < first) return fail(`${text}: the end of the range is before its start`);
    }
  }
  const count = last - first + 1n;
  if (count > BigInt(limit)) return fail(`${text} stands for ${count} addresses; at most ${limit} per entry (each address is a service of its own)`);
  const len = start.family === 4 ? 4 : 16;
  const addresses: string[] = [];
  for (let v = first; v <= last; v++) addresses.push(formatIp(fromBig(v, len)));
  return { ok: true, value: { addresses, family: start.family } };
}

/** One member of a virtual_server_group, canonical; the protocol comes from the virtual server. */
export type GroupMember =
  | { readonly kind: 'addr'; readonly addresses: readonly string[]; readonly family: IpFamily; readonly port: number }
  | { readonly kind: 'fwmark'; readonly mark: number; readonly family: IpFamily };

/**
 * A member of a virtual_server_group: "ADDR:PORT", "[V6]:PORT", a range of addresses on a port
 * ("10.0.0.1-10:80", "10.0.0.8/29:80", "[fd00::1-9]:80"; see parseAddressRange) or a firewall
 * mark ("fwmark:N" for IPv4, "fwmark6:N" for IPv6, as the CLI spells them).
 */
export function parseGroupMember(text: string): ParseResult<GroupMember> {
  const fw = /^(fwmark6?):(\d{1,10})$/.exec(text);
  if (fw) {
    const mark = Number(fw[2]);
    if (mark < 1 || mark > 0xffffffff) return fail(`firewall mark must be 1..4294967295, got ${fw[2]}`);
    return { ok: true, value: { kind: 'fwmark', mark, family: fw[1] === 'fwmark6' ? 6 : 4 } };
  }
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  let rangeText: string;
  let portText: string | undefined;
  if (bracket) {
    rangeText = bracket[1]!;
    portText = bracket[2];
  } else if (text.includes('.') && !text.includes('::') && text.split(':').length <= 2) {
    [rangeText, portText] = text.split(':') as [string, string | undefined];
  } else if (canonicalAddress(text.split(/[-/]/)[0]!)?.family === 6) {
    return fail(`put IPv6 addresses in brackets: "[${text}]:PORT"`);
  } else {
    rangeText = text;
  }
  const range = parseAddressRange(rangeText);
  if (!range.ok) return range;
  if (portText === undefined || portText === '') {
    return fail(`${JSON.stringify(text)} needs a port, e.g. "${range.value.family === 6 ? `[${rangeText}]` : rangeText}:80" (a service for all ports is a firewall mark: "fwmark:N")`);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return fail(`port must be 1..65535, got ${JSON.stringify(portText)}`);
  return { ok: true, value: { kind: 'addr', addresses: range.value.addresses, family: range.value.family, port: Number(portText) } };
}

/** The services a member stands for under a virtual server of `protocol`. */
export function memberServices(m: GroupMember, protocol: L4Protocol): VirtualService[] {
  const matches: ServiceMatch[] = m.kind === 'fwmark'
    ? [{ kind: 'fwmark', mark: m.mark, family: m.family }]
    : m.addresses.map((address) => ({ kind: 'addr', protocol, address, family: m.family, ports: [{ from: m.port, to: m.port }] }));
  return matches.map((match) => ({ key: serviceKey(match), match }));
}
