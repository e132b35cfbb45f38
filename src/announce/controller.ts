/**
 * The announcement controller (shell, wiring): feeds the facts (quorum and serving per virtual
 * server, VRRP ownership, link state, stopping) to the pure decision (desired.ts), puts the
 * resulting host routes in the kernel table (routes.ts) for BIRD to export, supervises BIRD
 * (bird.ts) with the generated config (bird-config.ts), and reports sessions and prefixes.
 *
 * Order of effects, so that "announced" always implies "served":
 *   - a withdrawal deletes the route first; only then is the daemon told that serving changed
 *     (onServeChange), so the data plane unserves/drains after the router stopped sending;
 *   - an announcement needs the data plane to serve first: serve is decided on quorum, the
 *     manager reports `serving`, and the next update adds the route.
 * Updates are coalesced and run one at a time; nothing here is awaited by the VRRP loop.
 */
import type { Logger } from 'pino';
import type { Config, ReloadPlan } from '../config/index.js';
import type { Rtnl, RtnlWatcher, LinkEvent } from '../net/rtnl.js';
import type { BgpPrefixStatus, BgpSessionStatus, BgpStatusReport } from '../daemon/status.js';
import { errorMessage } from '../util/errors.js';
import type { ServiceKey } from '../util/endpoint.js';
import { birdConfig, peerProtocolName } from './bird-config.js';
import { BirdSupervisor, findBird, type BirdBinaries } from './bird.js';
import { decideAnnouncements, serveDecision, WITHDRAW_KINDS, type PrefixDecision, type ServiceFacts, type StopPhase, type WithdrawKind } from './desired.js';
import { RouteAnnouncer } from './routes.js';

export interface AnnounceDeps {
  rtnl: Rtnl;
  log: Logger;
  /** Current quorum/serving per virtual server and the VRRP instances that own their VIPs. */
  facts(): { services: ReadonlyMap<ServiceKey, ServiceFacts>; masters: ReadonlySet<string> };
  /** Serve decisions changed: the daemon re-evaluates ownership (lvs.setOwnership). */
  onServeChange(): void;
  /** Found once by the daemon (findBird); tests may pass their own. */
  binaries?: BirdBinaries;
}

interface PrefixRecord {
  announced: boolean;
  since: number;
  lastWithdrawal: { reason: string; at: number } | null;
}

/** How long stop() waits for BIRD to have withdrawn everything from every established session. */
const WITHDRAW_CONFIRM_MS = 2000;
/** Then this long for the router to apply the withdrawal (it takes a few ms; docs/bgp.md). */
const WITHDRAW_SETTLE_MS = 100;
/** The kernel table is reconciled at least this often, changes or not. */
const RECONCILE_MS = 10_000;

export class AnnounceController {
  #config: Config;
  readonly #bird: BirdSupervisor;
  readonly #routes: RouteAnnouncer;
  readonly #binaries: BirdBinaries;
  #watcher: RtnlWatcher | undefined;
  /** Tracked interface name -> link up. */
  #links = new Map<string, boolean>();
  #stopping: StopPhase = 'no';
  #decisions: PrefixDecision[] = [];
  readonly #records = new Map<string, PrefixRecord>();
  readonly #withdrawals = Object.fromEntries(WITHDRAW_KINDS.map((k) => [k, 0])) as Record<WithdrawKind, number>;
  #running: Promise<void> | undefined;
  #reconcile: NodeJS.Timeout | undefined;
  #dirty = false;
  #closed = false;

  private constructor(config: Config, private readonly deps: AnnounceDeps, binaries: BirdBinaries) {
    this.#config = config;
    this.#binaries = binaries;
    const bgp = config.bgp!;
    this.#bird = new BirdSupervisor({ runtimeDir: bgp.runtime_dir, binaries, log: deps.log.child({ component: 'bird' }), onChange: () => undefined });
    this.#routes = new RouteAnnouncer(deps.rtnl, bgp.kernel_table, bgp.kernel_protocol, deps.log);
  }

  /** Checks for BIRD (E_BIRD_MISSING), starts it and the link watch, and withdraws stray routes. */
  static async start(config: Config, deps: AnnounceDeps): Promise<AnnounceController> {
    const binaries = deps.binaries ?? findBird();
    const c = new AnnounceController(config, deps, binaries);
    await c.#start();
    return c;
  }

  async #start(): Promise<void> {
    const bgp = this.#config.bgp!;
    // Nothing is announced before the first decision: routes a killed run left behind go now.
    await this.#routes.apply([]);
    this.#watcher = this.deps.rtnl.watch();
    this.#watcher.on('link', (ev: LinkEvent) => this.#onLink(ev));
    this.#watcher.on('error', (err) => {
      // Notifications were lost (buffer overrun): read the tracked links again.
      this.deps.log.warn({ err: err.message }, 'link watch error; re-reading tracked links');
      void this.#resolveTracked().then(() => this.update(), () => undefined);
    });
    await this.#resolveTracked();
    await this.#bird.start(birdConfig(bgp, { sourceFile: this.#config.file }));
    this.update();
    // A route someone else deleted (or added) in the table is put right within RECONCILE_MS.
    this.#reconcile = setInterval(() => this.update(), RECONCILE_MS);
    this.#reconcile.unref();
  }

  /** track_interface, or the interfaces the peers are reached through. */
  async #resolveTracked(): Promise<void> {
    const bgp = this.#config.bgp!;
    let names: string[];
    if (bgp.track_interface !== undefined) names = [...bgp.track_interface];
    else {
      names = [];
      for (const p of bgp.peer) {
        const index = await this.deps.rtnl.outputInterface(p.address);
        if (index === null) {
          this.deps.log.warn({ peer: p.address }, 'no route to the BGP peer: its interface is not tracked');
          continue;
        }
        const name = (await this.deps.rtnl.getLink(index)).name;
        if (!names.includes(name)) names.push(name);
      }
    }
    const links = new Map<string, boolean>();
    for (const name of names) {
      links.set(name, await this.deps.rtnl.getLink(name).then((l) => l.up, () => false));
    }
    this.#links = links;
  }

  #onLink(ev: LinkEvent): void {
    if (!this.#links.has(ev.name)) return;
    const up = ev.up && !ev.removed;
    if (this.#links.get(ev.name) === up) return;
    this.#links.set(ev.name, up);
    this.deps.log.warn({ interface: ev.name, up }, `tracked interface ${ev.name} ${up ? 'has link again' : 'lost link'}`);
    this.update();
  }

  /** Recomputes the decisions and applies them (coalesced; runs one at a time). */
  update(): void {
    if (this.#closed) return;
    this.#dirty = true;
    this.#running ??= this.#loop().finally(() => (this.#running = undefined));
  }

  async #loop(): Promise<void> {
    while (this.#dirty && !this.#closed) {
      this.#dirty = false;
      try {
        await this.#applyOnce();
      } catch (err) {
        this.deps.log.error({ err: errorMessage(err) }, 'cannot apply the BGP announcements');
      }
    }
  }

  async #applyOnce(): Promise<void> {
    const f = this.deps.facts();
    const linksDown = [...this.#links].filter(([, up]) => !up).map(([n]) => n);
    const decisions = decideAnnouncements(this.#config, { services: f.services, masters: f.masters, stopping: this.#stopping, linksDown });
    const serveChanged = JSON.stringify(this.#decisions.map((d) => [d.address, d.serve])) !== JSON.stringify(decisions.map((d) => [d.address, d.serve]));
    await this.#routes.apply(decisions.filter((d) => d.announce).map((d) => ({ prefix: d.prefix, family: d.family })));
    this.#record(decisions);
    this.#decisions = decisions;
    if (serveChanged) this.deps.onServeChange();
  }

  #record(decisions: readonly PrefixDecision[]): void {
    const now = Date.now();
    const seen = new Set<string>();
    for (const d of decisions) {
      seen.add(d.prefix);
      const r = this.#records.get(d.prefix);
      if (!r) {
        this.#records.set(d.prefix, { announced: d.announce, since: now, lastWithdrawal: null });
        continue;
      }
      if (r.announced === d.announce) continue;
      r.announced = d.announce;
      r.since = now;
      if (!d.announce) {
        r.lastWithdrawal = { reason: d.reason, at: now };
        this.#withdrawals[d.withdrawKind ?? 'removed']++;
        this.deps.log.warn({ prefix: d.prefix, reason: d.reason }, `BGP: ${d.prefix} ${d.reason}`);
      } else {
        this.deps.log.info({ prefix: d.prefix, reason: d.reason }, `BGP: ${d.prefix} ${d.reason}`);
      }
    }
    for (const [prefix, r] of this.#records) {
      if (seen.has(prefix)) continue;
      if (r.announced) this.#withdrawals.removed++;
      this.#records.delete(prefix);
    }
  }

  /**
   * Whether this director serves `address`: for addresses announced in "healthy" mode, the decision
   * (false until the first one); undefined for the others (VRRP ownership decides).
   */
  serves(address: string): boolean | undefined {
    const decided = serveDecision(this.#decisions, address);
    if (decided !== undefined) return decided;
    return this.#config.virtual_server.some((vs) => vs.announce === 'healthy' && vs.members.some((m) => m.match.kind === 'addr' && m.match.address === address)) ? false : undefined;
  }

  /**
   * Graceful stop: withdraws the "healthy" addresses (phase 'healthy': at once) or every address
   * (phase 'all': once the VRRP peers have taken over the "master" ones), waits (up to 2 s) until
   * BIRD has withdrawn them from every established session, then 100 ms for the routers. Serving is
   * left alone: the daemon drains afterwards.
   */
  async withdraw(phase: Exclude<StopPhase, 'no'>): Promise<void> {
    if (this.#stopping === 'all') return;
    const announced = (): number => this.#decisions.filter((d) => d.announce).length;
    await this.#settled();
    const before = announced();
    this.#stopping = phase;
    this.update();
    await this.#settled();
    if (announced() === before) return; // nothing was withdrawn in this phase
    const t0 = Date.now();
    while (this.#bird.running && Date.now() - t0 < WITHDRAW_CONFIRM_MS) {
      await this.#bird.refresh();
      const peers = this.#bird.snapshot().protocols.filter((p) => p.proto === 'BGP' && p.bgp?.state === 'Established');
      if (peers.every((p) => p.channels.every((c) => (c.exported ?? 0) === 0))) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    this.deps.log.info({ ms: Date.now() - t0, phase }, 'BGP announcements withdrawn');
    await new Promise((r) => setTimeout(r, WITHDRAW_SETTLE_MS));
  }

  /** Whether some "master" address is announced now (the graceful stop then waits for the new MASTER). */
  announcesMasterMode(): boolean {
    return this.#decisions.some((d) => d.mode === 'master' && d.announce);
  }

  /** Resolves once no update is pending or running. */
  async #settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /**
   * Applies the [bgp] and announcement part of a reload: regenerates bird.conf and `birdc
   * configure` (BIRD restarts only the changed protocols), re-resolves the tracked interfaces, and
   * recomputes the announcements for the new virtual servers.
   */
  async applyReload(plan: ReloadPlan, next: Config): Promise<void> {
    this.#config = next;
    if (plan.bgp) {
      await this.#resolveTracked();
      await this.#bird.configure(birdConfig(next.bgp!, { sourceFile: next.file }));
    }
    this.update();
    await this.#settled();
  }

  /** Fresh BIRD status (the control socket's `status`). */
  async refresh(): Promise<void> {
    await this.#bird.refresh();
  }

  status(): BgpStatusReport {
    const bgp = this.#config.bgp!;
    const snap = this.#bird.snapshot();
    const now = Date.now();
    const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
    const sessions: BgpSessionStatus[] = bgp.peer.map((p) => {
      const proto = snap.running ? snap.protocols.find((x) => x.name === peerProtocolName(p.address)) : undefined;
      const state = proto?.bgp?.state || (proto ? proto.state : 'Down');
      const established = state === 'Established';
      const bfd = p.bfd ? (snap.bfd.find((s) => s.address === p.address)?.state ?? null) : null;
      return {
        peer: p.address,
        remote_as: p.remote_as,
        protocol: peerProtocolName(p.address),
        state,
        established,
        since: iso(proto?.since ?? null),
        uptime_s: established && proto?.since != null ? Math.max(0, Math.round((now - proto.since) / 1000)) : null,
        info: proto ? proto.info : snap.running ? 'not in BIRD yet' : 'BIRD is not running',
        last_error: proto?.bgp?.lastError ?? null,
        bfd,
        exported: established ? (proto?.channels.reduce((n, c) => n + (c.exported ?? 0), 0) ?? null) : null,
      };
    });
    const prefixes: BgpPrefixStatus[] = this.#decisions.map((d) => {
      const r = this.#records.get(d.prefix);
      return {
        prefix: d.prefix,
        mode: d.mode,
        announced: r?.announced ?? false,
        reason: d.reason,
        since: new Date(r?.since ?? now).toISOString(),
        last_withdrawal: r?.lastWithdrawal ? { reason: r.lastWithdrawal.reason, at: new Date(r.lastWithdrawal.at).toISOString() } : null,
      };
    });
    return {
      local_as: bgp.local_as,
      router_id: bgp.router_id ?? null,
      bird: {
        running: snap.running,
        pid: snap.pid,
        version: this.#binaries.version,
        restarts: snap.restarts,
        last_error: snap.lastError,
        config_file: this.#bird.configFile,
        control_socket: this.#bird.controlSocket,
      },
      tracked_interfaces: [...this.#links].map(([name, up]) => ({ name, up })),
      sessions,
      prefixes,
      withdrawals: { ...this.#withdrawals },
    };
  }

  /** Withdraws what is left, stops BIRD (Cease to the peers) and the link watch. Idempotent. */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#stopping = 'all';
    this.update();
    await this.#settled();
    this.#closed = true;
    clearInterval(this.#reconcile);
    this.#watcher?.close();
    await this.#routes.apply([]).catch((err: unknown) => this.deps.log.warn({ err: errorMessage(err) }, 'cannot delete the announcement routes'));
    await this.#bird.stop();
  }
}
