// The nftables ruleset builder and transaction planner (pure): golden rulesets, what a change
// touches, schedulers, the control loop, parsers of the kernel's answers, stable names.
import test from 'ava';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { allObjects, elementDiff, modelOf, planTransaction, type NftObj } from '../../src/lvs/dataplane/nftables/model.js';
import { assignShards, buildModel, connKey, DEFAULT_LIMITS, eligible, nftTime, prefixMask, SHARD_SERVICES, type NftServiceInput } from '../../src/lvs/dataplane/nftables/ruleset.js';
import type { ServiceKey } from '../../src/util/endpoint.js';
import { schedule, sequenceMap, wrrSequence } from '../../src/lvs/dataplane/nftables/sched.js';
import { reweight } from '../../src/lvs/dataplane/nftables/reweight.js';
import { countFlows, parseCounters, parseMapEntries } from '../../src/lvs/dataplane/nftables/counters.js';
import { parseJsonDocuments } from '../../src/lvs/dataplane/nftables/transport.js';
import { IdRegistry } from '../../src/lvs/dataplane/nftables/ids.js';
import { renderScenario, roundMaglev, SCENARIOS } from '../lib/nft-scenarios.js';

const GOLDEN = fileURLToPath(new URL('../../../test/fixtures/nft/', import.meta.url));

// ------------------------------------------------------------------------------------------------
// Golden rulesets (UPDATE_GOLDEN=1 rewrites them; test/netns/nft-ruleset.test.ts loads them into a kernel)

for (const name of Object.keys(SCENARIOS)) {
  test(`golden ruleset: ${name}`, (t) => {
    const text = renderScenario(name);
    const file = `${GOLDEN}${name}.nft`;
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, text);
    t.is(text, readFileSync(file, 'utf8'));
  });
}

test('every golden file has a scenario', (t) => {
  const files = readdirSync(GOLDEN).filter((f) => f.endsWith('.nft')).map((f) => f.slice(0, -4)).sort();
  t.deepEqual(files, Object.keys(SCENARIOS).sort());
});

// ------------------------------------------------------------------------------------------------
// What the rules say

const base = SCENARIOS['dr-rr']![0]!;
const build = (services: NftServiceInput[]) => buildModel({ services, limits: DEFAULT_LIMITS, maglev: roundMaglev });
/**
 * A chain's rules with the service's named scheduler maps written inline again
 * (`M set <expr> M set M map @S_m…` -> `M set <expr> map { … }`), as the rules read before the
 * maps were named (ruleset.ts namedMaps): what the scheduler decides, whatever its container.
 */
const chainRules = (services: NftServiceInput[], name: string): string[] => {
  const objs = allObjects(build(services).model);
  const o = objs.find((x) => x.name === name);
  if (!o || o.type !== 'chain') throw new Error(`no chain ${name}`);
  return o.rules.map((r) => r.replace(/(meta mark|ct mark) set (.*?) \1 set \1 map @(s[0-9a-f]+_m[0-9a-f]{8})/g, (_m, _mark: string, expr: string, mapName: string) => {
    const m = objs.find((x) => x.name === mapName);
    if (!m || m.type !== 'map' || !(m.elements instanceof Map)) throw new Error(`no map ${mapName}`);
    return `${_mark} set ${expr} map { ${[...m.elements].map(([k, v]) => `${k} : ${v}`).join(', ')} }`;
  }));
};

test('scheduler maps are named maps of the service (no anonymous set per service in a batch), shared by the rules that use the same one', (t) => {
  const objs = allObjects(build([base]).model);
  const maps = objs.filter((o) => o.type === 'map' && /^s00000001_m[0-9a-f]{8}$/.test(o.name));
  t.is(maps.length, 1, 'pick (rr numgen) and the reborn/full flow hash map the same two slots');
  t.true(maps[0]!.type === 'map' && maps[0]!.decl === 'type mark : mark; flags interval;');
  for (const o of objs) if (o.type === 'chain' && !o.name.startsWith('g_')) for (const r of o.rules) t.false(/ map \{/.test(r), r);
});

test('DR: established flows are looked up first, new flows scheduled over weight > 0 only, forwarded with fwd ip to … device', (t) => {
  const svc = SCENARIOS['dr-portset-persist-wrr']![0]!;
  const rules = chainRules([svc], 's00000002_svc');
  // A SYN on a closing tuple is a new connection: the old entry expires, the flow is reborn.
  t.regex(rules[0]!, /^tcp flags & \(syn \| ack\) == syn ip saddr \. th sport \. th dport @s00000002_closing_\w+ delete @s00000002_closing_\w+ \{ [^}]+ \} update @s00000002_conn_\w+ \{ [^}]+ timeout 1ms : meta mark \} update @s00000002_reborn_\w+ \{ [^}]+ timeout 60s \} goto s00000002_rb$/);
  t.regex(rules[1]!, /@s00000002_reborn_\w+ goto s00000002_rb$/);
  t.regex(rules[2]!, /@s00000002_closing_\w+ meta mark set .* map @s00000002_conn_\w+ update .* meta mark @s00000002_ids goto s00000002_keep$/);
  t.regex(rules[3]!, /^tcp flags & \(fin \| rst\) != 0 /);
  t.regex(rules[4]!, /timeout 900s/);
  // Established flows refresh their template in a rule of its own (a full persistence table
  // fails that update and ends only that rule: the flow is still forwarded).
  for (const r of rules.slice(2, 5)) t.false(r.includes('update @s00000002_persist'), r);
  t.deepEqual(chainRules([svc], 's00000002_keep'), [`update @${rules[5]!.match(/@(s00000002_persist_\w+)/)![1]} { ip saddr and 255.255.255.0 : meta mark }`, 'goto s00000002_fwd']);
  t.regex(rules[5]!, /^meta mark set ip saddr and 255\.255\.255\.0 map @s00000002_persist_\w+ meta mark @s00000002_known goto s00000002_commit$/);
  t.is(rules[6], 'goto s00000002_pick');
  // Reborn flows: template first, then a flow hash over the servers taking new connections (wrr is not a function of the flow).
  const rb = chainRules([svc], 's00000002_rb');
  t.regex(rb[2]!, /^meta mark set ip saddr and 255\.255\.255\.0 map @s00000002_persist_\w+ meta mark @s00000002_known goto s00000002_rbs$/);
  t.is(rb[3], 'meta mark set jhash ip saddr . th sport mod 4 seed 0x00c0ffee map { 0 : 0x00000021, 1-3 : 0x00000022 } goto s00000002_rbs');
  // wrr 1:3 interleaved as IPVS does (the weight-0 server 0x23 takes nothing new).
  t.deepEqual(chainRules([svc], 's00000002_pick'), ['meta mark set numgen inc mod 4 map { 0-1 : 0x00000022, 2 : 0x00000021, 3 : 0x00000022 } goto s00000002_commit']);
  const model = build([svc]).model;
  const ids = allObjects(model).find((o) => o.name === 's00000002_ids');
  t.true(ids?.type === 'set' && ids.elements instanceof Map && ids.elements.has('0x00000023'), 'the quiescent server keeps its established flows');
  t.deepEqual(chainRules([svc], 's00000002_fwd'), ['counter name meta mark map @s00000002_cin fwd ip to meta mark map @s00000002_addr device "eth0"']);
  // Destinations behind two interfaces: one rule per interface, selected by an id set.
  const two = SCENARIOS['dr-ipv6-mh']![0]!;
  t.deepEqual(chainRules([two], 's00000005_fwd'), [
    'meta mark @s00000005_dev0 counter name meta mark map @s00000005_cin fwd ip6 to meta mark map @s00000005_addr device "eth0"',
    'meta mark @s00000005_dev1 counter name meta mark map @s00000005_cin fwd ip6 to meta mark map @s00000005_addr device "eth1"',
  ]);
});

test('DR: draining keeps only the established-flow rules; idle services leave the ingress chain; nothing served -> no ingress chain', (t) => {
  const draining = { ...base, phase: 'draining' as const };
  const drainingRules = chainRules([draining], 's00000001_svc');
  t.is(drainingRules.length, 4, 'no SYN-reuse rule, no goto pick');
  t.regex(drainingRules[0]!, /@s00000001_reborn_\w+ goto s00000001_rb$/);
  t.true(drainingRules.slice(1).every((r) => r.includes('map @s00000001_conn_')));
  const idle = { ...base, phase: 'idle' as const };
  t.false(allObjects(build([idle]).model).some((o) => o.name.startsWith('g_in_')));
  t.regex(build([draining]).services.get('s00000001')!.inEffect, /not serving new connections/);
});

test('no destination: the sorry server takes new connections; neither: counted as dropped and left to the local stack', (t) => {
  const withSorry = SCENARIOS['dr-fwmark-sorry-draining']![0]!;
  const b = build([withSorry]);
  t.true(b.services.get('s00000003')!.sorryActive);
  t.is(b.services.get('s00000003')!.inEffect, 'sorry server');
  t.deepEqual(chainRules([withSorry], 's00000003_pick'), ['meta mark set 0x0000003f goto s00000003_commit']);
  const none = { ...base, dests: [] };
  t.deepEqual(chainRules([none], 's00000001_pick'), ['counter name s00000001_drop']);
});

test('DR connection table: full -> a flow hash keeps unpinned flows put (rr), SYNs still count', (t) => {
  const commit = chainRules([base], 's00000001_commit');
  t.deepEqual(commit, [
    'update @s00000001_conn_77ed { ip saddr . th sport timeout 60s : meta mark } counter name meta mark map @s00000001_cnew goto s00000001_fwd',
    'goto s00000001_full',
  ]);
  t.deepEqual(chainRules([base], 's00000001_full'), [
    'counter name s00000001_nofit meta mark set jhash ip saddr . th sport mod 2 seed 0x00c0ffee map { 0 : 0x00000011, 1 : 0x00000012 }',
    'tcp flags & (syn | ack) == syn counter name meta mark map @s00000001_cnew',
    'goto s00000001_fwd',
  ]);
  // A hash scheduler is already a function of the flow: no replacement.
  const sh = { ...base, spec: { ...base.spec, scheduler: 'sh' as const } };
  t.is(chainRules([sh], 's00000001_full')[0], 'counter name s00000001_nofit');
});

test('connection-table keys fit nft 1.0.6 (at most 16 bytes): IPv6 uses the low address bits', (t) => {
  t.deepEqual(connKey(SCENARIOS['dr-ipv6-mh']![0]!.spec), { expr: '@nh,96,96 . th sport', decl: 'typeof @nh,96,96 . th sport' });
  t.is(connKey(SCENARIOS['dr-fwmark-sorry-draining']![0]!.spec).expr, 'ip saddr . th sport . ip daddr . th dport');
  t.is(connKey(SCENARIOS['dr-portset-persist-wrr']![0]!.spec).expr, 'ip saddr . th sport . th dport');
});

test('NAT: ct mark set only for new connections, DNAT/masquerade by mark, per-direction counters', (t) => {
  const services = SCENARIOS['nat-fullnat']!;
  const objs = allObjects(build(services).model);
  const chain = (n: string) => objs.find((o) => o.name === n) as Extract<NftObj, { type: 'chain' }>;
  t.deepEqual(chain('g_pre').rules, ['ct state new ip daddr . meta l4proto . th dport vmap { 10.77.0.50 . tcp . 80 : goto s00000006_svc, 10.77.0.50 . udp . 53 : goto s00000007_svc }']);
  t.regex(chain('g_pre').base, /hook prerouting priority -140/);
  t.deepEqual(chain('g_forward').rules, ['counter name ct direction . ct mark map @g_ctr']);
  const ctr = objs.find((o) => o.name === 'g_ctr');
  t.is(ctr?.type === 'map' && ctr.elements instanceof Map ? ctr.elements.get('original . 0x00000061') : '', '"s00000006_i00000061"');
  t.is(ctr?.type === 'map' && ctr.elements instanceof Map ? ctr.elements.get('reply . 0x00000061') : '', '"s00000006_o00000061"');
  t.deepEqual(chain('s00000006_commit').rules, ['counter name ct mark map @s00000006_cnew']);
  const dnat = objs.find((o) => o.name === 'g_dnat4p');
  t.true(dnat?.type === 'map' && dnat.elements instanceof Map && dnat.elements.get('0x00000061') === '10.78.0.21 . 8080');
  const full = objs.find((o) => o.name === 'g_fullnat');
  t.deepEqual(full?.type === 'set' && full.elements instanceof Map ? [...full.elements.keys()] : [], ['0x00000071', '0x00000072', '0x0000007f']);
  // The control loop's weights, not the pool's, drive wlc.
  t.regex(chainRules(SCENARIOS['nat-fullnat']!, 's00000006_pick')[0]!, /^ct mark set numgen inc mod 4 map \{ 0-1 : 0x00000062, 2 : 0x00000061, 3 : 0x00000062 \}/);
});

test('helpers: masks, times, eligible destinations', (t) => {
  t.is(prefixMask(4, 24), '255.255.255.0');
  t.is(prefixMask(4, 0), '0.0.0.0');
  t.is(prefixMask(6, 64), 'ffff:ffff:ffff:ffff::');
  t.is(prefixMask(6, 56), 'ffff:ffff:ffff:ff00::');
  t.is(prefixMask(6, 128), 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
  t.is(nftTime(300_000), '300s');
  t.is(nftTime(1500), '1500ms');
  const wl = SCENARIOS['nat-fullnat']![0]!;
  t.deepEqual(eligible(wl), [{ id: 0x61, weight: 250, key: '10.78.0.21:8080' }, { id: 0x62, weight: 750, key: '10.78.0.22:8080' }]);
  t.deepEqual(eligible({ ...wl, schedWeights: new Map([[0x61, 5]]) }), [{ id: 0x61, weight: 5, key: '10.78.0.21:8080' }], 'no share, no new connection');
  t.deepEqual(eligible({ ...wl, schedWeights: new Map([[0x61, 0]]) }), [{ id: 0x61, weight: 1, key: '10.78.0.21:8080' }, { id: 0x62, weight: 1, key: '10.78.0.22:8080' }], 'all zero: the pool\'s weights');
});

// ------------------------------------------------------------------------------------------------
// The planner

test('planner: no change -> empty script; a pool change rewrites the pick chain and edits map elements only', (t) => {
  const m1 = build([base]).model;
  t.is(planTransaction(m1, build([base]).model).script, '');
  const changed = { ...base, dests: [...base.dests, { id: 0x13, endpoint: { address: '10.77.0.23', family: 4 as const, port: 80 }, weight: 1, device: 'eth0' }], counterIds: [0x11, 0x12, 0x13] };
  const plan = planTransaction(m1, build([changed]).model);
  const lines = plan.script.trim().split('\n');
  t.false(lines.some((l) => /conn_|closing_/.test(l) && /^(add|delete|flush) (map|set)/.test(l)), 'dynamic tables untouched');
  t.deepEqual(lines.filter((l) => l.startsWith('flush')).sort(), ['flush chain netdev keepalive_ts s00000001_full', 'flush chain netdev keepalive_ts s00000001_pick', 'flush chain netdev keepalive_ts s00000001_rb']);
  // The scheduler's map is a new one (its name follows its elements); the old one goes after the rules moved.
  t.true(lines.some((l) => /^add map netdev keepalive_ts s00000001_m[0-9a-f]{8} /.test(l)));
  t.true(lines.findIndex((l) => /^delete map netdev keepalive_ts s00000001_m/.test(l)) > lines.findIndex((l) => l.startsWith('add rule netdev keepalive_ts s00000001_full')));
  t.true(lines.includes('add element netdev keepalive_ts s00000001_addr { 0x00000013 : 10.77.0.23 }'));
  t.true(lines.indexOf('add counter netdev keepalive_ts s00000001_c00000013') < lines.indexOf('add element netdev keepalive_ts s00000001_cnew { 0x00000013 : "s00000001_c00000013" }'));
  t.is(lines.length, 19, plan.script);
  // And back: counters of a server that left stay (monotonic totals) unless the ids say otherwise.
  const back = planTransaction(build([changed]).model, build([{ ...base, counterIds: [0x11, 0x12] }]).model).script.trim().split('\n');
  const delEl = back.indexOf('delete element netdev keepalive_ts s00000001_cnew { 0x00000013 }');
  const delCounter = back.indexOf('delete counter netdev keepalive_ts s00000001_c00000013');
  t.true(delEl >= 0 && delCounter > delEl, back.join('\n'));
});

test('planner: a family that goes away is one delete table; resetTables removes stale tables first', (t) => {
  const m1 = build([base]).model;
  // DR services also own their VIP:port on local input (inet g_vipin_chain), so both families go.
  t.is(planTransaction(m1, modelOf([])).script, 'delete table netdev keepalive_ts\ndelete table inet keepalive_ts\n');
  const fresh = planTransaction(null, m1, { resetTables: ['netdev', 'inet'] }).script.split('\n');
  t.deepEqual(fresh.slice(0, 6), ['add table netdev keepalive_ts', 'delete table netdev keepalive_ts', 'add table inet keepalive_ts', 'delete table inet keepalive_ts', 'add table netdev keepalive_ts', 'add table inet keepalive_ts']);
});

test('planner: a changed declaration is a new name (persistence timeout), the old map goes', (t) => {
  const svc = SCENARIOS['dr-portset-persist-wrr']![0]!;
  const longer = { ...svc, spec: { ...svc.spec, persistence: { timeoutMs: 600_000, prefix: 24 } } };
  const script = planTransaction(build([svc]).model, build([longer]).model).script;
  t.regex(script, /add map netdev keepalive_ts s00000002_persist_\w+ \{ type ipv4_addr : mark; size 65536; flags dynamic,timeout; timeout 600s; \}/);
  t.regex(script, /delete map netdev keepalive_ts s00000002_persist_\w+/);
});

test('planner: Maglev tables change slot by slot', (t) => {
  const a = new Uint32Array([1, 2, 1, 2, 1]);
  const b = new Uint32Array([1, 2, 3, 2, 1]);
  t.deepEqual(elementDiff(a, b), { del: ['2'], add: [['2', '0x00000003']] });
  t.deepEqual(elementDiff(new Map([['a', '1'], ['b', '2']]), new Map([['b', '3'], ['c', '4']])), { del: ['a', 'b'], add: [['b', '3'], ['c', '4']] });
});

// ------------------------------------------------------------------------------------------------
// Schedulers and the control loop

test('wrr follows IPVS order; sh hashes into one interval per server by weight; sequences compress to intervals', (t) => {
  t.deepEqual(wrrSequence([{ id: 1, weight: 1 }, { id: 2, weight: 3 }]), [2, 2, 1, 2]);
  t.deepEqual(wrrSequence([{ id: 1, weight: 4 }, { id: 2, weight: 2 }]), [1, 1, 2]);
  const sh = schedule({ scheduler: 'sh', family: 4, dests: [{ id: 1, weight: 2 }, { id: 2, weight: 6 }], seed: 9, hashPort: true, tableSize: 7, reweightMs: 1000, reweighted: false }, roundMaglev);
  t.deepEqual(sh.expr, { kind: 'expr', expr: 'jhash ip saddr . th sport mod 4 seed 0x00000009 map { 0 : 0x00000001, 1-3 : 0x00000002 }' });
  t.is(sh.inEffect, 'sh (jhash of the source address and port, seed 0x00000009)');
  t.is(sequenceMap([5, 5, 6, 5]), '{ 0-1 : 0x00000005, 2 : 0x00000006, 3 : 0x00000005 }');
  const fo = schedule({ scheduler: 'fo', family: 4, dests: [{ id: 1, weight: 2 }, { id: 2, weight: 9 }, { id: 3, weight: 9 }], seed: 1, hashPort: false, tableSize: 7, reweightMs: 1000, reweighted: false }, roundMaglev);
  t.deepEqual(fo.expr, { kind: 'expr', expr: '0x00000002' });
  const mh = schedule({ scheduler: 'mh', family: 6, dests: [{ id: 7, weight: 1 }, { id: 8, weight: 1 }], seed: 5, hashPort: false, tableSize: 7, reweightMs: 1000, reweighted: false }, roundMaglev);
  t.deepEqual(mh.expr, { kind: 'table', hash: 'jhash ip6 saddr mod 7 seed 0x00000005', table: new Uint32Array([7, 8, 7, 8, 7, 8, 7]) });
  t.regex(schedule({ scheduler: 'wlc', family: 4, dests: [{ id: 1, weight: 1 }], seed: 1, hashPort: false, tableSize: 7, reweightMs: 500, reweighted: false }, roundMaglev).inEffect, /^wlc≈wrr re-weighted every 500 ms from connection counts \(configured weights until the first count\)$/);
});

test('control loop: a burst goes to the least loaded; many expected connections level the load by weight', (t) => {
  const servers = [
    { id: 1, weight: 1, active: 1, inactive: 0 },
    { id: 2, weight: 1, active: 0, inactive: 0 },
  ];
  t.deepEqual([...reweight('lc', servers, 1)!], [[2, 1000]]);
  t.deepEqual([...reweight('wlc', servers, 0)!], [[2, 1000]], 'no recent traffic: the next connection goes to the idle one');
  const many = reweight('wlc', [{ id: 1, weight: 1, active: 10, inactive: 0 }, { id: 2, weight: 1, active: 0, inactive: 0 }], 30)!;
  // 30 new: levels at 20 each -> 10 to #1, 20 to #2.
  t.is(many.get(1), 333);
  t.is(many.get(2), 667);
  const byWeight = reweight('sed', [{ id: 1, weight: 1, active: 0, inactive: 0 }, { id: 2, weight: 3, active: 0, inactive: 0 }], 1000)!;
  t.true(Math.abs(byWeight.get(2)! / byWeight.get(1)! - 3) < 0.05);
  t.deepEqual([...reweight('ovf', [{ id: 1, weight: 5, active: 5, inactive: 0 }, { id: 2, weight: 3, active: 1, inactive: 0 }], 1)!], [[2, 1]]);
  t.is(reweight('rr', servers, 1), null);
});

// ------------------------------------------------------------------------------------------------
// Reading the kernel back

test('parsers: counters, map entries with timeouts, flows by state', (t) => {
  const counters = parseJsonDocuments(
    '{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"counter": {"family": "netdev", "name": "s1_c00000011", "table": "keepalive_ts", "handle": 9, "packets": 2, "bytes": 120}}]}' +
      '{"nftables": [{"counter": {"family": "inet", "name": "s2_i{x}", "table": "keepalive_ts", "packets": 5, "bytes": 7}}]}',
  );
  t.deepEqual([...parseCounters(counters)], [['netdev s1_c00000011', { packets: 2, bytes: 120 }], ['inet s2_i{x}', { packets: 5, bytes: 7 }]]);
  const conn = parseMapEntries([JSON.parse('{"nftables": [{"map": {"family": "netdev", "name": "c", "elem": [[{"elem": {"val": {"concat": ["10.88.0.100", 60234]}, "timeout": 60, "expires": 8}}, 286331153], [{"elem": {"val": {"concat": ["10.88.0.100", 60244]}, "timeout": 60, "expires": 899}}, 572662306]]}}]}')]);
  t.is(conn.length, 2);
  t.deepEqual(conn[0], { key: { concat: ['10.88.0.100', 60234] }, keyText: '{"concat":["10.88.0.100",60234]}', value: 0x11111111, expiresS: 8 });
  const closing = parseMapEntries([JSON.parse('{"nftables": [{"set": {"name": "x", "elem": [{"elem": {"val": {"concat": ["10.88.0.100", 60234]}, "expires": 8}}]}}]}')]);
  t.deepEqual([...countFlows(conn, closing)], [[0x11111111, { active: 0, inactive: 1 }], [0x22222222, { active: 1, inactive: 0 }]]);
});

test('ids: the same on every director, distinct, never 0; names per service', (t) => {
  const a = new IdRegistry();
  const b = new IdRegistry();
  b.destId('tcp/10.0.0.1:80', 'rs', '10.0.0.9:80'); // a different order of first use
  t.is(a.destId('tcp/10.0.0.1:80', 'rs', '10.0.0.2:80'), b.destId('tcp/10.0.0.1:80', 'rs', '10.0.0.2:80'));
  t.not(a.destId('tcp/10.0.0.1:80', 'rs', '10.0.0.2:80'), a.destId('tcp/10.0.0.1:80', 'sorry', '10.0.0.2:80'));
  t.not(a.destId('tcp/10.0.0.1:80', 'rs', '10.0.0.2:80'), a.destId('tcp/10.0.0.1:81', 'rs', '10.0.0.2:80'));
  t.regex(a.serviceName('tcp/10.0.0.1:80'), /^s[0-9a-f]{8}$/);
  t.is(a.serviceName('tcp/10.0.0.1:80'), b.serviceName('tcp/10.0.0.1:80'));
});

// ------------------------------------------------------------------------------------------------
// Shard tables (the kernel walks a table's set list linearly: many services spread over tables)

test('assignShards: small configurations stay in the main table; a service keeps its shard; new ones fill the lowest shard with room', (t) => {
  const names = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `s${(from + i).toString(16).padStart(8, '0')}`);
  const small = assignShards(names(SHARD_SERVICES), new Map());
  t.true([...small.values()].every((s) => s === 0), `${SHARD_SERVICES} services: all in the main table`);
  const big = assignShards(names(1000), new Map(), 250);
  t.deepEqual([0, 1, 2, 3].map((k) => [...big.values()].filter((s) => s === k).length), [250, 250, 250, 250]);
  t.is(Math.max(...big.values()), 3);
  // Remove 10 of shard 1 and add 15 new services: the old ones do not move, 10 new go to shard 1, 5 to shard 4.
  const gone = new Set([...big].filter(([, s]) => s === 1).slice(0, 10).map(([n]) => n));
  const kept = [...big.keys()].filter((n) => !gone.has(n));
  const next = assignShards([...kept, ...names(15, 5000)], big, 250);
  for (const n of kept) t.is(next.get(n), big.get(n), `${n} keeps its shard`);
  t.deepEqual(names(15, 5000).map((n) => next.get(n)), [...Array(10).fill(1), ...Array(5).fill(4)]);
});

test('shards: each shard table holds its services with their own dispatch (DR ingress, NAT prerouting and counting); the guard and the NAT maps stay in the main table; a change touches only its shard', (t) => {
  const dr0 = SCENARIOS['dr-rr']![0]!;
  const dr2 = { ...dr0, name: 's000000d2', shard: 2, spec: { ...dr0.spec, key: 'tcp/10.77.0.50:81' as ServiceKey, match: { ...dr0.spec.match, ports: [{ from: 81, to: 81 }] } } } as NftServiceInput;
  const nat0 = SCENARIOS['nat-fullnat']![0]!;
  const nat2 = { ...nat0, name: 's000000e2', shard: 2, spec: { ...nat0.spec, key: 'tcp/10.77.0.50:82' as ServiceKey, match: { ...nat0.spec.match, ports: [{ from: 82, to: 82 }] } } } as NftServiceInput;
  const m = build([dr0, dr2, nat0, nat2]).model;
  const objs = allObjects(m);
  const inShard = (o: NftObj) => o.table === 'keepalive_ts_2';
  // Every object of a shard-2 service is in keepalive_ts_2, the main services' in the main table.
  for (const o of m.get('s000000d2')!) t.true(inShard(o), o.name);
  for (const o of m.get('s000000e2')!) t.true(inShard(o), o.name);
  for (const o of m.get(dr0.name)!) t.is(o.table, undefined, o.name);
  const ingress = objs.filter((o) => o.type === 'chain' && o.name.startsWith('g_in_'));
  t.is(ingress.length, 2, 'one DR ingress chain per table');
  const rulesOf = (o: NftObj | undefined) => (o?.type === 'chain' ? o.rules.join('\n') : '');
  const shardIngress = ingress.find(inShard);
  t.regex(rulesOf(shardIngress), /10\.77\.0\.50 \. tcp \. 81 : goto s000000d2_svc/);
  t.notRegex(rulesOf(shardIngress), /s00000001_svc/);
  t.notRegex(rulesOf(ingress.find((o) => !inShard(o))), /s000000d2_svc/);
  const pre = objs.filter((o) => o.name === 'g_pre');
  t.regex(rulesOf(pre.find(inShard)), /goto s000000e2_svc/);
  t.notRegex(rulesOf(pre.find((o) => !inShard(o))), /s000000e2_svc/);
  const ctr = objs.filter((o) => o.name === 'g_ctr');
  t.is(ctr.length, 2);
  const ctrElems = (o: NftObj | undefined) => (o && o.type === 'map' && o.elements instanceof Map ? [...o.elements.values()].join(' ') : '');
  t.regex(ctrElems(ctr.find(inShard)), /s000000e2_i/);
  t.notRegex(ctrElems(ctr.find(inShard)), /s00000006_i/);
  t.true(objs.some((o) => o.name === 'g_forward' && inShard(o)), 'the shard counts its NAT traffic in its own forward chain');
  // One guard (VIP:port input) and one set of NAT maps, in the main table, covering every service.
  const guard = objs.filter((o) => o.name === 'g_vipin_chain');
  t.is(guard.length, 1);
  t.is(guard[0]!.table, undefined);
  t.regex(rulesOf(guard[0]), /10\.77\.0\.50 \. 81/);
  t.is(objs.filter((o) => o.name === 'g_dnat4p').length, 1);
  // The first transaction creates the shard table (in the same batch as the main one).
  const first = planTransaction(null, m).script;
  t.regex(first, /^add table netdev keepalive_ts_2$/m);
  t.regex(first, /^add table inet keepalive_ts_2$/m);
  t.regex(first, /^add chain netdev keepalive_ts_2 s000000d2_svc$/m);
  // A pool change of the shard-2 DR service: every line of the transaction is in keepalive_ts_2.
  const changed = { ...dr2, dests: [dr2.dests[0]!] };
  const next = build([dr0, changed, nat0, nat2]).model;
  const plan = planTransaction(m, new Map([...m].map(([g, objs2]) => [g, g === 's000000d2' || g === ':2' ? next.get(g)! : objs2])));
  t.true(plan.script.length > 0);
  for (const line of plan.script.trim().split('\n')) t.regex(line, / (netdev|inet) keepalive_ts_2 /, line);
  // The shard's last services go: its tables are deleted, nothing else is touched.
  const gone = planTransaction(m, build([dr0, nat0]).model).script;
  t.regex(gone, /^delete table netdev keepalive_ts_2$/m);
  t.regex(gone, /^delete table inet keepalive_ts_2$/m);
  t.notRegex(gone, /delete table (netdev|inet) keepalive_ts$/m);
  // Start-up resets a shard table a previous daemon left, in the same batch.
  t.regex(planTransaction(null, build([dr0]).model, { resetTables: ['netdev', 'inet', 'netdev keepalive_ts_7'] }).script, /^add table netdev keepalive_ts_7\ndelete table netdev keepalive_ts_7$/m);
});
