/**
 * Per-service connection table and scheduling state, shared by the TCP and UDP proxies
 * (worker side only).
 *
 * `Dest` is the scheduler's live view of a real server (a RealServerRef whose counters the
 * proxies maintain, like IPVS struct ip_vs_dest) plus its traffic counters. Counters follow
 * IPVS: a TCP connection counts as inactive while the real-server connect is in progress,
 * active once established, inactive again once either side has sent FIN, and disappears when
 * both sockets are closed (a proxy has no TIME_WAIT entry to keep). UDP flows always count as
 * inactive, as ipvsadm shows them (the kernel never marks a UDP connection active).
 *
 * A destination removed from the pool stays in `all` (not in `pool`): its open connections
 * continue and keep being counted; it only stops getting new ones. Once its last connection is
 * gone it is forgotten, but its traffic counters are kept by key and given back if it returns to
 * the pool: like the nftables data plane's named counters, a real server's totals survive it
 * going down and coming back.
 */

import { endpointText, singlePort, type Endpoint, type IpFamily, type L4Protocol } from '../../../util/endpoint.js';
import type { ConnectionEvent, DestStats, PoolSpec, ServiceSpec, TemplateEntry } from '../contract.js';
import { maskAddress, PersistenceTable } from './persistence.js';
import { createScheduler } from './sched/index.js';
import { SharedRoundRobinScheduler, SharedWeightedRoundRobinScheduler, cursorSlot } from './sched/shared.js';
import type { RealServerRef, ScheduleContext, Scheduler } from './types.js';

export class Dest implements RealServerRef {
  weight = 0;
  activeConns = 0;
  inactConns = 0;
  overloaded = false;
  /** Total connections (TCP: established to this server; UDP: flows, or datagrams with ops). */
  conns = 0;
  /** Bytes of closed connections (live ones are added at stats time). */
  inBytes = 0;
  outBytes = 0;
  /** UDP datagrams (TCP services count no packets). */
  inPkts = 0;
  outPkts = 0;
  connectErrors = 0;
  inPool = false;
  /** keepalived uthreshold / lthreshold (IPVS u_threshold / l_threshold); 0 = none. */
  uthreshold = 0;
  lthreshold = 0;
  readonly address: string;
  readonly port: number;
  readonly family: IpFamily;
  /** endpointText(endpoint), to recognise UDP replies. */
  readonly text: string;

  constructor(
    /** The Destination key (the sorry server: "sorry:" + its endpoint text). */
    readonly id: string,
    readonly endpoint: Endpoint,
    readonly sorry: boolean,
  ) {
    this.address = endpoint.address;
    this.port = endpoint.port;
    this.family = endpoint.family;
    this.text = endpointText(endpoint);
  }

  get live(): number {
    return this.activeConns + this.inactConns;
  }

  /**
   * IPVS connection thresholds, after every change of the connection counts: at uthreshold
   * connections (active + inactive) the server is overloaded (no new connections); it is used
   * again below lthreshold, or, without one, below 3/4 of uthreshold (ip_vs_bind_dest /
   * ip_vs_unbind_dest).
   */
  checkThresholds(): void {
    const total = this.activeConns + this.inactConns;
    if (this.uthreshold > 0 && total >= this.uthreshold) this.overloaded = true;
    else if (this.overloaded && (this.uthreshold === 0 || (this.lthreshold > 0 ? total < this.lthreshold : total * 4 < this.uthreshold * 3))) this.overloaded = false;
  }
}

type DestCounters = Pick<Dest, 'conns' | 'inBytes' | 'outBytes' | 'inPkts' | 'outPkts' | 'connectErrors'>;
const COUNTER_FIELDS = ['conns', 'inBytes', 'outBytes', 'inPkts', 'outPkts', 'connectErrors'] as const;
/** Forgotten destinations whose counters are kept (the pool's keys come from the config). */
const MAX_ARCHIVED = 65536;

export type EventSink = (ev: ConnectionEvent) => void;

/**
 * The worker's connection budget, shared by every service (descriptor exhaustion must never
 * reach the control plane: the main thread's control socket, metrics, checks and scripts share
 * the process's descriptor table with this worker). A TCP client holds one slot from accept to
 * close (two descriptors: client and real-server socket), a UDP flow one slot while it lives.
 *
 * At `maxConns` the listeners pause (the kernel refuses new connections to the paused port, so
 * no descriptor is spent on them); below `lowWater` they resume. A connection accepted in the
 * same loop turn as the pause finds no slot and is closed at once. maxConns 0 = unlimited.
 */
export class Admission {
  maxConns = 0;
  lowWater = 0;
  inUse = 0;
  /** Connections or flows refused for lack of a slot. */
  refused = 0;
  paused = false;
  /** Times the listeners were paused. */
  pauses = 0;
  /** Idle timeouts of every service (ConnectionLimits); undefined = the IPVS defaults. */
  tcpTimeoutMs: number | undefined;
  tcpFinTimeoutMs: number | undefined;
  udpTimeoutMs: number | undefined;

  constructor(private readonly onPause: (paused: boolean) => void = () => undefined) {}

  setLimits(maxConns: number, lowWater: number): void {
    this.maxConns = maxConns;
    this.lowWater = Math.min(lowWater, maxConns);
    this.check();
  }

  /** Takes a slot; false (counted as refused) when none is left. */
  tryAcquire(): boolean {
    if (this.maxConns > 0 && this.inUse >= this.maxConns) {
      this.refused++;
      return false;
    }
    this.inUse++;
    this.check();
    return true;
  }

  release(): void {
    if (this.inUse > 0) this.inUse--;
    this.check();
  }

  private check(): void {
    const full = this.maxConns > 0 && this.inUse >= this.maxConns;
    if (full && !this.paused) {
      this.paused = true;
      this.pauses++;
      this.onPause(true);
    } else if (this.paused && (this.maxConns === 0 || this.inUse <= this.lowWater)) {
      this.paused = false;
      this.onPause(false);
    }
  }
}

/** Live connections (or UDP flows) per client address of one service, for maxConnsPerSource. */
export class SourceCounts {
  private readonly counts = new Map<string, number>();
  /** Refused because the client address was at its limit. */
  refused = 0;

  /** Counts one more for `address` unless it is at `limit` (0 = unlimited). */
  tryAcquire(address: string, limit: number | undefined): boolean {
    const n = this.counts.get(address) ?? 0;
    if (limit !== undefined && limit > 0 && n >= limit) {
      this.refused++;
      return false;
    }
    this.counts.set(address, n + 1);
    return true;
  }

  release(address: string): void {
    const n = (this.counts.get(address) ?? 0) - 1;
    if (n <= 0) this.counts.delete(address);
    else this.counts.set(address, n);
  }
}


/** ipvsadm-style scheduler text with the flags in effect, e.g. "mh (mh-port)". */
function schedulerText(spec: ServiceSpec): string {
  if (spec.scheduler !== 'sh' && spec.scheduler !== 'mh') return spec.scheduler;
  const flags = [spec.hash.port ? `${spec.scheduler}-port` : '', spec.hash.fallback ? `${spec.scheduler}-fallback` : ''].filter(Boolean);
  return flags.length > 0 ? `${spec.scheduler} (${flags.join(', ')})` : spec.scheduler;
}

/** Scheduling state of one virtual service. */
export class ServiceCore {
  spec: ServiceSpec;
  scheduler!: Scheduler;
  persistence: PersistenceTable | null = null;
  /** The pool in configuration order: what the scheduler sees. */
  pool: Dest[] = [];
  /** Every destination with counters: pool members, removed ones, the sorry server. */
  readonly all = new Map<string, Dest>();
  sorryDest: Dest | null = null;
  /** Endpoints of every destination key seen (pool or synced template), for template export. */
  private readonly endpoints = new Map<string, Endpoint>();
  /** Counters of destinations gc() forgot, by id: restored when the id returns. */
  private readonly archived = new Map<string, DestCounters>();
  conns = 0;
  dropped = 0;
  /** Service byte totals of finished connections (UDP: of every datagram). */
  inBytes = 0;
  outBytes = 0;
  inPkts = 0;
  outPkts = 0;
  readonly protocol: L4Protocol;
  readonly address: string;
  readonly port: number;
  readonly family: IpFamily;
  /** The service's own address:port (the `virtual` of its connections). */
  readonly virtual: Endpoint;
  private readonly now = () => Date.now();

  /**
   * `cursor`: the workers' shared rr/wrr cursors (see sched/shared.ts), when this service is served
   * by several workers; undefined otherwise.
   */
  constructor(
    spec: ServiceSpec,
    readonly emit: EventSink,
    private readonly cursor?: Int32Array,
  ) {
    const m = spec.match;
    const port = singlePort(m);
    if (m.kind !== 'addr' || port === undefined) throw new TypeError(`the proxy serves one address and one port, not ${spec.key}`);
    this.spec = spec;
    this.protocol = m.protocol;
    this.address = m.address;
    this.port = port;
    this.family = m.family;
    this.virtual = { address: m.address, family: m.family, port };
    this.applySpec(spec, true);
  }

  get key(): ServiceSpec['key'] {
    return this.spec.key;
  }

  get schedulerInEffect(): string {
    return schedulerText(this.spec);
  }

  /** Take a new spec for the same key: scheduler/persistence are rebuilt only if they changed. */
  applySpec(spec: ServiceSpec, initial = false): void {
    const old = this.spec;
    this.spec = spec;
    if (initial || old.scheduler !== spec.scheduler || JSON.stringify(old.hash) !== JSON.stringify(spec.hash)) {
      const slot = this.cursor ? cursorSlot(spec.key) : 0;
      this.scheduler = this.cursor && spec.scheduler === 'rr'
        ? new SharedRoundRobinScheduler(this.cursor, slot)
        : this.cursor && spec.scheduler === 'wrr'
          ? new SharedWeightedRoundRobinScheduler(this.cursor, slot)
          : createScheduler(spec.scheduler, {
            fallback: spec.hash.fallback,
            port: spec.hash.port,
            tableSize: spec.hash.tableSize,
            seed: spec.hash.seed,
            virtualAddress: this.address,
            now: this.now,
          });
      this.scheduler.update?.(this.pool);
    }
    if (initial || JSON.stringify(old.persistence) !== JSON.stringify(spec.persistence)) {
      const p = spec.persistence;
      this.persistence = p
        ? new PersistenceTable({
            timeoutMs: p.timeoutMs,
            netmaskV4: this.family === 4 ? p.prefix : 32,
            prefixV6: this.family === 6 ? p.prefix : 128,
            now: this.now,
          })
        : null;
    }
  }

  setPool(pool: PoolSpec): void {
    for (const d of this.all.values()) d.inPool = false;
    const members: Dest[] = [];
    for (const s of pool.dests) {
      let d = this.all.get(s.key);
      if (!d || d.sorry || d.text !== endpointText(s.endpoint)) {
        d = this.revive(new Dest(s.key, s.endpoint, false));
        this.all.set(s.key, d);
      }
      this.endpoints.set(s.key, s.endpoint);
      d.weight = s.weight;
      d.uthreshold = s.uthreshold ?? 0;
      d.lthreshold = s.lthreshold ?? 0;
      d.checkThresholds();
      d.inPool = true;
      members.push(d);
    }
    this.pool = members;
    if (pool.sorry) {
      const id = `sorry:${endpointText(pool.sorry)}`;
      let d = this.all.get(id);
      if (!d) {
        d = this.revive(new Dest(id, pool.sorry, true));
        d.weight = 1;
        this.all.set(id, d);
      }
      d.inPool = true;
      this.sorryDest = d;
    } else {
      this.sorryDest = null;
    }
    this.scheduler.update?.(members);
    this.gc();
  }

  /** Forget removed destinations that no longer carry connections (keeping their counters). */
  gc(): void {
    for (const [id, d] of this.all) {
      if (d.inPool || d.live > 0) continue;
      this.all.delete(id);
      if (this.archived.size < MAX_ARCHIVED || this.archived.has(id)) {
        const c = {} as Record<(typeof COUNTER_FIELDS)[number], number>;
        for (const f of COUNTER_FIELDS) c[f] = d[f];
        this.archived.set(id, c);
      }
    }
  }

  /** A destination coming (back) into the pool gets the counters it had when it was forgotten. */
  private revive(d: Dest): Dest {
    const c = this.archived.get(d.id);
    if (c) {
      for (const f of COUNTER_FIELDS) d[f] = c[f];
      this.archived.delete(d.id);
    }
    return d;
  }

  /** True when no pool member can take a new connection. */
  get noRealServer(): boolean {
    return !this.pool.some((d) => d.weight > 0 && !d.overloaded);
  }

  /**
   * A destination for a new connection from `ctx`, via persistence when configured, else
   * the scheduler; `exclude` = servers whose connect just failed. Null when none is left.
   */
  pick(ctx: ScheduleContext, exclude: Set<Dest> | null): Dest | null {
    const list = exclude ? this.pool.filter((d) => !exclude.has(d)) : this.pool;
    if (list.length === 0) return null;
    if (this.persistence === null) return this.scheduler.pick(list, ctx);
    const d = this.persistence.pick(this.key, list, ctx, this.scheduler);
    if (d) this.emitTemplate(ctx.clientAddress, ctx.family, d);
    return d;
  }

  emitTemplate(clientAddress: string, family: IpFamily, dest: Dest): void {
    const p = this.spec.persistence;
    if (!p) return;
    const client = maskAddress(clientAddress, family, p.prefix);
    this.emit({ type: 'template', service: this.key, client, family, dest: dest.endpoint, expiresInMs: p.timeoutMs });
  }

  /** A live template as the contract lists it (null when its destination is unknown here). */
  templateEntry(e: { client: string; family: IpFamily; destId: string; expiresInMs: number }): TemplateEntry | null {
    const dest = this.endpoints.get(e.destId);
    if (!dest) return null;
    return { type: 'template', service: this.key, client: e.client, family: e.family, dest, expiresInMs: e.expiresInMs };
  }

  /** Install a synced template (its destination may not be in the pool yet: checked on use). */
  restoreTemplate(t: TemplateEntry): void {
    if (t.family !== this.family || t.dest.family !== this.family) return;
    if (!this.persistence) return;
    const destId = endpointText(t.dest);
    // Synced destinations are the config's real servers; a hostile table cannot grow this map.
    if (this.endpoints.size < 65536) this.endpoints.set(destId, t.dest);
    this.persistence.restore({ vs: this.key, client: t.client, family: t.family, destId, expiresInMs: t.expiresInMs });
  }

  private lastTouchAt = 0;

  /**
   * Whether live connections should refresh their templates now: every third of the
   * persistence timeout (at least 1 s apart), so templates never expire under live
   * connections and template events stay rare.
   */
  touchDue(): boolean {
    const p = this.spec.persistence;
    if (!p || !this.persistence) return false;
    const now = this.now();
    if (now - this.lastTouchAt < Math.max(1000, p.timeoutMs / 3)) return false;
    this.lastTouchAt = now;
    return true;
  }

  /** Restart the template of a client whose connection is still alive. */
  touch(clientAddress: string, family: IpFamily, dest: Dest): void {
    if (this.persistence?.touch(this.key, clientAddress, family)) this.emitTemplate(clientAddress, family, dest);
  }

  destStats(d: Dest, liveIn: number, liveOut: number): DestStats {
    const udp = this.protocol === 'udp';
    return {
      key: d.sorry ? d.text : d.id,
      endpoint: d.endpoint,
      weight: d.inPool ? d.weight : 0,
      sorry: d.sorry,
      conns: d.conns,
      in_pkts: udp ? d.inPkts : null,
      out_pkts: udp ? d.outPkts : null,
      in_bytes: d.inBytes + liveIn,
      out_bytes: d.outBytes + liveOut,
      active_conns: d.activeConns,
      inact_conns: d.inactConns,
      connect_errors: d.connectErrors,
    };
  }
}
