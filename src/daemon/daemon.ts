/**
 * Composition root: builds the engines from a loaded config and the real system dependencies, and
 * exposes what the control socket and signals need (status, reload, stop). Wiring only.
 */
import { readFileSync, writeFileSync, unlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { configInputs, parseConfig, planReload, isReloadPlanEmpty, readConfigText, type Config } from '../config/index.js';
import { KeepaliveError } from '../util/errors.js';
import { Announcer } from '../net/announcer.js';
import { PacketSocket } from '../net/native.js';
import { Rtnl } from '../net/rtnl.js';
import { VipManager } from '../net/vips.js';
import { RouteSet, type RouteSetEntries } from '../net/route-set.js';
import { VmacManager } from '../net/vmac.js';
import { Mailer, realServerAlertText, virtualServerAlertText, vrrpAlertFor } from '../alert/mailer.js';
import { VrrpManager } from '../vrrp/manager.js';
import { RawIpv4Transport } from '../vrrp/transport-raw4.js';
import { RawIpv6Transport } from '../vrrp/transport-raw6.js';
import { ControlServer } from './control-server.js';
import { DataplaneSet, proxyWorkerCount } from '../lvs/dataplane/index.js';
import { VirtualServerManager } from '../lvs/manager.js';
import type { SyncService } from '../sync/service.js';
import type { MetricsServer } from '../metrics/index.js';
import type { Registry } from 'prom-client';
import type { StatusReport } from './status.js';

const VERSION = (JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../../package.json'), 'utf8')) as { version: string }).version;

export interface DaemonOptions {
  configPath: string;
  controlSocket?: string;
  pidFile?: string;
  log: Logger;
}

export class Daemon {
  #config: Config;
  /** The text and inputs (configInputs()) #config was parsed from: a reload of the same is a no-op. */
  #loaded: { text: string; inputs: string } | undefined;
  #vrrp: VrrpManager | undefined;
  #lvs: VirtualServerManager | undefined;
  #dataPlane: DataplaneSet | undefined;
  #sync: SyncService | undefined;
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

  private constructor(private readonly opts: DaemonOptions, config: Config) {
    this.#config = config;
  }

  static async start(opts: DaemonOptions): Promise<Daemon> {
    const text = await readConfigText(opts.configPath);
    const inputs = configInputs();
    const config = parseConfig(text, opts.configPath);
    const d = new Daemon(opts, config);
    d.#loaded = { text, inputs };
    try {
      await d.#start();
    } catch (err) {
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

  #packetSocket(ifindex: number): PacketSocket {
    let s = this.#packetSockets.get(ifindex);
    if (!s) { s = PacketSocket.open(ifindex); this.#packetSockets.set(ifindex, s); }
    return s;
  }

  /**
   * Start-up order: what the first advert needs comes first. The VRRP instances start as soon as
   * the control socket answers (as before); the data plane's services and pools, the health checks,
   * connection sync and their modules (sync and metrics are loaded only when configured) follow
   * while the instances already run. Ownership changes that happen meanwhile are applied once the
   * services are in place.
   */
  async #start(): Promise<void> {
    const { log } = this.opts;
    const g = this.#config.global;
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
    const syncModule = sync ? await import('../sync/service.js') : undefined;
    // One data plane per lb_kind, created when a service needs it (no proxy worker without a PROXY service).
    this.#dataPlane = new DataplaneSet({
      ...(syncModule ? { eventBatchMs: syncModule.SYNC_EVENT_BATCH_MS } : {}),
      proxyWorkers: proxyWorkerCount(this.#config.global.proxy_workers),
      onError: (implementation, err) => log.error({ dataplane: implementation, err: err.message }, 'data plane error'),
    });
    // Built now (status lists the services from the start); started after the VRRP instances.
    const lvs = new VirtualServerManager(this.#config.virtual_server, {
      dataPlane: this.#dataPlane,
      log: log.child({ component: 'lvs' }),
      alert: (a) => {
        const id = this.#config.global.router_id;
        mailer.enqueue(a.kind === 'real_server'
          ? realServerAlertText(id, a.virtualServer, a.realServer, a.up, a.detail)
          : virtualServerAlertText(id, a.virtualServer, a.up, a.quorum, a.hysteresis, a.weightSum));
      },
    });
    this.#lvs = lvs;
    let lvsStarted = false;
    this.#vrrp = await VrrpManager.create(this.#config, {
      rtnl,
      log,
      vmac: new VmacManager(rtnl, log.child({ component: 'vmac' })),
      routeSet,
      alert: (a) => {
        const text = vrrpAlertFor(this.#config.global, a.kind, a.name, a.state);
        if (text) mailer.enqueue(text);
      },
      onOwnership: (instance, owned) => {
        if (owned) this.#owning.add(instance);
        else this.#owning.delete(instance);
        // Posts the synced templates/flows to the data plane before setOwnership posts serve().
        if (instance === sync?.instance) void this.#sync?.setMaster(owned);
        if (lvsStarted) this.#lvs?.setOwnership((address) => this.#ownsAddress(address));
      },
      transports: (ifname, ifindex, family, groups) => (family === 4 ? new RawIpv4Transport(ifname, ifindex, groups) : new RawIpv6Transport(ifindex, groups)),
      vipManager: (ifindex, vips, onRestored) => new VipManager(rtnl, ifindex, vips, { onRestored, onError: (err) => log.error({ err: String(err) }, 'VIP manager error') }),
      announcer: (link, vips, cfg) => new Announcer({
        mac: link.mac,
        vips,
        send: (frame) => { this.#packetSocket(link.index).send(frame); },
        timing: {
          garpMasterRepeat: cfg.garp_master_repeat,
          garpMasterDelay: cfg.garp_master_delay,
          garpMasterRefresh: cfg.garp_master_refresh,
          garpMasterRefreshRepeat: cfg.garp_master_refresh_repeat,
          garpInterval: g.vrrp_garp_interval,
          gnaInterval: g.vrrp_gna_interval,
        },
        onError: (err, vip) => log.warn({ err: String(err), vip }, 'gratuitous ARP/NA send failed'),
      }),
    });
    this.#control = new ControlServer({
      path: this.controlPath,
      handlers: { status: () => this.freshStatus(), reload: () => this.reload() },
      onError: (err) => log.warn({ err: err.message }, 'control socket error'),
    });
    await this.#control.listen();
    if (this.pidFile) writeFileSync(this.pidFile, `${process.pid}\n`);
    // The instances start now (vrrp_startup_delay included); the rest is set up meanwhile.
    const vrrpStarted = this.#vrrp.start().then(() => undefined, (err: unknown) => err ?? new Error('VRRP start failed'));
    await this.#startMetrics();
    await lvs.start();
    if (sync && syncModule) {
      this.#sync = await syncModule.SyncService.open({ config: sync, dataPlane: this.#dataPlane, virtualServers: this.#config.virtual_server, log: log.child({ component: 'sync' }) });
      if (this.#owning.has(sync.instance)) await this.#sync.setMaster(true);
    }
    lvsStarted = true;
    // Services on addresses no VRRP instance manages are served from the start; the others while
    // their instance is MASTER (it may already be).
    lvs.setOwnership((address) => this.#ownsAddress(address));
    const vrrpError = await vrrpStarted;
    if (vrrpError) throw vrrpError;
    log.info({ config: this.opts.configPath, control_socket: this.controlPath, instances: this.#config.vrrp_instance.length }, 'keepalive-ts started');
  }

  #syncMetrics() {
    const st = this.#sync?.status();
    if (!st) return undefined;
    return {
      messages_sent: st.sent.messages,
      messages_received: st.received.messages,
      rejected: st.received.dropped,
      entries: st.table.templates + st.table.udp_flows + st.table.conns,
    };
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
   * Whether this director should serve `address`: true while the VRRP instance carrying it as a VIP
   * is MASTER with its VIPs in place, and always for addresses no instance manages.
   */
  #ownsAddress(address: string): boolean {
    const carriers = this.#config.vrrp_instance.filter((i) =>
      [...i.virtual_ipaddress_parsed, ...i.virtual_ipaddress_excluded_parsed].some((v) => v.address === address));
    return carriers.length === 0 || carriers.some((i) => this.#owning.has(i.name));
  }

  /** Status with fresh data-plane counters (the control socket's `status`). */
  async freshStatus(): Promise<StatusReport> {
    await this.#lvs?.refresh().catch(() => undefined);
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
      ...(this.#sync ? { sync: this.#sync.status() } : {}),
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
    const next = parseConfig(text, this.opts.configPath);
    const plan = planReload(this.#config, next);
    if (isReloadPlanEmpty(plan)) {
      this.#loaded = { text, inputs };
      return { summary: [] };
    }
    const blocked = [...plan.global.needsRestart, ...(plan.sync ? ['[sync]'] : [])];
    if (blocked.length > 0) {
      throw new KeepaliveError('E_RELOAD_UNSUPPORTED', `these changes need a restart: ${blocked.join(', ')}; nothing was applied (the running config is unchanged)`);
    }
    const log = this.opts.log;
    await this.#vrrp?.applyReload(plan, next);
    await this.#lvs?.applyReload(plan);
    await this.#statics?.update(staticEntries(next));
    const metricsMoved = this.#config.global.metrics_listen !== next.global.metrics_listen;
    this.#config = next;
    this.#loaded = { text, inputs };
    if (metricsMoved) {
      await this.#metrics?.close();
      this.#metrics = undefined;
      await this.#startMetrics();
    }
    this.#lvs?.setOwnership((address) => this.#ownsAddress(address));
    log.info({ changes: plan.summary }, 'config reloaded');
    return { summary: plan.summary };
  }

  /** Graceful stop. Idempotent; concurrent callers share one stop. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      // Priority-0 adverts go out at once, so the peer takes over after Skew_Time. Until it has
      // (its GARPs redirect the clients) this director keeps its VIPs and keeps serving; then it
      // stops accepting, drains open connections (drain_timeout) and only then drops the VIPs.
      const masters = this.#vrrp?.masters() ?? [];
      let releaseVips = (): void => undefined;
      const hold = new Promise<void>((resolve) => { releaseVips = resolve; });
      const vrrpStopped = this.#vrrp?.stop(hold);
      const advertS = Math.max(1, ...this.#config.vrrp_instance.map((i) => i.advert_int));
      await this.#vrrp?.peersTookOver(masters, (3 * advertS + 1) * 1000);
      if (masters.length > 0) await new Promise((r) => setTimeout(r, 100)); // let the peer's GARPs land
      await this.#lvs?.stop();
      releaseVips();
      await Promise.all([vrrpStopped, this.#sync?.close()]);
      await this.#statics?.remove();
      // A last alert ("Stopping") gets a short while to go out; stop never waits on a dead relay.
      await this.#mailer?.flush(2_000);
      await this.#control?.close();
      await this.#metrics?.close();
      for (const s of this.#packetSockets.values()) s.close();
      this.#rtnl?.close();
      if (this.pidFile) { try { unlinkSync(this.pidFile); } catch { /* not written */ } }
      this.opts.log.info('keepalive-ts stopped');
    })();
    return this.#stopping;
  }
}

function staticEntries(c: Config): RouteSetEntries {
  return { addresses: c.global.static_ipaddress_parsed, routes: c.global.static_routes_parsed, rules: c.global.static_rules_parsed };
}
