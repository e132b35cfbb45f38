/**
 * NftablesDataplane: the kernel data plane (lb_kind DR, NAT, FULLNAT) behind the Dataplane
 * contract. The desired state lives here; ruleset.ts builds the objects, model.ts plans one
 * transaction per change, the transport (libnftables through the addon, on the libuv thread
 * pool) applies it, counters.ts reads the kernel's figures back.
 *
 * Changes that arrive while a transaction is in flight are coalesced into the next one, so a
 * burst of pool changes costs one or two transactions, never a queue. A failed transaction
 * changes nothing in the kernel (nftables batches are atomic) and nothing here: the calls that
 * asked for it reject, the previous state stays.
 */
import { readFile } from 'node:fs/promises';
import { monotonicMs } from '../../../util/clock.js';
import { endpointText, type Endpoint, type ServiceKey } from '../../../util/endpoint.js';
import { KeepaliveError, errorMessage } from '../../../util/errors.js';
import { conntrackCountByMark, conntrackDeleteByMark } from '../../../net/native.js';
import type {
  AddressClaim,
  ConnEntry,
  ConnectionEvent,
  ConnectionSnapshot,
  ConnectionState,
  DataplaneStats,
  DestStats,
  LbKind,
  PoolSpec,
  RestoreEntry,
  ServiceSpec,
  ServiceStats,
  TemplateEntry,
  UdpFlowEntry,
} from '../contract.js';
import { claimedBy, claimSet, claimStep, cutAfterDrain } from './cut.js';
import { flowKeyFields, flowsOf, rawKey, restoreFlows, restoreTemplates, templatesOf } from './conn-state.js';
import { diffTables, indexRows, type ElementRow, type TableDump, type TableEntry } from './elements.js';
import { DataplaneLifecycle } from '../lifecycle.js';
import { maglevTable } from '../../maglev.js';
import { countFlows, parseMapEntries, type ActiveCounts, type PacketBytes } from './counters.js';
import { systemFacts, type DirectorFacts } from './facts.js';
import { IdRegistry } from './ids.js';
import { isOurTable, planTransaction, shardTable, tablesOf, type Model, type NftFamily } from './model.js';
import { reweight } from './reweight.js';
import {
  assignShards,
  buildModel,
  DEFAULT_LIMITS,
  dynamicNames,
  isControlLoopScheduler,
  names,
  type Maglev,
  type NftDest,
  type NftLimits,
  type NftServiceInput,
  type ServiceBuild,
  type ServicePhase,
} from './ruleset.js';
import { LibnftablesTransport, parseJsonDocuments, type NftTransport } from './transport.js';

export const NFT_KINDS: readonly LbKind[] = ['DR', 'NAT', 'FULLNAT'];

export interface NftablesOptions {
  /** Default: libnftables through the addon. */
  transport?: NftTransport;
  facts?: DirectorFacts;
  limits?: Partial<NftLimits>;
  /** Maglev table builder for mh (slot -> index into dests). */
  maglev?: Maglev;
  /**
   * Interfaces where client traffic arrives for DR services whose VIP is on no interface of this
   * director (BGP-announced addresses) and for DR fwmark services; default: the interfaces that
   * hold the DR services' VIPs (fwmark services: of the DR address services being served, else
   * the interfaces facing their own real servers). A function is asked each time a DR service
   * starts serving (the daemon's: the interfaces the BGP peers are reached through).
   */
  ingress?: readonly string[] | (() => readonly string[]);
  /** Diagnostics that concern no call (a poll that failed, a drain that could not be applied). */
  log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
  /**
   * Connection sync of the DR connection tables: how often they are dumped and compared while
   * someone subscribes to onEvent (ms). Default 100 (the lag budget of a takeover); a dump that
   * takes long stretches the period so reading stays under ~20 % of the time.
   */
  syncPollMs?: number;
  /** Connection-event batching the daemon asks for (ms): the DR poll period when syncPollMs is not given (at least 50). */
  eventBatchMs?: number;
  /**
   * NAT/FULLNAT connections are replicated to the peer director by conntrackd ([sync.conntrackd]).
   * Then a TCP packet without SYN that conntrack does not know is dropped, not scheduled (limits
   * natMidstreamDrop, implied), and a NAT service that stops being served here (unserve: the VIP
   * moved to the peer, or this director stops) keeps its conntrack entries and its VIP:port guard:
   * its connections live on at the peer. Deleting them would be replicated too — conntrackd sends
   * every kernel deletion to the peer, whose external cache drops the entries; when that reaches
   * the peer before its commit (a preempting master commits right after its VIPs are up, while
   * the old master unserves on hearing its advert), the new master never learns the connections
   * and drops their packets for good. The entries left here expire through conntrackd (`-t` on
   * BACKUP); a service removed from the configuration still has its connections ended (that
   * deletion is meant to reach the peer).
   */
  conntrackReplicated?: boolean;
  /** Deletes conntrack entries by mark (a NAT service's connections when its drain ends); default: the addon. */
  conntrackDelete?: (marks: readonly number[]) => Promise<void>;
  /** Conntrack counts by mark (NAT ActiveConn/InActConn); default: one ctnetlink dump through the addon. */
  conntrack?: (marks: readonly number[]) => Promise<{ counts: Map<number, ActiveCounts>; entries: number }>;
  now?: () => number;
}

/**
 * A destination that left a DR pool: its established flows keep being forwarded to it (IPVS
 * forwards a removed destination's connections until they end) until the poll finds none of
 * them in the connection table any more.
 */
interface Retired {
  dest: NftDest;
  since: number;
}

interface SvcState {
  readonly spec: ServiceSpec;
  readonly name: string;
  readonly phase: ServicePhase;
  readonly dests: readonly NftDest[];
  readonly sorry: NftDest | null;
  readonly retired: readonly Retired[];
  readonly counterIds: ReadonlySet<number>;
  readonly ingress: readonly string[];
  readonly schedWeights?: ReadonlyMap<number, number>;
  /** Removed by configure(): goes when the drain ends. */
  readonly removing?: number;
  /** Drain end of an unserve. */
  readonly drainUntil?: number;
  /**
   * Until then the service's VIP:port is not guarded on local input: connections still talking
   * after a drain ended are reset by the local stack (as IPVS does), instead of being held for
   * the next takeover (ruleset.ts g_vipin).
   */
  readonly cutUntil?: number;
  /**
   * This director is taking the service's address over (claim(): VRRP MASTER, before its VIPs
   * go up): no cut window, now or when a drain in progress ends (cut.ts). Cleared by serve and
   * unserve.
   */
  readonly claimed?: boolean;
  /** The builder input made from this state (identity = build cache key). */
  input?: NftServiceInput;
}

interface Pending {
  resolve: () => void;
  reject: (err: unknown) => void;
  at: number;
}

/** Lines added to the next transaction after the plan (restored entries), computed against the committed-to-be state. */
type Extra = (state: ReadonlyMap<ServiceKey, SvcState>) => Promise<string[]>;

/** Latency figures of the last transactions (ms from the change request to the kernel commit). */
class LatencyWindow {
  readonly #values: number[] = [];
  /** Change requests committed (each counted once, however many shared a transaction). */
  count = 0;
  /** Transactions sent to the kernel. */
  transactions = 0;
  failures = 0;
  max = 0;
  last = 0;
  add(ms: number): void {
    this.count++;
    this.last = ms;
    if (ms > this.max) this.max = ms;
    this.#values.push(ms);
    if (this.#values.length > 512) this.#values.shift();
  }
  quantile(q: number): number {
    if (this.#values.length === 0) return 0;
    const s = [...this.#values].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  }
}

/** The shared Maglev table (src/lvs/maglev.ts) over the destinations' endpoint keys, as the proxy's mh builds it. */
const sharedMaglev: Maglev = (dests, size, seed) => maglevTable(dests.map((d) => ({ key: d.key ?? String(d.id), weight: d.weight })), size, seed);

/** Figures of the DR connection-table dumps behind connection events (stats.extra sync_*). */
interface SyncPollStats {
  polls: number;
  lastMs: number;
  maxMs: number;
  totalMs: number;
  entries: number;
  events: number;
  /** DR connections that cannot be synced (IPv6 keys hold only the low address bits). */
  unsyncable: number;
  restoredConns: number;
  /** Smoothed dump time (EWMA, 1/4 weight to the last poll), ms. */
  avgMs: number;
}

export class NftablesDataplane extends DataplaneLifecycle implements ConnectionState, AddressClaim {
  readonly name = 'nftables';
  readonly kinds = NFT_KINDS;

  readonly #transport: NftTransport;
  readonly #facts: DirectorFacts;
  readonly #limits: NftLimits;
  readonly #maglev: Maglev;
  readonly #ingressOpt: NftablesOptions['ingress'];
  readonly #log: NonNullable<NftablesOptions['log']>;
  readonly #conntrack: NonNullable<NftablesOptions['conntrack']>;
  readonly #conntrackDelete: NonNullable<NftablesOptions['conntrackDelete']>;
  /** NftablesOptions.conntrackReplicated. */
  readonly #replicated: boolean;
  readonly #now: () => number;
  readonly #ids = new IdRegistry();
  readonly #cache = new WeakMap<NftServiceInput, ServiceBuild>();
  readonly #routes = new Map<string, { device: string; onLink: boolean; gateway?: string; local: boolean }>();
  /** applyPool calls per service, in call order: only the newest one's pool is applied. */
  readonly #poolSeq = new Map<ServiceKey, number>();

  #state = new Map<ServiceKey, SvcState>();
  /** Shard table of each service by name (ruleset.ts assignShards), as committed. */
  #shards: ReadonlyMap<string, number> = new Map();
  #model: Model | null = null;
  #builds: ReadonlyMap<string, ServiceBuild> = new Map();
  #started = false;
  #closed = false;

  /** Mutations waiting for the next transaction. */
  #pending: Array<{ mutate: (s: Map<ServiceKey, SvcState>) => void; extra?: Extra; p: Pending }> = [];
  readonly #subscribers = new Set<(events: readonly ConnectionEvent[]) => void>();
  /** Templates last reported to subscribers: "service client" -> dest key and expiry (ms, absolute). */
  #reported = new Map<string, { dest: string; expiresAt: number }>();
  // DR connection sync: the previous dump per table, the poll timer, figures.
  readonly #syncPollMs: number;
  #syncTimer: NodeJS.Timeout | undefined;
  #syncBusy = false;
  #syncPrev = new Map<string, TableDump>();
  readonly #syncStats: SyncPollStats = { polls: 0, lastMs: 0, maxMs: 0, totalMs: 0, entries: 0, events: 0, unsyncable: 0, restoredConns: 0, avgMs: 0 };
  #running = false;
  #timers = new Set<NodeJS.Timeout>();
  #poll: NodeJS.Timeout | undefined;

  readonly #latency = new LatencyWindow();
  #active = new Map<number, ActiveCounts>();
  #activeKnown = new Set<string>(); // service names whose counts are known
  #lastPollMs = 0;
  #lastConns = new Map<string, number>();
  /** New connections per control-loop period, last measured, by service name (lc, wlc…). */
  #lastRate = new Map<string, number>();
  #connEntries = 0;
  #persistEntries = 0;
  #conntrackEntries: number | null = null;
  #conntrackMax: number | null = null;
  #conntrackProblem: string | undefined;

  constructor(opts: NftablesOptions = {}) {
    super();
    this.#transport = opts.transport ?? new LibnftablesTransport();
    this.#facts = opts.facts ?? systemFacts;
    this.#limits = { ...DEFAULT_LIMITS, ...opts.limits, ...(opts.conntrackReplicated ? { natMidstreamDrop: true } : {}) };
    this.#replicated = opts.conntrackReplicated === true;
    this.#maglev = opts.maglev ?? sharedMaglev;
    this.#ingressOpt = opts.ingress;
    this.#log = opts.log ?? (() => undefined);
    this.#conntrack = opts.conntrack ?? conntrackCountByMark;
    this.#conntrackDelete = opts.conntrackDelete ?? conntrackDeleteByMark;
    this.#now = opts.now ?? Date.now;
    this.#syncPollMs = Math.max(10, opts.syncPollMs ?? Math.max(50, opts.eventBatchMs ?? 100));
  }

  // ----------------------------------------------------------------------------------------------
  // Contract

  protected override checkService(spec: ServiceSpec): string | null {
    if (spec.kind !== 'DR' && spec.ops) return `one-packet scheduling (ops) is not available with lb_kind ${spec.kind} on nftables (conntrack binds every UDP flow); use DR or PROXY`;
    return null;
  }

  protected async applyConfigure(services: readonly ServiceSpec[]): Promise<void> {
    const keys = new Set<string>(services.map((s) => s.key));
    // NAT / FULLNAT forward through this host: IP forwarding must be on (checked, never set: on IPv6
    // turning it on stops the host from accepting router advertisements).
    for (const family of [4, 6] as const) {
      const need = services.filter((s) => s.kind !== 'DR' && s.match.family === family);
      if (need.length && !(await this.#facts.forwarding(family))) {
        const key = family === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding';
        throw new KeepaliveError(
          'E_DATAPLANE_UNAVAILABLE',
          `${need[0]!.key}: lb_kind ${need[0]!.kind} needs IP forwarding, but ${key} is 0 on this director; set it (sysctl -w ${key}=1, and in /etc/sysctl.d/ to keep it)`,
        );
      }
    }
    // Exactly the services committed already, the very same specs (a reload that changed none of
    // them here): no transaction. Checked against the committed state, not the caller's, so a
    // configure whose transaction failed is tried again.
    if (this.#started && !this.#running && this.#pending.length === 0 && this.#sameAsCommitted(services)) return;
    const now = this.#now();
    await this.#change((st) => {
      for (const spec of services) {
        const cur = st.get(spec.key);
        if (!cur) {
          st.set(spec.key, { spec, name: this.#ids.serviceName(spec.key), phase: 'idle', dests: [], sorry: null, retired: [], counterIds: new Set(), ingress: [] });
        } else if (cur.spec !== spec || cur.removing !== undefined) {
          const { removing: _r, input: _i, ...rest } = cur;
          st.set(spec.key, { ...rest, spec, ...(cur.removing !== undefined ? { phase: 'idle' as const } : {}) });
        }
      }
      for (const [key, cur] of st) {
        if (keys.has(key) || cur.removing !== undefined) continue;
        if (cur.phase === 'idle' || cur.spec.drainMs <= 0) st.delete(key);
        else {
          const until = now + cur.spec.drainMs;
          st.set(key, { ...cur, input: undefined, phase: 'draining', removing: until });
          this.#at(until);
        }
      }
    });
  }

  #sameAsCommitted(services: readonly ServiceSpec[]): boolean {
    let live = 0;
    for (const s of this.#state.values()) if (s.removing === undefined) live++;
    if (live !== services.length) return false;
    for (const spec of services) {
      const cur = this.#state.get(spec.key);
      if (!cur || cur.spec !== spec || cur.removing !== undefined) return false;
    }
    return true;
  }

  protected async applyPool(spec: ServiceSpec, pool: PoolSpec): Promise<void> {
    const key = spec.key;
    // Pools of one service can overlap (the manager does not wait for one before the next, and the
    // route look-ups below take their own time): the last one handed over wins, whichever finishes
    // its look-ups first. (Without this a one-server pool could land after the full one and stay:
    // with mh, a Maglev table unlike the other directors'.)
    const seq = (this.#poolSeq.get(key) ?? 0) + 1;
    this.#poolSeq.set(key, seq);
    const dests: NftDest[] = [];
    for (const d of pool.dests) dests.push(await this.#dest(spec, 'rs', d.endpoint, d.weight));
    const sorry = pool.sorry ? await this.#dest(spec, 'sorry', pool.sorry, 1) : null;
    const now = this.#now();
    await this.#change((st) => {
      const s = st.get(key);
      if (!s || this.#poolSeq.get(key) !== seq) return;
      const keep = new Set([...dests, ...(sorry ? [sorry] : [])].map((d) => d.id));
      const retired = s.retired.filter((r) => !keep.has(r.dest.id));
      if (spec.kind === 'DR') {
        for (const d of [...s.dests, ...(s.sorry ? [s.sorry] : [])]) {
          if (!keep.has(d.id) && !retired.some((r) => r.dest.id === d.id)) retired.push({ dest: d, since: now });
        }
      }
      const counterIds = new Set(s.counterIds);
      for (const id of keep) counterIds.add(id);
      // lc, wlc…: a new pool is weighted from the last counts at once (a server that comes back
      // has none), not with the configured weights until the next control-loop period.
      const loop = isControlLoopScheduler(spec.scheduler) && this.#activeKnown.has(s.name)
        ? reweight(spec.scheduler, dests.map((d) => ({ id: d.id, weight: d.weight, active: this.#active.get(d.id)?.active ?? 0, inactive: this.#active.get(d.id)?.inactive ?? 0 })), this.#lastRate.get(s.name) ?? 1)
        : null;
      const { schedWeights: _w, ...rest } = s;
      st.set(key, { ...rest, input: undefined, dests, sorry, retired, counterIds, ...(loop ? { schedWeights: loop } : s.schedWeights ? { schedWeights: s.schedWeights } : {}) });
    });
  }

  protected async applyServe(spec: ServiceSpec): Promise<void> {
    const key = spec.key;
    const cur = this.#get(key);
    let ingress: string[] = [];
    if (cur.spec.kind === 'DR') {
      ingress = await this.#ingressOf(cur.spec);
      if (ingress.length === 0) {
        throw new KeepaliveError('E_SOCKET', `${key}: no interface holds ${cur.spec.match.kind === 'addr' ? cur.spec.match.address : 'the VIPs of the DR services'} yet (DR forwards from the interface where client traffic arrives)`);
      }
    }
    await this.#change((st) => {
      const s = st.get(key);
      if (!s) return;
      const { drainUntil: _d, cutUntil: _c, claimed: _k, ...rest } = s;
      st.set(key, { ...rest, input: undefined, phase: 'serving', ingress: ingress.length ? ingress : s.ingress });
    });
  }

  protected async applyUnserve(spec: ServiceSpec, drainMs: number): Promise<void> {
    const key = spec.key;
    const until = this.#now() + Math.max(0, drainMs);
    await this.#change((st) => {
      const cur = st.get(key);
      if (!cur || cur.phase === 'idle') return;
      // The address is gone from this director: a claim of it is over.
      const { claimed: _k, ...s } = cur;
      if (drainMs <= 0) {
        const cutUntil = cutAfterDrain(s, this.#now(), this.#keepsConnections(s.spec));
        st.set(key, { ...s, input: undefined, phase: 'idle', ...(cutUntil !== undefined ? { cutUntil } : {}) });
        if (cutUntil !== undefined) this.#at(cutUntil);
      } else {
        st.set(key, { ...s, input: undefined, phase: 'draining', drainUntil: until });
        this.#at(until);
      }
    });
  }

  /**
   * This director is taking `addresses` over (VRRP MASTER, before the VIPs go up): the services
   * on them hold established connections from now on (their VIP:port input guard is in place: a
   * cut window ends, a drain in progress will end without one), so a packet that reaches the
   * local stack between the VIP add and the serve transaction is dropped and resent, not reset.
   * Resolves once that is committed; at once when nothing on them is cut or draining.
   */
  claimPending(addresses: readonly string[]): boolean {
    if (this.#closed || this.isClosed || addresses.length === 0) return false;
    const set = claimSet(addresses);
    const concerns = (s: SvcState) => s.removing === undefined && claimedBy(s.spec.match, set) && claimStep(s) !== null;
    // Nothing queued that could open a window, and none open: nothing to wait for.
    return this.#running || this.#pending.length > 0 || [...this.#state.values()].some(concerns);
  }

  async claim(addresses: readonly string[]): Promise<void> {
    if (!this.claimPending(addresses)) return;
    const set = claimSet(addresses);
    const concerns = (s: SvcState) => s.removing === undefined && claimedBy(s.spec.match, set) && claimStep(s) !== null;
    await this.#change((st) => {
      for (const [key, s] of st) {
        if (!concerns(s)) continue;
        const { cutUntil, ...rest } = s;
        // Only a window that ends changes the rules (the builder input); the mark alone does not.
        st.set(key, cutUntil === undefined ? { ...rest, claimed: true } : { ...rest, input: undefined, claimed: true });
      }
    });
  }

  protected async collectStats(): Promise<DataplaneStats> {
    const counters = await this.#readCounters();
    const services: ServiceStats[] = [];
    let full = 0;
    for (const s of this.#state.values()) {
      if (s.removing !== undefined) continue;
      const F: NftFamily = s.spec.kind === 'DR' ? 'netdev' : 'inet';
      const n = names(s.name);
      const get = (name: string): PacketBytes => counters.get(`${F} ${name}`) ?? { packets: 0, bytes: 0 };
      const build = this.#builds.get(s.name);
      const known = this.#activeKnown.has(s.name);
      const destStats = (d: NftDest, sorry: boolean): DestStats => {
        const a = this.#active.get(d.id);
        return {
          key: endpointText(d.endpoint),
          endpoint: d.endpoint,
          weight: d.weight,
          sorry,
          conns: get(n.conns(d.id)).packets,
          in_pkts: get(n.inC(d.id)).packets,
          in_bytes: get(n.inC(d.id)).bytes,
          out_pkts: s.spec.kind === 'DR' ? 0 : get(n.outC(d.id)).packets,
          out_bytes: s.spec.kind === 'DR' ? 0 : get(n.outC(d.id)).bytes,
          active_conns: known ? (a?.active ?? 0) : null,
          inact_conns: known ? (a?.inactive ?? 0) : null,
          connect_errors: 0,
        };
      };
      const dests = s.dests.map((d) => destStats(d, false));
      if (s.sorry) dests.push(destStats(s.sorry, true));
      const tot = { conns: 0, in_pkts: 0, out_pkts: 0, in_bytes: 0, out_bytes: 0 };
      for (const id of s.counterIds) {
        tot.conns += get(n.conns(id)).packets;
        tot.in_pkts += get(n.inC(id)).packets;
        tot.in_bytes += get(n.inC(id)).bytes;
        if (s.spec.kind !== 'DR') {
          tot.out_pkts += get(n.outC(id)).packets;
          tot.out_bytes += get(n.outC(id)).bytes;
        }
      }
      if (s.spec.kind === 'DR') full += get(n.fullCounter).packets;
      const sum = (k: 'active_conns' | 'inact_conns') => (known ? dests.reduce((a, d) => a + (d[k] ?? 0), 0) + s.retired.reduce((a, r) => a + ((k === 'active_conns' ? this.#active.get(r.dest.id)?.active : this.#active.get(r.dest.id)?.inactive) ?? 0), 0) : null);
      services.push({
        key: s.spec.key,
        kind: s.spec.kind,
        serving: s.phase === 'serving',
        draining: s.phase === 'draining',
        sorry: build?.sorryActive ?? false,
        scheduler_in_effect: build?.inEffect ?? s.spec.scheduler,
        ...tot,
        active_conns: sum('active_conns'),
        inact_conns: sum('inact_conns'),
        dropped: get(n.drop).packets,
        dests,
      });
    }
    return {
      services,
      extra: {
        nft_transactions: this.#latency.transactions,
        nft_changes: this.#latency.count,
        nft_transaction_failures: this.#latency.failures,
        nft_transaction_last_ms: round3(this.#latency.last),
        nft_transaction_p50_ms: round3(this.#latency.quantile(0.5)),
        nft_transaction_p99_ms: round3(this.#latency.quantile(0.99)),
        nft_transaction_max_ms: round3(this.#latency.max),
        conn_table_entries: this.#connEntries,
        conn_table_full_total: full,
        persistence_entries: this.#persistEntries,
        ...(this.#conntrackEntries !== null ? { conntrack_entries: this.#conntrackEntries } : {}),
        ...(this.#conntrackMax !== null && Number.isFinite(this.#conntrackMax) ? { conntrack_max: this.#conntrackMax } : {}),
        sync_polls: this.#syncStats.polls,
        sync_poll_last_ms: round3(this.#syncStats.lastMs),
        sync_poll_max_ms: round3(this.#syncStats.maxMs),
        sync_poll_ms_total: round3(this.#syncStats.totalMs),
        // The lag budget of DR connection sync: the current poll period (ms) plus one dump.
        sync_poll_period_ms: round3(Math.max(this.#syncPollMs, 5 * this.#syncStats.avgMs)),
        sync_conn_table_entries: this.#syncStats.entries,
        sync_events: this.#syncStats.events,
        sync_unsyncable: this.#syncStats.unsyncable,
        sync_restored_conns: this.#syncStats.restoredConns,
      },
    };
  }

  // ----------------------------------------------------------------------------------------------
  // Connection state (connection sync)

  /** Destination endpoint of a mark in a service (pool and draining ones; not the sorry server). */
  #destOf(s: SvcState): (id: number) => Endpoint | undefined {
    const m = new Map<number, Endpoint>();
    for (const d of s.dests) m.set(d.id, d.endpoint);
    for (const r of s.retired) if (r.dest.id !== s.sorry?.id) m.set(r.dest.id, r.dest.endpoint);
    return (id) => m.get(id);
  }

  /**
   * Persistence templates of every service and the DR connection tables' IPv4 flows (TCP as
   * connections, UDP with their idle time left). NAT flows live in conntrack and are not listed.
   */
  async snapshot(): Promise<ConnectionSnapshot> {
    this.assertOpen();
    const templates: TemplateEntry[] = [];
    const udpFlows: UdpFlowEntry[] = [];
    const conns: ConnEntry[] = [];
    for (const s of this.#state.values()) {
      if (s.removing !== undefined) continue;
      const F: NftFamily = s.spec.kind === 'DR' ? 'netdev' : 'inet';
      const dyn = dynamicNames(s.spec, s.name, this.#limits);
      const destOf = this.#destOf(s);
      const read = (kind: 'map' | 'set', name: string) => this.#transport.elements(F, kind, name, this.#tableOf(s)).catch(() => []);
      if (dyn.persist) templates.push(...templatesOf(s.spec, await read('map', dyn.persist), destOf));
      if (s.spec.kind === 'DR') {
        for (const f of flowsOf(s.spec, await read('map', dyn.conn), destOf)) {
          const { expiresInMs, ...ref } = f;
          if (f.protocol === 'udp') udpFlows.push({ type: 'udp_flow', ...ref, expiresInMs });
          else conns.push({ type: 'conn', ...ref, expiresInMs });
        }
      }
    }
    return { templates, udpFlows, conns };
  }

  /**
   * Writes synced templates into the persistence tables and UDP flows into the DR connection
   * tables, in the next transaction (so a serve() called after this forwards with them). Entries
   * the tables already hold are kept as they are; entries of unknown services, of destinations
   * this service does not know, and IPv6 flows are skipped.
   */
  restore(entries: readonly RestoreEntry[]): Promise<void> {
    try {
      this.assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    const byService = new Map<ServiceKey, RestoreEntry[]>();
    for (const e of entries) {
      const list = byService.get(e.service) ?? [];
      list.push(e);
      byService.set(e.service, list);
    }
    return this.#change(() => undefined, async (state) => {
      const lines: string[] = [];
      for (const [key, list] of byService) {
        const s = state.get(key);
        if (!s || s.removing !== undefined) continue;
        const F: NftFamily = s.spec.kind === 'DR' ? 'netdev' : 'inet';
        const dyn = dynamicNames(s.spec, s.name, this.#limits);
        const existing = async (name: string) => new Set((await this.#transport.elements(F, 'map', name, this.#tableOf(s)).catch(() => [])).map((e) => String(e.key)));
        const id = (dest: Endpoint) => this.#ids.destId(s.spec.key, 'rs', endpointText(dest));
        const templates = list.filter((e): e is TemplateEntry => e.type === 'template');
        if (dyn.persist && s.spec.persistence && templates.length) {
          const have = await existing(dyn.persist);
          const items = templates.filter((t) => !have.has(rawKey(t.family, [t.client]))).map((t) => ({ client: t.client, id: id(t.dest), expiresInMs: t.expiresInMs }));
          lines.push(...restoreTemplates(F, this.#tableOf(s), dyn.persist, s.spec.persistence.timeoutMs, items));
        }
        // UDP flows, and TCP connections (hitless failover: the new master forwards them to the
        // server the old master chose, whatever its own scheduler would pick now).
        const flows = list.filter((e): e is UdpFlowEntry | ConnEntry => (e.type === 'udp_flow' || e.type === 'conn') && e.client.family === 4);
        if (s.spec.kind === 'DR' && s.spec.match.family === 4 && !s.spec.ops && flows.length) {
          const have = await existing(dyn.conn);
          const fresh = flows.filter((f) => !have.has(rawKey(4, flowKeyFields(s.spec, f.client, f.virtual))));
          for (const [proto, timeoutS] of [['udp', this.#limits.udpTimeoutS], ['tcp', this.#limits.tcpTimeoutS]] as const) {
            const items = fresh
              .filter((f) => (f.type === 'udp_flow' ? 'udp' : f.protocol) === proto)
              .map((f) => ({ client: f.client, virtual: f.virtual, id: id(f.dest), expiresInMs: f.expiresInMs ?? timeoutS * 1000 }));
            if (proto === 'tcp') this.#syncStats.restoredConns += items.length;
            lines.push(...restoreFlows(this.#tableOf(s), dyn.conn, s.spec, timeoutS * 1000, items));
          }
        }
      }
      return lines;
    });
  }

  /**
   * Template events for connection sync: the kernel reports nothing per packet, so the poll
   * (every second, less often when tables are big) reports templates that are new, point at
   * another server, or were refreshed by more than a tenth of their timeout since last reported.
   */
  onEvent(cb: (events: readonly ConnectionEvent[]) => void): () => void {
    this.#subscribers.add(cb);
    this.#scheduleSyncPoll(0);
    return () => {
      this.#subscribers.delete(cb);
      if (this.#subscribers.size === 0) {
        clearTimeout(this.#syncTimer);
        this.#syncTimer = undefined;
        this.#syncPrev.clear();
      }
    };
  }

  /**
   * DR connection events: every syncPollMs the connection tables are dumped and compared with the
   * previous dump (elements.ts): new flows and flows whose timeout changed become conn_new /
   * udp_flow_new with their time left, flows gone become conn_end / udp_flow_expired. Templates
   * come from the slower poll below (#reportTemplates).
   */
  #scheduleSyncPoll(delay: number): void {
    if (this.#syncTimer || this.#subscribers.size === 0 || this.#closed || this.isClosed) return;
    this.#syncTimer = setTimeout(() => {
      this.#syncTimer = undefined;
      // At most ~20 % of the time reading tables, on the smoothed dump time (one slow dump, e.g.
      // behind a garbage collection, does not stretch the period and the lag with it).
      void this.#syncPoll().finally(() => this.#scheduleSyncPoll(Math.max(this.#syncPollMs, 5 * this.#syncStats.avgMs)));
    }, delay);
    this.#syncTimer.unref();
  }

  async #syncPoll(): Promise<void> {
    const rowsOf = (this.#transport as { elementRows?: (f: NftFamily, n: string, table?: string) => Promise<ElementRow[]> }).elementRows?.bind(this.#transport);
    if (!rowsOf || this.#syncBusy || !this.#model) return;
    this.#syncBusy = true;
    const t0 = performance.now();
    const events: ConnectionEvent[] = [];
    const seen = new Set<string>();
    let entries = 0;
    try {
      for (const s of [...this.#state.values()]) {
        if (s.removing !== undefined || s.spec.kind !== 'DR' || s.spec.ops) continue;
        const dyn = dynamicNames(s.spec, s.name, this.#limits);
        const now = this.#now();
        // The dump is where a new flow is first seen: connection sync measures its lag from here.
        const observedAt = monotonicMs();
        const rows = await rowsOf('netdev', dyn.conn, this.#tableOf(s)).catch(() => null);
        if (!rows) continue;
        const k = `${s.name} ${dyn.conn}`;
        seen.add(k);
        entries += rows.length;
        const next = indexRows(rows, now);
        const { upserts, gone } = diffTables(this.#syncPrev.get(k) ?? new Map(), next);
        this.#syncPrev.set(k, next);
        if (s.spec.match.family !== 4) {
          this.#syncStats.unsyncable += upserts.length;
          continue;
        }
        const destOf = this.#destOf(s);
        const asFlows = (list: readonly TableEntry[]) =>
          flowsOf(s.spec, list.map((e) => ({ key: e.key, raw: true, keyText: e.key, value: e.id, expiresS: Math.max(0, e.expiresAt - now) / 1000 })), destOf);
        for (const f of asFlows(upserts)) {
          const { expiresInMs, ...ref } = f;
          events.push(f.protocol === 'udp' ? { ...ref, type: 'udp_flow_new', timeoutMs: expiresInMs, observedAt } : { ...ref, type: 'conn_new', expiresInMs, observedAt });
        }
        for (const f of asFlows(gone)) {
          const { expiresInMs: _e, ...ref } = f;
          events.push(f.protocol === 'udp' ? { ...ref, type: 'udp_flow_expired', observedAt } : { ...ref, type: 'conn_end', inBytes: 0, outBytes: 0, observedAt });
        }
      }
      for (const k of [...this.#syncPrev.keys()]) if (!seen.has(k)) this.#syncPrev.delete(k);
    } finally {
      this.#syncBusy = false;
      const st = this.#syncStats;
      const ms = performance.now() - t0;
      st.polls++;
      st.lastMs = ms;
      st.avgMs = st.polls === 1 ? ms : 0.75 * st.avgMs + 0.25 * ms;
      st.totalMs += ms;
      if (ms > st.maxMs) st.maxMs = ms;
      st.entries = entries;
      st.events += events.length;
    }
    if (events.length === 0) return;
    for (const cb of [...this.#subscribers]) {
      try {
        cb(events);
      } catch (err) {
        this.#log('warn', `nftables: a connection-event listener failed: ${errorMessage(err)}`);
      }
    }
  }

  #reportTemplates(s: SvcState, list: readonly TemplateEntry[], now: number, seen: Set<string>): TemplateEntry[] {
    const out: TemplateEntry[] = [];
    const timeout = s.spec.persistence?.timeoutMs ?? 0;
    for (const t of list) {
      const k = `${t.service} ${t.client}`;
      seen.add(k);
      const dest = endpointText(t.dest);
      const expiresAt = now + t.expiresInMs;
      const last = this.#reported.get(k);
      if (last && last.dest === dest && expiresAt - last.expiresAt < timeout / 10) continue;
      this.#reported.set(k, { dest, expiresAt });
      out.push(t);
    }
    return out;
  }

  // ----------------------------------------------------------------------------------------------
  // Desired state -> transactions

  #get(key: ServiceKey): SvcState {
    const s = this.#state.get(key);
    if (!s || s.removing !== undefined) throw new KeepaliveError('E_CONFIG_INVALID', `nftables data plane: unknown virtual service ${key}`);
    return s;
  }

  /** Queues a mutation; resolves once a transaction containing it is committed. */
  #change(mutate: (s: Map<ServiceKey, SvcState>) => void, extra?: Extra): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ mutate, ...(extra ? { extra } : {}), p: { resolve, reject, at: performance.now() } });
      void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending;
        this.#pending = [];
        const draft = new Map(this.#state);
        const ok: typeof batch = [];
        for (const b of batch) {
          try {
            b.mutate(draft);
            ok.push(b);
          } catch (err) {
            b.p.reject(err);
          }
        }
        try {
          await this.#commit(draft, ok.flatMap((b) => (b.extra ? [b.extra] : [])));
          const t = performance.now();
          for (const b of ok) {
            this.#latency.add(t - b.p.at);
            b.p.resolve();
          }
        } catch (err) {
          this.#latency.failures++;
          for (const b of ok) b.p.reject(err);
        }
      }
    } finally {
      this.#running = false;
    }
  }

  /** Expires drains and retired destinations, then builds and applies `draft`; commits it on success. */
  async #commit(draft: Map<ServiceKey, SvcState>, extras: readonly Extra[] = []): Promise<void> {
    const now = this.#now();
    for (const [key, s] of draft) {
      if (s.removing !== undefined && s.removing <= now) {
        draft.delete(key);
        continue;
      }
      let next = s;
      if (s.drainUntil !== undefined && s.drainUntil <= now && s.phase === 'draining' && s.removing === undefined) {
        const { drainUntil: _d, ...rest } = s;
        const cutUntil = cutAfterDrain(s, now, this.#keepsConnections(s.spec));
        next = { ...rest, input: undefined, phase: 'idle', ...(cutUntil !== undefined ? { cutUntil } : {}) };
        if (cutUntil !== undefined) this.#at(cutUntil);
      }
      if (next.cutUntil !== undefined && next.cutUntil <= now) {
        const { cutUntil: _c, ...rest } = next;
        next = { ...rest, input: undefined };
      }
      if (next !== s) draft.set(key, next);
    }
    const shards = assignShards([...draft.values()].map((s) => s.name), this.#shards);
    const inputs: NftServiceInput[] = [];
    for (const s of draft.values()) {
      const shard = shards.get(s.name) ?? 0;
      if (s.input && (s.input.shard ?? 0) !== shard) s.input = undefined;
      s.input ??= {
        spec: s.spec,
        name: s.name,
        phase: s.phase,
        dests: s.dests,
        sorry: s.sorry,
        retired: s.retired.map((r) => r.dest),
        counterIds: [...s.counterIds],
        ingress: s.ingress,
        ...(s.schedWeights ? { schedWeights: s.schedWeights } : {}),
        ...(s.spec.ops ? { ops: true } : {}),
        ...(s.cutUntil !== undefined ? { cut: true } : {}),
        ...(shard ? { shard } : {}),
      };
      inputs.push(s.input);
    }
    const built = buildModel({ services: inputs, limits: this.#limits, maglev: this.#maglev }, this.#cache);
    const first = !this.#started;
    // Start-up: whatever table of ours a previous daemon left (killed with -9) goes in the same batch.
    const plan = planTransaction(this.#model, built.model, first ? { resetTables: ['netdev', 'inet', ...(await this.#leftShardTables())] } : {});
    const more: string[] = [];
    for (const x of extras) more.push(...(await x(draft)));
    const script = more.length ? `${plan.script}${more.join('\n')}\n` : plan.script;
    if (script) {
      await this.#transport.run(script);
      this.#latency.transactions++;
    }
    this.#started = true;
    // NAT / FULLNAT connections of a service that stopped forwarding (drain over, or removed) end
    // now: conntrack would otherwise keep them going for days.
    // With conntrackd, only a removed service's (see NftablesOptions.conntrackReplicated).
    const cut: number[] = [];
    for (const [key, before] of this.#state) {
      if (before.spec.kind === 'DR' || before.phase === 'idle') continue;
      const after = draft.get(key);
      if (!after || (after.phase === 'idle' && !this.#keepsConnections(before.spec))) cut.push(...before.counterIds);
    }
    if (cut.length) void this.#conntrackDelete(cut).catch((err: unknown) => this.#log('warn', `nftables: ending drained NAT connections failed: ${errorMessage(err)}`));
    this.#model = built.model;
    this.#shards = shards;
    this.#builds = built.services;
    // Forget the names and marks of services that are gone.
    for (const key of this.#state.keys()) if (!draft.has(key)) this.#ids.dropService(key);
    this.#state = draft;
    this.#ensurePoll();
  }

  /** An unserved service whose connections live on at the peer: not cut, not deleted (conntrackReplicated). */
  #keepsConnections(spec: ServiceSpec): boolean {
    return this.#replicated && spec.kind !== 'DR' && spec.kind !== 'PROXY';
  }

  /** Re-runs the pump at `when` (drain ends, retired destinations expire). */
  #at(when: number): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (this.#closed || this.isClosed) return;
      void this.#change(() => undefined).catch((err: unknown) => this.reportError(new KeepaliveError('E_NETLINK', `nftables: expiring drained state failed: ${errorMessage(err)}`, { cause: err })));
    }, Math.max(0, when - this.#now()) + 5);
    t.unref();
    this.#timers.add(t);
  }

  async #dest(spec: ServiceSpec, role: 'rs' | 'sorry', ep: Endpoint, weight: number): Promise<NftDest> {
    const id = this.#ids.destId(spec.key, role, endpointText(ep));
    if (spec.kind !== 'DR') return { id, endpoint: ep, weight };
    const m = spec.match;
    if (m.kind === 'addr' && m.ports.length === 1 && m.ports[0]!.from === m.ports[0]!.to && ep.port !== 0 && ep.port !== m.ports[0]!.from) {
      throw new KeepaliveError('E_CONFIG_INVALID', `${spec.key}: DR cannot change the port (real server ${endpointText(ep)}, service port ${m.ports[0]!.from}); use the service's port, or lb_kind NAT`);
    }
    let r = this.#routes.get(ep.address);
    if (!r) {
      r = await this.#facts.route(ep.address);
      this.#routes.set(ep.address, r);
    }
    if (!r.onLink) {
      throw new KeepaliveError(
        'E_CONFIG_INVALID',
        `${spec.key}: DR real server ${ep.address} is not on-link (${r.local ? 'it is an address of this director' : `reached via ${r.gateway ?? '?'} on ${r.device}`}); DR rewrites only the MAC address, so real servers must be on a network this director is directly connected to`,
      );
    }
    return { id, endpoint: ep, weight, device: r.device };
  }

  /** The configured fallback ingress interfaces (see NftablesOptions.ingress), [] when none. */
  #ingressDefault(): readonly string[] {
    const o = this.#ingressOpt;
    return (typeof o === 'function' ? o() : o) ?? [];
  }

  async #ingressOf(spec: ServiceSpec): Promise<string[]> {
    if (spec.match.kind === 'addr') {
      const devs = await this.#facts.devicesWithAddress(spec.match.address);
      const real = devs.filter((d) => d !== 'lo');
      if (real.length) return real;
      return [...this.#ingressDefault()];
    }
    const fallback = this.#ingressDefault();
    if (fallback.length) return [...fallback];
    const devs = new Set<string>();
    for (const s of this.#state.values()) for (const d of s.spec.kind === 'DR' && s.spec.match.kind === 'addr' && s.phase === 'serving' ? s.ingress : []) devs.add(d);
    if (devs.size === 0) {
      // No DR address service to follow (a fwmark-only configuration, as keepalived's FTP example,
      // or a director that holds no VIP yet): the interfaces facing the service's own real servers,
      // where one-arm DR receives the clients' traffic too.
      const own = this.#state.get(spec.key);
      for (const d of own ? [...own.dests, ...(own.sorry ? [own.sorry] : [])] : []) if (d.device) devs.add(d.device);
    }
    return [...devs];
  }

  // ----------------------------------------------------------------------------------------------
  // Reading back

  async #readCounters(): Promise<Map<string, PacketBytes>> {
    const out = new Map<string, PacketBytes>();
    for (const ref of this.#tables()) {
      const [f, table] = ref.split(' ') as [NftFamily, string];
      for (const [k, v] of await this.#transport.counters(f, table)) out.set(k, v);
    }
    return out;
  }

  /** Shard tables of ours in the kernel (a previous daemon's), as "family table"; the main ones are reset anyway. */
  async #leftShardTables(): Promise<string[]> {
    const docs = await this.#list('list tables').catch(() => []);
    const out: string[] = [];
    for (const d of docs) {
      const list = (d as { nftables?: unknown[] } | null)?.nftables;
      if (!Array.isArray(list)) continue;
      for (const x of list) {
        const t = (x as { table?: { family?: unknown; name?: unknown } }).table;
        if (t && (t.family === 'netdev' || t.family === 'inet') && typeof t.name === 'string' && isOurTable(t.name) && t.name !== shardTable(0)) out.push(`${t.family} ${t.name}`);
      }
    }
    return out;
  }

  /** The table of a service's objects. */
  #tableOf(s: { name: string }): string {
    return shardTable(this.#shards.get(s.name) ?? 0);
  }

  /**
   * One list command per libnftables run: with 1.0.6 a second `list` in the same buffer finds
   * nothing (the first one's cache filter hides it).
   */
  async #list(cmd: string): Promise<unknown[]> {
    return parseJsonDocuments((await this.#transport.run(cmd, { json: true })).output);
  }

  /** Every table of the committed model ("family table"). */
  #tables(): string[] {
    return this.#model ? [...tablesOf(this.#model)] : [];
  }

  #ensurePoll(): void {
    if (this.#poll || this.#closed) return;
    const loop = () => {
      // Adaptive: never spend more than ~5 % of the time reading tables (a 100k-entry dump is slow).
      const delay = Math.max(this.#limits.reweightMs, 20 * this.#lastPollMs);
      this.#poll = setTimeout(() => {
        void this.#pollOnce().finally(() => {
          if (!this.#closed && !this.isClosed) loop();
        });
      }, delay);
      this.#poll.unref();
    };
    loop();
  }

  /** Connection counts (ActiveConn/InActConn), table fill, and the lc/wlc… control loop. */
  async #pollOnce(): Promise<void> {
    const t0 = performance.now();
    try {
      const active = new Map<number, ActiveCounts>();
      const known = new Set<string>();
      let connEntries = 0;
      let persistEntries = 0;
      const events: ConnectionEvent[] = [];
      const seen = new Set<string>();
      const pollStart = this.#now();
      /** Retired DR destinations no flow points at any more, by service. */
      const gone = new Map<ServiceKey, Set<number>>();
      for (const s of [...this.#state.values()]) {
        if (!this.#model) break;
        const dyn = dynamicNames(s.spec, s.name, this.#limits);
        const F = s.spec.kind === 'DR' ? 'netdev' : 'inet';
        // A service removed meanwhile makes its read fail: skip it (its counts stay unknown).
        const list = (kind: 'map' | 'set', name: string) => this.#transport.elements(F, kind, name, this.#tableOf(s)).catch(() => null);
        if (s.spec.kind === 'DR') {
          const conn = await list('map', dyn.conn);
          const tcp = s.spec.match.kind === 'fwmark' || s.spec.match.protocol === 'tcp';
          const closing = tcp ? await list('set', dyn.closing) : [];
          if (conn && closing) {
            connEntries += conn.length;
            const flows = countFlows(conn, closing);
            for (const [id, c] of flows) active.set(id, c);
            known.add(s.name);
            // Read after it retired (with a margin for flows the kernel was adding meanwhile), and none left.
            const idle = s.retired.filter((r) => r.since < pollStart - 1000 && !flows.has(r.dest.id)).map((r) => r.dest.id);
            if (idle.length) gone.set(s.spec.key, new Set(idle));
          }
        }
        if (dyn.persist) {
          const observedAt = monotonicMs();
          const entries = await list('map', dyn.persist);
          persistEntries += entries?.length ?? 0;
          if (entries && this.#subscribers.size) events.push(...this.#reportTemplates(s, templatesOf(s.spec, entries, this.#destOf(s)), Date.now(), seen).map((t) => ({ ...t, observedAt })));
        }
      }
      for (const k of [...this.#reported.keys()]) if (!seen.has(k)) this.#reported.delete(k);
      if (events.length) for (const cb of this.#subscribers) cb(events);
      if (gone.size) {
        await this.#change((st) => {
          for (const [key, ids] of gone) {
            const cur = st.get(key);
            if (cur) st.set(key, { ...cur, input: undefined, retired: cur.retired.filter((r) => !ids.has(r.dest.id)) });
          }
        });
      }
      const nat = [...this.#state.values()].filter((s) => s.spec.kind !== 'DR');
      if (nat.length) {
        const ours = new Set<number>();
        for (const s of nat) for (const id of s.counterIds) ours.add(id);
        try {
          const ct = await this.#conntrack([...ours]);
          for (const [id, c] of ct.counts) active.set(id, c);
          for (const s of nat) known.add(s.name);
          this.#conntrackEntries = ct.entries;
          this.#conntrackMax = Number((await readFile('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8').catch(() => 'NaN')).trim());
          this.#conntrackProblem = undefined;
        } catch (err) {
          const msg = `reading conntrack failed (${errorMessage(err)}): ActiveConn/InActConn of NAT services unknown`;
          if (this.#conntrackProblem !== msg) this.#log('warn', msg);
          this.#conntrackProblem = msg;
        }
      }
      this.#active = active;
      this.#activeKnown = known;
      this.#connEntries = connEntries;
      this.#persistEntries = persistEntries;
      await this.#controlLoop();
    } catch (err) {
      if (!this.#closed && !this.isClosed) this.#log('warn', `nftables: reading connection tables failed: ${errorMessage(err)}`);
    } finally {
      this.#lastPollMs = performance.now() - t0;
    }
  }

  /** lc, wlc, sed, nq, ovf: recompute the wrr weights from the counts just read. */
  async #controlLoop(): Promise<void> {
    const loops = [...this.#state.values()].filter((s) => isControlLoopScheduler(s.spec.scheduler) && this.#activeKnown.has(s.name) && s.phase === 'serving');
    if (loops.length === 0) return;
    const counters = await this.#readCounters();
    const updates = new Map<ServiceKey, Map<number, number>>();
    for (const s of loops) {
      const F = s.spec.kind === 'DR' ? 'netdev' : 'inet';
      const n = names(s.name);
      let conns = 0;
      for (const id of s.counterIds) conns += counters.get(`${F} ${n.conns(id)}`)?.packets ?? 0;
      const last = this.#lastConns.get(s.name);
      this.#lastConns.set(s.name, conns);
      const expected = last === undefined ? 1 : conns - last;
      this.#lastRate.set(s.name, expected);
      const w = reweight(
        s.spec.scheduler,
        s.dests.map((d) => ({ id: d.id, weight: d.weight, active: this.#active.get(d.id)?.active ?? 0, inactive: this.#active.get(d.id)?.inactive ?? 0 })),
        expected,
      );
      if (!w) continue;
      if (s.schedWeights && sameWeights(s.schedWeights, w)) continue;
      updates.set(s.spec.key, w);
    }
    if (updates.size === 0) return;
    await this.#change((st) => {
      for (const [key, w] of updates) {
        const s = st.get(key);
        if (s) st.set(key, { ...s, input: undefined, schedWeights: w });
      }
    });
  }

  // ----------------------------------------------------------------------------------------------

  protected async applyClose(): Promise<void> {
    clearTimeout(this.#poll);
    clearTimeout(this.#syncTimer);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    // Let queued changes settle, then remove our tables.
    while (this.#running || this.#pending.length) await new Promise((r) => setTimeout(r, 5));
    this.#closed = true;
    try {
      const script = this.#started ? this.#tables().map((t) => `delete table ${t}`).join('\n') : '';
      if (script) await this.#transport.run(`${script}\n`);
    } finally {
      this.#model = null;
      this.#state.clear();
      this.#transport.close();
    }
  }
}

function sameWeights(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}


function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
