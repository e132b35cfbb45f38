import { isIP } from 'node:net';

export type AddressFamily = 4 | 6;

export interface ParsedAddress {
  /** Canonical text: dotted quad, or RFC 5952 compressed lower-case IPv6. */
  address: string;
  family: AddressFamily;
}

export interface ParsedCidr extends ParsedAddress {
  prefix: number;
}

export interface ListenAddress {
  host: string;
  port: number;
}

export function parseIp(text: string): ParsedAddress | undefined {
  const family = isIP(text);
  if (family === 4) return { address: text, family: 4 };
  // The WHATWG URL serializer produces the RFC 5952 form, so equal addresses compare equal as text.
  if (family === 6) return { address: new URL(`http://[${text}]/`).hostname.slice(1, -1), family: 6 };
  return undefined;
}

/** "addr" or "addr/prefix"; without a prefix the address is a host route (/32 or /128), as in keepalived. */
export function parseCidr(text: string): ParsedCidr | undefined {
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) return { ...ip, prefix: max };
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  return prefix <= max ? { ...ip, prefix } : undefined;
}

export function isMulticast(ip: ParsedAddress): boolean {
  if (ip.family === 6) return ip.address.startsWith('ff');
  const first = Number(ip.address.split('.')[0]);
  return first >= 224 && first <= 239;
}

/** "host:port" or "[v6]:port", the form metrics_listen uses. */
export function parseListen(text: string): ListenAddress | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  const host = m[1] ?? m[2]!;
  if (m[1] !== undefined && isIP(host) !== 6) return undefined;
  return { host, port };
}

/**
 * keepalived's persistence_granularity: a dotted netmask for IPv4, a prefix length for IPv6.
 * Returns the prefix length, or undefined if the mask is not contiguous / out of range.
 */
export function granularityPrefix(text: string, family: AddressFamily): number | undefined {
  if (family === 6) {
    if (!/^\d{1,3}$/.test(text)) return undefined;
    const n = Number(text);
    return n >= 1 && n <= 128 ? n : undefined;
  }
  if (isIP(text) !== 4) return undefined;
  const bits = text
    .split('.')
    .map((o) => Number(o).toString(2).padStart(8, '0'))
    .join('');
  if (!/^1*0*$/.test(bits)) return undefined;
  const firstZero = bits.indexOf('0');
  return firstZero === -1 ? 32 : firstZero;
}

/**
 * "host", "host:port", "[ipv6]:port" or a bare IPv6 address (keepalived's `smtp_server HOST [PORT]`);
 * host is an IP address or a DNS name. `defaultPort` fills in a missing port.
 */
export function parseHostPort(text: string, defaultPort: number): ListenAddress | undefined {
  if (isIP(text) !== 0) return { host: parseIp(text)!.address, port: defaultPort };
  const withPort = parseListen(text);
  if (withPort) return isIP(withPort.host) !== 0 || isHostName(withPort.host) ? withPort : undefined;
  const bracketed = /^\[([^\]]+)\]$/.exec(text);
  if (bracketed && isIP(bracketed[1]!) === 6) return { host: parseIp(bracketed[1]!)!.address, port: defaultPort };
  return isHostName(text) ? { host: text, port: defaultPort } : undefined;
}

function isHostName(text: string): boolean {
  return text.length <= 253 && /^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i.test(text);
}
