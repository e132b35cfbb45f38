/**
 * The Internet checksum (RFC 1071) and the pseudo-headers VRRP puts under it. Pure.
 *
 * Which VRRP messages include a pseudo-header (see packet.ts for the reasoning):
 *   - IPv6, v2 or v3: always (the kernel computes it via IPV6_CHECKSUM, keepalived relies on that);
 *   - IPv4 v3: yes by default (RFC 5798 §5.2.8, keepalived, Wireshark), no with v3_checksum_as_v2;
 *   - IPv4 v2: never (RFC 3768 §5.3.8).
 */
import type { IpFamily } from './types.js';
import { internetChecksum } from '../util/inet.js';

export { internetChecksum };

/** IANA protocol number of VRRP (IPv4 protocol / IPv6 next header). */
export const IPPROTO_VRRP = 112;

/**
 * The pseudo-header for an upper-layer message of `length` bytes between `src` and `dst`
 * (network-order address bytes of `family`): IPv4 src, dst, zero, protocol, 16-bit length
 * (RFC 768 layout, as keepalived uses for VRRPv3); IPv6 src, dst, 32-bit length, three zero
 * bytes, next header (RFC 8200 §8.1).
 */
export function pseudoHeader(family: IpFamily, src: Uint8Array, dst: Uint8Array, length: number): Buffer {
  if (family === 4) {
    const ph = Buffer.alloc(12);
    ph.set(src, 0);
    ph.set(dst, 4);
    ph[9] = IPPROTO_VRRP;
    ph.writeUInt16BE(length, 10);
    return ph;
  }
  const ph = Buffer.alloc(40);
  ph.set(src, 0);
  ph.set(dst, 16);
  ph.writeUInt32BE(length, 32);
  ph[39] = IPPROTO_VRRP;
  return ph;
}

/**
 * Checksum of `message`, preceded by `prefix` (a pseudo-header, or nothing). The prefix has an
 * even length, so summing the concatenation is the same as summing the parts.
 */
export function checksumWith(prefix: Uint8Array | null, message: Uint8Array): number {
  return internetChecksum(prefix ? Buffer.concat([prefix, message]) : message);
}
