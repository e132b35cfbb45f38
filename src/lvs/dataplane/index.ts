/**
 * DataPlane: the main-thread facade of the user-space L4 virtual-server data plane.
 *
 * It spawns ONE worker thread (worker.js next to this file) that owns every listening socket,
 * every proxied TCP connection and every UDP flow, so no per-packet or per-connection work
 * runs on the VRRP event loop. The facade only posts small control messages (protocol.ts)
 * and awaits the replies.
 *
 * The facade remembers the desired state (services, pools, which services are served); if
 * the worker dies it emits 'error' (only when someone listens: an unhandled 'error' must not
 * take the VRRP daemon down) and, unless autoRestart is false, starts a new worker and
 * re-applies that state ('restart' is emitted once re-applied). Open connections and UDP
 * flows die with the worker; persistence templates restored via restore() do too (the sync
 * layer sends them again).
 *
 * Events: 'error' (Error), 'restart' (), 'serveError' (id, Error) when re-serving after a
 * restart fails.
 */

import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { KeepaliveError, type ErrorCode } from '../../util/errors.js';
import type {
  ConnectionLimits,
  DataPlaneEvent,
  DataPlaneSnapshot,
  DataPlaneStats,
  DestinationSpec,
  Request,
  RestoreEntry,
  ServiceSpec,
  SorrySpec,
  WireError,
  WorkerMessage,
} from './protocol.js';

export type {
  ConnectionLimits,
  ConnEntry,
  DataPlaneEvent,
  DataPlaneSnapshot,
  DataPlaneStats,
  DestinationSpec,
  RealServerStats,
  RestoreEntry,
  ServiceSpec,
  ServiceStats,
  SorrySpec,
  TemplateEntry,
  UdpFlowEntry,
} from './protocol.js';
export { serviceId } from './protocol.js';

/** The compiled worker entry, resolved next to this module. */
export const WORKER_URL = new URL('./worker.js', import.meta.url);

export interface DataPlaneOptions {
  /** Restart the worker when it dies and re-apply services/pools/serving. Default true. */
  readonly autoRestart?: boolean;
  /** At most this many restarts per minute; beyond, the data plane stays down. Default 5. */
  readonly maxRestartsPerMinute?: number;
  /** How often the worker posts a batch of connection events (onEvent), ms. Default 100. */
  readonly eventBatchMs?: number;
  /** The worker's connection budget (maxConns 0 = unlimited); also settable with setLimits(). */
  readonly limits?: ConnectionLimits;
}

const KNOWN_CODES: readonly ErrorCode[] = [
  'E_CONFIG_INVALID',
  'E_SOCKET',
  'E_CLOSED',
  'E_CONTROL_PROTOCOL',
];

type Body<R> = R extends { seq: number } ? Omit<R, 'seq'> : never;
type RequestBody = Body<Request>;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

function toError(e: WireError): KeepaliveError {
  const code = (KNOWN_CODES as readonly string[]).includes(e.code) ? (e.code as ErrorCode) : 'E_SOCKET';
  const cause = e.errno ? Object.assign(new Error(e.message), { code: e.errno }) : undefined;
  return new KeepaliveError(code, e.message, cause ? { cause } : undefined);
}

export class DataPlane extends EventEmitter {
  private worker: Worker | null = null;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private closing: Promise<void> | null = null;
  private readonly listeners_: Array<(events: readonly DataPlaneEvent[]) => void> = [];
  private readonly autoRestart: boolean;
  private readonly maxRestarts: number;
  private readonly eventBatchMs: number | undefined;
  private restarts: number[] = [];
  // Desired state, re-applied after a worker restart.
  private services: readonly ServiceSpec[] = [];
  private readonly pools = new Map<string, { dests: readonly DestinationSpec[]; sorry: SorrySpec | null }>();
  private readonly served = new Set<string>();
  private limits: ConnectionLimits | undefined;

  constructor(options: DataPlaneOptions = {}) {
    super();
    this.autoRestart = options.autoRestart ?? true;
    this.maxRestarts = options.maxRestartsPerMinute ?? 5;
    this.eventBatchMs = options.eventBatchMs;
    this.spawn();
    if (options.limits) void this.setLimits(options.limits).catch(() => undefined);
  }

  /** The connection budget shared by every service (re-applied after a worker restart). */
  async setLimits(limits: ConnectionLimits): Promise<void> {
    this.limits = { ...limits };
    await this.request({ t: 'limits', limits: this.limits });
  }

  /** The full desired set of virtual services. Services not listed any more drain (their drainMs) and go. */
  async configure(services: readonly ServiceSpec[]): Promise<void> {
    const ids = new Set(services.map((s) => s.id));
    for (const id of [...this.pools.keys()]) if (!ids.has(id)) this.pools.delete(id);
    for (const id of [...this.served]) if (!ids.has(id)) this.served.delete(id);
    this.services = services.map((s) => ({ ...s }));
    await this.request({ t: 'configure', services: this.services });
  }

  /** The pool of a service: weight 0 = quiescent; removed destinations keep their open connections. */
  async setPool(id: string, destinations: readonly DestinationSpec[], sorry: SorrySpec | null): Promise<void> {
    const dests = destinations.map((d) => ({ id: d.id, address: d.address, port: d.port, weight: d.weight, ...(d.uthreshold ? { uthreshold: d.uthreshold } : {}), ...(d.lthreshold ? { lthreshold: d.lthreshold } : {}) }));
    const s = sorry ? { address: sorry.address, port: sorry.port } : null;
    await this.request({ t: 'setPool', id, dests, sorry: s });
    this.pools.set(id, { dests, sorry: s });
  }

  /** Listen on the service address; rejects with E_SOCKET (cause.code EADDRNOTAVAIL, EADDRINUSE...). */
  async serve(id: string): Promise<void> {
    await this.request({ t: 'serve', id });
    this.served.add(id);
  }

  /** Stop accepting at once; open connections get up to drainMs, then are destroyed. */
  async unserve(id: string, drainMs: number): Promise<void> {
    this.served.delete(id);
    await this.request({ t: 'unserve', id, drainMs: Math.max(0, Math.floor(drainMs)) });
  }

  async stats(): Promise<DataPlaneStats> {
    return (await this.request({ t: 'stats' })) as DataPlaneStats;
  }

  /** Load persistence templates / UDP flows synced from the peer director. */
  async restore(entries: readonly RestoreEntry[]): Promise<void> {
    await this.request({ t: 'restore', entries });
  }

  /** The live connection table (templates, UDP flows, TCP connections), e.g. for a peer's full sync. */
  async snapshot(): Promise<DataPlaneSnapshot> {
    return (await this.request({ t: 'snapshot' })) as DataPlaneSnapshot;
  }

  private eventsOn(): RequestBody {
    return this.eventBatchMs === undefined ? { t: 'events', enabled: true } : { t: 'events', enabled: true, batchMs: this.eventBatchMs };
  }

  /**
   * Subscribe to batched connection events (at most one batch per 100 ms). The worker only
   * produces events while at least one subscriber exists. Returns an unsubscribe function.
   */
  onEvent(cb: (events: readonly DataPlaneEvent[]) => void): () => void {
    this.listeners_.push(cb);
    if (this.listeners_.length === 1) void this.request(this.eventsOn()).catch(() => {});
    return () => {
      const i = this.listeners_.indexOf(cb);
      if (i < 0) return;
      this.listeners_.splice(i, 1);
      if (this.listeners_.length === 0 && !this.closing) void this.request({ t: 'events', enabled: false }).catch(() => {});
    };
  }

  /** The worker thread, for diagnostics (and tests that kill it). */
  get workerThread(): Worker | null {
    return this.worker;
  }

  /** Stop everything: all listeners and connections end, the worker exits. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    const w = this.worker;
    this.closing = (async () => {
      if (!w) return;
      try {
        await Promise.race([this.request({ t: 'shutdown' }, true), new Promise((r) => setTimeout(r, 2000).unref())]);
      } catch {
        /* the worker is going away anyway */
      }
      this.worker = null;
      await w.terminate();
      this.failPending(new KeepaliveError('E_CLOSED', 'data plane closed'));
    })();
    return this.closing;
  }

  private spawn(): void {
    const w = new Worker(WORKER_URL, { name: 'keepalive-dataplane' });
    this.worker = w;
    w.on('message', (m: WorkerMessage) => this.onMessage(m));
    w.on('error', (err) => this.workerDied(w, err));
    w.on('exit', (code) => this.workerDied(w, new KeepaliveError('E_SOCKET', `data plane worker exited with code ${code}`)));
  }

  private workerDied(w: Worker, err: Error): void {
    if (this.worker !== w) return;
    this.worker = null;
    this.failPending(new KeepaliveError('E_CLOSED', `data plane worker died: ${err.message}`, { cause: err }));
    if (this.closing) return;
    if (this.listenerCount('error') > 0) this.emit('error', err);
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < 60_000);
    if (!this.autoRestart || this.restarts.length >= this.maxRestarts) return;
    this.restarts.push(now);
    void this.restart();
  }

  /** Start a new worker and re-apply the desired state. */
  async restart(): Promise<void> {
    if (this.closing) throw new KeepaliveError('E_CLOSED', 'data plane closed');
    if (this.worker) {
      // Shut down first so sockets close cleanly before the thread is terminated.
      await Promise.race([this.request({ t: 'shutdown' }).catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
      const old = this.worker;
      this.worker = null;
      if (old) await old.terminate();
    }
    this.spawn();
    const enable = this.listeners_.length > 0;
    try {
      if (enable) await this.request(this.eventsOn());
      if (this.limits) await this.request({ t: 'limits', limits: this.limits });
      await this.request({ t: 'configure', services: this.services });
      for (const [id, p] of this.pools) await this.request({ t: 'setPool', id, dests: p.dests, sorry: p.sorry });
    } catch (err) {
      if (this.listenerCount('error') > 0) this.emit('error', err);
      return;
    }
    for (const id of this.served) {
      try {
        await this.request({ t: 'serve', id });
      } catch (err) {
        this.emit('serveError', id, err);
      }
    }
    this.emit('restart');
  }

  private onMessage(m: WorkerMessage): void {
    if (m.t === 'reply') {
      const p = this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq);
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

  private request(body: RequestBody, duringClose = false): Promise<unknown> {
    if ((this.closing && !duringClose) || !this.worker) {
      return Promise.reject(new KeepaliveError('E_CLOSED', this.closing ? 'data plane closed' : 'data plane worker is down'));
    }
    const seq = ++this.seq;
    const w = this.worker;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      w.postMessage({ ...body, seq });
    });
  }

  private failPending(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }
}
