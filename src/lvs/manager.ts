/**
 * The virtual-server manager on the main thread: one HealthRunner per real server, the pure pool
 * logic turning health into the destination list, and the data plane (the Dataplane contract:
 * in the daemon a DataplaneSet routing each service to the proxy or the kernel path by its
 * lb_kind) that serves each virtual service while the VRRP instance owning its address is MASTER.
 * No packet or connection is touched here.
 */
import type { Logger } from 'pino';
import { isEmptyVirtualServerChange, type RealServerConfig, type ReloadPlan, type VirtualServerConfig } from '../config/index.js';
import type { RealServerStatus as RealServerReport, SorryServerStatus, VirtualServerStatus } from '../daemon/status.js';
import { endpointText, ipvsadmServiceText, type ServiceKey, type ServiceMatch } from '../util/endpoint.js';
import { errorMessage } from '../util/errors.js';
import { runCommand } from '../util/exec.js';
import { FORWARD_NAMES, type Dataplane, type DataplaneStats, type DestStats, type PoolSpec, type ServiceSpec } from './dataplane/contract.js';
import { HealthRunner, type HealthStats } from './health.js';
import { evaluatePool, stopPool, type PoolParams, type PoolResult, type PoolState, type RealServerStatus } from './pool.js';

export interface LvsDeps {
  dataPlane: Dataplane;
  log: Logger;
  run?: typeof runCommand;
  /** Builds a health runner; tests substitute scripted checks. */
  healthRunner?: (opts: ConstructorParameters<typeof HealthRunner>[0]) => Pick<HealthRunner, 'start' | 'stop' | 'stats'>;
  /** A real server went up / down, or a virtual server gained / lost quorum, with smtp_alert on (the daemon mails it). */
  alert?: (a: LvsAlert) => void;
}

export type LvsAlert =
  | { kind: 'real_server'; virtualServer: string; realServer: string; up: boolean; detail: string }
  | { kind: 'virtual_server'; virtualServer: string; up: boolean; quorum: number; hysteresis: number; weightSum: number };

export interface CheckMetric {
  virtual_server: string;
  real_server: string;
  type: string;
  last_duration_seconds?: number;
  failures?: number;
}

interface Real {
  /** endpointText(cfg.endpoint): the pool id and the Destination key. */
  id: string;
  cfg: RealServerConfig;
  health: RealServerStatus['health'];
  dynamicWeight: number | undefined;
  runner: Pick<HealthRunner, 'start' | 'stop' | 'stats'>;
  /** When the health last changed (epoch ms) and the checker's message then; null before the first result. */
  lastChange: { at: number; reason: string } | null;
}

interface Service {
  key: ServiceKey;
  cfg: VirtualServerConfig;
  reals: Real[];
  pool: PoolState | null;
  last: PoolResult | null;
  /** Serving wanted (the owning VRRP instance holds the address). */
  wanted: boolean;
  serving: boolean;
  retry: NodeJS.Timeout | undefined;
}

/** The data plane's view of a virtual service, built once from its config (the one place this happens). */
export function serviceSpec(cfg: VirtualServerConfig): ServiceSpec {
  const flags = new Set(cfg.sched_flags);
  const algo = cfg.lb_algo;
  return {
    key: cfg.key,
    match: cfg.match,
    kind: cfg.lb_kind,
    scheduler: algo,
    hash: {
      seed: cfg.hash_seed,
      tableSize: cfg.mh_table_size,
      port: flags.has('flag-2') || flags.has(`${algo}-port` as never),
      fallback: flags.has('flag-1') || flags.has(`${algo}-fallback` as never),
    },
    persistence: cfg.persistence_timeout > 0 ? { timeoutMs: cfg.persistence_timeout * 1000, prefix: cfg.persistence_prefix } : null,
    drainMs: cfg.drain_timeout * 1000,
    ops: cfg.ops,
    ...(cfg.lb_kind === 'PROXY' ? { proxy: { proxyProtocol: cfg.proxy_protocol, connectTimeoutMs: cfg.connect_timeout * 1000 } } : {}),
  };
}

/** The pool the data plane gets from a pool evaluation: real destinations only; the sorry server apart. */
export function poolSpec(cfg: VirtualServerConfig, result: PoolResult): PoolSpec {
  const byId = new Map(cfg.real_server.map((rs) => [endpointText(rs.endpoint), rs.endpoint]));
  const dests = result.destinations
    .filter((d) => d.kind === 'real' && byId.has(d.id))
    .map((d) => ({ key: d.id, endpoint: byId.get(d.id)!, weight: d.weight }));
  return { dests, sorry: cfg.sorry_endpoint };
}

function poolParams(cfg: VirtualServerConfig): PoolParams {
  const sorry = cfg.sorry_endpoint;
  return {
    quorum: cfg.quorum,
    hysteresis: cfg.hysteresis,
    alpha: cfg.alpha,
    omega: cfg.omega,
    sorryServer: sorry ? { id: `sorry:${endpointText(sorry)}`, address: sorry.address, port: sorry.port } : undefined,
    sorryServerInhibit: cfg.sorry_server_inhibit,
    depoolThreshold: cfg.depool_threshold,
  };
}

/**
 * The address a service is served for: its own, or none for a fwmark service. A fwmark service
 * has no address of its own, so, as keepalived's IPVS fwmark services, it is configured on every
 * director from the start; traffic reaches the one whose firewall rules mark it (and that holds
 * the VIPs).
 */
function ownedAddress(match: ServiceMatch): string | null {
  return match.kind === 'addr' ? match.address : null;
}

const counters = (x: DestStats | undefined) => ({
  active_conns: x ? x.active_conns : 0,
  inact_conns: x ? x.inact_conns : 0,
  conns: x?.conns ?? 0,
  in_pkts: x ? x.in_pkts : 0,
  out_pkts: x ? x.out_pkts : 0,
  in_bytes: x?.in_bytes ?? 0,
  out_bytes: x?.out_bytes ?? 0,
});

export class VirtualServerManager {
  #services: Service[];
  readonly #run: typeof runCommand;
  #stats: DataplaneStats | null = null;
  /** #stats by service key, each with its real servers' counters by key (built once per refresh). */
  #statsIndex = new Map<string, { svc: DataplaneStats['services'][number]; dests: Map<string, DestStats>; sorry: DestStats | undefined }>();
  #stopped = false;

  #owns: (address: string) => boolean = () => false;

  constructor(configs: readonly VirtualServerConfig[], private readonly deps: LvsDeps) {
    this.#run = deps.run ?? runCommand;
    this.#services = configs.map((cfg) => this.#makeService(cfg));
  }

  #makeService(cfg: VirtualServerConfig): Service {
    const svc: Service = { key: cfg.key, cfg, reals: [], pool: null, last: null, wanted: false, serving: false, retry: undefined };
    svc.reals = cfg.real_server.map((rs) => this.#makeReal(svc, rs));
    return svc;
  }

  #makeReal(svc: Service, rs: RealServerConfig): Real {
    const real: Real = { id: endpointText(rs.endpoint), cfg: rs, health: 'unknown', dynamicWeight: undefined, runner: undefined!, lastChange: null };
    real.runner = this.#makeRunner(svc, real);
    return real;
  }

  #makeRunner(svc: Service, real: Real): Real['runner'] {
    const opts = {
      checks: real.cfg.check,
      weight: real.cfg.weight,
      onChange: (health: RealServerStatus['health'], dynamicWeight: number | undefined, detail: string) => {
        const was = real.health;
        real.health = health;
        real.dynamicWeight = dynamicWeight;
        if (health !== was) real.lastChange = { at: Date.now(), reason: detail };
        // Going down, and coming back after being down, is what an operator must see: warn.
        const level = health !== was && (health === 'down' || was === 'down') ? 'warn' : 'info';
        this.deps.log[level]({ virtual_server: svc.key, real_server: real.id, health, was, reason: detail }, `real server ${real.id} of ${svc.key} is ${health}: ${detail}`);
        void this.#apply(svc);
      },
    };
    return this.deps.healthRunner ? this.deps.healthRunner(opts) : new HealthRunner(opts);
  }

  /** The services by key, for a reload's lookups. Keys are unique within a config (semantic.ts refuses duplicates and overlaps). */
  #byKey(): Map<string, Service> {
    return new Map(this.#services.map((s) => [s.key, s]));
  }

  /**
   * Applies the virtual-server part of a reload plan in place: kept services keep their listening
   * socket, connections, templates and the health of kept real servers; removed real servers leave
   * the pool (their open connections continue: drain); changed checks restart only that server's
   * checker; removed services stop accepting and drain.
   */
  async applyReload(plan: ReloadPlan): Promise<void> {
    const fresh: Real[] = [];
    /** Services whose pool may differ: only these are re-evaluated and sent to the data plane. */
    const touched: Service[] = [];
    const byKey = this.#byKey();
    const removed = new Set<Service>();
    for (const cfg of plan.virtualServers.removed) {
      const svc = byKey.get(cfg.key);
      if (!svc) continue;
      svc.wanted = false;
      clearTimeout(svc.retry);
      for (const r of svc.reals) r.runner.stop();
      removed.add(svc);
    }
    if (removed.size > 0) this.#services = this.#services.filter((s) => !removed.has(s));
    for (const k of plan.virtualServers.kept) {
      const svc = byKey.get(k.current.key);
      if (!svc) continue;
      svc.cfg = k.next;
      if (isEmptyVirtualServerChange(k.changes)) {
        // Same settings and servers: the new objects replace the old ones, nothing is re-evaluated.
        const next = new Map(k.next.real_server.map((rs) => [endpointText(rs.endpoint), rs]));
        for (const real of svc.reals) real.cfg = next.get(real.id) ?? real.cfg;
        continue;
      }
      touched.push(svc);
      const rsPlan = k.changes.realServers;
      const same = (a: RealServerConfig, b: RealServerConfig) => endpointText(a.endpoint) === endpointText(b.endpoint);
      for (const rs of rsPlan.removed) {
        const real = svc.reals.find((r) => same(r.cfg, rs));
        real?.runner.stop();
        svc.reals = svc.reals.filter((r) => r !== real);
      }
      for (const kr of rsPlan.kept) {
        const real = svc.reals.find((r) => same(r.cfg, kr.current));
        if (!real) continue;
        real.cfg = kr.next;
        if (kr.checksChanged) {
          real.runner.stop();
          real.runner = this.#makeRunner(svc, real);
          fresh.push(real);
        }
      }
      for (const rs of rsPlan.added) {
        const real = this.#makeReal(svc, rs);
        svc.reals.push(real);
        fresh.push(real);
      }
    }
    for (const cfg of plan.virtualServers.added) {
      const svc = this.#makeService(cfg);
      this.#services.push(svc);
      touched.push(svc);
      fresh.push(...svc.reals);
    }
    // The full desired set: unchanged services keep their sockets, removed ones drain in the worker.
    await this.deps.dataPlane.configure(this.#services.map((x) => serviceSpec(x.cfg)));
    await Promise.all(touched.map((svc) => this.#apply(svc)));
    for (const r of fresh) r.runner.start();
    this.setOwnership(this.#owns);
  }

  /** Configures the data plane, computes the first pools and starts the health checks. */
  async start(): Promise<void> {
    await this.deps.dataPlane.configure(this.#services.map((s) => serviceSpec(s.cfg)));
    // One message per service, all in flight at once (the data plane answers them in order).
    await Promise.all(this.#services.map((s) => this.#apply(s)));
    for (const s of this.#services) for (const r of s.reals) r.runner.start();
  }

  async #apply(svc: Service): Promise<void> {
    if (this.#stopped) return;
    const servers: RealServerStatus[] = svc.reals.map((r) => ({
      id: r.id, address: r.cfg.address, port: r.cfg.port, weight: r.cfg.weight, dynamicWeight: r.dynamicWeight,
      health: r.health, inhibitOnFailure: r.cfg.inhibit_on_failure || svc.cfg.inhibit_on_failure,
    }));
    const result = evaluatePool(poolParams(svc.cfg), servers, svc.pool);
    svc.pool = result.state;
    svc.last = result;
    this.#events(svc, result.events);
    try {
      await this.deps.dataPlane.setPool(svc.key, poolSpec(svc.cfg, result));
    } catch (err) {
      this.deps.log.error({ virtual_server: svc.key, err: errorMessage(err) }, 'cannot update the data plane pool');
    }
  }

  #events(svc: Service, events: PoolResult['events']): void {
    const log = this.deps.log;
    for (const ev of events) {
      switch (ev.type) {
        case 'quorum_up':
        case 'quorum_down': {
          log.info({ virtual_server: svc.key, weight_sum: ev.weightSum, threshold: ev.threshold }, `${svc.key}: ${ev.type.replace('_', ' ')}`);
          const script = ev.type === 'quorum_up' ? svc.cfg.quorum_up : svc.cfg.quorum_down;
          if (script) this.#notify(script);
          if (svc.cfg.smtp_alert) {
            this.deps.alert?.({ kind: 'virtual_server', virtualServer: svc.key, up: ev.type === 'quorum_up', quorum: svc.cfg.quorum, hysteresis: svc.cfg.hysteresis, weightSum: ev.weightSum });
          }
          break;
        }
        case 'rs_up':
        case 'rs_down': {
          const real = svc.reals.find((r) => r.id === ev.id);
          const script = ev.type === 'rs_up' ? real?.cfg.notify_up : real?.cfg.notify_down;
          if (script) this.#notify(script);
          if (real?.cfg.smtp_alert) {
            this.deps.alert?.({ kind: 'real_server', virtualServer: svc.key, realServer: real.id, up: ev.type === 'rs_up', detail: real.lastChange?.reason ?? (ev.type === 'rs_up' ? 'up' : 'down') });
          }
          break;
        }
        case 'kept_despite_failing':
          log.warn({ virtual_server: svc.key, real_server: ev.id }, `${ev.id} fails its checks but stays pooled (depool_threshold)`);
          break;
        case 'kept_released':
          log.info({ virtual_server: svc.key, real_server: ev.id }, `${ev.id} released from the depool_threshold hold`);
          break;
      }
    }
  }

  #notify(cmd: string): void {
    void this.#run(cmd, [], 30_000).then((r) => {
      if (r.error || r.code !== 0) this.deps.log.warn({ cmd, code: r.code, error: r.error }, 'virtual server notify script failed');
    });
  }

  /**
   * Called when VRRP ownership of addresses changes. A service is served while `owns(address)` is
   * true (a fwmark service, having no address, always); on losing it the service stops accepting
   * and drains (drain_timeout).
   */
  setOwnership(owns: (address: string) => boolean): void {
    this.#owns = owns;
    for (const svc of this.#services) {
      const address = ownedAddress(svc.cfg.match);
      const want = address === null || owns(address);
      if (want === svc.wanted) continue;
      svc.wanted = want;
      if (want) this.#serve(svc, 0);
      else void this.#unserve(svc);
    }
  }

  #serve(svc: Service, attempt: number): void {
    clearTimeout(svc.retry);
    if (!svc.wanted || this.#stopped) return;
    this.deps.dataPlane.serve(svc.key).then(
      () => {
        svc.serving = true;
        this.deps.log.info({ virtual_server: svc.key, kind: svc.cfg.lb_kind }, `serving ${svc.key} (${svc.cfg.lb_kind})`);
        // Ownership may have gone while the worker was binding.
        if (!svc.wanted) void this.#unserve(svc);
      },
      (err: unknown) => {
        // The VIP can lag the MASTER transition by a moment; keep trying while we still own it.
        const delay = Math.min(1000, 20 * 2 ** Math.min(attempt, 6));
        if (attempt % 10 === 0) this.deps.log.warn({ virtual_server: svc.key, err: errorMessage(err), attempt }, `cannot serve ${svc.key} yet; retrying`);
        svc.retry = setTimeout(() => this.#serve(svc, attempt + 1), delay);
      },
    );
  }

  async #unserve(svc: Service): Promise<void> {
    clearTimeout(svc.retry);
    if (!svc.serving) return;
    svc.serving = false;
    this.deps.log.info({ virtual_server: svc.key, drain_s: svc.cfg.drain_timeout }, `stopped serving ${svc.key}; draining`);
    await this.deps.dataPlane.unserve(svc.key, svc.cfg.drain_timeout * 1000).catch((err: unknown) =>
      this.deps.log.warn({ virtual_server: svc.key, err: errorMessage(err) }, 'unserve failed'));
  }

  /**
   * Fetches fresh counters from the data plane. `status` and every metrics scrape call this; nothing
   * polls it (with 1,000 services a snapshot is a large message, not worth taking every second).
   */
  async refresh(): Promise<void> {
    if (this.#stopped) return;
    const stats = await this.deps.dataPlane.stats();
    this.#stats = stats;
    this.#statsIndex = new Map(stats.services.map((svc) => {
      const dests = new Map<string, DestStats>();
      for (const x of svc.dests) if (!x.sorry && !dests.has(x.key)) dests.set(x.key, x);
      return [svc.key, { svc, dests, sorry: svc.dests.find((x) => x.sorry) }];
    }));
  }

  status(): VirtualServerStatus[] {
    return this.#services.map((svc) => {
      const cfg = svc.cfg;
      const indexed = this.#statsIndex.get(svc.key);
      const st = indexed?.svc;
      const destinations = new Map(svc.last?.destinations.map((d) => [d.id, d]));
      const reals: RealServerReport[] = svc.reals.map((r) => {
        const dest = destinations.get(r.id);
        return {
          address: r.cfg.endpoint.address,
          port: r.cfg.endpoint.port,
          weight: dest?.weight ?? 0,
          up: r.health === 'up',
          ...counters(indexed?.dests.get(r.id)),
          health: r.health,
          ...(r.lastChange ? { last_change: new Date(r.lastChange.at).toISOString(), reason: r.lastChange.reason } : {}),
        };
      });
      const sorryStats = indexed?.sorry;
      const sorry: SorryServerStatus | null = cfg.sorry_endpoint
        ? { address: cfg.sorry_endpoint.address, port: cfg.sorry_endpoint.port, in_use: st?.sorry ?? false, ...counters(sorryStats) }
        : null;
      const m = cfg.match;
      return {
        key: svc.key,
        service: ipvsadmServiceText(m),
        protocol: cfg.protocol,
        ...(m.kind === 'addr' ? { address: m.address, ports: m.ports.map((p) => (p.from === p.to ? `${p.from}` : `${p.from}-${p.to}`)).join(',') } : { fwmark: m.mark }),
        ...(m.kind === 'addr' && m.ports.length === 1 && m.ports[0]!.from === m.ports[0]!.to ? { port: m.ports[0]!.from } : {}),
        family: m.family,
        kind: cfg.lb_kind,
        forward: FORWARD_NAMES[cfg.lb_kind],
        lb_algo: cfg.lb_algo,
        scheduler_in_effect: st?.scheduler_in_effect ?? cfg.lb_algo,
        serving: st?.serving ?? false,
        sorry: svc.last?.sorryActive ?? false,
        quorum_up: svc.last?.quorumUp ?? false,
        conns: st?.conns ?? 0,
        in_pkts: st ? st.in_pkts : 0,
        out_pkts: st ? st.out_pkts : 0,
        in_bytes: st?.in_bytes ?? 0,
        out_bytes: st?.out_bytes ?? 0,
        active_conns: st ? st.active_conns : 0,
        inact_conns: st ? st.inact_conns : 0,
        real_servers: reals,
        sorry_server: sorry,
      };
    });
  }

  /** Per-check figures for metrics (check_duration_seconds, check_failures_total). */
  checkMetrics(): CheckMetric[] {
    return this.#services.flatMap((svc) => svc.reals.flatMap((r) => {
      const stats: HealthStats = r.runner.stats();
      return stats.checkers.map((c) => ({
        virtual_server: svc.key,
        real_server: r.id,
        type: c.type,
        ...(c.lastDurationMs === null ? {} : { last_duration_seconds: c.lastDurationMs / 1000 }),
        failures: c.failures,
      }));
    }));
  }

  /** Stops accepting everywhere, drains, stops checks, closes the data plane. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    for (const svc of this.#services) { svc.wanted = false; clearTimeout(svc.retry); }
    await Promise.all(this.#services.map((s) => this.#unserve(s)));
    this.#stopped = true;
    for (const svc of this.#services) {
      for (const r of svc.reals) r.runner.stop();
      if (svc.pool) this.#events(svc, stopPool(poolParams(svc.cfg), svc.reals.map((r) => ({ id: r.id, address: r.cfg.address, port: r.cfg.port, weight: r.cfg.weight, health: r.health })), svc.pool));
    }
    await this.deps.dataPlane.close();
  }
}
