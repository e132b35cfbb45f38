/**
 * VRRP advertisement codec, pure: v2 (RFC 3768) and v3 (RFC 5798) over IPv4 and IPv6, byte
 * compatible with keepalived 2.2 (checked against captures in test/fixtures/vrrp).
 *
 * Wire layout (after the IP header):
 *   0: version << 4 | type(1)   1: VRID   2: priority   3: count of addresses
 *   v2: 4: auth type  5: advert interval (seconds)      v3: 4-5: 4 reserved bits + 12-bit
 *                                                            max advert interval (centiseconds)
 *   6-7: checksum   8..: addresses (4 or 16 bytes each)
 *   v2 over IPv4 only: 8 bytes of authentication data (keepalived leaves them out over IPv6).
 *
 * Checksum coverage (the reason the encoder and decoder need the IP source and destination):
 *   - v2 over IPv4: the VRRP message only (RFC 3768 §5.3.8).
 *   - v3 over IPv4: the message plus an IPv4 pseudo-header (src, dst, 0, 112, length). RFC 5798
 *     §5.2.8 is ambiguous; keepalived has always done this (and Wireshark checks it that way).
 *     keepalived 2.2.8 added `v3_checksum_as_v2` to send the message-only checksum some vendors
 *     (e.g. Cisco) use; 2.2.7 has no such option. With our `v3ChecksumAsV2` we send the
 *     message-only form and, on receive, accept either form: the pseudo-header form is what every
 *     keepalived peer sends, the other what the vendor peer sends. (keepalived ≥ 2.2.8 with the
 *     option accepts only the message-only form; accepting both is deliberately lenient and costs
 *     a second 16-bit check, see the bit-flip test in test/unit/vrrp-packet.test.ts.)
 *   - IPv6, v2 and v3: the message plus the IPv6 pseudo-header. The kernel fills it in on send
 *     (IPV6_CHECKSUM) and verifies it on receive; we compute the same value ourselves so the
 *     encoder's bytes equal the wire bytes and decoding does not depend on the socket option.
 *     `v3ChecksumAsV2` means nothing over IPv6 and is ignored there.
 * Unicast peers: old keepalived releases summed the multicast group into the v3 pseudo-header
 * even for unicast (keepalived's `old_unicast_checksum`); to talk to those, callers pass the
 * group as `dst`.
 */
import { KeepaliveError } from '../util/errors.js';
import { checksumWith, internetChecksum, IPPROTO_VRRP, pseudoHeader } from './checksum.js';
import type { DropReason } from './drop.js';
import { addressLength, canonicalIp, formatIp, parseIp } from '../util/inet.js';
import type { Advert, IpFamily, VrrpVersion } from './types.js';

/** RFC 3768 §5.2.3 / RFC 5798 §5.1.1.3: senders use, receivers require, TTL / hop limit 255. */
export const VRRP_TTL = 255;
export const VRRP_MULTICAST_V4 = '224.0.0.18';
export const VRRP_MULTICAST_V6 = 'ff02::12';
export const VRRP_HEADER_LENGTH = 8;
/** v2 over IPv4 only. */
export const VRRP_AUTH_DATA_LENGTH = 8;
export const VRRP_TYPE_ADVERTISEMENT = 1;
/** v2 authentication types we implement (2, IPsec AH, changes the IP protocol; not supported). */
export const AUTH_NONE = 0;
export const AUTH_PASS = 1;

const IPV4_MIN_HEADER = 20;

export interface EncodeContext {
  family: IpFamily;
  /** IP source (our primary address on the interface; link-local for IPv6). */
  src: string;
  /** IP destination (the VRRP group, or a unicast peer). */
  dst: string;
  /** v3 over IPv4 only: checksum the VRRP message without the pseudo-header (see above). */
  v3ChecksumAsV2?: boolean;
}

export interface DecodeContext extends EncodeContext {
  /** IPv4 TTL / IPv6 hop limit the packet arrived with. */
  ttl: number;
}

export type DecodeResult = { ok: true; advert: Advert } | { ok: false; reason: DropReason };

export type Ipv4ParseResult =
  | { ok: true; src: string; dst: string; ttl: number; protocol: number; payload: Buffer }
  | { ok: false; reason: DropReason };

/** What an instance expects of the adverts of its virtual router. */
export interface AdvertExpectation {
  version: VrrpVersion;
  vrid: number;
  /** Our configured interval; only compared for v2 (v3 backups learn the master's). */
  advertIntCs: number;
  /** Configured virtual addresses (any valid spelling). */
  addresses: string[];
  /** v2: configured authentication type, default AUTH_NONE. */
  authType?: number;
  /** v2 PASS: configured password (only its first 8 bytes are on the wire). */
  password?: string;
  /** keepalived `skip_check_adv_addr`: do not compare the address list. */
  skipCheckAdvAddr?: boolean;
  /** Our own addresses on the interface: an advert from one of them is our own, looped back. */
  ownAddresses?: string[];
  /**
   * unicast_peer mode with check_unicast_src: the only sources accepted, each with the TTL /
   * hop-limit range its adverts may arrive with (keepalived unicast_peer { addr min_ttl max_ttl }).
   */
  unicastPeers?: readonly UnicastPeer[];
}

export interface UnicastPeer {
  address: string;
  minTtl: number;
  maxTtl: number;
}

/** Length of the VRRP message for a version, family and address count. */
export function vrrpMessageLength(version: VrrpVersion, family: IpFamily, count: number): number {
  const auth = version === 2 && family === 4 ? VRRP_AUTH_DATA_LENGTH : 0;
  return VRRP_HEADER_LENGTH + count * addressLength(family) + auth;
}

/** The 8 authentication bytes for a v2 PASS password: UTF-8, truncated to 8, NUL padded. */
export function passwordAuthData(password: string): Buffer {
  const out = Buffer.alloc(VRRP_AUTH_DATA_LENGTH);
  Buffer.from(password, 'utf8').copy(out, 0, 0, VRRP_AUTH_DATA_LENGTH);
  return out;
}

/** The pseudo-header the checksum covers, or null when it covers the message only. */
function checksumPrefix(
  version: number,
  family: IpFamily,
  src: Buffer,
  dst: Buffer,
  length: number,
  asV2: boolean,
): Buffer | null {
  if (family === 6) return pseudoHeader(6, src, dst, length);
  return version === 3 && !asV2 ? pseudoHeader(4, src, dst, length) : null;
}

function invalid(message: string): never {
  throw new KeepaliveError('E_CONFIG_INVALID', `VRRP advert: ${message}`);
}

function checkIntRange(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    invalid(`${name} must be an integer in ${min}..${max}, got ${value}`);
  }
}

function ipOrThrow(name: string, text: string, family: IpFamily): Buffer {
  return parseIp(text, family) ?? invalid(`${name} ${JSON.stringify(text)} is not an IPv${family} address`);
}

/**
 * Encodes `advert` as the VRRP message that follows the IP header (the kernel builds that
 * header). Throws KeepaliveError E_CONFIG_INVALID on values the wire cannot carry.
 */
export function encodeAdvert(advert: Advert, ctx: EncodeContext): Buffer {
  const family = ctx.family;
  if (family !== 4 && family !== 6) invalid(`family must be 4 or 6, got ${String(family)}`);
  const version = advert.version;
  if (version !== 2 && version !== 3) invalid(`version must be 2 or 3, got ${String(version)}`);
  checkIntRange('vrid', advert.vrid, 1, 255);
  checkIntRange('priority', advert.priority, 0, 255);
  checkIntRange('address count', advert.addresses.length, 0, 255);
  if (version === 2) {
    // v2 carries whole seconds in one byte.
    if (advert.advertIntCs % 100 !== 0) invalid(`v2 advert interval must be whole seconds, got ${advert.advertIntCs} cs`);
    checkIntRange('v2 advert interval (s)', advert.advertIntCs / 100, 1, 255);
    checkIntRange('auth type', advert.authType ?? AUTH_NONE, 0, 255);
    const authLength = advert.authData?.length ?? 0;
    if (authLength > (family === 4 ? VRRP_AUTH_DATA_LENGTH : 0)) {
      invalid(`authentication data of ${authLength} bytes cannot be carried over IPv${family}`);
    }
  } else {
    checkIntRange('v3 advert interval (cs)', advert.advertIntCs, 1, 0x0fff);
    if ((advert.authType ?? AUTH_NONE) !== AUTH_NONE || (advert.authData?.length ?? 0) > 0) {
      invalid('VRRPv3 has no authentication');
    }
  }
  const src = ipOrThrow('source', ctx.src, family);
  const dst = ipOrThrow('destination', ctx.dst, family);
  const alen = addressLength(family);
  const length = vrrpMessageLength(version, family, advert.addresses.length);
  const msg = Buffer.alloc(length);
  msg[0] = (version << 4) | VRRP_TYPE_ADVERTISEMENT;
  msg[1] = advert.vrid;
  msg[2] = advert.priority;
  msg[3] = advert.addresses.length;
  if (version === 2) {
    msg[4] = advert.authType ?? AUTH_NONE;
    msg[5] = advert.advertIntCs / 100;
  } else {
    msg.writeUInt16BE(advert.advertIntCs, 4); // reserved bits stay 0
  }
  advert.addresses.forEach((a, i) => {
    ipOrThrow('virtual address', a, family).copy(msg, VRRP_HEADER_LENGTH + i * alen);
  });
  if (version === 2 && family === 4 && advert.authData) {
    advert.authData.copy(msg, length - VRRP_AUTH_DATA_LENGTH); // NUL padded by alloc
  }
  const prefix = checksumPrefix(version, family, src, dst, length, ctx.v3ChecksumAsV2 === true);
  msg.writeUInt16BE(checksumWith(prefix, msg), 6);
  return msg;
}

/**
 * Splits a packet read from a raw IPv4 socket (which delivers the IP header) into the IP facts
 * and the payload. Never throws. Raw sockets hand over whole (reassembled) datagrams whose
 * header checksum the kernel already verified; checking again costs little and keeps this
 * function honest on any input.
 */
export function parseIpv4Packet(buf: Buffer): Ipv4ParseResult {
  if (buf.length < IPV4_MIN_HEADER) return { ok: false, reason: 'too_short' };
  if (buf[0]! >> 4 !== 4) return { ok: false, reason: 'bad_ip_header' };
  const ihl = (buf[0]! & 0x0f) * 4; // options, if any, sit between byte 20 and ihl
  if (ihl < IPV4_MIN_HEADER) return { ok: false, reason: 'bad_ip_header' };
  if (buf.length < ihl) return { ok: false, reason: 'too_short' };
  if (internetChecksum(buf.subarray(0, ihl)) !== 0) return { ok: false, reason: 'bad_ip_header' };
  const totalLength = buf.readUInt16BE(2);
  if (totalLength < ihl) return { ok: false, reason: 'bad_ip_header' };
  if (buf.length < totalLength) return { ok: false, reason: 'too_short' };
  // keepalived drops a datagram whose total length disagrees with what was received.
  if (buf.length > totalLength) return { ok: false, reason: 'bad_length' };
  const protocol = buf[9]!;
  if (protocol !== IPPROTO_VRRP) return { ok: false, reason: 'not_vrrp_protocol' };
  return {
    ok: true,
    src: formatIp(buf.subarray(12, 16)),
    dst: formatIp(buf.subarray(16, 20)),
    ttl: buf[8]!,
    protocol,
    payload: buf.subarray(ihl, totalLength),
  };
}

/**
 * Decodes a VRRP message (the IP payload) with the structural checks every receiver does
 * regardless of instance: length, version, type, address count vs length, checksum, TTL.
 * Integrity comes first so a corrupted packet is counted as such and not as, say, a TTL
 * problem. Never throws: any input yields an advert or a drop reason.
 */
export function decodeAdvert(payload: Buffer, ctx: DecodeContext): DecodeResult {
  const family = ctx.family;
  if (family !== 4 && family !== 6) return { ok: false, reason: 'bad_ip_header' };
  const src = parseIp(ctx.src, family);
  const dst = parseIp(ctx.dst, family);
  if (!src || !dst) return { ok: false, reason: 'bad_ip_header' };
  if (payload.length < VRRP_HEADER_LENGTH) return { ok: false, reason: 'too_short' };
  const version = payload[0]! >> 4;
  if (version !== 2 && version !== 3) return { ok: false, reason: 'bad_version' };
  if ((payload[0]! & 0x0f) !== VRRP_TYPE_ADVERTISEMENT) return { ok: false, reason: 'bad_type' };
  const count = payload[3]!;
  const length = vrrpMessageLength(version, family, count);
  if (payload.length !== length) return { ok: false, reason: 'bad_length' };
  const asV2 = ctx.v3ChecksumAsV2 === true;
  const prefix = checksumPrefix(version, family, src, dst, length, false);
  const checksumOk =
    checksumWith(prefix, payload) === 0 ||
    (asV2 && version === 3 && family === 4 && internetChecksum(payload) === 0);
  if (!checksumOk) return { ok: false, reason: 'bad_checksum' };
  if (ctx.ttl !== VRRP_TTL) return { ok: false, reason: 'bad_ttl' };

  const alen = addressLength(family);
  const addresses: string[] = [];
  for (let i = 0; i < count; i++) {
    const at = VRRP_HEADER_LENGTH + i * alen;
    addresses.push(formatIp(payload.subarray(at, at + alen)));
  }
  const advert: Advert = { version, vrid: payload[1]!, priority: payload[2]!, advertIntCs: 0, addresses };
  if (version === 2) {
    advert.advertIntCs = payload[5]! * 100;
    advert.authType = payload[4]!;
    // A copy: the receive buffer is reused by the socket layer.
    if (family === 4) advert.authData = Buffer.from(payload.subarray(length - VRRP_AUTH_DATA_LENGTH));
  } else {
    advert.advertIntCs = payload.readUInt16BE(4) & 0x0fff; // the 4 reserved bits are ignored
  }
  return { ok: true, advert };
}

/** Canonical spelling of an address of either family (unparsable text is kept as is). */
function canonicalAny(text: string): string {
  return canonicalIp(text, 4) ?? canonicalIp(text, 6) ?? text;
}

/**
 * The per-instance receive checks of RFC 3768 §7.1 / RFC 5798 §7.1, in keepalived 2.2's
 * manner. Returns null when the instance should process the advert.
 *
 * - own_address first: our own advert looping back is not a peer misconfiguration.
 * - unicast peers (keepalived check_unicast_src, min_ttl/max_ttl): an advert whose source is not a
 *   configured peer is unknown_unicast_source, one outside the peer's TTL range ttl_out_of_range,
 *   before anything else of it is looked at (keepalived checks these last; a stranger's advert is
 *   dropped whatever it says, so the order only changes which counter a bad one lands in).
 * - v3 interval 0: zero_interval (keepalived would take it and time the master out at once).
 * - v2: auth type, then PASS password (8 bytes, NUL padded), then interval: keepalived drops
 *   an interval mismatch "to prevent concurrent VRID running => multiple master in 1 VRID".
 *   v3 intervals may differ: a backup learns the master's (state machine's job).
 * - Addresses: keepalived drops an advert whose address count differs or that lacks any
 *   configured address, whatever its priority (RFC 3768 would still accept it from the address
 *   owner, priority 255; keepalived does not, and neither do we). `skipCheckAdvAddr` turns the
 *   check off; keepalived's `skip_check_adv_addr` only skips it for adverts from the current
 *   master, so the caller passes it only for those.
 */
export function checkAdvert(advert: Advert, expect: AdvertExpectation, src: string, ttl?: number): DropReason | null {
  if (expect.ownAddresses?.length) {
    const from = canonicalAny(src);
    if (expect.ownAddresses.some((a) => canonicalAny(a) === from)) return 'own_address';
  }
  if (expect.unicastPeers) {
    const from = canonicalAny(src);
    const peer = expect.unicastPeers.find((p) => canonicalAny(p.address) === from);
    if (!peer) return 'unknown_unicast_source';
    if (ttl !== undefined && (ttl < peer.minTtl || ttl > peer.maxTtl)) return 'ttl_out_of_range';
  }
  if (advert.vrid !== expect.vrid) return 'wrong_vrid';
  if (advert.version !== expect.version) return 'version_mismatch';
  if (advert.version === 3 && advert.advertIntCs === 0) return 'zero_interval';
  if (advert.version === 2) {
    const authType = expect.authType ?? AUTH_NONE;
    if ((advert.authType ?? AUTH_NONE) !== authType) return 'auth_type_mismatch';
    if (authType === AUTH_PASS) {
      const want = passwordAuthData(expect.password ?? '');
      if (!advert.authData || !want.equals(advert.authData)) return 'auth_failure';
    }
    if (advert.advertIntCs !== expect.advertIntCs) return 'interval_mismatch';
  }
  if (!expect.skipCheckAdvAddr) {
    if (advert.addresses.length !== expect.addresses.length) return 'address_count_mismatch';
    const got = new Set(advert.addresses.map(canonicalAny));
    if (!expect.addresses.every((a) => got.has(canonicalAny(a)))) return 'address_list_mismatch';
  }
  return null;
}
