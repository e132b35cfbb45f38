/**
 * Builds and runs the VRRP instances of a config: one VrrpInstance per [[vrrp_instance]], sharing
 * sockets through the hub, with VIPs (VipManager), announcements (Announcer), interface and script
 * tracking, sync groups and notify scripts. Everything that touches the system comes in as deps.
 */
import type { Logger } from 'pino';
import type { Config, VrrpInstanceConfig, VrrpScriptConfig } from '../config/index.js';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { runCommand } from '../util/exec.js';
import type { Announcer } from '../net/announcer.js';
import type { LinkEvent, LinkInfo, Rtnl, RtnlWatcher } from '../net/rtnl.js';
import type { VipManager } from '../net/vips.js';
import type { VrrpInstanceStatus } from '../daemon/status.js';
import { VrrpHub, type HubMember, type TransportFactory } from './hub.js';
import { VrrpInstance, realClock, type Clock } from './instance.js';
import { AUTH_NONE, AUTH_PASS, passwordAuthData } from './packet.js';
import type { VrrpStateName } from './state.js';
import { groupState, reconcileSyncGroup, syncMember } from './sync-group.js';
import { computeTracking, initialScriptState, scriptStep, trackingEvents, type ScriptState, type TrackedObject, type TrackingResult } from './tracking.js';

export interface VrrpDeps {
  rtnl: Pick<Rtnl, 'getLink' | 'primaryAddress' | 'watch'>;
  transports: TransportFactory;
  vipManager(ifindex: number, vips: string[], onRestored: (vip: string) => void): VipManager;
  announcer(link: LinkInfo, vips: string[], cfg: VrrpInstanceConfig): Announcer;
  log: Logger;
  clock?: Clock;
  /** Runs notify scripts and vrrp_scripts; replaceable in tests. */
  run?: typeof runCommand;
  /** An instance's VIPs are now in place (MASTER) or about to go (leaving MASTER). */
  onOwnership?: (instance: string, owned: boolean) => void;
}

interface Runtime {
  cfg: VrrpInstanceConfig;
  instance: VrrpInstance;
  member: HubMember;
  vips: VipManager;
  announcer: Announcer;
  tracked: TrackedObject[];
  tracking: TrackingResult | null;
  restored: number;
}

interface ScriptRuntime {
  cfg: VrrpScriptConfig;
  state: ScriptState;
  ok: boolean | null;
  timer: NodeJS.Timeout | undefined;
  running: boolean;
}

export class VrrpManager {
  readonly #hub: VrrpHub;
  readonly #runtimes = new Map<string, Runtime>();
  readonly #scripts = new Map<string, ScriptRuntime>();
  readonly #clock: Clock;
  readonly #run: typeof runCommand;
  #watcher: RtnlWatcher | undefined;
  #stopped = false;

  private constructor(private readonly config: Config, private readonly deps: VrrpDeps) {
    this.#clock = deps.clock ?? realClock;
    this.#run = deps.run ?? runCommand;
    this.#hub = new VrrpHub(deps.transports, (err, where) => deps.log.warn({ err: errorMessage(err), socket: where }, 'VRRP socket error'));
  }

  /** Resolves interfaces and source addresses; opens sockets. Nothing is sent before start(). */
  static async create(config: Config, deps: VrrpDeps): Promise<VrrpManager> {
    const m = new VrrpManager(config, deps);
    try {
      for (const cfg of config.vrrp_instance) await m.#build(cfg);
    } catch (err) {
      m.#hub.close();
      throw err;
    }
    return m;
  }

  async #build(cfg: VrrpInstanceConfig): Promise<void> {
    const { deps } = this;
    const link = await deps.rtnl.getLink(cfg.interface).catch((err: unknown) => {
      throw new KeepaliveError('E_NETLINK', `vrrp_instance ${cfg.name}: interface ${cfg.interface}: ${errorMessage(err)}`, { cause: err });
    });
    const family = cfg.family;
    const vipCidrs = cfg.virtual_ipaddress_parsed.map((v) => `${v.address}/${v.prefix}`);
    const vipAddrs = cfg.virtual_ipaddress_parsed.map((v) => v.address);
    const src = cfg.unicast_src_ip ?? cfg.mcast_src_ip ?? (await deps.rtnl.primaryAddress(link.index, family, vipAddrs));
    if (!src) throw new KeepaliveError('E_NETLINK', `vrrp_instance ${cfg.name}: interface ${cfg.interface} has no IPv${family} address to send adverts from`);
    const group = family === 4 ? this.config.global.vrrp_mcast_group4 : this.config.global.vrrp_mcast_group6;
    const rt: Partial<Runtime> & { cfg: VrrpInstanceConfig } = { cfg, tracking: null, restored: 0 };
    const log = deps.log.child({ instance: cfg.name });
    rt.vips = deps.vipManager(link.index, [...vipCidrs, ...cfg.virtual_ipaddress_excluded_parsed.map((v) => `${v.address}/${v.prefix}`)], (vip) => {
      rt.restored!++;
      log.warn({ vip }, 'VIP was removed by someone else while MASTER; restored it');
    });
    rt.announcer = deps.announcer(link, [...vipCidrs, ...cfg.virtual_ipaddress_excluded_parsed.map((v) => `${v.address}/${v.prefix}`)], cfg);
    const password = cfg.authentication?.password;
    const instance = new VrrpInstance(
      cfg.name,
      {
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
      },
      {
        version: cfg.version,
        vrid: cfg.virtual_router_id,
        advertIntCs: cfg.advert_int_cs,
        addresses: vipAddrs,
        authType: password === undefined ? AUTH_NONE : AUTH_PASS,
        password,
        skipCheckAdvAddr: cfg.skip_check_adv_addr,
        ownAddresses: [src],
      },
      {
        sendAdvert: (priority) => this.#hub.send(rt.member!, {
          version: cfg.version, vrid: cfg.virtual_router_id, priority, advertIntCs: cfg.advert_int_cs, addresses: vipAddrs,
          ...(cfg.version === 2 ? { authType: password === undefined ? AUTH_NONE : AUTH_PASS, authData: password === undefined ? Buffer.alloc(8) : passwordAuthData(password) } : {}),
        }),
        addVips: () => rt.vips!.acquire(),
        removeVips: () => {
          deps.onOwnership?.(cfg.name, false);
          return rt.vips!.release();
        },
        announce: () => {
          rt.announcer!.start();
          deps.onOwnership?.(cfg.name, true);
        },
        stopAnnounce: () => rt.announcer!.stop(),
        notify: (state, priority) => this.#notify(cfg, 'INSTANCE', cfg.name, state, priority),
        onTransition: (from, to, reason) => log.info({ from, to, reason }, `VRRP ${cfg.name} ${from} -> ${to}`),
        onError: (err, what) => log.error({ err: errorMessage(err) }, `VRRP ${cfg.name}: ${what} failed`),
      },
      this.#clock,
    );
    rt.instance = instance;
    rt.member = {
      instance, vrid: cfg.virtual_router_id, family, ifname: cfg.interface, ifindex: link.index, src,
      destinations: cfg.unicast_peer.length > 0 ? cfg.unicast_peer : [group], v3ChecksumAsV2: cfg.v3_checksum_as_v2, unicast: cfg.unicast_peer.length > 0,
    };
    // keepalived tracks the instance's own interface unless dont_track_primary: link down -> FAULT.
    const tracked: TrackedObject[] = [];
    if (!cfg.dont_track_primary) tracked.push({ name: `interface:${cfg.interface}`, weight: 0, ok: link.up });
    for (const t of cfg.track_interface) {
      const l = await deps.rtnl.getLink(t.name).catch(() => null);
      tracked.push({ name: `interface:${t.name}`, weight: t.weight, ok: l ? l.up : false });
    }
    for (const t of cfg.track_script) tracked.push({ name: `script:${t.name}`, weight: t.weight, ok: null });
    rt.tracked = tracked;
    this.#hub.add(rt.member, cfg.unicast_peer.length > 0 ? [] : [group]);
    this.#runtimes.set(cfg.name, rt as Runtime);
  }

  #retrack(rt: Runtime): void {
    const next = computeTracking(rt.cfg.priority, rt.tracked);
    const events = trackingEvents(rt.tracking, next);
    rt.tracking = next;
    for (const ev of events) rt.instance.dispatch(ev);
  }

  #notify(cfg: { notify_master?: string; notify_backup?: string; notify_fault?: string; notify_stop?: string; notify?: string },
    type: 'INSTANCE' | 'GROUP', name: string, state: VrrpStateName, priority: number): void {
    const specific = { MASTER: cfg.notify_master, BACKUP: cfg.notify_backup, FAULT: cfg.notify_fault, STOP: cfg.notify_stop, INIT: undefined }[state];
    const runs: [string, string[]][] = [];
    if (specific) runs.push([specific, []]);
    if (cfg.notify) runs.push([cfg.notify, [type, name, state, String(priority)]]);
    for (const [cmd, args] of runs) {
      void this.#run(cmd, args, 30_000).then((r) => {
        if (r.error || r.code !== 0) this.deps.log.warn({ cmd, args, code: r.code, signal: r.signal, error: r.error }, 'notify script failed');
      });
    }
  }

  #wireSyncGroups(): void {
    for (const g of this.config.vrrp_sync_group) {
      const members = g.group.map((n) => this.#runtimes.get(n)!).filter(Boolean);
      let lastGroupState: string | null = null;
      const reconcile = (id: string, from: VrrpStateName, to: VrrpStateName) => {
        const snapshot = members.map((r) => syncMember(r.cfg.name, r.instance.state));
        const injections = reconcileSyncGroup(g.name, snapshot, from === to ? undefined : { id, from, to });
        for (const inj of injections) this.#runtimes.get(inj.id)!.instance.dispatch(inj.event);
        const gs = groupState(members.map((r) => syncMember(r.cfg.name, r.instance.state)));
        if (gs && gs !== lastGroupState) {
          lastGroupState = gs;
          this.#notify(g, 'GROUP', g.name, gs, 0);
        }
      };
      for (const r of members) r.instance.observe((before, after) => reconcile(r.cfg.name, before.name, after.name));
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

  #startScripts(): void {
    const used = new Set([...this.#runtimes.values()].flatMap((r) => r.cfg.track_script.map((t) => t.name)));
    for (const cfg of this.config.vrrp_script.filter((s) => used.has(s.name))) {
      const sr: ScriptRuntime = { cfg, state: initialScriptState({ rise: cfg.rise, fall: cfg.fall, initFail: cfg.init_fail }), ok: null, timer: undefined, running: false };
      this.#scripts.set(cfg.name, sr);
      const tick = () => {
        if (this.#stopped || sr.running) return;
        sr.running = true;
        void this.#run(cfg.script, [], cfg.timeout * 1000).then((r) => {
          sr.running = false;
          if (this.#stopped) return;
          const res = scriptStep({ rise: cfg.rise, fall: cfg.fall, initFail: cfg.init_fail }, sr.state, r.code === 0 && !r.timedOut);
          sr.state = res.state;
          if (res.changed) {
            sr.ok = res.ok;
            this.deps.log.info({ script: cfg.name, ok: res.ok }, `vrrp_script ${cfg.name} now ${res.ok ? 'succeeds' : 'fails'}`);
            for (const rt of this.#runtimes.values()) {
              const obj = rt.tracked.find((o) => o.name === `script:${cfg.name}`);
              if (obj) { obj.ok = res.ok; this.#retrack(rt); }
            }
          }
        });
      };
      tick();
      sr.timer = setInterval(tick, cfg.interval * 1000);
    }
  }

  /** Starts every instance (after vrrp_startup_delay, as keepalived does). */
  async start(): Promise<void> {
    const watcher = this.deps.rtnl.watch();
    watcher.on('link', (ev) => this.#onLink(ev));
    watcher.on('error', (err) => this.deps.log.warn({ err: errorMessage(err) }, 'rtnetlink watch error'));
    this.#watcher = watcher;
    this.#wireSyncGroups();
    // VIPs left on the interfaces by a previous run that died (kill -9) must go: we start as
    // BACKUP and only a MASTER may hold them (keepalived clears them at start-up too).
    await Promise.all([...this.#runtimes.values()].map((rt) => rt.vips.release().catch((err: unknown) =>
      this.deps.log.warn({ instance: rt.cfg.name, err: errorMessage(err) }, 'cannot remove stale VIPs'))));
    for (const rt of this.#runtimes.values()) this.#retrack(rt);
    this.#startScripts();
    const delay = this.config.global.vrrp_startup_delay * 1000;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    for (const rt of this.#runtimes.values()) if (!this.#stopped) rt.instance.start();
  }

  get(name: string): VrrpInstance | undefined {
    return this.#runtimes.get(name)?.instance;
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

  /** Graceful stop: priority-0 adverts from masters, VIPs removed, sockets closed. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const s of this.#scripts.values()) clearInterval(s.timer);
    this.#watcher?.close();
    await Promise.all([...this.#runtimes.values()].map((rt) => rt.instance.shutdown()));
    for (const rt of this.#runtimes.values()) { rt.announcer.stop(); this.#hub.remove(rt.member); }
    this.#hub.close();
  }
}
