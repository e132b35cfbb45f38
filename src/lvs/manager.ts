/**
 * The virtual-server manager on the main thread: one HealthRunner per real server, the pure pool
 * logic turning health into the destination list, and the data plane (a worker thread) that serves
 * each virtual service while the VRRP instance owning its address is MASTER. No packet or
 * connection is touched here.
 */
import type { Logger } from 'pino';
import { isEmptyVirtualServerChange, type ReloadPlan, type VirtualServerConfig } from '../config/index.js';
import type { RealServerStatus as RealServerReport, VirtualServerStatus } from '../daemon/status.js';
import { errorMessage } from '../util/errors.js';
import { runCommand } from '../util/exec.js';
import { HealthRunner, type HealthStats } from './health.js';
import { evaluatePool, stopPool, type PoolParams, type PoolResult, type PoolState, type RealServerStatus } from './pool.js';
import { serviceId, type DataPlane, type DataPlaneStats, type ServiceSpec } from './dataplane/index.js';

export interface LvsDeps {
  dataPlane: Pick<DataPlane, 'configure' | 'setPool' | 'serve' | 'unserve' | 'stats' | 'close'>;
  log: Logger;
  run?: typeof runCommand;
  /** Builds a health runner; tests substitute scripted checks. */
  healthRunner?: (opts: ConstructorParameters<typeof HealthRunner>[0]) => Pick<HealthRunner, 'start' | 'stop' | 'stats'>;
}

export interface CheckMetric {
  virtual_server: string;
  real_server: string;
  type: string;
  last_duration_seconds?: number;
  failures?: number;
}

interface Real {
  id: string;
  cfg: VirtualServerConfig['real_server'][number];
  health: RealServerStatus['health'];
  dynamicWeight: number | undefined;
  runner: Pick<HealthRunner, 'start' | 'stop' | 'stats'>;
  /** When the health last changed (epoch ms) and the checker's message then; null before the first result. */
  lastChange: { at: number; reason: string } | null;
}

interface Service {
  id: string;
  cfg: VirtualServerConfig;
  reals: Real[];
  pool: PoolState | null;
  last: PoolResult | null;
  /** Serving wanted (the owning VRRP instance holds the address). */
  wanted: boolean;
  serving: boolean;
  retry: NodeJS.Timeout | undefined;
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export function serviceSpec(cfg: VirtualServerConfig): ServiceSpec {
  return {
    id: serviceId(cfg.protocol === 'TCP' ? 'tcp' : 'udp', cfg.address, cfg.port),
    protocol: cfg.protocol === 'TCP' ? 'tcp' : 'udp',
    address: cfg.address,
    port: cfg.port,
    lbAlgo: cfg.lb_algo,
    persistence: cfg.persistence_timeout > 0
      ? { timeoutMs: cfg.persistence_timeout * 1000, ...(cfg.family === 4 ? { prefix4: cfg.persistence_prefix } : { prefix6: cfg.persistence_prefix }) }
      : null,
    proxyProtocol: cfg.proxy_protocol,
    connectTimeoutMs: cfg.connect_timeout * 1000,
    ops: cfg.ops,
    drainMs: cfg.drain_timeout * 1000,
  };
}

function poolParams(cfg: VirtualServerConfig): PoolParams {
  return {
    quorum: cfg.quorum,
    hysteresis: cfg.hysteresis,
    alpha: cfg.alpha,
    omega: cfg.omega,
    sorryServer: cfg.sorry_server ? { id: `sorry:${hostPort(cfg.sorry_server.address, cfg.sorry_server.port)}`, ...cfg.sorry_server } : undefined,
    sorryServerInhibit: cfg.sorry_server_inhibit,
    depoolThreshold: cfg.depool_threshold,
  };
}

export class VirtualServerManager {
  #services: Service[];
  readonly #run: typeof runCommand;
  #stats: DataPlaneStats | null = null;
  /** #stats by service id, and each service's real servers by id and by address:port. */
  #statsIndex: Map<string, { svc: DataPlaneStats['services'][number]; reals: Map<string, DataPlaneStats['services'][number]['real_servers'][number]> }> = new Map();
  #stopped = false;

  #owns: (address: string) => boolean = () => false;

  constructor(configs: readonly VirtualServerConfig[], private readonly deps: LvsDeps) {
    this.#run = deps.run ?? runCommand;
    this.#services = configs.map((cfg) => this.#makeService(cfg));
  }

  #makeService(cfg: VirtualServerConfig): Service {
    const svc: Service = { id: serviceSpec(cfg).id, cfg, reals: [], pool: null, last: null, wanted: false, serving: false, retry: undefined };
    svc.reals = cfg.real_server.map((rs) => this.#makeReal(svc, rs));
    return svc;
  }

  #makeReal(svc: Service, rs: VirtualServerConfig['real_server'][number]): Real {
    const real: Real = { id: hostPort(rs.address, rs.port), cfg: rs, health: 'unknown', dynamicWeight: undefined, runner: undefined!, lastChange: null };
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
        this.deps.log[level]({ virtual_server: svc.id, real_server: real.id, health, was, reason: detail }, `real server ${real.id} of ${svc.id} is ${health}: ${detail}`);
        void this.#apply(svc);
      },
    };
    return this.deps.healthRunner ? this.deps.healthRunner(opts) : new HealthRunner(opts);
  }

  /** The services by protocol|address|port, for a reload's lookups (one per kept or removed service). */
  #byKey(): Map<string, Service> {
    return new Map(this.#services.map((s) => [`${s.cfg.protocol}|${s.cfg.address}|${s.cfg.port}`, s]));
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
    const find = (cfg: VirtualServerConfig): Service | undefined => byKey.get(`${cfg.protocol}|${cfg.address}|${cfg.port}`);
    const removed = new Set<Service>();
    for (const cfg of plan.virtualServers.removed) {
      const svc = find(cfg);
      if (!svc) continue;
      svc.wanted = false;
      clearTimeout(svc.retry);
      for (const r of svc.reals) r.runner.stop();
      removed.add(svc);
    }
    if (removed.size > 0) this.#services = this.#services.filter((s) => !removed.has(s));
    for (const k of plan.virtualServers.kept) {
      const svc = find(k.current);
      if (!svc) continue;
      svc.cfg = k.next;
      if (isEmptyVirtualServerChange(k.changes)) {
        // Same settings and servers: the new objects replace the old ones, nothing is re-evaluated.
        for (const real of svc.reals) real.cfg = k.next.real_server.find((rs) => rs.address === real.cfg.address && rs.port === real.cfg.port) ?? real.cfg;
        continue;
      }
      touched.push(svc);
      const rsPlan = k.changes.realServers;
      const same = (a: { address: string; port: number }, b: { address: string; port: number }) => a.address === b.address && a.port === b.port;
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
    // One message per service, all in flight at once (the worker answers them in order).
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
    const dests = result.destinations.filter((d) => d.kind === 'real').map(({ id, address, port, weight }) => ({ id, address, port, weight }));
    const sorry = svc.cfg.sorry_server ?? null;
    try {
      await this.deps.dataPlane.setPool(svc.id, dests, sorry);
    } catch (err) {
      this.deps.log.error({ virtual_server: svc.id, err: errorMessage(err) }, 'cannot update the data plane pool');
    }
  }

  #events(svc: Service, events: PoolResult['events']): void {
    const log = this.deps.log;
    for (const ev of events) {
      switch (ev.type) {
        case 'quorum_up':
        case 'quorum_down': {
          log.info({ virtual_server: svc.id, weight_sum: ev.weightSum, threshold: ev.threshold }, `${svc.id}: ${ev.type.replace('_', ' ')}`);
          const script = ev.type === 'quorum_up' ? svc.cfg.quorum_up : svc.cfg.quorum_down;
          if (script) this.#notify(script);
          break;
        }
        case 'rs_up':
        case 'rs_down': {
          const real = svc.reals.find((r) => r.id === ev.id);
          const script = ev.type === 'rs_up' ? real?.cfg.notify_up : real?.cfg.notify_down;
          if (script) this.#notify(script);
          break;
        }
        case 'kept_despite_failing':
          log.warn({ virtual_server: svc.id, real_server: ev.id }, `${ev.id} fails its checks but stays pooled (depool_threshold)`);
          break;
        case 'kept_released':
          log.info({ virtual_server: svc.id, real_server: ev.id }, `${ev.id} released from the depool_threshold hold`);
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
   * true; on losing it the service stops accepting and drains (drain_timeout).
   */
  setOwnership(owns: (address: string) => boolean): void {
    this.#owns = owns;
    for (const svc of this.#services) {
      const want = owns(svc.cfg.address);
      if (want === svc.wanted) continue;
      svc.wanted = want;
      if (want) this.#serve(svc, 0);
      else void this.#unserve(svc);
    }
  }

  #serve(svc: Service, attempt: number): void {
    clearTimeout(svc.retry);
    if (!svc.wanted || this.#stopped) return;
    this.deps.dataPlane.serve(svc.id).then(
      () => {
        svc.serving = true;
        this.deps.log.info({ virtual_server: svc.id }, `serving ${svc.id}`);
        // Ownership may have gone while the worker was binding.
        if (!svc.wanted) void this.#unserve(svc);
      },
      (err: unknown) => {
        // The VIP can lag the MASTER transition by a moment; keep trying while we still own it.
        const delay = Math.min(1000, 20 * 2 ** Math.min(attempt, 6));
        if (attempt % 10 === 0) this.deps.log.warn({ virtual_server: svc.id, err: errorMessage(err), attempt }, `cannot serve ${svc.id} yet; retrying`);
        svc.retry = setTimeout(() => this.#serve(svc, attempt + 1), delay);
      },
    );
  }

  async #unserve(svc: Service): Promise<void> {
    clearTimeout(svc.retry);
    if (!svc.serving) return;
    svc.serving = false;
    this.deps.log.info({ virtual_server: svc.id, drain_s: svc.cfg.drain_timeout }, `stopped serving ${svc.id}; draining`);
    await this.deps.dataPlane.unserve(svc.id, svc.cfg.drain_timeout * 1000).catch((err: unknown) =>
      this.deps.log.warn({ virtual_server: svc.id, err: errorMessage(err) }, 'unserve failed'));
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
      const reals = new Map<string, (typeof svc.real_servers)[number]>();
      for (const x of svc.real_servers) {
        if (!reals.has(x.id)) reals.set(x.id, x);
        const at = hostPort(x.address, x.port);
        if (!reals.has(at)) reals.set(at, x);
      }
      return [svc.id, { svc, reals }];
    }));
  }

  status(): VirtualServerStatus[] {
    return this.#services.map((svc) => {
      const indexed = this.#statsIndex.get(svc.id);
      const st = indexed?.svc;
      const dests = new Map(svc.last?.destinations.map((d) => [d.id, d]));
      const reals: RealServerReport[] = svc.reals.map((r) => {
        const rst = indexed?.reals.get(r.id) ?? indexed?.reals.get(hostPort(r.cfg.address, r.cfg.port));
        const dest = dests.get(r.id);
        return {
          address: r.cfg.address,
          port: r.cfg.port,
          weight: dest?.weight ?? 0,
          up: r.health === 'up',
          active_conns: rst?.active_conns ?? 0,
          inact_conns: rst?.inact_conns ?? 0,
          conns: rst?.conns ?? 0,
          in_bytes: rst?.in_bytes ?? 0,
          out_bytes: rst?.out_bytes ?? 0,
          health: r.health,
          ...(r.lastChange ? { last_change: new Date(r.lastChange.at).toISOString(), reason: r.lastChange.reason } : {}),
        };
      });
      const sorry = st?.real_servers.find((x) => x.sorry);
      if (sorry) reals.push({ address: sorry.address, port: sorry.port, weight: sorry.weight, up: true, active_conns: sorry.active_conns, inact_conns: sorry.inact_conns, conns: sorry.conns, in_bytes: sorry.in_bytes, out_bytes: sorry.out_bytes, sorry: true });
      return {
        address: svc.cfg.address,
        port: svc.cfg.port,
        protocol: svc.cfg.protocol,
        lb_algo: svc.cfg.lb_algo,
        serving: st?.serving ?? false,
        sorry: svc.last?.sorryActive ?? false,
        quorum_up: svc.last?.quorumUp ?? false,
        conns: st?.conns ?? 0,
        in_bytes: st?.in_bytes ?? 0,
        out_bytes: st?.out_bytes ?? 0,
        real_servers: reals,
      };
    });
  }

  /** Per-check figures for metrics (check_duration_seconds, check_failures_total). */
  checkMetrics(): CheckMetric[] {
    return this.#services.flatMap((svc) => svc.reals.flatMap((r) => {
      const stats: HealthStats = r.runner.stats();
      return stats.checkers.map((c) => ({
        virtual_server: `${svc.cfg.protocol}/${hostPort(svc.cfg.address, svc.cfg.port)}`,
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
