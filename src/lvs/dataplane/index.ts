/**
 * DataplaneSet: the one data plane the virtual-server manager and connection sync talk to. It
 * routes every service to the implementation that forwards its lb_kind, creating an
 * implementation only when the first service of its kinds is configured (no proxy worker thread
 * without a PROXY service, no nftables table without a DR/NAT/FULLNAT service), merges their
 * stats and closes them all.
 *
 * Implementations are registered in DATAPLANE_IMPLEMENTATIONS below: {name, kinds, create}. A
 * kind no registered implementation forwards is refused by configure() with
 * E_DATAPLANE_UNAVAILABLE before anything changes (the daemon then fails to start with that
 * message; `keepalive-ts check` is not concerned: the config itself is valid).
 *
 * An implementation stays once created, even when a reload removes its last service: it drains
 * those connections (configure with the empty set) and is closed with the set.
 */
import { availableParallelism } from 'node:os';
import { EventEmitter } from 'node:events';
import { KeepaliveError } from '../../util/errors.js';
import type { ServiceKey } from '../../util/endpoint.js';
import {
  hasAddressClaim,
  hasConnectionState,
  type AddressClaim,
  type ConnectionEvent,
  type ConnectionSnapshot,
  type ConnectionState,
  type Dataplane,
  type DataplaneStats,
  type LbKind,
  type PoolSpec,
  type RestoreEntry,
  type ServiceSpec,
} from './contract.js';
import { ProxyDataplane, type ConnectionLimits } from './proxy/index.js';
import { NFT_KINDS, NftablesDataplane } from './nftables/index.js';

export type { ConnectionLimits } from './proxy/index.js';

export * from './contract.js';

/** global.proxy_workers as the proxy takes it: 0 means one worker per CPU. */
export function proxyWorkerCount(configured: number, cpus: number = availableParallelism()): number {
  return configured > 0 ? configured : Math.max(1, cpus);
}

/** What the daemon hands every implementation it creates. */
export interface DataplaneContext {
  /** Connection-event batching (ms) when connection sync is on; implementation default otherwise. */
  readonly eventBatchMs?: number;
  /** Worker threads of the proxy (global.proxy_workers resolved: >= 1). Default 1. */
  readonly proxyWorkers?: number;
  /**
   * The proxy's connection budget (global.maxconn below the descriptor limit) and idle timeouts
   * (global.lvs_timeouts); see ProxyDataplane.setLimits. Kernel paths have their own limits.
   */
  readonly limits?: ConnectionLimits;
  /** Reports errors that happen outside a call (a worker died, a transaction failed later). */
  readonly onError?: (implementation: string, err: Error) => void;
  /**
   * NAT/FULLNAT connections are replicated by conntrackd: a TCP packet without SYN that conntrack
   * does not know is dropped, not scheduled (the client resends it once the commit is in), and an
   * unserved NAT service keeps its connections (NftablesOptions.conntrackReplicated).
   */
  readonly conntrackSync?: boolean;
  /**
   * Where client traffic arrives for a DR address that no interface of this director holds (an
   * address announced by BGP reaches the director through the interfaces of its BGP peers).
   */
  readonly ingress?: () => readonly string[];
  /** Warnings and notes of an implementation (e.g. a failed background transaction). */
  readonly log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

export interface DataplaneImplementation {
  readonly name: string;
  /** The lb_kinds it forwards; no two implementations share a kind. */
  readonly kinds: readonly LbKind[];
  create(ctx: DataplaneContext): Dataplane & Partial<ConnectionState>;
}

/** THE registration point: one entry per implementation. */
export const DATAPLANE_IMPLEMENTATIONS: readonly DataplaneImplementation[] = [
  {
    name: 'proxy',
    kinds: ['PROXY'],
    create: (ctx) => new ProxyDataplane({
      ...(ctx.eventBatchMs === undefined ? {} : { eventBatchMs: ctx.eventBatchMs }),
      ...(ctx.proxyWorkers === undefined ? {} : { workers: ctx.proxyWorkers }),
      ...(ctx.limits ? { limits: ctx.limits } : {}),
    }),
  },
  {
    // The kernel path: one nftables table per family, libnftables on the thread pool. Creating it
    // fails with E_DATAPLANE_UNAVAILABLE (naming the Debian package) when libnftables is missing.
    name: 'nftables',
    kinds: NFT_KINDS,
    create: (ctx) =>
      new NftablesDataplane({
        log: ctx.log ?? ((_level, msg) => ctx.onError?.('nftables', new Error(msg))),
        ...(ctx.eventBatchMs === undefined ? {} : { eventBatchMs: ctx.eventBatchMs }),
        ...(ctx.conntrackSync ? { conntrackReplicated: true } : {}),
        ...(ctx.ingress ? { ingress: ctx.ingress } : {}),
      }),
  },
];

interface Slot {
  readonly impl: DataplaneImplementation;
  instance: (Dataplane & Partial<ConnectionState>) | null;
  /** Its unsubscribe functions, one per onEvent subscriber of the set. */
  readonly unsubscribe: Map<(events: readonly ConnectionEvent[]) => void, () => void>;
}

export class DataplaneSet implements Dataplane, ConnectionState, AddressClaim {
  readonly name = 'set';
  readonly kinds: readonly LbKind[];
  #ctx: DataplaneContext;
  readonly #slots: Slot[];
  /** Which slot owns each configured service. */
  readonly #owner = new Map<ServiceKey, Slot>();
  readonly #subscribers: Array<(events: readonly ConnectionEvent[]) => void> = [];
  #closing: Promise<void> | null = null;

  constructor(ctx: DataplaneContext = {}, implementations: readonly DataplaneImplementation[] = DATAPLANE_IMPLEMENTATIONS) {
    this.#ctx = ctx;
    this.#slots = implementations.map((impl) => ({ impl, instance: null, unsubscribe: new Map() }));
    this.kinds = implementations.flatMap((i) => i.kinds);
  }

  /**
   * New connection limits (reload of maxconn / reserved_fds / lvs_timeouts): for the
   * implementations created so far and the ones created later.
   */
  async setLimits(limits: ConnectionLimits): Promise<void> {
    this.#ctx = { ...this.#ctx, limits };
    for (const s of this.#slots) {
      const inst = s.instance as (Dataplane & { setLimits?: (l: ConnectionLimits) => Promise<void> }) | null;
      if (inst?.setLimits) await inst.setLimits(limits);
    }
  }

  /** The implementation instances created so far, by name (diagnostics, tests). */
  get instances(): ReadonlyMap<string, Dataplane> {
    return new Map(this.#slots.filter((s) => s.instance).map((s) => [s.impl.name, s.instance!]));
  }

  #slotFor(kind: LbKind): Slot | undefined {
    return this.#slots.find((s) => s.impl.kinds.includes(kind));
  }

  #assertOpen(): void {
    if (this.#closing) throw new KeepaliveError('E_CLOSED', 'data plane closed');
  }

  #instance(slot: Slot): Dataplane & Partial<ConnectionState> {
    if (slot.instance) return slot.instance;
    const inst = slot.impl.create(this.#ctx);
    slot.instance = inst;
    if (inst instanceof EventEmitter) inst.on('error', (err: Error) => this.#ctx.onError?.(slot.impl.name, err));
    if (hasConnectionState(inst)) for (const cb of this.#subscribers) slot.unsubscribe.set(cb, inst.onEvent(cb));
    return inst;
  }

  #route(key: ServiceKey): Dataplane & Partial<ConnectionState> {
    const slot = this.#owner.get(key);
    if (!slot?.instance) throw new KeepaliveError('E_CONFIG_INVALID', `unknown virtual service ${key}`);
    return slot.instance;
  }

  /** Refuses, before anything changes, a service whose kind no implementation forwards. */
  async configure(services: readonly ServiceSpec[]): Promise<void> {
    this.#assertOpen();
    const bySlot = new Map<Slot, ServiceSpec[]>();
    for (const spec of services) {
      const slot = this.#slotFor(spec.kind);
      if (!slot) {
        throw new KeepaliveError(
          'E_DATAPLANE_UNAVAILABLE',
          `${spec.key}: no data plane forwards lb_kind "${spec.kind}" (have: ${this.kinds.join(', ')})`,
        );
      }
      let list = bySlot.get(slot);
      if (!list) bySlot.set(slot, (list = []));
      list.push(spec);
    }
    const jobs: Promise<void>[] = [];
    for (const slot of this.#slots) {
      const mine = bySlot.get(slot) ?? [];
      if (mine.length === 0 && !slot.instance) continue;
      jobs.push(this.#instance(slot).configure(mine));
    }
    this.#owner.clear();
    for (const [slot, list] of bySlot) for (const s of list) this.#owner.set(s.key, slot);
    // Every implementation is told its new set even if another one refuses.
    const results = await Promise.allSettled(jobs);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  setPool(key: ServiceKey, pool: PoolSpec): Promise<void> {
    try {
      this.#assertOpen();
      return this.#route(key).setPool(key, pool);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  serve(key: ServiceKey): Promise<void> {
    try {
      this.#assertOpen();
      return this.#route(key).serve(key);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  unserve(key: ServiceKey, drainMs: number): Promise<void> {
    try {
      this.#assertOpen();
      return this.#route(key).unserve(key, drainMs);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async stats(): Promise<DataplaneStats> {
    this.#assertOpen();
    const live = this.#slots.filter((s) => s.instance);
    const all = await Promise.all(live.map((s) => s.instance!.stats()));
    const out: DataplaneStats = { services: [], extra: {} };
    all.forEach((st, i) => {
      out.services.push(...st.services);
      for (const [k, v] of Object.entries(st.extra)) out.extra[`${live[i]!.impl.name}_${k}`] = v;
    });
    return out;
  }

  /**
   * Hands each entry to the implementation serving its service, synchronously up to the
   * implementation's own call (so a serve() issued right after is processed after it).
   * Entries of services no implementation with a connection table owns are skipped.
   */
  restore(entries: readonly RestoreEntry[]): Promise<void> {
    try {
      this.#assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    const bySlot = new Map<Slot, RestoreEntry[]>();
    for (const e of entries) {
      const slot = this.#owner.get(e.service);
      if (!slot?.instance || !hasConnectionState(slot.instance)) continue;
      let list = bySlot.get(slot);
      if (!list) bySlot.set(slot, (list = []));
      list.push(e);
    }
    return Promise.all([...bySlot].map(([slot, list]) => (slot.instance as ConnectionState).restore(list))).then(() => undefined);
  }

  async snapshot(): Promise<ConnectionSnapshot> {
    this.#assertOpen();
    const parts = await Promise.all(this.#slots.filter((s) => s.instance && hasConnectionState(s.instance)).map((s) => (s.instance as ConnectionState).snapshot()));
    return {
      templates: parts.flatMap((p) => p.templates),
      udpFlows: parts.flatMap((p) => p.udpFlows),
      conns: parts.flatMap((p) => p.conns),
    };
  }

  /** Subscribes to every implementation with a connection table, present and future. */
  onEvent(cb: (events: readonly ConnectionEvent[]) => void): () => void {
    this.#subscribers.push(cb);
    for (const slot of this.#slots) if (slot.instance && hasConnectionState(slot.instance)) slot.unsubscribe.set(cb, slot.instance.onEvent(cb));
    return () => {
      const i = this.#subscribers.indexOf(cb);
      if (i >= 0) this.#subscribers.splice(i, 1);
      for (const slot of this.#slots) {
        slot.unsubscribe.get(cb)?.();
        slot.unsubscribe.delete(cb);
      }
    };
  }

  /** Every implementation created that holds connections on local input is told (AddressClaim). */
  claim(addresses: readonly string[]): Promise<void> {
    if (this.#closing) return Promise.resolve();
    return Promise.all(this.#slots.flatMap((s) => (s.instance && hasAddressClaim(s.instance) ? [s.instance.claim(addresses)] : []))).then(() => undefined);
  }

  /** Whether a claim of `addresses` would wait on some implementation (AddressClaim.claimPending). */
  claimPending(addresses: readonly string[]): boolean {
    if (this.#closing || addresses.length === 0) return false;
    return this.#slots.some((s) => !!s.instance && hasAddressClaim(s.instance) && (s.instance.claimPending?.(addresses) ?? true));
  }

  /** Closes every implementation created. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= Promise.all(this.#slots.map((s) => s.instance?.close())).then(() => undefined);
    return this.#closing;
  }
}
