/**
 * Composition root: builds the engines from a loaded config and the real system dependencies, and
 * exposes what the control socket and signals need (status, reload, stop). Wiring only.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { configInputs, parseConfigIncremental, planReload, isReloadPlanEmpty, readConfigText, type Config, type ConfigCache, type ConfigSource } from '../config/index.js';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { Announcer, announcerTiming } from '../net/announcer.js';
import { PacketSocket } from '../net/native.js';
import { Rtnl } from '../net/rtnl.js';
import { VipManager } from '../net/vips.js';
import { RouteSet, type RouteSetEntries } from '../net/route-set.js';
import { VmacManager } from '../net/vmac.js';
import { Mailer, realServerAlertText, virtualServerAlertText, vrrpAlertFor } from '../alert/mailer.js';
import { RawIpv4Transport } from '../vrrp/transport-raw4.js';
import { RawIpv6Transport } from '../vrrp/transport-raw6.js';
import { ControlServer } from './control-server.js';
import { OVERRIDE_COMMANDS, type OverrideAction } from '../lvs/override-commands.js';
// Loaded after the VRRP engine has started (start-up time; see #start): the data plane, the health
// checks, BGP; and only when configured: sync, conntrackd, metrics.
import type { DataplaneSet, ConnectionLimits } from '../lvs/dataplane/index.js';
import type { VirtualServerManager, OverrideResult } from '../lvs/manager.js';
import type { SyncService } from '../sync/service.js';
import type { Conntrackd } from '../sync/conntrackd.js';
import type { MetricsServer } from '../metrics/index.js';
import type { Registry } from 'prom-client';
import type { AnnounceController } from '../announce/controller.js';
import type { BirdBinaries } from '../announce/bird.js';
import type { StatusReport } from './status.js';
import { ScriptRunner, policyOf } from '../util/script.js';
import { limitsFromConfig, readNofile } from '../util/fdlimit.js';
import { LockedFile } from './locked-file.js';
import { AcceptFilter } from '../net/accept-filter.js';
import { VrrpManager, blocksVips } from '../vrrp/manager.js';

/** Graceful stop: how long a former MASTER keeps announcing its "master" addresses after the peer took over. */
const MASTER_HANDOVER_MS = 500;

/**
 * The start-up hold (src/vrrp/state.ts) ends when the services are ready, or at the latest after
 * this long (a real server whose first check never concludes must not keep a director from ever
 * taking its place back): the default delay_loop, which is also the default warmup.
 */
export const STARTUP_HOLD_MAX_MS = 60_000;

const VERSION = (JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../../package.json'), 'utf8')) as { version: string }).version;

export interface DaemonOptions {
  configPath: string;
  controlSocket?: string;
  pidFile?: string;
  log: Logger;
}

/**
 * What `keepalive-ts check` reports about this host (scripts refused or insecure, key files,
 * interfaces...), logged at start and reload with file:line and key: the same problems, found once.
 */
async function logHostIssues(source: ConfigSource, log: Logger): Promise<void> {
  // Loaded when needed (start-up time: it brings the nftables, BIRD and sync key checks along).
  const { formatHostIssue, runHostChecks } = await import('../config/host-checks.js');
  for (const i of runHostChecks(source)) {
    if (i.severity === 'error') log.error({ key: i.path }, formatHostIssue(i));
    else log.warn({ key: i.path }, formatHostIssue(i));
  }
}

export class Daemon {
  #config: Config;
  /**
   * The text and inputs (configInputs()) #config was parsed from: a reload of the same is a no-op;
   * and its blocks, for the next load to reuse the unchanged ones (config/incremental.ts).
   */
  #loaded: { text: string; inputs: string; cache: ConfigCache } | undefined;
  /** The parsed start-up config, until its host checks are logged (right after the VRRP engine started). */
  #located: ConfigSource | undefined;
  #vrrp: VrrpManager | undefined;
  #lvs: VirtualServerManager | undefined;
  #dataPlane: DataplaneSet | undefined;
  #sync: SyncService | undefined;
  #conntrackd: Conntrackd | undefined;
  #announce: AnnounceController | undefined;
  /** VRRP instances whose VIPs are in place. */
  readonly #owning = new Set<string>();
  #control: ControlServer | undefined;
  #rtnl: Rtnl | undefined;
  #metrics: MetricsServer | undefined;
  #metricsRegistry: Registry | undefined;
  readonly #reloads = { ok: 0, error: 0 };
  readonly #packetSockets = new Map<number, PacketSocket>();
  /** Alert mails (smtp_alert); reads the current config at send time. */
  #mailer: Mailer | undefined;
  /** static_ipaddress / static_routes / static_rules, in from start to stop. */
  #statics: RouteSet | undefined;
  /** Every RouteSet made (static and per instance), for the failure counter. */
  readonly #routeSets: RouteSet[] = [];
  readonly #startedAt = Date.now();
  #stopping: Promise<void> | undefined;
  /** The lock next to the control socket and the pid file: held from the first moment to the last. */
  #controlLock: LockedFile | undefined;
  #pidLock: LockedFile | undefined;
  /** accept = false enforcement (an nftables table of our own), created on first use. */
  readonly #acceptFilter = new AcceptFilter();
  /** Every script of the daemon runs through this one runner (user resolution, script security). */
  readonly #scripts: ScriptRunner;

  private constructor(private readonly opts: DaemonOptions, config: Config) {
    this.#config = config;
    this.#scripts = new ScriptRunner({
      policy: () => policyOf(this.#config.global),
      onRefused: (command, reason) => opts.log.error({ command, reason }, `script refused: ${command}: ${reason}`),
      onWarning: (command, warning) => opts.log.warn({ command, warning }, `insecure script: ${command}: ${warning}`),
    });
  }

  static async start(opts: DaemonOptions): Promise<Daemon> {
    const text = await readConfigText(opts.configPath);
    const inputs = configInputs();
    const loaded = parseConfigIncremental(text, opts.configPath, inputs);
    const located = loaded.source;
    const d = new Daemon(opts, located.config);
    d.#loaded = { text, inputs, cache: loaded.cache };
    d.#located = located;
    try {
      await d.#start();
    } catch (err) {
      // A start that failed before the VRRP engine ran still reports the host's problems.
      if (d.#located) await logHostIssues(d.#located, opts.log).catch(() => undefined);
      await d.stop();
      throw err;
    }
    return d;
  }

  get pidFile(): string {
    return this.opts.pidFile ?? this.#config.global.pid_file;
  }

  get controlPath(): string {
    return this.opts.controlSocket ?? this.#config.global.control_socket;
  }

  /** Every address a VRRP instance owns while MASTER (advertised and excluded VIPs). */
  #instanceAddresses(instance: string): string[] {
    const cfg = this.#config.vrrp_instance.find((i) => i.name === instance);
    return cfg ? [...cfg.virtual_ipaddress_parsed, ...cfg.virtual_ipaddress_excluded_parsed].map((v) => v.address) : [];
  }

  /**
   * Whether conntrackd commits the peer's connections when this instance becomes MASTER: the sync
   * instance, and (a sync group moves as one: whichever member's VIPs come first starts the commit,
   * the others wait for it) the members of its vrrp_sync_group.
   */
  #commitsConntrack(instance: string): boolean {
    const s = this.#config.sync;
    if (!s) return false;
    return instance === s.instance || this.#config.vrrp_sync_group.some((g) => g.group.includes(instance) && g.group.includes(s.instance));
  }

  #packetSocket(ifindex: number): PacketSocket {
    let s = this.#packetSockets.get(ifindex);
    if (!s) { s = PacketSocket.open(ifindex); this.#packetSockets.set(ifindex, s); }
    return s;
  }

  /**
   * Start-up order: the VRRP engine first, then the data plane's services and pools (sent all at
   * once), the health checks and connection sync, then metrics and BGP. The instances start under
   * the start-up hold (src/vrrp/state.ts): they listen and run their timers at once (a lone
   * director takes over as always) but take nothing over from a live master until the data plane,
   * the first check results of every service and the sync are in (releaseHold). Nothing on the VRRP
   * path waits for them. The data plane, checks and BGP modules are loaded after the instances have
   * started; sync, conntrackd and metrics only when configured.
   */
  async #start(): Promise<void> {
    const { log } = this.opts;
    // Before anything starts (no check, no script, no socket): a second daemon on the same control
    // socket or pid file fails here and touches none of the first one's files.
    this.#controlLock = LockedFile.acquire(`${this.controlPath}.lock`, 'control socket lock');
    if (this.pidFile) this.#pidLock = LockedFile.acquire(this.pidFile, 'pid file');
    if (this.#config.vrrp_instance.some(blocksVips)) {
      // accept = false must be enforced or refused, never silently accepted.
      await this.#acceptFilter.init().catch((err: unknown) => {
        throw new KeepaliveError('E_SOCKET', `accept = false needs nftables (table inet keepalive_ts_accept): ${(err as Error).message}`, { cause: err });
      });
    }
    // Before anything starts: [bgp] without BIRD 2 installed is a clear error (E_BIRD_MISSING).
    const bird: BirdBinaries | undefined = this.#config.bgp ? (await import('../announce/bird.js')).findBird() : undefined;
    this.#rtnl = Rtnl.open();
    const rtnl = this.#rtnl;
    const sync = this.#config.sync;
    const mailer = new Mailer({ global: () => this.#config.global, log: log.child({ component: 'smtp' }) });
    this.#mailer = mailer;
    const routeSet = (owner: string, entries: ConstructorParameters<typeof RouteSet>[3]): RouteSet => {
      const set = new RouteSet(rtnl, log.child({ component: 'routes' }), owner, entries);
      this.#routeSets.push(set);
      return set;
    };
    // keepalived adds its static addresses, routes and rules before any instance runs (leftovers of
    // a previous run are taken out first) and takes them out at stop.
    this.#statics = routeSet('static', staticEntries(this.#config));
    await this.#statics.remove();
    await this.#statics.install();
    let lvsStarted = false;
    this.#vrrp = await VrrpManager.create(this.#config, {
      rtnl,
      log,
      scripts: this.#scripts,
      acceptFilter: this.#acceptFilter,
      vmac: new VmacManager(rtnl, log.child({ component: 'vmac' })),
      routeSet,
      alert: (a) => {
        const text = vrrpAlertFor(this.#config.global, a.kind, a.name, a.state);
        if (text) mailer.enqueue(text);
      },
      // Before the VIPs of a new master go up (bounded waits, side by side; the state machine and
      // its adverts run on meanwhile):
      beforeVips: async (instance) => {
        const waits: Promise<void>[] = [];
        // The data plane holds established connections to services on these addresses from now
        // on: a cut window left by a recent drain here ends before the VIPs are local, or this
        // director's own stack would reset its clients' sessions until its serve transaction lands.
        const addresses = this.#instanceAddresses(instance);
        if (this.#dataPlane && addresses.length) {
          const claim = this.#dataPlane.claim(addresses).catch((err: unknown) => log.warn({ instance, err: errorMessage(err) }, 'data plane: claiming the VIPs failed'));
          waits.push(boundedWait(claim, CLAIM_WAIT_MS));
        }
        // NAT with conntrackd: the peer's connections are committed to the kernel before the VIPs
        // (the sync instance's, and those of its vrrp_sync_group, e.g. the real servers' gateway)
        // go up, so the first packet that reaches this director finds them.
        const ct = this.#conntrackd;
        if (ct && this.#commitsConntrack(instance)) waits.push(ct.promote(CONNTRACKD_COMMIT_WAIT_MS));
        await Promise.all(waits);
      },
      // The sender thread may put the VIPs up right after the takeover advert only when beforeVips
      // has nothing to wait for (asked at every hand-over of a BACKUP's takeover plan).
      nativeTakeover: (instance) =>
        !(this.#conntrackd && this.#commitsConntrack(instance)) && !(this.#dataPlane?.claimPending(this.#instanceAddresses(instance)) ?? false),
      onOwnership: (instance, owned) => {
        if (owned) this.#owning.add(instance);
        else this.#owning.delete(instance);
        // Posts the synced templates/flows to the data plane before setOwnership posts serve().
        // (Before the sync is open, its opening reads #owning instead.)
        if (instance === sync?.instance) {
          void this.#sync?.setMaster(owned);
          // Background: commit the peer's conntrack entries (MASTER) or ask for a resync (BACKUP).
          void this.#conntrackd?.setRole(owned ? 'master' : 'backup');
        }
        if (lvsStarted) this.#lvs?.setOwnership((address) => this.#ownsAddress(address));
        this.#announce?.update();
      },
      transports: (ifname, ifindex, family, groups) => (family === 4 ? new RawIpv4Transport(ifname, ifindex, groups) : new RawIpv6Transport(ifindex, groups)),
      vipManager: (ifindex, vips, onRestored) => new VipManager(rtnl, ifindex, vips, { onRestored, onError: (err) => log.error({ err: String(err) }, 'VIP manager error') }),
      announcer: (link, vips, cfg, global) => new Announcer({
        mac: link.mac,
        vips,
        send: (frame) => { this.#packetSocket(link.index).send(frame); },
        timing: announcerTiming(cfg, global),
        onError: (err, vip) => log.warn({ err: String(err), vip }, 'gratuitous ARP/NA send failed'),
      }),
    });
    // The instances start now (vrrp_startup_delay included), under the start-up hold; everything
    // below runs meanwhile.
    const vrrpStarted = this.#vrrp.start({ hold: true }).then(() => undefined, (err: unknown) => err ?? new Error('VRRP start failed'));
    // What `keepalive-ts check` reports about this host (informational: the script runner refuses
    // what it must at run time), logged once the instances run.
    if (this.#located) await logHostIssues(this.#located, log);
    this.#located = undefined;
    const [{ DataplaneSet: Dataplanes, proxyWorkerCount }, { VirtualServerManager: Manager }, syncModule] = await Promise.all([
      import('../lvs/dataplane/index.js'),
      import('../lvs/manager.js'),
      sync ? import('../sync/service.js') : undefined,
    ]);
    // One data plane per lb_kind, created when a service needs it (no proxy worker without a PROXY service).
    this.#dataPlane = new Dataplanes({
      ...(syncModule ? { eventBatchMs: syncModule.SYNC_EVENT_BATCH_MS } : {}),
      proxyWorkers: proxyWorkerCount(this.#config.global.proxy_workers),
      // conntrackd commits the peer's connections when this director becomes MASTER: until the
      // commit is in, a mid-stream packet must not be scheduled as a new connection.
      ...(sync?.conntrackd ? { conntrackSync: true } : {}),
      log: (level, msg, fields) => log[level](fields ?? {}, msg),
      // A DR address announced by BGP is on no interface here (at most on lo): its client traffic
      // arrives through the interfaces of the BGP peers.
      ingress: () => this.#announce?.ingressInterfaces() ?? [],
      // The proxy's connection budget below the descriptor limit, and its idle timeouts.
      limits: this.#limits(),
      onError: (implementation, err) => log.error({ dataplane: implementation, err: err.message }, 'data plane error'),
    });
    // Built now (status lists the services from the start).
    const lvs = new Manager(this.#config.virtual_server, {
      dataPlane: this.#dataPlane,
      log: log.child({ component: 'lvs' }),
      onStateChange: () => this.#announce?.update(),
      scripts: this.#scripts,
      alert: (a) => {
        const id = this.#config.global.router_id;
        mailer.enqueue(a.kind === 'real_server'
          ? realServerAlertText(id, a.virtualServer, a.realServer, a.up, a.detail)
          : virtualServerAlertText(id, a.virtualServer, a.up, a.quorum, a.hysteresis, a.weightSum));
      },
    });
    this.#lvs = lvs;
    this.#control = new ControlServer({
      path: this.controlPath,
      handlers: {
        status: () => this.freshStatus(),
        reload: () => this.reload(),
        // keepalive-ts weight / drain / disable / enable: { virtual_server, real_server[, weight] }
        ...Object.fromEntries(OVERRIDE_COMMANDS.map((action) => [action, (args: Record<string, unknown>) => this.#override(action, args)])),
      },
      onError: (err) => log.warn({ err: err.message }, 'control socket error'),
    });
    await this.#control.listen();
    // The data plane (services, pools, health checks) and connection state. Until they are in, the
    // hold keeps the instances from taking over from a live master; a lone director that became
    // MASTER meanwhile serves from here on. The pools go out all at once.
    await lvs.start();
    // The peer's connection and persistence tables (its first full snapshot) are part of being ready.
    let snapshotIn = (): void => undefined;
    const firstSnapshot = sync ? new Promise<void>((resolve) => { snapshotIn = resolve; }) : undefined;
    if (sync && syncModule) {
      this.#sync = await syncModule.SyncService.open({
        config: sync, dataPlane: this.#dataPlane, virtualServers: this.#config.virtual_server.flatMap((vs) => vs.members), log: log.child({ component: 'sync' }),
        onSnapshotEnd: () => snapshotIn(),
      });
      if (sync.conntrackd) {
        const { Conntrackd } = await import('../sync/conntrackd.js');
        this.#conntrackd = await Conntrackd.start({
          config: sync.conntrackd,
          interface: sync.interface,
          dir: conntrackdDir(this.controlPath),
          log: log.child({ component: 'conntrackd' }),
        });
      }
      // The sync instance may have become MASTER (a lone director) before the sync was open.
      if (this.#owning.has(sync.instance)) {
        void this.#sync.setMaster(true);
        void this.#conntrackd?.setRole('master');
      }
    }
    lvsStarted = true;
    // Services on addresses no VRRP instance manages are served from the start; the others while
    // their instance is MASTER.
    lvs.setOwnership((address) => this.#ownsAddress(address));
    // The hold ends once every service has its first check results in the data plane (and the
    // peer's sync snapshot is in).
    void this.#releaseHoldWhenReady(lvs, firstSnapshot);
    await this.#startMetrics();
    if (bird) {
      const { AnnounceController: Announce } = await import('../announce/controller.js');
      this.#announce = await Announce.start(this.#config, {
        rtnl,
        log: log.child({ component: 'bgp' }),
        binaries: bird,
        facts: () => ({ services: this.#lvs?.announceFacts() ?? new Map(), masters: this.#owning }),
        onServeChange: () => this.#lvs?.setOwnership((address) => this.#ownsAddress(address)),
      });
    }
    const vrrpError = await vrrpStarted;
    if (vrrpError) throw vrrpError;
    log.info({ config: this.opts.configPath, control_socket: this.controlPath, instances: this.#config.vrrp_instance.length }, 'keepalive-ts started');
  }

  /**
   * Releases the start-up hold once `lvs` has every first check result in the data plane and the
   * sync's first snapshot (if any) has arrived, or after STARTUP_HOLD_MAX_MS.
   */
  async #releaseHoldWhenReady(lvs: VirtualServerManager, firstSnapshot: Promise<void> | undefined): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let snapshot = firstSnapshot === undefined;
    const ready = Promise.all([lvs.firstChecks(), firstSnapshot?.then(() => { snapshot = true; })]).then(() => false);
    const capped = await Promise.race([
      ready,
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), STARTUP_HOLD_MAX_MS); timer.unref(); }),
    ]);
    clearTimeout(timer);
    if (!this.#vrrp?.held || this.#stopping) return;
    const log = this.opts.log;
    if (capped) {
      const waiting = lvs.uncheckedServices();
      log.warn({ unchecked_virtual_servers: waiting.slice(0, 10), unchecked: waiting.length, sync_snapshot: snapshot },
        `start-up hold released after ${STARTUP_HOLD_MAX_MS / 1000} s without ${[waiting.length > 0 ? `the first check results of ${waiting.length} virtual servers` : '', snapshot ? '' : "the sync peer's snapshot"].filter(Boolean).join(' and ')}`);
    } else log.info({ since_process_start_ms: Math.round(performance.now()) }, 'services ready: start-up hold released (this director may take over from a live master now)');
    this.#vrrp.release();
  }

  #syncMetrics() {
    const st = this.#sync?.status();
    if (!st) return undefined;
    const ct = this.#conntrackd?.status();
    return {
      messages_sent: st.sent.messages,
      messages_received: st.received.messages,
      rejected: st.received.dropped,
      entries: st.table.templates + st.table.udp_flows + st.table.conns,
      last_snapshot_ms: st.last_snapshot_ms,
      lag: st.lag,
      rtt_ms: st.echo.rtt_ms,
      ...(ct ? { conntrackd: ct } : {}),
    };
  }

  /**
   * The proxy's connection budget (global.maxconn below the descriptor limit minus reserved_fds)
   * and idle timeouts (global.lvs_timeouts), logged when they change.
   */
  #limits(): ConnectionLimits {
    const g = this.#config.global;
    const nofile = readNofile();
    const { budget: b, limits } = limitsFromConfig(g, nofile?.soft);
    const fields = { maxconn: b.maxConns, low_water: b.lowWater, descriptor_limit: nofile?.soft, reserved_fds: g.reserved_fds };
    if (b.lowered) this.opts.log.warn(fields, `global.maxconn ${g.maxconn} needs more descriptors than the limit allows; lowered to ${b.maxConns}`);
    else this.opts.log.info(fields, `proxy connection budget: ${b.maxConns === 0 ? 'unlimited' : b.maxConns}`);
    return limits;
  }

  async #startMetrics(): Promise<void> {
    const listen = this.#config.global.metrics;
    if (!listen) return;
    const log = this.opts.log;
    // prom-client and the page are loaded only when metrics are on.
    const { createMetricsRegistry, startMetricsServer } = await import('../metrics/index.js');
    this.#metricsRegistry ??= createMetricsRegistry(() => ({
      status: this.status(),
      extras: {
        vrrp: this.#vrrp?.announcements(),
        checks: this.#lvs?.checkMetrics(),
        reload: { ...this.#reloads },
        sync: this.#syncMetrics(),
        ...(this.#mailer?.enabled || (this.#mailer?.counters.sent ?? 0) + (this.#mailer?.counters.failed ?? 0) > 0 ? { alerts: { ...this.#mailer!.counters } } : {}),
        route_failures: this.#routeSets.reduce((n, r) => n + r.failures, 0),
        ...(this.#lvs ? { overrides: this.#lvs.overrideCounts() } : {}),
      },
    }));
    this.#metrics = await startMetricsServer({
      listen,
      registry: this.#metricsRegistry,
      refresh: () => this.#lvs?.refresh() ?? Promise.resolve(),
      // The status page (GET /) and /status.json: the same report as `status --json`.
      status: () => this.freshStatus(),
      onError: (err) => log.warn({ err: String(err) }, 'metrics scrape failed'),
    });
  }

  /**
   * Whether this director should serve `address`: for an address announced by BGP in "healthy"
   * mode, the announcement decision (served while the service has quorum); otherwise true while the
   * VRRP instance carrying it as a VIP is MASTER with its VIPs in place, and always for addresses
   * no instance manages and nothing announces.
   */
  #ownsAddress(address: string): boolean {
    const announced = this.#announce?.serves(address);
    if (announced !== undefined) return announced;
    const carriers = this.#config.vrrp_instance.filter((i) =>
      [...i.virtual_ipaddress_parsed, ...i.virtual_ipaddress_excluded_parsed].some((v) => v.address === address));
    return carriers.length === 0 || carriers.some((i) => this.#owning.has(i.name));
  }

  /** A runtime override from the control socket (arguments unchecked: the manager validates them). */
  #override(action: OverrideAction, args: Record<string, unknown>): Promise<OverrideResult> {
    if (!this.#lvs) return Promise.reject(new KeepaliveError('E_NOT_FOUND', 'no virtual servers'));
    return this.#lvs.override({
      action,
      virtualServer: args.virtual_server as string,
      realServer: args.real_server as string,
      ...(args.weight !== undefined ? { weight: args.weight as number } : {}),
    });
  }

  /** Status with fresh data-plane counters (the control socket's `status`). */
  async freshStatus(): Promise<StatusReport> {
    await Promise.all([this.#lvs?.refresh().catch(() => undefined), this.#announce?.refresh()]);
    return this.status();
  }

  status(): StatusReport {
    return {
      router_id: this.#config.global.router_id,
      pid: process.pid,
      version: VERSION,
      config_file: this.opts.configPath,
      uptime_s: Math.round((Date.now() - this.#startedAt) / 1000),
      vrrp: this.#vrrp?.status() ?? [],
      vrrp_socket_drops: this.#vrrp?.socketDrops() ?? {},
      virtual_servers: this.#lvs?.status() ?? [],
      ...(this.#sync ? { sync: { ...this.#sync.status(), ...(this.#conntrackd ? { conntrackd: this.#conntrackd.status() } : {}) } } : {}),
      ...(this.#lvs ? { dataplane: this.#lvs.dataplaneExtra() } : {}),
      ...(this.#announce ? { bgp: this.#announce.status() } : {}),
    };
  }

  /**
   * Loads and validates the file again. An invalid file is rejected with every problem listed and
   * the running config stays exactly as it is. A valid one is applied in place from the reload plan
   * (src/config/diff.ts): kept VRRP instances keep state and timers and only added/removed VIPs
   * change; kept services keep their sockets, connections and health. Changes that cannot be applied
   * live are refused as a whole before anything is touched.
   */
  async reload(): Promise<{ summary: string[] }> {
    try {
      const result = await this.#reload();
      this.#reloads.ok++;
      return result;
    } catch (err) {
      this.#reloads.error++;
      throw err;
    }
  }

  async #reload(): Promise<{ summary: string[] }> {
    const text = await readConfigText(this.opts.configPath);
    const inputs = configInputs();
    // The same text with the same inputs parses to an equal config: nothing to plan.
    if (this.#loaded && text === this.#loaded.text && inputs === this.#loaded.inputs) return { summary: [] };
    const loaded = parseConfigIncremental(text, this.opts.configPath, inputs, this.#loaded?.cache);
    const located = loaded.source;
    const next = located.config;
    const plan = planReload(this.#config, next);
    if (isReloadPlanEmpty(plan)) {
      this.#loaded = { text, inputs, cache: loaded.cache };
      return { summary: [] };
    }
    const blocked = [...plan.global.needsRestart, ...(plan.sync ? ['[sync]'] : []), ...(plan.bgp?.needsRestart ?? [])];
    if (blocked.length > 0) {
      throw new KeepaliveError('E_RELOAD_UNSUPPORTED', `these changes need a restart: ${blocked.join(', ')}; nothing was applied (the running config is unchanged)`);
    }
    const log = this.opts.log;
    // What the host lacks for this config (scripts, interfaces...) is logged, not refused: after
    // the reply, so that the time to apply does not include a scan of every section.
    setImmediate(() => void logHostIssues(located, log));
    await this.#vrrp?.applyReload(plan, next);
    await this.#lvs?.applyReload(plan);
    await this.#statics?.update(staticEntries(next));
    const metricsMoved = this.#config.global.metrics_listen !== next.global.metrics_listen;
    const limitsChanged = plan.global.changed.some((k) => k === 'maxconn' || k === 'reserved_fds' || k === 'lvs_timeouts');
    this.#config = next;
    this.#loaded = { text, inputs, cache: loaded.cache };
    if (limitsChanged) await this.#dataPlane?.setLimits(this.#limits());
    await this.#announce?.applyReload(plan, next);
    if (metricsMoved) {
      await this.#metrics?.close();
      this.#metrics = undefined;
      await this.#startMetrics();
    }
    this.#lvs?.setOwnership((address) => this.#ownsAddress(address));
    log.info({ changes: plan.summary }, 'config reloaded');
    return { summary: plan.summary };
  }

  #hurried = false;
  #hurryWaiters: Array<() => void> = [];

  /**
   * During a graceful stop (a second SIGTERM/SIGINT): stop waiting for the peer to take over and
   * close the draining connections now. The rest of the stop (VIPs, sockets, files) still runs.
   */
  hurry(): void {
    if (this.#hurried) return;
    this.#hurried = true;
    for (const w of this.#hurryWaiters.splice(0)) w();
    void this.#lvs?.hurry().catch(() => undefined);
  }

  /** Resolves at once if hurried, else when `p` settles or hurry() is called. */
  #unlessHurried(p: Promise<unknown> | undefined): Promise<void> {
    if (this.#hurried || !p) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#hurryWaiters.push(resolve);
      p.then(() => resolve(), () => resolve());
    });
  }

  /** Graceful stop. Idempotent; concurrent callers share one stop. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      // Priority-0 adverts go out at once, so the peer takes over after Skew_Time. Until it has
      // (its GARPs redirect the clients) this director keeps its VIPs and keeps serving; then it
      // stops accepting, drains open connections (drain_timeout), drops the VIPs and only then
      // removes its forwarding (a late packet is never answered by a reset from the local stack).
      // BGP: addresses announced while healthy are withdrawn at once (BIRD sends the withdrawals in
      // milliseconds); those announced by the VRRP MASTER stay until the peer has taken over (it
      // announces them then). The drain below waits for both, so no router sends a new connection
      // to a director that stopped accepting.
      const warn = (err: unknown): void => this.opts.log.warn({ err: String(err) }, 'BGP withdrawal failed');
      const withdrawn = this.#announce?.withdraw('healthy').catch(warn);
      const masters = this.#vrrp?.masters() ?? [];
      let releaseVips = (): void => undefined;
      const hold = new Promise<void>((resolve) => { releaseVips = resolve; });
      const vrrpStopped = this.#vrrp?.stop(hold);
      const advertS = Math.max(1, ...this.#config.vrrp_instance.map((i) => i.advert_int));
      await this.#unlessHurried(this.#vrrp?.peersTookOver(masters, (3 * advertS + 1) * 1000));
      if (masters.length > 0 && !this.#hurried) await new Promise((r) => setTimeout(r, 100)); // let the peer's GARPs land
      await this.#unlessHurried(withdrawn);
      // The new MASTER announces the "master" addresses once it serves them (VIPs, bind, route,
      // BIRD, UPDATE: tens of ms, more under load); this director keeps announcing and serving
      // them a little longer so the router never has a gap.
      if (masters.length > 0 && !this.#hurried && this.#announce?.announcesMasterMode()) await new Promise((r) => setTimeout(r, MASTER_HANDOVER_MS));
      await this.#unlessHurried(this.#announce?.withdraw('all').catch(warn));
      // The VIPs go after the drain and before the forwarding tables: see VirtualServerManager.stop.
      const lvsStopped = this.#lvs?.stop(async () => { releaseVips(); await vrrpStopped; });
      if (this.#hurried) void this.#lvs?.hurry().catch(() => undefined);
      await lvsStopped;
      releaseVips();
      // conntrackd outlives the VIPs and the forwarding: a director that handed its connections
      // over lets the peer acknowledge its last conntrack updates before stopping it (the peer
      // commits late entries for a few seconds after its promotion).
      const ctSettleMs = masters.length > 0 && !this.#hurried ? CONNTRACKD_SETTLE_MS : 0;
      await Promise.all([vrrpStopped, this.#sync?.close(), this.#conntrackd?.close(ctSettleMs), this.#announce?.stop()]);
      await this.#acceptFilter.close().catch((err: unknown) => this.opts.log.warn({ err: errorMessage(err) }, 'cannot remove the accept = false table'));
      await this.#statics?.remove();
      // A last alert ("Stopping") gets a short while to go out; stop never waits on a dead relay.
      await this.#mailer?.flush(2_000);
      await this.#control?.close();
      await this.#metrics?.close();
      for (const s of this.#packetSockets.values()) s.close();
      this.#rtnl?.close();
      // Only the files this process created and holds (never a running daemon's).
      this.#pidLock?.release();
      this.#controlLock?.release();
      this.opts.log.info('keepalive-ts stopped');
    })();
    return this.#stopping;
  }
}

function staticEntries(c: Config): RouteSetEntries {
  return { addresses: c.global.static_ipaddress_parsed, routes: c.global.static_routes_parsed, rules: c.global.static_rules_parsed };
}

/** How long a VIP add waits for the data plane's claim of its addresses (ms; a transaction takes a few). */
const CLAIM_WAIT_MS = 1_000;

/** Resolves when `p` settles or after `ms`, whichever comes first. */
function boundedWait(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** How long a VIP add waits for conntrackd's commit of the peer's connections (ms). */
const CONNTRACKD_COMMIT_WAIT_MS = 1_000;

/** How long a graceful stop waits for the peer to acknowledge conntrackd's last updates (ms). */
const CONNTRACKD_SETTLE_MS = 2_000;

/** conntrackd's runtime directory beside the control socket: /run/keepalive-ts.sock -> /run/keepalive-ts.conntrackd. */
export function conntrackdDir(controlPath: string): string {
  return `${controlPath.replace(/\.sock$/, '')}.conntrackd`;
}
