import type { KeyPath } from './issues.js';
import { granularityPrefix, parseCidr, parseIp, parseListen, type AddressFamily, type ParsedCidr } from './net.js';
import type {
  AnnounceMode,
  BgpConfig,
  BgpPeerConfig,
  Config,
  GlobalConfig,
  SyncConfig,
  TrackRef,
  VirtualServerConfig,
  VrrpInstanceConfig,
  VrrpScriptConfig,
  VrrpSyncGroupConfig,
} from './types.js';
import { suggestion, type IssueSink, type Table } from './validate.js';

/*
 * Rules that span keys or sections, run on the schema-validated tree. Required keys that failed
 * validation are absent here, so every rule tolerates missing values (their error is already out).
 */

type Raw<T> = { [K in keyof T]?: unknown } & Table;

const familyName = (f: AddressFamily): string => (f === 4 ? 'IPv4' : 'IPv6');

export function checkSemantics(tree: Table, file: string, sink: IssueSink): Config {
  const global = normalizeGlobal(tree.global as Raw<GlobalConfig>);
  const scripts = tree.vrrp_script as VrrpScriptConfig[];
  uniqueNames('vrrp_script', scripts, sink);
  const scriptByName = new Map(scripts.filter((s) => typeof s.name === 'string').map((s) => [s.name, s]));

  const instances = (tree.vrrp_instance as Raw<VrrpInstanceConfig>[]).map((raw, i) =>
    normalizeInstance(raw, ['vrrp_instance', i], scriptByName, sink),
  );
  uniqueNames('vrrp_instance', instances, sink);
  uniqueVrids(instances, sink);

  const groups = (tree.vrrp_sync_group as Raw<VrrpSyncGroupConfig>[]).map((raw, i) =>
    normalizeSyncGroup(raw, ['vrrp_sync_group', i], instances, scriptByName, sink),
  );
  uniqueNames('vrrp_sync_group', groups, sink);
  checkGroupMembership(groups, sink);

  const servers = (tree.virtual_server as Raw<VirtualServerConfig>[]).map((raw, i) =>
    normalizeVirtualServer(raw, ['virtual_server', i], sink),
  );
  uniqueBy(servers, (vs) => `${vs.address}|${vs.port}|${vs.protocol}`, (i, first) =>
    sink.add(['virtual_server', i], `duplicate virtual server ${servers[i]!.address}:${servers[i]!.port}/${servers[i]!.protocol} (also virtual_server[${first}])`),
  );

  const sync = tree.sync === undefined ? undefined : normalizeSync(tree.sync as Raw<SyncConfig>, instances, sink);
  const bgp = tree.bgp === undefined ? undefined : normalizeBgp(tree.bgp as Raw<BgpConfig>, sink);
  resolveAnnounce(servers, instances, bgp, sink);
  return {
    file,
    global,
    vrrp_script: scripts,
    vrrp_instance: instances,
    vrrp_sync_group: groups,
    virtual_server: servers,
    ...(sync ? { sync } : {}),
    ...(bgp ? { bgp } : {}),
  };
}

function normalizeGlobal(raw: Raw<GlobalConfig>): GlobalConfig {
  const listen = typeof raw.metrics_listen === 'string' ? parseListen(raw.metrics_listen) : undefined;
  return { ...(raw as unknown as GlobalConfig), metrics: listen ?? null };
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

function normalizeInstance(raw: Raw<VrrpInstanceConfig>, path: KeyPath, scripts: ReadonlyMap<string, VrrpScriptConfig>, sink: IssueSink): VrrpInstanceConfig {
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
  return {
    ...(raw as unknown as VrrpInstanceConfig),
    track_interface: normalizeTracks(raw.track_interface, [...path, 'track_interface'], () => 0, undefined, [], sink),
    track_script: scriptTracks(raw.track_script, [...path, 'track_script'], scripts, sink),
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
    real_server: vs.real_server.map((rs) => ({ ...rs, address: canonical(rs.address) })),
    ...(vs.sorry_server ? { sorry_server: { ...vs.sorry_server, address: canonical(vs.sorry_server.address) } } : {}),
    persistence_granularity: granularity,
    family,
    persistence_prefix: prefix,
  };
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
  return { ...bgp, peer: peers };
}

/**
 * Fills in each virtual server's `announce`: "master" when a vrrp_instance holds its address,
 * "healthy" otherwise, "never" without [bgp]; and refuses the combinations that cannot work.
 */
function resolveAnnounce(servers: VirtualServerConfig[], instances: readonly VrrpInstanceConfig[], bgp: BgpConfig | undefined, sink: IssueSink): void {
  servers.forEach((vs, i) => {
    const path: KeyPath = ['virtual_server', i, 'announce'];
    const explicit = vs.announce as AnnounceMode | undefined;
    const holders = instances.filter((vi) =>
      [...vi.virtual_ipaddress_parsed, ...vi.virtual_ipaddress_excluded_parsed].some((v) => v.address === vs.address));
    let mode: AnnounceMode;
    if (!bgp) {
      if (explicit !== undefined && explicit !== 'never') sink.add(path, `"${explicit}" needs a [bgp] section (nothing would announce ${vs.address})`);
      mode = 'never';
    } else {
      mode = explicit ?? (holders.length > 0 ? 'master' : 'healthy');
      if (mode === 'master' && holders.length === 0) {
        sink.add(path, `"master" needs a vrrp_instance holding ${vs.address}, and none does (use "healthy" to announce while the service has quorum)`);
      }
      if (mode === 'healthy' && holders.length > 0) {
        sink.add(path, `${vs.address} is held by vrrp_instance ${JSON.stringify(holders[0]!.name)}, so only its MASTER serves it: use "master" (or "never")`);
      }
      if (mode !== 'never' && bgp.peer.length > 0 && !bgp.peer.some((p) => p.family === vs.family)) {
        sink.add(path, `no [[bgp.peer]] carries ${familyName(vs.family)}: add an ${familyName(vs.family)} peer or set announce = "never"`);
      }
    }
    servers[i] = { ...vs, announce: mode };
  });
}
