/**
 * The worker-side engine: owns every virtual service (listeners, proxied connections, UDP
 * flows, schedulers, persistence) and answers the facade's requests. It is plain code with
 * no worker_threads dependency: worker.ts wires it to the parent port.
 */

import { monotonicMs } from '../../../util/clock.js';
import type { ConnectionEvent, ConnectionSnapshot, RestoreEntry, ServiceSpec } from '../contract.js';
import type { ConnectionLimits, ProxyStats, Request, WireError, WorkerMessage } from './protocol.js';
import { Admission } from './conntable.js';
import { parseRequest } from './protocol.js';
import { TcpService } from './tcp.js';
import { RelayHub, RelayTcpService } from './tcp-relay.js';
import { UdpService } from './udp.js';

type Service = TcpService | UdpService;

/** Events are posted at most this often. */
export const EVENT_BATCH_MS = 100;
/** A batch holds at most this many events; the rest are dropped and counted. */
const MAX_BATCH = 100_000;

class EngineError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly errno?: string,
  ) {
    super(message);
  }
}

function wireError(err: unknown): WireError {
  if (err instanceof EngineError) return { code: err.code, message: err.message, ...(err.errno ? { errno: err.errno } : {}) };
  const e = err as NodeJS.ErrnoException;
  const message = e instanceof Error ? e.message : String(err);
  if (typeof e?.code === 'string') return { code: 'E_SOCKET', message, errno: e.code };
  return { code: 'E_SOCKET', message };
}

/** Which worker this engine is, of how many (see ProxyDataplaneOptions.workers). */
export interface EngineOptions {
  readonly index?: number;
  readonly workers?: number;
  /** The workers' shared rr/wrr cursors (SHARED_CURSOR_SLOTS Int32s), with workers > 1. */
  readonly cursors?: SharedArrayBuffer;
  /**
   * TCP services relay through the native engine (tcp-relay.ts; default true). Falls back to
   * node:net (tcp.ts) when false or when the addon cannot start an engine.
   */
  readonly nativeRelay?: boolean;
  /** See ProxyDataplaneOptions.spliceAfterBytes. */
  readonly spliceAfterBytes?: number;
}

/**
 * How much nicer than the main thread (which runs VRRP) the proxy worker threads are. CFS weights:
 * nice +5 = 335 against 1024, so a worker saturating a CPU yields to the VRRP thread at once, and
 * still gets every cycle nothing else wants.
 */
export const PROXY_WORKER_NICE = 5;

/** Schedulers whose choice does not depend on connection counts, or that share their cursor (rr, wrr). */
const EVERY_WORKER_SCHEDULERS: ReadonlySet<string> = new Set(['rr', 'wrr', 'sh', 'dh', 'mh', 'fo']);

/**
 * With several workers, a TCP service without persistence whose scheduler is rr, wrr, sh, dh, mh
 * or fo is served by every worker (each has its own SO_REUSEPORT socket; the kernel spreads the
 * connections; rr and wrr share one cursor). Every other service only by worker 0: UDP (a client's
 * flows in one table), persistence (templates in one table), and the schedulers that count
 * connections (lc, wlc, sed, nq, lblc, lblcr, ovf: their counts must cover every connection), and
 * services with maxConnsPerSource (the count per client must cover every connection).
 */
export function servedByEveryWorker(spec: ServiceSpec): boolean {
  return spec.match.kind === 'addr' && spec.match.protocol === 'tcp' && spec.persistence === null && !spec.proxy?.maxConnsPerSource && EVERY_WORKER_SCHEDULERS.has(spec.scheduler);
}

export class Engine {
  private readonly services = new Map<string, Service>();
  /** Removed by configure(), still draining. */
  private readonly retiring = new Set<Service>();
  malformed = 0;
  eventsDropped = 0;
  private eventsEnabled = false;
  /** Event batching interval ('events' request batchMs; default EVENT_BATCH_MS). */
  private batchMs = EVENT_BATCH_MS;
  private queue: ConnectionEvent[] = [];
  private readonly templates = new Map<string, ConnectionEvent>();
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly housekeeping: NodeJS.Timeout;
  private closed = false;
  /** One connection budget for every service: listeners pause together at the cap. */
  private readonly admission = new Admission((paused) => {
    for (const s of [...this.services.values(), ...this.retiring]) {
      if (s instanceof TcpService) {
        if (paused) s.pause();
        else s.resume();
      }
    }
  });

  private readonly index: number;
  private readonly workers: number;
  private readonly cursors: Int32Array | undefined;
  /** The native relay of this worker: undefined until a TCP service needs it, null when off or unavailable. */
  private hub: RelayHub | null | undefined;
  private readonly spliceAfterBytes: number | undefined;

  constructor(private readonly post: (m: WorkerMessage) => void, opts: EngineOptions = {}) {
    this.index = opts.index ?? 0;
    this.workers = opts.workers ?? 1;
    this.cursors = opts.cursors ? new Int32Array(opts.cursors) : undefined;
    if (opts.nativeRelay === false) this.hub = null;
    this.spliceAfterBytes = opts.spliceAfterBytes;
    this.housekeeping = setInterval(() => {
      for (const s of this.services.values()) if (s instanceof TcpService) s.housekeeping();
    }, 1000);
  }

  /** Entry point for every message from the facade. Never throws. */
  handle(raw: unknown): void {
    const req = parseRequest(raw);
    if (req === null) {
      this.malformed++;
      return;
    }
    let result: unknown;
    try {
      result = this.dispatch(req);
    } catch (err) {
      this.post({ t: 'reply', seq: req.seq, ok: false, error: wireError(err) });
      return;
    }
    Promise.resolve(result).then(
      (value) => this.post({ t: 'reply', seq: req.seq, ok: true, ...(value === undefined ? {} : { result: value }) }),
      (err: unknown) => this.post({ t: 'reply', seq: req.seq, ok: false, error: wireError(err) }),
    );
  }

  private dispatch(req: Request): unknown {
    if (this.closed && req.t !== 'shutdown') throw new EngineError('E_CLOSED', 'data plane is shut down');
    switch (req.t) {
      case 'configure':
        return this.configure(req.services);
      case 'update':
        return this.update(req.services, req.removed);
      case 'setPool':
        this.service(req.key).core.setPool(req.pool);
        return undefined;
      case 'serve': {
        const svc = this.service(req.key);
        // Another worker (0) serves it alone; this one only keeps the desired state.
        if (this.index > 0 && !servedByEveryWorker(svc.core.spec)) return undefined;
        return svc.serve();
      }
      case 'unserve':
        return this.service(req.key).unserve(req.drainMs);
      case 'stats':
        return this.stats();
      case 'restore':
        this.restore(req.entries);
        return undefined;
      case 'events':
        this.eventsEnabled = req.enabled;
        if (req.batchMs !== undefined) this.batchMs = req.batchMs;
        for (const s of this.services.values()) if (s instanceof TcpService) s.setEventsEnabled(req.enabled);
        if (!req.enabled) {
          this.queue = [];
          this.templates.clear();
        }
        return undefined;
      case 'snapshot':
        return this.snapshot();
      case 'limits':
        this.setLimits(req.limits);
        return undefined;
      case 'shutdown':
        this.shutdown();
        return undefined;
    }
  }

  private service(key: string): Service {
    const s = this.services.get(key);
    if (!s) throw new EngineError('E_CONFIG_INVALID', `unknown virtual service ${key}`);
    return s;
  }

  private configure(specs: readonly ServiceSpec[]): void {
    // Keys are canonical: the same key is the same protocol, address and port.
    const wanted = new Map<string, ServiceSpec>(specs.map((s) => [s.key, s]));
    for (const [key, svc] of this.services) {
      if (wanted.has(key)) continue;
      this.services.delete(key);
      this.retire(svc);
    }
    for (const spec of specs) this.upsert(spec);
  }

  /** configure() as a delta: only the listed services change; a removed key not here is ignored (idempotent). */
  private update(specs: readonly ServiceSpec[], removed: readonly string[]): void {
    for (const key of removed) {
      const svc = this.services.get(key);
      if (!svc) continue;
      this.services.delete(key);
      this.retire(svc);
    }
    for (const spec of specs) this.upsert(spec);
  }

  private upsert(spec: ServiceSpec): void {
    const svc = this.services.get(spec.key);
    if (svc) {
      svc.core.applySpec(spec);
      if (svc instanceof UdpService) svc.armTimer();
      // Persistence turned on by a reload: only worker 0 may hold this service's templates.
      if (this.index > 0 && !servedByEveryWorker(spec) && svc.serving) void svc.unserve(spec.drainMs);
      return;
    }
    const emit = (ev: ConnectionEvent) => this.emit(ev);
    let created: Service;
    if (spec.match.kind === 'addr' && spec.match.protocol === 'tcp') {
      const reusePort = this.workers > 1 && servedByEveryWorker(spec);
      const hub = this.relayHub();
      created = hub
        ? new RelayTcpService(spec, emit, this.admission, reusePort, this.cursors, hub)
        : new TcpService(spec, emit, this.admission, reusePort, this.cursors);
    } else {
      created = new UdpService(spec, emit, this.admission);
    }
    if (created instanceof TcpService) created.setEventsEnabled(this.eventsEnabled);
    this.services.set(spec.key, created);
  }

  private relayHub(): RelayHub | null {
    if (this.hub !== undefined) return this.hub;
    try {
      this.hub = new RelayHub(this.spliceAfterBytes);
      this.hub.timeouts(this.admission.tcpTimeoutMs, this.admission.tcpFinTimeoutMs);
    } catch {
      this.hub = null; // no addon (not built): node:net relays
    }
    return this.hub;
  }

  private retire(svc: Service): void {
    this.retiring.add(svc);
    svc.unserve(svc.core.spec.drainMs).then(() => {
      svc.destroyAll();
      this.retiring.delete(svc);
    }, () => this.retiring.delete(svc));
  }

  private restore(entries: readonly RestoreEntry[]): void {
    for (const e of entries) {
      const svc = this.services.get(e.service);
      if (!svc) continue;
      if (e.type === 'template') {
        try {
          svc.core.restoreTemplate(e);
        } catch {
          /* an address the table cannot mask: ignore the entry */
        }
      } else if (e.type === 'udp_flow' && svc instanceof UdpService) {
        svc.restoreFlow(e);
      }
    }
  }

  /** The live table: persistence templates, UDP flows (remaining idle time), TCP connections. */
  private snapshot(): ConnectionSnapshot {
    const out: ConnectionSnapshot = { templates: [], udpFlows: [], conns: [] };
    const now = Date.now();
    for (const svc of this.services.values()) {
      for (const p of svc.core.persistence?.entries() ?? []) {
        const t = svc.core.templateEntry(p);
        if (t) out.templates.push(t);
      }
      if (svc instanceof UdpService) out.udpFlows.push(...svc.flowEntries(now));
      else for (const c of svc.conns) if (!c.dest.sorry) out.conns.push({ type: 'conn', ...svc.ref(c) });
    }
    return out;
  }

  private setLimits(l: ConnectionLimits): void {
    const a = this.admission;
    a.tcpTimeoutMs = l.tcpTimeoutMs;
    a.tcpFinTimeoutMs = l.tcpFinTimeoutMs;
    a.udpTimeoutMs = l.udpTimeoutMs;
    this.hub?.timeouts(l.tcpTimeoutMs, l.tcpFinTimeoutMs);
    a.setLimits(l.maxConns, l.lowWater);
    for (const s of this.services.values()) if (s instanceof UdpService) s.armTimer();
  }

  private stats(): ProxyStats {
    const a = this.admission;
    const all = [...this.services.values(), ...this.retiring];
    const sum = (f: (s: Service) => number) => all.reduce((n, s) => n + f(s), 0);
    return {
      services: [...this.services.values()].map((s) => s.stats()),
      malformed: this.malformed,
      events_dropped: this.eventsDropped,
      limits: {
        max_conns: a.maxConns,
        low_water: a.lowWater,
        in_use: a.inUse,
        paused: a.paused,
        pauses: a.pauses,
        refused: sum((s) => s.refused),
        refused_per_source: sum((s) => s.sources.refused),
        idle_closed: sum((s) => (s instanceof TcpService ? s.idleClosed : 0)),
      },
      splice: this.hub ? this.hub.engine.spliceStats() : { spliced_bytes: 0, pipes_made: 0, pipes_in_use: 0, fallbacks: 0 },
    };
  }

  private emit(event: ConnectionEvent): void {
    if (!this.eventsEnabled) return;
    // When it happened: connection sync measures its lag from here (same clock as the main thread).
    const ev: ConnectionEvent = { ...event, observedAt: monotonicMs() };
    if (ev.type === 'template') {
      // Only the latest state of a template matters: coalesce within a batch.
      this.templates.set(`${ev.service}\u0000${ev.client}`, ev);
    } else if (this.queue.length < MAX_BATCH) {
      this.queue.push(ev);
    } else {
      this.eventsDropped++;
    }
    if (this.flushTimer === null) this.flushTimer = setTimeout(() => this.flush(), this.batchMs);
  }

  private flush(): void {
    this.flushTimer = null;
    if (this.queue.length === 0 && this.templates.size === 0) return;
    const events = this.queue;
    for (const t of this.templates.values()) events.push(t);
    this.queue = [];
    this.templates.clear();
    this.post({ t: 'events', events });
  }

  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.housekeeping);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flush();
    for (const s of this.services.values()) s.destroyAll();
    for (const s of this.retiring) s.destroyAll();
    this.hub?.engine.closeAll();
    this.services.clear();
    this.retiring.clear();
  }
}
