/**
 * The virtual-server manager on the main thread: one HealthRunner per real server, the pure pool
 * logic turning health into the destination list, and the data plane (the Dataplane contract:
 * in the daemon a DataplaneSet routing each service to the proxy or the kernel path by its
 * lb_kind) that serves each virtual service while the VRRP instance owning its address is MASTER.
 * No packet or connection is touched here.
 *
 * It also keeps what the operator and `status` need beyond one pool evaluation: runtime overrides
 * (keepalive-ts weight / drain / disable / enable: in memory, on this director only, kept across
 * reloads while the real server stays in the config, lost on restart), the slow-start timer
 * (re-evaluating the pool while a ramp lasts; the ramp itself is pool.ts's), counter totals that
 * survive a destination leaving the data plane, and ipvsadm --rate estimates (counters.ts).
 */
import type { Logger } from 'pino';
import { isEmptyVirtualServerChange, type RealServerConfig, type ReloadPlan, type VirtualServerConfig } from '../config/index.js';
import type { RealServerStatus as RealServerReport, SorryServerStatus, VirtualServerStatus } from '../daemon/status.js';
import { endpointText, ipvsadmServiceText, parseEndpointText, parseServiceArg, type ServiceKey, type ServiceMatch } from '../util/endpoint.js';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { ScriptRunner } from '../util/script.js';
import { FORWARD_NAMES, type Dataplane, type DataplaneStats, type DestStats, type PoolSpec, type ServiceSpec } from './dataplane/contract.js';
import { CounterCarry, RateEstimator } from './counters.js';
import { HealthRunner, type HealthStats } from './health.js';
import { evaluatePool, stopPool, type PoolParams, type PoolResult, type PoolState, type RealServerStatus, type RuntimeOverride } from './pool.js';

export interface LvsDeps {
  dataPlane: Dataplane;
  log: Logger;
  /** Called when a service's quorum or serving state changes (BGP announcements follow both). */
  onStateChange?: () => void;
  /**
   * Runs quorum_up/down, notify_up/down and MISC_CHECK scripts (user resolution and script
   * security, shared with the VRRP side). Default: the default policy (no script_user, no security).
   */
  scripts?: ScriptRunner;
  /** Builds a health runner; tests substitute scripted checks. */
  healthRunner?: (opts: ConstructorParameters<typeof HealthRunner>[0]) => Pick<HealthRunner, 'start' | 'stop' | 'stats'>;
  /** A real server went up / down, or a virtual server gained / lost quorum, with smtp_alert on (the daemon mails it). */
  alert?: (a: LvsAlert) => void;
  /** Clock for slow start, overrides and rates (ms); tests substitute it. Default Date.now. */
  now?: () => number;
}

/** The operator's commands: keepalive-ts weight / drain / disable / enable. */
export type OverrideAction = RuntimeOverride['action'] | 'enable';
export const OVERRIDE_COMMANDS: readonly OverrideAction[] = ['weight', 'drain', 'disable', 'enable'];

export interface OverrideRequest {
  /** The service as the CLI takes it ("10.0.0.50:80", "udp:[fd00::50]:53", "fwmark:1") or its key ("tcp/10.0.0.50:80"). */
  virtualServer: string;
  /** "ADDR:PORT", "[V6]:PORT", or "ADDR" for a real server without a port of its own. */
  realServer: string;
  action: OverrideAction;
  /** For `weight`: an integer 0..2147483647. */
  weight?: number;
}

export interface OverrideResult {
  virtual_server: ServiceKey;
  service: string;
  real_server: string;
  action: OverrideAction;
  /** The override now in place (null after enable). */
  override: { action: RuntimeOverride['action']; weight?: number } | null;
  configured_weight: number;
  /** What it settles at (0 while down, drained or disabled). */
  effective_weight: number;
  /** In the data plane now (ramped during slow start). */
  weight: number;
  /** Slow start is ramping it up. */
  ramping: boolean;
  up: boolean;
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
  /** The operator's runtime override and when it was set (epoch ms). */
  override: { value: RuntimeOverride; at: number } | null;
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
  /** The real servers' checks are running (always, or with ha_suspend only while wanted). */
  checking: boolean;
  /** Next slow-start step. */
  ramp: NodeJS.Timeout | undefined;
  /** The pool last handed to the data plane (JSON), to skip identical updates; null = send the next one. */
  sent: string | null;
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
    ...(cfg.lb_kind === 'PROXY'
      ? { proxy: { proxyProtocol: cfg.proxy_protocol, connectTimeoutMs: cfg.connect_timeout * 1000, ...(cfg.maxconn_per_source > 0 ? { maxConnsPerSource: cfg.maxconn_per_source } : {}) } }
      : {}),
  };
}

/** The pool the data plane gets from a pool evaluation: real destinations only; the sorry server apart. */
export function poolSpec(cfg: VirtualServerConfig, result: PoolResult): PoolSpec {
  const byId = new Map(cfg.real_server.map((rs) => [endpointText(rs.endpoint), rs]));
  // uthreshold / lthreshold: the data plane marks the server overloaded (IPVS connection thresholds).
  const thresholds = (rs: RealServerConfig) => ({ ...(rs.uthreshold > 0 ? { uthreshold: rs.uthreshold } : {}), ...(rs.lthreshold > 0 ? { lthreshold: rs.lthreshold } : {}) });
  const dests = result.destinations
    .filter((d) => d.kind === 'real' && byId.has(d.id))
    .map((d) => ({ key: d.id, endpoint: byId.get(d.id)!.endpoint, weight: d.weight, ...thresholds(byId.get(d.id)!) }));
  return { dests, sorry: cfg.sorry_endpoint };
}

export function poolParams(cfg: VirtualServerConfig): PoolParams {
  const sorry = cfg.sorry_endpoint;
  return {
    slowStartMs: cfg.slow_start * 1000,
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

/** ipvsadm's persistence mask: a dotted IPv4 netmask, an IPv6 prefix length. */
function granularityText(family: 4 | 6, prefix: number): string {
  if (family === 6) return String(prefix);
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Counter keys: the service, and its real servers / sorry server under it. */
const destKey = (svc: ServiceKey, id: string): string => `${svc}|${id}`;

/** The largest weight IPVS takes. */
const MAX_WEIGHT = 2147483647;

export class VirtualServerManager {
  #services: Service[];
  readonly #scripts: ScriptRunner;
  #stats: DataplaneStats | null = null;
  #poll: NodeJS.Timeout | undefined;
  /** #stats by service key, each with its real servers' counters by key (built once per refresh). */
  #statsIndex = new Map<string, { svc: DataplaneStats['services'][number]; dests: Map<string, DestStats>; sorry: DestStats | undefined }>();
  #stopped = false;
  readonly #now: () => number;
  readonly #carry = new CounterCarry();
  readonly #rates = new RateEstimator();
  /** Override commands applied, by action (keepalive_ts_runtime_overrides_total). */
  readonly #overrideCounts: Record<OverrideAction, number> = { weight: 0, drain: 0, disable: 0, enable: 0 };

  #owns: (address: string) => boolean = () => false;

  constructor(configs: readonly VirtualServerConfig[], private readonly deps: LvsDeps) {
    this.#scripts = deps.scripts ?? new ScriptRunner({
      policy: () => ({ enable_script_security: false }),
      onRefused: (command, reason) => deps.log.error({ command, reason }, 'script refused'),
    });
    this.#now = deps.now ?? Date.now;
    this.#services = configs.map((cfg) => this.#makeService(cfg));
  }

  #makeService(cfg: VirtualServerConfig): Service {
    const svc: Service = { key: cfg.key, cfg, reals: [], pool: null, last: null, wanted: false, serving: false, retry: undefined, ramp: undefined, sent: null, checking: false };
    svc.reals = cfg.real_server.map((rs) => this.#makeReal(svc, rs));
    return svc;
  }

  #makeReal(svc: Service, rs: RealServerConfig): Real {
    const real: Real = { id: endpointText(rs.endpoint), cfg: rs, health: 'unknown', dynamicWeight: undefined, runner: undefined!, lastChange: null, override: null };
    real.runner = this.#makeRunner(svc, real);
    return real;
  }

  #makeRunner(svc: Service, real: Real): Real['runner'] {
    const opts = {
      checks: real.cfg.check,
      weight: real.cfg.weight,
      checkerOptions: { scripts: this.#scripts },
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
    const fresh: Array<[Service, Real]> = [];
    /** Services whose pool may differ: only these are re-evaluated and sent to the data plane. */
    const touched: Service[] = [];
    const byKey = this.#byKey();
    const removed = new Set<Service>();
    for (const cfg of plan.virtualServers.removed) {
      const svc = byKey.get(cfg.key);
      if (!svc) continue;
      svc.wanted = false;
      clearTimeout(svc.retry);
      clearTimeout(svc.ramp);
      this.#dropOverrides(svc, svc.reals, 'its virtual server left the config');
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
        if (real) this.#dropOverrides(svc, [real], 'it left the config');
        svc.reals = svc.reals.filter((r) => r !== real);
      }
      for (const kr of rsPlan.kept) {
        const real = svc.reals.find((r) => same(r.cfg, kr.current));
        if (!real) continue;
        real.cfg = kr.next;
        if (kr.checksChanged) {
          real.runner.stop();
          real.runner = this.#makeRunner(svc, real);
          fresh.push([svc, real]);
        }
      }
      for (const rs of rsPlan.added) {
        const real = this.#makeReal(svc, rs);
        svc.reals.push(real);
        fresh.push([svc, real]);
      }
    }
    for (const cfg of plan.virtualServers.added) {
      const svc = this.#makeService(cfg);
      this.#services.push(svc);
      touched.push(svc);
    }
    // The full desired set: unchanged services keep their sockets, removed ones drain in the worker.
    await this.deps.dataPlane.configure(this.#services.map((x) => serviceSpec(x.cfg)));
    // Every changed service's pool is sent again (it may have moved to another data plane: lb_kind
    // changed); unchanged services are not re-evaluated. All in flight at once.
    for (const svc of touched) svc.sent = null;
    await Promise.all(touched.map((svc) => this.#apply(svc)));
    if (touched.length > 0 || removed.size > 0) {
      const keys = new Set(this.#services.flatMap((s) => [s.key as string, ...s.reals.map((r) => destKey(s.key, r.id)), ...(s.cfg.sorry_endpoint ? [destKey(s.key, `sorry:${endpointText(s.cfg.sorry_endpoint)}`)] : [])]));
      this.#carry.retain((k) => keys.has(k));
      this.#rates.retain((k) => keys.has(k));
    }
    for (const [svc, r] of fresh) if (svc.checking) r.runner.start();
    this.setOwnership(this.#owns);
    for (const svc of this.#services) this.#syncChecks(svc);
  }

  /**
   * keepalived's ha_suspend: the checks of a service run only while this director holds its
   * address (they are stopped when it goes, and start afresh when it comes back; the servers keep
   * the health they had). Without ha_suspend they run all the time.
   */
  #syncChecks(svc: Service): void {
    const want = !this.#stopped && (!svc.cfg.ha_suspend || svc.wanted);
    if (want === svc.checking) return;
    svc.checking = want;
    for (const r of svc.reals) {
      r.runner.stop();
      if (want) {
        r.runner = this.#makeRunner(svc, r);
        r.runner.start();
      }
    }
    if (svc.cfg.ha_suspend) this.deps.log.info({ virtual_server: svc.key }, `${svc.key}: health checks ${want ? 'resumed' : 'suspended (ha_suspend: the address is not on this director)'}`);
  }

  /** Configures the data plane, computes the first pools and starts the health checks. */
  async start(): Promise<void> {
    await this.deps.dataPlane.configure(this.#services.map((s) => serviceSpec(s.cfg)));
    // One message per service, all in flight at once (the data plane answers them in order).
    await Promise.all(this.#services.map((s) => this.#apply(s)));
    for (const s of this.#services) this.#syncChecks(s);
    this.#poll = setInterval(() => void this.refresh().catch(() => undefined), 1000);
    this.#poll.unref();
  }

  async #apply(svc: Service): Promise<void> {
    if (this.#stopped) return;
    clearTimeout(svc.ramp);
    svc.ramp = undefined;
    const servers: RealServerStatus[] = svc.reals.map((r) => ({
      id: r.id, address: r.cfg.address, port: r.cfg.port, weight: r.cfg.weight, dynamicWeight: r.dynamicWeight,
      health: r.health, inhibitOnFailure: r.cfg.inhibit_on_failure || svc.cfg.inhibit_on_failure,
      ...(r.override ? { override: r.override.value } : {}),
    }));
    const now = this.#now();
    const result = evaluatePool(poolParams(svc.cfg), servers, svc.pool, now);
    const quorumBefore = svc.last?.quorumUp;
    svc.pool = result.state;
    svc.last = result;
    if (quorumBefore !== result.quorumUp) this.deps.onStateChange?.();
    this.#events(svc, result.events);
    if (result.nextEvaluationAt !== null) {
      // Slow start: the next step of the ramp (never on the VRRP path: a timer of its own).
      svc.ramp = setTimeout(() => void this.#apply(svc), Math.max(0, result.nextEvaluationAt - now));
      svc.ramp.unref();
    }
    const pool = poolSpec(svc.cfg, result);
    const text = JSON.stringify(pool);
    if (text === svc.sent) return;
    svc.sent = text;
    try {
      await this.deps.dataPlane.setPool(svc.key, pool);
    } catch (err) {
      svc.sent = null;
      this.deps.log.error({ virtual_server: svc.key, err: errorMessage(err) }, 'cannot update the data plane pool');
    }
  }

  /**
   * keepalive-ts weight / drain / disable / enable: sets (or, for enable, clears) the runtime
   * override of one real server and resolves once the data plane has the new pool, so the next
   * connection already obeys it. Unknown targets are E_NOT_FOUND, bad arguments E_USAGE; nothing
   * changes then.
   */
  async override(req: OverrideRequest): Promise<OverrideResult> {
    const { svc, real } = this.#target(req.virtualServer, req.realServer);
    let value: RuntimeOverride | null;
    switch (req.action) {
      case 'weight': {
        const w = req.weight;
        if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > MAX_WEIGHT) {
          throw new KeepaliveError('E_USAGE', `weight must be an integer 0..${MAX_WEIGHT}, got ${JSON.stringify(w)}`);
        }
        value = { action: 'weight', weight: w };
        break;
      }
      case 'drain':
      case 'disable':
        value = { action: req.action };
        break;
      case 'enable':
        value = null;
        break;
      default:
        throw new KeepaliveError('E_USAGE', `unknown action ${JSON.stringify(req.action)} (known: ${OVERRIDE_COMMANDS.join(', ')})`);
    }
    const was = real.override?.value ?? null;
    real.override = value ? { value, at: this.#now() } : null;
    this.#overrideCounts[req.action]++;
    const what = value === null ? `enable: back to the configured weight ${real.cfg.weight}${was ? ` (cleared ${was.action}${was.action === 'weight' ? ` ${was.weight}` : ''})` : ' (no override was set)'}`
      : value.action === 'weight' ? `weight ${value.weight} (configured ${real.cfg.weight})` : value.action === 'drain' ? 'drain: weight 0, open connections finish' : 'disable: out of the pool';
    this.deps.log.info({ virtual_server: svc.key, real_server: real.id, action: req.action, ...(value?.action === 'weight' ? { weight: value.weight } : {}), was: was?.action ?? null },
      `runtime override of ${real.id} in ${svc.key}: ${what}`);
    await this.#apply(svc);
    const dest = svc.last?.destinations.find((d) => d.kind === 'real' && d.id === real.id);
    return {
      virtual_server: svc.key,
      service: ipvsadmServiceText(svc.cfg.match),
      real_server: real.id,
      action: req.action,
      override: value ? { ...value } : null,
      configured_weight: real.cfg.weight,
      effective_weight: dest?.targetWeight ?? 0,
      weight: dest?.weight ?? 0,
      ramping: dest?.ramp !== undefined,
      up: real.health === 'up',
    };
  }

  /** Override commands applied since start, by action (metrics). */
  overrideCounts(): Record<OverrideAction, number> {
    return { ...this.#overrideCounts };
  }

  #target(vsText: string, rsText: string): { svc: Service; real: Real } {
    if (typeof vsText !== 'string' || typeof rsText !== 'string') throw new KeepaliveError('E_USAGE', 'a virtual server and a real server are required');
    // The canonical key (what the CLI sends, "tcp/10.0.0.50:80") or the CLI's own form.
    const key = /^(tcp|udp|fwmark6?)\//.test(vsText) ? vsText : parseServiceArg(vsText);
    if (key === null) {
      throw new KeepaliveError('E_USAGE', `not a virtual server: ${JSON.stringify(vsText)} (ADDR:PORT for TCP, udp:ADDR:PORT, fwmark:N; IPv6 in brackets)`);
    }
    const svc = this.#services.find((s) => s.key === key);
    if (!svc) {
      const known = this.#services.map((s) => s.key).join(', ') || 'none';
      throw new KeepaliveError('E_NOT_FOUND', `no virtual server ${key} on this director (configured: ${known})`);
    }
    const ep = parseEndpointText(rsText, true);
    if (!ep) throw new KeepaliveError('E_USAGE', `not a real server: ${JSON.stringify(rsText)} (ADDR:PORT; IPv6 in brackets)`);
    const id = endpointText(ep);
    const real = svc.reals.find((r) => r.id === id);
    if (!real) {
      throw new KeepaliveError('E_NOT_FOUND', `${svc.key} has no real server ${id} (configured: ${svc.reals.map((r) => r.id).join(', ') || 'none'})`);
    }
    return { svc, real };
  }

  #dropOverrides(svc: Service, reals: readonly Real[], why: string): void {
    for (const r of reals) {
      if (!r.override) continue;
      this.deps.log.info({ virtual_server: svc.key, real_server: r.id, action: r.override.value.action }, `runtime override of ${r.id} in ${svc.key} dropped: ${why}`);
      r.override = null;
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
    void this.#scripts.run(cmd, [], 30_000, undefined).then((r) => {
      if (r.refused !== undefined) return; // reported by the runner
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
      this.#syncChecks(svc);
    }
  }

  #serve(svc: Service, attempt: number): void {
    clearTimeout(svc.retry);
    if (!svc.wanted || this.#stopped) return;
    this.deps.dataPlane.serve(svc.key).then(
      () => {
        svc.serving = true;
        this.deps.log.info({ virtual_server: svc.key, kind: svc.cfg.lb_kind }, `serving ${svc.key} (${svc.cfg.lb_kind})`);
        this.deps.onStateChange?.();
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
    this.deps.onStateChange?.();
    this.deps.log.info({ virtual_server: svc.key, drain_s: svc.cfg.drain_timeout }, `stopped serving ${svc.key}; draining`);
    await this.deps.dataPlane.unserve(svc.key, svc.cfg.drain_timeout * 1000).catch((err: unknown) =>
      this.deps.log.warn({ virtual_server: svc.key, err: errorMessage(err) }, 'unserve failed'));
  }

  /** Quorum and serving state per virtual server, keyed like the announcement core (src/announce/desired.ts). */
  announceFacts(): Map<ServiceKey, { quorum: boolean; serving: boolean }> {
    return new Map(this.#services.map((svc) => [svc.cfg.key, { quorum: svc.last?.quorumUp ?? false, serving: svc.serving }]));
  }

  /** Fetches fresh counters from the data plane (status calls this; a 1 s poll keeps metrics fresh). */
  async refresh(): Promise<void> {
    if (this.#stopped) return;
    const stats = await this.deps.dataPlane.stats();
    this.#stats = stats;
    this.#statsIndex = new Map(stats.services.map((svc) => {
      const dests = new Map<string, DestStats>();
      for (const x of svc.dests) if (!x.sorry && !dests.has(x.key)) dests.set(x.key, x);
      return [svc.key, { svc, dests, sorry: svc.dests.find((x) => x.sorry) }];
    }));
    const now = this.#now();
    for (const svc of this.#services) {
      const indexed = this.#statsIndex.get(svc.key);
      this.#rates.sample(svc.key, this.#carry.observe(svc.key, indexed?.svc), now);
      for (const r of svc.reals) {
        const k = destKey(svc.key, r.id);
        this.#rates.sample(k, this.#carry.observe(k, indexed?.dests.get(r.id)), now);
      }
      const sorry = svc.cfg.sorry_endpoint;
      if (sorry) {
        const k = destKey(svc.key, `sorry:${endpointText(sorry)}`);
        this.#rates.sample(k, this.#carry.observe(k, indexed?.sorry), now);
      }
    }
  }

  /** Totals and connection counts of one destination for status. */
  #destCounters(key: string, x: DestStats | undefined) {
    const totals = this.#carry.get(key) ?? { conns: 0, in_pkts: x ? x.in_pkts : 0, out_pkts: x ? x.out_pkts : 0, in_bytes: 0, out_bytes: 0 };
    return {
      active_conns: x ? x.active_conns : 0,
      inact_conns: x ? x.inact_conns : 0,
      ...totals,
      rates: this.#rates.rates(key),
    };
  }

  /** The data planes' own figures (nft transactions, table fills, connection-sync dumps…), prefixed by implementation. */
  dataplaneExtra(): Record<string, number> {
    return { ...(this.#stats?.extra ?? {}) };
  }

  status(): VirtualServerStatus[] {
    return this.#services.map((svc) => {
      const cfg = svc.cfg;
      const indexed = this.#statsIndex.get(svc.key);
      const st = indexed?.svc;
      const now = this.#now();
      const destinations = new Map(svc.last?.destinations.filter((d) => d.kind === 'real').map((d) => [d.id, d]));
      const reals: RealServerReport[] = svc.reals.map((r) => {
        const dest = destinations.get(r.id);
        const o = r.override;
        const ramp = dest?.ramp;
        return {
          address: r.cfg.endpoint.address,
          port: r.cfg.endpoint.port,
          weight: dest?.weight ?? 0,
          configured_weight: r.cfg.weight,
          effective_weight: dest?.targetWeight ?? 0,
          override: o ? { action: o.value.action, ...(o.value.action === 'weight' ? { weight: o.value.weight } : {}), since: iso(o.at) } : null,
          slow_start: ramp ? { since: iso(ramp.since), until: iso(ramp.until), progress: Math.min(1, Math.max(0, (now - ramp.since) / (ramp.until - ramp.since))) } : null,
          up: r.health === 'up',
          ...this.#destCounters(destKey(svc.key, r.id), indexed?.dests.get(r.id)),
          health: r.health,
          ...(r.lastChange ? { last_change: iso(r.lastChange.at), reason: r.lastChange.reason } : {}),
        };
      });
      const sorryStats = indexed?.sorry;
      const sorry: SorryServerStatus | null = cfg.sorry_endpoint
        ? {
            address: cfg.sorry_endpoint.address,
            port: cfg.sorry_endpoint.port,
            in_use: st?.sorry ?? false,
            ...this.#destCounters(destKey(svc.key, `sorry:${endpointText(cfg.sorry_endpoint)}`), sorryStats),
          }
        : null;
      const totals = this.#carry.get(svc.key);
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
        sched_flags: [...cfg.sched_flags],
        persistence_timeout: cfg.persistence_timeout,
        persistence_granularity: granularityText(m.family, cfg.persistence_prefix),
        ops: cfg.ops,
        slow_start: cfg.slow_start,
        serving: st?.serving ?? false,
        sorry: svc.last?.sorryActive ?? false,
        quorum_up: svc.last?.quorumUp ?? false,
        conns: totals?.conns ?? st?.conns ?? 0,
        in_pkts: totals ? totals.in_pkts : st ? st.in_pkts : 0,
        out_pkts: totals ? totals.out_pkts : st ? st.out_pkts : 0,
        in_bytes: totals?.in_bytes ?? st?.in_bytes ?? 0,
        out_bytes: totals?.out_bytes ?? st?.out_bytes ?? 0,
        active_conns: st ? st.active_conns : 0,
        inact_conns: st ? st.inact_conns : 0,
        rates: this.#rates.rates(svc.key),
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

  /** During stop(): cut the drain short (open connections are closed now). */
  async hurry(): Promise<void> {
    await Promise.all(this.#services.map((s) => this.deps.dataPlane.unserve(s.key, 0).catch(() => undefined)));
  }

  /** Stops accepting everywhere, drains, stops checks, closes the data plane. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    clearInterval(this.#poll);
    for (const svc of this.#services) { svc.wanted = false; clearTimeout(svc.retry); clearTimeout(svc.ramp); }
    await Promise.all(this.#services.map((s) => this.#unserve(s)));
    this.#stopped = true;
    for (const svc of this.#services) {
      for (const r of svc.reals) r.runner.stop();
      if (svc.pool) this.#events(svc, stopPool(poolParams(svc.cfg), svc.reals.map((r) => ({ id: r.id, address: r.cfg.address, port: r.cfg.port, weight: r.cfg.weight, health: r.health })), svc.pool));
    }
    await this.deps.dataPlane.close();
  }
}
