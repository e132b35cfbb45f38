/**
 * ProxyDataplane: the user-space L4 proxy (lb_kind "PROXY"), the main-thread side.
 *
 * It spawns worker threads (worker.js next to this file; one by default, `workers` of them, one per
 * core in the daemon) that own every listening socket, every proxied TCP connection and every UDP
 * flow, so no per-packet or per-connection work runs on the VRRP event loop. The facade only posts small control messages (protocol.ts)
 * and awaits the replies; whatever it posts was validated with the worker's own validators
 * first, so the worker never drops a request a caller waits on.
 *
 * The desired state (services, pools, served set) is kept by DataplaneLifecycle; if a worker
 * dies the facade emits 'error' (only when someone listens) and, unless autoRestart is false,
 * starts that worker again and re-applies that state to it ('restart' is emitted once re-applied);
 * the other workers go on serving meanwhile. Open connections and UDP flows die with the worker; persistence templates restored via restore()
 * do too (the sync layer sends them again).
 *
 * Besides the contract it provides ConnectionState (restore / snapshot / onEvent) for connection
 * sync. Events: 'error' (Error), 'restart' (), 'serveError' (key, Error) when re-serving after a
 * restart fails.
 */

import { Worker } from 'node:worker_threads';
import { KeepaliveError, type ErrorCode } from '../../../util/errors.js';
import { endpointText } from '../../../util/endpoint.js';
import type {
  ConnectionEvent,
  ConnectionSnapshot,
  ConnectionState,
  DataplaneStats,
  DestStats,
  LbKind,
  PoolSpec,
  RestoreEntry,
  ServiceSpec,
  ServiceStats,
} from '../contract.js';
import { DataplaneLifecycle } from '../lifecycle.js';
import { SHARED_CURSOR_SLOTS } from './sched/shared.js';
import { isRestoreEntry, isServiceSpec, type ConnectionLimits, type LimitStats, type ProxyStats, type Request, type WireError, type WorkerMessage } from './protocol.js';

export type { ConnectionLimits } from './protocol.js';

/** The compiled worker entry, resolved next to this module. */
export const WORKER_URL = new URL('./worker.js', import.meta.url);

export interface ProxyDataplaneOptions {
  /** Restart a worker when it dies and re-apply services/pools/serving. Default true. */
  readonly autoRestart?: boolean;
  /** At most this many restarts per worker per minute; beyond, that worker stays down. Default 5. */
  readonly maxRestartsPerMinute?: number;
  /** How often the worker posts a batch of connection events (onEvent), ms. Default 100. */
  readonly eventBatchMs?: number;
  /**
   * Worker threads (default 1). Every worker serves every TCP service without persistence on its
   * own SO_REUSEPORT socket (the kernel spreads the connections); UDP services and services with
   * persistence are served by the first worker only, so a client's flows and templates stay in
   * one table. Each worker schedules its own share of the connections (rr, wrr, lc... per worker).
   */
  readonly workers?: number;
  /** The worker's connection budget and idle timeouts (maxConns 0 = unlimited); also setLimits(). */
  readonly limits?: ConnectionLimits;
  /**
   * TCP services relay through the native engine (native/relay_engine.c, tcp-relay.ts): default
   * true; false (or an addon that cannot start one) relays with node:net (tcp.ts). UDP services
   * always use udp.ts. stats() says which per service (ServiceStats.relay).
   */
  readonly nativeRelay?: boolean;
  /**
   * The native relay splices (splice(2) through a pooled pipe, no copy through user space) a
   * direction that has moved this many bytes and keeps filling its 64 KiB buffer; -1: never.
   * Default: the engine's (256 KiB). Request/response traffic never gets there.
   */
  readonly spliceAfterBytes?: number;
}

const KNOWN_CODES: readonly ErrorCode[] = ['E_CONFIG_INVALID', 'E_SOCKET', 'E_CLOSED', 'E_CONTROL_PROTOCOL'];

type Body<R> = R extends { seq: number } ? Omit<R, 'seq'> : never;
type RequestBody = Body<Request>;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** One worker thread and what is in flight with it. */
interface Slot {
  readonly index: number;
  worker: Worker | null;
  seq: number;
  readonly pending: Map<number, Pending>;
  /** Restart times within the last minute. */
  restarts: number[];
}

function toError(e: WireError): KeepaliveError {
  const code = (KNOWN_CODES as readonly string[]).includes(e.code) ? (e.code as ErrorCode) : 'E_SOCKET';
  const cause = e.errno ? Object.assign(new Error(e.message), { code: e.errno }) : undefined;
  return new KeepaliveError(code, e.message, cause ? { cause } : undefined);
}

const sum = (a: number | null, b: number | null): number | null => (a === null || b === null ? (a ?? b) : a + b);

/** One service's counters over every worker (a worker that does not serve it adds zeros). */
function mergeService(list: readonly ServiceStats[]): ServiceStats {
  const first = list[0]!;
  const dests = new Map<string, DestStats>();
  for (const s of list) {
    for (const d of s.dests) {
      const k = `${d.sorry ? 's' : 'r'}|${d.key}`;
      const m = dests.get(k);
      if (!m) { dests.set(k, { ...d }); continue; }
      m.conns += d.conns;
      m.in_bytes += d.in_bytes;
      m.out_bytes += d.out_bytes;
      m.in_pkts = sum(m.in_pkts, d.in_pkts);
      m.out_pkts = sum(m.out_pkts, d.out_pkts);
      m.active_conns = sum(m.active_conns, d.active_conns);
      m.inact_conns = sum(m.inact_conns, d.inact_conns);
      m.connect_errors += d.connect_errors;
    }
  }
  const out: ServiceStats = { ...first, dests: [...dests.values()] };
  for (const s of list.slice(1)) {
    out.serving ||= s.serving;
    out.draining ||= s.draining;
    out.sorry ||= s.sorry;
    out.conns += s.conns;
    out.in_bytes += s.in_bytes;
    out.out_bytes += s.out_bytes;
    out.in_pkts = sum(out.in_pkts, s.in_pkts);
    out.out_pkts = sum(out.out_pkts, s.out_pkts);
    out.active_conns = sum(out.active_conns, s.active_conns);
    out.inact_conns = sum(out.inact_conns, s.inact_conns);
    out.dropped += s.dropped;
  }
  return out;
}

/** The workers' stats as one: services summed by key, in the first worker's order. */
/**
 * Worker `index` of `workers`' share of the connection budget: maxConns split as evenly as it goes
 * (the first workers take the remainder), the low-water mark scaled alike; the idle timeouts are
 * the same for every worker. maxConns 0 (unlimited) stays 0.
 */
export function workerLimits(limits: ConnectionLimits, workers: number, index: number): ConnectionLimits {
  if (workers <= 1 || limits.maxConns === 0) return limits;
  const share = Math.floor(limits.maxConns / workers) + (index < limits.maxConns % workers ? 1 : 0);
  const maxConns = Math.max(1, share);
  const lowWater = Math.min(maxConns, Math.floor((limits.lowWater * maxConns) / limits.maxConns));
  return { ...limits, maxConns, lowWater };
}

function mergeLimits(all: readonly LimitStats[]): LimitStats {
  const sum = (k: 'max_conns' | 'low_water' | 'in_use' | 'pauses' | 'refused' | 'refused_per_source' | 'idle_closed') => all.reduce((n, l) => n + l[k], 0);
  return {
    max_conns: sum('max_conns'), low_water: sum('low_water'), in_use: sum('in_use'), paused: all.some((l) => l.paused),
    pauses: sum('pauses'), refused: sum('refused'), refused_per_source: sum('refused_per_source'), idle_closed: sum('idle_closed'),
  };
}

export function mergeProxyStats(all: readonly ProxyStats[]): ProxyStats {
  if (all.length === 1) return all[0]!;
  const byKey = new Map<string, ServiceStats[]>();
  for (const st of all) for (const s of st.services) {
    const l = byKey.get(s.key);
    if (l) l.push(s);
    else byKey.set(s.key, [s]);
  }
  return {
    services: [...byKey.values()].map(mergeService),
    malformed: all.reduce((n, s) => n + s.malformed, 0),
    events_dropped: all.reduce((n, s) => n + s.events_dropped, 0),
    limits: mergeLimits(all.map((s) => s.limits)),
    splice: {
      spliced_bytes: all.reduce((n, s) => n + s.splice.spliced_bytes, 0),
      pipes_made: all.reduce((n, s) => n + s.splice.pipes_made, 0),
      pipes_in_use: all.reduce((n, s) => n + s.splice.pipes_in_use, 0),
      fallbacks: all.reduce((n, s) => n + s.splice.fallbacks, 0),
    },
  };
}

export class ProxyDataplane extends DataplaneLifecycle implements ConnectionState {
  readonly name = 'proxy';
  readonly kinds: readonly LbKind[] = ['PROXY'];
  private readonly slots: Slot[];
  private readonly listeners_: Array<(events: readonly ConnectionEvent[]) => void> = [];
  private readonly autoRestart: boolean;
  private readonly maxRestarts: number;
  private readonly eventBatchMs: number | undefined;
  private restartCount = 0;
  private restoreDropped = 0;
  /** rr/wrr cursors every worker shares (sched/shared.ts); a restarted worker gets the same. */
  private readonly cursors: SharedArrayBuffer | undefined;
  private limits: ConnectionLimits | undefined;
  private readonly nativeRelay: boolean;
  private readonly spliceAfterBytes: number | undefined;

  constructor(options: ProxyDataplaneOptions = {}) {
    super();
    this.autoRestart = options.autoRestart ?? true;
    this.maxRestarts = options.maxRestartsPerMinute ?? 5;
    this.eventBatchMs = options.eventBatchMs;
    this.nativeRelay = options.nativeRelay ?? true;
    this.spliceAfterBytes = options.spliceAfterBytes;
    const n = Math.max(1, Math.floor(options.workers ?? 1));
    this.cursors = n > 1 ? new SharedArrayBuffer(SHARED_CURSOR_SLOTS * 4) : undefined;
    this.slots = Array.from({ length: n }, (_, index) => ({ index, worker: null, seq: 0, pending: new Map(), restarts: [] }));
    for (const slot of this.slots) this.spawn(slot);
    if (options.limits) void this.setLimits(options.limits).catch(() => undefined);
  }

  /** Worker threads this data plane runs. */
  get workerCount(): number {
    return this.slots.length;
  }

  /**
   * The connection budget shared by every service and the idle timeouts (re-applied after a worker
   * restart): descriptor exhaustion must never reach the control plane. With several workers each
   * gets its share of the budget (workerLimits).
   */
  async setLimits(limits: ConnectionLimits): Promise<void> {
    this.limits = { ...limits };
    await Promise.all(this.slots.map((slot) => this.request(slot, { t: 'limits', limits: workerLimits(limits, this.slots.length, slot.index) })));
  }

  // ---------------------------------------------------------------- DataplaneLifecycle hooks

  protected override checkService(spec: ServiceSpec): string | null {
    return isServiceSpec(spec)
      ? null
      : 'the proxy (lb_kind PROXY) listens on one TCP or UDP address:port; fwmark and port-set services need a kernel lb_kind';
  }

  /**
   * Only what changed goes to the workers (a reload of one service among 1,000 posts one spec, not
   * 1,000 to each worker); a restarted worker gets the whole desired set (restartSlot).
   */
  protected applyConfigure(_services: readonly ServiceSpec[], removed: readonly ServiceSpec[], changed: readonly ServiceSpec[]): Promise<void> {
    if (changed.length === 0 && removed.length === 0) return Promise.resolve();
    return this.broadcast({ t: 'update', services: changed, removed: removed.map((s) => s.key) }).then(() => undefined);
  }

  protected applyPool(spec: ServiceSpec, pool: PoolSpec): Promise<void> {
    const portless = [...pool.dests.map((d) => d.endpoint), ...(pool.sorry ? [pool.sorry] : [])].find((e) => e.port === 0);
    if (portless) {
      return Promise.reject(new KeepaliveError('E_CONFIG_INVALID', `${spec.key}: the proxy connects to a port; ${endpointText(portless)} has none`));
    }
    return this.broadcast({ t: 'setPool', key: spec.key, pool }).then(() => undefined);
  }

  /**
   * Listen on the service address (every worker, or the first one: see ProxyDataplaneOptions.workers);
   * rejects with E_SOCKET (cause.code EADDRNOTAVAIL, EADDRINUSE...) and then listens nowhere.
   */
  protected async applyServe(spec: ServiceSpec): Promise<void> {
    const results = await Promise.allSettled(this.slots.map((s) => this.request(s, { t: 'serve', key: spec.key })));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!failed) return;
    // All or nothing: a worker that did listen stops again.
    await Promise.allSettled(this.slots.map((s, i) => (results[i]!.status === 'fulfilled' ? this.request(s, { t: 'unserve', key: spec.key, drainMs: 0 }) : undefined)));
    throw failed.reason;
  }

  /** Stop accepting at once; open connections get up to drainMs, then are destroyed. */
  protected applyUnserve(spec: ServiceSpec, drainMs: number): Promise<void> {
    return this.broadcast({ t: 'unserve', key: spec.key, drainMs }).then(() => undefined);
  }

  protected async collectStats(): Promise<DataplaneStats> {
    const s = mergeProxyStats((await this.broadcast({ t: 'stats' })) as ProxyStats[]);
    const l = s.limits;
    return {
      services: s.services,
      extra: {
        malformed: s.malformed, events_dropped: s.events_dropped, restarts: this.restartCount, restore_dropped: this.restoreDropped, workers: this.slots.length,
        conn_limit: l.max_conns, conn_in_use: l.in_use, conn_paused: l.paused ? 1 : 0, conn_pauses: l.pauses,
        conn_refused: l.refused, conn_refused_per_source: l.refused_per_source, conn_idle_closed: l.idle_closed,
        relay_spliced_bytes: s.splice.spliced_bytes, relay_pipes_made: s.splice.pipes_made, relay_pipes_in_use: s.splice.pipes_in_use, relay_splice_fallbacks: s.splice.fallbacks,
      },
    };
  }

  protected async applyClose(): Promise<void> {
    await Promise.all(this.slots.map(async (slot) => {
      const w = slot.worker;
      if (!w) return;
      try {
        await Promise.race([this.request(slot, { t: 'shutdown' }, true), new Promise((r) => setTimeout(r, 2000).unref())]);
      } catch {
        /* the worker is going away anyway */
      }
      slot.worker = null;
      await w.terminate();
      this.failPending(slot, new KeepaliveError('E_CLOSED', 'proxy data plane closed'));
    }));
  }

  // ---------------------------------------------------------------- ConnectionState

  /** Load persistence templates / UDP flows synced from the peer director (malformed entries are counted and skipped). */
  async restore(entries: readonly RestoreEntry[]): Promise<void> {
    this.assertOpen();
    // TCP connections cannot move into a user-space proxy: skipped, not counted as malformed.
    const mine = entries.filter((e) => e.type !== 'conn');
    const ok = mine.filter((e) => isRestoreEntry(e));
    this.restoreDropped += mine.length - ok.length;
    await this.broadcast({ t: 'restore', entries: ok });
  }

  /** The live connection table (templates, UDP flows, TCP connections), e.g. for a peer's full sync. */
  async snapshot(): Promise<ConnectionSnapshot> {
    this.assertOpen();
    const all = (await this.broadcast({ t: 'snapshot' })) as ConnectionSnapshot[];
    if (all.length === 1) return all[0]!;
    // Templates and flows live in the first worker (see workers); restored ones are in every worker once.
    const seen = new Set<string>();
    const templates = all.flatMap((x) => x.templates).filter((t) => {
      const k = `${t.service}\u0000${t.client}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    return { templates, udpFlows: all[0]!.udpFlows, conns: all.flatMap((x) => x.conns) };
  }

  /**
   * Subscribe to batched connection events (at most one batch per eventBatchMs per worker). The
   * workers only produce events while at least one subscriber exists. Returns an unsubscribe function.
   */
  onEvent(cb: (events: readonly ConnectionEvent[]) => void): () => void {
    this.listeners_.push(cb);
    if (this.listeners_.length === 1) void this.broadcast(this.eventsOn()).catch(() => {});
    return () => {
      const i = this.listeners_.indexOf(cb);
      if (i < 0) return;
      this.listeners_.splice(i, 1);
      if (this.listeners_.length === 0 && !this.isClosed) void this.broadcast({ t: 'events', enabled: false }).catch(() => {});
    };
  }

  // ---------------------------------------------------------------- the workers

  /** The first worker thread, for diagnostics (and tests that kill it). */
  get workerThread(): Worker | null {
    return this.slots[0]!.worker;
  }

  /** Every worker thread (null where one is down). */
  get workerThreads(): (Worker | null)[] {
    return this.slots.map((s) => s.worker);
  }

  private eventsOn(): RequestBody {
    return this.eventBatchMs === undefined ? { t: 'events', enabled: true } : { t: 'events', enabled: true, batchMs: this.eventBatchMs };
  }

  private spawn(slot: Slot): void {
    const w = new Worker(WORKER_URL, {
      name: this.slots.length > 1 ? `keepalive-proxy-${slot.index}` : 'keepalive-proxy',
      workerData: { index: slot.index, workers: this.slots.length, nativeRelay: this.nativeRelay, ...(this.spliceAfterBytes !== undefined ? { spliceAfterBytes: this.spliceAfterBytes } : {}), ...(this.cursors ? { cursors: this.cursors } : {}) },
    });
    slot.worker = w;
    w.on('message', (m: WorkerMessage) => this.onMessage(slot, m));
    w.on('error', (err) => this.workerDied(slot, w, err));
    w.on('exit', (code) => this.workerDied(slot, w, new KeepaliveError('E_SOCKET', `proxy worker ${slot.index} exited with code ${code}`)));
  }

  private workerDied(slot: Slot, w: Worker, err: Error): void {
    if (slot.worker !== w) return;
    slot.worker = null;
    this.failPending(slot, new KeepaliveError('E_CLOSED', `proxy worker died: ${err.message}`, { cause: err }));
    if (this.isClosed) return;
    this.reportError(err);
    const now = Date.now();
    slot.restarts = slot.restarts.filter((t) => now - t < 60_000);
    if (!this.autoRestart || slot.restarts.length >= this.maxRestarts) return;
    slot.restarts.push(now);
    void this.restartSlot(slot).then(() => this.emit('restart'), (e: unknown) => this.reportError(e as Error));
  }

  /** Start every worker anew and re-apply the desired state. */
  async restart(): Promise<void> {
    this.assertOpen();
    await Promise.all(this.slots.map((s) => this.restartSlot(s)));
    this.emit('restart');
  }

  /** Start one worker anew and re-apply the desired state to it; the other workers are not touched. */
  private async restartSlot(slot: Slot): Promise<void> {
    this.assertOpen();
    if (slot.worker) {
      // Shut down first so sockets close cleanly before the thread is terminated.
      await Promise.race([this.request(slot, { t: 'shutdown' }).catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
      const old = slot.worker;
      slot.worker = null;
      if (old) await old.terminate();
    }
    this.spawn(slot);
    this.restartCount++;
    try {
      if (this.listeners_.length > 0) await this.request(slot, this.eventsOn());
      if (this.limits) await this.request(slot, { t: 'limits', limits: workerLimits(this.limits, this.slots.length, slot.index) });
      const services = this.desiredServices;
      await this.request(slot, { t: 'configure', services });
      for (const s of services) {
        const pool = this.desiredPool(s.key);
        if (pool) await this.request(slot, { t: 'setPool', key: s.key, pool });
      }
    } catch (err) {
      this.reportError(err as Error);
      return;
    }
    for (const s of this.desiredServices) {
      if (!this.isServed(s.key)) continue;
      try {
        await this.request(slot, { t: 'serve', key: s.key });
      } catch (err) {
        this.emit('serveError', s.key, err);
      }
    }
  }

  private onMessage(slot: Slot, m: WorkerMessage): void {
    if (m.t === 'reply') {
      const p = slot.pending.get(m.seq);
      if (!p) return;
      slot.pending.delete(m.seq);
      if (m.ok) p.resolve(m.result);
      else p.reject(toError(m.error));
    } else if (m.t === 'events') {
      for (const cb of [...this.listeners_]) {
        try {
          cb(m.events);
        } catch {
          /* a subscriber's bug must not break the facade */
        }
      }
    }
  }

  /** The same request to every worker; resolves with their results in worker order. */
  private broadcast(body: RequestBody): Promise<unknown[]> {
    return Promise.all(this.slots.map((s) => this.request(s, body)));
  }

  private request(slot: Slot, body: RequestBody, duringClose = false): Promise<unknown> {
    if ((this.isClosed && !duringClose) || !slot.worker) {
      return Promise.reject(new KeepaliveError('E_CLOSED', this.isClosed ? 'proxy data plane closed' : 'proxy worker is down'));
    }
    const seq = ++slot.seq;
    const w = slot.worker;
    return new Promise((resolve, reject) => {
      slot.pending.set(seq, { resolve, reject });
      w.postMessage({ ...body, seq });
    });
  }

  private failPending(slot: Slot, err: Error): void {
    const all = [...slot.pending.values()];
    slot.pending.clear();
    for (const p of all) p.reject(err);
  }
}
