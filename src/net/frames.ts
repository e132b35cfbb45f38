/**
 * Pure builders/parsers for the frames a VRRP master announces itself with, matching what
 * keepalived puts on the wire (vrrp_arp.c / vrrp_ndisc.c):
 *  - gratuitous ARP: Ethernet broadcast, ARP *request*, sender IP == target IP == VIP, target
 *    hardware address ff:ff:ff:ff:ff:ff, no padding (42 bytes; NIC drivers pad short frames);
 *  - unsolicited NA: to 33:33:00:00:00:01 / ff02::1, hop limit 255, sourced from the VIP itself,
 *    Override set, Solicited clear, Router = whether the host forwards IPv6, with a target
 *    link-layer address option.
 * Parsers never throw: they return null for anything that is not a well-formed frame of their kind.
 */

import { formatIp, internetChecksum, parseIp } from '../util/inet.js';

export const ETH_BROADCAST = 'ff:ff:ff:ff:ff:ff';
export const ETH_ALL_NODES = '33:33:00:00:00:01';
export const IPV6_ALL_NODES = 'ff02::1';

const ETHERTYPE_ARP = 0x0806;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ARPHRD_ETHER = 1;
const ARPOP_REQUEST = 1;
const IPPROTO_ICMPV6 = 58;
const ND_NEIGHBOR_ADVERT = 136;
const ND_OPT_TARGET_LL_ADDR = 2;
const NA_FLAG_ROUTER = 0x80;
const NA_FLAG_SOLICITED = 0x40;
const NA_FLAG_OVERRIDE = 0x20;

const ETH_HLEN = 14;
const ARP_LEN = 28;
const IPV6_HLEN = 40;
const NA_LEN = 24; // type, code, checksum, flags+reserved, target
const NA_OPT_LEN = 8; // type, length (in 8-octet units), 6-byte MAC

// ---------------------------------------------------------------- address helpers

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function macToBuffer(mac: string): Buffer {
  if (!MAC_RE.test(mac)) throw new TypeError(`invalid MAC address: ${mac}`);
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export function macToString(buf: Uint8Array): string {
  return Array.from(buf.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

function parseOrThrow(ip: string, family: 4 | 6): Buffer {
  const b = parseIp(ip, family);
  if (!b) throw new TypeError(`invalid IPv${family} address: ${ip}`);
  return b;
}

export function ipv4ToBuffer(ip: string): Buffer {
  return parseOrThrow(ip, 4);
}

export function ipv4ToString(buf: Uint8Array): string {
  return formatIp(buf.subarray(0, 4));
}

/** Parses any RFC 4291 textual IPv6 address (with "::" and an optional dotted-quad tail). */
export function ipv6ToBuffer(ip: string): Buffer {
  return parseOrThrow(ip, 6);
}

/** RFC 5952 canonical text: lowercase, longest run (>= 2) of zero groups compressed. */
export function ipv6ToString(buf: Uint8Array): string {
  return formatIp(buf.subarray(0, 16));
}

// ---------------------------------------------------------------- checksums

export { internetChecksum };

/** Checksum of an upper-layer payload with the IPv6 pseudo-header (RFC 8200 8.1). */
export function ipv6PseudoChecksum(src: Uint8Array, dst: Uint8Array, nextHeader: number, payload: Uint8Array): number {
  const pseudo = Buffer.alloc(8);
  pseudo.writeUInt32BE(payload.length, 0);
  pseudo[7] = nextHeader;
  return internetChecksum(src, dst, pseudo, payload);
}

// ---------------------------------------------------------------- ARP

export function buildGarp(srcMac: string, ip: string): Buffer {
  const mac = macToBuffer(srcMac);
  const addr = ipv4ToBuffer(ip);
  const f = Buffer.alloc(ETH_HLEN + ARP_LEN);
  macToBuffer(ETH_BROADCAST).copy(f, 0);
  mac.copy(f, 6);
  f.writeUInt16BE(ETHERTYPE_ARP, 12);
  f.writeUInt16BE(ARPHRD_ETHER, 14);
  f.writeUInt16BE(ETHERTYPE_IPV4, 16);
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(ARPOP_REQUEST, 20);
  mac.copy(f, 22); // sender hardware address
  addr.copy(f, 28); // sender IP = VIP
  f.fill(0xff, 32, 38); // target hardware address: broadcast, as keepalived does
  addr.copy(f, 38); // target IP = VIP (gratuitous)
  return f;
}

export interface ArpFrame {
  ethDst: string;
  ethSrc: string;
  op: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

export function parseArp(frame: Uint8Array): ArpFrame | null {
  if (frame.length < ETH_HLEN + ARP_LEN) return null;
  const b = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (b.readUInt16BE(12) !== ETHERTYPE_ARP) return null;
  if (b.readUInt16BE(14) !== ARPHRD_ETHER || b.readUInt16BE(16) !== ETHERTYPE_IPV4 || b[18] !== 6 || b[19] !== 4) {
    return null;
  }
  return {
    ethDst: macToString(b.subarray(0, 6)),
    ethSrc: macToString(b.subarray(6, 12)),
    op: b.readUInt16BE(20),
    senderMac: macToString(b.subarray(22, 28)),
    senderIp: ipv4ToString(b.subarray(28, 32)),
    targetMac: macToString(b.subarray(32, 38)),
    targetIp: ipv4ToString(b.subarray(38, 42)),
  };
}

// ---------------------------------------------------------------- Neighbour Advertisement

export interface NaOptions {
  /** Router flag; keepalived sets it when the host forwards IPv6. Default false. */
  router?: boolean;
}

/**
 * Unsolicited NA for `ip6`, sourced from `srcIp6` (keepalived uses the VIP itself as source so
 * the advert does not depend on the link-local address being usable).
 */
export function buildUnsolicitedNa(srcMac: string, srcIp6: string, ip6: string, opts: NaOptions = {}): Buffer {
  const mac = macToBuffer(srcMac);
  const src = ipv6ToBuffer(srcIp6);
  const dst = ipv6ToBuffer(IPV6_ALL_NODES);
  const target = ipv6ToBuffer(ip6);
  const f = Buffer.alloc(ETH_HLEN + IPV6_HLEN + NA_LEN + NA_OPT_LEN);
  macToBuffer(ETH_ALL_NODES).copy(f, 0);
  mac.copy(f, 6);
  f.writeUInt16BE(ETHERTYPE_IPV6, 12);

  const ip = ETH_HLEN;
  f.writeUInt32BE(0x60000000, ip); // version 6, traffic class 0, flow label 0
  f.writeUInt16BE(NA_LEN + NA_OPT_LEN, ip + 4);
  f[ip + 6] = IPPROTO_ICMPV6;
  f[ip + 7] = 255; // RFC 4861 7.1.2: receivers drop NAs with any other hop limit
  src.copy(f, ip + 8);
  dst.copy(f, ip + 24);

  const icmp = ip + IPV6_HLEN;
  f[icmp] = ND_NEIGHBOR_ADVERT;
  f[icmp + 1] = 0;
  f[icmp + 4] = NA_FLAG_OVERRIDE | (opts.router ? NA_FLAG_ROUTER : 0);
  target.copy(f, icmp + 8);
  f[icmp + 24] = ND_OPT_TARGET_LL_ADDR;
  f[icmp + 25] = 1; // length in units of 8 octets
  mac.copy(f, icmp + 26);
  f.writeUInt16BE(ipv6PseudoChecksum(src, dst, IPPROTO_ICMPV6, f.subarray(icmp)), icmp + 2);
  return f;
}

export interface NaFrame {
  ethDst: string;
  ethSrc: string;
  src: string;
  dst: string;
  hopLimit: number;
  router: boolean;
  solicited: boolean;
  override: boolean;
  target: string;
  /** Target link-layer address option, if present. */
  targetMac: string | null;
  /** Whether the ICMPv6 checksum verifies. */
  checksumOk: boolean;
}

export function parseNa(frame: Uint8Array): NaFrame | null {
  if (frame.length < ETH_HLEN + IPV6_HLEN + NA_LEN) return null;
  const b = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (b.readUInt16BE(12) !== ETHERTYPE_IPV6) return null;
  const ip = ETH_HLEN;
  if (b[ip]! >> 4 !== 6 || b[ip + 6] !== IPPROTO_ICMPV6) return null;
  const payloadLen = b.readUInt16BE(ip + 4);
  const icmp = ip + IPV6_HLEN;
  if (payloadLen < NA_LEN || icmp + payloadLen > b.length) return null;
  if (b[icmp] !== ND_NEIGHBOR_ADVERT || b[icmp + 1] !== 0) return null;
  const body = b.subarray(icmp, icmp + payloadLen);

  let targetMac: string | null = null;
  for (let off = NA_LEN; off < body.length; ) {
    if (off + 2 > body.length) return null;
    const len = body[off + 1]! * 8;
    // RFC 4861 4.6: a zero-length option is invalid and the whole packet must be discarded.
    if (len === 0 || off + len > body.length) return null;
    if (body[off] === ND_OPT_TARGET_LL_ADDR && len >= 8) targetMac = macToString(body.subarray(off + 2, off + 8));
    off += len;
  }
  const src = b.subarray(ip + 8, ip + 24);
  const dst = b.subarray(ip + 24, ip + 40);
  const flags = body[4]!;
  return {
    ethDst: macToString(b.subarray(0, 6)),
    ethSrc: macToString(b.subarray(6, 12)),
    src: ipv6ToString(src),
    dst: ipv6ToString(dst),
    hopLimit: b[ip + 7]!,
    router: (flags & NA_FLAG_ROUTER) !== 0,
    solicited: (flags & NA_FLAG_SOLICITED) !== 0,
    override: (flags & NA_FLAG_OVERRIDE) !== 0,
    target: ipv6ToString(body.subarray(8, 24)),
    targetMac,
    // Summing a packet that carries its own correct checksum yields zero.
    checksumOk: ipv6PseudoChecksum(src, dst, IPPROTO_ICMPV6, body) === 0,
  };
}
