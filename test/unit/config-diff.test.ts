import { defaultHashSeed } from '../../src/lvs/hash.js';
import test from 'ava';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GLOBAL_APPLY, isEmpty, isEmptyVrrpChange, planReload, type KeptVrrpInstance, type ReloadPlan } from '../../src/config/diff.js';
import { parseConfig, type Config } from '../../src/config/index.js';

const conf = (name: string): string => readFileSync(fileURLToPath(new URL(`../../../conf/${name}`, import.meta.url)), 'utf8');

const BASE = `
[global]
router_id = "lb1"

[[vrrp_script]]
name = "chk_proxy"
script = "/usr/local/bin/check-proxy"
weight = -20

[[vrrp_script]]
name = "chk_disk"
script = "/usr/local/bin/check-disk"

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 150
virtual_ipaddress = ["10.0.0.50/24", "10.0.0.60/24"]
track_script = ["chk_proxy"]

[[vrrp_instance]]
name = "VI_6"
interface = "eth0"
virtual_router_id = 52
version = 3
virtual_ipaddress = ["2001:db8::50/64"]

[[vrrp_instance]]
name = "VI_U"
interface = "eth1"
virtual_router_id = 53
virtual_ipaddress = ["192.168.1.50/24"]
unicast_peer = ["192.168.1.12"]

[[vrrp_sync_group]]
name = "VG_1"
group = ["VI_1", "VI_6"]

[[virtual_server]]
address = "10.0.0.50"
port = 80
lb_kind = "PROXY"
lb_algo = "wlc"
sorry_server = { address = "10.0.0.30", port = 8080 }

[[virtual_server.real_server]]
address = "10.0.0.21"
check = [{ type = "HTTP_GET", path = "/health", status_code = [200, 204] }, { type = "TCP_CHECK" }]

[[virtual_server.real_server]]
address = "10.0.0.22"
check = [{ type = "HTTP_GET", path = "/health", status_code = [200, 204] }, { type = "TCP_CHECK" }]

[[virtual_server]]
address = "2001:db8::50"
port = 53
protocol = "UDP"

[[virtual_server.real_server]]
address = "2001:db8::21"

[sync]
interface = "eth0"
instance = "VI_1"
auth_key = "secret-sync-key-0123"
`;

const parse = (text: string): Config => parseConfig(text, 'test.toml');

/** BASE with each [from, to] applied; `from` must occur exactly once, so a stale edit fails loudly. */
function edit(...pairs: Array<[string, string]>): string {
  let text = BASE;
  for (const [from, to] of pairs) {
    const at = text.indexOf(from);
    if (at < 0 || text.indexOf(from, at + 1) >= 0) throw new Error(`edit: ${JSON.stringify(from)} must occur exactly once`);
    text = text.slice(0, at) + to + text.slice(at + from.length);
  }
  return text;
}

const plan = (...pairs: Array<[string, string]>): ReloadPlan => planReload(parse(BASE), parse(edit(...pairs)));

function kept(p: ReloadPlan, name: string): KeptVrrpInstance {
  const k = p.vrrp.kept.find((x) => x.next.name === name);
  if (!k) throw new Error(`no kept instance ${name}`);
  return k;
}

/** Instances other than `name` are kept unchanged, and nothing is added or removed. */
function onlyInstanceChanged(t: import('ava').ExecutionContext, p: ReloadPlan, name: string): void {
  t.deepEqual(p.vrrp.added, []);
  t.deepEqual(p.vrrp.removed, []);
  t.is(p.vrrp.kept.length, 3);
  for (const k of p.vrrp.kept) if (k.next.name !== name) t.true(isEmptyVrrpChange(k.changes), k.next.name);
  t.deepEqual(p.virtualServers.added, []);
  t.deepEqual(p.virtualServers.removed, []);
  t.is(p.sync, null);
  t.deepEqual(p.global.changed, []);
}

// -------------------------------------------------------------------------------------------
// No change

test('identical configs give an empty plan', (t) => {
  for (const text of [BASE, conf('keepalive.toml'), conf('director-a.toml')]) {
    const p = planReload(parse(text), parse(text));
    t.true(isEmpty(p));
    t.deepEqual(p.summary, []);
    t.is(p.vrrp.kept.length, parse(text).vrrp_instance.length, 'every instance is kept');
    for (const k of p.vrrp.kept) t.true(isEmptyVrrpChange(k.changes));
  }
});

test('reordered sections, lists, checks and respelled equal values are not a change', (t) => {
  const reordered = `
[global]
router_id = "lb1"
vrrp_mcast_group6 = "FF02:0::12"

[[virtual_server]]
address = "2001:DB8:0::50"
port = 53
protocol = "UDP"
[[virtual_server.real_server]]
address = "2001:0db8::21"

[[vrrp_instance]]
name = "VI_U"
interface = "eth1"
virtual_router_id = 53
virtual_ipaddress = ["192.168.1.50/24"]
unicast_peer = ["192.168.1.12"]

[[vrrp_script]]
name = "chk_disk"
script = "/usr/local/bin/check-disk"

[[vrrp_instance]]
name = "VI_6"
interface = "eth0"
virtual_router_id = 52
version = 3
virtual_ipaddress = ["2001:DB8:0:0::50/64"]

[[virtual_server]]
address = "10.0.0.50"
port = 80
lb_kind = "PROXY"
sorry_server = { address = "10.0.0.30", port = 8080 }
persistence_granularity = "255.255.255.255"
[[virtual_server.real_server]]
address = "10.0.0.22"
port = 80
check = [{ type = "TCP_CHECK", connect_ip = "10.0.0.22" }, { type = "HTTP_GET", path = "/health", status_code = [204, 200] }]
[[virtual_server.real_server]]
address = "10.0.0.21"
weight = 1
check = [{ type = "TCP_CHECK" }, { type = "HTTP_GET", path = "/health", status_code = [204, 200] }]

[[vrrp_sync_group]]
name = "VG_1"
group = ["VI_6", "VI_1"]

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 150
advert_int = 1.0
virtual_ipaddress = ["10.0.0.60/24", "10.0.0.50/24"]
track_script = [{ name = "chk_proxy", weight = -20 }]

[[vrrp_script]]
name = "chk_proxy"
script = "/usr/local/bin/check-proxy"
weight = -20

[sync]
auth_key = "secret-sync-key-0123"
instance = "VI_1"
interface = "eth0"
`;
  const p = planReload(parse(BASE), parse(reordered));
  t.deepEqual(p.summary, []);
  t.true(isEmpty(p));
  t.is(p.vrrp.kept.length, 3);
  t.is(p.virtualServers.kept.length, 2);
  for (const vs of p.virtualServers.kept) for (const rs of vs.changes.realServers.kept) t.false(rs.checksChanged);
});

// -------------------------------------------------------------------------------------------
// VRRP instances

test('each instance setting produces exactly its change and summary line', (t) => {
  const cases: Array<{ add: string; key: string; line: string }> = [
    { add: 'advert_int = 3', key: 'advert_int', line: 'vrrp_instance VI_1: advert_int 1 -> 3' },
    { add: 'nopreempt = true', key: 'nopreempt', line: 'vrrp_instance VI_1: nopreempt false -> true' },
    { add: 'preempt_delay = 30', key: 'preempt_delay', line: 'vrrp_instance VI_1: preempt_delay 0 -> 30' },
    { add: 'state = "MASTER"', key: 'state', line: 'vrrp_instance VI_1: state BACKUP -> MASTER' },
    { add: 'authentication = { type = "PASS", password = "hunter2" }', key: 'authentication', line: 'vrrp_instance VI_1: authentication set' },
    { add: 'notify_master = "/usr/local/bin/notify master"', key: 'notify_master', line: 'vrrp_instance VI_1: notify_master (unset) -> "/usr/local/bin/notify master"' },
    { add: 'garp_master_delay = 10', key: 'garp_master_delay', line: 'vrrp_instance VI_1: garp_master_delay 5 -> 10' },
    { add: 'garp_master_refresh = 60', key: 'garp_master_refresh', line: 'vrrp_instance VI_1: garp_master_refresh 0 -> 60' },
    { add: 'unicast_src_ip = "10.0.0.11"', key: 'unicast_src_ip', line: 'vrrp_instance VI_1: unicast_src_ip (unset) -> 10.0.0.11' },
    { add: 'mcast_src_ip = "10.0.0.11"', key: 'mcast_src_ip', line: 'vrrp_instance VI_1: mcast_src_ip (unset) -> 10.0.0.11' },
    { add: 'accept = false', key: 'accept', line: 'vrrp_instance VI_1: accept true -> false' },
    { add: 'lower_prio_no_advert = true', key: 'lower_prio_no_advert', line: 'vrrp_instance VI_1: lower_prio_no_advert false -> true' },
    { add: 'dont_track_primary = true', key: 'dont_track_primary', line: 'vrrp_instance VI_1: dont_track_primary false -> true' },
  ];
  for (const c of cases) {
    const p = plan(['priority = 150', `priority = 150\n${c.add}`]);
    const line = c.add.replace('priority = 150\n', '');
    t.deepEqual(p.summary, [c.line], line);
    onlyInstanceChanged(t, p, 'VI_1');
    const k = kept(p, 'VI_1');
    t.deepEqual(Object.keys(k.changes.settings), [c.key], line);
    t.false(k.changes.restartInstance, line);
    t.deepEqual([k.changes.vipsAdded, k.changes.vipsRemoved], [[], []], line);
  }
  // priority itself, replaced rather than added
  const p = plan(['priority = 150', 'priority = 200']);
  onlyInstanceChanged(t, p, 'VI_1');
  t.deepEqual(kept(p, 'VI_1').changes.settings, { priority: { from: 150, to: 200 } });
  t.deepEqual(p.summary, ['vrrp_instance VI_1: priority 150 -> 200']);
  const auth = plan(['priority = 150', 'priority = 150\nauthentication = { type = "PASS", password = "hunter2" }']);
  t.false(auth.summary.some((l) => l.includes('hunter2')));
});

test('a password change is reported without printing either password', (t) => {
  const auth = (pw: string): string => `priority = 150\nauthentication = { type = "PASS", password = "${pw}" }`;
  const p = planReload(parse(edit(['priority = 150', auth('old-pw')])), parse(edit(['priority = 150', auth('new-pw')])));
  t.deepEqual(p.summary, ['vrrp_instance VI_1: authentication changed']);
  t.deepEqual(kept(p, 'VI_1').changes.settings.authentication, { from: { type: 'PASS', password: 'old-pw' }, to: { type: 'PASS', password: 'new-pw' } });
});

test('v3 advert_int compares in centiseconds', (t) => {
  const p = plan(['version = 3\nvirtual_ipaddress = ["2001:db8::50/64"]', 'version = 3\nadvert_int = 0.5\nvirtual_ipaddress = ["2001:db8::50/64"]']);
  t.deepEqual(p.summary, ['vrrp_instance VI_6: advert_int 1 -> 0.5']);
  const same = plan(['version = 3\nvirtual_ipaddress = ["2001:db8::50/64"]', 'version = 3\nadvert_int = 1.00\nvirtual_ipaddress = ["2001:db8::50/64"]']);
  t.true(isEmpty(same));
  // Float noise in seconds is not a change: the wire unit (centiseconds) is what is compared.
  const a = parse(BASE);
  const b = structuredClone(a);
  const vi6 = b.vrrp_instance.find((v) => v.name === 'VI_6')!;
  vi6.advert_int = 0.1 + 0.2;
  vi6.advert_int_cs = 30;
  const c = structuredClone(a);
  Object.assign(c.vrrp_instance.find((v) => v.name === 'VI_6')!, { advert_int: 0.3, advert_int_cs: 30 });
  t.true(isEmpty(planReload(c, b)));
  t.deepEqual(planReload(a, b).summary, ['vrrp_instance VI_6: advert_int 1 -> 0.30000000000000004']);
});

test('VIP add and remove lists are exact; an unchanged VIP is in neither', (t) => {
  const p = plan(['["10.0.0.50/24", "10.0.0.60/24"]', '["10.0.0.60/24", "10.0.0.51/24", "10.0.0.52"]']);
  onlyInstanceChanged(t, p, 'VI_1');
  const c = kept(p, 'VI_1').changes;
  t.deepEqual(c.vipsAdded, ['10.0.0.51/24', '10.0.0.52/32']);
  t.deepEqual(c.vipsRemoved, ['10.0.0.50/24']);
  t.deepEqual(c.vipsReprefixed, []);
  t.false([...c.vipsAdded, ...c.vipsRemoved].some((v) => v.startsWith('10.0.0.60')));
  t.deepEqual(Object.keys(c.settings), []);
  t.false(c.restartInstance);
  t.deepEqual(p.summary, ['vrrp_instance VI_1: -VIP 10.0.0.50/24', 'vrrp_instance VI_1: +VIP 10.0.0.51/24', 'vrrp_instance VI_1: +VIP 10.0.0.52/32']);
});

test('a prefix change is remove + add of that one VIP, and says so', (t) => {
  const p = plan(['["10.0.0.50/24", "10.0.0.60/24"]', '["10.0.0.50/25", "10.0.0.60/24"]']);
  const c = kept(p, 'VI_1').changes;
  t.deepEqual(c.vipsRemoved, ['10.0.0.50/24']);
  t.deepEqual(c.vipsAdded, ['10.0.0.50/25']);
  t.deepEqual(c.vipsReprefixed, [{ address: '10.0.0.50', from: 24, to: 25 }]);
  t.deepEqual(p.summary, ['vrrp_instance VI_1: VIP 10.0.0.50 prefix /24 -> /25 (removed and re-added)']);
});

test('excluded VIPs are diffed like VIPs', (t) => {
  const p = planReload(
    parse(edit(['priority = 150', 'priority = 150\nvirtual_ipaddress_excluded = ["10.1.0.1/24", "fd00::1"]'])),
    parse(edit(['priority = 150', 'priority = 150\nvirtual_ipaddress_excluded = ["FD00:0::1/128", "10.1.0.2/24", "10.1.0.1/16"]'])),
  );
  const c = kept(p, 'VI_1').changes;
  t.deepEqual(c.excludedAdded, ['10.1.0.2/24', '10.1.0.1/16']);
  t.deepEqual(c.excludedRemoved, ['10.1.0.1/24']);
  t.deepEqual(c.excludedReprefixed, [{ address: '10.1.0.1', from: 24, to: 16 }]);
  t.deepEqual(c.vipsAdded, []);
  t.deepEqual(p.summary, [
    'vrrp_instance VI_1: +excluded VIP 10.1.0.2/24',
    'vrrp_instance VI_1: excluded VIP 10.1.0.1 prefix /24 -> /16 (removed and re-added)',
  ]);
});

test('unicast peers and tracks are diffed entry by entry', (t) => {
  const p = plan(
    ['unicast_peer = ["192.168.1.12"]', 'unicast_peer = ["192.168.1.13"]\ntrack_interface = ["eth1"]'],
    ['track_script = ["chk_proxy"]', 'track_script = [{ name = "chk_proxy", weight = -50 }, "chk_disk"]'],
  );
  t.deepEqual(kept(p, 'VI_U').changes.unicastPeersAdded, ['192.168.1.13']);
  t.deepEqual(kept(p, 'VI_U').changes.unicastPeersRemoved, ['192.168.1.12']);
  t.deepEqual(kept(p, 'VI_U').changes.trackInterface, { added: [{ name: 'eth1', weight: 0 }], removed: [], reweighted: [] });
  t.deepEqual(kept(p, 'VI_1').changes.trackScript, { added: [{ name: 'chk_disk', weight: 0 }], removed: [], reweighted: [{ name: 'chk_proxy', from: -20, to: -50 }] });
  t.deepEqual(p.summary, [
    'vrrp_instance VI_1: +track_script chk_disk (weight 0)',
    'vrrp_instance VI_1: track_script chk_proxy weight -20 -> -50',
    'vrrp_instance VI_U: -unicast_peer 192.168.1.12',
    'vrrp_instance VI_U: +unicast_peer 192.168.1.13',
    'vrrp_instance VI_U: +track_interface eth1 (weight 0)',
  ]);
});

test('a VRID change is remove + add', (t) => {
  const p = plan(['virtual_router_id = 51', 'virtual_router_id = 61']);
  t.deepEqual(p.vrrp.removed.map((v) => v.virtual_router_id), [51]);
  t.deepEqual(p.vrrp.added.map((v) => v.virtual_router_id), [61]);
  t.deepEqual(p.vrrp.kept.map((k) => k.next.name).sort(), ['VI_6', 'VI_U']);
  // sync.sync_id defaults to the VRID of sync.instance, so it follows.
  t.deepEqual(p.summary, ['-vrrp_instance VI_1 (eth0, VRID 51, IPv4)', '+vrrp_instance VI_1 (eth0, VRID 61, IPv4)', 'sync: sync_id 51 -> 61']);
});

test('an interface change is remove + add; the same VRID in another family is a different instance', (t) => {
  const p = plan(['interface = "eth1"\nvirtual_router_id = 53', 'interface = "eth2"\nvirtual_router_id = 53']);
  t.deepEqual(p.vrrp.removed.map((v) => v.interface), ['eth1']);
  t.deepEqual(p.vrrp.added.map((v) => v.interface), ['eth2']);
  // VI_6 moves to VRID 51: same VRID as VI_1, but IPv6, so a new key.
  const q = plan(['virtual_router_id = 52', 'virtual_router_id = 51']);
  t.deepEqual(q.vrrp.removed.map((v) => v.name), ['VI_6']);
  t.deepEqual(q.vrrp.added.map((v) => v.name), ['VI_6']);
  t.true(isEmptyVrrpChange(kept(q, 'VI_1').changes));
});

test('a rename with the same key is kept with a name change', (t) => {
  const p = plan(['name = "VI_1"', 'name = "VI_WEB"'], ['group = ["VI_1", "VI_6"]', 'group = ["VI_WEB", "VI_6"]'], ['instance = "VI_1"', 'instance = "VI_WEB"']);
  t.deepEqual(p.vrrp.added, []);
  t.deepEqual(p.vrrp.removed, []);
  const k = kept(p, 'VI_WEB');
  t.is(k.current.name, 'VI_1');
  t.deepEqual(k.changes.settings, { name: { from: 'VI_1', to: 'VI_WEB' } });
  t.false(k.changes.restartInstance);
  t.deepEqual(p.syncGroups.changed.map((c) => [c.membersAdded, c.membersRemoved]), [[['VI_WEB'], ['VI_1']]]);
  t.deepEqual(p.sync?.changed, ['instance']);
  t.deepEqual(p.summary, [
    'vrrp_instance VI_WEB: name VI_1 -> VI_WEB',
    'vrrp_sync_group VG_1: -member VI_1',
    'vrrp_sync_group VG_1: +member VI_WEB',
    'sync: instance VI_1 -> VI_WEB',
  ]);
});

test('a version change cannot be applied in place: restartInstance with the reason', (t) => {
  const p = plan(['virtual_router_id = 51\npriority = 150', 'virtual_router_id = 51\nversion = 3\npriority = 150']);
  onlyInstanceChanged(t, p, 'VI_1');
  const c = kept(p, 'VI_1').changes;
  t.true(c.restartInstance);
  t.deepEqual(c.settings, { version: { from: 2, to: 3 } });
  t.is(c.restartReasons.length, 1);
  t.regex(c.restartReasons[0]!, /version 2 -> 3/);
  t.deepEqual(p.summary, ['vrrp_instance VI_1: version 2 -> 3', `vrrp_instance VI_1: restarts (removed and re-added): ${c.restartReasons[0]}`]);
});

test('global vrrp_version reaches instances through their resolved version', (t) => {
  const p = plan(['router_id = "lb1"', 'router_id = "lb1"\nvrrp_version = 3']);
  t.deepEqual(p.global.changed, ['vrrp_version']);
  t.deepEqual(p.global.needsRestart, []);
  t.true(kept(p, 'VI_1').changes.restartInstance);
  t.true(kept(p, 'VI_U').changes.restartInstance);
  t.false(kept(p, 'VI_6').changes.restartInstance, 'VI_6 sets version = 3 itself');
});

test('an IPv4 multicast group change restarts the multicast IPv4 instances only', (t) => {
  const p = plan(['router_id = "lb1"', 'router_id = "lb1"\nvrrp_mcast_group4 = "224.0.0.19"']);
  t.deepEqual(p.global.changed, ['vrrp_mcast_group4']);
  t.deepEqual(p.global.needsRestart, []);
  const vi1 = kept(p, 'VI_1').changes;
  t.true(vi1.restartInstance);
  t.deepEqual(vi1.settings, {});
  t.regex(vi1.restartReasons[0]!, /vrrp_mcast_group4 224\.0\.0\.18 -> 224\.0\.0\.19/);
  t.true(isEmptyVrrpChange(kept(p, 'VI_6').changes), 'IPv6 instance');
  t.true(isEmptyVrrpChange(kept(p, 'VI_U').changes), 'unicast instance');
  t.deepEqual(p.summary, ['global: vrrp_mcast_group4 224.0.0.18 -> 224.0.0.19', `vrrp_instance VI_1: restarts (removed and re-added): ${vi1.restartReasons[0]}`]);
});

test('fast-check: VIP lists are exact set differences', (t) => {
  const pool = ['10.0.0.50/24', '10.0.0.51/24', '10.0.0.52/32', '10.0.0.53/16', '10.0.0.54/24', '10.0.0.55/28'];
  const subset = fc.subarray(pool, { minLength: 1 }).chain((s) => fc.shuffledSubarray(s, { minLength: s.length, maxLength: s.length }));
  fc.assert(
    fc.property(subset, subset, (a, b) => {
      const vips = (l: string[]): string => JSON.stringify(l);
      const cur = parse(edit(['["10.0.0.50/24", "10.0.0.60/24"]', vips(a)]));
      const nxt = parse(edit(['["10.0.0.50/24", "10.0.0.60/24"]', vips(b)]));
      const c = kept(planReload(cur, nxt), 'VI_1').changes;
      const sort = (l: string[]): string[] => [...l].sort();
      return (
        JSON.stringify(sort(c.vipsAdded)) === JSON.stringify(sort(b.filter((v) => !a.includes(v)))) &&
        JSON.stringify(sort(c.vipsRemoved)) === JSON.stringify(sort(a.filter((v) => !b.includes(v)))) &&
        isEmptyVrrpChange(c) === (sort(a).join() === sort(b).join())
      );
    }),
    { numRuns: 60 },
  );
  t.pass();
});

// -------------------------------------------------------------------------------------------
// Virtual servers

test('weights 1:1 -> 1:3 is weightChanged on that real server only', (t) => {
  const p = plan(['address = "10.0.0.22"', 'address = "10.0.0.22"\nweight = 3']);
  t.deepEqual(p.virtualServers.added, []);
  t.deepEqual(p.virtualServers.removed, []);
  const web = p.virtualServers.kept.find((k) => k.next.port === 80)!;
  t.deepEqual(web.changes.settings, {});
  t.deepEqual(web.changes.realServers.added, []);
  t.deepEqual(web.changes.realServers.removed, []);
  const [rs21, rs22] = web.changes.realServers.kept;
  t.like(rs21, { weightChanged: false, checksChanged: false, otherChanges: [] });
  t.like(rs22, { weightChanged: true, checksChanged: false, otherChanges: [] });
  t.deepEqual(rs22!.settings, { weight: { from: 1, to: 3 } });
  t.true(isEmptyVrrpChange(kept(p, 'VI_1').changes));
  t.deepEqual(p.summary, ['virtual_server tcp/10.0.0.50:80: real_server 10.0.0.22:80 weight 1 -> 3']);
});

test('real servers: added, removed (draining), other settings, keyed by address and port', (t) => {
  const p = plan(
    ['address = "10.0.0.21"\ncheck', 'address = "10.0.0.23"\ncheck'],
    ['address = "10.0.0.22"', 'address = "10.0.0.22"\nuthreshold = 100\ninhibit_on_failure = true'],
  );
  const web = p.virtualServers.kept.find((k) => k.next.port === 80)!.changes.realServers;
  t.deepEqual(web.added.map((r) => r.address), ['10.0.0.23']);
  t.deepEqual(web.removed.map((r) => r.address), ['10.0.0.21']);
  t.is(web.kept.length, 1);
  t.like(web.kept[0], { weightChanged: false, checksChanged: false, otherChanges: ['inhibit_on_failure', 'uthreshold'] });
  t.deepEqual(p.summary, [
    'virtual_server tcp/10.0.0.50:80: -real_server 10.0.0.21:80 (draining)',
    'virtual_server tcp/10.0.0.50:80: +real_server 10.0.0.23:80',
    'virtual_server tcp/10.0.0.50:80: real_server 10.0.0.22:80 inhibit_on_failure false -> true',
    'virtual_server tcp/10.0.0.50:80: real_server 10.0.0.22:80 uthreshold 0 -> 100',
  ]);
  // A port change is a different real server.
  const q = plan(['address = "10.0.0.22"', 'address = "10.0.0.22"\nport = 8080']);
  const rs = q.virtualServers.kept.find((k) => k.next.port === 80)!.changes.realServers;
  t.deepEqual([rs.added.map((r) => r.port), rs.removed.map((r) => r.port)], [[8080], [80]]);
});

test('check changes are checksChanged only, and described', (t) => {
  const from = 'address = "10.0.0.22"\ncheck = [{ type = "HTTP_GET", path = "/health", status_code = [200, 204] }, { type = "TCP_CHECK" }]';
  const p = plan([from, 'address = "10.0.0.22"\ncheck = [{ type = "HTTP_GET", path = "/ready", status_code = [200, 204] }, { type = "TCP_CHECK" }]']);
  const rs = p.virtualServers.kept.find((k) => k.next.port === 80)!.changes.realServers.kept[1]!;
  t.like(rs, { weightChanged: false, checksChanged: true, otherChanges: [] });
  t.deepEqual(p.summary, ['virtual_server tcp/10.0.0.50:80: real_server 10.0.0.22:80 check HTTP_GET: path /health -> /ready']);
  const q = plan([from, 'address = "10.0.0.22"\ncheck = { type = "TCP_CHECK" }']);
  t.deepEqual(q.summary, ['virtual_server tcp/10.0.0.50:80: real_server 10.0.0.22:80 -check HTTP_GET']);
  // An inherited check default changing on the virtual server shows up on every real server's checks.
  const r = plan(['lb_algo = "wlc"', 'lb_algo = "wlc"\nconnect_timeout = 2']);
  const web = r.virtualServers.kept.find((k) => k.next.port === 80)!.changes;
  t.deepEqual(Object.keys(web.settings), ['connect_timeout']);
  t.deepEqual(web.realServers.kept.map((k) => [k.weightChanged, k.checksChanged]), [[false, true], [false, true]]);
});

test('each virtual server setting produces exactly its change and summary line', (t) => {
  const cases: Array<{ to: string; key: string; line: string }> = [
    { to: 'lb_algo = "rr"', key: 'lb_algo', line: 'lb_algo wlc -> rr' },
    { to: 'lb_algo = "wlc"\npersistence_timeout = 300', key: 'persistence_timeout', line: 'persistence_timeout 0 -> 300' },
    { to: 'lb_algo = "wlc"\npersistence_granularity = "255.255.255.0"', key: 'persistence_granularity', line: 'persistence_granularity 255.255.255.255 -> 255.255.255.0' },
    { to: 'lb_algo = "wlc"\nquorum = 2', key: 'quorum', line: 'quorum 1 -> 2' },
    { to: 'lb_algo = "wlc"\nhysteresis = 1', key: 'hysteresis', line: 'hysteresis 0 -> 1' },
    { to: 'lb_algo = "wlc"\nalpha = true', key: 'alpha', line: 'alpha false -> true' },
    { to: 'lb_algo = "wlc"\nomega = true', key: 'omega', line: 'omega false -> true' },
    { to: 'lb_algo = "wlc"\nproxy_protocol = "v2"', key: 'proxy_protocol', line: 'proxy_protocol "" -> v2' },
    { to: 'lb_algo = "wlc"\ndrain_timeout = 5', key: 'drain_timeout', line: 'drain_timeout 30 -> 5' },
    { to: 'lb_algo = "wlc"\ndepool_threshold = 0.5', key: 'depool_threshold', line: 'depool_threshold 0 -> 0.5' },
    { to: 'lb_algo = "wlc"\nslow_start = 10', key: 'slow_start', line: 'slow_start 0 -> 10' },
    { to: 'lb_algo = "wlc"\nmh_table_size = 251', key: 'mh_table_size', line: 'mh_table_size 65537 -> 251' },
    { to: 'lb_algo = "wlc"\nhash_seed = 7', key: 'hash_seed', line: `hash_seed ${defaultHashSeed('tcp/10.0.0.50:80')} -> 7` },
  ];
  for (const c of cases) {
    const p = plan(['lb_algo = "wlc"', c.to]);
    t.deepEqual(p.summary, [`virtual_server tcp/10.0.0.50:80: ${c.line}`], c.key);
    t.deepEqual(p.virtualServers.added, []);
    t.deepEqual(p.virtualServers.removed, []);
    const [web, dns] = p.virtualServers.kept;
    t.deepEqual(Object.keys(web!.changes.settings), [c.key], c.key);
    t.true(web!.changes.realServers.kept.every((k) => !k.weightChanged && !k.checksChanged && k.otherChanges.length === 0), c.key);
    t.deepEqual(dns!.changes.settings, {});
  }
});

test('lb_kind and scheduler flags are settings of a kept service (moved between data planes in place)', (t) => {
  const p = plan(['lb_kind = "PROXY"', 'lb_kind = "NAT"'], ['lb_algo = "wlc"', 'lb_algo = "sh"\nsched_flags = ["sh-port"]']);
  t.deepEqual(p.summary, [
    'virtual_server tcp/10.0.0.50:80: lb_algo wlc -> sh',
    'virtual_server tcp/10.0.0.50:80: lb_kind PROXY -> NAT',
    'virtual_server tcp/10.0.0.50:80: sched_flags [] -> ["sh-port"]',
  ]);
  t.deepEqual(p.virtualServers.added, []);
  t.deepEqual(p.virtualServers.removed, []);
});

test('a port-set or fwmark service is identified by its key: changing the ports is remove + add', (t) => {
  const svc = (match: string, extra = '') => parse(`
[[virtual_server]]
${match}
lb_algo = "rr"
${extra}
[[virtual_server.real_server]]
address = "10.0.0.21"
check = { type = "TCP_CHECK", connect_port = 80 }
`);
  const one = svc('address = "10.0.0.50"\nport = 80');
  const set = svc('address = "10.0.0.50"\nports = [80, "8000-8080"]');
  t.deepEqual(planReload(one, set).summary, ['-virtual_server tcp/10.0.0.50:80', '+virtual_server tcp/10.0.0.50:80,8000-8080']);
  t.deepEqual(planReload(set, svc('address = "10.0.0.50"\nports = ["8000-8080", 80]')).summary, [], 'the same set in another order');
  const fw = svc('fwmark = 3');
  t.deepEqual(planReload(fw, svc('fwmark = 3', 'protocol = "TCP"')).summary, []);
  t.deepEqual(planReload(fw, svc('fwmark = 3', 'hash_seed = 1')).summary, [`virtual_server fwmark/3: hash_seed ${defaultHashSeed('fwmark/3')} -> 1`]);
  t.deepEqual(planReload(fw, svc('fwmark = 4')).summary, ['-virtual_server fwmark/3', '+virtual_server fwmark/4']);
});

test('inherited defaults: inhibit_on_failure on the service changes the real servers too', (t) => {
  const p = plan(['lb_algo = "wlc"', 'lb_algo = "wlc"\ninhibit_on_failure = true']);
  const web = p.virtualServers.kept.find((k) => k.next.port === 80)!.changes;
  t.deepEqual(Object.keys(web.settings), ['inhibit_on_failure']);
  t.deepEqual(web.realServers.kept.map((k) => k.otherChanges), [['inhibit_on_failure'], ['inhibit_on_failure']]);
});

test('sorry server changes compare canonically', (t) => {
  const p = plan(['{ address = "10.0.0.30", port = 8080 }', '{ address = "10.0.0.31", port = 8080 }']);
  t.deepEqual(p.summary, ['virtual_server tcp/10.0.0.50:80: sorry_server 10.0.0.30:8080 -> 10.0.0.31:8080']);
  const q = plan(['sorry_server = { address = "10.0.0.30", port = 8080 }\n', '']);
  t.deepEqual(q.summary, ['virtual_server tcp/10.0.0.50:80: sorry_server 10.0.0.30:8080 -> (unset)']);
});

test('a service protocol change is remove + add', (t) => {
  const p = plan(['protocol = "UDP"', 'protocol = "TCP"']);
  t.deepEqual(p.virtualServers.removed.map((v) => `${v.protocol}/${v.port}`), ['UDP/53']);
  t.deepEqual(p.virtualServers.added.map((v) => `${v.protocol}/${v.port}`), ['TCP/53']);
  t.is(p.virtualServers.kept.length, 1);
  t.deepEqual(p.summary, ['-virtual_server udp/[2001:db8::50]:53', '+virtual_server tcp/[2001:db8::50]:53']);
  const q = plan(['port = 53', 'port = 5353']);
  t.deepEqual(q.summary, ['-virtual_server udp/[2001:db8::50]:53', '+virtual_server udp/[2001:db8::50]:5353']);
});

// -------------------------------------------------------------------------------------------
// Scripts, sync groups, sync, global

test('vrrp_script and vrrp_sync_group: added, removed, changed by name', (t) => {
  const p = plan(
    ['name = "chk_disk"\nscript = "/usr/local/bin/check-disk"', 'name = "chk_dns"\nscript = "/usr/local/bin/check-dns"'],
    ['script = "/usr/local/bin/check-proxy"\nweight = -20', 'script = "/usr/local/bin/check-proxy"\nweight = -20\ninterval = 2\nfall = 3'],
    ['group = ["VI_1", "VI_6"]', 'group = ["VI_1", "VI_6", "VI_U"]\nnotify = "/usr/local/bin/notify-group"'],
  );
  t.deepEqual([p.vrrpScripts.added.map((s) => s.name), p.vrrpScripts.removed.map((s) => s.name)], [['chk_dns'], ['chk_disk']]);
  t.deepEqual(p.vrrpScripts.changed.map((c) => [c.next.name, Object.keys(c.settings)]), [['chk_proxy', ['interval', 'timeout', 'fall']]]);
  t.deepEqual(p.syncGroups.changed.map((c) => [c.membersAdded, c.membersRemoved, Object.keys(c.settings)]), [[['VI_U'], [], ['notify']]]);
  t.deepEqual(p.summary, [
    '-vrrp_script chk_disk',
    '+vrrp_script chk_dns',
    'vrrp_script chk_proxy: interval 1 -> 2',
    'vrrp_script chk_proxy: timeout 1 -> 2',
    'vrrp_script chk_proxy: fall 1 -> 3',
    'vrrp_sync_group VG_1: notify (unset) -> /usr/local/bin/notify-group',
    'vrrp_sync_group VG_1: +member VI_U',
  ]);
  const q = plan(['name = "VG_1"', 'name = "VG_WEB"']);
  t.deepEqual([q.syncGroups.added.map((g) => g.name), q.syncGroups.removed.map((g) => g.name), q.syncGroups.changed], [['VG_WEB'], ['VG_1'], []]);
});

test('a vrrp_script weight change reaches the instances that inherit it', (t) => {
  const p = plan(['weight = -20', 'weight = -30']);
  t.deepEqual(kept(p, 'VI_1').changes.trackScript.reweighted, [{ name: 'chk_proxy', from: -20, to: -30 }]);
  t.deepEqual(p.summary, ['vrrp_script chk_proxy: weight -20 -> -30', 'vrrp_instance VI_1: track_script chk_proxy weight -20 -> -30']);
});

test('sync: null when unchanged, before/after when added, removed or changed; keys never printed', (t) => {
  const withoutSync = BASE.slice(0, BASE.indexOf('[sync]'));
  const removed = planReload(parse(BASE), parse(withoutSync));
  t.is(removed.sync?.after, undefined);
  t.is(removed.sync?.before?.instance, 'VI_1');
  t.deepEqual(removed.summary, ['-sync']);
  const added = planReload(parse(withoutSync), parse(BASE));
  t.deepEqual(added.summary, ['+sync (eth0, instance VI_1)']);
  const changed = plan(['auth_key = "secret-sync-key-0123"', 'auth_key = "other-sync-key-01234"\nport = 8849\nunicast_peer = ["10.0.0.12"]']);
  t.deepEqual(changed.sync?.changed.sort(), ['auth_key', 'port', 'unicast_peer']);
  t.is(changed.sync?.before?.port, 8848);
  t.is(changed.sync?.after?.port, 8849);
  t.deepEqual(changed.summary, ['sync: port 8848 -> 8849', 'sync: auth_key changed', 'sync: unicast_peer [] -> ["10.0.0.12"]']);
  t.false(changed.summary.join('\n').includes('secret'));
  t.is(plan().sync, null);
});

test('global changes and needsRestart', (t) => {
  const p = plan([
    'router_id = "lb1"',
    'router_id = "lb2"\nmetrics_listen = "127.0.0.1:9651"\ncontrol_socket = "/run/other.sock"\npid_file = "/run/other.pid"\ndrain_timeout = 10\nvrrp_garp_interval = 0.01',
  ]);
  t.deepEqual(p.global.changed, ['router_id', 'control_socket', 'metrics_listen', 'pid_file', 'vrrp_garp_interval', 'drain_timeout']);
  t.deepEqual(p.global.needsRestart, ['control_socket', 'pid_file']);
  t.deepEqual(p.global.settings.metrics_listen, { from: '127.0.0.1:9650', to: '127.0.0.1:9651' });
  // global drain_timeout is the default of virtual_server.drain_timeout
  t.deepEqual(p.virtualServers.kept.map((k) => Object.keys(k.changes.settings)), [['drain_timeout'], ['drain_timeout']]);
  t.deepEqual(p.summary.slice(0, 6), [
    'global: router_id lb1 -> lb2',
    'global: control_socket /run/keepalive-ts.sock -> /run/other.sock (needs a daemon restart)',
    'global: metrics_listen 127.0.0.1:9650 -> 127.0.0.1:9651',
    'global: pid_file /run/keepalive-ts.pid -> /run/other.pid (needs a daemon restart)',
    'global: vrrp_garp_interval 0 -> 0.01',
    'global: drain_timeout 30 -> 10',
  ]);
  t.false(isEmpty(p));
  // An equal address spelled differently is no change; "" disables the endpoint.
  t.true(isEmpty(plan(['router_id = "lb1"', 'router_id = "lb1"\nmetrics_listen = "127.0.0.1:9650"'])));
  t.deepEqual(plan(['router_id = "lb1"', 'router_id = "lb1"\nmetrics_listen = ""']).summary, ['global: metrics_listen 127.0.0.1:9650 -> ""']);
  for (const key of p.global.needsRestart) t.false(GLOBAL_APPLY[key].live);
});

test('the director pair: a to b is priority, router_id, control socket and metrics address', (t) => {
  const p = planReload(parse(conf('director-a.toml')), parse(conf('director-b.toml')));
  t.deepEqual(p.summary, [
    'global: router_id director-a -> director-b',
    'global: control_socket /run/keepalive-ts/director-a.sock -> /run/keepalive-ts/director-b.sock (needs a daemon restart)',
    'global: metrics_listen 10.77.0.11:9650 -> 10.77.0.12:9650',
    'vrrp_instance VI_1: priority 150 -> 100',
  ]);
  t.deepEqual(p.global.needsRestart, ['control_socket']);
});

test('isEmpty agrees with the summary', (t) => {
  const variants: Array<Array<[string, string]>> = [
    [],
    [['priority = 150', 'priority = 151']],
    [['address = "10.0.0.21"\ncheck', 'address = "10.0.0.21"\nweight = 0\ncheck']],
    [['protocol = "UDP"', 'protocol = "TCP"']],
    [['name = "chk_disk"', 'name = "chk_disk2"']],
    [["auth_key = \"secret-sync-key-0123\"", "auth_key = \"x-0123456789abcdef\""]],
  ];
  for (const v of variants) {
    const p = plan(...v);
    t.is(isEmpty(p), p.summary.length === 0, JSON.stringify(v));
  }
});
