import { defaultHashSeed } from '../lvs/hash.js';
import { maglevSizeProblem } from '../lvs/maglev.js';
import { conntrackdInterfaceProblem } from '../sync/conntrackd-plan.js';
import { GROUP_NAME_RE, endpointText, groupKey, memberServices, parseGroupMember, serviceKey, type Endpoint, type GroupMember, type L4Protocol, type PortRange, type ServiceMatch, type ServiceKey, type VirtualServerKey, type VirtualService } from '../util/endpoint.js';
import { formatPath, type KeyPath } from './issues.js';
import { granularityPrefix, parseCidr, parseHostPort, parseIp, parseListen, type AddressFamily, type ParsedCidr } from './net.js';
import { parseAddressSpec, parseRouteSpec, parseRuleSpec, RTPROT_KEEPALIVED, type Parsed } from '../net/route-spec.js';
import type {
  AnnounceMode,
  BgpConfig,
  BgpPeerConfig,
  Config,
  GlobalConfig,
  RealServerConfig,
  SyncConfig,
  TrackRef,
  VirtualServerConfig,
  VirtualServerGroupConfig,
  VrrpInstanceConfig,
  VrrpScriptConfig,
  VrrpSyncGroupConfig,
  VrrpTrackProcessConfig,
} from './types.js';
import { suggestion, type IssueSink, type Table } from './validate.js';
import { CHECK_TYPE_DEFAULTS } from './schema.js';
import { parseStatusRange } from './schema-types.js';
import type { CheckConfig } from './types.js';

/*
 * Rules that span keys or sections, run on the schema-validated tree. Required keys that failed
 * validation are absent here, so every rule tolerates missing values (their error is already out).
 */

type Raw<T> = { [K in keyof T]?: unknown } & Table;

const familyName = (f: AddressFamily): string => (f === 4 ? 'IPv4' : 'IPv6');

/**
 * `servers`: where each virtual server comes from, in file order: a number is an index into
 * tree.virtual_server (normalised here), an object a virtual server already normalised and
 * resolved in the same context (same text of the block, same rest of the file: see
 * incremental.ts), taken as it is. The rules across virtual servers (overlaps) still run on all.
 * Default: every tree.virtual_server entry, in order.
 */
export function checkSemantics(tree: Table, file: string, sink: IssueSink, layout?: ReadonlyArray<VirtualServerConfig | number>): Config {
  const global = normalizeGlobal(tree.global as Raw<GlobalConfig>, sink);
  const scripts = tree.vrrp_script as VrrpScriptConfig[];
  uniqueNames('vrrp_script', scripts, sink);
  const scriptByName = new Map(scripts.filter((s) => typeof s.name === 'string').map((s) => [s.name, s]));
  const processes = (tree.vrrp_track_process as Raw<VrrpTrackProcessConfig>[]).map((raw, i) => normalizeTrackProcess(raw, ['vrrp_track_process', i], sink));
  uniqueNames('vrrp_track_process', processes, sink);
  const processByName = new Map(processes.filter((p) => typeof p.name === 'string').map((p) => [p.name, p]));

  const instances = (tree.vrrp_instance as Raw<VrrpInstanceConfig>[]).map((raw, i) =>
    normalizeInstance(raw, ['vrrp_instance', i], scriptByName, sink, { global, processes: processByName }),
  );
  uniqueNames('vrrp_instance', instances, sink);
  uniqueVrids(instances, sink);
  uniqueVmacs(instances, sink);

  const groups = (tree.vrrp_sync_group as Raw<VrrpSyncGroupConfig>[]).map((raw, i) =>
    ({ ...normalizeSyncGroup(raw, ['vrrp_sync_group', i], instances, scriptByName, sink), smtp_alert: vrrpSmtpAlert(raw.smtp_alert, global) }),
  );
  uniqueNames('vrrp_sync_group', groups, sink);
  checkGroupMembership(groups, sink);

  const vsGroups = (tree.virtual_server_group as Raw<VirtualServerGroupConfig>[]).map((raw, i) => normalizeVsGroup(raw, ['virtual_server_group', i], sink));
  uniqueNames('virtual_server_group', vsGroups, sink);
  const vsGroupByName = new Map(vsGroups.filter((g) => typeof g.name === 'string').map((g) => [g.name, g]));
  const raws = tree.virtual_server as Raw<VirtualServerConfig>[];
  const fresh: boolean[] = [];
  const servers = (layout ?? raws.map((_, j) => j)).map((slot, i) => {
    if (typeof slot !== 'number') return slot;
    fresh[i] = true;
    const raw = raws[slot]!;
    return withCheckerSmtpAlert(normalizeVirtualServer(raw, ['virtual_server', i], sink, vsGroupByName), raw, global);
  });
  checkServiceOverlap(servers, sink);

  const sync = tree.sync === undefined ? undefined : normalizeSync(tree.sync as Raw<SyncConfig>, instances, sink);
  const bgp = tree.bgp === undefined ? undefined : normalizeBgp(tree.bgp as Raw<BgpConfig>, sink);
  resolveAnnounce(servers, instances, bgp, sink, (i) => fresh[i] === true);
  return {
    file,
    global,
    vrrp_script: scripts,
    vrrp_instance: instances,
    vrrp_sync_group: groups,
    virtual_server_group: vsGroups,
    virtual_server: servers,
    ...(sync ? { sync } : {}),
    ...(bgp ? { bgp } : {}),
    vrrp_track_process: processes,
  };
}

function normalizeGlobal(raw: Raw<GlobalConfig>, sink: IssueSink): GlobalConfig {
  const listen = typeof raw.metrics_listen === 'string' ? parseListen(raw.metrics_listen) : undefined;
  const smtp = typeof raw.smtp_server === 'string' ? parseHostPort(raw.smtp_server, 25) : undefined;
  return {
    ...(raw as unknown as GlobalConfig),
    metrics: listen ?? null,
    smtp: smtp ?? null,
    static_ipaddress_parsed: parseLines(raw.static_ipaddress, ['global', 'static_ipaddress'], parseAddressSpec, sink),
    static_routes_parsed: parseLines(raw.static_routes, ['global', 'static_routes'], parseRouteSpec, sink),
    static_rules_parsed: parseLines(raw.static_rules, ['global', 'static_rules'], parseRuleSpec, sink),
  };
}

/** keepalived: an instance's / group's smtp_alert defaults to smtp_alert_vrrp, then smtp_alert, then off. */
function vrrpSmtpAlert(own: unknown, g: GlobalConfig): boolean {
  return (typeof own === 'boolean' ? own : undefined) ?? g.smtp_alert_vrrp ?? g.smtp_alert ?? false;
}

/**
 * keepalived: a virtual server's smtp_alert defaults to smtp_alert_checker, then smtp_alert, then
 * off; a real server's the same but finally ON (kept for backwards compatibility in keepalived).
 */
function withCheckerSmtpAlert(vs: VirtualServerConfig, raw: Raw<VirtualServerConfig>, g: GlobalConfig): VirtualServerConfig {
  const fallback = g.smtp_alert_checker ?? g.smtp_alert;
  const rawReals = Array.isArray(raw.real_server) ? (raw.real_server as Raw<VirtualServerConfig['real_server'][number]>[]) : [];
  return {
    ...vs,
    smtp_alert: (typeof raw.smtp_alert === 'boolean' ? raw.smtp_alert : undefined) ?? fallback ?? false,
    real_server: vs.real_server.map((rs, i) => {
      const own = rawReals[i]?.smtp_alert;
      return { ...rs, smtp_alert: (typeof own === 'boolean' ? own : undefined) ?? fallback ?? true };
    }),
  };
}

/** Parses each line of a route/rule/address list; a bad line is reported on its own line. */
function parseLines<T>(list: unknown, path: KeyPath, parse: (text: string) => Parsed<T>, sink: IssueSink): T[] {
  if (!Array.isArray(list)) return [];
  const out: T[] = [];
  list.forEach((text, i) => {
    if (typeof text !== 'string') return;
    const r = parse(text);
    if (r.ok) out.push(r.value);
    else sink.add([...path, i], `${r.error} (in ${JSON.stringify(text)})`);
  });
  return out;
}

function normalizeTrackProcess(raw: Raw<VrrpTrackProcessConfig>, path: KeyPath, sink: IssueSink): VrrpTrackProcessConfig {
  const tp = raw as unknown as Omit<VrrpTrackProcessConfig, 'process'> & { process?: string | string[] };
  const process = typeof tp.process === 'string' ? [tp.process] : Array.isArray(tp.process) ? tp.process : [];
  if (process.length > 0 && process[0] === '') sink.add([...path, 'process'], 'the process name must not be empty');
  // keepalived: quorum_max 0 means "fails while any such process runs", so quorum becomes 0.
  if (tp.quorum_max !== undefined && tp.quorum_max !== 0 && typeof tp.quorum === 'number' && tp.quorum_max < tp.quorum) {
    sink.add([...path, 'quorum_max'], `must be >= quorum (${tp.quorum}), got ${tp.quorum_max}`);
  }
  return { ...tp, process, ...(tp.quorum_max === 0 ? { quorum: 0 } : {}) };
}

/** keepalived's default VMAC names: vrrp.VRID; IPv6 ones vrrp6.VRID so both families can share a VRID. */
export function defaultVmacName(vrid: number, family: AddressFamily): string {
  return family === 4 ? `vrrp.${vrid}` : `vrrp6.${vrid}`;
}

function uniqueVmacs(instances: readonly VrrpInstanceConfig[], sink: IssueSink): void {
  uniqueBy(instances, (vi) => vi.vmac_ifname ?? undefined, (i, first) => {
    sink.add(['vrrp_instance', i, 'use_vmac'], `macvlan ${JSON.stringify(instances[i]!.vmac_ifname)} is already used by vrrp_instance[${first}] ${JSON.stringify(instances[first]!.name)}; name it: use_vmac = "NAME"`);
  });
  const names = new Set(instances.map((vi) => vi.interface));
  instances.forEach((vi, i) => {
    if (vi.vmac_ifname !== null && names.has(vi.vmac_ifname)) sink.add(['vrrp_instance', i, 'use_vmac'], `${JSON.stringify(vi.vmac_ifname)} is an instance interface; the macvlan needs a name of its own`);
  });
}

/** Reports each element whose key equals an earlier one's; `report(index, firstIndex)`. */
function uniqueBy<T>(items: readonly T[], key: (item: T) => string | undefined, report: (index: number, first: number) => void): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const k = key(item);
    if (k === undefined) return;
    const first = seen.get(k);
    if (first === undefined) seen.set(k, i);
    else report(i, first);
  });
}

function uniqueNames(section: string, items: readonly { name?: unknown }[], sink: IssueSink): void {
  uniqueBy(items, (it) => (typeof it.name === 'string' ? it.name : undefined), (i, first) =>
    sink.add([section, i, 'name'], `duplicate name ${JSON.stringify(items[i]!.name)} (also ${section}[${first}])`),
  );
}

/** Names that passed validation; invalid ones are absent and already reported. */
function namesOf(items: readonly { name?: unknown }[]): string[] {
  return items.map((it) => it.name).filter((n): n is string => typeof n === 'string');
}

function unknownRef(kind: string, name: string, known: Iterable<string>): string {
  return `unknown ${kind} ${JSON.stringify(name)}${suggestion(name, known)}`;
}

/** Bare names become {name, weight}; a track_script weight defaults to its vrrp_script's weight. */
function normalizeTracks(raw: unknown, path: KeyPath, defaultWeight: (name: string) => number | undefined, kind: string | undefined, known: Iterable<string>, sink: IssueSink): TrackRef[] {
  const entries = Array.isArray(raw) ? (raw as (string | { name?: string; weight?: number })[]) : [];
  const out: TrackRef[] = [];
  entries.forEach((entry, i) => {
    const name = typeof entry === 'string' ? entry : entry.name;
    if (name === undefined) return;
    const fallback = defaultWeight(name);
    if (kind !== undefined && fallback === undefined) {
      sink.add(typeof entry === 'string' ? [...path, i] : [...path, i, 'name'], unknownRef(kind, name, known));
      return;
    }
    out.push({ name, weight: (typeof entry === 'string' ? undefined : entry.weight) ?? fallback ?? 0 });
  });
  return out;
}

function scriptTracks(raw: unknown, path: KeyPath, scripts: ReadonlyMap<string, VrrpScriptConfig>, sink: IssueSink): TrackRef[] {
  return normalizeTracks(raw, path, (n) => scripts.get(n)?.weight, 'vrrp_script', scripts.keys(), sink);
}

function parseAll(list: unknown): ParsedCidr[] {
  return Array.isArray(list) ? list.map((t) => parseCidr(t as string)).filter((p): p is ParsedCidr => p !== undefined) : [];
}

function normalizeInstance(
  raw: Raw<VrrpInstanceConfig>,
  path: KeyPath,
  scripts: ReadonlyMap<string, VrrpScriptConfig>,
  sink: IssueSink,
  ctx: { global: GlobalConfig; processes: ReadonlyMap<string, VrrpTrackProcessConfig> },
): VrrpInstanceConfig {
  const vips = parseAll(raw.virtual_ipaddress);
  const family: AddressFamily = vips[0]?.family ?? 4;
  const version = raw.version as 2 | 3 | undefined;
  vips.forEach((vip, i) => {
    if (vip.family !== family) {
      sink.add([...path, 'virtual_ipaddress', i], `${familyName(vip.family)} VIP in an instance whose first VIP is ${familyName(family)}; use one instance per address family`);
    }
  });
  if (family === 6 && version === 2) {
    sink.add([...path, 'virtual_ipaddress', 0], 'IPv6 VIPs need version = 3 (VRRPv2 is IPv4 only)');
  }
  checkAdvertInt(raw.advert_int, version, [...path, 'advert_int'], sink);
  if (raw.authentication !== undefined && version === 3) {
    sink.add([...path, 'authentication'], 'is only valid with version = 2 (VRRPv3 has no authentication)');
  }
  const peers = (Array.isArray(raw.unicast_peer) ? raw.unicast_peer : []).map((p: unknown) =>
    typeof p === 'string' ? { address: p, min_ttl: 0, max_ttl: 255 } : (p as { address: string; min_ttl: number; max_ttl: number }));
  peers.forEach((p, i) => {
    if (p.min_ttl > p.max_ttl) sink.add([...path, 'unicast_peer', i, 'min_ttl'], `must not exceed max_ttl (${p.max_ttl}), got ${p.min_ttl}`);
  });
  checkFamily(peers.map((p) => p.address), family, [...path, 'unicast_peer'], sink);
  for (const key of ['unicast_src_ip', 'mcast_src_ip'] as const) {
    const ip = typeof raw[key] === 'string' ? parseIp(raw[key] as string) : undefined;
    if (ip && vips.length > 0 && ip.family !== family) sink.add([...path, key], `must be ${familyName(family)} like the VIPs, got ${JSON.stringify(raw[key])}`);
  }
  const advert = typeof raw.advert_int === 'number' ? raw.advert_int : 1;
  const vmac = raw.use_vmac;
  const vrid = typeof raw.virtual_router_id === 'number' ? raw.virtual_router_id : 0;
  const vmacName = vmac === true ? defaultVmacName(vrid, family) : typeof vmac === 'string' ? vmac : null;
  if (typeof vmac === 'string' && !/^[A-Za-z0-9_.:-]+$/.test(vmac)) sink.add([...path, 'use_vmac'], `must be true or an interface name (letters, digits, "_.:-", at most 15), got ${JSON.stringify(vmac)}`);
  if (raw.vmac_xmit_base === true && vmacName === null) sink.add([...path, 'vmac_xmit_base'], 'needs use_vmac');
  return {
    ...(raw as unknown as VrrpInstanceConfig),
    track_interface: normalizeTracks(raw.track_interface, [...path, 'track_interface'], () => 0, undefined, [], sink),
    track_script: scriptTracks(raw.track_script, [...path, 'track_script'], scripts, sink),
    track_process: normalizeTracks(raw.track_process, [...path, 'track_process'], (n) => ctx.processes.get(n)?.weight, 'vrrp_track_process', ctx.processes.keys(), sink),
    smtp_alert: vrrpSmtpAlert(raw.smtp_alert, ctx.global),
    vmac_ifname: vmacName,
    virtual_routes_parsed: parseLines(raw.virtual_routes, [...path, 'virtual_routes'], parseRouteSpec, sink),
    virtual_rules_parsed: parseLines(raw.virtual_rules, [...path, 'virtual_rules'], parseRuleSpec, sink),
    family,
    virtual_ipaddress_parsed: vips,
    virtual_ipaddress_excluded_parsed: parseAll(raw.virtual_ipaddress_excluded),
    advert_int_cs: Math.round(advert * 100),
    unicast_peer: peers.map((p) => p.address),
    unicast_peer_ttl: peers,
  };
}

/** v2 carries whole seconds in 8 bits; v3 carries centiseconds in 12 bits (max 4095). */
function checkAdvertInt(value: unknown, version: 2 | 3 | undefined, path: KeyPath, sink: IssueSink): void {
  if (typeof value !== 'number') return;
  if (version === 2 && !(Number.isInteger(value) && value >= 1 && value <= 255)) {
    sink.add(path, `must be a whole number of seconds 1..255 with version = 2, got ${value}`);
  }
  const cs = value * 100;
  if (version === 3 && !(value >= 0.01 && value <= 40.95 && Math.abs(cs - Math.round(cs)) < 1e-6)) {
    sink.add(path, `must be 0.01..40.95 seconds in steps of 0.01 with version = 3, got ${value}`);
  }
}

function checkFamily(list: unknown, family: AddressFamily, path: KeyPath, sink: IssueSink): void {
  if (!Array.isArray(list)) return;
  list.forEach((text, i) => {
    const ip = parseIp(text as string);
    if (ip && ip.family !== family) sink.add([...path, i], `must be ${familyName(family)} like the VIPs, got ${JSON.stringify(text)}`);
  });
}

function uniqueVrids(instances: readonly VrrpInstanceConfig[], sink: IssueSink): void {
  uniqueBy(
    instances,
    (vi) => (vi.virtual_router_id === undefined || vi.interface === undefined ? undefined : `${vi.interface}|${vi.family}|${vi.virtual_router_id}`),
    (i, first) => {
      const vi = instances[i]!;
      sink.add(['vrrp_instance', i, 'virtual_router_id'], `VRID ${vi.virtual_router_id} is already used on ${vi.interface} (${familyName(vi.family)}) by vrrp_instance[${first}] ${JSON.stringify(instances[first]!.name)}`);
    },
  );
}

function normalizeSyncGroup(raw: Raw<VrrpSyncGroupConfig>, path: KeyPath, instances: readonly VrrpInstanceConfig[], scripts: ReadonlyMap<string, VrrpScriptConfig>, sink: IssueSink): VrrpSyncGroupConfig {
  const names = namesOf(instances);
  const members = Array.isArray(raw.group) ? (raw.group as string[]) : [];
  members.forEach((member, i) => {
    if (!names.includes(member)) sink.add([...path, 'group', i], unknownRef('vrrp_instance', member, names));
  });
  return { ...(raw as unknown as VrrpSyncGroupConfig), track_script: scriptTracks(raw.track_script, [...path, 'track_script'], scripts, sink) };
}

function checkGroupMembership(groups: readonly VrrpSyncGroupConfig[], sink: IssueSink): void {
  const owner = new Map<string, string>();
  groups.forEach((g, gi) => {
    (g.group ?? []).forEach((member, i) => {
      const other = owner.get(member);
      if (other !== undefined) sink.add(['vrrp_sync_group', gi, 'group', i], `vrrp_instance ${JSON.stringify(member)} is already in vrrp_sync_group ${JSON.stringify(other)}`);
      else owner.set(member, g.name);
    });
  });
}

/** Checks that need no port (a command, a file, ICMP echo). */
const PORTLESS_CHECKS: ReadonlySet<string> = new Set(['MISC_CHECK', 'FILE_CHECK', 'PING_CHECK']);
/** Schedulers that only tell weight 0 from the rest (IPVS rr, lc, dh): slow start cannot ramp them. */
const WEIGHT_BLIND: ReadonlySet<string> = new Set(['rr', 'lc', 'dh']);

/** Whether an issue was already reported at exactly this path (a value that failed validation is absent here). */
function reported(sink: IssueSink, path: KeyPath): boolean {
  const p = formatPath(path);
  return sink.issues.some((i) => i.path === p);
}

/** `ports = [21, "10000-20000"]` as sorted, non-overlapping ranges; overlaps and bad ranges are reported. */
function parsePorts(list: readonly (number | string)[], path: KeyPath, sink: IssueSink): PortRange[] {
  const ranges: { range: PortRange; index: number }[] = [];
  list.forEach((item, index) => {
    let from: number;
    let to: number;
    if (typeof item === 'number') {
      from = to = item;
    } else {
      const m = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/.exec(item);
      from = m ? Number(m[1]) : NaN;
      to = m ? Number(m[2] ?? m[1]) : NaN;
      if (!(from >= 1 && to <= 65535 && from <= to)) {
        sink.add([...path, index], `must be a port 1..65535 or a range "FROM-TO" with FROM <= TO, got ${JSON.stringify(item)}`);
        return;
      }
    }
    ranges.push({ range: { from, to }, index });
  });
  ranges.sort((a, b) => a.range.from - b.range.from);
  for (let k = 1; k < ranges.length; k++) {
    const prev = ranges[k - 1]!;
    const cur = ranges[k]!;
    if (cur.range.from <= prev.range.to) sink.add([...path, cur.index], `overlaps ports[${prev.index}]`);
  }
  return ranges.map((r) => r.range);
}

const rangesOverlap = (a: readonly PortRange[], b: readonly PortRange[]): boolean =>
  a.some((x) => b.some((y) => x.from <= y.to && y.from <= x.to));

/**
 * A virtual_server_group: each member parsed once (ranges expanded), no address twice, one
 * address family (keepalived allows two only with tunnelled real servers, which keepalive-ts does
 * not forward to).
 */
function normalizeVsGroup(raw: Raw<VirtualServerGroupConfig>, path: KeyPath, sink: IssueSink): VirtualServerGroupConfig {
  const g = raw as unknown as VirtualServerGroupConfig;
  if (typeof g.name === 'string' && !GROUP_NAME_RE.test(g.name)) {
    sink.add([...path, 'name'], `must be letters, digits, "_", "." or "-" (it is part of the virtual server's key, "tcp/group:NAME"), got ${JSON.stringify(g.name)}`);
  }
  const parsed: GroupMember[] = [];
  const seen = new Map<string, number>();
  let family: AddressFamily | undefined;
  (Array.isArray(g.members) ? g.members : []).forEach((text, i) => {
    const at: KeyPath = [...path, 'members', i];
    const r = parseGroupMember(text);
    if (!r.ok) {
      sink.add(at, r.error);
      return;
    }
    const m = r.value;
    family ??= m.family;
    if (m.family !== family) {
      sink.add(at, `${familyName(m.family)} member in a group whose first member is ${familyName(family)}: a group serves one address family (its real servers are of that family); use one group per family`);
      return;
    }
    // Protocol-free identities: the same address:port (or mark) twice is the same service.
    const ids = m.kind === 'fwmark' ? [`fwmark ${m.mark}`] : m.addresses.map((a) => endpointText({ address: a, port: m.port }));
    const dup = ids.find((id) => seen.has(id));
    if (dup !== undefined) {
      const first = seen.get(dup)!;
      sink.add(at, `${dup} is already a member (members[${first}]${first === i ? '' : ` ${JSON.stringify(g.members[first])}`})`);
      return;
    }
    for (const id of ids) seen.set(id, i);
    parsed.push(m);
  });
  return { ...g, members_parsed: parsed, family: family ?? 4 };
}

function normalizeVirtualServer(raw: Raw<VirtualServerConfig>, path: KeyPath, sink: IssueSink, vsGroups: ReadonlyMap<string, VirtualServerGroupConfig>): VirtualServerConfig {
  const vs = raw as unknown as VirtualServerConfig;
  const at = (...keys: (string | number)[]): KeyPath => [...path, ...keys];
  const protocol: L4Protocol = vs.protocol === 'UDP' ? 'udp' : 'tcp';
  const kind = vs.lb_kind;
  const reals = vs.real_server ?? [];
  const kernelOnly = (what: string) => `lb_kind "PROXY" cannot serve ${what}: the proxy listens on one address:port; use "DR", "NAT" or "FULLNAT"`;

  // --- what the service matches, and its address family
  const wantFamily: AddressFamily | undefined = vs.ip_family === 'inet6' ? 6 : vs.ip_family === 'inet' ? 4 : undefined;
  let match: ServiceMatch;
  let group: { members: VirtualService[]; key: VirtualServerKey; family: AddressFamily } | undefined;
  if (vs.group !== undefined) {
    for (const k of ['address', 'port', 'ports', 'fwmark'] as const) {
      if (raw[k] !== undefined) sink.add(at(k), `a virtual server of a group serves the members of virtual_server_group ${JSON.stringify(vs.group)}; remove ${k} (or group)`);
    }
    const g = vsGroups.get(vs.group);
    if (!g) sink.add(at('group'), unknownRef('virtual_server_group', vs.group, vsGroups.keys()));
    const family = g?.family ?? wantFamily ?? 4;
    if (g && wantFamily !== undefined && wantFamily !== family) sink.add(at('ip_family'), `contradicts the members of virtual_server_group ${JSON.stringify(vs.group)} (${familyName(family)})`);
    const members = (g?.members_parsed ?? []).flatMap((m) => memberServices(m, protocol));
    if (kind === 'PROXY') {
      const fw = members.find((m) => m.match.kind === 'fwmark');
      if (fw) sink.add(at('lb_kind'), kernelOnly(`the group's firewall mark (${fw.key})`));
    }
    group = { members, key: groupKey(protocol, vs.group), family };
    // A group has no match of its own: this one only stands in where nothing below reads it.
    match = members[0]?.match ?? { kind: 'fwmark', mark: 0, family };
  } else if (vs.fwmark !== undefined) {
    for (const k of ['address', 'port', 'ports'] as const) {
      if (raw[k] !== undefined) sink.add(at(k), `a fwmark service matches packets by their mark, not by ${k}; remove ${k} (or fwmark)`);
    }
    const servers = [...(vs.sorry_server?.address !== undefined ? [vs.sorry_server.address] : []), ...reals.map((r) => r.address)];
    const family = wantFamily ?? servers.map((a) => (a === undefined ? undefined : parseIp(a)?.family)).find((f) => f !== undefined) ?? 4;
    if (kind === 'PROXY') sink.add(at('lb_kind'), kernelOnly('a fwmark service'));
    match = { kind: 'fwmark', mark: vs.fwmark, family };
  } else {
    const ip = typeof vs.address === 'string' ? parseIp(vs.address) : undefined;
    if (!ip && !reported(sink, at('address'))) sink.add(at('address'), 'is required (or fwmark, for a service matched by firewall mark)');
    const family = ip?.family ?? 4;
    if (ip && wantFamily !== undefined && wantFamily !== family) sink.add(at('ip_family'), `contradicts address ${vs.address} (${familyName(family)})`);
    let ports: PortRange[] = [];
    if (vs.ports !== undefined) {
      if (vs.port !== undefined) sink.add(at('ports'), 'port and ports are exclusive; keep one');
      ports = parsePorts(vs.ports, at('ports'), sink);
      if (kind === 'PROXY' && !(ports.length === 1 && ports[0]!.from === ports[0]!.to)) sink.add(at('lb_kind'), kernelOnly('a port set'));
    } else if (vs.port !== undefined) {
      ports = [{ from: vs.port, to: vs.port }];
    } else if (!reported(sink, at('port')) && !reported(sink, at('ports'))) {
      sink.add(at('port'), 'is required (or ports, for several ports and ranges)');
    }
    match = { kind: 'addr', protocol, address: ip?.address ?? (family === 4 ? '0.0.0.0' : '::'), family, ports: ports.length > 0 ? ports : [{ from: 0, to: 0 }] };
  }
  const family = group?.family ?? match.family;
  const key = group?.key ?? serviceKey(match);
  const members = group?.members ?? [{ key: key as ServiceKey, match }];
  // The one port every service has (a DR real server may only name that one), else undefined.
  const ports = new Set(members.map((m) => (m.match.kind === 'addr' && m.match.ports.length === 1 && m.match.ports[0]!.from === m.match.ports[0]!.to ? m.match.ports[0]!.from : -1)));
  const servicePort = ports.size === 1 && !ports.has(-1) ? [...ports][0] : undefined;
  const what = vs.group !== undefined ? 'group' : match.kind === 'fwmark' ? 'fwmark' : 'port-set';

  // --- scheduler settings
  const flags = vs.sched_flags ?? [];
  flags.forEach((flag, i) => {
    const owner = flag.startsWith('sh-') ? ['sh'] : flag.startsWith('mh-') ? ['mh'] : ['sh', 'mh'];
    if (!owner.includes(vs.lb_algo)) sink.add(at('sched_flags', i), `${JSON.stringify(flag)} applies to lb_algo ${owner.map((o) => JSON.stringify(o)).join(' or ')} only (this service uses ${JSON.stringify(vs.lb_algo)})`);
  });
  if (typeof vs.mh_table_size === 'number') {
    const problem = maglevSizeProblem(vs.mh_table_size);
    if (problem) sink.add(at('mh_table_size'), `${problem}, got ${vs.mh_table_size} (65537 is a good default)`);
    else if (vs.lb_algo === 'mh' && reals.length > vs.mh_table_size) sink.add(at('mh_table_size'), `must be at least the number of real servers (${reals.length})`);
  }
  if (vs.proxy_protocol && kind !== 'PROXY') {
    sink.add(at('proxy_protocol'), `needs lb_kind = "PROXY": only the proxy terminates the client's TCP connection and can send a header first; with lb_kind "${kind}" the real server gets the client's own packets (and address)`);
  }
  if (vs.ops && vs.protocol !== 'UDP') sink.add(at('ops'), 'one-packet scheduling needs protocol = "UDP"');
  if (typeof vs.slow_start === 'number' && vs.slow_start > 0 && WEIGHT_BLIND.has(vs.lb_algo)) {
    sink.add(at('slow_start'), `ramps weights, which lb_algo ${JSON.stringify(vs.lb_algo)} ignores (it only skips weight 0); use wlc, wrr, sed, nq or another weighted scheduler, or slow_start = 0`);
  }

  // --- persistence granularity
  let granularity = vs.persistence_granularity ?? (family === 4 ? '255.255.255.255' : '128');
  let prefix = granularityPrefix(granularity, family);
  if (prefix === undefined) {
    sink.add(at('persistence_granularity'), family === 4
      ? `must be a contiguous IPv4 netmask like "255.255.255.0", got ${JSON.stringify(granularity)}`
      : `must be an IPv6 prefix length "1".."128", got ${JSON.stringify(granularity)}`);
    granularity = family === 4 ? '255.255.255.255' : '128';
    prefix = family === 4 ? 32 : 128;
  }

  // --- servers: family, port rules of the kind, canonical endpoints
  const serverEndpoint = (address: string | undefined, port: number | undefined, where: KeyPath, whatServer: string): Endpoint | null => {
    const sip = typeof address === 'string' ? parseIp(address) : undefined;
    if (!sip) return null;
    if (sip.family !== family) {
      sink.add([...where, 'address'], `must be ${familyName(family)} like the virtual server${vs.group !== undefined ? `'s group ${JSON.stringify(vs.group)}` : match.kind === 'fwmark' ? ' (ip_family, or the first server)' : ''}`);
    }
    const p = port ?? 0;
    if (kind === 'DR' && p !== 0 && p !== servicePort) {
      sink.add([...where, 'port'], servicePort === undefined
        ? `lb_kind "DR" keeps the packet's own port (only the MAC address is rewritten) and the ${what === 'group' ? "group's members do not share one" : 'service has no single port'}; omit port for this ${whatServer}`
        : `lb_kind "DR" cannot change the port (only the MAC address is rewritten, so the ${whatServer} receives the packet for port ${servicePort} unchanged); set port = ${servicePort} or omit it`);
    }
    if (p === 0 && kind === 'PROXY') sink.add([...where, 'port'], 'is required: the proxy connects to a port');
    return { address: sip.address, family: sip.family, port: p };
  };
  const realServers: RealServerConfig[] = reals.map((rs, i) => {
    const where = at('real_server', i);
    const ep = serverEndpoint(rs.address, rs.port, where, 'real server') ?? { address: rs.address ?? '', family, port: rs.port ?? 0 };
    const checks = normalizeChecks(rs, where, sink).map((c, j) => {
      if (c.connect_port !== undefined || PORTLESS_CHECKS.has(c.type)) return { ...c, connect_port: c.connect_port ?? 0 };
      if (!reported(sink, [...where, 'check', j, 'connect_port'])) {
        sink.add([...where, 'check', j], `connect_port is required: the real server has no port of its own (${what} service)`);
      }
      return { ...c, connect_port: 0 };
    });
    return { ...rs, address: ep.address, port: ep.port, check: checks, endpoint: ep };
  });
  uniqueBy(realServers, (rs) => (rs.address === '' ? undefined : endpointText(rs.endpoint)), (i, first) =>
    sink.add(at('real_server', i), `duplicate real server ${endpointText(realServers[i]!.endpoint)} (also real_server[${first}])`),
  );
  const sorry = vs.sorry_server ? serverEndpoint(vs.sorry_server.address, vs.sorry_server.port, at('sorry_server'), 'sorry server') : null;

  return {
    ...vs,
    ...(vs.address !== undefined && vs.group === undefined && match.kind === 'addr' ? { address: match.address } : {}),
    ...(sorry ? { sorry_server: { address: sorry.address, port: sorry.port } } : {}),
    real_server: realServers,
    persistence_granularity: granularity,
    hash_seed: vs.hash_seed ?? defaultHashSeed(key),
    family,
    persistence_prefix: prefix,
    members,
    key,
    sorry_endpoint: sorry,
  };
}

/**
 * Two services that would take the same packets: same key, or overlapping ports on one address,
 * whether they are virtual servers of their own or members of groups.
 */
function checkServiceOverlap(servers: readonly VirtualServerConfig[], sink: IssueSink): void {
  const byKey = new Map<string, number>();
  // Services per protocol and address, in the order they were taken; narrow port ranges are also
  // indexed port by port, so 1,000 services on one VIP cost no pairwise scan (a --cpu-prof of a
  // reload with 1,000 of them put ~150 ms here). Wide ranges (> WIDE ports) are scanned.
  type Entry = { seq: number; index: number; key: string; ports: readonly PortRange[] };
  const WIDE = 64;
  const isWide = (r: PortRange) => r.to - r.from + 1 > WIDE;
  const byAddress = new Map<string, Entry[]>();
  const wideByAddress = new Map<string, Entry[]>();
  const byPort = new Map<string, Entry[]>();
  let seq = 0;
  /** The first service taken (as a scan in order would find it) that overlaps `ports`, other than virtual_server[j]. */
  const firstClash = (slot: string, ports: readonly PortRange[], j: number): Entry | undefined => {
    const hit = (x: Entry) => x.index !== j && rangesOverlap(x.ports, ports);
    if (ports.some(isWide)) return byAddress.get(slot)?.find(hit);
    let best: Entry | undefined;
    const consider = (x: Entry | undefined) => { if (x && (!best || x.seq < best.seq)) best = x; };
    for (const r of ports) for (let port = r.from; port <= r.to; port++) consider(byPort.get(`${slot} ${port}`)?.find((x) => x.index !== j));
    consider(wideByAddress.get(slot)?.find(hit));
    return best;
  };
  const label = (vs: VirtualServerConfig, key: string): string => (vs.group === undefined ? key : `${key} (a member of group ${JSON.stringify(vs.group)})`);
  servers.forEach((b, j) => {
    const first = byKey.get(b.key);
    if (first !== undefined) {
      sink.add(['virtual_server', j], b.group === undefined
        ? `duplicate virtual server ${b.key} (also virtual_server[${first}])`
        : `virtual_server_group ${JSON.stringify(b.group)} is already served with protocol ${b.protocol} by virtual_server[${first}] (one virtual server per group and protocol)`);
      return;
    }
    byKey.set(b.key, j);
    for (const m of b.members) {
      const i = byKey.get(m.key);
      if (i !== undefined && i !== j) {
        sink.add(['virtual_server', j], `${label(b, m.key)} is also served by virtual_server[${i}]${servers[i]!.group === undefined ? '' : ` (group ${JSON.stringify(servers[i]!.group)})`}: a packet may match only one service`);
        return;
      }
      if (m.match.kind !== 'addr') {
        byKey.set(m.key, j);
        continue;
      }
      const slot = `${m.match.protocol} ${m.match.address}`;
      const clash = firstClash(slot, m.match.ports, j);
      if (clash) {
        sink.add(['virtual_server', j], `${label(b, m.key)} overlaps ${clash.key} (virtual_server[${clash.index}]): a packet may match only one service`);
        return;
      }
      const entry: Entry = { seq: seq++, index: j, key: m.key, ports: m.match.ports };
      const push = (map: Map<string, Entry[]>, k: string) => { const l = map.get(k); if (l) l.push(entry); else map.set(k, [entry]); };
      push(byAddress, slot);
      if (m.match.ports.some(isWide)) push(wideByAddress, slot);
      for (const r of m.match.ports) if (!isWide(r)) for (let port = r.from; port <= r.to; port++) push(byPort, `${slot} ${port}`);
      byKey.set(m.key, j);
    }
  });
}


/**
 * Fills the per-type keepalived defaults the schema cannot express (retry, delay_before_retry,
 * warmup when the virtual_server leaves them unset) and expands status_code ranges.
 */
function normalizeChecks(rs: RealServerConfig, path: KeyPath, sink: IssueSink): CheckConfig[] {
  const raw = (rs.check ?? []) as (CheckConfig & Table)[];
  return raw.map((check, i) => {
    const defaults = CHECK_TYPE_DEFAULTS[check.type];
    if (!defaults) return check;
    const out = { ...check } as CheckConfig & Table;
    out.retry ??= defaults.retry;
    out.delay_before_retry ??= defaults.delay_before_retry === 'delay_loop' ? out.delay_loop : defaults.delay_before_retry;
    out.warmup ??= out.delay_loop;
    if (Array.isArray(out.status_code)) out.status_code = expandStatusCodes(out.status_code as unknown[]);
    if (out.type === 'PING_CHECK' && Object.hasOwn(check, 'connect_port') && check.connect_port !== rs.port) {
      sink.add([...path, 'check', i, 'connect_port'], 'has no meaning for PING_CHECK (ICMP echo has no port)');
    }
    return out;
  });
}

/** [200, "300-302"] -> [200, 300, 301, 302], sorted, without duplicates. */
export function expandStatusCodes(list: readonly unknown[]): number[] {
  const codes = new Set<number>();
  for (const item of list) {
    if (typeof item === 'number') codes.add(item);
    else if (typeof item === 'string') {
      const r = parseStatusRange(item);
      if (r) for (let c = r[0]; c <= r[1]; c++) codes.add(c);
    }
  }
  return [...codes].sort((a, b) => a - b);
}

function normalizeSync(raw: Raw<SyncConfig>, instances: readonly VrrpInstanceConfig[], sink: IssueSink): SyncConfig {
  const sync = raw as unknown as SyncConfig;
  const instance = instances.find((vi) => vi.name === sync.instance);
  if (sync.instance !== undefined && !instance) {
    sink.add(['sync', 'instance'], unknownRef('vrrp_instance', sync.instance, namesOf(instances)));
  }
  const hasKey = sync.auth_key !== undefined;
  const hasFile = sync.auth_key_file !== undefined;
  if (hasKey && hasFile) sink.add(['sync', 'auth_key_file'], 'auth_key and auth_key_file are mutually exclusive; set exactly one');
  if (!hasKey && !hasFile) sink.add(['sync'], 'one of auth_key or auth_key_file is required');
  let conntrackd = sync.conntrackd;
  if (conntrackd) {
    const ifaceProblem = sync.interface === undefined ? undefined : conntrackdInterfaceProblem(sync.interface);
    if (ifaceProblem) sink.add(['sync', 'interface'], `${JSON.stringify(sync.interface)} cannot be used with sync.conntrackd: ${ifaceProblem}`);
    // conntrackd's UDP mode talks to one peer: the destination defaults to the one unicast peer.
    const peers = sync.unicast_peer.filter((a) => !a.includes(':'));
    const dest = conntrackd.destination_address ?? (peers.length === 1 ? peers[0] : undefined);
    if (dest === undefined) {
      sink.add(['sync', 'conntrackd', 'destination_address'], `required: the peer director's IPv4 address on ${sync.interface ?? 'sync.interface'} (conntrackd replicates to one peer over UDP; it defaults to sync.unicast_peer only when that lists exactly one IPv4 address)`);
    } else {
      conntrackd = { ...conntrackd, destination_address: dest };
      if (conntrackd.address === dest) sink.add(['sync', 'conntrackd', 'address'], 'must differ from destination_address (this director vs its peer)');
    }
  }
  return { ...sync, sync_id: sync.sync_id ?? instance?.virtual_router_id ?? 0, ...(conntrackd ? { conntrackd } : {}) };
}

/** Characters BIRD's config lexer cannot carry inside a "string" (it has no escapes). */
const BIRD_STRING_UNSAFE = /["\\\x00-\x1f\x7f]/;

function normalizeBgp(raw: Raw<BgpConfig>, sink: IssueSink): BgpConfig {
  const bgp = raw as unknown as BgpConfig;
  const peers: BgpPeerConfig[] = (Array.isArray(raw.peer) ? (raw.peer as Raw<BgpPeerConfig>[]) : []).map((p, i) => {
    const ip = typeof p.address === 'string' ? parseIp(p.address) : undefined;
    if (typeof p.password === 'string' && BIRD_STRING_UNSAFE.test(p.password)) {
      sink.add(['bgp', 'peer', i, 'password'], 'must not contain double quotes, backslashes or control characters (BIRD strings have no escapes)');
    }
    return { ...(p as unknown as BgpPeerConfig), address: ip?.address ?? (p.address as string), family: ip?.family ?? 4 };
  });
  uniqueBy(peers, (p) => p.address, (i, first) =>
    sink.add(['bgp', 'peer', i, 'address'], `duplicate BGP peer ${peers[i]!.address} (also bgp.peer[${first}])`),
  );
  if (typeof bgp.kernel_table === 'number' && bgp.kernel_table >= 252 && bgp.kernel_table <= 255) {
    sink.add(['bgp', 'kernel_table'], `must not be ${bgp.kernel_table}: 252..255 are the kernel's compat, default, main and local tables`);
  }
  if (bgp.kernel_protocol === 12) sink.add(['bgp', 'kernel_protocol'], "must not be 12: that is BIRD's own route protocol, which its kernel protocol does not learn");
  if (bgp.kernel_protocol === RTPROT_KEEPALIVED) sink.add(['bgp', 'kernel_protocol'], `must not be ${RTPROT_KEEPALIVED}: keepalive-ts's virtual_routes / static_routes carry it, and BIRD would announce them`);
  return { ...bgp, peer: peers };
}

/**
 * Fills in each virtual server's `announce`: "master" when a vrrp_instance holds its address,
 * "healthy" otherwise, "never" without [bgp]; and refuses the combinations that cannot work.
 */
function resolveAnnounce(servers: VirtualServerConfig[], instances: readonly VrrpInstanceConfig[], bgp: BgpConfig | undefined, sink: IssueSink, fresh: (i: number) => boolean): void {
  servers.forEach((vs, i) => {
    if (!fresh(i)) return; // resolved already, in the same context
    const path: KeyPath = ['virtual_server', i, 'announce'];
    const explicit = vs.announce as AnnounceMode | undefined;
    // The addresses it serves: its own, or those of its group's members (fwmarks have none).
    const addresses = [...new Set(vs.members.flatMap((m) => (m.match.kind === 'addr' ? [m.match.address] : [])))];
    const holdersOf = (address: string) => instances.filter((vi) =>
      [...vi.virtual_ipaddress_parsed, ...vi.virtual_ipaddress_excluded_parsed].some((v) => v.address === address));
    const held = addresses.filter((a) => holdersOf(a).length > 0);
    const what = addresses.length === 1 ? addresses[0]! : `the addresses of group ${JSON.stringify(vs.group)}`;
    let mode: AnnounceMode;
    if (addresses.length === 0) {
      // A fwmark service matches marked packets, not an address: there is nothing of its own to announce.
      if (explicit !== undefined && explicit !== 'never') sink.add(path, `"${explicit}": a fwmark service has no address to announce (announce the addresses with virtual servers of their own, or set "never")`);
      mode = 'never';
    } else if (!bgp) {
      if (explicit !== undefined && explicit !== 'never') sink.add(path, `"${explicit}" needs a [bgp] section (nothing would announce ${what})`);
      mode = 'never';
    } else {
      mode = explicit ?? (held.length > 0 ? 'master' : 'healthy');
      if (mode === 'master' && held.length < addresses.length) {
        const free = addresses.find((a) => !held.includes(a))!;
        sink.add(path, `"master" needs a vrrp_instance holding ${free}, and none does (use "healthy" to announce while the service has quorum${vs.group === undefined ? '' : '; one group cannot mix addresses held by VRRP with others'})`);
      }
      if (mode === 'healthy' && held.length > 0) {
        sink.add(path, `${held[0]} is held by vrrp_instance ${JSON.stringify(holdersOf(held[0]!)[0]!.name)}, so only its MASTER serves it: use "master" (or "never")`);
      }
      if (mode !== 'never' && bgp.peer.length > 0 && !bgp.peer.some((p) => p.family === vs.family)) {
        sink.add(path, `no [[bgp.peer]] carries ${familyName(vs.family)}: add an ${familyName(vs.family)} peer or set announce = "never"`);
      }
    }
    servers[i] = { ...vs, announce: mode };
  });
}
