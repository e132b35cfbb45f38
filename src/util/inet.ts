/**
 * IPv4/IPv6 address text <-> bytes and the Internet checksum, pure. Addresses are kept as canonical
 * text everywhere (the form the daemon compares and logs) and converted at the wire boundary only.
 */
import { isIPv4, isIPv6 } from 'node:net';
export type IpFamily = 4 | 6;

/** Address length in bytes for a family. */
export function addressLength(family: IpFamily): 4 | 16 {
  return family === 4 ? 4 : 16;
}

/**
 * Address text -> network-order bytes, or null if `text` is not an address of `family`.
 * Zone ids (`fe80::1%eth0`) are refused: they are not part of the address on the wire.
 */
export function parseIp(text: string, family: IpFamily): Buffer | null {
  if (family === 4) return isIPv4(text) ? parseIpv4(text) : null;
  if (!isIPv6(text) || text.includes('%')) return null;
  return parseIpv6(text);
}

function parseIpv4(text: string): Buffer {
  return Buffer.from(text.split('.').map((part) => Number(part)));
}

/** Expects text already validated by isIPv6 (so `::` appears at most once, groups are hex). */
function parseIpv6(text: string): Buffer {
  const out = Buffer.alloc(16);
  let groupsText = text;
  // An embedded dotted quad (`::ffff:1.2.3.4`) fills the last 32 bits.
  let tail: Buffer | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail = parseIpv4(text.slice(lastColon + 1));
    groupsText = text.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = groupsText.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups =
    rest === undefined
      ? headGroups
      : [...headGroups, ...new Array<string>(8 - headGroups.length - restGroups.length).fill('0'), ...restGroups];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (tail) tail.copy(out, 12);
  return out;
}

/**
 * Network-order bytes -> canonical text: dotted quad for 4 bytes; for 16 bytes RFC 5952 form
 * (lower case, no leading zeros, the longest run of two or more zero groups — the first one on a
 * tie — shortened to `::`). IPv4-mapped addresses are written in hex like any other address:
 * VRRP never carries them and one spelling per address keeps comparisons simple.
 */
export function formatIp(bytes: Uint8Array): string {
  // Template, not Array.from().join(): several times faster, and connection sync formats every
  // client address of a 100,000-entry table dump (docs/hitless.md, the fresh-backup profile).
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new RangeError(`address must be 4 or 16 bytes, got ${bytes.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLen = 1; // a single zero group is not shortened (RFC 5952 §4.2.2)
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text of an address of `family`, or null if it is not one. */
export function canonicalIp(text: string, family: IpFamily): string | null {
  // A dotted quad isIPv4 accepts is already canonical (no leading zeros, each part 0..255): no
  // round trip through bytes.
  if (family === 4) return isIPv4(text) ? text : null;
  const bytes = parseIp(text, family);
  return bytes ? formatIp(bytes) : null;
}

/**
 * RFC 1071 Internet checksum over the concatenation of `parts` (an odd-length part carries its
 * dangling byte into the next). Over a message whose checksum field is correct the result is 0.
 */
export function internetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  let odd: number | undefined;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) {
      if (odd === undefined) odd = p[i]!;
      else {
        sum += (odd << 8) | p[i]!;
        odd = undefined;
      }
    }
  }
  if (odd !== undefined) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
