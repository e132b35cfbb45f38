import type { KeyPath } from './issues.js';
import { granularityPrefix, parseCidr, parseHostPort, parseIp, parseListen, type AddressFamily, type ParsedCidr } from './net.js';
import { parseAddressSpec, parseRouteSpec, parseRuleSpec, type Parsed } from '../net/route-spec.js';
import type {
  Config,
  GlobalConfig,
  SyncConfig,
  TrackRef,
  VirtualServerConfig,
  VrrpInstanceConfig,
  VrrpScriptConfig,
  VrrpSyncGroupConfig,
  VrrpTrackProcessConfig,
} from './types.js';
import { suggestion, type IssueSink, type Table } from './validate.js';
import { CHECK_TYPE_DEFAULTS } from './schema.js';
import { parseStatusRange } from './schema-types.js';
import type { CheckConfig, RealServerConfig } from './types.js';

/*
 * Rules that span keys or sections, run on the schema-validated tree. Required keys that failed
 * validation are absent here, so every rule tolerates missing values (their error is already out).
 */

type Raw<T> = { [K in keyof T]?: unknown } & Table;

const familyName = (f: AddressFamily): string => (f === 4 ? 'IPv4' : 'IPv6');

export function checkSemantics(tree: Table, file: string, sink: IssueSink): Config {
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

  const servers = (tree.virtual_server as Raw<VirtualServerConfig>[]).map((raw, i) =>
    withCheckerSmtpAlert(normalizeVirtualServer(raw, ['virtual_server', i], sink), raw, global),
  );
  uniqueBy(servers, (vs) => `${vs.address}|${vs.port}|${vs.protocol}`, (i, first) =>
    sink.add(['virtual_server', i], `duplicate virtual server ${servers[i]!.address}:${servers[i]!.port}/${servers[i]!.protocol} (also virtual_server[${first}])`),
  );

  const sync = tree.sync === undefined ? undefined : normalizeSync(tree.sync as Raw<SyncConfig>, instances, sink);
  return {
    file,
    global,
    vrrp_script: scripts,
    vrrp_instance: instances,
    vrrp_sync_group: groups,
    virtual_server: servers,
    ...(sync ? { sync } : {}),
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
  checkFamily(raw.unicast_peer, family, [...path, 'unicast_peer'], sink);
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

function normalizeVirtualServer(raw: Raw<VirtualServerConfig>, path: KeyPath, sink: IssueSink): VirtualServerConfig {
  const vs = raw as unknown as VirtualServerConfig;
  const family = (typeof vs.address === 'string' ? parseIp(vs.address)?.family : undefined) ?? 4;
  let granularity = vs.persistence_granularity ?? (family === 4 ? '255.255.255.255' : '128');
  let prefix = granularityPrefix(granularity, family);
  if (prefix === undefined) {
    sink.add([...path, 'persistence_granularity'], family === 4
      ? `must be a contiguous IPv4 netmask like "255.255.255.0", got ${JSON.stringify(granularity)}`
      : `must be an IPv6 prefix length "1".."128", got ${JSON.stringify(granularity)}`);
    granularity = family === 4 ? '255.255.255.255' : '128';
    prefix = family === 4 ? 32 : 128;
  }
  if (vs.sorry_server?.address !== undefined && parseIp(vs.sorry_server.address)?.family !== family) {
    sink.add([...path, 'sorry_server', 'address'], `must be ${familyName(family)} like the virtual server address`);
  }
  if (vs.ops && vs.protocol !== 'UDP') sink.add([...path, 'ops'], 'one-packet scheduling needs protocol = "UDP"');
  const reals = vs.real_server ?? [];
  uniqueBy(reals, (rs) => (rs.address === undefined ? undefined : `${parseIp(rs.address)?.address}|${rs.port}`), (i, first) =>
    sink.add([...path, 'real_server', i], `duplicate real server ${reals[i]!.address}:${reals[i]!.port} (also real_server[${first}])`),
  );
  // Canonical spellings, so the service matches its VIP and duplicates are found however written.
  const canonical = (a: string) => parseIp(a)?.address ?? a;
  return {
    ...vs,
    address: canonical(vs.address),
    real_server: vs.real_server.map((rs, i) => ({ ...rs, address: canonical(rs.address), check: normalizeChecks(rs, [...path, 'real_server', i], sink) })),
    ...(vs.sorry_server ? { sorry_server: { ...vs.sorry_server, address: canonical(vs.sorry_server.address) } } : {}),
    persistence_granularity: granularity,
    family,
    persistence_prefix: prefix,
  };
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
  return { ...sync, sync_id: sync.sync_id ?? instance?.virtual_router_id ?? 0 };
}
