/**
 * The virtual-server manager on the main thread: one HealthRunner per real server, the pure pool
 * logic turning health into the destination list, and the data plane (the Dataplane contract:
 * in the daemon a DataplaneSet routing each service to the proxy or the kernel path by its
 * lb_kind) that serves each virtual service while the VRRP instance owning its address is MASTER.
 * No packet or connection is touched here.
 *
 * A virtual server is one pool serving one or more services: its own address:port (or mark), or
 * every member of its virtual_server_group (keepalived's semantics: ONE health checker per real
 * server, one quorum, one sorry server, whatever the number of members). The pool is evaluated
 * once and the resulting PoolSpec is handed to every member, each a ServiceSpec of its own in the
 * data plane; each member is served while this director owns its address.
 *
 * It also keeps what the operator and `status` need beyond one pool evaluation: runtime overrides
 * (keepalive-ts weight / drain / disable / enable: in memory, on this director only, kept across
 * reloads while the real server stays in the config, lost on restart), the slow-start timer
 * (re-evaluating the pool while a ramp lasts; the ramp itself is pool.ts's), counter totals that
 * survive a destination leaving the data plane, and ipvsadm --rate estimates (counters.ts).
 */
import type { Logger } from 'pino';
import { isEmptyVirtualServerChange, type RealServerConfig, type ReloadPlan, type VirtualServerConfig } from '../config/index.js';
import type { MemberStatus, RateStatus, RealServerStatus as RealServerReport, SorryServerStatus, VirtualServerStatus } from '../daemon/status.js';
import { endpointText, ipvsadmServiceText, parseEndpointText, parseServiceArg, singlePort, type ServiceKey, type ServiceMatch, type VirtualServerKey, type VirtualService } from '../util/endpoint.js';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { ScriptRunner } from '../util/script.js';
import { FORWARD_NAMES, type Counters, type Dataplane, type DataplaneStats, type DestStats, type PoolSpec, type ServiceSpec, type ServiceStats } from './dataplane/contract.js';
import { CounterCarry, RATE_PERIOD_MS, RateEstimator } from './counters.js';
import { HealthRunner, type HealthStats } from './health.js';
import { evaluatePool, stopPool, type PoolParams, type PoolResult, type PoolState, type RealServerStatus, type RuntimeOverride } from './pool.js';

/** Period of the background counter poll (rates, monotonic totals): see start(). */
export const COUNTER_POLL_MS = RATE_PERIOD_MS + 100;
/** The longest period of that poll while every counter is at rest (see nextCounterPollMs). */
export const COUNTER_POLL_IDLE_MAX_MS = COUNTER_POLL_MS * 16;

/**
 * The delay before the next background counter poll, after one that waited `prevMs`: while every
 * counter stays at rest (no change, every rate 0) the poll backs off, doubling up to
 * COUNTER_POLL_IDLE_MAX_MS — reading 1,000 services' counters every 2 s that do not move is most of
 * what an otherwise idle daemon costs —; the first movement brings it back to COUNTER_POLL_MS.
 * Nothing is lost by waiting: the totals are cumulative, the estimator weighs a late sample by the
 * time it covers, and `status` / a metrics scrape refresh on demand.
 */
export function nextCounterPollMs(prevMs: number, atRest: boolean): number {
  return atRest ? Math.min(Math.max(prevMs, COUNTER_POLL_MS) * 2, COUNTER_POLL_IDLE_MAX_MS) : COUNTER_POLL_MS;
}

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

import { OVERRIDE_COMMANDS, type OverrideAction } from './override-commands.js';
import { setImmediate as setImmediatePromise } from 'node:timers/promises';

/** Services set up per turn of the event loop at start (see start()). */
const START_CHUNK = 50;
export { OVERRIDE_COMMANDS, type OverrideAction };

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
  virtual_server: VirtualServerKey;
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

/** One service of a virtual server in the data plane (the virtual server's own, or a group member). */
interface Member {
  readonly svc: VirtualService;
  /** Serving wanted (the owning VRRP instance holds the address). */
  wanted: boolean;
  serving: boolean;
  retry: NodeJS.Timeout | undefined;
}

interface Service {
  key: VirtualServerKey;
  cfg: VirtualServerConfig;
  /** The data-plane services sharing this pool: one, or one per group member. */
  members: Member[];
  reals: Real[];
  pool: PoolState | null;
  last: PoolResult | null;
  /** Some member is wanted (ha_suspend runs the checks while any member's address is here, as keepalived). */
  wanted: boolean;
  /** The real servers' checks are running (always, or with ha_suspend only while wanted). */
  checking: boolean;
  /** Next slow-start step. */
  ramp: NodeJS.Timeout | undefined;
  /** The pool last handed to the data plane (JSON), to skip identical updates; null = send the next one. */
  sent: string | null;
  /**
   * Every real server had a first check result and the data plane has the pool made from them
   * (latched: servers added later, or a check that turns 'unknown', do not undo it). Until then the
   * pool may lack servers that are fine.
   */
  checked: boolean;
  /** The last setPool handed to the data plane (settled when it is in place). */
  sending: Promise<void>;
}

/**
 * The data plane's view of one service of a virtual server (its only one by default, or a member
 * of its group), built from its config (the one place this happens). Members share every setting,
 * the hash seed included.
 */
export function serviceSpec(cfg: VirtualServerConfig, member: VirtualService = cfg.members[0]!): ServiceSpec {
  const flags = new Set(cfg.sched_flags);
  const algo = cfg.lb_algo;
  return {
    key: member.key,
    match: member.match,
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

/** ipvsadm's name of a virtual server: its service's, or "TCP  group:web" for a group. */
function serviceText(cfg: VirtualServerConfig): string {
  return cfg.group === undefined ? ipvsadmServiceText(cfg.members[0]!.match) : `${cfg.protocol}  group:${cfg.group}`;
}

/** ipvsadm's persistence mask: a dotted IPv4 netmask, an IPv6 prefix length. */
function granularityText(family: 4 | 6, prefix: number): string {
  if (family === 6) return String(prefix);
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Counter keys: the service (or group), and its real servers / sorry server under it. */
const destKey = (svc: string, id: string): string => `${svc}|${id}`;

const newMember = (svc: VirtualService): Member => ({ svc, wanted: false, serving: false, retry: undefined });

/** A virtual server of a virtual_server_group (its figures are sums over its members). */
const isGroup = (svc: Service): boolean => svc.cfg.group !== undefined;

type DestCounters = Counters & { active_conns: number | null; inact_conns: number | null; rates?: RateStatus };

/** null when every part is null (the data plane cannot tell), else the sum of the known ones. */
function sumNullable(values: readonly (number | null)[]): number | null {
  return values.every((v) => v === null) ? null : values.reduce<number>((n, v) => n + (v ?? 0), 0);
}

function sumCounters(list: readonly (Counters | undefined)[]): Counters {
  const known = list.filter((c): c is Counters => c !== undefined);
  const add = (f: (c: Counters) => number) => known.reduce((n, c) => n + f(c), 0);
  return {
    conns: add((c) => c.conns),
    in_pkts: known.length === 0 ? 0 : sumNullable(known.map((c) => c.in_pkts)),
    out_pkts: known.length === 0 ? 0 : sumNullable(known.map((c) => c.out_pkts)),
    in_bytes: add((c) => c.in_bytes),
    out_bytes: add((c) => c.out_bytes),
  };
}

/** A service match as status shows it: address and ports ("80", "21,10000-20000"; port for one), or the mark. */
function matchFields(m: ServiceMatch): { address: string; ports: string; port?: number } | { fwmark: number } {
  if (m.kind === 'fwmark') return { fwmark: m.mark };
  const port = singlePort(m);
  return { address: m.address, ports: m.ports.map((p) => (p.from === p.to ? `${p.from}` : `${p.from}-${p.to}`)).join(','), ...(port === undefined ? {} : { port }) };
}

function withoutAddress<T extends object>(x: T): Omit<T, 'address' | 'port'> {
  const { address: _a, port: _p, ...rest } = x as T & { address?: unknown; port?: unknown };
  return rest;
}

/** serviceSpec() per config object and member key (see #specs). */
const SPECS = new WeakMap<VirtualServerConfig, Map<string, ServiceSpec>>();

/** The largest weight IPVS takes. */
const MAX_WEIGHT = 2147483647;

export class VirtualServerManager {
  #services: Service[];
  readonly #scripts: ScriptRunner;
  #stats: DataplaneStats | null = null;
  #poll: NodeJS.Timeout | undefined;
  /** The delay the pending background poll was armed with. */
  #pollMs = COUNTER_POLL_MS;
  /** stop() began: the background poll is not armed again. */
  #pollOff = false;
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
    const svc: Service = { key: cfg.key, cfg, members: cfg.members.map(newMember), reals: [], pool: null, last: null, wanted: false, ramp: undefined, sent: null, checking: false, checked: false, sending: Promise.resolve() };
    svc.reals = cfg.real_server.map((rs) => this.#makeReal(svc, rs));
    return svc;
  }

  /**
   * Every service of every virtual server, as the data plane's configure() takes them. The spec of
   * an unchanged config object is the object built before (an unchanged virtual server of a
   * reload is the same object, config/incremental.ts): the data plane tells it unchanged by `===`.
   */
  #specs(): ServiceSpec[] {
    return this.#services.flatMap((s) => s.members.map((m) => {
      let byMember = SPECS.get(s.cfg);
      if (!byMember) SPECS.set(s.cfg, (byMember = new Map()));
      let spec = byMember.get(m.svc.key);
      if (!spec) byMember.set(m.svc.key, (spec = serviceSpec(s.cfg, m.svc)));
      return spec;
    }));
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
    /** Some counter key may be gone (a service, member, real or sorry server left): forget their figures. */
    let keysGone = plan.virtualServers.removed.length > 0;
    for (const cfg of plan.virtualServers.removed) {
      const svc = byKey.get(cfg.key);
      if (!svc) continue;
      svc.wanted = false;
      for (const m of svc.members) {
        m.wanted = false;
        clearTimeout(m.retry);
      }
      clearTimeout(svc.ramp);
      this.#dropOverrides(svc, svc.reals, 'its virtual server left the config');
      for (const r of svc.reals) r.runner.stop();
      removed.add(svc);
    }
    if (removed.size > 0) this.#services = this.#services.filter((s) => !removed.has(s));
    for (const k of plan.virtualServers.kept) {
      const svc = byKey.get(k.current.key);
      if (!svc) continue;
      // The very object the service runs with (an unchanged block of the file): nothing to do.
      if (k.next === svc.cfg && k.current === k.next) continue;
      svc.cfg = k.next;
      // Group members: a removed one stops and drains (configure() below leaves it out), an added
      // one gets the shared pool and is served when its address is here; the others are untouched.
      const gone = new Set<string>(k.changes.membersRemoved.map((x) => x.key));
      for (const m of svc.members) {
        if (!gone.has(m.svc.key)) continue;
        m.wanted = false;
        clearTimeout(m.retry);
        this.deps.log.info({ virtual_server: svc.key, service: m.svc.key }, `${m.svc.key} left ${svc.key}; draining`);
      }
      const memberByKey = new Map(svc.members.map((m) => [m.svc.key as string, m]));
      svc.members = k.next.members.map((x) => memberByKey.get(x.key) ?? newMember(x));
      if (isEmptyVirtualServerChange(k.changes)) {
        // Same settings, members and servers: the new objects replace the old ones, nothing is re-evaluated.
        const next = new Map(k.next.real_server.map((rs) => [endpointText(rs.endpoint), rs]));
        for (const real of svc.reals) real.cfg = next.get(real.id) ?? real.cfg;
        continue;
      }
      touched.push(svc);
      const rsPlan = k.changes.realServers;
      if (rsPlan.removed.length > 0 || k.changes.membersRemoved.length > 0 || k.changes.settings.sorry_server !== undefined) keysGone = true;
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
    await this.deps.dataPlane.configure(this.#specs());
    // Every changed service's pool is sent again (it may have moved to another data plane: lb_kind
    // changed); unchanged services are not re-evaluated. All in flight at once.
    for (const svc of touched) svc.sent = null;
    await Promise.all(touched.map((svc) => this.#apply(svc)));
    if (keysGone) {
      const keys = new Set(this.#services.flatMap((s) => [s.key, ...s.members.map((m) => m.svc.key)].flatMap((k) => [
        k as string, ...s.reals.map((r) => destKey(k, r.id)), ...(s.cfg.sorry_endpoint ? [destKey(k, `sorry:${endpointText(s.cfg.sorry_endpoint)}`)] : []),
      ])));
      this.#carry.retain((k) => keys.has(k));
      this.#rates.retain((k) => keys.has(k));
    }
    for (const [svc, r] of fresh) if (svc.checking) r.runner.start();
    this.setOwnership(this.#owns);
    for (const svc of this.#services) this.#syncChecks(svc);
    this.#wakeChecked();
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
    this.#wakeChecked();
  }

  readonly #checkedWaiters = new Set<() => void>();

  /** Services whose checks run and whose first results are not in the data plane yet. */
  uncheckedServices(): VirtualServerKey[] {
    return this.#services.filter((s) => s.checking && !s.checked).map((s) => s.key);
  }

  /**
   * Resolves once every service whose checks run (ha_suspend ones wait for their address) has the
   * pool of its real servers' first check results in the data plane (Service.checked), or at stop.
   * The daemon's start-up hold waits for it.
   */
  firstChecks(): Promise<void> {
    if (this.#stopped || this.uncheckedServices().length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const w = (): void => {
        if (!this.#stopped && this.uncheckedServices().length > 0) return;
        this.#checkedWaiters.delete(w);
        resolve();
      };
      this.#checkedWaiters.add(w);
    });
  }

  /**
   * Looks at the waiters once per turn of the event loop, however many services changed in it:
   * each look is a scan of every service, and with 10,000 services a scan per first check result
   * (or per service whose checks start) made start-up quadratic (~1.5 s of the main thread).
   */
  #wakeChecked(): void {
    if (this.#wakeQueued || this.#checkedWaiters.size === 0) return;
    this.#wakeQueued = true;
    setImmediate(() => {
      this.#wakeQueued = false;
      for (const w of [...this.#checkedWaiters]) w();
    });
  }

  #wakeQueued = false;

  /** Configures the data plane, computes the first pools and starts the health checks. */
  async start(): Promise<void> {
    await this.deps.dataPlane.configure(this.#specs());
    // One message per service, all in flight at once (the data plane answers them in order). The
    // VRRP engine runs on this thread from before this start: with 1,000 services, hand the event
    // loop back every START_CHUNK services so its timers and adverts are not held up.
    const sent: Promise<void>[] = [];
    for (const [i, s] of this.#services.entries()) {
      sent.push(this.#apply(s));
      if (i % START_CHUNK === START_CHUNK - 1) await setImmediatePromise();
    }
    await Promise.all(sent);
    for (const [i, s] of this.#services.entries()) {
      this.#syncChecks(s);
      if (i % START_CHUNK === START_CHUNK - 1) await setImmediatePromise();
    }
    // The counters are read from the data plane at the rate estimator's own period (the kernel
    // estimator's 2 s; a sample sooner than that is not used for the rates anyway) plus a margin so
    // that timer jitter does not land a sample just short of it, less often while nothing moves
    // (nextCounterPollMs). `status` and a metrics scrape refresh on demand, so what they show is
    // current whatever this period.
    this.#armPoll(COUNTER_POLL_MS);
  }

  #armPoll(ms: number): void {
    clearTimeout(this.#poll);
    this.#poll = undefined;
    if (this.#stopped || this.#pollOff) return;
    this.#pollMs = ms;
    this.#poll = setTimeout(() => {
      this.#poll = undefined;
      void this.#refresh().then((atRest) => nextCounterPollMs(ms, atRest), () => ms).then((next) => {
        // An on-demand refresh in between may have armed it already.
        if (this.#poll === undefined) this.#armPoll(next);
      });
    }, ms);
    this.#poll.unref();
  }

  /** Test hook: the delay the pending background counter poll was armed with (undefined: none). */
  counterPollMs(): number | undefined {
    return this.#poll === undefined ? undefined : this.#pollMs;
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
    const checkedNow = !svc.checked && svc.reals.every((r) => r.health !== 'unknown');
    if (quorumBefore !== result.quorumUp) this.deps.onStateChange?.();
    this.#events(svc, result.events);
    if (result.nextEvaluationAt !== null) {
      // Slow start: the next step of the ramp (never on the VRRP path: a timer of its own).
      svc.ramp = setTimeout(() => void this.#apply(svc), Math.max(0, result.nextEvaluationAt - now));
      svc.ramp.unref();
    }
    const pool = poolSpec(svc.cfg, result);
    const text = JSON.stringify(pool);
    if (text !== svc.sent) {
      svc.sent = text;
      // One evaluation, the same pool for every member.
      svc.sending = Promise.all(svc.members.map((m) => this.deps.dataPlane.setPool(m.svc.key, pool).catch((err: unknown) => {
        svc.sent = null;
        this.deps.log.error({ virtual_server: svc.key, service: m.svc.key, err: errorMessage(err) }, 'cannot update the data plane pool');
      }))).then(() => undefined);
    }
    await svc.sending;
    // Checked once the data plane has the pool of the first results (the first BGP announcement
    // waits for it: the tables of a director that joins are then complete).
    if (checkedNow && !svc.checked && !this.#stopped) {
      svc.checked = true;
      this.#wakeChecked();
      this.deps.onStateChange?.();
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
      service: serviceText(svc.cfg),
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
      throw new KeepaliveError('E_USAGE', `not a virtual server: ${JSON.stringify(vsText)} (ADDR:PORT for TCP, udp:ADDR:PORT, fwmark:N, group:NAME; IPv6 in brackets)`);
    }
    // A group member names its group: the real servers, their health and overrides are shared.
    const svc = this.#services.find((s) => s.key === key) ?? this.#services.find((s) => s.members.some((m) => m.svc.key === key));
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
      // Each member follows its own address: a group may span VIPs of several instances.
      for (const m of svc.members) {
        const address = ownedAddress(m.svc.match);
        const want = address === null || owns(address);
        if (want === m.wanted) continue;
        m.wanted = want;
        if (want) this.#serve(svc, m, 0);
        else void this.#unserve(svc, m);
      }
      svc.wanted = svc.members.some((m) => m.wanted);
      this.#syncChecks(svc);
    }
  }

  #serve(svc: Service, m: Member, attempt: number): void {
    clearTimeout(m.retry);
    if (!m.wanted || this.#stopped) return;
    const key = m.svc.key;
    this.deps.dataPlane.serve(key).then(
      () => {
        m.serving = true;
        this.deps.log.info({ virtual_server: svc.key, service: key, kind: svc.cfg.lb_kind }, `serving ${key}${key === svc.key ? '' : ` of ${svc.key}`} (${svc.cfg.lb_kind})`);
        this.deps.onStateChange?.();
        // Ownership may have gone while the worker was binding.
        if (!m.wanted) void this.#unserve(svc, m);
      },
      (err: unknown) => {
        // The VIP can lag the MASTER transition by a moment; keep trying while we still own it.
        const delay = Math.min(1000, 20 * 2 ** Math.min(attempt, 6));
        if (attempt % 10 === 0) this.deps.log.warn({ virtual_server: svc.key, service: key, err: errorMessage(err), attempt }, `cannot serve ${key} yet; retrying`);
        m.retry = setTimeout(() => this.#serve(svc, m, attempt + 1), delay);
      },
    );
  }

  async #unserve(svc: Service, m: Member, drainMs = svc.cfg.drain_timeout * 1000, stopping = false): Promise<void> {
    clearTimeout(m.retry);
    if (!m.serving) return;
    m.serving = false;
    this.deps.onStateChange?.();
    const key = m.svc.key;
    this.deps.log.info({ virtual_server: svc.key, service: key, drain_s: drainMs / 1000 }, `stopped serving ${key}; draining`);
    // Stopping with no drain: close() ends the service after the VIPs are gone. An unserve now
    // would cut it while the VIP is still local, and a late client packet would get a reset.
    if (stopping && drainMs <= 0) return;
    await this.deps.dataPlane.unserve(key, drainMs).catch((err: unknown) =>
      this.deps.log.warn({ virtual_server: svc.key, service: key, err: errorMessage(err) }, 'unserve failed'));
  }

  /**
   * Quorum and serving state per data-plane service, keyed like the announcement core
   * (src/announce/desired.ts): a group's members each under their own key, with the group's quorum
   * and whether the group's real servers all had their first check (see Service.checked).
   */
  announceFacts(): Map<ServiceKey, { quorum: boolean; serving: boolean; checked: boolean }> {
    return new Map(this.#services.flatMap((svc) => svc.members.map((m) => [m.svc.key, { quorum: svc.last?.quorumUp ?? false, serving: m.serving, checked: svc.checked }] as const)));
  }

  /** Fetches fresh counters from the data plane (status calls this; a background poll keeps metrics fresh). */
  async refresh(): Promise<void> {
    const atRest = await this.#refresh();
    // Something moves: the background poll, backed off while all was at rest, comes back to its period.
    if (!atRest && this.#poll !== undefined && this.#pollMs > COUNTER_POLL_MS) this.#armPoll(COUNTER_POLL_MS);
  }

  /** refresh(); true when every counter was at rest (RateEstimator.sample). */
  async #refresh(): Promise<boolean> {
    if (this.#stopped) return true;
    const stats = await this.deps.dataPlane.stats();
    this.#stats = stats;
    this.#statsIndex = new Map(stats.services.map((svc) => {
      const dests = new Map<string, DestStats>();
      for (const x of svc.dests) if (!x.sorry && !dests.has(x.key)) dests.set(x.key, x);
      return [svc.key, { svc, dests, sorry: svc.dests.find((x) => x.sorry) }];
    }));
    const now = this.#now();
    let atRest = true;
    const sample = (k: string, c: Counters) => { if (!this.#rates.sample(k, c, now)) atRest = false; };
    for (const svc of this.#services) {
      const sorryId = svc.cfg.sorry_endpoint ? `sorry:${endpointText(svc.cfg.sorry_endpoint)}` : null;
      // Per service in the data plane: a group member, or the virtual server's one service.
      for (const m of svc.members) {
        const key = m.svc.key;
        const indexed = this.#statsIndex.get(key);
        sample(key, this.#carry.observe(key, indexed?.svc));
        for (const r of svc.reals) sample(destKey(key, r.id), this.#carry.observe(destKey(key, r.id), indexed?.dests.get(r.id)));
        if (sorryId) sample(destKey(key, sorryId), this.#carry.observe(destKey(key, sorryId), indexed?.sorry));
      }
      if (!isGroup(svc)) continue;
      // A group's rates are those of its summed counters.
      const sum = (id: string | null) => sumCounters(svc.members.map((m) => this.#carry.get(id === null ? m.svc.key : destKey(m.svc.key, id))));
      sample(svc.key, sum(null));
      for (const r of svc.reals) sample(destKey(svc.key, r.id), sum(r.id));
      if (sorryId) sample(destKey(svc.key, sorryId), sum(sorryId));
    }
    return atRest;
  }

  /** Totals and connection counts of one destination of one service, for status. */
  #destCounters(key: string, x: DestStats | undefined): DestCounters {
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

  /** One service's own figures: the virtual server's, or one member's of a group. */
  #memberStatus(svc: Service, m: Member): MemberStatus & { scheduler_in_effect: string | undefined; relay: ServiceStats['relay'] } {
    const key = m.svc.key;
    const indexed = this.#statsIndex.get(key);
    const st: ServiceStats | undefined = indexed?.svc;
    const totals = this.#carry.get(key);
    const sorry = svc.cfg.sorry_endpoint;
    return {
      key,
      service: ipvsadmServiceText(m.svc.match),
      ...matchFields(m.svc.match),
      serving: st?.serving ?? false,
      conns: totals?.conns ?? st?.conns ?? 0,
      in_pkts: totals ? totals.in_pkts : st ? st.in_pkts : 0,
      out_pkts: totals ? totals.out_pkts : st ? st.out_pkts : 0,
      in_bytes: totals?.in_bytes ?? st?.in_bytes ?? 0,
      out_bytes: totals?.out_bytes ?? st?.out_bytes ?? 0,
      active_conns: st ? st.active_conns : 0,
      inact_conns: st ? st.inact_conns : 0,
      rates: this.#rates.rates(key),
      real_servers: svc.reals.map((r) => ({ address: r.cfg.endpoint.address, port: r.cfg.endpoint.port, ...this.#destCounters(destKey(key, r.id), indexed?.dests.get(r.id)) })),
      sorry_server: sorry ? { address: sorry.address, port: sorry.port, in_use: st?.sorry ?? false, ...this.#destCounters(destKey(key, `sorry:${endpointText(sorry)}`), indexed?.sorry) } : null,
      scheduler_in_effect: st?.scheduler_in_effect,
      relay: st?.relay,
    };
  }

  status(): VirtualServerStatus[] {
    return this.#services.map((svc) => {
      const cfg = svc.cfg;
      const now = this.#now();
      const group = isGroup(svc);
      const parts = svc.members.map((m) => this.#memberStatus(svc, m));
      // A plain virtual server's figures are its service's; a group's are the sums over its members.
      const own = group ? null : parts[0]!;
      const sumOf = <T extends DestCounters>(list: T[], key: string): DestCounters => ({
        ...sumCounters(list),
        active_conns: sumNullable(list.map((x) => x.active_conns)),
        inact_conns: sumNullable(list.map((x) => x.inact_conns)),
        rates: this.#rates.rates(key),
      });
      const reals: RealServerReport[] = svc.reals.map((r, i) => {
        const dest = svc.last?.destinations.find((d) => d.kind === 'real' && d.id === r.id);
        const o = r.override;
        const ramp = dest?.ramp;
        const counters = own ? own.real_servers[i]! : sumOf(parts.map((p) => p.real_servers[i]!), destKey(svc.key, r.id));
        return {
          address: r.cfg.endpoint.address,
          port: r.cfg.endpoint.port,
          weight: dest?.weight ?? 0,
          configured_weight: r.cfg.weight,
          effective_weight: dest?.targetWeight ?? 0,
          override: o ? { action: o.value.action, ...(o.value.action === 'weight' ? { weight: o.value.weight } : {}), since: iso(o.at) } : null,
          slow_start: ramp ? { since: iso(ramp.since), until: iso(ramp.until), progress: Math.min(1, Math.max(0, (now - ramp.since) / (ramp.until - ramp.since))) } : null,
          up: r.health === 'up',
          ...withoutAddress(counters),
          health: r.health,
          ...(r.lastChange ? { last_change: iso(r.lastChange.at), reason: r.lastChange.reason } : {}),
        };
      });
      const sorryEp = cfg.sorry_endpoint;
      const sorry: SorryServerStatus | null = sorryEp
        ? own
          ? own.sorry_server
          : {
              address: sorryEp.address,
              port: sorryEp.port,
              in_use: parts.some((p) => p.sorry_server?.in_use === true),
              ...withoutAddress(sumOf(parts.map((p) => p.sorry_server!), destKey(svc.key, `sorry:${endpointText(sorryEp)}`))),
            }
        : null;
      const totals = own ?? sumOf(parts, svc.key);
      const first = svc.members[0]?.svc.match;
      return {
        key: svc.key,
        service: own ? own.service : serviceText(cfg),
        protocol: cfg.protocol,
        ...(own ? matchFields(first!) : { group: cfg.group! }),
        family: cfg.family,
        kind: cfg.lb_kind,
        forward: FORWARD_NAMES[cfg.lb_kind],
        lb_algo: cfg.lb_algo,
        scheduler_in_effect: parts.find((p) => p.scheduler_in_effect !== undefined)?.scheduler_in_effect ?? cfg.lb_algo,
        ...withRelay(parts.find((p) => p.relay !== undefined)?.relay),
        sched_flags: [...cfg.sched_flags],
        persistence_timeout: cfg.persistence_timeout,
        persistence_granularity: granularityText(cfg.family, cfg.persistence_prefix),
        ops: cfg.ops,
        slow_start: cfg.slow_start,
        serving: parts.some((p) => p.serving),
        sorry: svc.last?.sorryActive ?? false,
        quorum_up: svc.last?.quorumUp ?? false,
        conns: totals.conns,
        in_pkts: totals.in_pkts,
        out_pkts: totals.out_pkts,
        in_bytes: totals.in_bytes,
        out_bytes: totals.out_bytes,
        active_conns: totals.active_conns,
        inact_conns: totals.inact_conns,
        rates: totals.rates ?? this.#rates.rates(svc.key),
        real_servers: reals,
        sorry_server: sorry,
        ...(group ? { members: parts.map(({ scheduler_in_effect: _, ...p }) => p) } : {}),
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
    await Promise.all(this.#services.flatMap((s) => s.members.map((m) => this.deps.dataPlane.unserve(m.svc.key, 0).catch(() => undefined))));
  }

  /**
   * Stops accepting everywhere, drains, stops checks, closes the data plane. Idempotent.
   * `beforeClose` runs after the drain and before the data plane closes: the daemon drops the VIPs
   * there, so a packet that still reaches this director once its forwarding is gone finds no local
   * VIP (routed or dropped, and retransmitted to the new master) instead of a reset from the local
   * TCP stack.
   */
  async stop(beforeClose?: () => Promise<void>): Promise<void> {
    if (this.#stopped) return;
    this.#pollOff = true;
    clearTimeout(this.#poll);
    this.#poll = undefined;
    for (const svc of this.#services) {
      svc.wanted = false;
      for (const m of svc.members) { m.wanted = false; clearTimeout(m.retry); }
      clearTimeout(svc.ramp);
    }
    await Promise.all(this.#services.flatMap((s) => s.members.map((m) => this.#unserve(s, m, undefined, true))));
    this.#stopped = true;
    this.#wakeChecked();
    for (const svc of this.#services) {
      for (const r of svc.reals) r.runner.stop();
      if (svc.pool) this.#events(svc, stopPool(poolParams(svc.cfg), svc.reals.map((r) => ({ id: r.id, address: r.cfg.address, port: r.cfg.port, weight: r.cfg.weight, health: r.health })), svc.pool));
    }
    await beforeClose?.().catch(() => undefined);
    await this.deps.dataPlane.close();
  }
}

/** The proxy's byte path for status (absent for the kernel kinds and UDP). */
function withRelay(relay: ServiceStats['relay']): { relay?: 'native' | 'node' } {
  return relay === undefined ? {} : { relay };
}
