/**
 * ProxyDataplane: the user-space L4 proxy (lb_kind "PROXY"), the main-thread side.
 *
 * It spawns ONE worker thread (worker.js next to this file) that owns every listening socket,
 * every proxied TCP connection and every UDP flow, so no per-packet or per-connection work
 * runs on the VRRP event loop. The facade only posts small control messages (protocol.ts)
 * and awaits the replies; whatever it posts was validated with the worker's own validators
 * first, so the worker never drops a request a caller waits on.
 *
 * The desired state (services, pools, served set) is kept by DataplaneLifecycle; if the worker
 * dies the facade emits 'error' (only when someone listens) and, unless autoRestart is false,
 * starts a new worker and re-applies that state ('restart' is emitted once re-applied). Open
 * connections and UDP flows die with the worker; persistence templates restored via restore()
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
  LbKind,
  PoolSpec,
  RestoreEntry,
  ServiceSpec,
} from '../contract.js';
import { DataplaneLifecycle } from '../lifecycle.js';
import { isRestoreEntry, isServiceSpec, type ProxyStats, type Request, type WireError, type WorkerMessage } from './protocol.js';

/** The compiled worker entry, resolved next to this module. */
export const WORKER_URL = new URL('./worker.js', import.meta.url);

export interface ProxyDataplaneOptions {
  /** Restart the worker when it dies and re-apply services/pools/serving. Default true. */
  readonly autoRestart?: boolean;
  /** At most this many restarts per minute; beyond, the data plane stays down. Default 5. */
  readonly maxRestartsPerMinute?: number;
  /** How often the worker posts a batch of connection events (onEvent), ms. Default 100. */
  readonly eventBatchMs?: number;
}

const KNOWN_CODES: readonly ErrorCode[] = ['E_CONFIG_INVALID', 'E_SOCKET', 'E_CLOSED', 'E_CONTROL_PROTOCOL'];

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

export class ProxyDataplane extends DataplaneLifecycle implements ConnectionState {
  readonly name = 'proxy';
  readonly kinds: readonly LbKind[] = ['PROXY'];
  private worker: Worker | null = null;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners_: Array<(events: readonly ConnectionEvent[]) => void> = [];
  private readonly autoRestart: boolean;
  private readonly maxRestarts: number;
  private readonly eventBatchMs: number | undefined;
  private restarts: number[] = [];
  private restartCount = 0;
  private restoreDropped = 0;

  constructor(options: ProxyDataplaneOptions = {}) {
    super();
    this.autoRestart = options.autoRestart ?? true;
    this.maxRestarts = options.maxRestartsPerMinute ?? 5;
    this.eventBatchMs = options.eventBatchMs;
    this.spawn();
  }

  // ---------------------------------------------------------------- DataplaneLifecycle hooks

  protected override checkService(spec: ServiceSpec): string | null {
    return isServiceSpec(spec)
      ? null
      : 'the proxy (lb_kind PROXY) listens on one TCP or UDP address:port; fwmark and port-set services need a kernel lb_kind';
  }

  protected applyConfigure(services: readonly ServiceSpec[]): Promise<void> {
    return this.request({ t: 'configure', services }).then(() => undefined);
  }

  protected applyPool(spec: ServiceSpec, pool: PoolSpec): Promise<void> {
    const portless = [...pool.dests.map((d) => d.endpoint), ...(pool.sorry ? [pool.sorry] : [])].find((e) => e.port === 0);
    if (portless) {
      return Promise.reject(new KeepaliveError('E_CONFIG_INVALID', `${spec.key}: the proxy connects to a port; ${endpointText(portless)} has none`));
    }
    return this.request({ t: 'setPool', key: spec.key, pool }).then(() => undefined);
  }

  /** Listen on the service address; rejects with E_SOCKET (cause.code EADDRNOTAVAIL, EADDRINUSE...). */
  protected applyServe(spec: ServiceSpec): Promise<void> {
    return this.request({ t: 'serve', key: spec.key }).then(() => undefined);
  }

  /** Stop accepting at once; open connections get up to drainMs, then are destroyed. */
  protected applyUnserve(spec: ServiceSpec, drainMs: number): Promise<void> {
    return this.request({ t: 'unserve', key: spec.key, drainMs }).then(() => undefined);
  }

  protected async collectStats(): Promise<DataplaneStats> {
    const s = (await this.request({ t: 'stats' })) as ProxyStats;
    return {
      services: s.services,
      extra: { malformed: s.malformed, events_dropped: s.events_dropped, restarts: this.restartCount, restore_dropped: this.restoreDropped },
    };
  }

  protected async applyClose(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    try {
      await Promise.race([this.request({ t: 'shutdown' }, true), new Promise((r) => setTimeout(r, 2000).unref())]);
    } catch {
      /* the worker is going away anyway */
    }
    this.worker = null;
    await w.terminate();
    this.failPending(new KeepaliveError('E_CLOSED', 'proxy data plane closed'));
  }

  // ---------------------------------------------------------------- ConnectionState

  /** Load persistence templates / UDP flows synced from the peer director (malformed entries are counted and skipped). */
  async restore(entries: readonly RestoreEntry[]): Promise<void> {
    this.assertOpen();
    const ok = entries.filter((e) => isRestoreEntry(e));
    this.restoreDropped += entries.length - ok.length;
    await this.request({ t: 'restore', entries: ok });
  }

  /** The live connection table (templates, UDP flows, TCP connections), e.g. for a peer's full sync. */
  async snapshot(): Promise<ConnectionSnapshot> {
    this.assertOpen();
    return (await this.request({ t: 'snapshot' })) as ConnectionSnapshot;
  }

  /**
   * Subscribe to batched connection events (at most one batch per eventBatchMs). The worker only
   * produces events while at least one subscriber exists. Returns an unsubscribe function.
   */
  onEvent(cb: (events: readonly ConnectionEvent[]) => void): () => void {
    this.listeners_.push(cb);
    if (this.listeners_.length === 1) void this.request(this.eventsOn()).catch(() => {});
    return () => {
      const i = this.listeners_.indexOf(cb);
      if (i < 0) return;
      this.listeners_.splice(i, 1);
      if (this.listeners_.length === 0 && !this.isClosed) void this.request({ t: 'events', enabled: false }).catch(() => {});
    };
  }

  // ---------------------------------------------------------------- the worker

  /** The worker thread, for diagnostics (and tests that kill it). */
  get workerThread(): Worker | null {
    return this.worker;
  }

  private eventsOn(): RequestBody {
    return this.eventBatchMs === undefined ? { t: 'events', enabled: true } : { t: 'events', enabled: true, batchMs: this.eventBatchMs };
  }

  private spawn(): void {
    const w = new Worker(WORKER_URL, { name: 'keepalive-proxy' });
    this.worker = w;
    w.on('message', (m: WorkerMessage) => this.onMessage(m));
    w.on('error', (err) => this.workerDied(w, err));
    w.on('exit', (code) => this.workerDied(w, new KeepaliveError('E_SOCKET', `proxy worker exited with code ${code}`)));
  }

  private workerDied(w: Worker, err: Error): void {
    if (this.worker !== w) return;
    this.worker = null;
    this.failPending(new KeepaliveError('E_CLOSED', `proxy worker died: ${err.message}`, { cause: err }));
    if (this.isClosed) return;
    this.reportError(err);
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < 60_000);
    if (!this.autoRestart || this.restarts.length >= this.maxRestarts) return;
    this.restarts.push(now);
    void this.restart();
  }

  /** Start a new worker and re-apply the desired state. */
  async restart(): Promise<void> {
    this.assertOpen();
    if (this.worker) {
      // Shut down first so sockets close cleanly before the thread is terminated.
      await Promise.race([this.request({ t: 'shutdown' }).catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
      const old = this.worker;
      this.worker = null;
      if (old) await old.terminate();
    }
    this.spawn();
    this.restartCount++;
    try {
      if (this.listeners_.length > 0) await this.request(this.eventsOn());
      const services = this.desiredServices;
      await this.request({ t: 'configure', services });
      for (const s of services) {
        const pool = this.desiredPool(s.key);
        if (pool) await this.request({ t: 'setPool', key: s.key, pool });
      }
    } catch (err) {
      this.reportError(err as Error);
      return;
    }
    for (const s of this.desiredServices) {
      if (!this.isServed(s.key)) continue;
      try {
        await this.request({ t: 'serve', key: s.key });
      } catch (err) {
        this.emit('serveError', s.key, err);
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
    if ((this.isClosed && !duringClose) || !this.worker) {
      return Promise.reject(new KeepaliveError('E_CLOSED', this.isClosed ? 'proxy data plane closed' : 'proxy worker is down'));
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
