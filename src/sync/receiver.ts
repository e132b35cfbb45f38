/**
 * Connection-sync receiver (the BACKUP side, though every director runs one): binds the sync
 * port (SO_REUSEADDR), joins the multicast group on the sync interface (unless unicast),
 * authenticates, checks for replays, decodes, and hands entries to a callback. Rejected
 * datagrams are counted by reason (drop.ts). Snapshot requests from the peer are passed to
 * `onSnapshotRequest` (wire it to SyncSender.handleSnapshotRequest); `requestSnapshot()`
 * asks the peer for its full table.
 */

import type { RemoteInfo } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import DgramAsPromised, { type SocketAsPromised } from 'dgram-as-promised';
import type { SyncConfig } from '../config/types.js';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { ReplayGuard, type ReplayGuardOptions, type SyncAuth } from './auth.js';
import { monotonicMs } from '../util/clock.js';
import {
  BOOT_ID_LEN,
  decodeAckEcho,
  type DecodedMessage,
  type MessageKind,
  type MessageTiming,
  type SnapshotTotals,
  type SyncVersion,
  decodeBody,
  decodeHeader,
  encodeControl,
  encodeLagAck,
} from './codec.js';
import type { SentLog } from './lag.js';
import { type SyncDropReason, emptyDropCounters } from './drop.js';
import {
  type NormalizedEntry,
  type SyncFamily,
  type SyncTarget,
  familyOf,
  multicastInterfaceAddress,
  targetsFromConfig,
} from './types.js';

/** How many of our own snapshot-request sequence numbers an ack may echo. */
const REQUESTS_KEPT = 32;

export interface AcceptContext {
  readonly syncId: number;
  readonly auth: SyncAuth;
  readonly replay: ReplayGuard;
  /**
   * Sequence numbers of the snapshot-requests this receiver sent in this run (sealed with its own
   * boot id): a snapshot-ack echoing one of them proves the answering boot live.
   */
  readonly requests?: Set<bigint>;
  /**
   * Update messages this director sent and awaits lag-acks for (lag.ts). A lag-ack echoing our
   * boot must echo one of them, once: otherwise it is a replay.
   */
  readonly sent?: SentLog;
}

export type AcceptResult =
  | ({ ok: true; /** lag-ack echoing one of our messages: when that message was sent. */ sentAt?: number } & DecodedMessage)
  | { ok: false; reason: SyncDropReason; detail: string };

function readU64(buf: Uint8Array, off: number): bigint {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).readBigUInt64BE(off);
}

/**
 * The whole receive-side check of one datagram, without I/O. Order: header (too_short,
 * bad_version, foreign_sync_id, malformed size/kind) -> bad_hmac -> own_message -> replayed
 * -> body (malformed) -> lag-ack echo (replayed). The HMAC is checked before the body is parsed
 * and before the replay state is touched, so unauthenticated input can neither reach the entry
 * parser nor advance the sequence window. A lag-ack is passed from any boot, like a
 * snapshot-request (it creates no replay state), but one echoing our boot must echo an update we
 * sent and nobody echoed yet (ctx.sent): a replayed lag-ack finds its message taken. Never throws.
 */
export function acceptDatagram(buf: Uint8Array, fromAddress: string, ctx: AcceptContext): AcceptResult {
  const h = decodeHeader(buf, ctx.syncId);
  if (!h.ok) return h;
  if (!ctx.auth.verify(buf)) return { ok: false, reason: 'bad_hmac', detail: 'HMAC does not verify' };
  const t = h.header.size;
  const bootId = readU64(buf, t);
  const seq = readU64(buf, t + BOOT_ID_LEN);
  if (bootId === ctx.auth.bootId) return { ok: false, reason: 'own_message', detail: 'our own boot id' };
  let proof = false;
  if (h.header.kind === 'snapshot-ack') {
    const echo = decodeAckEcho(buf, h.header);
    if (!echo) return { ok: false, reason: 'malformed', detail: 'snapshot ack body size' };
    proof = echo.bootId === ctx.auth.bootId && ctx.requests?.has(echo.seq) === true;
  }
  const request = h.header.kind === 'snapshot-request' || h.header.kind === 'lag-ack';
  const verdict = ctx.replay.check(fromAddress, bootId, seq, { proof, request });
  if (verdict === 'replayed') return { ok: false, reason: 'replayed', detail: `boot ${bootId} seq ${seq} from ${fromAddress}` };
  if (verdict === 'unverified') {
    return { ok: false, reason: 'unverified', detail: `boot ${bootId} from ${fromAddress} not proven live yet (waiting for its snapshot-ack)` };
  }
  const body = decodeBody(buf, h.header);
  if (body.ok && body.lagEcho && body.lagEcho.bootId === ctx.auth.bootId) {
    const sentAt = ctx.sent?.take(body.lagEcho.seq);
    if (sentAt === undefined) return { ok: false, reason: 'replayed', detail: `lag-ack echoes message ${body.lagEcho.seq}, not awaiting one (already echoed or unknown)` };
    return { ...body, sentAt };
  }
  return body;
}

export interface MessageInfo {
  readonly kind: MessageKind;
  readonly from: SyncTarget;
  readonly bootId: bigint;
  readonly seq: bigint;
  /** 1 (IPVS v1 layout: an older peer, no timing) or 2. */
  readonly version?: SyncVersion;
  /** Version-2 update/snapshot: the sender's transit estimate and the entries' ages. */
  readonly timing?: MessageTiming;
  /** When the datagram was received (monotonic ms, the receiver's clock option). */
  readonly receivedAt?: number;
}

/** A round trip measured with a lag-ack (ms, the peer's hold time subtracted). */
export interface RttSample {
  readonly rttMs: number;
  readonly from: SyncTarget;
  /** The peer's boot id (one peer = one boot). */
  readonly bootId: bigint;
}

export interface SnapshotRequest {
  /** Where the requester listens (its receiver socket): the snapshot answer goes there. */
  readonly from: SyncTarget;
  readonly bootId: bigint;
  /** The request's sequence number: with bootId, what the snapshot-ack echoes. */
  readonly seq: bigint;
}

export interface SyncReceiverOptions {
  readonly syncId: number;
  readonly auth: SyncAuth;
  /** The sync port to bind (IPVS default 8848). 0 = ephemeral (tests). */
  readonly port: number;
  /** Default: the multicast group's family, else 4. */
  readonly family?: SyncFamily;
  /** Default 0.0.0.0 / :: (needed to receive multicast). */
  readonly bindAddress?: string;
  /** Join `group` on the interface with address `interfaceAddress` (multicastInterfaceAddress()). */
  readonly multicast?: { readonly group: string; readonly interfaceAddress: string; readonly ttl?: number };
  /** Where requestSnapshot() sends: default the group at `port` when multicast, else none. */
  readonly requestTargets?: readonly SyncTarget[];
  readonly onEntries: (entries: NormalizedEntry[], info: MessageInfo) => void;
  readonly onSnapshotRequest?: (req: SnapshotRequest) => void;
  readonly onSnapshotEnd?: (totals: SnapshotTotals, info: MessageInfo) => void;
  readonly replay?: ReplayGuard | ReplayGuardOptions;
  /** SO_RCVBUF; default 4 MiB (the kernel caps it at net.core.rmem_max). */
  readonly recvBufferSize?: number;
  /** Errors thrown by callbacks and socket errors; they never stop the receiver. */
  readonly onError?: (err: unknown) => void;
  /** Called for every rejected datagram (logging, metrics). */
  readonly onDrop?: (reason: SyncDropReason, detail: string, from: SyncTarget) => void;
  /** Master side of lag measurement: records of our update messages (the sender's sentLog). */
  readonly sentLog?: SentLog;
  /** A lag-ack answered one of our update messages: the round trip. */
  readonly onRtt?: (sample: RttSample) => void;
  /**
   * Backup side: answer a version-2 update with a lag-ack at most this often (ms), to the sender's
   * address (at the port of the requestTarget with that address, else `port`). Default 100; a
   * negative value turns lag-acks off.
   */
  readonly lagAckIntervalMs?: number;
  /** Monotonic ms. Default monotonicMs. */
  readonly clock?: () => number;
}

export interface SyncReceiverCounters {
  /** Datagrams accepted (any kind). */
  messages: number;
  /** Entries delivered to onEntries. */
  entries: number;
  /** Bytes of all received datagrams, accepted or not. */
  bytes: number;
  dropped: Record<SyncDropReason, number>;
  snapshotRequestsReceived: number;
  snapshotRequestsSent: number;
  callbackErrors: number;
  sendErrors: number;
  /** Lag-acks sent (backup) / lag-acks that answered one of our messages (master). */
  lagAcksSent: number;
  lagAcksReceived: number;
  /** Lag-acks echoing another director's messages (multicast fleets): ignored. */
  lagAcksIgnored: number;
}

/** Receiver options for a parsed `sync` config section (multicast unless unicast_peer is set). */
export function receiverOptionsFromConfig(
  cfg: SyncConfig,
  auth: SyncAuth,
  handlers: Pick<SyncReceiverOptions, 'onEntries' | 'onSnapshotRequest' | 'onSnapshotEnd' | 'onError' | 'onDrop' | 'onRtt' | 'sentLog'>,
): SyncReceiverOptions {
  const targets = targetsFromConfig(cfg);
  const unicast = cfg.unicast_peer.length > 0;
  const family = familyOf(targets[0]!.address);
  return {
    syncId: cfg.sync_id,
    auth,
    port: cfg.port,
    family,
    ...(unicast
      ? {}
      : { multicast: { group: cfg.group, interfaceAddress: multicastInterfaceAddress(cfg.interface, family), ttl: cfg.ttl } }),
    requestTargets: targets,
    ...handlers,
  };
}

export class SyncReceiver {
  readonly counters: SyncReceiverCounters = {
    messages: 0,
    entries: 0,
    bytes: 0,
    dropped: emptyDropCounters(),
    snapshotRequestsReceived: 0,
    snapshotRequestsSent: 0,
    callbackErrors: 0,
    sendErrors: 0,
    lagAcksSent: 0,
    lagAcksReceived: 0,
    lagAcksIgnored: 0,
  };
  readonly #opts: SyncReceiverOptions;
  readonly #clock: () => number;
  #lastLagAck = -Infinity;
  readonly #sock: SocketAsPromised;
  readonly #ctx: AcceptContext;
  readonly #targets: readonly SyncTarget[];
  #closing: Promise<void> | undefined;

  private constructor(opts: SyncReceiverOptions, sock: SocketAsPromised) {
    this.#opts = opts;
    this.#sock = sock;
    const replay = opts.replay instanceof ReplayGuard ? opts.replay : new ReplayGuard(opts.replay);
    this.#ctx = { syncId: opts.syncId, auth: opts.auth, replay, requests: new Set(), ...(opts.sentLog ? { sent: opts.sentLog } : {}) };
    this.#clock = opts.clock ?? monotonicMs;
    this.#targets =
      opts.requestTargets ?? (opts.multicast ? [{ address: opts.multicast.group, port: opts.port }] : []);
  }

  /** Binds, joins the group, and starts delivering. Throws KeepaliveError E_SOCKET on failure. */
  static async open(opts: SyncReceiverOptions): Promise<SyncReceiver> {
    const family = opts.family ?? (opts.multicast ? familyOf(opts.multicast.group) : 4);
    const sock = DgramAsPromised.createSocket({ type: family === 6 ? 'udp6' : 'udp4', reuseAddr: true });
    const r = new SyncReceiver(opts, sock);
    sock.socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => r.#onMessage(msg, rinfo));
    sock.socket.on('error', (err: Error) => r.#report(err));
    try {
      await sock.bind({ port: opts.port, address: opts.bindAddress ?? (family === 6 ? '::' : '0.0.0.0') });
      try {
        sock.setRecvBufferSize(opts.recvBufferSize ?? 4 * 1024 * 1024);
      } catch {
        // best effort: capped or refused by the kernel
      }
      if (opts.multicast) {
        sock.addMembership(opts.multicast.group, opts.multicast.interfaceAddress);
        sock.setMulticastInterface(opts.multicast.interfaceAddress);
        sock.setMulticastTTL(opts.multicast.ttl ?? 1);
      }
    } catch (err) {
      await r.close();
      throw new KeepaliveError('E_SOCKET', `sync receiver: cannot bind/join on port ${opts.port}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    return r;
  }

  /** The bound local address (port is useful when `port` was 0). */
  address(): SyncTarget {
    const a = this.#sock.address();
    return { address: a.address, port: a.port };
  }

  /**
   * Asks the peer(s) for a full table (sent to requestTargets, authenticated like any
   * message). The answer arrives as 'snapshot' messages followed by a snapshot-end.
   * Resolves when handed to the socket; throws KeepaliveError E_CLOSED after close().
   */
  async requestSnapshot(): Promise<void> {
    if (this.#closing) throw new KeepaliveError('E_CLOSED', 'sync receiver is closed');
    if (this.#targets.length === 0) throw new KeepaliveError('E_SOCKET', 'sync receiver: no requestTargets to ask');
    for (const t of this.#targets) {
      const buf = this.#ctx.auth.seal(encodeControl('snapshot-request', this.#opts.syncId));
      this.#remember(this.#ctx.auth.lastSeq);
      try {
        await this.#sock.send(buf, t.port, t.address);
        this.counters.snapshotRequestsSent++;
      } catch (err) {
        this.counters.sendErrors++;
        this.#report(err);
      }
    }
  }

  /** Stops receiving and closes the socket. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#sock.socket.removeAllListeners('message');
      try {
        await this.#sock.close();
      } catch {
        // not bound or already closed
      }
    })();
    return this.#closing;
  }

  /** The last REQUESTS_KEPT request sequence numbers: what a snapshot-ack may echo. */
  #remember(seq: bigint): void {
    const req = this.#ctx.requests!;
    req.add(seq);
    if (req.size > REQUESTS_KEPT) req.delete(req.values().next().value as bigint);
  }

  #lastHandshake = -Infinity;

  /** Messages of a boot not proven live: ask for a snapshot (its ack is the proof), at most once a second. */
  #handshake(): void {
    const now = performance.now();
    if (now - this.#lastHandshake < 1000 || this.#targets.length === 0) return;
    this.#lastHandshake = now;
    this.requestSnapshot().catch((err: unknown) => this.#report(err));
  }

  #report(err: unknown): void {
    try {
      this.#opts.onError?.(err);
    } catch {
      // an error handler that throws has nowhere else to go
    }
  }

  /**
   * Answers a version-2 update with a lag-ack (at most every lagAckIntervalMs): the sender learns
   * the round trip, hence the transit it writes into its next messages.
   */
  #lagAck(info: MessageInfo): void {
    const every = this.#opts.lagAckIntervalMs ?? 100;
    if (every < 0 || info.receivedAt === undefined) return;
    const now = this.#clock();
    if (now - this.#lastLagAck < every) return;
    this.#lastLagAck = now;
    const port = this.#targets.find((t) => t.address === info.from.address)?.port ?? this.#opts.port;
    const buf = this.#ctx.auth.seal(encodeLagAck(this.#opts.syncId, { bootId: info.bootId, seq: info.seq, holdUs: (now - info.receivedAt) * 1000 }));
    this.#sock.send(buf, port, info.from.address).then(
      () => void this.counters.lagAcksSent++,
      (err: unknown) => {
        this.counters.sendErrors++;
        this.#report(err);
      },
    );
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.#closing) return;
    const receivedAt = this.#clock();
    this.counters.bytes += msg.length;
    const from: SyncTarget = { address: rinfo.address, port: rinfo.port };
    const r = acceptDatagram(msg, rinfo.address, this.#ctx);
    if (!r.ok) {
      this.counters.dropped[r.reason]++;
      if (r.reason === 'unverified') this.#handshake();
      try {
        this.#opts.onDrop?.(r.reason, r.detail, from);
      } catch (err) {
        this.counters.callbackErrors++;
        this.#report(err);
      }
      return;
    }
    this.counters.messages++;
    const info: MessageInfo = { kind: r.kind, from, bootId: r.bootId, seq: r.seq, version: r.version, receivedAt, ...(r.timing ? { timing: r.timing } : {}) };
    try {
      switch (r.kind) {
        case 'update':
        case 'snapshot':
          this.counters.entries += r.entries.length;
          this.#opts.onEntries(r.entries, info);
          if (r.kind === 'update' && r.timing) this.#lagAck(info);
          break;
        case 'lag-ack':
          if (r.sentAt === undefined) {
            this.counters.lagAcksIgnored++;
            break;
          }
          this.counters.lagAcksReceived++;
          this.#opts.onRtt?.({ rttMs: receivedAt - r.sentAt - r.lagEcho!.holdUs / 1000, from, bootId: r.bootId });
          break;
        case 'snapshot-request':
          this.counters.snapshotRequestsReceived++;
          this.#opts.onSnapshotRequest?.({ from, bootId: r.bootId, seq: r.seq });
          break;
        case 'snapshot-ack':
          // The proof of the sender's boot (see acceptDatagram); the snapshot itself follows.
          break;
        case 'snapshot-end':
          this.#opts.onSnapshotEnd?.(r.totals!, info);
          break;
      }
    } catch (err) {
      this.counters.callbackErrors++;
      this.#report(err);
    }
  }
}
