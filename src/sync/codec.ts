/**
 * Connection-sync wire format: IPVS sync protocol v1 (net/netfilter/ipvs/ip_vs_sync.c) plus
 * an authentication trailer. Byte-by-byte description and every deviation from the kernel:
 * docs/sync-protocol.md.
 *
 *   datagram = header (8) | entries (header.size - 8) | trailer (48)
 *   header   = reserved u8 = 0 | syncid u8 | size be16 (header + entries) | nr_conns u8
 *              | version s8 = 1 | spare be16 (we use it as the message kind, 0 = IPVS update)
 *   entry    = struct ip_vs_sync_v4 (36 bytes) or ip_vs_sync_v6 (72 bytes), 4-byte aligned
 *   trailer  = boot id be64 | sequence be64 | HMAC-SHA256 (32) -- filled by auth.ts
 *
 * Pure: no I/O, no clock. `encode`/`MessageBuilder` throw RangeError on an invalid entry (a
 * programming error of the caller); `decode` never throws, whatever the input.
 */

import { isIPv4 } from 'node:net';
import { formatIp as formatAddress, parseIp } from '../util/inet.js';
import type { SyncDropReason } from './drop.js';
import {
  FWD_METHODS,
  IP_VS_CONN_F_FWD_MASK,
  IP_VS_CONN_F_INACTIVE,
  IP_VS_CONN_F_TEMPLATE,
  IPPROTO_IP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  type NormalizedEntry,
  SYNC_F_GONE,
  SYNC_F_UDP_FLOW,
  type SyncEntry,
  type SyncFamily,
  TCP_STATES,
  type TcpState,
} from './types.js';

export const SYNC_PROTO_VER = 1;
export const HEADER_LEN = 8;
export const BOOT_ID_LEN = 8;
export const SEQ_LEN = 8;
export const HMAC_LEN = 32;
/** boot id + sequence + HMAC, appended after header.size bytes. */
export const TRAILER_LEN = BOOT_ID_LEN + SEQ_LEN + HMAC_LEN;
/** sizeof(struct ip_vs_sync_v4) / sizeof(struct ip_vs_sync_v6). */
export const ENTRY_V4_LEN = 36;
export const ENTRY_V6_LEN = 72;
/** nr_conns is a u8. */
export const MAX_ENTRIES_PER_MESSAGE = 255;
/** 1500-byte MTU minus IPv4 (20) and UDP (8) headers. */
export const DEFAULT_MAX_PAYLOAD = 1472;
/** Smallest payload that still fits one IPv6 entry. */
export const MIN_MAX_PAYLOAD = HEADER_LEN + ENTRY_V6_LEN + TRAILER_LEN;
/** Largest UDP payload over IPv4. */
export const MAX_MAX_PAYLOAD = 65507;

/** Entry `type` byte: bit 0 = IPv6 (STYPE_F_INET6); the other bits must be 0. */
const STYPE_F_INET6 = 1;
/** ver_size: version in the top 4 bits (must be 0), size in the low 12. */
const SVER_SHIFT = 12;
const SVER_MASK = 0x0fff;
/** Message kinds, carried in the header's `spare` field (0 in IPVS). */
export const MESSAGE_KINDS = ['update', 'snapshot-request', 'snapshot', 'snapshot-end', 'snapshot-ack'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];
export const MSG_UPDATE = 0;
export const MSG_SNAPSHOT_REQUEST = 1;
export const MSG_SNAPSHOT = 2;
export const MSG_SNAPSHOT_END = 3;
export const MSG_SNAPSHOT_ACK = 4;
/** Body of a snapshot-end message: be32 messages, be32 entries sent in the snapshot. */
const SNAPSHOT_END_BODY = 8;
/** Body of a snapshot-ack: the boot id and sequence of the snapshot-request it answers (be64 each). */
const SNAPSHOT_ACK_BODY = 16;

/** What a snapshot-ack echoes: the requester's boot id and the sequence number of its request. */
export interface RequestEcho {
  readonly bootId: bigint;
  readonly seq: bigint;
}

export interface SnapshotTotals {
  readonly messages: number;
  readonly entries: number;
}

export interface MessageHeader {
  readonly syncId: number;
  /** Header + entries, without the trailer. */
  readonly size: number;
  readonly nrConns: number;
  readonly kind: MessageKind;
}

export interface DecodedMessage extends MessageHeader {
  readonly entries: NormalizedEntry[];
  readonly bootId: bigint;
  readonly seq: bigint;
  /** snapshot-end only. */
  readonly totals?: SnapshotTotals;
  /** snapshot-ack only. */
  readonly echo?: RequestEcho;
}

export type HeaderResult = { ok: true; header: MessageHeader } | { ok: false; reason: SyncDropReason; detail: string };
export type DecodeResult =
  | ({ ok: true } & DecodedMessage)
  | { ok: false; reason: SyncDropReason; detail: string };

function checkSyncId(syncId: number): void {
  if (!Number.isInteger(syncId) || syncId < 0 || syncId > 255) throw new RangeError(`sync id must be 0..255, got ${syncId}`);
}

export function checkMaxPayload(maxPayload: number): void {
  if (!Number.isInteger(maxPayload) || maxPayload < MIN_MAX_PAYLOAD || maxPayload > MAX_MAX_PAYLOAD) {
    throw new RangeError(`maxPayload must be an integer in ${MIN_MAX_PAYLOAD}..${MAX_MAX_PAYLOAD}, got ${maxPayload}`);
  }
}

export function entryWireSize(family: SyncFamily): number {
  return family === 6 ? ENTRY_V6_LEN : ENTRY_V4_LEN;
}

// --------------------------------------------------------------------------------------
// Encoding
// --------------------------------------------------------------------------------------

function checkU(value: unknown, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${what} must be an integer in 0..${max}, got ${String(value)}`);
  }
  return value;
}

function writeAddress(buf: Buffer, off: number, address: unknown, family: SyncFamily, what: string): void {
  if (typeof address !== 'string') throw new RangeError(`${what} address must be a string`);
  if (family === 4) {
    if (!isIPv4(address)) throw new RangeError(`${what} address is not IPv4: ${address}`);
    const parts = address.split('.');
    buf[off] = Number(parts[0]);
    buf[off + 1] = Number(parts[1]);
    buf[off + 2] = Number(parts[2]);
    buf[off + 3] = Number(parts[3]);
    return;
  }
  const bytes = parseIp(address, 6);
  if (!bytes) throw new RangeError(`${what} address is not IPv6: ${address}`);
  buf.set(bytes, off);
}

function flagsAndState(e: SyncEntry): { protocol: number; flags: number; state: number } {
  const fwdIndex = FWD_METHODS.indexOf(e.fwd ?? 'masq');
  if (fwdIndex < 0) throw new RangeError(`unknown forwarding method: ${String(e.fwd)}`);
  let flags = fwdIndex;
  if (e.ended !== undefined && typeof e.ended !== 'boolean') throw new RangeError('ended must be a boolean');
  if (e.ended) flags |= SYNC_F_GONE;
  switch (e.kind) {
    case 'conn': {
      if (e.protocol === 'tcp') {
        const state = TCP_STATES.indexOf(e.state as TcpState);
        if (state < 0) throw new RangeError(`not a TCP state: ${String(e.state)}`);
        // IPVS marks every TCP connection that is not ESTABLISHED inactive (inactconns).
        if (e.state !== 'ESTABLISHED') flags |= IP_VS_CONN_F_INACTIVE;
        return { protocol: IPPROTO_TCP, flags, state };
      }
      if (e.protocol === 'udp') {
        if (e.state !== 'UDP') throw new RangeError(`a UDP connection has state 'UDP', got ${String(e.state)}`);
        return { protocol: IPPROTO_UDP, flags, state: 0 };
      }
      throw new RangeError(`connection protocol must be tcp or udp, got ${String((e as { protocol: unknown }).protocol)}`);
    }
    case 'template': {
      const protocol = e.protocol === 'tcp' ? IPPROTO_TCP : e.protocol === 'udp' ? IPPROTO_UDP : e.protocol === 'any' ? IPPROTO_IP : -1;
      if (protocol < 0) throw new RangeError(`template protocol must be tcp, udp or any, got ${String(e.protocol)}`);
      return { protocol, flags: flags | IP_VS_CONN_F_TEMPLATE, state: 0 };
    }
    case 'udp-flow':
      return { protocol: IPPROTO_UDP, flags: flags | SYNC_F_UDP_FLOW, state: 0 };
    default:
      throw new RangeError(`unknown entry kind: ${String((e as { kind: unknown }).kind)}`);
  }
}

/** Writes one entry at `off`; returns its size. Throws RangeError if the entry is invalid. */
function writeEntry(buf: Buffer, off: number, e: SyncEntry): number {
  const family = e.family;
  if (family !== 4 && family !== 6) throw new RangeError(`family must be 4 or 6, got ${String(family)}`);
  const size = entryWireSize(family);
  const { protocol, flags, state } = flagsAndState(e);
  buf[off] = family === 6 ? STYPE_F_INET6 : 0;
  buf[off + 1] = protocol;
  buf.writeUInt16BE(size & SVER_MASK, off + 2); // version 0
  buf.writeUInt32BE(flags >>> 0, off + 4);
  buf.writeUInt16BE(state, off + 8);
  buf.writeUInt16BE(checkU(e.client?.port, 0xffff, 'client port'), off + 10);
  buf.writeUInt16BE(checkU(e.virtual?.port, 0xffff, 'virtual port'), off + 12);
  buf.writeUInt16BE(checkU(e.real?.port, 0xffff, 'real server port'), off + 14);
  buf.writeUInt32BE(checkU(e.fwmark ?? 0, 0xffffffff, 'fwmark'), off + 16);
  buf.writeUInt32BE(checkU(e.timeoutSec, 0xffffffff, 'timeoutSec'), off + 20);
  const alen = family === 6 ? 16 : 4;
  writeAddress(buf, off + 24, e.client.address, family, 'client');
  writeAddress(buf, off + 24 + alen, e.virtual.address, family, 'virtual');
  writeAddress(buf, off + 24 + 2 * alen, e.real.address, family, 'real server');
  return size;
}

function writeHeader(buf: Buffer, syncId: number, size: number, nrConns: number, kind: number): void {
  buf[0] = 0;
  buf[1] = syncId;
  buf.writeUInt16BE(size, 2);
  buf[4] = nrConns;
  buf[5] = SYNC_PROTO_VER;
  buf.writeUInt16BE(kind, 6);
}

/**
 * Builds one message incrementally (the sender's batching buffer). `add` returns false,
 * without adding, when the entry does not fit (bytes or the 255-entry nr_conns limit).
 */
export class MessageBuilder {
  readonly #work: Buffer;
  readonly #limit: number;
  readonly #kind: number;
  #pos = HEADER_LEN;
  #count = 0;

  constructor(
    readonly syncId: number,
    kind: 'update' | 'snapshot' = 'update',
    readonly maxPayload: number = DEFAULT_MAX_PAYLOAD,
  ) {
    checkSyncId(syncId);
    checkMaxPayload(maxPayload);
    this.#kind = kind === 'snapshot' ? MSG_SNAPSHOT : MSG_UPDATE;
    this.#limit = maxPayload - TRAILER_LEN;
    this.#work = Buffer.alloc(this.#limit);
  }

  get count(): number {
    return this.#count;
  }

  /** Header + entries so far (the datagram will be this + TRAILER_LEN). */
  get size(): number {
    return this.#pos;
  }

  add(e: SyncEntry): boolean {
    if (this.#count >= MAX_ENTRIES_PER_MESSAGE) return false;
    // Entries are 36 or 72 bytes, both multiples of 4: no padding is ever needed.
    if (e.family !== 4 && e.family !== 6) throw new RangeError(`family must be 4 or 6, got ${String(e.family)}`);
    const need = entryWireSize(e.family);
    // MIN_MAX_PAYLOAD guarantees that one entry always fits an empty message.
    if (this.#pos + need > this.#limit) return false;
    const start = this.#pos;
    try {
      this.#pos += writeEntry(this.#work, start, e);
    } catch (err) {
      this.#work.fill(0, start, start + need);
      throw err;
    }
    this.#count++;
    return true;
  }

  /** The finished datagram (trailer zeroed, to be sealed by SyncAuth), and a reset builder. */
  finish(): Buffer {
    const out = Buffer.alloc(this.#pos + TRAILER_LEN);
    this.#work.copy(out, HEADER_LEN, HEADER_LEN, this.#pos);
    writeHeader(out, this.syncId, this.#pos, this.#count, this.#kind);
    this.#work.fill(0, HEADER_LEN, this.#pos);
    this.#pos = HEADER_LEN;
    this.#count = 0;
    return out;
  }
}

export interface EncodeOptions {
  /** Largest UDP payload, trailer included. Default 1472 (1500-byte MTU, IPv4). */
  readonly maxPayload?: number;
  /** 'update' (default) or 'snapshot'. */
  readonly kind?: 'update' | 'snapshot';
}

/**
 * Entries as unsealed datagrams (trailer zeroed), each at most maxPayload bytes, in order.
 * No entries -> no datagrams.
 */
export function encode(entries: Iterable<SyncEntry>, syncId: number, options: EncodeOptions = {}): Buffer[] {
  const b = new MessageBuilder(syncId, options.kind ?? 'update', options.maxPayload ?? DEFAULT_MAX_PAYLOAD);
  const out: Buffer[] = [];
  for (const e of entries) {
    if (!b.add(e)) {
      out.push(b.finish());
      b.add(e);
    }
  }
  if (b.count > 0) out.push(b.finish());
  return out;
}

/**
 * A snapshot-request (no body), snapshot-end (be32 messages, be32 entries) or snapshot-ack (be64
 * boot id, be64 sequence of the request answered) datagram, unsealed.
 */
export function encodeControl(kind: 'snapshot-request' | 'snapshot-end' | 'snapshot-ack', syncId: number, totals?: SnapshotTotals, echo?: RequestEcho): Buffer {
  checkSyncId(syncId);
  if (kind === 'snapshot-request') {
    const out = Buffer.alloc(HEADER_LEN + TRAILER_LEN);
    writeHeader(out, syncId, HEADER_LEN, 0, MSG_SNAPSHOT_REQUEST);
    return out;
  }
  if (kind === 'snapshot-ack') {
    if (!echo) throw new RangeError('snapshot-ack needs the echo of a request');
    const size = HEADER_LEN + SNAPSHOT_ACK_BODY;
    const out = Buffer.alloc(size + TRAILER_LEN);
    writeHeader(out, syncId, size, 0, MSG_SNAPSHOT_ACK);
    out.writeBigUInt64BE(echo.bootId, HEADER_LEN);
    out.writeBigUInt64BE(echo.seq, HEADER_LEN + 8);
    return out;
  }
  const size = HEADER_LEN + SNAPSHOT_END_BODY;
  const out = Buffer.alloc(size + TRAILER_LEN);
  writeHeader(out, syncId, size, 0, MSG_SNAPSHOT_END);
  out.writeUInt32BE(checkU(totals?.messages ?? 0, 0xffffffff, 'messages'), HEADER_LEN);
  out.writeUInt32BE(checkU(totals?.entries ?? 0, 0xffffffff, 'entries'), HEADER_LEN + 4);
  return out;
}

// --------------------------------------------------------------------------------------
// Decoding
// --------------------------------------------------------------------------------------

const fail = (reason: SyncDropReason, detail: string): { ok: false; reason: SyncDropReason; detail: string } => ({
  ok: false,
  reason,
  detail,
});

/**
 * Header checks, in this order: too_short (< 8 bytes), bad_version (reserved != 0 or
 * version != 1), foreign_sync_id, malformed (size < 8), too_short (datagram shorter than
 * size + trailer), malformed (longer), malformed (unknown kind).
 */
export function decodeHeader(buf: Uint8Array, expectedSyncId: number): HeaderResult {
  if (buf.length < HEADER_LEN) return fail('too_short', `${buf.length} bytes, header needs ${HEADER_LEN}`);
  if (buf[0] !== 0 || buf[5] !== SYNC_PROTO_VER) return fail('bad_version', `reserved=${buf[0]} version=${buf[5]}`);
  const syncId = buf[1]!;
  if (syncId !== expectedSyncId) return fail('foreign_sync_id', `sync id ${syncId}, expected ${expectedSyncId}`);
  const size = (buf[2]! << 8) | buf[3]!;
  if (size < HEADER_LEN) return fail('malformed', `size ${size} < header`);
  if (buf.length < size + TRAILER_LEN) return fail('too_short', `${buf.length} bytes, size ${size} + trailer ${TRAILER_LEN}`);
  if (buf.length > size + TRAILER_LEN) return fail('malformed', `${buf.length} bytes, size ${size} + trailer ${TRAILER_LEN}`);
  const kindNo = (buf[6]! << 8) | buf[7]!;
  const kind = MESSAGE_KINDS[kindNo];
  if (kind === undefined) return fail('malformed', `unknown message kind ${kindNo}`);
  return { ok: true, header: { syncId, size, nrConns: buf[4]!, kind } };
}

function readV4(buf: Uint8Array, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

function u16(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

function u32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

function readU64(buf: Uint8Array, off: number): bigint {
  return (BigInt(u32(buf, off)) << 32n) | BigInt(u32(buf, off + 4));
}

/** Parses one entry at p whose wire size is `esize`; string on error. */
function readEntry(buf: Uint8Array, p: number, esize: number): NormalizedEntry | string {
  const type = buf[p]!;
  if (type !== 0 && type !== STYPE_F_INET6) return `entry type ${type}`;
  const family: SyncFamily = type === STYPE_F_INET6 ? 6 : 4;
  const base = entryWireSize(family);
  if (esize < base) return `entry size ${esize} < ${base}`;
  // Options (IPVS: seq data, PE data/name): walk the TLVs for structure, ignore the content.
  for (let q = p + base; q < p + esize; ) {
    if (q + 2 > p + esize) return 'truncated option header';
    const plen = buf[q + 1]!;
    if (plen === 0 || q + 2 + plen > p + esize) return `bad option length ${plen}`;
    q += 2 + plen;
  }
  const protocol = buf[p + 1]!;
  const flags = u32(buf, p + 4);
  const stateNo = u16(buf, p + 8);
  const fwdNo = flags & IP_VS_CONN_F_FWD_MASK;
  const fwd = FWD_METHODS[fwdNo];
  if (fwd === undefined) return `forwarding method ${fwdNo}`;
  const alen = family === 6 ? 16 : 4;
  const a = p + 24;
  const addr =
    family === 4
      ? (o: number) => readV4(buf, o)
      : (o: number) => formatAddress(buf.subarray(o, o + 16));
  const common = {
    family,
    client: { address: addr(a), port: u16(buf, p + 10) },
    virtual: { address: addr(a + alen), port: u16(buf, p + 12) },
    real: { address: addr(a + 2 * alen), port: u16(buf, p + 14) },
    timeoutSec: u32(buf, p + 20),
    fwmark: u32(buf, p + 16),
    fwd,
    ended: (flags & SYNC_F_GONE) !== 0,
  };
  const template = (flags & IP_VS_CONN_F_TEMPLATE) !== 0;
  const flow = (flags & SYNC_F_UDP_FLOW) !== 0;
  if (template && flow) return 'both template and UDP-flow flags';
  if (template) {
    const proto = protocol === IPPROTO_TCP ? 'tcp' : protocol === IPPROTO_UDP ? 'udp' : protocol === IPPROTO_IP ? 'any' : null;
    if (proto === null) return `template protocol ${protocol}`;
    // IP_VS_CTPL_S_NONE / IP_VS_CTPL_S_ASSURED; the state carries nothing we use.
    if (stateNo > 1) return `template state ${stateNo}`;
    return { kind: 'template', protocol: proto, ...common };
  }
  if (flow) {
    if (protocol !== IPPROTO_UDP) return `UDP flow with protocol ${protocol}`;
    if (stateNo !== 0) return `UDP flow state ${stateNo}`;
    return { kind: 'udp-flow', ...common };
  }
  if (protocol === IPPROTO_TCP) {
    const state = TCP_STATES[stateNo];
    if (state === undefined) return `TCP state ${stateNo}`;
    return { kind: 'conn', protocol: 'tcp', state, ...common };
  }
  if (protocol === IPPROTO_UDP) {
    if (stateNo !== 0) return `UDP state ${stateNo}`;
    return { kind: 'conn', protocol: 'udp', state: 'UDP', ...common };
  }
  return `connection protocol ${protocol}`;
}

/** The echo of a snapshot-ack whose header passed decodeHeader, or null when its body is malformed. */
export function decodeAckEcho(buf: Uint8Array, header: MessageHeader): RequestEcho | null {
  if (header.kind !== 'snapshot-ack' || header.nrConns !== 0 || header.size !== HEADER_LEN + SNAPSHOT_ACK_BODY) return null;
  return { bootId: readU64(buf, HEADER_LEN), seq: readU64(buf, HEADER_LEN + 8) };
}

/** Decodes the body of a datagram whose header passed decodeHeader. Never throws. */
export function decodeBody(buf: Uint8Array, header: MessageHeader): DecodeResult {
  const { size, nrConns, kind } = header;
  const bootId = readU64(buf, size);
  const seq = readU64(buf, size + BOOT_ID_LEN);
  const done = (entries: NormalizedEntry[], totals?: SnapshotTotals): DecodeResult =>
    totals ? { ok: true, ...header, entries, bootId, seq, totals } : { ok: true, ...header, entries, bootId, seq };
  if (kind === 'snapshot-request') {
    if (nrConns !== 0 || size !== HEADER_LEN) return fail('malformed', 'snapshot request with a body');
    return done([]);
  }
  if (kind === 'snapshot-end') {
    if (nrConns !== 0 || size !== HEADER_LEN + SNAPSHOT_END_BODY) return fail('malformed', 'snapshot end body size');
    return done([], { messages: u32(buf, HEADER_LEN), entries: u32(buf, HEADER_LEN + 4) });
  }
  if (kind === 'snapshot-ack') {
    const echo = decodeAckEcho(buf, header);
    if (!echo) return fail('malformed', 'snapshot ack body size');
    return { ok: true, ...header, entries: [], bootId, seq, echo };
  }
  const entries: NormalizedEntry[] = new Array(nrConns);
  let p = HEADER_LEN;
  for (let i = 0; i < nrConns; i++) {
    if (p + ENTRY_V4_LEN > size) return fail('malformed', `entry ${i} header past message end`);
    const vs = u16(buf, p + 2);
    if (vs >> SVER_SHIFT !== 0) return fail('malformed', `entry ${i} version ${vs >> SVER_SHIFT}`);
    const esize = vs & SVER_MASK;
    if (p + esize > size) return fail('malformed', `entry ${i} size ${esize} past message end`);
    const e = readEntry(buf, p, esize);
    if (typeof e === 'string') return fail('malformed', `entry ${i}: ${e}`);
    entries[i] = e;
    if (i === nrConns - 1) {
      p += esize;
    } else {
      const next = p + ((esize + 3) & ~3);
      if (next > size) return fail('malformed', `entry ${i} padding past message end`);
      for (let q = p + esize; q < next; q++) if (buf[q] !== 0) return fail('malformed', `entry ${i} non-zero padding`);
      p = next;
    }
  }
  if (p !== size) return fail('malformed', `${size - p} trailing bytes after ${nrConns} entries`);
  return done(entries);
}

/**
 * Structural decode of a whole datagram (header, entries, trailer fields). Does NOT verify
 * the HMAC or the sequence number: the receive path (receiver.ts acceptDatagram) verifies
 * the HMAC before looking at the body. Never throws.
 */
export function decode(buf: Uint8Array, expectedSyncId: number): DecodeResult {
  try {
    const h = decodeHeader(buf, expectedSyncId);
    if (!h.ok) return h;
    return decodeBody(buf, h.header);
  } catch (err) {
    // Unreachable by construction (every read is bounds-checked); kept so the promise holds.
    return fail('malformed', `decoder error: ${err instanceof Error ? err.message : String(err)}`);
  }
}
