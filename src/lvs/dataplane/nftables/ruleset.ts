/**
 * The nftables ruleset builder: from the desired state (services, their pools, which are served,
 * interface facts) to the objects of our two tables. Pure: no I/O; model.ts turns two builds
 * into one transaction.
 *
 * Tables (one per family, fixed name `keepalive_ts`; nothing else is touched):
 *   table netdev keepalive_ts   DR. A base chain on the ingress hook of each interface where
 *                               client traffic arrives; the packet is forwarded unchanged to the
 *                               real server with `fwd ip to <RS> device <dev>` (the kernel
 *                               resolves the neighbour and rewrites the MAC addresses).
 *   table inet keepalive_ts     NAT / FULLNAT, conntrack-based: a prerouting chain at priority
 *                               -140 (after conntrack and iptables' mangle, before DNAT) sets the
 *                               conntrack mark of a new connection to the chosen real server's id;
 *                               the nat chains DNAT (and for FULLNAT masquerade) by that mark;
 *                               established connections keep their binding in conntrack.
 *
 * Marks: every destination of a service has a 32-bit id (ids.ts: a hash of the service key and
 * the endpoint, identical on every director). DR carries it in the packet mark inside the ingress
 * chain; NAT in the conntrack mark of the connection.
 *
 * Per service S (object names start with S's name, e.g. s1a2b3c4d; the number of chains does not
 * grow with the pool, so libnftables' per-transaction cache stays small):
 *   S_svc      dispatch target; DR: established flows first (connection table), then new flows
 *   S_pick     the scheduler's choice for a new flow (the only rule a weight change rewrites)
 *   S_commit   records the choice (persistence template, connection entry) and counts it (Conns)
 *   S_full     DR: reached only when the connection table is full
 *   S_fwd      DR: counts the packet (InPkts/InBytes) and forwards it: `fwd ip to <id→address map>`
 *   S_conn_*   DR: flow -> id, dynamic, bounded; new entries live `tcpNewS` until the next packet
 *              of the flow, then `tcpTimeoutS` idle; after FIN/RST `tcpClosingS`
 *   S_closing_* DR: flows that have seen FIN/RST (their entries are no longer extended)
 *   S_persist_* client network -> id, dynamic, timeout = persistence_timeout
 *   S_known    ids a persistence template may still point at (in the pool, any weight)
 *   S_ids/S_addr DR: forwardable ids, id -> real-server address
 *   S_cnew/S_cin id -> named counter (objref maps)
 *   S_mh_*     mh: Maglev slot -> id
 * NAT counts forwarded packets in one forward-hook rule: `counter name ct direction . ct mark map
 * @g_ctr` (original -> InPkts/InBytes, reply -> OutPkts/OutBytes of the id's counters).
 */
import { endpointText, type Endpoint, type IpFamily, type L4Protocol } from '../../../util/endpoint.js';
import type { LbKind, ServiceSpec } from '../contract.js';
import { shardTable, type ChainObj, type CounterObj, type MapObj, type NftObj, type Model } from './model.js';
import { flowHashExpr, hex, isControlLoopScheduler, schedule, type SchedDest, type SchedPlan } from './sched.js';
import { hash32 } from './ids.js';

export type ServicePhase = 'serving' | 'draining' | 'idle';

export interface NftDest {
  /** Mark value (ids.ts). */
  readonly id: number;
  readonly endpoint: Endpoint;
  /** As in the pool: 0 = quiescent (no new connections). */
  readonly weight: number;
  /** DR: the interface through which the real server is on-link. */
  readonly device?: string;
}

export interface NftServiceInput {
  readonly spec: ServiceSpec;
  /** Stable object-name prefix (ids.ts), e.g. "s1a2b3c4d". */
  readonly name: string;
  readonly phase: ServicePhase;
  /** The pool, in pool order. */
  readonly dests: readonly NftDest[];
  /** Takes new connections while no destination has weight > 0. */
  readonly sorry: NftDest | null;
  /** Left the pool recently: DR flows pinned to them keep being forwarded until the drain ends. */
  readonly retired: readonly NftDest[];
  /** Every id that has counters (kept while the service exists, so totals are monotonic). */
  readonly counterIds: readonly number[];
  /** DR: interfaces where client traffic for this service arrives. */
  readonly ingress: readonly string[];
  /** Scheduler weights by id from the control loop (lc, wlc…); absent: the pool's weights. */
  readonly schedWeights?: ReadonlyMap<number, number>;
  /** UDP one-packet scheduling (DR: no connection entry for UDP). */
  readonly ops?: boolean;
  /** A drain just ended: its VIP:port is left to the local stack (resets) for a while, not guarded. */
  readonly cut?: boolean;
  /**
   * The table the service's objects live in: 0 or absent = the main table, N = `keepalive_ts_N`
   * (see assignShards). Fixed for the service's life: moving it would lose its dynamic tables.
   */
  readonly shard?: number;
}

/**
 * Services per shard table. The kernel looks sets and maps up by name with a linear walk of
 * their table's list (creating one, and resolving each `@name` a rule refers to), so a batch
 * that creates N of them in one table costs ~N² (measured on 6.18: 10,000 sets 2.4 s, 30,000
 * 23.9 s in one table, 2.0 s over 20 tables; counters and chains are hashed and stay linear).
 * A DR service has 6-9 named sets and maps: 10,000 services in one table took 375 s to
 * configure. At 250 per table a shard holds ~2,000 of them. Configurations up to this size keep
 * everything in the main table, as before sharding.
 */
export const SHARD_SERVICES = 250;

/**
 * Shard of every service: a service keeps the shard it has (`prev`); a new one (in name order)
 * goes to the lowest-numbered shard with fewer than `capacity` services. Pure.
 */
export function assignShards(names: Iterable<string>, prev: ReadonlyMap<string, number>, capacity = SHARD_SERVICES): Map<string, number> {
  const out = new Map<string, number>();
  const fill: number[] = [];
  const fresh: string[] = [];
  for (const n of names) {
    const s = prev.get(n);
    if (s === undefined) {
      fresh.push(n);
      continue;
    }
    out.set(n, s);
    fill[s] = (fill[s] ?? 0) + 1;
  }
  fresh.sort();
  let shard = 0;
  for (const n of fresh) {
    while ((fill[shard] ?? 0) >= capacity) shard++;
    out.set(n, shard);
    fill[shard] = (fill[shard] ?? 0) + 1;
  }
  return out;
}

export interface NftLimits {
  /** Entries of each DR connection table. */
  readonly connMax: number;
  /** Idle timeout of an established TCP flow (IPVS: 900 s). */
  readonly tcpTimeoutS: number;
  /** After FIN or RST (IPVS fin_wait/close: 120/10 s). */
  readonly tcpClosingS: number;
  /** A flow that has sent only its first packet (IPVS syn_recv: 60 s). */
  readonly tcpNewS: number;
  /** UDP flow idle timeout (IPVS: 300 s). */
  readonly udpTimeoutS: number;
  /** Entries of each persistence table. */
  readonly persistMax: number;
  /** Control-loop period of lc/wlc/… (for the scheduler_in_effect text). */
  readonly reweightMs: number;
  /**
   * NAT/FULLNAT: drop (and count in S_midstream) a TCP packet without SYN that starts a conntrack
   * entry, instead of scheduling it. On with conntrackd replication: right after a takeover, the
   * packets of a connection whose entry is not committed yet would otherwise be sent to a new
   * real server (which resets it); dropped, they are resent by the client after the commit.
   */
  readonly natMidstreamDrop?: boolean;
}

export const DEFAULT_LIMITS: NftLimits = {
  connMax: 262_144,
  tcpTimeoutS: 900,
  tcpClosingS: 10,
  tcpNewS: 60,
  udpTimeoutS: 300,
  persistMax: 65_536,
  reweightMs: 1000,
};

/** Priorities of our base chains. */
export const PRIO_DR_INGRESS = 0;
export const PRIO_NAT_MARK = -140;
export const PRIO_NAT_FORWARD = -140;

export type Maglev = (dests: readonly SchedDest[], size: number, seed: number) => Int32Array;

export interface BuildInput {
  readonly services: readonly NftServiceInput[];
  readonly limits: NftLimits;
  readonly maglev: Maglev;
}

/** What the builder decided per service, for stats. */
export interface ServiceBuild {
  readonly objects: NftObj[];
  /** scheduler_in_effect. */
  readonly inEffect: string;
  readonly sorryActive: boolean;
}

// ------------------------------------------------------------------------------------------------
// Small renderers

function fam(kind: LbKind): 'netdev' | 'inet' {
  return kind === 'DR' ? 'netdev' : 'inet';
}

const chain = (family: 'netdev' | 'inet', name: string, rules: string[], base = ''): ChainObj => ({ type: 'chain', family, name, base, rules });
const counter = (family: 'netdev' | 'inet', name: string): CounterObj => ({ type: 'counter', family, name });
const map = (family: 'netdev' | 'inet', name: string, decl: string, elements?: MapObj['elements'], kind: 'map' | 'set' = 'map'): MapObj =>
  elements === undefined ? { type: kind, family, name, decl } : { type: kind, family, name, decl, elements };

/** A name that changes with the declaration, so a changed declaration is a new object. */
function versioned(base: string, decl: string): string {
  return `${base}_${(hash32(decl) & 0xffff).toString(16).padStart(4, '0')}`;
}

function addrType(f: IpFamily): string {
  return f === 4 ? 'ipv4_addr' : 'ipv6_addr';
}

function ipKw(f: IpFamily): string {
  return f === 4 ? 'ip' : 'ip6';
}

/** Time text nft accepts: whole seconds as "Ns", else milliseconds. */
export function nftTime(ms: number): string {
  const r = Math.max(1, Math.round(ms));
  return r % 1000 === 0 ? `${r / 1000}s` : `${r}ms`;
}

/** The address mask of a prefix length, as nft writes it. */
export function prefixMask(family: IpFamily, prefix: number): string {
  if (family === 4) {
    const v = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    return [24, 16, 8, 0].map((s) => (v >>> s) & 255).join('.');
  }
  const groups: string[] = [];
  for (let g = 0; g < 8; g++) {
    const bits = Math.max(0, Math.min(16, prefix - g * 16));
    groups.push((bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff).toString(16));
  }
  // Compress the trailing run of zero groups ("ffff:ffff::").
  let end = 8;
  while (end > 0 && groups[end - 1] === '0') end--;
  if (end === 8) return groups.join(':');
  return `${groups.slice(0, end).join(':')}::`;
}

function nftEndpoint(e: Endpoint, withPort: boolean): string {
  return withPort ? `${e.address} . ${e.port}` : e.address;
}

function protocolsOf(spec: ServiceSpec): L4Protocol[] {
  return spec.match.kind === 'addr' ? [spec.match.protocol] : ['tcp', 'udp'];
}

/**
 * Connection-table key: the fields that identify a flow of this service, and the declaration of
 * its type. nft 1.0.6 cannot generate a map update whose key is longer than 16 bytes (it aborts
 * in netlink_linearize), so keys stay within 16 bytes: IPv4 `saddr . sport` (+ dport for port
 * sets, + daddr . dport for fwmark services); IPv6 the low 96 bits of the source address and the
 * source port (`@nh,96,96`: bytes 12-23 of the IPv6 header), or for port-set and fwmark services
 * the low 64 bits (the interface identifier) with both ports. Two concurrent flows that differ
 * only in the truncated bits share an entry, so the second follows the first's server.
 */
export function connKey(spec: ServiceSpec): { expr: string; decl: string } {
  const single = spec.match.kind === 'addr' && spec.match.ports.length === 1 && spec.match.ports[0]!.from === spec.match.ports[0]!.to;
  if (spec.match.family === 4) {
    if (spec.match.kind === 'fwmark') return { expr: 'ip saddr . th sport . ip daddr . th dport', decl: 'type ipv4_addr . inet_service . ipv4_addr . inet_service' };
    if (single) return { expr: 'ip saddr . th sport', decl: 'type ipv4_addr . inet_service' };
    return { expr: 'ip saddr . th sport . th dport', decl: 'type ipv4_addr . inet_service . inet_service' };
  }
  const expr = single ? '@nh,96,96 . th sport' : '@nh,128,64 . th sport . th dport';
  return { expr, decl: `typeof ${expr}` };
}

function persistKey(spec: ServiceSpec): string | null {
  const p = spec.persistence;
  if (!p) return null;
  const f = spec.match.family;
  const full = f === 4 ? 32 : 128;
  const prefix = Math.min(p.prefix, full);
  return prefix >= full ? `${ipKw(f)} saddr` : `${ipKw(f)} saddr and ${prefixMask(f, prefix)}`;
}

/** Destinations the scheduler may pick for a new connection, with the weights it uses. */
export function eligible(svc: NftServiceInput): SchedDest[] {
  const out: SchedDest[] = [];
  for (const d of svc.dests) {
    if (d.weight <= 0) continue;
    // With control-loop weights, a server the loop gave no share takes no new connection.
    const w = svc.schedWeights ? (svc.schedWeights.get(d.id) ?? 0) : d.weight;
    if (w > 0) out.push({ id: d.id, weight: w, key: endpointText(d.endpoint) });
  }
  // A control loop may zero every weight (all servers overloaded): fall back to the pool's weights.
  if (out.length === 0 && svc.schedWeights) for (const d of svc.dests) if (d.weight > 0) out.push({ id: d.id, weight: d.weight, key: endpointText(d.endpoint) });
  return out;
}

function scheduleOf(svc: NftServiceInput, limits: NftLimits, maglev: Maglev): { plan: SchedPlan | null; sorry: boolean } {
  const dests = eligible(svc);
  const spec = svc.spec;
  if (dests.length === 0) {
    if (!svc.sorry) return { plan: null, sorry: false };
    return { plan: { expr: { kind: 'expr', expr: hex(svc.sorry.id) }, flowStable: true, inEffect: 'sorry server' }, sorry: true };
  }
  const plan = schedule(
    {
      scheduler: spec.scheduler,
      family: spec.match.family,
      dests,
      seed: spec.hash.seed,
      hashPort: spec.hash.port,
      tableSize: spec.hash.tableSize,
      reweightMs: limits.reweightMs,
      reweighted: svc.schedWeights !== undefined,
    },
    maglev,
  );
  return { plan, sorry: false };
}

// ------------------------------------------------------------------------------------------------
// One service

function destsWithSorry(svc: NftServiceInput): NftDest[] {
  return svc.sorry ? [...svc.dests, svc.sorry] : [...svc.dests];
}

function uniqueById(ds: readonly NftDest[]): NftDest[] {
  const seen = new Set<number>();
  return ds.filter((d) => (seen.has(d.id) ? false : (seen.add(d.id), true)));
}

function idText(id: number): string {
  return (id >>> 0).toString(16).padStart(8, '0');
}

/** Object names of a service. */
export function names(svcName: string) {
  return {
    svc: `${svcName}_svc`,
    pick: `${svcName}_pick`,
    commit: `${svcName}_commit`,
    full: `${svcName}_full`,
    fwd: `${svcName}_fwd`,
    keep: `${svcName}_keep`,
    reborn: `${svcName}_rb`,
    rebornSend: `${svcName}_rbs`,
    ids: `${svcName}_ids`,
    addr: `${svcName}_addr`,
    dev: (i: number) => `${svcName}_dev${i}`,
    cnew: `${svcName}_cnew`,
    cin: `${svcName}_cin`,
    known: `${svcName}_known`,
    drop: `${svcName}_drop`,
    fullCounter: `${svcName}_nofit`,
    conns: (id: number) => `${svcName}_c${idText(id)}`,
    inC: (id: number) => `${svcName}_i${idText(id)}`,
    outC: (id: number) => `${svcName}_o${idText(id)}`,
  };
}

/** Name of a service's dynamic connection table (DR), persistence table and Maglev map. */
export function dynamicNames(spec: ServiceSpec, svcName: string, limits: NftLimits): { conn: string; closing: string; reborn: string; persist: string | null; connDecl: string; closingDecl: string; rebornDecl: string; persistDecl: string | null } {
  const key = connKey(spec);
  const valueType = key.decl.startsWith('typeof') ? 'meta mark' : 'mark';
  const connDecl = `${key.decl} : ${valueType}; size ${limits.connMax}; flags dynamic,timeout; timeout ${limits.tcpTimeoutS}s;`;
  const closingDecl = `${key.decl}; size ${limits.connMax}; flags dynamic,timeout; timeout ${limits.tcpClosingS}s;`;
  const rebornDecl = `${key.decl}; size ${limits.connMax}; flags dynamic,timeout; timeout ${limits.tcpTimeoutS}s;`;
  const persistDecl = spec.persistence
    ? `type ${addrType(spec.match.family)} : mark; size ${limits.persistMax}; flags dynamic,timeout; timeout ${nftTime(spec.persistence.timeoutMs)};`
    : null;
  return {
    conn: versioned(`${svcName}_conn`, connDecl),
    closing: versioned(`${svcName}_closing`, closingDecl),
    reborn: versioned(`${svcName}_reborn`, rebornDecl),
    persist: persistDecl ? versioned(`${svcName}_persist`, persistDecl) : null,
    connDecl,
    closingDecl,
    rebornDecl,
    persistDecl,
  };
}

/** The objects of one service (without its entries in the shared dispatch and NAT maps). */
export function buildService(svc: NftServiceInput, limits: NftLimits, maglev: Maglev): ServiceBuild {
  const b0 = svc.spec.kind === 'DR' ? buildDr(svc, limits, maglev) : buildNat(svc, limits, maglev);
  const b = { ...b0, objects: namedMaps(svc.name, b0.objects) };
  return svc.shard ? { ...b, objects: inTable(b.objects, shardTable(svc.shard)) } : b;
}

/**
 * The scheduler's inline maps (`numgen inc mod 4 map { 0-1 : 0x…, … }`, `jhash … map { … }`)
 * become named maps of the service (`S_m<hash of the elements>`, a new name when they change).
 * The kernel binds each anonymous set of a batch with a walk of the whole batch
 * (__nft_set_trans_bind: 60 % of the time of a 1,000-service start-up batch), so a batch with
 * thousands of them is quadratic; a named map costs a name look-up in its (shard) table.
 */
function namedMaps(svcName: string, objects: readonly NftObj[]): NftObj[] {
  const out: NftObj[] = [];
  const made = new Set<string>();
  for (const o of objects) {
    if (o.type !== 'chain' || !o.rules.some((r) => r.includes(' map { ') && !r.includes(' vmap { '))) {
      out.push(o);
      continue;
    }
    // `M set <hash or numgen> map { … }` -> `M set <hash or numgen> M set M map @name` (the map's
    // key is a mark: the integer goes through the mark first, as the Maglev table's does).
    const rules = o.rules.map((r) => r.replace(/(meta mark|ct mark) set ([^{]*?) map \{ ([^}]*) \}/g, (_m, mark: string, expr: string, body: string) => {
      const name = `${svcName}_m${(hash32(body) >>> 0).toString(16).padStart(8, '0')}`;
      if (!made.has(name)) {
        made.add(name);
        const elements = new Map<string, string>();
        for (const part of body.split(', ')) {
          const [k, v] = part.split(' : ');
          elements.set(k!, v!);
        }
        out.push(map(o.family, name, 'type mark : mark; flags interval;', elements));
      }
      return `${mark} set ${expr} ${mark} set ${mark} map @${name}`;
    }));
    out.push({ ...o, rules });
  }
  return out;
}

function inTable(objects: readonly NftObj[], table: string): NftObj[] {
  return objects.map((o) => ({ ...o, table }));
}

function schedStatements(mark: string, plan: SchedPlan, svcName: string, objects: NftObj[], family: 'netdev' | 'inet'): string {
  if (plan.expr.kind === 'expr') return `${mark} set ${plan.expr.expr}`;
  const decl = `type mark : mark; size ${plan.expr.table.length};`;
  const mh = versioned(`${svcName}_mh`, decl);
  if (!objects.some((o) => o.name === mh)) objects.push(map(family, mh, decl, plan.expr.table));
  return `${mark} set ${plan.expr.hash} ${mark} set ${mark} map @${mh}`;
}

const objrefMap = (family: 'netdev' | 'inet', name: string, entries: Array<[number, string]>): MapObj =>
  map(family, name, 'type mark : counter;', new Map(entries.map(([id, c]) => [hex(id), `"${c}"`])));
const idSet = (family: 'netdev' | 'inet', name: string, ids: Iterable<number>): MapObj => map(family, name, 'type mark;', new Map([...ids].map((id) => [hex(id), ''])), 'set');

/** Counters (kept for every id ever seen) and the service's new-connection counter map. */
function counters(F: 'netdev' | 'inet', svc: NftServiceInput, n: ReturnType<typeof names>, out: boolean): NftObj[] {
  const objs: NftObj[] = [];
  for (const id of svc.counterIds) {
    objs.push(counter(F, n.conns(id)), counter(F, n.inC(id)));
    if (out) objs.push(counter(F, n.outC(id)));
  }
  return objs;
}

/** Rules of the pick chain: the scheduler's choice for a new flow, or the drop counter. */
function pickRules(mark: string, plan: SchedPlan | null, svc: NftServiceInput, n: ReturnType<typeof names>, objects: NftObj[], F: 'netdev' | 'inet'): string[] {
  return plan ? [`${schedStatements(mark, plan, svc.name, objects, F)} goto ${n.commit}`] : [`counter name ${n.drop}`];
}

function buildDr(svc: NftServiceInput, limits: NftLimits, maglev: Maglev): ServiceBuild {
  const F = 'netdev';
  const spec = svc.spec;
  const n = names(svc.name);
  const dyn = dynamicNames(svc.spec, svc.name, limits);
  const M = 'meta mark';
  const K = connKey(spec).expr;
  const P = persistKey(spec);
  const objects: NftObj[] = counters(F, svc, n, false);
  const protos = protocolsOf(spec);
  const pfx = (p: L4Protocol) => (spec.match.kind === 'fwmark' ? `meta l4proto ${p} ` : '');
  const udpConn = !svc.ops;
  objects.push(counter(F, n.drop), counter(F, n.fullCounter));

  // Tables the kernel fills.
  objects.push(map(F, dyn.conn, dyn.connDecl));
  if (protos.includes('tcp')) objects.push(map(F, dyn.closing, dyn.closingDecl, undefined, 'set'), map(F, dyn.reborn, dyn.rebornDecl, undefined, 'set'));
  if (dyn.persist && dyn.persistDecl) objects.push(map(F, dyn.persist, dyn.persistDecl));

  // Destinations: the pool and the sorry server take new flows; the retired (draining) ones keep theirs.
  const current = uniqueById(destsWithSorry(svc));
  const forwardable = uniqueById([...current, ...svc.retired]);
  for (const d of forwardable) if (!d.device) throw new RangeError(`DR destination ${d.endpoint.address} has no device`);
  objects.push(
    idSet(F, n.ids, forwardable.map((d) => d.id)),
    map(F, n.addr, `type mark : ${addrType(spec.match.family)};`, new Map(forwardable.map((d) => [hex(d.id), d.endpoint.address]))),
    objrefMap(F, n.cin, forwardable.map((d) => [d.id, n.inC(d.id)])),
    objrefMap(F, n.cnew, current.map((d) => [d.id, n.conns(d.id)])),
  );
  // One forwarding rule per egress device (nearly always one).
  const devices = [...new Set(forwardable.map((d) => d.device!))].sort();
  const ip = ipKw(spec.match.family);
  const fwd = (dev: string) => `counter name ${M} map @${n.cin} fwd ${ip} to ${M} map @${n.addr} device "${dev}"`;
  const fwdRules = devices.length <= 1
    ? devices.map(fwd)
    : devices.map((dev, i) => {
        objects.push(idSet(F, n.dev(i), forwardable.filter((d) => d.device === dev).map((d) => d.id)));
        return `${M} @${n.dev(i)} ${fwd(dev)}`;
      });
  objects.push(chain(F, n.fwd, fwdRules));
  // An established flow of a persistent service refreshes its client's template, in a rule of its
  // own: when the persistence table is full a client without a template cannot get one, the update
  // fails and ends only that rule, and the flow is still forwarded to its server.
  const toFwd = P && dyn.persist ? n.keep : n.fwd;
  if (P && dyn.persist) objects.push(chain(F, n.keep, [`update @${dyn.persist} { ${P} : ${M} }`, `goto ${n.fwd}`]));

  const { plan, sorry } = scheduleOf(svc, limits, maglev);
  if (P) {
    // A template stays valid while its server is in the pool, at any weight (IPVS), or is the sorry server in use.
    const known = sorry && svc.sorry ? [...svc.dests, svc.sorry] : svc.dests;
    objects.push(idSet(F, n.known, known.map((d) => d.id)));
  }

  const svcRules: string[] = [];
  if (protos.includes('tcp')) {
    const t = pfx('tcp');
    // A new connection (a SYN) on the address and port of a connection that is closing must get a
    // new decision, not the old server (which may be quiescent or gone). The packet path cannot
    // delete or overwrite a map entry, so the old entry is made to expire at once (next tick), the
    // tuple leaves the closing set, and the flow is "reborn": for its whole life it is routed by a
    // choice that is a function of the flow (template, hash scheduler, or a flow hash over the
    // servers taking new connections) instead of by the connection table.
    if (svc.phase === 'serving') {
      svcRules.push(`${t}tcp flags & (syn | ack) == syn ${K} @${dyn.closing} delete @${dyn.closing} { ${K} } update @${dyn.conn} { ${K} timeout 1ms : ${M} } update @${dyn.reborn} { ${K} timeout ${limits.tcpNewS}s } goto ${n.reborn}`);
    }
    svcRules.push(`${t}${K} @${dyn.reborn} goto ${n.reborn}`);
    // Established flows: the connection table decides, whatever the pool says now (an id that is no
    // longer forwardable falls through to a new decision).
    svcRules.push(
      `${t}${K} @${dyn.closing} ${M} set ${K} map @${dyn.conn} update @${dyn.conn} { ${K} timeout ${limits.tcpClosingS}s : ${M} } update @${dyn.closing} { ${K} } ${M} @${n.ids} goto ${toFwd}`,
      `${t}tcp flags & (fin | rst) != 0 ${M} set ${K} map @${dyn.conn} update @${dyn.conn} { ${K} timeout ${limits.tcpClosingS}s : ${M} } update @${dyn.closing} { ${K} } ${M} @${n.ids} goto ${toFwd}`,
      `${t}${M} set ${K} map @${dyn.conn} update @${dyn.conn} { ${K} timeout ${limits.tcpTimeoutS}s : ${M} } ${M} @${n.ids} goto ${toFwd}`,
    );
  }
  if (protos.includes('udp') && udpConn) {
    svcRules.push(`${pfx('udp')}${M} set ${K} map @${dyn.conn} update @${dyn.conn} { ${K} timeout ${limits.udpTimeoutS}s : ${M} } ${M} @${n.ids} goto ${toFwd}`);
  }
  let inEffect = plan?.inEffect ?? 'none (no destination)';
  if (svc.phase === 'serving') {
    if (P && dyn.persist) svcRules.push(`${M} set ${P} map @${dyn.persist} ${M} @${n.known} goto ${n.commit}`);
    svcRules.push(`goto ${n.pick}`);
  } else {
    inEffect = `${inEffect}; not serving new connections`;
  }
  objects.push(chain(F, n.svc, svcRules), chain(F, n.pick, pickRules(M, plan, svc, n, objects, F)));
  if (protos.includes('tcp')) {
    const t = pfx('tcp');
    // Reborn flows (see above): their lifetime in the reborn set, their server a function of the flow.
    const rb = [
      `${t}tcp flags & (fin | rst) != 0 update @${dyn.reborn} { ${K} timeout ${limits.tcpClosingS}s }`,
      `${t}tcp flags & (fin | rst | syn) == 0 update @${dyn.reborn} { ${K} timeout ${limits.tcpTimeoutS}s }`,
    ];
    if (P && dyn.persist) rb.push(`${M} set ${P} map @${dyn.persist} ${M} @${n.known} goto ${n.rebornSend}`);
    if (!plan) rb.push(`counter name ${n.drop}`);
    else if (plan.flowStable) rb.push(`${schedStatements(M, plan, svc.name, objects, F)} goto ${n.rebornSend}`);
    else rb.push(`${M} set ${flowHashExpr(spec.match.family, eligible(svc), spec.hash.seed)} goto ${n.rebornSend}`);
    objects.push(
      chain(F, n.reborn, rb),
      chain(F, n.rebornSend, [`tcp flags & (syn | ack) == syn counter name ${M} map @${n.cnew}`, `goto ${n.fwd}`]),
    );
  }

  const commit: string[] = [];
  if (P && dyn.persist) commit.push(`update @${dyn.persist} { ${P} : ${M} }`);
  if (protos.includes('tcp')) commit.push(`${pfx('tcp')}update @${dyn.conn} { ${K} timeout ${limits.tcpNewS}s : ${M} } counter name ${M} map @${n.cnew} goto ${n.fwd}`);
  if (protos.includes('udp')) {
    commit.push(udpConn
      ? `${pfx('udp')}update @${dyn.conn} { ${K} timeout ${limits.udpTimeoutS}s : ${M} } counter name ${M} map @${n.cnew} goto ${n.fwd}`
      : `${pfx('udp')}counter name ${M} map @${n.cnew} goto ${n.fwd}`);
  }
  commit.push(`goto ${n.full}`);
  objects.push(chain(F, n.commit, commit));
  // Only reached when the connection table is full (the update above failed): forward without an
  // entry. A scheduler that is not a function of the flow is replaced by a flow hash so the
  // flow's later packets (which find no entry either) land on the same server.
  const full: string[] = [];
  const fallback = plan && !plan.flowStable && !P ? ` ${M} set ${flowHashExpr(spec.match.family, eligible(svc), spec.hash.seed)}` : '';
  full.push(`counter name ${n.fullCounter}${fallback}`);
  if (protos.includes('tcp')) full.push(`${pfx('tcp')}tcp flags & (syn | ack) == syn counter name ${M} map @${n.cnew}`);
  full.push(`goto ${n.fwd}`);
  objects.push(chain(F, n.full, full));
  return { objects, inEffect, sorryActive: sorry };
}

function buildNat(svc: NftServiceInput, limits: NftLimits, maglev: Maglev): ServiceBuild {
  const F = 'inet';
  const spec = svc.spec;
  const n = names(svc.name);
  const dyn = dynamicNames(svc.spec, svc.name, limits);
  const M = 'ct mark';
  const P = persistKey(spec);
  const objects: NftObj[] = counters(F, svc, n, true);
  objects.push(counter(F, n.drop));
  if (dyn.persist && dyn.persistDecl) objects.push(map(F, dyn.persist, dyn.persistDecl));
  const current = uniqueById(destsWithSorry(svc));
  objects.push(objrefMap(F, n.cnew, current.map((d) => [d.id, n.conns(d.id)])));
  const { plan, sorry } = scheduleOf(svc, limits, maglev);
  if (P) {
    const known = sorry && svc.sorry ? [...svc.dests, svc.sorry] : svc.dests;
    objects.push(idSet(F, n.known, known.map((d) => d.id)));
  }
  const svcRules: string[] = [];
  if (limits.natMidstreamDrop && protocolsOf(spec).includes('tcp')) {
    objects.push(counter(F, `${svc.name}_midstream`));
    svcRules.push(`meta l4proto tcp tcp flags & syn == 0 counter name ${svc.name}_midstream drop`);
  }
  if (P && dyn.persist) svcRules.push(`${M} set ${P} map @${dyn.persist} ${M} @${n.known} goto ${n.commit}`);
  svcRules.push(`goto ${n.pick}`);
  objects.push(chain(F, n.svc, svcRules), chain(F, n.pick, pickRules(M, plan, svc, n, objects, F)));
  const commit: string[] = [];
  if (P && dyn.persist) commit.push(`update @${dyn.persist} { ${P} : ${M} }`);
  commit.push(`counter name ${M} map @${n.cnew}`);
  objects.push(chain(F, n.commit, commit));
  let inEffect = plan?.inEffect ?? 'none (no destination)';
  if (svc.phase !== 'serving') inEffect = `${inEffect}; not serving new connections`;
  return { objects, inEffect, sorryActive: sorry };
}

// ------------------------------------------------------------------------------------------------
// Shared objects: dispatch and the NAT maps

/** Chain name of the DR ingress base chain of a device (device names may hold '.', '-', '@'). */
export function ingressChainName(device: string): string {
  const safe = device.replace(/[^A-Za-z0-9_]/g, '_');
  return `g_in_${safe}_${(hash32(device) & 0xffff).toString(16).padStart(4, '0')}`;
}

function portsText(ports: readonly { from: number; to: number }[]): string[] {
  return ports.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`));
}

/** Dispatch rules from a list of services to their S_svc chains (one verdict map per family + fwmark rules). */
function dispatchRules(services: readonly NftServiceInput[], prefix: string, nat: boolean): string[] {
  const rules: string[] = [];
  for (const f of [4, 6] as const) {
    const entries: string[] = [];
    for (const s of services) {
      const m = s.spec.match;
      if (m.kind !== 'addr' || m.family !== f) continue;
      for (const p of portsText(m.ports)) entries.push(`${m.address} . ${m.protocol} . ${p} : goto ${names(s.name).svc}`);
    }
    if (entries.length) rules.push(`${prefix}${ipKw(f)} daddr . meta l4proto . th dport vmap { ${entries.join(', ')} }`);
  }
  for (const s of services) {
    const m = s.spec.match;
    if (m.kind !== 'fwmark') continue;
    const proto = nat ? `meta nfproto ${m.family === 4 ? 'ipv4' : 'ipv6'}` : `meta protocol ${ipKw(m.family)}`;
    rules.push(`${prefix}${proto} meta mark ${hex(m.mark)} goto ${names(s.name).svc}`);
  }
  return rules;
}

/** DR: one ingress base chain per device that has a served or draining service of `services`. */
function drIngress(services: readonly NftServiceInput[]): NftObj[] {
  const objects: NftObj[] = [];
  const dr = services.filter((s) => s.spec.kind === 'DR' && s.phase !== 'idle');
  const devices = [...new Set(dr.flatMap((s) => s.ingress))].sort();
  for (const dev of devices) {
    const rules = dispatchRules(dr.filter((s) => s.ingress.includes(dev)), '', false);
    if (rules.length === 0) continue;
    objects.push(chain('netdev', ingressChainName(dev), rules, `type filter hook ingress device "${dev}" priority ${PRIO_DR_INGRESS}; policy accept;`));
  }
  return objects;
}

/**
 * The shared objects of one shard table that jump to its services' chains (a rule can only jump
 * within its table): DR ingress dispatch, NAT prerouting dispatch, and the NAT forward counting
 * (its map names the services' counters). Every shard's base chains see every packet; only the
 * shard holding its service matches it.
 */
function buildShardShared(services: readonly NftServiceInput[]): NftObj[] {
  const objects: NftObj[] = [];
  objects.push(...drIngress(services));
  const nat = services.filter((s) => s.spec.kind === 'NAT' || s.spec.kind === 'FULLNAT');
  if (nat.length > 0) {
    const pre = dispatchRules(nat.filter((s) => s.phase === 'serving'), 'ct state new ', true);
    if (pre.length) objects.push(chain('inet', 'g_pre', pre, `type filter hook prerouting priority ${PRIO_NAT_MARK}; policy accept;`));
    objects.push(...natCounting(nat));
  }
  return objects;
}

/** NAT forwarded-packet counting: the map from (direction, id) to the services' counters, and its rule. */
function natCounting(nat: readonly NftServiceInput[]): NftObj[] {
  const ctr = new Map<string, string>();
  for (const s of nat) {
    for (const id of s.counterIds) {
      ctr.set(`original . ${hex(id)}`, `"${names(s.name).inC(id)}"`);
      ctr.set(`reply . ${hex(id)}`, `"${names(s.name).outC(id)}"`);
    }
  }
  return [
    map('inet', 'g_ctr', 'type ct_dir . mark : counter;', ctr),
    chain('inet', 'g_forward', ['counter name ct direction . ct mark map @g_ctr'], `type filter hook forward priority ${PRIO_NAT_FORWARD}; policy accept;`),
  ];
}

/** The main table's shared objects; `all` = every service, `main` = those in the main table (shard 0). */
function buildShared(all: readonly NftServiceInput[], main: readonly NftServiceInput[], limits?: NftLimits): NftObj[] {
  const services = all;
  const objects: NftObj[] = [];
  // DR: one ingress base chain per device that has a served or draining service.
  objects.push(...drIngress(main));
  // Every TCP address/port service, whatever its phase: a packet of an established connection
  // (no SYN) that reaches this host's own input is dropped, never answered by the local TCP stack
  // with a reset. That happens in the milliseconds between a takeover adding the VIP and the serve
  // transaction: the client resends the packet and the connection survives the failover. A SYN
  // still gets the local stack's answer (a refused connection when nothing serves the port). For
  // 10 s after a drain ends the port is not guarded, so connections still talking are reset (cut)
  // as IPVS does when a service goes; a takeover of the address ends that window before the VIP
  // is local (cut.ts, claim).
  const own: string[] = [];
  for (const f of [4, 6] as const) {
    const entries: string[] = [];
    for (const s of services) {
      const m = s.spec.match;
      if (m.kind !== 'addr' || m.family !== f || m.protocol !== 'tcp' || s.cut) continue;
      for (const p of portsText(m.ports)) entries.push(`${m.address} . ${p}`);
    }
    if (entries.length) own.push(`${ipKw(f)} daddr . tcp dport { ${entries.join(', ')} } tcp flags & syn == 0 counter name g_vipin drop`);
  }
  if (own.length) objects.push(counter('inet', 'g_vipin'), chain('inet', 'g_vipin_chain', own, 'type filter hook input priority 0; policy accept;'));
  // NAT / FULLNAT: the hooks exist while any such service is configured (connections may drain).
  const nat = services.filter((s) => s.spec.kind === 'NAT' || s.spec.kind === 'FULLNAT');
  if (nat.length > 0) {
    const served = nat.filter((s) => s.phase === 'serving' && !s.shard);
    const pre = dispatchRules(served, 'ct state new ', true);
    if (limits?.natMidstreamDrop) {
      // conntrackd replication: right after a takeover, a real server's packet of a connection
      // whose entry is not committed yet would create a fresh, un-NATed entry in the reply
      // direction (and the commit would then clash with it): such a packet is dropped (counted)
      // and resent by the real server once the entry is in.
      objects.push(counter('inet', 'g_rs_midstream'));
      for (const f of [4, 6] as const) {
        const addrs = new Set<string>();
        for (const s of nat) for (const d of uniqueById(destsWithSorry(s))) if (d.endpoint.family === f) addrs.add(d.endpoint.address);
        if (addrs.size) pre.unshift(`ct state new ${ipKw(f)} saddr { ${[...addrs].sort().join(', ')} } tcp flags & syn == 0 counter name g_rs_midstream drop`);
      }
    }
    objects.push(chain('inet', 'g_pre', pre, `type filter hook prerouting priority ${PRIO_NAT_MARK}; policy accept;`));
    const dnat = { p4: new Map<string, string>(), a4: new Map<string, string>(), p6: new Map<string, string>(), a6: new Map<string, string>() };
    const fullnat = new Map<string, string>();
    for (const s of nat) {
      for (const d of uniqueById(destsWithSorry(s))) {
        const slot = d.endpoint.family === 4 ? (d.endpoint.port ? dnat.p4 : dnat.a4) : d.endpoint.port ? dnat.p6 : dnat.a6;
        slot.set(hex(d.id), nftEndpoint(d.endpoint, d.endpoint.port !== 0));
        if (s.spec.kind === 'FULLNAT') fullnat.set(hex(d.id), '');
      }
    }
    const [ctrMap, forward] = natCounting(nat.filter((s) => !s.shard));
    objects.push(
      map('inet', 'g_dnat4p', 'type mark : ipv4_addr . inet_service;', dnat.p4),
      map('inet', 'g_dnat4a', 'type mark : ipv4_addr;', dnat.a4),
      map('inet', 'g_dnat6p', 'type mark : ipv6_addr . inet_service;', dnat.p6),
      map('inet', 'g_dnat6a', 'type mark : ipv6_addr;', dnat.a6),
      map('inet', 'g_fullnat', 'type mark;', fullnat, 'set'),
      ctrMap!,
      chain('inet', 'g_natpre', [
        'meta nfproto ipv4 meta l4proto { tcp, udp } dnat ip addr . port to ct mark map @g_dnat4p',
        'meta nfproto ipv4 dnat ip to ct mark map @g_dnat4a',
        'meta nfproto ipv6 meta l4proto { tcp, udp } dnat ip6 addr . port to ct mark map @g_dnat6p',
        'meta nfproto ipv6 dnat ip6 to ct mark map @g_dnat6a',
      ], 'type nat hook prerouting priority -100; policy accept;'),
      chain('inet', 'g_natpost', ['ct mark @g_fullnat masquerade'], 'type nat hook postrouting priority 100; policy accept;'),
      forward!,
    );
  }
  return objects;
}

export interface BuildResult {
  readonly model: Model;
  readonly services: ReadonlyMap<string, ServiceBuild>;
}

/**
 * The whole desired ruleset. `cache` (optional) maps a service's input object to its last build,
 * so an unchanged service costs nothing (and its unchanged objects compare by identity).
 */
export function buildModel(input: BuildInput, cache?: WeakMap<NftServiceInput, ServiceBuild>): BuildResult {
  const services = [...input.services].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const groups = new Map<string, readonly NftObj[]>();
  const per = new Map<string, ServiceBuild>();
  for (const s of services) {
    let b = cache?.get(s);
    if (!b) {
      b = buildService(s, input.limits, input.maglev);
      cache?.set(s, b);
    }
    per.set(s.name, b);
    groups.set(s.name, b.objects);
  }
  // Shared objects: the main table's (group ''), and each shard table's (group ':N'), so that a
  // change in one shard rewrites only that shard's dispatch.
  const byShard = new Map<number, NftServiceInput[]>();
  for (const s of services) {
    const k = s.shard ?? 0;
    const l = byShard.get(k);
    if (l) l.push(s);
    else byShard.set(k, [s]);
  }
  groups.set('', buildShared(services, byShard.get(0) ?? [], input.limits));
  for (const [shard, list] of byShard) {
    if (shard === 0) continue;
    const objs = buildShardShared(list);
    if (objs.length) groups.set(`:${shard}`, inTable(objs, shardTable(shard)));
  }
  return { model: groups, services: per };
}

export { isControlLoopScheduler };
