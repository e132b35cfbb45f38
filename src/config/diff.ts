import { endpointText, type VirtualService } from '../util/endpoint.js';
import { parseIp } from './net.js';
import type {
  BgpConfig,
  BgpPeerConfig,
  CheckConfig,
  Config,
  GlobalConfig,
  RealServerConfig,
  SyncConfig,
  TrackRef,
  VirtualServerConfig,
  VrrpInstanceConfig,
  VrrpScriptConfig,
  VrrpSyncGroupConfig,
  VrrpTrackProcessConfig,
} from './types.js';
import { addressKey, routeKey, ruleKey, type AddressSpec, type RouteSpec, type RuleSpec } from '../net/route-spec.js';

/*
 * The reload plan: a pure, semantic diff of two loaded configs, telling the running daemon exactly
 * what to change so that everything else keeps its state.
 *
 * Identity (what "the same thing" means across a reload):
 *   vrrp_instance   (interface, address family, virtual_router_id); the name may change.
 *   virtual_server  its canonical key (address + ports, fwmark, or its virtual_server_group's name)
 *                   and protocol: a change is remove + add. The members of a group virtual server
 *                   are diffed by their keys: an added or removed member keeps the pool, its
 *                   health and the other members' connections (virtual_server_group tables are
 *                   acted on through the virtual servers using them).
 *   real_server     its canonical endpoint (address, port) within its virtual server.
 *   vrrp_script, vrrp_sync_group: by name.
 * Comparison uses the parsed forms: canonical IPs, advert_int_cs, prefix lengths, check tables
 * with inherited defaults filled in. Order never matters: not of sections, VIPs, peers, tracks,
 * sync group members nor checks.
 *
 * Every key of every config interface is classified below (identity, setting, list or parsed
 * form) and a compile-time guard fails the build when the schema grows a key nobody diffs.
 */

export interface FromTo<T> {
  from: T;
  to: T;
}

/** The changed keys of T among K, each with its old and new value. Absent key = unchanged. */
export type Settings<T, K extends keyof T> = { [P in K]?: FromTo<T[P]> };

// ---------------------------------------------------------------------------------------------
// Key classification

const VRRP_IDENTITY = ['interface', 'virtual_router_id', 'family'] as const;
const VRRP_SETTINGS = [
  'name',
  'state',
  'priority',
  'advert_int',
  'version',
  'authentication',
  'nopreempt',
  'preempt_delay',
  'unicast_src_ip',
  'mcast_src_ip',
  'garp_master_delay',
  'garp_master_repeat',
  'garp_master_refresh',
  'garp_master_refresh_repeat',
  'lower_prio_no_advert',
  'higher_prio_send_advert',
  'accept',
  'skip_check_adv_addr',
  'v3_checksum_as_v2',
  'dont_track_primary',
  'check_unicast_src',
  'unicast_peer_ttl',
  'notify_master',
  'notify_backup',
  'notify_fault',
  'notify_stop',
  'notify',
  'use_vmac',
  'vmac_xmit_base',
  'smtp_alert',
] as const;
/** Diffed entry by entry (VrrpChange's lists). */
const VRRP_LISTS = ['virtual_ipaddress', 'virtual_ipaddress_excluded', 'unicast_peer', 'track_interface', 'track_script', 'track_process', 'virtual_routes', 'virtual_rules'] as const;
/** Parsed forms of keys above; compared through them. */
const VRRP_PARSED = ['virtual_ipaddress_parsed', 'virtual_ipaddress_excluded_parsed', 'advert_int_cs', 'vmac_ifname', 'virtual_routes_parsed', 'virtual_rules_parsed'] as const;

/** The canonical key (plus the protocol, which a fwmark key leaves out) says which service it is. */
const VS_IDENTITY = ['group', 'address', 'port', 'ports', 'fwmark', 'ip_family', 'protocol', 'family'] as const;
const VS_SETTINGS = [
  'lb_algo',
  'lb_kind',
  'sched_flags',
  'mh_table_size',
  'hash_seed',
  'persistence_timeout',
  'persistence_granularity',
  'delay_loop',
  'quorum',
  'hysteresis',
  'quorum_up',
  'quorum_down',
  'smtp_alert',
  'alpha',
  'omega',
  'inhibit_on_failure',
  'sorry_server',
  'sorry_server_inhibit',
  'virtualhost',
  'ha_suspend',
  'ops',
  'retry',
  'delay_before_retry',
  'connect_timeout',
  'warmup',
  'maxconn_per_source',
  'depool_threshold',
  'proxy_protocol',
  'slow_start',
  'drain_timeout',
  'announce',
] as const;
const VS_LISTS = ['real_server', 'members'] as const;
const VS_PARSED = ['persistence_prefix', 'key', 'sorry_endpoint'] as const;

const RS_IDENTITY = ['address', 'port'] as const;
const RS_PARSED = ['endpoint'] as const;
const RS_SETTINGS = ['weight', 'inhibit_on_failure', 'notify_up', 'notify_down', 'smtp_alert', 'uthreshold', 'lthreshold'] as const;
const RS_LISTS = ['check'] as const;

const SCRIPT_SETTINGS = ['script', 'interval', 'timeout', 'weight', 'rise', 'fall', 'user', 'init_fail'] as const;
const GROUP_SETTINGS = ['notify_master', 'notify_backup', 'notify_fault', 'notify_stop', 'notify', 'smtp_alert'] as const;
const PROCESS_SETTINGS = ['process', 'param_match', 'weight', 'reverse', 'quorum', 'quorum_max', 'delay', 'fork_delay', 'terminate_delay', 'full_command'] as const;
const GROUP_LISTS = ['group', 'track_script'] as const;
/** [bgp] keys applied by regenerating bird.conf and `birdc configure` (sessions that did not change stay up). */
const BGP_LIVE = ['local_as', 'router_id', 'med', 'as_path_prepend', 'bfd_interval', 'bfd_multiplier', 'track_interface'] as const;
/** [bgp] keys that move state BIRD and the kernel hold (table, protocol number, runtime directory). */
const BGP_RESTART = ['kernel_table', 'kernel_protocol', 'runtime_dir'] as const;
const BGP_LISTS = ['peer'] as const;
const PEER_SETTINGS = ['remote_as', 'bfd', 'hold_time', 'password'] as const;
const PEER_IDENTITY = ['address', 'family'] as const;
const SYNC_SETTINGS = ['interface', 'instance', 'group', 'port', 'ttl', 'sync_id', 'auth_key', 'auth_key_file', 'unicast_peer', 'conntrackd'] as const;

export type VrrpSettingKey = (typeof VRRP_SETTINGS)[number];
export type VirtualServerSettingKey = (typeof VS_SETTINGS)[number];
export type RealServerSettingKey = (typeof RS_SETTINGS)[number];
export type VrrpScriptSettingKey = (typeof SCRIPT_SETTINGS)[number];
export type SyncGroupSettingKey = (typeof GROUP_SETTINGS)[number];
export type SyncSettingKey = (typeof SYNC_SETTINGS)[number];
export type BgpSettingKey = (typeof BGP_LIVE)[number] | (typeof BGP_RESTART)[number];
export type BgpPeerSettingKey = (typeof PEER_SETTINGS)[number];
export type TrackProcessSettingKey = (typeof PROCESS_SETTINGS)[number];
/** Global static_* lists: diffed entry by entry into plan.statics, not as settings. */
const GLOBAL_STATIC = ['static_ipaddress', 'static_routes', 'static_rules', 'static_ipaddress_parsed', 'static_routes_parsed', 'static_rules_parsed'] as const;
/** Global keys, without the parsed `metrics` / `smtp` (compared through metrics_listen / smtp_server) and the static_* lists. */
export type GlobalKey = Exclude<keyof GlobalConfig, 'metrics' | 'smtp' | (typeof GLOBAL_STATIC)[number]>;

type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
type Covers<I, L extends readonly (readonly unknown[])[]> = Exact<L[number][number], keyof I>;

export type DiffCoverageGuards = [
  Assert<Covers<VrrpInstanceConfig, [typeof VRRP_IDENTITY, typeof VRRP_SETTINGS, typeof VRRP_LISTS, typeof VRRP_PARSED]>>,
  Assert<Covers<VirtualServerConfig, [typeof VS_IDENTITY, typeof VS_SETTINGS, typeof VS_LISTS, typeof VS_PARSED]>>,
  Assert<Covers<RealServerConfig, [typeof RS_IDENTITY, typeof RS_SETTINGS, typeof RS_LISTS, typeof RS_PARSED]>>,
  Assert<Covers<VrrpScriptConfig, [['name'], typeof SCRIPT_SETTINGS]>>,
  Assert<Covers<VrrpSyncGroupConfig, [['name'], typeof GROUP_SETTINGS, typeof GROUP_LISTS]>>,
  Assert<Covers<SyncConfig, [typeof SYNC_SETTINGS]>>,
  Assert<Covers<BgpConfig, [typeof BGP_LIVE, typeof BGP_RESTART, typeof BGP_LISTS]>>,
  Assert<Covers<BgpPeerConfig, [typeof PEER_IDENTITY, typeof PEER_SETTINGS]>>,
  Assert<Covers<VrrpTrackProcessConfig, [['name'], typeof PROCESS_SETTINGS]>>,
];

/**
 * How each global key is applied on reload. `live: false` keys land in plan.global.needsRestart.
 * Keys that are defaults of instance / server keys also show up, resolved, in those sections'
 * diffs: the applier acts on those, the global entry is informational.
 */
export const GLOBAL_APPLY: { readonly [K in GlobalKey]: { readonly live: boolean; readonly how: string } } = {
  router_id: { live: true, how: 'cosmetic: used in logs and notifications from now on' },
  control_socket: {
    live: false,
    how: 'the CLI socket is bound at startup and carries the reload itself; moving it live would strand the client waiting for this reply',
  },
  metrics_listen: { live: true, how: 'the metrics HTTP server is closed and rebound on the new address (or just closed when "")' },
  pid_file: { live: false, how: 'written once at startup; supervisors (systemd PIDFile=) watch the old path' },
  vrrp_mcast_group4: {
    live: true,
    how: 'affects the multicast sockets: every multicast IPv4 instance is restarted (restartInstance), unicast ones are untouched',
  },
  vrrp_mcast_group6: {
    live: true,
    how: 'affects the multicast sockets: every multicast IPv6 instance is restarted (restartInstance), unicast ones are untouched',
  },
  vrrp_version: { live: true, how: 'default of vrrp_instance.version: acted on through the instances whose resolved version changed' },
  vrrp_garp_master_delay: { live: true, how: 'default of vrrp_instance.garp_master_delay: acted on through the instances' },
  vrrp_garp_master_repeat: { live: true, how: 'default of vrrp_instance.garp_master_repeat: acted on through the instances' },
  vrrp_garp_master_refresh: { live: true, how: 'default of vrrp_instance.garp_master_refresh: acted on through the instances' },
  vrrp_garp_master_refresh_repeat: { live: true, how: 'default of vrrp_instance.garp_master_refresh_repeat: acted on through the instances' },
  vrrp_garp_interval: { live: true, how: 'pacing of gratuitous ARPs: used by the next burst' },
  vrrp_gna_interval: { live: true, how: 'pacing of unsolicited neighbour adverts: used by the next burst' },
  vrrp_startup_delay: { live: true, how: 'only consulted at startup and for added instances; running instances are not delayed again' },
  v3_checksum_as_v2: { live: true, how: 'default of vrrp_instance.v3_checksum_as_v2: acted on through the instances' },
  vrrp_check_unicast_src: { live: true, how: 'default of vrrp_instance.check_unicast_src: acted on through the instances' },
  vrrp_rt_priority: { live: true, how: 'the sender thread\'s scheduling policy is set again at once' },
  vrrp_rlimit_rttime: { live: true, how: 'set again with vrrp_rt_priority at once' },
  drain_timeout: { live: true, how: 'used by the next stop or demotion; also the default of virtual_server.drain_timeout' },
  proxy_workers: { live: false, how: 'the proxy starts its worker threads once; a different count needs a restart' },
  enable_script_security: { live: true, how: 'checked before each script run from now on' },
  maxconn: { live: true, how: 'the connection budget is recomputed and sent to the data plane; connections over a lowered cap stay, new ones wait below it' },
  reserved_fds: { live: true, how: 'the connection budget is recomputed and sent to the data plane' },
  lvs_timeouts: { live: true, how: 'new timeouts apply to connections established from now on and to UDP flows at once' },
  script_user: { live: true, how: 'used by the next script runs' },
  notification_email: { live: true, how: 'used by the next alert mail' },
  notification_email_from: { live: true, how: 'used by the next alert mail' },
  smtp_server: { live: true, how: 'used by the next alert mail (mails already queued go to the new server too)' },
  smtp_helo_name: { live: true, how: 'used by the next alert mail' },
  smtp_connect_timeout: { live: true, how: 'used by the next alert mail' },
  smtp_alert: { live: true, how: 'default of the smtp_alert keys: acted on through the resolved values of instances, groups and servers' },
  smtp_alert_vrrp: { live: true, how: 'default of vrrp_instance / vrrp_sync_group smtp_alert: acted on through them' },
  smtp_alert_checker: { live: true, how: 'default of virtual_server / real_server smtp_alert: acted on through them' },
  no_email_faults: { live: true, how: 'consulted for the next FAULT transition' },
};

const GLOBAL_KEYS = Object.keys(GLOBAL_APPLY) as GlobalKey[];

// ---------------------------------------------------------------------------------------------
// The plan

export interface TrackChange {
  added: TrackRef[];
  removed: TrackRef[];
  /** Same name on both sides, different weight. */
  reweighted: Array<{ name: string; from: number; to: number }>;
}

/** A VIP whose address stays but whose prefix changes: it is in both *Removed and *Added. */
export interface PrefixChange {
  address: string;
  from: number;
  to: number;
}

export interface VrrpChange {
  /** Changed settings (advert_int compared in centiseconds, IPs canonically). */
  settings: Settings<VrrpInstanceConfig, VrrpSettingKey>;
  /** Canonical "addr/prefix" of VIPs to add / remove; a VIP on both sides is in neither. */
  vipsAdded: string[];
  vipsRemoved: string[];
  vipsReprefixed: PrefixChange[];
  excludedAdded: string[];
  excludedRemoved: string[];
  excludedReprefixed: PrefixChange[];
  unicastPeersAdded: string[];
  unicastPeersRemoved: string[];
  trackInterface: TrackChange;
  trackScript: TrackChange;
  trackProcess: TrackChange;
  /** virtual_routes / virtual_rules only in next / only in current (compared by what the kernel keys on). */
  routesAdded: RouteSpec[];
  routesRemoved: RouteSpec[];
  rulesAdded: RuleSpec[];
  rulesRemoved: RuleSpec[];
  /** The change cannot be applied in place: treat the instance as removed and re-added. */
  restartInstance: boolean;
  restartReasons: string[];
}

export interface KeptVrrpInstance {
  current: VrrpInstanceConfig;
  next: VrrpInstanceConfig;
  changes: VrrpChange;
}

export interface KeptRealServer {
  current: RealServerConfig;
  next: RealServerConfig;
  weightChanged: boolean;
  /** The set of checks differs (order is irrelevant). */
  checksChanged: boolean;
  /** Changed settings other than weight. */
  otherChanges: Exclude<RealServerSettingKey, 'weight'>[];
  settings: Settings<RealServerConfig, RealServerSettingKey>;
  /** Checks only in current / only in next (when checksChanged). */
  checksRemoved: CheckConfig[];
  checksAdded: CheckConfig[];
}

export interface RealServerPlan {
  added: RealServerConfig[];
  /** To drain (for the virtual server's drain_timeout), not to cut. */
  removed: RealServerConfig[];
  kept: KeptRealServer[];
}

export interface VirtualServerChange {
  /** Changed settings (persistence_granularity compared as a prefix, sorry_server canonically). */
  settings: Settings<VirtualServerConfig, VirtualServerSettingKey>;
  realServers: RealServerPlan;
  /** Group virtual servers: services that join the group (served with the shared pool) / leave it (drain). */
  membersAdded: VirtualService[];
  membersRemoved: VirtualService[];
}

export interface KeptVirtualServer {
  current: VirtualServerConfig;
  next: VirtualServerConfig;
  changes: VirtualServerChange;
}

export interface NamedChanges<T, K extends keyof T, Extra = object> {
  added: T[];
  removed: T[];
  /** Only the entries that differ. */
  changed: Array<{ current: T; next: T; settings: Settings<T, K> } & Extra>;
}

export interface SyncGroupExtra {
  membersAdded: string[];
  membersRemoved: string[];
  trackScript: TrackChange;
}

export interface SyncChange {
  /** undefined when the section is added (before) / removed (after). */
  before: SyncConfig | undefined;
  after: SyncConfig | undefined;
  /** Changed keys when the section exists on both sides. */
  changed: SyncSettingKey[];
}

export interface BgpChange {
  /** undefined when the section is added (before) / removed (after): both need a restart. */
  before: BgpConfig | undefined;
  after: BgpConfig | undefined;
  settings: Settings<BgpConfig, BgpSettingKey>;
  /** Peers by canonical address. A changed peer's session restarts; the others keep theirs. */
  peers: NamedChanges<BgpPeerConfig, BgpPeerSettingKey>;
  /** What cannot be applied live ("[bgp] added", "bgp.kernel_table", ...); the daemon must be restarted. */
  needsRestart: string[];
}

/** static_ipaddress / static_routes / static_rules entries to add and to remove on reload. */
export interface StaticChange {
  addressesAdded: AddressSpec[];
  addressesRemoved: AddressSpec[];
  routesAdded: RouteSpec[];
  routesRemoved: RouteSpec[];
  rulesAdded: RuleSpec[];
  rulesRemoved: RuleSpec[];
}

export interface GlobalChange {
  changed: GlobalKey[];
  /** Changed keys that cannot be applied live (see GLOBAL_APPLY); the daemon must be restarted. */
  needsRestart: GlobalKey[];
  settings: Settings<GlobalConfig, GlobalKey>;
}

export interface ReloadPlan {
  vrrp: { added: VrrpInstanceConfig[]; removed: VrrpInstanceConfig[]; kept: KeptVrrpInstance[] };
  vrrpScripts: NamedChanges<VrrpScriptConfig, VrrpScriptSettingKey>;
  trackProcesses: NamedChanges<VrrpTrackProcessConfig, TrackProcessSettingKey>;
  statics: StaticChange;
  syncGroups: NamedChanges<VrrpSyncGroupConfig, SyncGroupSettingKey, SyncGroupExtra>;
  virtualServers: { added: VirtualServerConfig[]; removed: VirtualServerConfig[]; kept: KeptVirtualServer[] };
  sync: SyncChange | null;
  bgp: BgpChange | null;
  global: GlobalChange;
  /** One human line per change, for the reload reply; empty when nothing changed. Secrets are never printed. */
  summary: string[];
}

// ---------------------------------------------------------------------------------------------
// Generic helpers

/** Canonical text of an IP (RFC 5952 for IPv6); anything else unchanged. */
function canonIp(text: string): string {
  return parseIp(text)?.address ?? text;
}

/** JSON with sorted object keys and undefined members dropped: equal values, equal text. */
function stable(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  const entries = Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stable(x)}`).join(',')}}`;
}

/** Order-insensitive multiset difference by key; both outputs keep their side's order. */
function multisetDiff<T>(current: readonly T[], next: readonly T[], key: (t: T) => string): { added: T[]; removed: T[] } {
  const left = new Map<string, number>();
  const currentKeys = current.map(key);
  for (const k of currentKeys) left.set(k, (left.get(k) ?? 0) + 1);
  const added: T[] = [];
  for (const n of next) {
    const k = key(n);
    const count = left.get(k) ?? 0;
    if (count > 0) left.set(k, count - 1);
    else added.push(n);
  }
  const removed: T[] = [];
  for (let i = 0; i < current.length; i++) {
    const c = current[i]!;
    const k = currentKeys[i]!;
    const count = left.get(k) ?? 0;
    if (count > 0) {
      removed.push(c);
      left.set(k, count - 1);
    }
  }
  return { added, removed };
}

/**
 * Pairs entries by identity key. Keys are unique per side (validation); should they not be, equal
 * keys pair up in file order rather than being lost.
 */
function matchBy<T>(current: readonly T[], next: readonly T[], key: (t: T) => string): { added: T[]; removed: T[]; pairs: Array<[T, T]> } {
  const queues = new Map<string, T[]>();
  for (const c of current) {
    const k = key(c);
    const q = queues.get(k);
    if (q) q.push(c);
    else queues.set(k, [c]);
  }
  const added: T[] = [];
  const pairs: Array<[T, T]> = [];
  const paired = new Set<T>();
  for (const n of next) {
    const c = queues.get(key(n))?.shift();
    if (c === undefined) added.push(n);
    else {
      pairs.push([c, n]);
      paired.add(c);
    }
  }
  return { added, removed: current.filter((c) => !paired.has(c)), pairs };
}

/**
 * matchBy, pairing an entry present on both sides as the same object first (without its key: an
 * unchanged virtual server reused by the incremental load); the others by key. Keys are unique
 * per side, so an object kept as it is cannot take another entry's key.
 */
function matchSameFirst<T extends object>(current: readonly T[], next: readonly T[], key: (t: T) => string): { added: T[]; removed: T[]; pairs: Array<[T, T]> } {
  const before = new Set(current);
  const same = new Set<T>();
  const rest: T[] = [];
  for (const n of next) {
    if (before.has(n)) same.add(n);
    else rest.push(n);
  }
  if (same.size === 0) return matchBy(current, next, key);
  const m = matchBy(current.filter((c) => !same.has(c)), rest, key);
  const byNext = new Map(m.pairs.map((p) => [p[1], p]));
  const pairs: Array<[T, T]> = [];
  for (const n of next) {
    if (same.has(n)) pairs.push([n, n]);
    else {
      const p = byNext.get(n);
      if (p) pairs.push(p);
    }
  }
  return { added: m.added, removed: m.removed, pairs };
}

type Normalizers<T> = { [K in keyof T]?: (value: T[K], owner: T) => unknown };

/**
 * stable(a) === stable(b), without building the two strings: the reload of an unchanged
 * 1,000-server file compares tens of thousands of values, nearly all equal.
 */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    return typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i])) return false;
    return true;
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  let na = 0;
  for (const k in ra) {
    if (!Object.hasOwn(ra, k) || ra[k] === undefined) continue;
    na++;
    if (!Object.hasOwn(rb, k) || !sameValue(ra[k], rb[k])) return false;
  }
  let nb = 0;
  for (const k in rb) if (Object.hasOwn(rb, k) && rb[k] !== undefined) nb++;
  return na === nb;
}

function diffSettings<T, K extends keyof T>(a: T, b: T, keys: readonly K[], norm: Normalizers<T> = {}): Settings<T, K> {
  const out: Settings<T, K> = {};
  for (const k of keys) {
    const f = norm[k] as ((value: T[K], owner: T) => unknown) | undefined;
    const va = f ? f(a[k], a) : a[k];
    const vb = f ? f(b[k], b) : b[k];
    if (!sameValue(va, vb)) out[k] = { from: a[k], to: b[k] };
  }
  return out;
}

const optIp = (v: string | undefined): string | undefined => (v === undefined ? undefined : canonIp(v));
const ipSet = (list: readonly string[]): string[] => list.map(canonIp).sort();
const nameSet = (list: readonly string[]): string[] => [...list].sort();

function trackDiff(current: readonly TrackRef[], next: readonly TrackRef[]): TrackChange {
  const { added, removed } = multisetDiff(current, next, (t) => `${t.name}\u0000${t.weight}`);
  const reweighted: TrackChange['reweighted'] = [];
  const count = (list: readonly TrackRef[], name: string): number => list.filter((t) => t.name === name).length;
  for (const r of [...removed]) {
    const a = added.find((t) => t.name === r.name);
    if (a && count(added, r.name) === 1 && count(removed, r.name) === 1) {
      reweighted.push({ name: r.name, from: r.weight, to: a.weight });
      removed.splice(removed.indexOf(r), 1);
      added.splice(added.indexOf(a), 1);
    }
  }
  return { added, removed, reweighted };
}

function isEmptyTrack(t: TrackChange): boolean {
  return t.added.length === 0 && t.removed.length === 0 && t.reweighted.length === 0;
}

interface Cidr {
  address: string;
  prefix: number;
}

function cidrDiff(current: readonly Cidr[], next: readonly Cidr[]): { added: string[]; removed: string[]; reprefixed: PrefixChange[] } {
  const { added, removed } = multisetDiff(current, next, (c) => `${c.address}/${c.prefix}`);
  const reprefixed: PrefixChange[] = [];
  const pending = [...added];
  for (const r of removed) {
    const i = pending.findIndex((a) => a.address === r.address);
    if (i >= 0) {
      reprefixed.push({ address: r.address, from: r.prefix, to: pending[i]!.prefix });
      pending.splice(i, 1);
    }
  }
  const text = (c: Cidr): string => `${c.address}/${c.prefix}`;
  return { added: added.map(text), removed: removed.map(text), reprefixed };
}

// ---------------------------------------------------------------------------------------------
// Sections

const familyName = (f: 4 | 6): string => (f === 4 ? 'IPv4' : 'IPv6');
const vrrpKey = (vi: VrrpInstanceConfig): string => `${vi.interface}|${vi.family}|${vi.virtual_router_id}`;

const VRRP_NORM: Normalizers<VrrpInstanceConfig> = {
  advert_int: (_v, vi) => vi.advert_int_cs,
  // Peers themselves are diffed entry by entry (unicast_peer); this shows only TTL bounds set.
  unicast_peer_ttl: (v) => v.filter((p) => p.min_ttl !== 0 || p.max_ttl !== 255).map((p) => `${canonIp(p.address)} ${p.min_ttl}..${p.max_ttl}`).sort(),
  unicast_src_ip: optIp,
  mcast_src_ip: optIp,
};

function diffVrrp(a: VrrpInstanceConfig, b: VrrpInstanceConfig, global: GlobalChange, ga: GlobalConfig, gb: GlobalConfig): VrrpChange {
  const vips = cidrDiff(a.virtual_ipaddress_parsed, b.virtual_ipaddress_parsed);
  const excluded = cidrDiff(a.virtual_ipaddress_excluded_parsed, b.virtual_ipaddress_excluded_parsed);
  const peers = multisetDiff(a.unicast_peer.map(canonIp), b.unicast_peer.map(canonIp), (p) => p);
  const settings = diffSettings(a, b, VRRP_SETTINGS, VRRP_NORM);
  const restartReasons: string[] = [];
  if (settings.version) {
    restartReasons.push(`version ${a.version} -> ${b.version} changes the advert format and timers; it cannot be applied in place`);
  }
  const groupKey = b.family === 4 ? 'vrrp_mcast_group4' : 'vrrp_mcast_group6';
  const multicast = a.unicast_peer.length === 0 || b.unicast_peer.length === 0;
  if (global.settings[groupKey] && multicast) {
    restartReasons.push(`global.${groupKey} ${ga[groupKey]} -> ${gb[groupKey]} changes the instance's multicast socket`);
  }
  if (a.vmac_ifname !== b.vmac_ifname || (a.vmac_ifname !== null && a.vmac_xmit_base !== b.vmac_xmit_base)) {
    restartReasons.push('use_vmac / vmac_xmit_base change the interface the instance runs on; it cannot be moved in place');
  }
  const routes = multisetDiff(a.virtual_routes_parsed, b.virtual_routes_parsed, fullRouteKey);
  const rules = multisetDiff(a.virtual_rules_parsed, b.virtual_rules_parsed, fullRuleKey);
  return {
    settings,
    vipsAdded: vips.added,
    vipsRemoved: vips.removed,
    vipsReprefixed: vips.reprefixed,
    excludedAdded: excluded.added,
    excludedRemoved: excluded.removed,
    excludedReprefixed: excluded.reprefixed,
    unicastPeersAdded: peers.added,
    unicastPeersRemoved: peers.removed,
    trackInterface: trackDiff(a.track_interface, b.track_interface),
    trackScript: trackDiff(a.track_script, b.track_script),
    trackProcess: trackDiff(a.track_process, b.track_process),
    routesAdded: routes.added,
    routesRemoved: routes.removed,
    rulesAdded: rules.added,
    rulesRemoved: rules.removed,
    restartInstance: restartReasons.length > 0,
    restartReasons,
  };
}

export function isEmptyVrrpChange(c: VrrpChange): boolean {
  return (
    Object.keys(c.settings).length === 0 &&
    c.vipsAdded.length === 0 &&
    c.vipsRemoved.length === 0 &&
    c.excludedAdded.length === 0 &&
    c.excludedRemoved.length === 0 &&
    c.unicastPeersAdded.length === 0 &&
    c.unicastPeersRemoved.length === 0 &&
    isEmptyTrack(c.trackInterface) &&
    isEmptyTrack(c.trackScript) &&
    isEmptyTrack(c.trackProcess) &&
    c.routesAdded.length === 0 &&
    c.routesRemoved.length === 0 &&
    c.rulesAdded.length === 0 &&
    c.rulesRemoved.length === 0 &&
    !c.restartInstance
  );
}

/** Every field of a route or rule (the key plus what the kernel does not key on), so any edit is a change. */
const fullRouteKey = (r: RouteSpec): string => `${routeKey(r)}#${stable({ ...r, text: undefined })}`;
const fullRuleKey = (r: RuleSpec): string => `${ruleKey(r)}#${stable({ ...r, text: undefined })}`;
const fullAddressKey = (a: AddressSpec): string => `${addressKey(a)}#${stable({ ...a, text: undefined })}`;

function diffStatics(a: GlobalConfig, b: GlobalConfig): StaticChange {
  const addresses = multisetDiff(a.static_ipaddress_parsed, b.static_ipaddress_parsed, fullAddressKey);
  const routes = multisetDiff(a.static_routes_parsed, b.static_routes_parsed, fullRouteKey);
  const rules = multisetDiff(a.static_rules_parsed, b.static_rules_parsed, fullRuleKey);
  return {
    addressesAdded: addresses.added,
    addressesRemoved: addresses.removed,
    routesAdded: routes.added,
    routesRemoved: routes.removed,
    rulesAdded: rules.added,
    rulesRemoved: rules.removed,
  };
}

function isEmptyStatics(c: StaticChange): boolean {
  return Object.values(c).every((list: unknown[]) => list.length === 0);
}

const vsKey = (vs: VirtualServerConfig): string => `${vs.key}|${vs.protocol}`;
const rsKey = (rs: RealServerConfig): string => endpointText(rs.endpoint);

const VS_NORM: Normalizers<VirtualServerConfig> = {
  persistence_granularity: (_v, vs) => vs.persistence_prefix,
  sorry_server: (v) => (v === undefined ? undefined : { address: canonIp(v.address), port: v.port }),
};

/** A check in comparable form: canonical IPs and digest, status codes as a set. */
function checkKey(check: CheckConfig): string {
  const c: Record<string, unknown> = { ...check, connect_ip: canonIp(check.connect_ip) };
  if (check.bind_to !== undefined) c.bind_to = canonIp(check.bind_to);
  if ('status_code' in check) c.status_code = [...new Set(check.status_code)].sort((x, y) => x - y);
  if ('digest' in check && check.digest !== undefined) c.digest = check.digest.toLowerCase();
  return stable(c);
}

function diffRealServer(a: RealServerConfig, b: RealServerConfig): KeptRealServer {
  const settings = diffSettings(a, b, RS_SETTINGS);
  // The same checks in the same order (the usual case) need no canonical keys.
  const checks = sameValue(a.check, b.check) ? { added: [], removed: [] } : multisetDiff(a.check, b.check, checkKey);
  return {
    current: a,
    next: b,
    weightChanged: settings.weight !== undefined,
    checksChanged: checks.added.length > 0 || checks.removed.length > 0,
    otherChanges: RS_SETTINGS.filter((k): k is Exclude<RealServerSettingKey, 'weight'> => k !== 'weight' && settings[k] !== undefined),
    settings,
    checksRemoved: checks.removed,
    checksAdded: checks.added,
  };
}

function diffVirtualServer(a: VirtualServerConfig, b: VirtualServerConfig): VirtualServerChange {
  const m = matchBy(a.real_server, b.real_server, rsKey);
  const members = multisetDiff(a.members, b.members, (x) => x.key);
  return {
    settings: diffSettings(a, b, VS_SETTINGS, VS_NORM),
    realServers: { added: m.added, removed: m.removed, kept: m.pairs.map(([x, y]) => diffRealServer(x, y)) },
    membersAdded: members.added,
    membersRemoved: members.removed,
  };
}

/** The change of a virtual server compared with itself: nothing, every real server kept as it is. */
function unchangedVirtualServer(vs: VirtualServerConfig): VirtualServerChange {
  const kept = vs.real_server.map((rs): KeptRealServer => ({
    current: rs, next: rs, weightChanged: false, checksChanged: false, otherChanges: [], settings: {}, checksRemoved: [], checksAdded: [],
  }));
  return { settings: {}, realServers: { added: [], removed: [], kept }, membersAdded: [], membersRemoved: [] };
}

const isEmptyRealServer = (k: KeptRealServer): boolean => !k.weightChanged && !k.checksChanged && k.otherChanges.length === 0;

export function isEmptyVirtualServerChange(c: VirtualServerChange): boolean {
  const rs = c.realServers;
  return Object.keys(c.settings).length === 0 && rs.added.length === 0 && rs.removed.length === 0 && rs.kept.every(isEmptyRealServer) && c.membersAdded.length === 0 && c.membersRemoved.length === 0;
}

function diffNamed<T extends { name: string }, K extends keyof T, Extra extends object>(
  current: readonly T[],
  next: readonly T[],
  keys: readonly K[],
  extra: (a: T, b: T) => { value: Extra; empty: boolean },
): NamedChanges<T, K, Extra> {
  const m = matchBy(current, next, (x) => x.name);
  const changed: NamedChanges<T, K, Extra>['changed'] = [];
  for (const [a, b] of m.pairs) {
    const settings = diffSettings(a, b, keys);
    const e = extra(a, b);
    if (Object.keys(settings).length > 0 || !e.empty) changed.push({ current: a, next: b, settings, ...e.value });
  }
  return { added: m.added, removed: m.removed, changed };
}

const SYNC_NORM: Normalizers<SyncConfig> = { group: canonIp, unicast_peer: ipSet };

function diffSync(a: SyncConfig | undefined, b: SyncConfig | undefined): SyncChange | null {
  if (a === undefined && b === undefined) return null;
  if (a === undefined || b === undefined) return { before: a, after: b, changed: [] };
  const changed = Object.keys(diffSettings(a, b, SYNC_SETTINGS, SYNC_NORM)) as SyncSettingKey[];
  return changed.length === 0 ? null : { before: a, after: b, changed };
}

function diffBgp(a: BgpConfig | undefined, b: BgpConfig | undefined): BgpChange | null {
  if (a === undefined && b === undefined) return null;
  const noPeers: NamedChanges<BgpPeerConfig, BgpPeerSettingKey> = { added: [], removed: [], changed: [] };
  if (a === undefined || b === undefined) {
    return { before: a, after: b, settings: {}, peers: noPeers, needsRestart: [a === undefined ? '[bgp] added' : '[bgp] removed'] };
  }
  const settings = diffSettings(a, b, [...BGP_LIVE, ...BGP_RESTART], { track_interface: (v) => (v === undefined ? undefined : nameSet(v)) });
  const m = matchBy(a.peer, b.peer, (p) => p.address);
  const changed: NamedChanges<BgpPeerConfig, BgpPeerSettingKey>['changed'] = [];
  for (const [x, y] of m.pairs) {
    const ps = diffSettings(x, y, PEER_SETTINGS);
    if (Object.keys(ps).length > 0) changed.push({ current: x, next: y, settings: ps });
  }
  const peers = { added: m.added, removed: m.removed, changed };
  const needsRestart = BGP_RESTART.filter((k) => settings[k] !== undefined).map((k) => `bgp.${k}`);
  const empty = Object.keys(settings).length === 0 && peers.added.length === 0 && peers.removed.length === 0 && changed.length === 0;
  return empty ? null : { before: a, after: b, settings, peers, needsRestart };
}

const GLOBAL_NORM: Normalizers<GlobalConfig> = {
  metrics_listen: (_v, g) => (g.metrics === null ? null : { host: canonIp(g.metrics.host).toLowerCase(), port: g.metrics.port }),
  vrrp_mcast_group4: canonIp,
  vrrp_mcast_group6: canonIp,
};

function diffGlobal(a: GlobalConfig, b: GlobalConfig): GlobalChange {
  const settings = diffSettings(a, b, GLOBAL_KEYS, GLOBAL_NORM);
  const changed = GLOBAL_KEYS.filter((k) => settings[k] !== undefined);
  return { changed, needsRestart: changed.filter((k) => !GLOBAL_APPLY[k].live), settings };
}

// ---------------------------------------------------------------------------------------------
// Entry points

export function planReload(current: Config, next: Config): ReloadPlan {
  const global = diffGlobal(current.global, next.global);

  const vi = matchBy(current.vrrp_instance, next.vrrp_instance, vrrpKey);
  const vrrp = {
    added: vi.added,
    removed: vi.removed,
    kept: vi.pairs.map(([a, b]) => ({ current: a, next: b, changes: diffVrrp(a, b, global, current.global, next.global) })),
  };

  const vrrpScripts = diffNamed(current.vrrp_script, next.vrrp_script, SCRIPT_SETTINGS, () => ({ value: {}, empty: true }));
  const trackProcesses = diffNamed(current.vrrp_track_process, next.vrrp_track_process, PROCESS_SETTINGS, () => ({ value: {}, empty: true }));
  const syncGroups = diffNamed(current.vrrp_sync_group, next.vrrp_sync_group, GROUP_SETTINGS, (a, b): { value: SyncGroupExtra; empty: boolean } => {
    const members = multisetDiff(nameSet(a.group), nameSet(b.group), (n) => n);
    const trackScript = trackDiff(a.track_script, b.track_script);
    return {
      value: { membersAdded: members.added, membersRemoved: members.removed, trackScript },
      empty: members.added.length === 0 && members.removed.length === 0 && isEmptyTrack(trackScript),
    };
  });

  const vs = matchSameFirst(current.virtual_server, next.virtual_server, vsKey);
  const virtualServers = {
    added: vs.added,
    removed: vs.removed,
    // The same object (an unchanged block of the file, reused by the incremental load): unchanged
    // without looking inside, so the plan costs what changed, not the size of the file.
    kept: vs.pairs.map(([a, b]) => ({ current: a, next: b, changes: a === b ? unchangedVirtualServer(a) : diffVirtualServer(a, b) })),
  };

  const plan: ReloadPlan = {
    vrrp,
    vrrpScripts,
    trackProcesses,
    statics: diffStatics(current.global, next.global),
    syncGroups,
    virtualServers,
    sync: diffSync(current.sync, next.sync),
    bgp: diffBgp(current.bgp, next.bgp),
    global,
    summary: [],
  };
  plan.summary = summarize(plan);
  return plan;
}

/** True when applying the plan changes nothing. */
export function isEmpty(plan: ReloadPlan): boolean {
  return (
    plan.vrrp.added.length === 0 &&
    plan.vrrp.removed.length === 0 &&
    plan.vrrp.kept.every((k) => isEmptyVrrpChange(k.changes)) &&
    plan.vrrpScripts.added.length === 0 &&
    plan.vrrpScripts.removed.length === 0 &&
    plan.vrrpScripts.changed.length === 0 &&
    plan.trackProcesses.added.length === 0 &&
    plan.trackProcesses.removed.length === 0 &&
    plan.trackProcesses.changed.length === 0 &&
    isEmptyStatics(plan.statics) &&
    plan.syncGroups.added.length === 0 &&
    plan.syncGroups.removed.length === 0 &&
    plan.syncGroups.changed.length === 0 &&
    plan.virtualServers.added.length === 0 &&
    plan.virtualServers.removed.length === 0 &&
    plan.virtualServers.kept.every((k) => isEmptyVirtualServerChange(k.changes)) &&
    plan.sync === null &&
    plan.bgp === null &&
    plan.global.changed.length === 0
  );
}

// ---------------------------------------------------------------------------------------------
// Summary

/** A value for a summary line: bare when it reads unambiguously, JSON-quoted otherwise. */
function show(v: unknown): string {
  if (v === undefined) return '(unset)';
  if (typeof v === 'string') return /^[\w.:/@[\]-]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'object' && v !== null && 'address' in v && 'port' in v) {
    const s = v as { address: string; port: number };
    return endpointText({ address: canonIp(s.address), port: s.port });
  }
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

const SECRET_KEYS = new Set(['authentication', 'auth_key', 'password']);

function settingLines(prefix: string, settings: { [k: string]: FromTo<unknown> | undefined }, suffix: (key: string) => string = () => ''): string[] {
  const lines: string[] = [];
  for (const [key, ft] of Object.entries(settings)) {
    if (ft === undefined) continue;
    if (SECRET_KEYS.has(key)) {
      const what = ft.from === undefined ? 'set' : ft.to === undefined ? 'removed' : 'changed';
      lines.push(`${prefix}${key} ${what}${suffix(key)}`);
    } else {
      lines.push(`${prefix}${key} ${show(ft.from)} -> ${show(ft.to)}${suffix(key)}`);
    }
  }
  return lines;
}

function trackLines(prefix: string, key: string, t: TrackChange): string[] {
  return [
    ...t.added.map((r) => `${prefix}+${key} ${r.name} (weight ${r.weight})`),
    ...t.removed.map((r) => `${prefix}-${key} ${r.name}`),
    ...t.reweighted.map((r) => `${prefix}${key} ${r.name} weight ${r.from} -> ${r.to}`),
  ];
}

function cidrLines(prefix: string, what: string, added: string[], removed: string[], reprefixed: PrefixChange[]): string[] {
  const moved = new Set(reprefixed.flatMap((r) => [`${r.address}/${r.from}`, `${r.address}/${r.to}`]));
  return [
    ...removed.filter((c) => !moved.has(c)).map((c) => `${prefix}-${what} ${c}`),
    ...added.filter((c) => !moved.has(c)).map((c) => `${prefix}+${what} ${c}`),
    ...reprefixed.map((r) => `${prefix}${what} ${r.address} prefix /${r.from} -> /${r.to} (removed and re-added)`),
  ];
}

const vrrpLabel = (vi: VrrpInstanceConfig): string => `vrrp_instance ${vi.name} (${vi.interface}, VRID ${vi.virtual_router_id}, ${familyName(vi.family)})`;
const vsLabel = (vs: VirtualServerConfig): string => `virtual_server ${vs.key}`;
const rsLabel = (rs: RealServerConfig): string => `real_server ${endpointText(rs.endpoint)}`;

function checkLines(prefix: string, k: KeptRealServer): string[] {
  const [r] = k.checksRemoved;
  const [a] = k.checksAdded;
  if (k.checksRemoved.length === 1 && k.checksAdded.length === 1 && r!.type === a!.type) {
    const keys = [...new Set([...Object.keys(r!), ...Object.keys(a!)])].sort();
    const rec = (c: CheckConfig): Record<string, unknown> => c as unknown as Record<string, unknown>;
    const diffs = keys.filter((key) => stable(rec(r!)[key]) !== stable(rec(a!)[key])).map((key) => `${key} ${show(rec(r!)[key])} -> ${show(rec(a!)[key])}`);
    // Canonically equal keys (IP spelling, status order) are not listed; fall back to the type.
    return [`${prefix}check ${a!.type}: ${diffs.length > 0 ? diffs.join(', ') : 'changed'}`];
  }
  return [...k.checksRemoved.map((c) => `${prefix}-check ${c.type}`), ...k.checksAdded.map((c) => `${prefix}+check ${c.type}`)];
}

function summarize(plan: ReloadPlan): string[] {
  const out: string[] = [];
  const g = plan.global;
  out.push(
    ...settingLines('global: ', g.settings, (key) => (GLOBAL_APPLY[key as GlobalKey].live ? '' : ' (needs a daemon restart)')),
  );

  const s = plan.vrrpScripts;
  out.push(...s.removed.map((x) => `-vrrp_script ${x.name}`), ...s.added.map((x) => `+vrrp_script ${x.name}`));
  for (const c of s.changed) out.push(...settingLines(`vrrp_script ${c.next.name}: `, c.settings));
  const tp = plan.trackProcesses;
  out.push(...tp.removed.map((x) => `-vrrp_track_process ${x.name}`), ...tp.added.map((x) => `+vrrp_track_process ${x.name}`));
  for (const c of tp.changed) out.push(...settingLines(`vrrp_track_process ${c.next.name}: `, c.settings));
  const st = plan.statics;
  out.push(
    ...st.addressesRemoved.map((x) => `-static_ipaddress ${x.text}`),
    ...st.addressesAdded.map((x) => `+static_ipaddress ${x.text}`),
    ...st.routesRemoved.map((x) => `-static_routes ${x.text}`),
    ...st.routesAdded.map((x) => `+static_routes ${x.text}`),
    ...st.rulesRemoved.map((x) => `-static_rules ${x.text}`),
    ...st.rulesAdded.map((x) => `+static_rules ${x.text}`),
  );

  out.push(...plan.vrrp.removed.map((vi) => `-${vrrpLabel(vi)}`), ...plan.vrrp.added.map((vi) => `+${vrrpLabel(vi)}`));
  for (const { next, changes: c } of plan.vrrp.kept) {
    const p = `vrrp_instance ${next.name}: `;
    out.push(
      ...settingLines(p, c.settings),
      ...cidrLines(p, 'VIP', c.vipsAdded, c.vipsRemoved, c.vipsReprefixed),
      ...cidrLines(p, 'excluded VIP', c.excludedAdded, c.excludedRemoved, c.excludedReprefixed),
      ...c.unicastPeersRemoved.map((x) => `${p}-unicast_peer ${x}`),
      ...c.unicastPeersAdded.map((x) => `${p}+unicast_peer ${x}`),
      ...trackLines(p, 'track_interface', c.trackInterface),
      ...trackLines(p, 'track_script', c.trackScript),
      ...trackLines(p, 'track_process', c.trackProcess),
      ...c.routesRemoved.map((x) => `${p}-virtual_routes ${x.text}`),
      ...c.routesAdded.map((x) => `${p}+virtual_routes ${x.text}`),
      ...c.rulesRemoved.map((x) => `${p}-virtual_rules ${x.text}`),
      ...c.rulesAdded.map((x) => `${p}+virtual_rules ${x.text}`),
      ...c.restartReasons.map((r) => `${p}restarts (removed and re-added): ${r}`),
    );
  }

  const sg = plan.syncGroups;
  out.push(...sg.removed.map((x) => `-vrrp_sync_group ${x.name}`), ...sg.added.map((x) => `+vrrp_sync_group ${x.name}`));
  for (const c of sg.changed) {
    const p = `vrrp_sync_group ${c.next.name}: `;
    out.push(
      ...settingLines(p, c.settings),
      ...c.membersRemoved.map((m) => `${p}-member ${m}`),
      ...c.membersAdded.map((m) => `${p}+member ${m}`),
      ...trackLines(p, 'track_script', c.trackScript),
    );
  }

  const vs = plan.virtualServers;
  out.push(...vs.removed.map((x) => `-${vsLabel(x)}`), ...vs.added.map((x) => `+${vsLabel(x)}`));
  for (const { current, next, changes: c } of vs.kept) {
    if (current === next) continue;
    const p = `${vsLabel(next)}: `;
    out.push(...settingLines(p, c.settings));
    out.push(...c.membersRemoved.map((x) => `${p}-member ${x.key} (draining)`), ...c.membersAdded.map((x) => `${p}+member ${x.key}`));
    out.push(...c.realServers.removed.map((rs) => `${p}-${rsLabel(rs)} (draining)`), ...c.realServers.added.map((rs) => `${p}+${rsLabel(rs)}`));
    for (const k of c.realServers.kept) {
      const rp = `${p}${rsLabel(k.next)} `;
      out.push(...settingLines(rp, k.settings));
      if (k.checksChanged) out.push(...checkLines(rp, k));
    }
  }

  if (plan.bgp) {
    const { before, after, settings, peers } = plan.bgp;
    const peerLabel = (p: BgpPeerConfig): string => `bgp peer ${p.address} (AS ${p.remote_as})`;
    if (before === undefined) out.push(`+bgp (AS ${after!.local_as}, ${after!.peer.length} peer(s)) (needs a daemon restart)`);
    else if (after === undefined) out.push('-bgp (needs a daemon restart)');
    else {
      out.push(...settingLines('bgp: ', settings, (key) => ((BGP_RESTART as readonly string[]).includes(key) ? ' (needs a daemon restart)' : '')));
      out.push(...peers.removed.map((p) => `-${peerLabel(p)}`), ...peers.added.map((p) => `+${peerLabel(p)}`));
      for (const c of peers.changed) out.push(...settingLines(`bgp peer ${c.next.address}: `, c.settings, () => ' (session restarts)'));
    }
  }

  if (plan.sync) {
    const { before, after, changed } = plan.sync;
    if (before === undefined) out.push(`+sync (${after!.interface}, instance ${after!.instance})`);
    else if (after === undefined) out.push('-sync');
    else out.push(...settingLines('sync: ', Object.fromEntries(changed.map((k) => [k, { from: before[k], to: after[k] }]))));
  }
  return out;
}
