/**
 * Builds and runs the VRRP instances of a config: one VrrpInstance per [[vrrp_instance]], sharing
 * sockets through the hub, with VIPs (VipManager), announcements (Announcer), interface and script
 * tracking, sync groups and notify scripts. Everything that touches the system comes in as deps.
 */
import type { Logger } from 'pino';
import type { Config, ReloadPlan, VrrpInstanceConfig, VrrpScriptConfig, VrrpTrackProcessConfig } from '../config/index.js';
import type { RouteSetEntries } from '../net/route-set.js';
import type { VmacManager } from '../net/vmac.js';
import { ProcessMonitor } from './process-monitor.js';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { ScriptRunner, policyOf } from '../util/script.js';
import type { Announcer } from '../net/announcer.js';
import type { LinkEvent, LinkInfo, Rtnl, RtnlWatcher } from '../net/rtnl.js';
import type { VipManager } from '../net/vips.js';
import type { VrrpInstanceStatus } from '../daemon/status.js';
import { VrrpHub, type HubMember, type TransportFactory } from './hub.js';
import { VrrpInstance, type Clock, type TakeoverRecord } from './instance.js';
import { preciseClock } from './precise-clock.js';
import { advertSender, nativeExecutor } from './native-sender.js';
import type { TakeoverExtras } from '../net/native.js';
import { AUTH_NONE, AUTH_PASS, passwordAuthData, type AdvertExpectation } from './packet.js';
import type { VrrpParams, VrrpStateName } from './state.js';
import type { Advert } from './types.js';
import { groupState, reconcileSyncGroup, syncMember } from './sync-group.js';
import { computeTracking, initialScriptState, scriptStatus, scriptStep, trackingEvents, type ScriptState, type TrackedObject, type TrackingResult } from './tracking.js';

export interface VrrpDeps {
  rtnl: Pick<Rtnl, 'getLink' | 'primaryAddress' | 'watch'>;
  transports: TransportFactory;
  vipManager(ifindex: number, vips: string[], onRestored: (vip: string) => void): VipManager;
  /** `global` is the [global] of the config the instance belongs to (it changes on reload). */
  announcer(link: LinkInfo, vips: string[], cfg: VrrpInstanceConfig, global: Config['global']): Announcer;
  log: Logger;
  clock?: Clock;
  /** Runs notify scripts and vrrp_scripts (user resolution and script security); shared with the LVS side. */
  scripts?: ScriptRunner;
  /** An instance's VIPs are now in place (MASTER) or about to go (leaving MASTER). */
  onOwnership?: (instance: string, owned: boolean) => void;
  /**
   * Runs on becoming MASTER, before the instance's VIPs are put on the interface (the state
   * machine and its adverts go on meanwhile; only the VIP add waits). The daemon has the data
   * plane claim the instance's addresses there (a cut window left by a recent drain ends, so its
   * own stack resets no session before the serve lands) and commits the peer's conntrack entries,
   * so the first packet that reaches the VIP finds them. It must bound its own wait.
   */
  beforeVips?: (instance: string) => Promise<void>;
  /**
   * Whether the advert sender thread may put the VIPs of this instance up (and send its first
   * gratuitous ARPs) right after its takeover advert, before the loop runs beforeVips: true only
   * when beforeVips has nothing to do first for it (no data-plane claim that would wait, no
   * conntrackd commit). Asked at every hand-over of a takeover plan. Absent: never.
   */
  nativeTakeover?: (instance: string) => boolean;
  /**
   * Enforces accept = false (src/net/accept-filter.ts): the VIPs of a non-owner MASTER with
   * accept = false go into its drop sets before they are put on the interface, and out after.
   */
  acceptFilter?: { add(instance: string, addresses: readonly string[]): Promise<void>; remove(instance: string): Promise<void> };
  /** use_vmac: creates / removes the macvlans. Required when an instance has use_vmac. */
  vmac?: Pick<VmacManager, 'ensure' | 'remove' | 'sweepStale'>;
  /** virtual_routes / virtual_rules of one instance (a RouteSet). Required when an instance has any. */
  routeSet?: (owner: string, entries: RouteSetEntries) => InstanceRoutes;
  /** Follows the vrrp_track_process entries; default: a ProcessMonitor over /proc. */
  processMonitor?: (configs: VrrpTrackProcessConfig[], onChange: (name: string, ok: boolean) => void) => ProcessTracker;
  /** A state change of an instance or sync group whose smtp_alert is on (the daemon mails it). */
  alert?: (a: { kind: 'INSTANCE' | 'GROUP'; name: string; state: VrrpStateName }) => void;
}

/** What the manager needs of a RouteSet. */
export interface InstanceRoutes {
  install(): Promise<void>;
  remove(): Promise<void>;
  update(next: RouteSetEntries): Promise<void>;
}

/** What the manager needs of a ProcessMonitor. */
export interface ProcessTracker {
  start(): Promise<void>;
  update(configs: readonly VrrpTrackProcessConfig[]): Promise<void>;
  status(name: string): boolean | null;
  stop(): void;
}

/** accept = false is enforced for a non-owner (the address owner, priority 255, always accepts). */
export const blocksVips = (cfg: Pick<VrrpInstanceConfig, 'accept' | 'priority'>): boolean => !cfg.accept && cfg.priority !== 255;

interface Runtime {
  cfg: VrrpInstanceConfig;
  /** Where the VIPs live and GARPs leave: the interface, or its VMAC. */
  link: LinkInfo;
  /** The configured interface (tracked for link state). */
  base: LinkInfo;
  /** virtual_routes / virtual_rules, in while MASTER. */
  routes: InstanceRoutes | undefined;
  src: string;
  instance: VrrpInstance;
  member: HubMember;
  vips: VipManager;
  announcer: Announcer;
  tracked: TrackedObject[];
  tracking: TrackingResult | null;
  restored: number;
  lastReannounce?: number;
  /** The takeover in progress (between its VIP add and its first GARPs). */
  timeline?: TakeoverTimeline | undefined;
  /** Gratuitous ARPs the sender thread sent at the takeover in progress (announce counts and skips them), and when (clock time). */
  nativeGarps: number;
  nativeGarpsAt?: number | undefined;
  /** The thread's takeover work, built once per VIP list and announcer (a plan is handed over per advert heard). */
  extras?: { announcer: Announcer; nl: Buffer | undefined; value: TakeoverExtras | undefined };
}

/** Marks of one takeover, in ms after its advert left (the executor's send time). */
interface TakeoverTimeline {
  mark(name: string): void;
  fields(): Record<string, number>;
}

interface ScriptRuntime {
  cfg: VrrpScriptConfig;
  state: ScriptState;
  ok: boolean | null;
  timer: NodeJS.Timeout | undefined;
  running: boolean;
  /** Refused by script security (see #startScript). */
  disabled: boolean;
}

const cidrs = (list: VrrpInstanceConfig['virtual_ipaddress_parsed']) => list.map((v) => `${v.address}/${v.prefix}`);
/** Every address the instance owns while MASTER (advertised and excluded VIPs). */
const ownedCidrs = (cfg: VrrpInstanceConfig) => [...cidrs(cfg.virtual_ipaddress_parsed), ...cidrs(cfg.virtual_ipaddress_excluded_parsed)];
const advertAddrs = (cfg: VrrpInstanceConfig) => cfg.virtual_ipaddress_parsed.map((v) => v.address);
const routeEntries = (cfg: VrrpInstanceConfig): RouteSetEntries => ({ routes: cfg.virtual_routes_parsed, rules: cfg.virtual_rules_parsed });
const hasRoutes = (cfg: VrrpInstanceConfig): boolean => cfg.virtual_routes_parsed.length + cfg.virtual_rules_parsed.length > 0;

export function vrrpParams(cfg: VrrpInstanceConfig, src: string): VrrpParams {
  return {
    vrid: cfg.virtual_router_id,
    version: cfg.version,
    priority: cfg.priority,
    advertIntCs: cfg.advert_int_cs,
    preempt: !cfg.nopreempt,
    preemptDelayMs: cfg.preempt_delay * 1000,
    primaryAddress: src,
    initialState: cfg.state,
    lowerPrioNoAdvert: cfg.lower_prio_no_advert,
    higherPrioSendAdvert: cfg.higher_prio_send_advert,
    accept: cfg.accept,
  };
}

/** The advert an instance sends at `priority`. */
function advertOf(c: VrrpInstanceConfig, priority: number): Advert {
  const password = c.authentication?.password;
  return {
    version: c.version, vrid: c.virtual_router_id, priority, advertIntCs: c.advert_int_cs, addresses: advertAddrs(c),
    ...(c.version === 2 ? { authType: password === undefined ? AUTH_NONE : AUTH_PASS, authData: password === undefined ? Buffer.alloc(8) : passwordAuthData(password) } : {}),
  };
}

export function expectation(cfg: VrrpInstanceConfig, src: string): AdvertExpectation {
  const password = cfg.authentication?.password;
  return {
    version: cfg.version,
    vrid: cfg.virtual_router_id,
    advertIntCs: cfg.advert_int_cs,
    addresses: advertAddrs(cfg),
    authType: password === undefined ? AUTH_NONE : AUTH_PASS,
    password,
    skipCheckAdvAddr: cfg.skip_check_adv_addr,
    ownAddresses: [src],
    ...(cfg.unicast_peer.length > 0 && cfg.check_unicast_src
      ? { unicastPeers: cfg.unicast_peer_ttl.map((p) => ({ address: p.address, minTtl: p.min_ttl, maxTtl: p.max_ttl })) }
      : {}),
  };
}

export class VrrpManager {
  readonly #hub: VrrpHub;
  readonly #runtimes = new Map<string, Runtime>();
  readonly #scripts = new Map<string, ScriptRuntime>();
  #processes: ProcessTracker | undefined;
  readonly #clock: Clock;
  readonly #scripts_: ScriptRunner;
  #watcher: RtnlWatcher | undefined;
  #stopped = false;
  /** The start-up hold (state.ts): no takeover from a live master until release(). */
  #held = false;

  private constructor(private config: Config, private readonly deps: VrrpDeps) {
    this.#clock = deps.clock ?? preciseClock();
    this.#scripts_ = deps.scripts ?? new ScriptRunner({
      policy: () => policyOf(this.config.global),
      onRefused: (command, reason) => deps.log.error({ command, reason }, 'script refused'),
      onWarning: (command, warning) => deps.log.warn({ command, warning }, 'insecure script'),
    });
    this.#hub = new VrrpHub(deps.transports, (err, where) => deps.log.warn({ err: errorMessage(err), socket: where }, 'VRRP socket error'));
  }

  /**
   * The advert sender thread's executor for one instance (native-sender.ts), unless the daemon
   * injected its own clock (tests) or the addon is missing: then the clock alone times the adverts.
   */
  #executor(frames: Parameters<typeof nativeExecutor>[2], extras: Parameters<typeof nativeExecutor>[3]) {
    if (this.deps.clock) return undefined;
    const sender = advertSender();
    if (sender) this.#schedule(sender);
    return sender ? nativeExecutor(sender, this.#clock, frames, extras) : undefined;
  }

  /**
   * What the sender thread does right after this instance's takeover advert: add its VIPs and send
   * the first burst of gratuitous ARPs (IPv4 instances; NAs, the VIPs' routes, pacing by
   * vrrp_garp_interval and later bursts stay with the announcer). Not when accept = false (its drop
   * filter goes first) or when the daemon has something to do before the VIPs (nativeTakeover).
   */
  #takeoverExtras(rt: Runtime): TakeoverExtras | undefined {
    if (rt.cfg.family !== 4 || blocksVips(rt.cfg) || this.deps.nativeTakeover?.(rt.cfg.name) !== true) return undefined;
    const nl = rt.vips.addRequests();
    if (rt.extras?.announcer !== rt.announcer || rt.extras.nl !== nl?.nl) {
      rt.extras = { announcer: rt.announcer, nl: nl?.nl, value: nl && { nl: nl.nl, nlCount: nl.count, garpIfindex: rt.link.index, garps: rt.announcer.firstGarps() } };
    }
    return rt.extras.value;
  }

  /** A timeline for the takeover the executor just ran, if it sent the advert (else none). */
  #timeline(t: TakeoverRecord | undefined): TakeoverTimeline | undefined {
    if (t?.advertAt === undefined) return undefined;
    const at = t.advertAt;
    const out: Record<string, number> = { js_woke: +(t.wokeAt - at).toFixed(2) };
    if (t.done?.vipsAt !== undefined) Object.assign(out, { thread_vips_added: +(t.done.vipsAt - at).toFixed(2), thread_garps: t.done.garps });
    return {
      mark: (name) => { out[name] = +(this.#clock.now() - at).toFixed(2); },
      fields: () => out,
    };
  }

  /** The global.vrrp_rt_priority / vrrp_rlimit_rttime the sender thread runs with now. */
  #applied: { priority: number; rlimit: number } | undefined;

  /**
   * Sets the sender thread's scheduling (global.vrrp_rt_priority, vrrp_rlimit_rttime) when it
   * differs from what was applied: at the first executor and after a reload. Refused (EPERM
   * without CAP_SYS_NICE): a warning, the thread keeps running as it was.
   */
  #schedule(sender: NonNullable<ReturnType<typeof advertSender>>): void {
    const { vrrp_rt_priority: priority, vrrp_rlimit_rttime: rlimit } = this.config.global;
    if (this.#applied && this.#applied.priority === priority && this.#applied.rlimit === rlimit) return;
    this.#applied = { priority, rlimit };
    const err = sender.setRealtime(priority, rlimit);
    if (err) {
      this.deps.log.warn({ vrrp_rt_priority: priority, error: err },
        `global.vrrp_rt_priority ${priority}: cannot set the VRRP sender thread to SCHED_RR (${err}${err === 'EPERM' ? ': needs CAP_SYS_NICE or RLIMIT_RTPRIO' : ''}); adverts stay SCHED_OTHER and may leave late on a busy CPU (vrrp_rt_priority = 0 silences this)`);
      return;
    }
    if (priority > 0) watchRtLimit(this.deps.log, rlimit);
    this.deps.log.info({ vrrp_rt_priority: priority, vrrp_rlimit_rttime: rlimit },
      priority > 0 ? `VRRP sender thread: SCHED_RR priority ${priority}${rlimit > 0 ? `, RLIMIT_RTTIME ${rlimit} µs` : ''}` : 'VRRP sender thread: SCHED_OTHER');
  }

  /** Resolves interfaces and source addresses; opens sockets. Nothing is sent before start(). */
  static async create(config: Config, deps: VrrpDeps): Promise<VrrpManager> {
    const m = new VrrpManager(config, deps);
    try {
      // VMACs a previous run left behind (killed before it could remove them); configured names are
      // kept for ensure(), which reuses a correct one and recreates a wrong one.
      const vmacNames = new Set(config.vrrp_instance.map((vi) => vi.vmac_ifname).filter((n): n is string => n !== null));
      if (vmacNames.size > 0) await deps.vmac?.sweepStale(vmacNames, vmacNames);
      for (const cfg of config.vrrp_instance) await m.#build(cfg);
    } catch (err) {
      m.#hub.close();
      // VMACs made for the instances built so far go too (remove ignores names it did not make).
      for (const vi of config.vrrp_instance) if (vi.vmac_ifname !== null) await deps.vmac?.remove(vi.vmac_ifname).catch(() => undefined);
      throw err;
    }
    return m;
  }

  async #build(cfg: VrrpInstanceConfig): Promise<Runtime> {
    const { deps } = this;
    const base = await deps.rtnl.getLink(cfg.interface).catch((err: unknown) => {
      throw new KeepaliveError('E_NETLINK', `vrrp_instance ${cfg.name}: interface ${cfg.interface}: ${errorMessage(err)}`, { cause: err });
    });
    const family = cfg.family;
    // Adverts come from the interface's own address, also with use_vmac (keepalived and FRR do so).
    const src = cfg.unicast_src_ip ?? cfg.mcast_src_ip ?? (await deps.rtnl.primaryAddress(base.index, family, advertAddrs(cfg)));
    if (!src) throw new KeepaliveError('E_NETLINK', `vrrp_instance ${cfg.name}: interface ${cfg.interface} has no IPv${family} address to send adverts from`);
    let link = base;
    let sockLink = base;
    if (cfg.vmac_ifname !== null) {
      if (!deps.vmac) throw new KeepaliveError('E_NETLINK', `vrrp_instance ${cfg.name}: use_vmac needs the VMAC manager`);
      link = await deps.vmac.ensure({ name: cfg.vmac_ifname, base, vrid: cfg.virtual_router_id, family, xmitBase: cfg.vmac_xmit_base, linkLocal: family === 6 ? src : null });
      sockLink = cfg.vmac_xmit_base ? base : link;
    }
    if (hasRoutes(cfg) && !deps.routeSet) throw new KeepaliveError('E_NETLINK', `vrrp_instance ${cfg.name}: virtual_routes / virtual_rules need the route manager`);
    const group = family === 4 ? this.config.global.vrrp_mcast_group4 : this.config.global.vrrp_mcast_group6;
    const rt: Partial<Runtime> & { cfg: VrrpInstanceConfig } = {
      cfg, link, base, src, tracking: null, restored: 0, nativeGarps: 0,
      routes: deps.routeSet?.(`vrrp_instance ${cfg.name}`, routeEntries(cfg)),
    };
    // Effects read rt.cfg at call time, so a reload that keeps the instance changes what they do.
    // The child logger is made once per name (not per line: it is on the takeover path).
    let logName: string | undefined;
    let logChild: Logger | undefined;
    const log = (): Logger => {
      if (logName !== rt.cfg.name) { logName = rt.cfg.name; logChild = deps.log.child({ instance: logName }); }
      return logChild!;
    };
    rt.vips = deps.vipManager(link.index, ownedCidrs(cfg), (vip) => {
      rt.restored!++;
      log().warn({ vip }, 'VIP was removed by someone else while MASTER; restored it');
    });
    rt.announcer = deps.announcer(link, ownedCidrs(cfg), cfg, this.config.global);
    const instance = new VrrpInstance(
      cfg.name,
      vrrpParams(cfg, src),
      expectation(cfg, src),
      {
        sendAdvert: (priority) => this.#hub.send(rt.member!, advertOf(rt.cfg, priority)),
        // keepalived's order: addresses, then routes and rules (a route may use a VIP as src).
        // accept = false: the drop filter is in place before the VIPs are, and lifted after.
        addVips: async () => {
          const taken = rt.instance!.takeTakeover();
          const done = taken?.done;
          // The thread added the VIPs (and sent the first GARPs): what follows reconciles (EEXIST is fine).
          rt.nativeGarps = done?.vipsAt !== undefined ? done.garps : 0;
          rt.nativeGarpsAt = done?.vipsAt;
          if (done && done.vipsErrno !== 0) log().warn({ errno: done.vipsErrno }, `VRRP ${rt.cfg.name}: the sender thread could not add the VIPs; adding them here`);
          const tl = this.#timeline(taken);
          tl?.mark('add_vips_called');
          await deps.beforeVips?.(rt.cfg.name).catch((err: unknown) => log().warn({ err: errorMessage(err) }, `VRRP ${rt.cfg.name}: before adding the VIPs`));
          tl?.mark('before_vips');
          if (blocksVips(rt.cfg)) await this.#filterAdd(rt.cfg);
          await rt.vips!.acquire();
          tl?.mark('vips_added');
          log().debug({}, `VRRP ${rt.cfg.name}: VIPs added`);
          await rt.routes?.install();
          rt.timeline = tl;
        },
        removeVips: async () => {
          deps.onOwnership?.(rt.cfg.name, false);
          await rt.routes?.remove();
          await rt.vips!.release();
          await this.#filterRemove(rt.cfg.name);
        },
        announce: () => {
          const at = rt.nativeGarpsAt;
          rt.announcer!.start({ garpsSent: rt.nativeGarps, ...(at !== undefined ? { sinceMs: this.#clock.now() - at } : {}) });
          rt.nativeGarps = 0;
          rt.nativeGarpsAt = undefined;
          const tl = rt.timeline;
          rt.timeline = undefined;
          tl?.mark('garp_sent');
          deps.onOwnership?.(rt.cfg.name, true);
          // After the fact, off the takeover path: where the time between the advert and the GARPs went.
          if (tl) setImmediate(() => log().info(tl.fields(), `VRRP ${rt.cfg.name}: takeover timeline (ms after the takeover advert)`));
        },
        stopAnnounce: () => rt.announcer!.stop(),
        reannounce: () => {
          // keepalived rate-limits these bursts with garp_lower_prio_delay (default garp_master_delay).
          const now = this.#clock.now();
          const gap = Math.max(1, rt.cfg.garp_master_delay) * 1000;
          if (rt.lastReannounce !== undefined && now - rt.lastReannounce < gap) return;
          rt.lastReannounce = now;
          rt.announcer!.burst(rt.cfg.garp_master_repeat);
          log().info({}, `VRRP ${rt.cfg.name}: lower-priority master heard; re-announcing the VIPs`);
        },
        notify: (state, priority) => this.#notify(rt.cfg, 'INSTANCE', rt.cfg.name, state, priority),
        // Logged right after the step, not inside it: a takeover's first advert must not wait for the line.
        onTransition: (from, to, reason) => queueMicrotask(() => log().info({ from, to, reason }, `VRRP ${rt.cfg.name} ${from} -> ${to}`)),
        onError: (err, what) => log().error({ err: errorMessage(err) }, `VRRP ${rt.cfg.name}: ${what} failed`),
      },
      this.#clock,
      this.#executor((priority) => this.#hub.frames(rt.member!, advertOf(rt.cfg, priority)), () => this.#takeoverExtras(rt as Runtime)),
    );
    rt.instance = instance;
    instance.observe((before, after) => this.#reconcileGroups(rt as Runtime, before.name, after.name));
    rt.member = {
      instance, vrid: cfg.virtual_router_id, family, ifname: sockLink.name, ifindex: sockLink.index, src,
      destinations: cfg.unicast_peer.length > 0 ? cfg.unicast_peer : [group], v3ChecksumAsV2: cfg.v3_checksum_as_v2, unicast: cfg.unicast_peer.length > 0,
    };
    rt.tracked = await this.#trackedObjects(cfg, base);
    this.#hub.add(rt.member, cfg.unicast_peer.length > 0 ? [] : [group]);
    this.#runtimes.set(cfg.name, rt as Runtime);
    // A BACKUP sends its first advert at takeover: have that code compiled (and the advert encoded)
    // beforehand, not on the clock of the failover.
    instance.warmUp();
    this.#hub.prepare(rt.member, advertOf(cfg, cfg.priority));
    return rt as Runtime;
  }

  /** accept = false: drop traffic to the VIPs. A failure is logged; the VIPs still go up (HA first). */
  async #filterAdd(cfg: VrrpInstanceConfig): Promise<void> {
    const f = this.deps.acceptFilter;
    const addresses = [...cfg.virtual_ipaddress_parsed, ...cfg.virtual_ipaddress_excluded_parsed].map((v) => v.address);
    if (!f) {
      this.deps.log.error({ instance: cfg.name }, `vrrp_instance ${cfg.name}: accept = false is not enforced (no nftables filter)`);
      return;
    }
    await f.add(cfg.name, addresses).catch((err: unknown) =>
      this.deps.log.error({ instance: cfg.name, err: errorMessage(err) }, `vrrp_instance ${cfg.name}: accept = false is not enforced`));
  }

  async #filterRemove(name: string): Promise<void> {
    await this.deps.acceptFilter?.remove(name).catch((err: unknown) =>
      this.deps.log.error({ instance: name, err: errorMessage(err) }, `vrrp_instance ${name}: cannot lift the accept = false filter`));
  }

  /** keepalived tracks the instance's own interface unless dont_track_primary: link down -> FAULT. */
  async #trackedObjects(cfg: VrrpInstanceConfig, link: LinkInfo, previous: readonly TrackedObject[] = []): Promise<TrackedObject[]> {
    const known = (name: string) => previous.find((o) => o.name === name)?.ok;
    const tracked: TrackedObject[] = [];
    if (!cfg.dont_track_primary) tracked.push({ name: `interface:${cfg.interface}`, weight: 0, ok: known(`interface:${cfg.interface}`) ?? link.up });
    for (const t of cfg.track_interface) {
      const prev = known(`interface:${t.name}`);
      const up = prev ?? (await this.deps.rtnl.getLink(t.name).then((l) => l.up, () => false));
      tracked.push({ name: `interface:${t.name}`, weight: t.weight, ok: up });
    }
    // The instance's own track_script, then those of its sync groups (keepalived: a sync group's
    // tracking updates every member). Several entries may name one script; all follow it.
    const groupTracks = this.config.vrrp_sync_group.filter((g) => g.group.includes(cfg.name)).flatMap((g) => g.track_script);
    const seen = new Map<string, number>();
    for (const t of [...cfg.track_script, ...groupTracks]) {
      const sr = this.#scripts.get(t.name);
      const base = `script:${t.name}`;
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      const prev = previous.filter((o) => o.name === base)[n]?.ok;
      tracked.push({ name: base, weight: t.weight, ok: prev ?? sr?.ok ?? null, ...(sr?.disabled ? { disabled: true } : {}) });
    }
    for (const t of cfg.track_process) {
      const reverse = this.config.vrrp_track_process.find((p) => p.name === t.name)?.reverse ?? false;
      tracked.push({ name: `process:${t.name}`, weight: t.weight, reverse, ok: this.#processes?.status(t.name) ?? known(`process:${t.name}`) ?? null });
    }
    return tracked;
  }

  #retrack(rt: Runtime): void {
    const next = computeTracking(rt.cfg.priority, rt.tracked);
    const events = trackingEvents(rt.tracking, next);
    rt.tracking = next;
    for (const ev of events) rt.instance.dispatch(ev);
  }

  #notify(cfg: { notify_master?: string; notify_backup?: string; notify_fault?: string; notify_stop?: string; notify?: string; smtp_alert?: boolean },
    type: 'INSTANCE' | 'GROUP', name: string, state: VrrpStateName, priority: number): void {
    if (cfg.smtp_alert) this.deps.alert?.({ kind: type, name, state });
    const specific = { MASTER: cfg.notify_master, BACKUP: cfg.notify_backup, FAULT: cfg.notify_fault, STOP: cfg.notify_stop, INIT: undefined }[state];
    const runs: [string, string[]][] = [];
    if (specific) runs.push([specific, []]);
    if (cfg.notify) runs.push([cfg.notify, [type, name, state, String(priority)]]);
    for (const [cmd, args] of runs) {
      void this.#scripts_.run(cmd, args, 30_000, undefined).then((r) => {
        if (r.refused !== undefined) return; // reported by the runner
        if (r.error || r.code !== 0) this.deps.log.warn({ cmd, args, code: r.code, signal: r.signal, error: r.error }, 'notify script failed');
      });
    }
  }

  readonly #groupStates = new Map<string, string>();

  /** Sync groups are looked up in the current config on every step, so reloads need no rewiring. */
  #reconcileGroups(rt: Runtime, from: VrrpStateName, to: VrrpStateName): void {
    for (const g of this.config.vrrp_sync_group.filter((x) => x.group.includes(rt.cfg.name))) {
      const members = g.group.map((n) => this.#runtimes.get(n)).filter((r): r is Runtime => r !== undefined);
      const snapshot = members.map((r) => syncMember(r.cfg.name, r.instance.state));
      const injections = reconcileSyncGroup(g.name, snapshot, from === to ? undefined : { id: rt.cfg.name, from, to });
      for (const inj of injections) this.#runtimes.get(inj.id)?.instance.dispatch(inj.event);
      const gs = groupState(members.map((r) => syncMember(r.cfg.name, r.instance.state)));
      if (gs && gs !== this.#groupStates.get(g.name)) {
        this.#groupStates.set(g.name, gs);
        this.#notify(g, 'GROUP', g.name, gs, 0);
      }
    }
  }

  #onLink(ev: LinkEvent): void {
    for (const rt of this.#runtimes.values()) {
      const obj = rt.tracked.find((o) => o.name === `interface:${ev.name}`);
      if (!obj) continue;
      const up = ev.up && !ev.removed;
      if (obj.ok === up) continue;
      obj.ok = up;
      this.deps.log.info({ interface: ev.name, up }, `tracked interface ${ev.name} is ${up ? 'up' : 'down'}`);
      this.#retrack(rt);
    }
  }

  /** vrrp_scripts tracked by a running instance or by a sync group that has one. */
  #usedScripts(): Set<string> {
    const names = new Set([...this.#runtimes.keys()]);
    return new Set([
      ...[...this.#runtimes.values()].flatMap((r) => r.cfg.track_script.map((t) => t.name)),
      ...this.config.vrrp_sync_group.filter((g) => g.group.some((n) => names.has(n))).flatMap((g) => g.track_script.map((t) => t.name)),
    ]);
  }

  /** vrrp_track_process entries some instance tracks. */
  #usedProcesses(): VrrpTrackProcessConfig[] {
    const used = new Set([...this.#runtimes.values()].flatMap((r) => r.cfg.track_process.map((t) => t.name)));
    return this.config.vrrp_track_process.filter((p) => used.has(p.name));
  }

  #onProcess(name: string, ok: boolean): void {
    for (const rt of this.#runtimes.values()) {
      const obj = rt.tracked.find((o) => o.name === `process:${name}`);
      if (!obj || obj.ok === ok) continue;
      obj.ok = ok;
      this.#retrack(rt);
    }
  }

  async #startProcesses(): Promise<void> {
    const used = this.#usedProcesses();
    if (used.length === 0 && !this.#processes) return;
    if (!this.#processes) {
      const onChange = (name: string, ok: boolean) => this.#onProcess(name, ok);
      this.#processes = this.deps.processMonitor?.(used, onChange) ?? new ProcessMonitor(used, { log: this.deps.log.child({ component: 'track_process' }), onChange });
      await this.#processes.start();
    } else await this.#processes.update(used);
    // The first scan's results reach instances built before it.
    for (const rt of this.#runtimes.values()) {
      let changed = false;
      for (const obj of rt.tracked) {
        if (!obj.name.startsWith('process:')) continue;
        const ok = this.#processes.status(obj.name.slice('process:'.length));
        if (ok !== obj.ok) { obj.ok = ok; changed = true; }
      }
      if (changed && rt.tracking !== null) this.#retrack(rt);
    }
  }

  #startScripts(): void {
    const used = this.#usedScripts();
    for (const cfg of this.config.vrrp_script.filter((x) => used.has(x.name))) this.#startScript(cfg);
  }

  #startScript(cfg: VrrpScriptConfig): void {
    const scfg = { rise: cfg.rise, fall: cfg.fall, initFail: cfg.init_fail };
    const initial = initialScriptState(scfg);
    // init_fail: the script counts as failed from the start (keepalived), not as "no result yet".
    const sr: ScriptRuntime = { cfg, state: initial, ok: scriptStatus(scfg, initial), timer: undefined, running: false, disabled: false };
    this.#scripts.set(cfg.name, sr);
    if (sr.ok !== null) {
      for (const rt of this.#runtimes.values()) {
        const objs = rt.tracked.filter((o) => o.name === `script:${cfg.name}` && o.ok === null);
        for (const obj of objs) obj.ok = sr.ok;
        if (objs.length > 0) this.#retrack(rt);
      }
    }
    const tick = () => {
      if (this.#stopped || sr.running || this.#scripts.get(cfg.name) !== sr) return;
      sr.running = true;
      void this.#scripts_.run(cfg.script, [], cfg.timeout * 1000, cfg.user).then((r) => {
        sr.running = false;
        if (this.#stopped || this.#scripts.get(cfg.name) !== sr) return;
        // A refused script is disabled, as keepalived removes an insecure track script from its
        // instances: it neither succeeds nor fails, and a weight-0 one does not hold FAULT.
        const disabled = r.refused !== undefined;
        if (disabled !== sr.disabled) {
          sr.disabled = disabled;
          for (const rt of this.#runtimes.values()) {
            const objs = rt.tracked.filter((o) => o.name === `script:${cfg.name}`);
            for (const obj of objs) obj.disabled = disabled;
            if (objs.length > 0) this.#retrack(rt);
          }
        }
        if (disabled) return;
        const res = scriptStep({ rise: cfg.rise, fall: cfg.fall, initFail: cfg.init_fail }, sr.state, r.code === 0 && !r.timedOut);
        sr.state = res.state;
        if (!res.changed) return;
        sr.ok = res.ok;
        this.deps.log.info({ script: cfg.name, ok: res.ok }, `vrrp_script ${cfg.name} now ${res.ok ? 'succeeds' : 'fails'}`);
        for (const rt of this.#runtimes.values()) {
          const objs = rt.tracked.filter((o) => o.name === `script:${cfg.name}`);
          for (const obj of objs) obj.ok = res.ok;
          if (objs.length > 0) this.#retrack(rt);
        }
      });
    };
    tick();
    sr.timer = setInterval(tick, cfg.interval * 1000);
  }

  #stopScript(name: string): void {
    const sr = this.#scripts.get(name);
    if (sr) clearInterval(sr.timer);
    this.#scripts.delete(name);
  }

  /**
   * Starts every instance (after vrrp_startup_delay, as keepalived does). `hold`: the start-up hold
   * of state.ts — the instances run (listen, down timers, a lone router takes over) but take nothing
   * over from a live master until release().
   */
  async start(opts: { hold?: boolean } = {}): Promise<void> {
    if (opts.hold) this.#held = true;
    const watcher = this.deps.rtnl.watch();
    watcher.on('link', (ev) => this.#onLink(ev));
    watcher.on('error', (err) => this.deps.log.warn({ err: errorMessage(err) }, 'rtnetlink watch error'));
    this.#watcher = watcher;
    // VIPs left on the interfaces by a previous run that died (kill -9) must go: we start as
    // BACKUP and only a MASTER may hold them (keepalived clears them at start-up too).
    await Promise.all([...this.#runtimes.values()].map((rt) => rt.vips.release().catch((err: unknown) =>
      this.deps.log.warn({ instance: rt.cfg.name, err: errorMessage(err) }, 'cannot remove stale VIPs'))));
    // Likewise its virtual routes and rules (RouteSet.remove logs and never throws).
    await Promise.all([...this.#runtimes.values()].map((rt) => rt.routes?.remove()));
    await this.#startProcesses();
    for (const rt of this.#runtimes.values()) this.#retrack(rt);
    this.#startScripts();
    const delay = this.config.global.vrrp_startup_delay * 1000;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    for (const rt of this.#runtimes.values()) {
      if (this.#stopped) break;
      if (this.#held) rt.instance.dispatch({ type: 'hold', held: true });
      rt.instance.start();
    }
  }

  /** Ends the start-up hold (the services are ready): see state.ts. Idempotent. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    for (const rt of this.#runtimes.values()) rt.instance.dispatch({ type: 'hold', held: false });
  }

  /** Whether the start-up hold is on. */
  get held(): boolean { return this.#held; }

  /**
   * Applies the VRRP part of a reload plan in place. Kept instances keep their state and timers;
   * only added or removed VIPs change on the interface; removed instances stop as on shutdown
   * (priority 0 if MASTER); added ones start as at boot.
   */
  async applyReload(plan: ReloadPlan, next: Config): Promise<void> {
    this.config = next;
    if (this.#applied && !this.deps.clock) {
      const sender = advertSender();
      if (sender) this.#schedule(sender);
    }
    for (const name of plan.vrrpScripts.removed.map((x) => x.name)) this.#stopScript(name);
    for (const c of plan.vrrpScripts.changed) this.#stopScript(c.current.name);
    const restart = plan.vrrp.kept.filter((k) => k.changes.restartInstance || (k.current.priority === 255) !== (k.next.priority === 255));
    for (const cfg of [...plan.vrrp.removed, ...restart.map((k) => k.current)]) await this.#remove(cfg.name);
    for (const k of plan.vrrp.kept.filter((x) => !restart.includes(x))) await this.#update(k.current, k.next);
    const added: Runtime[] = [];
    for (const cfg of [...plan.vrrp.added, ...restart.map((k) => k.next)]) added.push(await this.#build(cfg));
    // Scripts now used by some instance but not running (added, changed, or newly tracked).
    const used = this.#usedScripts();
    for (const cfg of next.vrrp_script) if (used.has(cfg.name) && !this.#scripts.has(cfg.name)) this.#startScript(cfg);
    for (const [name] of this.#scripts) if (!used.has(name)) this.#stopScript(name);
    await this.#startProcesses();
    for (const rt of added) {
      await rt.vips.release().catch(() => undefined);
      await rt.routes?.remove();
      rt.tracked = await this.#trackedObjects(rt.cfg, rt.base);
      this.#retrack(rt);
      if (this.#held) rt.instance.dispatch({ type: 'hold', held: true });
      rt.instance.start();
    }
  }

  async #remove(name: string): Promise<void> {
    const rt = this.#runtimes.get(name);
    if (!rt) return;
    await rt.instance.shutdown();
    rt.announcer.stop();
    this.#hub.remove(rt.member);
    this.#runtimes.delete(name);
    if (rt.cfg.vmac_ifname !== null) await this.deps.vmac?.remove(rt.cfg.vmac_ifname).catch((err: unknown) =>
      this.deps.log.warn({ instance: name, err: errorMessage(err) }, 'cannot remove VMAC'));
  }

  async #update(current: VrrpInstanceConfig, next: VrrpInstanceConfig): Promise<void> {
    const rt = this.#runtimes.get(current.name);
    if (!rt) return;
    rt.cfg = next;
    if (next.name !== current.name) {
      this.#runtimes.delete(current.name);
      this.#runtimes.set(next.name, rt);
    }
    const group = next.family === 4 ? this.config.global.vrrp_mcast_group4 : this.config.global.vrrp_mcast_group6;
    rt.member.destinations = next.unicast_peer.length > 0 ? next.unicast_peer : [group];
    rt.member.v3ChecksumAsV2 = next.v3_checksum_as_v2;
    rt.instance.reconfigure(vrrpParams(next, rt.src), expectation(next, rt.src));
    if (rt.instance.vipsOwned) {
      // The filter follows the new accept setting and VIP list before the VIPs change.
      await this.#filterRemove(current.name);
      if (blocksVips(next)) await this.#filterAdd(next);
    }
    await rt.vips.update(ownedCidrs(next));
    if (!rt.routes && hasRoutes(next) && this.deps.routeSet) {
      rt.routes = this.deps.routeSet(`vrrp_instance ${next.name}`, routeEntries(next));
      if (rt.instance.vipsOwned) await rt.routes.install();
    } else await rt.routes?.update(routeEntries(next));
    // New frames for the new VIP list / GARP settings; a MASTER announces its (new) VIPs at once.
    const wasActive = rt.announcer.active;
    rt.announcer.stop();
    rt.announcer = this.deps.announcer(rt.link, ownedCidrs(next), next, this.config.global);
    if (wasActive) rt.announcer.start();
    // A BACKUP's takeover plan went to the sender thread (reconfigure above) with the VIPs and GARPs
    // of before: hand it over again with the new ones.
    rt.instance.reconfigure(vrrpParams(next, rt.src), expectation(next, rt.src));
    rt.tracked = await this.#trackedObjects(next, rt.base, rt.tracked);
    this.#retrack(rt);
  }

  status(): VrrpInstanceStatus[] {
    return [...this.#runtimes.values()].map(({ cfg, instance, vips, restored }) => {
      const s = instance.state;
      return {
        name: cfg.name,
        interface: cfg.interface,
        vrid: cfg.virtual_router_id,
        version: cfg.version,
        family: cfg.family,
        state: s.name,
        priority: cfg.priority,
        effective_priority: s.effectivePriority,
        master: s.name === 'MASTER' ? instance.state.params.primaryAddress : s.masterAddress,
        vips: cfg.virtual_ipaddress_parsed.map((v) => `${v.address}/${v.prefix}`),
        owned_vips: vips.acquired ? cfg.virtual_ipaddress_parsed.map((v) => `${v.address}/${v.prefix}`) : [],
        transitions: instance.counters.transitions,
        adverts_sent: instance.counters.advertsSent,
        adverts_received: instance.counters.advertsReceived,
        drops: { ...instance.counters.drops },
        vips_restored: restored,
        startup_hold: s.held,
        ...senderFields(instance.senderLateness),
      };
    });
  }

  /** Gratuitous ARP / unsolicited NA frames sent per instance (metrics). */
  announcements(): Record<string, { garp_sent?: number; na_sent?: number }> {
    return Object.fromEntries([...this.#runtimes.values()].map(({ cfg, announcer }) =>
      [cfg.name, cfg.family === 4 ? { garp_sent: announcer.sent } : { na_sent: announcer.sent }]));
  }

  socketDrops(): Record<string, Record<string, number>> {
    return this.#hub.socketDrops() as Record<string, Record<string, number>>;
  }

  /**
   * Graceful stop: priority-0 adverts from masters at once (the peer takes over after Skew_Time),
   * VIPs removed once `holdVips` settles (connections on them drain meanwhile), sockets closed.
   * Idempotent.
   */
  async stop(holdVips?: Promise<unknown>): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const s of this.#scripts.values()) clearInterval(s.timer);
    this.#processes?.stop();
    this.#watcher?.close();
    await Promise.all([...this.#runtimes.values()].map((rt) => rt.instance.shutdown(holdVips)));
    for (const rt of this.#runtimes.values()) { rt.announcer.stop(); this.#hub.remove(rt.member); }
    this.#hub.close();
    // The VIPs are gone (shutdown waited for them); now their VMACs can go.
    for (const rt of this.#runtimes.values()) {
      if (rt.cfg.vmac_ifname !== null) await this.deps.vmac?.remove(rt.cfg.vmac_ifname).catch((err: unknown) =>
        this.deps.log.warn({ instance: rt.cfg.name, err: errorMessage(err) }, 'cannot remove VMAC'));
    }
  }

  /**
   * After a graceful stop has begun: resolves once every instance that was MASTER has heard a peer
   * take over (or after timeoutMs). Until then this director keeps serving its VIPs.
   */
  async peersTookOver(wereMaster: readonly string[], timeoutMs: number): Promise<void> {
    await Promise.all(wereMaster.map((n) => this.#runtimes.get(n)?.instance.peerAdvert(timeoutMs)));
  }

  /** Names of the instances currently MASTER. */
  masters(): string[] {
    return [...this.#runtimes.values()].filter((rt) => rt.instance.state.name === 'MASTER').map((rt) => rt.cfg.name);
  }

}

let rtLimitWatched = false;

/**
 * RLIMIT_RTTIME's soft limit sends SIGXCPU to the process (whose default action would end it):
 * log it instead, as keepalived does; the hard limit still kills (a real-time thread that stopped
 * blocking). Installed once per process.
 */
function watchRtLimit(log: VrrpDeps['log'], rlimitUs: number): void {
  if (rtLimitWatched || rlimitUs <= 0) return;
  rtLimitWatched = true;
  process.on('SIGXCPU', () => log.warn({}, 'SIGXCPU: the VRRP sender thread ran real-time for half of global.vrrp_rlimit_rttime without blocking; at the whole the kernel ends the daemon'));
}

function senderFields(l: { maxLateUs: number; maxWakeLateUs: number } | undefined): { sender_max_late_us?: number; sender_max_wake_late_us?: number } {
  return l ? { sender_max_late_us: Math.round(l.maxLateUs), sender_max_wake_late_us: Math.round(l.maxWakeLateUs) } : {};
}
