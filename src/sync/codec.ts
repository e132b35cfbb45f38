/**
 * Connection-sync wire format: IPVS sync protocol v1 (net/netfilter/ipvs/ip_vs_sync.c) plus
 * an authentication trailer, and our version 2 that adds lag timing. Byte-by-byte description and
 * every deviation from the kernel: docs/sync-protocol.md.
 *
 *   datagram = header (8) | body (header.size - 8) | trailer (48)
 *   header   = reserved u8 = 0 | syncid u8 | size be16 (header + body) | nr_conns u8
 *              | version s8 = 1 or 2 | spare be16 (we use it as the message kind, 0 = IPVS update)
 *   body v1  = entries
 *   body v2  = (update, snapshot) transit_us be32 | age_us be32 x nr_conns | entries
 *              (lag-ack) echoed boot id be64 | echoed sequence be64 | hold_us be32
 *              (other kinds) as v1
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

/** IPVS sync protocol v1 layout (control messages are still sent in it, for older peers). */
export const SYNC_PROTO_VER = 1;
/** Our version 2: v1 plus the lag timing block in update/snapshot messages, and the lag-ack. */
export const SYNC_PROTO_VER_TIMED = 2;
export type SyncVersion = 1 | 2;
/** A v2 timing field whose value is unknown (transit before the first echo, an age not recorded). */
export const NO_TIME = 0xffff_ffff;
/** Largest value a v2 timing field carries (about 71.6 minutes in microseconds); larger saturates. */
export const MAX_TIME_US = 0xffff_fffe;
/** v2 update/snapshot: transit_us before the per-entry ages. */
const TIMING_HEAD = 4;
/** v2: one be32 age per entry. */
const AGE_LEN = 4;
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
/** Smallest payload that still fits one IPv6 entry with its version-2 timing (transit + one age). */
export const MIN_MAX_PAYLOAD = HEADER_LEN + 8 + ENTRY_V6_LEN + TRAILER_LEN;
/** Largest UDP payload over IPv4. */
export const MAX_MAX_PAYLOAD = 65507;

/** Entry `type` byte: bit 0 = IPv6 (STYPE_F_INET6); the other bits must be 0. */
const STYPE_F_INET6 = 1;
/** ver_size: version in the top 4 bits (must be 0), size in the low 12. */
const SVER_SHIFT = 12;
const SVER_MASK = 0x0fff;
/** Message kinds, carried in the header's `spare` field (0 in IPVS). */
export const MESSAGE_KINDS = ['update', 'snapshot-request', 'snapshot', 'snapshot-end', 'snapshot-ack', 'lag-ack'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];
export const MSG_UPDATE = 0;
export const MSG_SNAPSHOT_REQUEST = 1;
export const MSG_SNAPSHOT = 2;
export const MSG_SNAPSHOT_END = 3;
export const MSG_SNAPSHOT_ACK = 4;
export const MSG_LAG_ACK = 5;
/** Body of a snapshot-end message: be32 messages, be32 entries sent in the snapshot. */
const SNAPSHOT_END_BODY = 8;
/** Body of a snapshot-ack: the boot id and sequence of the snapshot-request it answers (be64 each). */
const SNAPSHOT_ACK_BODY = 16;
/** Body of a lag-ack (v2 only): be64 boot id, be64 sequence of the update it echoes, be32 hold_us. */
const LAG_ACK_BODY = 20;

/**
 * What a lag-ack carries: the update message it answers (the sender's boot id and that message's
 * sequence number) and how long the receiver held it before answering (receipt -> ack sent, us).
 */
export interface LagEcho {
  readonly bootId: bigint;
  readonly seq: bigint;
  readonly holdUs: number;
}

/** The v2 timing block of an update/snapshot message, decoded. */
export interface MessageTiming {
  /** The sender's estimate of the one-way transit (us); null = unknown (no echo yet). */
  readonly transitUs: number | null;
  /** Per entry, in entry order: observed on the sender -> sent (us); null = unknown. */
  readonly agesUs: ReadonlyArray<number | null>;
}

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
  /** 1 (IPVS v1 layout) or 2 (with timing). */
  readonly version: SyncVersion;
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
  /** v2 update/snapshot only. */
  readonly timing?: MessageTiming;
  /** lag-ack only. */
  readonly lagEcho?: LagEcho;
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

function writeHeader(buf: Buffer, syncId: number, size: number, nrConns: number, kind: number, version: SyncVersion = SYNC_PROTO_VER): void {
  buf[0] = 0;
  buf[1] = syncId;
  buf.writeUInt16BE(size, 2);
  buf[4] = nrConns;
  buf[5] = version;
  buf.writeUInt16BE(kind, 6);
}

/** A time in us as a v2 field: NO_TIME when not a finite number, else rounded and clamped to 0..MAX_TIME_US. */
export function timeField(us: number | null | undefined): number {
  if (us === null || us === undefined || !Number.isFinite(us)) return NO_TIME;
  return Math.min(MAX_TIME_US, Math.max(0, Math.round(us)));
}

/** A message just finished by MessageBuilder: the unsealed datagram and, per entry, when it was observed. */
export interface FinishedMessage {
  readonly buf: Buffer;
  /** Observation times (ms, the caller's monotonic clock), one per entry; NaN = unknown. */
  readonly observed: readonly number[];
  readonly version: SyncVersion;
}

/**
 * Fills the v2 timing block of an unsealed update/snapshot datagram in place, just before it is
 * sealed and sent: transit_us (the sender's current one-way estimate, null = unknown) and each
 * entry's age = nowMs - observed[i] (us). A v1 datagram is left as it is. Pure.
 */
export function stampTiming(buf: Buffer, observed: readonly number[], nowMs: number, transitUs: number | null): Buffer {
  if (buf[5] !== SYNC_PROTO_VER_TIMED) return buf;
  const n = buf[4]!;
  buf.writeUInt32BE(timeField(transitUs), HEADER_LEN);
  for (let i = 0; i < n; i++) {
    const o = observed[i];
    buf.writeUInt32BE(o === undefined || Number.isNaN(o) ? NO_TIME : timeField((nowMs - o) * 1000), HEADER_LEN + TIMING_HEAD + i * AGE_LEN);
  }
  return buf;
}

/**
 * Builds one message incrementally (the sender's batching buffer). `add` returns false,
 * without adding, when the entry does not fit (bytes or the 255-entry nr_conns limit). Version 2
 * (the default) reserves the timing block (4 bytes + 4 per entry); stampTiming fills it at send.
 */
export class MessageBuilder {
  readonly #work: Buffer;
  readonly #limit: number;
  readonly #kind: number;
  readonly version: SyncVersion;
  /** Entry bytes so far (after the header). */
  #pos = 0;
  #count = 0;
  #observed: number[] = [];

  constructor(
    readonly syncId: number,
    kind: 'update' | 'snapshot' = 'update',
    readonly maxPayload: number = DEFAULT_MAX_PAYLOAD,
    version: SyncVersion = SYNC_PROTO_VER_TIMED,
  ) {
    checkSyncId(syncId);
    checkMaxPayload(maxPayload);
    if (version !== 1 && version !== 2) throw new RangeError(`version must be 1 or 2, got ${String(version)}`);
    this.version = version;
    this.#kind = kind === 'snapshot' ? MSG_SNAPSHOT : MSG_UPDATE;
    this.#limit = maxPayload - TRAILER_LEN - HEADER_LEN;
    this.#work = Buffer.alloc(this.#limit);
  }

  get count(): number {
    return this.#count;
  }

  /** Bytes of timing block the message has with `n` entries. */
  #timing(n: number): number {
    return this.version === SYNC_PROTO_VER_TIMED ? TIMING_HEAD + AGE_LEN * n : 0;
  }

  /** Header + body so far (the datagram will be this + TRAILER_LEN). */
  get size(): number {
    return HEADER_LEN + this.#timing(this.#count) + this.#pos;
  }

  /** Adds an entry observed at `observedAt` (ms, the caller's monotonic clock; NaN = unknown). */
  add(e: SyncEntry, observedAt = Number.NaN): boolean {
    if (this.#count >= MAX_ENTRIES_PER_MESSAGE) return false;
    // Entries are 36 or 72 bytes, both multiples of 4: no padding is ever needed.
    if (e.family !== 4 && e.family !== 6) throw new RangeError(`family must be 4 or 6, got ${String(e.family)}`);
    const need = entryWireSize(e.family);
    // MIN_MAX_PAYLOAD guarantees that one entry always fits an empty message.
    if (this.#timing(this.#count + 1) + this.#pos + need > this.#limit) return false;
    const start = this.#pos;
    try {
      this.#pos += writeEntry(this.#work, start, e);
    } catch (err) {
      this.#work.fill(0, start, start + need);
      throw err;
    }
    this.#observed.push(observedAt);
    this.#count++;
    return true;
  }

  /** The finished datagram (timing and trailer zeroed, to be stamped and sealed), and a reset builder. */
  finish(): Buffer {
    return this.finishMessage().buf;
  }

  /** finish(), with the entries' observation times (for stampTiming). */
  finishMessage(): FinishedMessage {
    const at = HEADER_LEN + this.#timing(this.#count);
    const size = at + this.#pos;
    const out = Buffer.alloc(size + TRAILER_LEN);
    this.#work.copy(out, at, 0, this.#pos);
    writeHeader(out, this.syncId, size, this.#count, this.#kind, this.version);
    if (this.version === SYNC_PROTO_VER_TIMED) out.fill(0xff, HEADER_LEN, at);
    this.#work.fill(0, 0, this.#pos);
    const observed = this.#observed;
    this.#pos = 0;
    this.#count = 0;
    this.#observed = [];
    return { buf: out, observed, version: this.version };
  }
}

export interface EncodeOptions {
  /** Largest UDP payload, trailer included. Default 1472 (1500-byte MTU, IPv4). */
  readonly maxPayload?: number;
  /** 'update' (default) or 'snapshot'. */
  readonly kind?: 'update' | 'snapshot';
  /** 2 (default: with the timing block, unknown until stamped) or 1 (the IPVS v1 layout, as older peers send). */
  readonly version?: SyncVersion;
}

/**
 * Entries as unsealed datagrams (trailer zeroed), each at most maxPayload bytes, in order.
 * No entries -> no datagrams.
 */
export function encode(entries: Iterable<SyncEntry>, syncId: number, options: EncodeOptions = {}): Buffer[] {
  const b = new MessageBuilder(syncId, options.kind ?? 'update', options.maxPayload ?? DEFAULT_MAX_PAYLOAD, options.version ?? SYNC_PROTO_VER_TIMED);
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
 * A lag-ack (version 2): answers the update message `echo.seq` of boot `echo.bootId`, held
 * `echo.holdUs` before this answer was sent. Unsealed.
 */
export function encodeLagAck(syncId: number, echo: LagEcho): Buffer {
  checkSyncId(syncId);
  const size = HEADER_LEN + LAG_ACK_BODY;
  const out = Buffer.alloc(size + TRAILER_LEN);
  writeHeader(out, syncId, size, 0, MSG_LAG_ACK, SYNC_PROTO_VER_TIMED);
  out.writeBigUInt64BE(echo.bootId, HEADER_LEN);
  out.writeBigUInt64BE(echo.seq, HEADER_LEN + 8);
  out.writeUInt32BE(timeField(echo.holdUs), HEADER_LEN + 16);
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
 * version not 1 or 2), foreign_sync_id, malformed (size < 8), too_short (datagram shorter than
 * size + trailer), malformed (longer), malformed (unknown kind, or a lag-ack in version 1).
 */
export function decodeHeader(buf: Uint8Array, expectedSyncId: number): HeaderResult {
  if (buf.length < HEADER_LEN) return fail('too_short', `${buf.length} bytes, header needs ${HEADER_LEN}`);
  const version = buf[5];
  if (buf[0] !== 0 || (version !== SYNC_PROTO_VER && version !== SYNC_PROTO_VER_TIMED)) return fail('bad_version', `reserved=${buf[0]} version=${version}`);
  const syncId = buf[1]!;
  if (syncId !== expectedSyncId) return fail('foreign_sync_id', `sync id ${syncId}, expected ${expectedSyncId}`);
  const size = (buf[2]! << 8) | buf[3]!;
  if (size < HEADER_LEN) return fail('malformed', `size ${size} < header`);
  if (buf.length < size + TRAILER_LEN) return fail('too_short', `${buf.length} bytes, size ${size} + trailer ${TRAILER_LEN}`);
  if (buf.length > size + TRAILER_LEN) return fail('malformed', `${buf.length} bytes, size ${size} + trailer ${TRAILER_LEN}`);
  const kindNo = (buf[6]! << 8) | buf[7]!;
  const kind = MESSAGE_KINDS[kindNo];
  if (kind === undefined) return fail('malformed', `unknown message kind ${kindNo}`);
  if (kind === 'lag-ack' && version !== SYNC_PROTO_VER_TIMED) return fail('malformed', 'lag-ack in version 1');
  return { ok: true, header: { syncId, version, size, nrConns: buf[4]!, kind } };
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

/** The echo of a lag-ack whose header passed decodeHeader, or null when its body is malformed. */
export function decodeLagEcho(buf: Uint8Array, header: MessageHeader): LagEcho | null {
  if (header.kind !== 'lag-ack' || header.nrConns !== 0 || header.size !== HEADER_LEN + LAG_ACK_BODY) return null;
  return { bootId: readU64(buf, HEADER_LEN), seq: readU64(buf, HEADER_LEN + 8), holdUs: u32(buf, HEADER_LEN + 16) };
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
  if (kind === 'lag-ack') {
    const lagEcho = decodeLagEcho(buf, header);
    if (!lagEcho) return fail('malformed', 'lag-ack body size');
    if (lagEcho.holdUs === NO_TIME) return fail('malformed', 'lag-ack without hold time');
    return { ok: true, ...header, entries: [], bootId, seq, lagEcho };
  }
  const entries: NormalizedEntry[] = new Array(nrConns);
  let p = HEADER_LEN;
  let timing: MessageTiming | undefined;
  if (header.version === SYNC_PROTO_VER_TIMED) {
    const at = HEADER_LEN + TIMING_HEAD + AGE_LEN * nrConns;
    if (at > size) return fail('malformed', `timing block of ${nrConns} entries past message end`);
    const t = u32(buf, HEADER_LEN);
    const agesUs: Array<number | null> = new Array(nrConns);
    for (let i = 0; i < nrConns; i++) {
      const a = u32(buf, HEADER_LEN + TIMING_HEAD + AGE_LEN * i);
      agesUs[i] = a === NO_TIME ? null : a;
    }
    timing = { transitUs: t === NO_TIME ? null : t, agesUs };
    p = at;
  }
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
  return timing ? { ok: true, ...header, entries, bootId, seq, timing } : done(entries);
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
