// Pure parts of hitless failover: change detection of the DR connection tables (nftables/elements.ts)
// and conntrackd as keepalive-ts runs it (sync/conntrackd-plan.ts).
import test from 'ava';
import { diffTables, indexRows } from '../../src/lvs/dataplane/nftables/elements.js';
import { conntrackdConf, conntrackdInterfaceProblem, conntrackdSettings, GUARD_TABLE, guardRuleset, parseConntrackdQueues, parseConntrackdStats, ROLE_COMMANDS } from '../../src/sync/conntrackd-plan.js';
import { Conntrackd } from '../../src/sync/conntrackd.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { buildModel, DEFAULT_LIMITS } from '../../src/lvs/dataplane/nftables/ruleset.js';
import { renderModel } from '../../src/lvs/dataplane/nftables/model.js';
import { roundMaglev, SCENARIOS } from '../lib/nft-scenarios.js';

test('DR connection-table diff: new keys, a changed destination or own timeout are upserts; a refreshed expiry is not; gone keys reported', (t) => {
  const a = indexRows([
    ['c0000201', 1, 59_000, 60_000],
    ['c0000202', 2, 800_000, 0],
    ['c0000203', 3, 800_000, 0],
    ['c00002ff', null, 1, 0],
  ], 1000);
  t.is(a.size, 3, 'rows without data skipped');
  const b = indexRows([
    ['c0000201', 1, 900_000, 0], // first packet -> established (own timeout changed)
    ['c0000202', 2, 899_000, 0], // traffic refreshed it only
    ['c0000204', 4, 60_000, 60_000], // new
  ], 2000);
  const d = diffTables(a, b);
  t.deepEqual(d.upserts.map((e) => e.id).sort(), [1, 4]);
  t.deepEqual(d.gone.map((e) => e.id), [3]);
  t.is(b.get('c0000204')!.expiresAt, 62_000);
  t.deepEqual(diffTables(b, b), { upserts: [], gone: [] });
  const moved = indexRows([['c0000202', 7, 899_000, 0]], 2000);
  t.deepEqual(diffTables(b, moved).upserts.map((e) => e.id), [7], 'pinned to another destination');
});

test('conntrackd.conf: FTFW over UDP to the one peer, own lock/socket/log in the runtime dir; unsafe names refused', (t) => {
  const conf = conntrackdConf({ address: '10.9.0.1', destination: '10.9.0.2', port: 3780, interface: 'eth2', protocols: ['tcp', 'udp'], dir: '/run/kt.conntrackd' });
  for (const line of ['Mode FTFW', 'IPv4_address 10.9.0.1', 'IPv4_Destination_Address 10.9.0.2', 'Port 3780', 'Interface eth2', 'LockFile /run/kt.conntrackd/conntrackd.lock', 'Path /run/kt.conntrackd/conntrackd.ctl', 'TCP', 'UDP']) t.true(conf.includes(line), line);
  t.false(conf.includes('/var/lock/conntrack.lock'), 'never the system service lock');
  t.false(/Multicast/.test(conf));
  t.throws(() => conntrackdConf({ address: '10.9.0.1', destination: '10.9.0.2', port: 3780, interface: 'eth2 }', protocols: ['tcp'], dir: '/run/x' }), { instanceOf: RangeError });
  t.throws(() => conntrackdConf({ address: '10.9.0.1', destination: '10.9.0.2', port: 3780, interface: 'eth2', protocols: ['tcp'], dir: 'relative' }), { instanceOf: RangeError });
});

test('guard table: one atomic script accepting the port only from the peer on the sync interface, counting drops by reason', (t) => {
  const g = guardRuleset({ destination: '10.9.0.2', port: 3780, interface: 'eth2' });
  const lines = g.trim().split('\n');
  t.deepEqual(lines.slice(0, 3), [`add table inet ${GUARD_TABLE}`, `delete table inet ${GUARD_TABLE}`, `add table inet ${GUARD_TABLE}`], 'replaces a stale table in the same batch');
  t.true(lines.some((l) => l.includes('udp dport 3780 iifname != "eth2"') && l.endsWith('drop')));
  t.true(lines.some((l) => l.includes('udp dport 3780 ip saddr != 10.9.0.2') && l.endsWith('drop')));
  t.true(lines.some((l) => l.includes('meta nfproto ipv6') && l.endsWith('drop')), 'IPv6 to the port dropped too');
  t.true(lines.at(-1)!.endsWith('accept'));
  t.true(lines.findIndex((l) => l.endsWith('accept')) > lines.findIndex((l) => l.includes('saddr !=')), 'accept after the drops');
});

test("role commands follow keepalived's primary-backup.sh", (t) => {
  t.deepEqual(ROLE_COMMANDS.master, ['-c', '-f', '-R', '-B']);
  t.deepEqual(ROLE_COMMANDS.backup, ['-t', '-n']);
  t.deepEqual(ROLE_COMMANDS.fault, ['-t']);
});

test('conntrackd -s parsed (real 1.4.7 output)', (t) => {
  const text = `cache internal:
current active connections:	           0
connections created:		           0	failed:	           0
connections updated:		           0	failed:	           0
connections destroyed:		           0	failed:	           0

cache external:
current active connections:	           1
connections created:		           1	failed:	           0
connections updated:		           2	failed:	           0
connections destroyed:		           0	failed:	           3

traffic processed:
                   0 Bytes                         0 Pckts

UDP traffic (active device=hlcb0):
                  32 Bytes sent                  116 Bytes recv
                   2 Pckts sent                    3 Pckts recv
                   0 Error send                    0 Error recv

message tracking:
                   4 Malformed msgs                    5 Lost msgs
`;
  const s = parseConntrackdStats(text);
  t.deepEqual(s.internal, { active: 0, created: 0, createdFailed: 0, updated: 0, updatedFailed: 0, destroyed: 0, destroyedFailed: 0 });
  t.deepEqual(s.external, { active: 1, created: 1, createdFailed: 0, updated: 2, updatedFailed: 0, destroyed: 0, destroyedFailed: 3 });
  t.is(s.bytesSent, 32);
  t.is(s.bytesRecv, 116);
  t.is(s.packetsSent, 2);
  t.is(s.packetsRecv, 3);
  t.is(s.malformed, 4);
  t.is(s.lost, 5);
  t.is(parseConntrackdStats('').external, null);
});

test('conntrackd -s queue: the current length of each queue (conntrackd 1.4.7 output)', (t) => {
  const q = (name: string, cur: number, max: number) => `queue ${name}:\ncurrent elements:\t\t${String(cur).padStart(12)}\nmaximum elements:\t\t${String(max).padStart(12)}\nnot enough space errors:\t           0\n\n`;
  const text = `allocated queue nodes:\t\t           7\n\n${q('txqueue', 2, 2147483647)}${q('errorq', 0, 128)}${q('rsqueue', 5, 131072)}`;
  t.deepEqual([...parseConntrackdQueues(text)], [['txqueue', 2], ['errorq', 0], ['rsqueue', 5]]);
  t.is(parseConntrackdQueues('').size, 0);
});

const SYNC = `
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 100
virtual_ipaddress = ["10.0.0.50"]
[sync]
interface = "eth2"
instance = "VI_1"
auth_key = "hitless-unit-test-key-0123"
`;

test('[sync.conntrackd]: destination defaults to the one unicast peer; required otherwise; address must differ', (t) => {
  const ok = parseConfig(`${SYNC}unicast_peer = ["10.9.0.2"]\n[sync.conntrackd]\n`, 'a.toml');
  t.deepEqual(ok.sync?.conntrackd, { destination_address: '10.9.0.2', port: 3780, protocols: ['tcp', 'udp'], binary: '/usr/sbin/conntrackd' });
  t.is(parseConfig(SYNC, 'b.toml').sync?.conntrackd, undefined, 'absent: off');
  const err = t.throws(() => parseConfig(`${SYNC}[sync.conntrackd]\nport = 3781\n`, 'c.toml'));
  t.regex(err!.message, /c\.toml.*sync\.conntrackd\.destination_address.*required/s);
  const same = t.throws(() => parseConfig(`${SYNC}[sync.conntrackd]\ndestination_address = "10.9.0.2"\naddress = "10.9.0.2"\n`, 'd.toml'));
  t.regex(same!.message, /must differ/);
  const v6 = t.throws(() => parseConfig(`${SYNC}[sync.conntrackd]\ndestination_address = "fd00::2"\n`, 'e.toml'));
  t.regex(v6!.message, /IPv4 address/);
});

test("[sync.conntrackd]: an interface name conntrackd's parser cannot read is refused at config load, naming the key (verified names)", (t) => {
  // conntrackd 1.4.7 on Debian 12, `conntrackd -C` by hand: d0, ab, abcd, 0a, 1eth -> "syntax error";
  // x@y and x:y -> silently "x"; eth0, abcde, x-y, x_y, e.1 -> parsed.
  for (const bad of ['d0', 'ab', 'abcd', '0a', '1eth', 'x@y', 'x:y']) {
    t.truthy(conntrackdInterfaceProblem(bad), bad);
    const cfg = `${SYNC.replace(/interface = "eth2"/, `interface = "${bad}"`)}[sync.conntrackd]\ndestination_address = "10.9.0.2"\n`;
    t.true(cfg.includes(`interface = "${bad}"`), 'fixture carries the name');
    const err = t.throws(() => parseConfig(cfg, 'f.toml'), undefined, bad);
    t.regex(err!.message, /f\.toml.*sync\.interface.*conntrackd/s, bad);
    t.throws(() => conntrackdConf({ address: '10.9.0.1', destination: '10.9.0.2', port: 3780, interface: bad, protocols: ['tcp'], dir: '/run/x' }), { instanceOf: RangeError }, bad);
  }
  for (const good of ['eth0', 'abcde', 'x-y', 'x_y', 'e.1', 'sync0']) {
    t.is(conntrackdInterfaceProblem(good), undefined, good);
    const cfg = `${SYNC.replace(/interface = "eth2"/, `interface = "${good}"`)}[sync.conntrackd]\ndestination_address = "10.9.0.2"\n`;
    t.is(parseConfig(cfg, 'g.toml').sync?.interface, good);
  }
  // Without conntrackd, our own sync reads any link name.
  t.is(parseConfig(SYNC.replace(/interface = "eth2"/, 'interface = "d0"'), 'h.toml').sync?.interface, 'd0');
});

test('[sync.conntrackd] keys reach conntrackd.conf and the guard: port, protocols, destination, address', (t) => {
  const cfg = parseConfig(`${SYNC}[sync.conntrackd]\ndestination_address = "10.9.0.2"\naddress = "10.9.0.1"\nport = 3999\nprotocols = ["tcp"]\n`, 'k.toml').sync!;
  const st = conntrackdSettings(cfg.conntrackd!, cfg.interface, cfg.conntrackd!.address!, '/run/x.conntrackd');
  const conf = conntrackdConf(st);
  t.true(conf.includes('Port 3999'));
  t.true(conf.includes('Interface eth2'));
  t.true(conf.includes('IPv4_Destination_Address 10.9.0.2'));
  t.true(conf.includes('IPv4_address 10.9.0.1'));
  t.true(/Protocol Accept \{\s*TCP\s*\}/.test(conf), 'only TCP replicated');
  const guard = guardRuleset(st);
  t.true(guard.includes('udp dport 3999 ip saddr != 10.9.0.2'));
  t.true(guard.includes('iifname != "eth2"'));
});

test('[sync.conntrackd] binary: a missing executable is refused before anything is set up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-ctd-'));
  try {
    const err = await t.throwsAsync(Conntrackd.start({ config: { destination_address: '10.9.0.2', port: 3780, protocols: ['tcp'], binary: '/nonexistent/conntrackd' }, interface: 'lo', dir: join(dir, 'c') }));
    t.is((err as { code?: string }).code, 'E_DATAPLANE_UNAVAILABLE');
    t.regex(err!.message, /\/nonexistent\/conntrackd/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('NAT with conntrackd replication (natMidstreamDrop): unknown mid-stream TCP is dropped both ways, SYNs are scheduled; the VIP:port input guard drops only non-SYN', (t) => {
  const plain = renderModel(buildModel({ services: SCENARIOS['nat-fullnat']!, limits: DEFAULT_LIMITS, maglev: roundMaglev }).model);
  const guarded = renderModel(buildModel({ services: SCENARIOS['nat-fullnat']!, limits: { ...DEFAULT_LIMITS, natMidstreamDrop: true }, maglev: roundMaglev }).model);
  t.false(plain.includes('_midstream'), 'off by default');
  t.true(guarded.includes('add rule inet keepalive_ts s00000006_svc meta l4proto tcp tcp flags & syn == 0 counter name s00000006_midstream drop'), 'client side: a TCP service drops unknown mid-stream packets');
  t.false(guarded.includes('s00000007_midstream'), 'a UDP service has no such rule');
  t.regex(guarded, /add rule inet keepalive_ts g_pre ct state new ip saddr \{ 10\.78\.0\.21, 10\.78\.0\.22, 10\.78\.0\.30 \} tcp flags & syn == 0 counter name g_rs_midstream drop/, 'real-server side');
  t.regex(guarded, /g_vipin_chain ip daddr \. tcp dport \{ 10\.77\.0\.50 \. 80, 10\.77\.0\.52 \. 80 \} tcp flags & syn == 0 counter name g_vipin drop/, 'input guard: TCP services, non-SYN only');
});
