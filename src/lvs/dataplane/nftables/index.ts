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
import { execFile } from 'node:child_process';
import { endpointText, type Endpoint, type ServiceKey } from '../../../util/endpoint.js';
import { KeepaliveError, errorMessage } from '../../../util/errors.js';
import type {
  ConnectionEvent,
  ConnectionSnapshot,
  ConnectionState,
  ConnRef,
  DataplaneStats,
  Dataplane,
  DestStats,
  LbKind,
  PoolSpec,
  RestoreEntry,
  ServiceSpec,
  ServiceStats,
  TemplateEntry,
} from '../contract.js';
import { connElementText, connFieldsOf, decodeElements, diffTables, indexDump, persistClientOf, templateElementText, type TableDump, type TableEntry } from './elements.js';
import { countConntrack, countFlows, parseMapEntries, type ActiveCounts, type PacketBytes } from './counters.js';
import { systemFacts, type DirectorFacts } from './facts.js';
import { IdRegistry } from './ids.js';
import { planTransaction, TABLE, type Model, type NftFamily } from './model.js';
import { reweight } from './reweight.js';
import {
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
   * hold the DR services' VIPs.
   */
  ingress?: readonly string[];
  /** How long a destination that left a DR pool keeps its pinned flows (default: the service's drainMs). */
  log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
  /** `conntrack` binary (NAT ActiveConn/InActConn). */
  conntrackPath?: string;
  now?: () => number;
  /**
   * Connection sync: how often the connection and persistence tables are dumped and compared
   * while someone subscribes to onEvent (ms). Default 100; a dump that takes long stretches the
   * period so reading stays under ~10 % of the time.
   */
  syncPollMs?: number;
  /** Connection-event batching asked for by the daemon (ms): the poll period when syncPollMs is not given. */
  eventBatchMs?: number;
}

interface Retired {
  dest: NftDest;
  until: number;
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
  /** The builder input made from this state (identity = build cache key). */
  input?: NftServiceInput;
}

interface Pending {
  resolve: () => void;
  reject: (err: unknown) => void;
  at: number;
}

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

function defaultMaglev(): never {
  throw new KeepaliveError('E_CONFIG_INVALID', 'lb_algo "mh" on the kernel path needs the shared Maglev table module');
}

/** Figures of the table dumps behind connection events (status/metrics `sync` of the data plane). */
interface SyncPollStats {
  polls: number;
  lastMs: number;
  maxMs: number;
  totalMs: number;
  /** Entries seen in the last poll (connections + templates). */
  entries: number;
  events: number;
  /** DR connections that cannot be synced (IPv6 keys hold only the low address bits). */
  unsyncable: number;
  restored: number;
  restoreReplaced: number;
  restoreSkipped: number;
  restoreFailures: number;
}

export class NftablesDataplane implements Dataplane, ConnectionState {
  readonly name = 'nftables';
  readonly kinds = NFT_KINDS;

  readonly #transport: NftTransport;
  readonly #facts: DirectorFacts;
  readonly #limits: NftLimits;
  readonly #maglev: Maglev;
  readonly #ingressDefault: readonly string[] | undefined;
  readonly #log: NonNullable<NftablesOptions['log']>;
  readonly #conntrack: string;
  readonly #now: () => number;
  readonly #ids = new IdRegistry();
  readonly #cache = new WeakMap<NftServiceInput, ServiceBuild>();
  readonly #routes = new Map<string, { device: string; onLink: boolean; gateway?: string; local: boolean }>();

  #state = new Map<ServiceKey, SvcState>();
  #model: Model | null = null;
  #builds: ReadonlyMap<string, ServiceBuild> = new Map();
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;

  /** Mutations waiting for the next transaction. */
  #pending: Array<{ mutate: (s: Map<ServiceKey, SvcState>) => void; p: Pending; extra?: () => Promise<string[]> }> = [];
  #running = false;
  #timers = new Set<NodeJS.Timeout>();
  #poll: NodeJS.Timeout | undefined;

  readonly #latency = new LatencyWindow();
  #active = new Map<number, ActiveCounts>();
  #activeKnown = new Set<string>(); // service names whose counts are known
  #lastPollMs = 0;
  #lastConns = new Map<string, number>();
  #connEntries = 0;
  #persistEntries = 0;
  #conntrackProblem: string | undefined;

  // Connection sync (ConnectionState)
  readonly #syncPollMs: number;
  readonly #listeners = new Set<(events: readonly ConnectionEvent[]) => void>();
  #syncTimer: NodeJS.Timeout | undefined;
  #syncRunning: Promise<void> | undefined;
  /** Last dump per table ("<service name> <table name>"). */
  #syncPrev = new Map<string, TableDump>();
  readonly #syncStats: SyncPollStats = { polls: 0, lastMs: 0, maxMs: 0, totalMs: 0, entries: 0, events: 0, unsyncable: 0, restored: 0, restoreReplaced: 0, restoreSkipped: 0, restoreFailures: 0 };

  constructor(opts: NftablesOptions = {}) {
    this.#transport = opts.transport ?? new LibnftablesTransport();
    this.#facts = opts.facts ?? systemFacts;
    this.#limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.#maglev = opts.maglev ?? defaultMaglev;
    this.#ingressDefault = opts.ingress;
    this.#log = opts.log ?? (() => undefined);
    this.#conntrack = opts.conntrackPath ?? 'conntrack';
    this.#now = opts.now ?? Date.now;
    this.#syncPollMs = Math.max(10, opts.syncPollMs ?? opts.eventBatchMs ?? 100);
  }

  // ----------------------------------------------------------------------------------------------
  // Contract

  async configure(services: readonly ServiceSpec[]): Promise<void> {
    this.#checkOpen();
    const keys = new Set<string>();
    for (const s of services) {
      if (!NFT_KINDS.includes(s.kind)) throw new KeepaliveError('E_CONFIG_INVALID', `${s.key}: lb_kind ${s.kind} is not forwarded by nftables (kinds: ${NFT_KINDS.join(', ')})`);
      if (keys.has(s.key)) throw new KeepaliveError('E_CONFIG_INVALID', `${s.key}: configured twice`);
      keys.add(s.key);
      if (s.kind !== 'DR' && opsOf(s)) throw new KeepaliveError('E_CONFIG_INVALID', `${s.key}: one-packet scheduling (ops) is not available with lb_kind ${s.kind} on nftables (conntrack binds every UDP flow); use DR or PROXY`);
      if (s.scheduler === 'mh' && this.#maglev === defaultMaglev) defaultMaglev();
    }
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

  async setPool(key: ServiceKey, pool: PoolSpec): Promise<void> {
    this.#checkOpen();
    const cur = this.#get(key);
    const spec = cur.spec;
    const dests: NftDest[] = [];
    const seen = new Set<string>();
    for (const d of pool.dests) {
      if (!Number.isInteger(d.weight) || d.weight < 0) throw new KeepaliveError('E_CONFIG_INVALID', `${key}: weight of ${d.key} must be a whole number >= 0`);
      if (d.endpoint.family !== spec.match.family) throw new KeepaliveError('E_CONFIG_INVALID', `${key}: ${d.key} is IPv${d.endpoint.family}, the service IPv${spec.match.family}`);
      if (seen.has(d.key)) throw new KeepaliveError('E_CONFIG_INVALID', `${key}: ${d.key} is in the pool twice`);
      seen.add(d.key);
      dests.push(await this.#dest(spec, 'rs', d.endpoint, d.weight));
    }
    const sorry = pool.sorry ? await this.#dest(spec, 'sorry', pool.sorry, 1) : null;
    const now = this.#now();
    await this.#change((st) => {
      const s = st.get(key);
      if (!s) return;
      const keep = new Set([...dests, ...(sorry ? [sorry] : [])].map((d) => d.id));
      const retired = s.retired.filter((r) => r.until > now && !keep.has(r.dest.id));
      if (spec.kind === 'DR' && spec.drainMs > 0) {
        for (const d of [...s.dests, ...(s.sorry ? [s.sorry] : [])]) {
          if (!keep.has(d.id) && !retired.some((r) => r.dest.id === d.id)) {
            retired.push({ dest: d, until: now + spec.drainMs });
            this.#at(now + spec.drainMs);
          }
        }
      }
      const counterIds = new Set(s.counterIds);
      for (const id of keep) counterIds.add(id);
      st.set(key, { ...s, input: undefined, dests, sorry, retired, counterIds });
    });
  }

  async serve(key: ServiceKey): Promise<void> {
    this.#checkOpen();
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
      const { drainUntil: _d, ...rest } = s;
      st.set(key, { ...rest, input: undefined, phase: 'serving', ingress: ingress.length ? ingress : s.ingress });
    });
  }

  async unserve(key: ServiceKey, drainMs: number): Promise<void> {
    this.#checkOpen();
    this.#get(key);
    const until = this.#now() + Math.max(0, drainMs);
    await this.#change((st) => {
      const s = st.get(key);
      if (!s || s.phase === 'idle') return;
      if (drainMs <= 0) st.set(key, { ...s, input: undefined, phase: 'idle' });
      else {
        st.set(key, { ...s, input: undefined, phase: 'draining', drainUntil: until });
        this.#at(until);
      }
    });
  }

  async stats(): Promise<DataplaneStats> {
    this.#checkOpen();
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
      if (s.sorry && build?.sorryActive) dests.push(destStats(s.sorry, true));
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
      const sum = (k: 'active_conns' | 'inact_conns') => (known ? dests.reduce((a, d) => a + (d[k] ?? 0), 0) : null);
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
        sync_polls: this.#syncStats.polls,
        sync_poll_last_ms: round3(this.#syncStats.lastMs),
        sync_poll_max_ms: round3(this.#syncStats.maxMs),
        sync_poll_ms_total: round3(this.#syncStats.totalMs),
        sync_table_entries: this.#syncStats.entries,
        sync_events: this.#syncStats.events,
        sync_unsyncable: this.#syncStats.unsyncable,
        sync_restored: this.#syncStats.restored,
        sync_restore_replaced: this.#syncStats.restoreReplaced,
        sync_restore_skipped: this.#syncStats.restoreSkipped,
        sync_restore_failures: this.#syncStats.restoreFailures,
      },
    };
  }

  close(): Promise<void> {
    this.#closing ??= this.#doClose();
    return this.#closing;
  }

  // ----------------------------------------------------------------------------------------------
  // ConnectionState: connection sync of the kernel's dynamic tables
  //
  // DR connection tables (flow -> destination id) and persistence tables (client network -> id)
  // are dumped with one raw netlink request each (the addon) every syncPollMs while someone
  // listens, and compared with the previous dump: new flows, flows whose destination or timeout
  // changed (first packet -> established) and new templates become events; flows gone from the
  // table become conn_end / udp_flow_expired. NAT/FULLNAT connections live in conntrack, which
  // conntrackd replicates (src/sync/conntrackd.ts); their persistence templates come from here.

  onEvent(cb: (events: readonly ConnectionEvent[]) => void): () => void {
    this.#listeners.add(cb);
    this.#scheduleSyncPoll(0);
    return () => {
      this.#listeners.delete(cb);
      if (this.#listeners.size === 0) {
        clearTimeout(this.#syncTimer);
        this.#syncTimer = undefined;
        this.#syncPrev.clear();
      }
    };
  }

  async snapshot(): Promise<ConnectionSnapshot> {
    this.#checkOpen();
    const out: { templates: TemplateEntry[]; udpFlows: ConnectionSnapshot['udpFlows']; conns: ConnectionSnapshot['conns'] } = { templates: [], udpFlows: [], conns: [] };
    const now = this.#now();
    for (const t of this.#syncTables()) {
      const dump = await this.#dumpTable(t.family, t.table, now);
      if (!dump) continue;
      for (const e of dump.values()) {
        const ev = this.#eventOf(t, e, now, false);
        if (!ev) continue;
        if (ev.type === 'template') out.templates.push(ev);
        else if (ev.type === 'udp_flow_new') out.udpFlows.push({ ...refOf(ev), type: 'udp_flow', expiresInMs: ev.timeoutMs });
        else if (ev.type === 'conn_new') out.conns.push({ ...refOf(ev), type: 'conn', ...(ev.expiresInMs === undefined ? {} : { expiresInMs: ev.expiresInMs }) });
      }
    }
    return out;
  }

  /**
   * Writes synced connections (DR) and templates (all kinds) into this director's tables, in a
   * transaction of its own queued before any serve() that follows the call. An entry whose key
   * is already in a table with another destination replaces it; entries of unknown services or
   * destinations not in the pool any more are skipped (counted).
   */
  async restore(entries: readonly RestoreEntry[]): Promise<void> {
    this.#checkOpen();
    if (entries.length === 0) return;
    // Current contents first, so keys pinned elsewhere are deleted before they are added.
    const tables = new Map<string, { family: NftFamily; table: string; lines: Map<string, string>; ids: Map<string, number> }>();
    let skipped = 0;
    for (const e of entries) {
      const s = this.#state.get(e.service);
      if (!s || s.removing !== undefined) {
        skipped++;
        continue;
      }
      const dyn = dynamicNames(s.spec, s.name, this.#limits);
      const family: NftFamily = s.spec.kind === 'DR' ? 'netdev' : 'inet';
      const id = this.#destIdOf(s, e.dest);
      if (id === undefined) {
        skipped++;
        continue;
      }
      let table: string | null = null;
      let key: string | null = null;
      let line: string | null = null;
      if (e.type === 'template') {
        table = dyn.persist;
        key = e.client;
        line = table ? templateElementText(s.spec, e.client, id, s.spec.persistence?.timeoutMs ?? e.expiresInMs, e.expiresInMs) : null;
      } else if (s.spec.kind === 'DR' && !opsOf(s.spec)) {
        table = dyn.conn;
        const f = { client: e.client, virtual: e.virtual };
        const timeout = (e.protocol === 'udp' ? this.#limits.udpTimeoutS : this.#limits.tcpTimeoutS) * 1000;
        const expires = e.expiresInMs ?? timeout;
        line = connElementText(s.spec, f, id, timeout, expires);
        key = line === null ? null : line.slice(0, line.indexOf(' timeout '));
      }
      if (!table || key === null || line === null) {
        skipped++;
        continue;
      }
      const k = `${family} ${table}`;
      let t = tables.get(k);
      if (!t) tables.set(k, (t = { family, table, lines: new Map(), ids: new Map() }));
      t.lines.set(key, line);
      t.ids.set(key, id);
    }
    this.#syncStats.restoreSkipped += skipped;
    if (tables.size === 0) return;
    let replaced = 0;
    let count = 0;
    // Queued now (synchronously), so a serve() called after restore() commits with or after it.
    const cmds = async (): Promise<string[]> => {
      const out: string[] = [];
      replaced = 0;
      count = 0;
      for (const t of tables.values()) {
        const have = await this.#dumpKeyTexts(t.family, t.table);
        const del: string[] = [];
        for (const [key, id] of t.ids) {
          const cur = have.get(key);
          if (cur !== undefined && cur !== id) del.push(key);
        }
        replaced += del.length;
        for (let i = 0; i < del.length; i += 4096) out.push(`delete element ${t.family} ${TABLE} ${t.table} { ${del.slice(i, i + 4096).join(', ')} }`);
        const lines = [...t.lines.values()];
        count += lines.length;
        for (let i = 0; i < lines.length; i += 4096) out.push(`add element ${t.family} ${TABLE} ${t.table} { ${lines.slice(i, i + 4096).join(', ')} }`);
      }
      return out;
    };
    try {
      await this.#change(() => undefined, cmds);
      this.#syncStats.restored += count;
      this.#syncStats.restoreReplaced += replaced;
    } catch (err) {
      this.#syncStats.restoreFailures++;
      throw err;
    }
  }

  /** Tables that connection sync reads: DR connection tables and every persistence table. */
  #syncTables(): SyncTable[] {
    const out: SyncTable[] = [];
    if (!this.#model) return out;
    for (const s of this.#state.values()) {
      if (s.removing !== undefined) continue;
      const dyn = dynamicNames(s.spec, s.name, this.#limits);
      const family: NftFamily = s.spec.kind === 'DR' ? 'netdev' : 'inet';
      if (s.spec.kind === 'DR' && !opsOf(s.spec)) out.push({ state: s, family, table: dyn.conn, what: 'conn' });
      if (dyn.persist) out.push({ state: s, family, table: dyn.persist, what: 'persist' });
    }
    return out;
  }

  async #dumpTable(family: NftFamily, table: string, now: number): Promise<Map<string, TableEntry> | null> {
    if (!this.#transport.elements) return null;
    try {
      return indexDump(decodeElements(await this.#transport.elements(family, table)), now);
    } catch {
      return null; // removed meanwhile (a reload): its events stop with it
    }
  }

  /** Key text -> id of the elements of a table, in the notation restore() writes. */
  async #dumpKeyTexts(family: NftFamily, table: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const dump = await this.#dumpTable(family, table, this.#now());
    if (!dump) return out;
    const owner = this.#syncTables().find((t) => t.table === table && t.family === family);
    if (!owner) return out;
    for (const e of dump.values()) {
      if (owner.what === 'persist') {
        const c = persistClientOf(owner.state.spec, e.key);
        if (c !== null) out.set(c, e.id);
      } else {
        const f = connFieldsOf(owner.state.spec, e.key);
        const line = f ? connElementText(owner.state.spec, f, e.id, 1000, 1) : null;
        if (line) out.set(line.slice(0, line.indexOf(' timeout ')), e.id);
      }
    }
    return out;
  }

  #destIdOf(s: SvcState, ep: Endpoint): number | undefined {
    const text = endpointText(ep);
    for (const d of [...s.dests, ...s.retired.map((r) => r.dest)]) if (endpointText(d.endpoint) === text) return d.id;
    return undefined;
  }

  #destOf(s: SvcState, id: number): NftDest | undefined {
    return s.dests.find((d) => d.id === id) ?? s.retired.find((r) => r.dest.id === id)?.dest;
  }

  /** One table entry as a connection event (null: the sorry server, an unknown id, an unreadable key). */
  #eventOf(t: SyncTable, e: TableEntry, now: number, gone: boolean): ConnectionEvent | null {
    const s = t.state;
    const dest = this.#destOf(s, e.id);
    if (!dest) return null;
    const left = Math.max(0, e.expiresAt - now);
    if (t.what === 'persist') {
      if (gone) return null;
      const client = persistClientOf(s.spec, e.key);
      if (client === null) return null;
      return { type: 'template', service: s.spec.key, family: s.spec.match.family, client, dest: dest.endpoint, expiresInMs: left };
    }
    const f = connFieldsOf(s.spec, e.key);
    if (!f) {
      if (!gone) this.#syncStats.unsyncable++;
      return null;
    }
    const m = s.spec.match;
    const protocol = m.kind === 'addr' ? m.protocol : 'tcp';
    const ref: ConnRef = { service: s.spec.key, protocol, client: f.client, virtual: f.virtual, dest: dest.endpoint };
    if (protocol === 'udp') return gone ? { ...ref, type: 'udp_flow_expired' } : { ...ref, type: 'udp_flow_new', timeoutMs: left };
    return gone ? { ...ref, type: 'conn_end', inBytes: 0, outBytes: 0 } : { ...ref, type: 'conn_new', expiresInMs: left };
  }

  #scheduleSyncPoll(delay: number): void {
    if (this.#syncTimer || this.#listeners.size === 0 || this.#closed || this.#closing) return;
    this.#syncTimer = setTimeout(() => {
      this.#syncTimer = undefined;
      this.#syncRunning = this.#syncPoll().finally(() => {
        this.#syncRunning = undefined;
        // At most ~10 % of the time reading tables.
        this.#scheduleSyncPoll(Math.max(this.#syncPollMs, 10 * this.#syncStats.lastMs));
      });
    }, delay);
    this.#syncTimer.unref();
  }

  async #syncPoll(): Promise<void> {
    if (this.#syncRunning || this.#listeners.size === 0) return;
    const t0 = performance.now();
    const events: ConnectionEvent[] = [];
    const seen = new Set<string>();
    let entries = 0;
    for (const t of this.#syncTables()) {
      const now = this.#now();
      const next = await this.#dumpTable(t.family, t.table, now);
      if (!next) continue;
      const k = `${t.state.name} ${t.table}`;
      seen.add(k);
      entries += next.size;
      const { upserts, gone } = diffTables(this.#syncPrev.get(k) ?? new Map(), next);
      this.#syncPrev.set(k, next);
      for (const e of upserts) {
        const ev = this.#eventOf(t, e, now, false);
        if (ev) events.push(ev);
      }
      for (const e of gone) {
        const ev = this.#eventOf(t, e, now, true);
        if (ev) events.push(ev);
      }
    }
    for (const k of [...this.#syncPrev.keys()]) if (!seen.has(k)) this.#syncPrev.delete(k);
    const ms = performance.now() - t0;
    const st = this.#syncStats;
    st.polls++;
    st.lastMs = ms;
    st.totalMs += ms;
    if (ms > st.maxMs) st.maxMs = ms;
    st.entries = entries;
    st.events += events.length;
    if (events.length === 0) return;
    for (const cb of [...this.#listeners]) {
      try {
        cb(events);
      } catch (err) {
        this.#log('warn', `nftables: a connection-event listener failed: ${errorMessage(err)}`);
      }
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Desired state -> transactions

  #checkOpen(): void {
    if (this.#closed || this.#closing) throw new KeepaliveError('E_CLOSED', 'nftables data plane is closed');
  }

  #get(key: ServiceKey): SvcState {
    const s = this.#state.get(key);
    if (!s || s.removing !== undefined) throw new KeepaliveError('E_CONFIG_INVALID', `unknown virtual service ${key}`);
    return s;
  }

  /** Queues a mutation; resolves once a transaction containing it is committed. */
  #change(mutate: (s: Map<ServiceKey, SvcState>) => void, extra?: () => Promise<string[]>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ mutate, p: { resolve, reject, at: performance.now() }, ...(extra ? { extra } : {}) });
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
        // Element writes (restore) ride in the same transaction, after the ruleset changes; if
        // the transaction fails with them, it is tried once more without them so the ruleset
        // changes (a serve() right after a restore) are not lost with a bad element.
        let failed: unknown;
        const extra: string[] = [];
        try {
          for (const b of ok) if (b.extra) extra.push(...(await b.extra()));
          await this.#commit(draft, extra);
        } catch (err) {
          failed = err;
        }
        if (failed !== undefined && ok.some((b) => b.extra)) {
          const plain = ok.filter((b) => !b.extra);
          for (const b of ok) if (b.extra) b.p.reject(failed);
          ok.length = 0;
          ok.push(...plain);
          failed = undefined;
          try {
            await this.#commit(draft, []);
          } catch (err) {
            failed = err;
          }
        }
        if (failed === undefined) {
          const t = performance.now();
          for (const b of ok) {
            this.#latency.add(t - b.p.at);
            b.p.resolve();
          }
        } else {
          this.#latency.failures++;
          for (const b of ok) b.p.reject(failed);
        }
      }
    } finally {
      this.#running = false;
    }
  }

  /** Expires drains and retired destinations, then builds and applies `draft`; commits it on success. */
  async #commit(draft: Map<ServiceKey, SvcState>, extra: readonly string[] = []): Promise<void> {
    const now = this.#now();
    for (const [key, s] of draft) {
      if (s.removing !== undefined && s.removing <= now) {
        draft.delete(key);
        continue;
      }
      let next = s;
      if (s.drainUntil !== undefined && s.drainUntil <= now && s.phase === 'draining' && s.removing === undefined) {
        const { drainUntil: _d, ...rest } = s;
        next = { ...rest, input: undefined, phase: 'idle' };
      }
      if (next.retired.some((r) => r.until <= now)) next = { ...next, input: undefined, retired: next.retired.filter((r) => r.until > now) };
      if (next !== s) draft.set(key, next);
    }
    const inputs: NftServiceInput[] = [];
    for (const s of draft.values()) {
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
        ...(opsOf(s.spec) ? { ops: true } : {}),
      };
      inputs.push(s.input);
    }
    const built = buildModel({ services: inputs, limits: this.#limits, maglev: this.#maglev }, this.#cache);
    const first = !this.#started;
    const plan = planTransaction(this.#model, built.model, first ? { resetTables: ['netdev', 'inet'] } : {});
    const script = extra.length ? `${plan.script}${extra.join('\n')}\n` : plan.script;
    if (script) {
      await this.#transport.run(script);
      this.#latency.transactions++;
    }
    this.#started = true;
    this.#model = built.model;
    this.#builds = built.services;
    // Forget the names and marks of services that are gone.
    for (const key of this.#state.keys()) if (!draft.has(key)) this.#ids.dropService(key);
    this.#state = draft;
    this.#ensurePoll();
  }

  /** Re-runs the pump at `when` (drain ends, retired destinations expire). */
  #at(when: number): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (this.#closed || this.#closing) return;
      void this.#change(() => undefined).catch((err: unknown) => this.#log('warn', `nftables: expiring drained state failed: ${errorMessage(err)}`));
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

  async #ingressOf(spec: ServiceSpec): Promise<string[]> {
    if (spec.match.kind === 'addr') {
      const devs = await this.#facts.devicesWithAddress(spec.match.address);
      const real = devs.filter((d) => d !== 'lo');
      if (real.length) return real;
      return [...(this.#ingressDefault ?? [])];
    }
    if (this.#ingressDefault?.length) return [...this.#ingressDefault];
    const devs = new Set<string>();
    for (const s of this.#state.values()) for (const d of s.spec.kind === 'DR' && s.spec.match.kind === 'addr' && s.phase === 'serving' ? s.ingress : []) devs.add(d);
    return [...devs];
  }

  // ----------------------------------------------------------------------------------------------
  // Reading back

  async #readCounters(): Promise<Map<string, PacketBytes>> {
    const out = new Map<string, PacketBytes>();
    for (const f of this.#families()) for (const [k, v] of await this.#transport.counters(f)) out.set(k, v);
    return out;
  }

  /**
   * One list command per libnftables run: with 1.0.6 a second `list` in the same buffer finds
   * nothing (the first one's cache filter hides it).
   */
  async #list(cmd: string): Promise<unknown[]> {
    return parseJsonDocuments((await this.#transport.run(cmd, { json: true })).output);
  }

  #families(): NftFamily[] {
    const m = this.#model;
    if (!m) return [];
    return [...new Set([...m.values()].map((o) => o.family))];
  }

  #ensurePoll(): void {
    if (this.#poll || this.#closed) return;
    const loop = () => {
      // Adaptive: never spend more than ~5 % of the time reading tables (a 100k-entry dump is slow).
      const delay = Math.max(this.#limits.reweightMs, 20 * this.#lastPollMs);
      this.#poll = setTimeout(() => {
        void this.#pollOnce().finally(() => {
          if (!this.#closed && !this.#closing) loop();
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
      for (const s of [...this.#state.values()]) {
        if (!this.#model) break;
        const dyn = dynamicNames(s.spec, s.name, this.#limits);
        const F = s.spec.kind === 'DR' ? 'netdev' : 'inet';
        // A service removed meanwhile makes its list fail: skip it (its counts stay unknown).
        const list = (cmd: string) => this.#list(cmd).then(parseMapEntries, () => null);
        if (s.spec.kind === 'DR') {
          const conn = await list(`list map ${F} ${TABLE} ${dyn.conn}`);
          const tcp = s.spec.match.kind === 'fwmark' || s.spec.match.protocol === 'tcp';
          const closing = tcp ? await list(`list set ${F} ${TABLE} ${dyn.closing}`) : [];
          if (conn && closing) {
            connEntries += conn.length;
            for (const [id, c] of countFlows(conn, closing)) active.set(id, c);
            known.add(s.name);
          }
        }
        if (dyn.persist) persistEntries += (await list(`list map ${F} ${TABLE} ${dyn.persist}`))?.length ?? 0;
      }
      const nat = [...this.#state.values()].filter((s) => s.spec.kind !== 'DR');
      if (nat.length) {
        const ours = new Set<number>();
        for (const s of nat) for (const id of s.counterIds) ours.add(id);
        const text = await this.#conntrackDump();
        if (text !== null) {
          for (const [id, c] of countConntrack(text, ours)) active.set(id, c);
          for (const s of nat) known.add(s.name);
        }
      }
      this.#active = active;
      this.#activeKnown = known;
      this.#connEntries = connEntries;
      this.#persistEntries = persistEntries;
      await this.#controlLoop();
    } catch (err) {
      if (!this.#closed && !this.#closing) this.#log('warn', `nftables: reading connection tables failed: ${errorMessage(err)}`);
    } finally {
      this.#lastPollMs = performance.now() - t0;
    }
  }

  #conntrackDump(): Promise<string | null> {
    return new Promise((resolve) => {
      execFile(this.#conntrack, ['-L'], { maxBuffer: 512 << 20, timeout: 30_000 }, (err, stdout) => {
        if (err) {
          const msg = `conntrack -L failed (${err.message.split('\n')[0]}): ActiveConn/InActConn of NAT services unknown; install the Debian package conntrack`;
          if (this.#conntrackProblem !== msg) this.#log('warn', msg);
          this.#conntrackProblem = msg;
          resolve(null);
        } else {
          this.#conntrackProblem = undefined;
          resolve(stdout);
        }
      });
    });
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

  async #doClose(): Promise<void> {
    clearTimeout(this.#poll);
    clearTimeout(this.#syncTimer);
    this.#listeners.clear();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    // Let queued changes settle, then remove our tables.
    while (this.#running || this.#pending.length) await new Promise((r) => setTimeout(r, 5));
    this.#closed = true;
    try {
      const fams = this.#model ? this.#families() : [];
      const script = this.#started ? fams.map((f) => `delete table ${f} ${TABLE}`).join('\n') : '';
      if (script) await this.#transport.run(`${script}\n`);
    } finally {
      this.#model = null;
      this.#state.clear();
      this.#transport.close();
    }
  }
}

interface SyncTable {
  readonly state: SvcState;
  readonly family: NftFamily;
  readonly table: string;
  readonly what: 'conn' | 'persist';
}

function refOf(ev: ConnRef): ConnRef {
  return { service: ev.service, protocol: ev.protocol, client: ev.client, virtual: ev.virtual, dest: ev.dest };
}

function sameWeights(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

function opsOf(spec: ServiceSpec): boolean {
  return spec.ops;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
