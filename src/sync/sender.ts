/**
 * Connection-sync sender (the MASTER side): queues entries from the data plane, packs them
 * into MTU-sized IPVS-v1-format messages, seals each (auth.ts) and sends it to the multicast
 * group (TTL, outgoing interface) or to every unicast peer. A batch goes out when it is full
 * or at the latest `flushIntervalMs` (100 ms) after its first entry. `snapshot()` sends a
 * whole table; `handleSnapshotRequest()` answers a peer's request through the
 * `onSnapshotRequest` hook, which supplies the table.
 */

import DgramAsPromised, { type SocketAsPromised } from 'dgram-as-promised';
import { performance } from 'node:perf_hooks';
import type { SyncConfig } from '../config/types.js';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import type { SyncAuth } from './auth.js';
import { monotonicMs } from '../util/clock.js';
import { DEFAULT_MAX_PAYLOAD, MessageBuilder, checkMaxPayload, encodeControl, stampTiming, type RequestEcho } from './codec.js';
import type { SentLog } from './lag.js';
import type { SnapshotRequest } from './receiver.js';
import {
  type SyncEntry,
  type SyncFamily,
  type SyncTarget,
  familyOf,
  multicastInterfaceAddress,
  targetsFromConfig,
} from './types.js';

/** Timer functions; test/lib/fake-clock.ts FakeClock fits. */
export interface SyncTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: SyncTimers = {
  setTimeout: (fn, ms) => {
    const h = setTimeout(fn, ms);
    h.unref();
    return h;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** How datagrams leave. Default: a dgram-as-promised socket (SyncSender.open). */
export interface SyncTransport {
  send(buf: Buffer, port: number, address: string): Promise<unknown>;
  close(): Promise<void>;
}

export interface SyncSenderOptions {
  readonly syncId: number;
  readonly auth: SyncAuth;
  /** The group (one target) or the unicast peers. */
  readonly targets: readonly SyncTarget[];
  /** Default: family of the first target. */
  readonly family?: SyncFamily;
  /** Outgoing multicast interface (its address: multicastInterfaceAddress()), TTL, loopback. */
  readonly multicast?: { readonly interfaceAddress: string; readonly ttl?: number; readonly loopback?: boolean };
  /** Source address to bind; default the multicast interface address (IPv4), else any. */
  readonly bindAddress?: string;
  readonly bindPort?: number;
  /** Largest UDP payload (trailer included). Default 1472. */
  readonly maxPayload?: number;
  /** Longest time an entry waits in a partial batch. Default 100 ms. */
  readonly flushIntervalMs?: number;
  readonly timers?: SyncTimers;
  /** Datagrams waiting for the socket before the oldest are dropped (counted). Default 16384. */
  readonly maxQueue?: number;
  /**
   * Supplies the full table when a peer asks for it (see handleSnapshotRequest). Return the
   * entries to send, or nothing to ignore the request.
   */
  readonly onSnapshotRequest?: (
    req: SnapshotRequest,
  ) => Iterable<SyncEntry> | void | Promise<Iterable<SyncEntry> | void>;
  readonly onError?: (err: unknown) => void;
  /**
   * Lag measurement (lag.ts): update messages are recorded here by sequence number when sent, so a
   * peer's lag-ack can be matched; absent = not recorded.
   */
  readonly sentLog?: SentLog;
  /** The one-way transit estimate (us) written into each version-2 message; absent or null = unknown. */
  readonly transitUs?: () => number | null;
  /** Monotonic ms (observation times use the same clock). Default monotonicMs. */
  readonly clock?: () => number;
}

export interface SyncSenderCounters {
  /** Datagrams handed to the socket (one per target). */
  messages: number;
  /** Entries in those datagrams. */
  entries: number;
  bytes: number;
  sendErrors: number;
  /** Datagrams dropped because the queue was full. */
  queueDrops: number;
  /** Entries given to enqueue() after close(). */
  droppedAfterClose: number;
  snapshots: number;
  snapshotRequests: number;
  /** Requests ignored: no hook, hook returned nothing, or a snapshot to that peer in flight. */
  snapshotRequestsIgnored: number;
}

export interface SnapshotResult {
  readonly messages: number;
  readonly entries: number;
  readonly bytes: number;
  /** From the call until the last datagram was handed to the socket. */
  readonly ms: number;
}

/** A datagram waiting for the socket: unsealed; stamped (version 2 timing) and sealed when sent. */
interface Outgoing {
  buf: Buffer;
  entries: number;
  to: readonly SyncTarget[];
  /** Per entry, when it was observed (update/snapshot messages). */
  observed?: readonly number[];
  /** An update message: recorded in the sent log for lag-acks. */
  update?: boolean;
}

/** Sender options for a parsed `sync` config section. */
export function senderOptionsFromConfig(
  cfg: SyncConfig,
  auth: SyncAuth,
  extra: Pick<SyncSenderOptions, 'onSnapshotRequest' | 'onError' | 'maxPayload'> = {},
): SyncSenderOptions {
  const targets = targetsFromConfig(cfg);
  const family = familyOf(targets[0]!.address);
  const unicast = cfg.unicast_peer.length > 0;
  return {
    syncId: cfg.sync_id,
    auth,
    targets,
    family,
    ...(unicast ? {} : { multicast: { interfaceAddress: multicastInterfaceAddress(cfg.interface, family), ttl: cfg.ttl } }),
    ...extra,
  };
}

export class SyncSender {
  readonly counters: SyncSenderCounters = {
    messages: 0,
    entries: 0,
    bytes: 0,
    sendErrors: 0,
    queueDrops: 0,
    droppedAfterClose: 0,
    snapshots: 0,
    snapshotRequests: 0,
    snapshotRequestsIgnored: 0,
  };
  readonly #opts: SyncSenderOptions;
  readonly #transport: SyncTransport;
  readonly #timers: SyncTimers;
  readonly #interval: number;
  readonly #maxPayload: number;
  readonly #maxQueue: number;
  readonly #batch: MessageBuilder;
  readonly #queue: Outgoing[] = [];
  #qHead = 0;
  #timer: unknown = undefined;
  #pump: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  readonly #answering = new Set<string>();
  readonly #clock: () => number;

  /** With an explicit transport (tests, or a socket the caller owns). */
  constructor(opts: SyncSenderOptions, transport: SyncTransport) {
    if (opts.targets.length === 0) throw new RangeError('sync sender needs at least one target');
    this.#maxPayload = opts.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    checkMaxPayload(this.#maxPayload);
    this.#opts = opts;
    this.#transport = transport;
    this.#timers = opts.timers ?? realTimers;
    this.#interval = opts.flushIntervalMs ?? 100;
    this.#maxQueue = opts.maxQueue ?? 16384;
    this.#batch = new MessageBuilder(opts.syncId, 'update', this.#maxPayload);
    this.#clock = opts.clock ?? monotonicMs;
  }

  /** Creates the UDP socket (dgram-as-promised) and the sender. Throws KeepaliveError E_SOCKET. */
  static async open(opts: SyncSenderOptions): Promise<SyncSender> {
    const family = opts.family ?? familyOf(opts.targets[0]?.address ?? '0.0.0.0');
    const sock: SocketAsPromised = DgramAsPromised.createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
    const onError = (err: Error): void => opts.onError?.(err);
    sock.socket.on('error', onError);
    try {
      const mc = opts.multicast;
      const bindAddress = opts.bindAddress ?? (mc && family === 4 ? mc.interfaceAddress : undefined);
      await sock.bind({ port: opts.bindPort ?? 0, ...(bindAddress !== undefined ? { address: bindAddress } : {}) });
      if (mc) {
        sock.setMulticastInterface(mc.interfaceAddress);
        sock.setMulticastTTL(mc.ttl ?? 1);
        sock.setMulticastLoopback(mc.loopback ?? false);
      }
    } catch (err) {
      try {
        await sock.close();
      } catch {
        // never bound
      }
      throw new KeepaliveError('E_SOCKET', `sync sender: cannot set up socket: ${errorMessage(err)}`, { cause: err });
    }
    return new SyncSender(opts, {
      send: (buf, port, address) => sock.send(buf, port, address),
      close: () => sock.close(),
    });
  }

  /** Entries waiting in the current partial batch. */
  get pending(): number {
    return this.#batch.count;
  }

  /** Datagrams sealed but not yet handed to the socket. */
  get queued(): number {
    return this.#queue.length - this.#qHead;
  }

  /**
   * Adds entries to the current batch. A full batch is sealed and sent at once; a partial
   * one after flushIntervalMs. Throws RangeError on an invalid entry (nothing after it is
   * added). After close() entries are dropped and counted. `observedAt`: when the entries were
   * observed (monotonic ms, one for all or one per entry); default now. Their age at sending
   * travels with them (version 2 timing).
   */
  enqueue(entries: SyncEntry | Iterable<SyncEntry>, observedAt?: number | readonly number[]): void {
    const list: Iterable<SyncEntry> = Symbol.iterator in (entries as object) ? (entries as Iterable<SyncEntry>) : [entries as SyncEntry];
    if (this.#closing) {
      for (const _ of list) this.counters.droppedAfterClose++;
      return;
    }
    const now = typeof observedAt === 'number' ? observedAt : this.#clock();
    let i = 0;
    for (const e of list) {
      const at = Array.isArray(observedAt) ? ((observedAt as readonly number[])[i] ?? now) : now;
      i++;
      if (!this.#batch.add(e, at)) {
        this.#finishBatch();
        this.#batch.add(e, at);
      }
    }
    if (this.#batch.count > 0 && this.#timer === undefined) {
      this.#timer = this.#timers.setTimeout(() => {
        this.#timer = undefined;
        this.#finishBatch();
      }, this.#interval);
    }
  }

  /** Sends the partial batch now and resolves when everything queued was handed to the socket. */
  async flush(): Promise<void> {
    this.#finishBatch();
    await this.#drain();
  }

  /**
   * Sends a full table: pending updates first, then the entries as 'snapshot' messages,
   * then a snapshot-end carrying the totals. `to` defaults to the configured targets (the
   * answer to a request goes to the requester only).
   */
  async snapshot(entries: Iterable<SyncEntry>, to?: SyncTarget, echo?: RequestEcho): Promise<SnapshotResult> {
    if (this.#closing) throw new KeepaliveError('E_CLOSED', 'sync sender is closed');
    const t0 = performance.now();
    const targets = to ? [to] : this.#opts.targets;
    this.#finishBatch();
    // The answer to a request starts with the ack echoing it: the requester's proof that this
    // boot is live now (it accepts nothing of an unproven boot, see ReplayGuard).
    if (echo) this.#push({ buf: encodeControl('snapshot-ack', this.#opts.syncId, undefined, echo), entries: 0, to: targets });
    const b = new MessageBuilder(this.#opts.syncId, 'snapshot', this.#maxPayload);
    let messages = 0;
    let count = 0;
    let bytes = 0;
    const observedAt = this.#clock();
    const push = (buf: Buffer, n: number, observed?: readonly number[]): void => {
      bytes += buf.length;
      this.#push({ buf, entries: n, to: targets, ...(observed ? { observed } : {}) });
    };
    const finish = (): void => {
      const n = b.count;
      const m = b.finishMessage();
      push(m.buf, n, m.observed);
      messages++;
    };
    for (const e of entries) {
      if (!b.add(e, observedAt)) {
        finish();
        b.add(e, observedAt);
      }
      count++;
    }
    if (b.count > 0) finish();
    push(encodeControl('snapshot-end', this.#opts.syncId, { messages, entries: count }), 0);
    this.#kick();
    await this.#drain();
    this.counters.snapshots++;
    return { messages, entries: count, bytes, ms: performance.now() - t0 };
  }

  /**
   * A peer asked for the full table (wire SyncReceiver.onSnapshotRequest here). Calls the
   * onSnapshotRequest hook and sends what it returns to the requester. One answer per
   * requester at a time; further requests from it meanwhile are ignored (counted).
   */
  async handleSnapshotRequest(req: SnapshotRequest): Promise<SnapshotResult | undefined> {
    this.counters.snapshotRequests++;
    const key = `${req.from.address}|${req.from.port}`;
    const hook = this.#opts.onSnapshotRequest;
    if (!hook || this.#closing || this.#answering.has(key)) {
      this.counters.snapshotRequestsIgnored++;
      return undefined;
    }
    this.#answering.add(key);
    try {
      const entries = await hook(req);
      if (!entries) {
        this.counters.snapshotRequestsIgnored++;
        return undefined;
      }
      return await this.snapshot(entries, req.from, { bootId: req.bootId, seq: req.seq });
    } catch (err) {
      this.#opts.onError?.(err);
      return undefined;
    } finally {
      this.#answering.delete(key);
    }
  }

  /** Sends what is pending, then closes the socket. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#finishBatch();
      await this.#drain();
      try {
        await this.#transport.close();
      } catch (err) {
        this.#opts.onError?.(err);
      }
    })();
    return this.#closing;
  }

  #finishBatch(): void {
    if (this.#timer !== undefined) {
      this.#timers.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#batch.count === 0) return;
    const n = this.#batch.count;
    const m = this.#batch.finishMessage();
    this.#push({ buf: m.buf, entries: n, to: this.#opts.targets, observed: m.observed, update: true });
    this.#kick();
  }

  #push(o: Outgoing): void {
    if (this.queued >= this.#maxQueue) {
      this.#qHead++;
      this.counters.queueDrops++;
    }
    this.#queue.push(o);
  }

  #kick(): void {
    this.#pump ??= this.#run().finally(() => {
      this.#pump = undefined;
    });
  }

  async #drain(): Promise<void> {
    while (this.#pump || this.queued > 0) {
      this.#kick();
      await this.#pump;
    }
  }

  async #run(): Promise<void> {
    let burst = 0;
    while (this.#qHead < this.#queue.length) {
      // A long queue (a 100,000-entry snapshot is thousands of datagrams) must not keep the event
      // loop from its I/O: datagram sends complete without reaching the poll phase, so without
      // this nothing else (VRRP adverts, this director's own receiver) would run until the end.
      if (++burst % 64 === 0) await new Promise<void>((r) => setImmediate(r));
      const o = this.#queue[this.#qHead]!;
      this.#queue[this.#qHead] = undefined as unknown as Outgoing;
      this.#qHead++;
      if (this.#qHead > 1024 && this.#qHead * 2 > this.#queue.length) {
        this.#queue.splice(0, this.#qHead);
        this.#qHead = 0;
      }
      // Stamped and sealed as it leaves: sequence numbers follow the order on the wire, and the
      // entries' ages run to this moment.
      const now = this.#clock();
      if (o.observed) stampTiming(o.buf, o.observed, now, this.#opts.transitUs?.() ?? null);
      this.#opts.auth.seal(o.buf);
      if (o.update && o.entries > 0) this.#opts.sentLog?.record(this.#opts.auth.lastSeq, now);
      for (const t of o.to) {
        try {
          await this.#transport.send(o.buf, t.port, t.address);
          this.counters.messages++;
          this.counters.entries += o.entries;
          this.counters.bytes += o.buf.length;
        } catch (err) {
          this.counters.sendErrors++;
          this.#opts.onError?.(err);
        }
      }
    }
  }
}
