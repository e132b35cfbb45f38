/**
 * PROXY protocol header encoder (HAProxy's "The PROXY protocol", versions 1 and 2), written
 * to the real server before any client byte so it learns the original client address.
 *
 * v1: one text line, "PROXY TCP4 <src> <dst> <sport> <dport>\r\n" (TCP6 for IPv6), at most
 * 107 bytes. v2: the 12-byte signature, ver/cmd 0x21 (version 2, PROXY), family/protocol
 * 0x11 (TCP over IPv4) or 0x21 (TCP over IPv6), a 16-bit big-endian length of the address
 * block (12 or 36), then source address, destination address, source port, destination port,
 * all in network order.
 *
 * When the two ends are of different families (only possible with IPv4-mapped IPv6
 * addresses on a dual-stack socket, which are unmapped first), v1 sends "PROXY UNKNOWN\r\n"
 * and v2 sends the PROXY command with AF_UNSPEC and no address block, as the spec prescribes.
 */

import { isIP } from 'node:net';
import { parseAddress } from './sched/common.js';

export type ProxyProtocolVersion = 'v1' | 'v2';

export interface ProxyEndpoints {
  readonly srcAddress: string;
  readonly srcPort: number;
  readonly dstAddress: string;
  readonly dstPort: number;
}

/** The 12-byte v2 signature: \r\n\r\n\0\r\nQUIT\n. */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

const MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** "::ffff:192.0.2.1" → "192.0.2.1"; other addresses unchanged. */
export function unmapAddress(address: string): string {
  const m = MAPPED.exec(address);
  return m ? m[1]! : address;
}

function familyOf(address: string): 4 | 6 | 0 {
  const f = isIP(address);
  return f === 4 || f === 6 ? f : 0;
}

export function encodeProxyV1(e: ProxyEndpoints): Buffer {
  const src = unmapAddress(e.srcAddress);
  const dst = unmapAddress(e.dstAddress);
  const fs = familyOf(src);
  if (fs === 0 || fs !== familyOf(dst)) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const bareSrc = fs === 6 ? src.replace(/%.*$/, '') : src;
  const bareDst = fs === 6 ? dst.replace(/%.*$/, '') : dst;
  return Buffer.from(`PROXY TCP${fs} ${bareSrc} ${bareDst} ${e.srcPort} ${e.dstPort}\r\n`, 'latin1');
}

export function encodeProxyV2(e: ProxyEndpoints): Buffer {
  const src = unmapAddress(e.srcAddress);
  const dst = unmapAddress(e.dstAddress);
  const fs = familyOf(src);
  if (fs === 0 || fs !== familyOf(dst)) {
    const out = Buffer.alloc(16);
    PROXY_V2_SIGNATURE.copy(out, 0);
    out[12] = 0x21;
    out[13] = 0x00;
    out.writeUInt16BE(0, 14);
    return out;
  }
  const alen = fs === 4 ? 4 : 16;
  const blockLen = alen * 2 + 4;
  const out = Buffer.alloc(16 + blockLen);
  PROXY_V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21; // version 2, command PROXY
  out[13] = fs === 4 ? 0x11 : 0x21; // AF_INET/AF_INET6 << 4 | STREAM
  out.writeUInt16BE(blockLen, 14);
  out.set(parseAddress(src, fs), 16);
  out.set(parseAddress(dst, fs), 16 + alen);
  out.writeUInt16BE(e.srcPort, 16 + alen * 2);
  out.writeUInt16BE(e.dstPort, 18 + alen * 2);
  return out;
}

export function encodeProxyHeader(version: ProxyProtocolVersion, e: ProxyEndpoints): Buffer {
  return version === 'v1' ? encodeProxyV1(e) : encodeProxyV2(e);
}
