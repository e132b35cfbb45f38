// Pure parts of hitless failover: the kernel-table view connection sync uses (nftables/elements.ts)
// and conntrackd as keepalive-ts runs it (sync/conntrackd-plan.ts).
import test from 'ava';
import { connElementText, connFieldsOf, connKeyLayout, decodeElements, diffTables, indexDump, markBytes, markOf, persistClientOf, templateElementText } from '../../src/lvs/dataplane/nftables/elements.js';
import { conntrackdConf, GUARD_TABLE, guardRuleset, parseConntrackdStats, ROLE_COMMANDS } from '../../src/sync/conntrackd-plan.js';
import type { ServiceSpec } from '../../src/lvs/dataplane/contract.js';
import { serviceKey, type ServiceMatch } from '../../src/util/endpoint.js';
import { parseConfig } from '../../src/config/load.js';

function spec(match: ServiceMatch): ServiceSpec {
  return { key: serviceKey(match), match, kind: 'DR', scheduler: 'rr', hash: { seed: 1, tableSize: 13, port: false, fallback: false }, persistence: null, drainMs: 0, ops: false };
}
const single = spec({ kind: 'addr', protocol: 'tcp', address: '10.0.0.50', family: 4, ports: [{ from: 80, to: 80 }] });
const portset = spec({ kind: 'addr', protocol: 'tcp', address: '10.0.0.50', family: 4, ports: [{ from: 21, to: 21 }, { from: 10000, to: 20000 }] });
const fwmark = spec({ kind: 'fwmark', mark: 5, family: 4 });
const v6 = spec({ kind: 'addr', protocol: 'tcp', address: 'fd00::50', family: 6, ports: [{ from: 80, to: 80 }] });

/** One record as the addon packs it. */
function record(key: Buffer, data: Buffer | null, timeoutMs: number, expiresMs: number): Buffer {
  const h = Buffer.alloc(12);
  h[0] = key.length;
  h[1] = data?.length ?? 0;
  h[3] = timeoutMs ? 1 : 0;
  h.writeUInt32BE(timeoutMs, 4);
  h.writeUInt32BE(expiresMs, 8);
  return Buffer.concat([h, key, data ?? Buffer.alloc(0)]);
}

const key4 = (a: number[], sport: number, ...rest: Array<number[] | number>) => {
  const parts: Buffer[] = [Buffer.from(a), Buffer.from([sport >> 8, sport & 255, 0, 0])];
  for (const r of rest) parts.push(Array.isArray(r) ? Buffer.from(r) : Buffer.from([r >> 8, r & 255, 0, 0]));
  return Buffer.concat(parts);
};

test('element dump: records decode to key, data, timeout and time left; a truncated dump is refused', (t) => {
  const buf = Buffer.concat([record(key4([192, 0, 2, 10], 40000), markBytes(0x1234), 0, 899_000), record(Buffer.from([10, 0, 0, 0]), markBytes(7), 60_000, 30_000)]);
  const els = decodeElements(buf);
  t.is(els.length, 2);
  t.is(markOf(els[0]!.data), 0x1234);
  t.is(els[0]!.expiresMs, 899_000);
  t.is(els[1]!.timeoutMs, 60_000);
  t.throws(() => decodeElements(buf.subarray(0, buf.length - 1)), { instanceOf: RangeError });
  t.is(markOf(null), null);
});

test('connection keys: client and virtual endpoints per layout, and back to element text; IPv6 keys cannot be read back', (t) => {
  t.is(connKeyLayout(single), 'v4');
  t.deepEqual(connFieldsOf(single, key4([192, 0, 2, 10], 40000)), { client: { address: '192.0.2.10', family: 4, port: 40000 }, virtual: { address: '10.0.0.50', family: 4, port: 80 } });
  const ps = connFieldsOf(portset, key4([192, 0, 2, 10], 40001, 10500))!;
  t.is(ps.virtual.port, 10500);
  const fm = connFieldsOf(fwmark, key4([192, 0, 2, 10], 40002, [10, 0, 0, 60], 443))!;
  t.deepEqual(fm.virtual, { address: '10.0.0.60', family: 4, port: 443 });
  t.is(connFieldsOf(single, Buffer.alloc(7)), null, 'wrong length');
  t.is(connFieldsOf(v6, Buffer.alloc(16)), null);
  t.is(connElementText(single, connFieldsOf(single, key4([192, 0, 2, 10], 40000))!, 0x1234, 900_000, 500_000), '192.0.2.10 . 40000 timeout 900000ms expires 500000ms : 0x00001234');
  t.is(connElementText(portset, ps, 1, 900_000, 2_000_000), '192.0.2.10 . 40001 . 10500 timeout 900000ms expires 900000ms : 0x00000001', 'expires capped by timeout');
  t.is(connElementText(fwmark, fm, 1, 1000, 0), '192.0.2.10 . 40002 . 10.0.0.60 . 443 timeout 1000ms expires 1ms : 0x00000001');
  t.is(connElementText(v6, fm, 1, 1000, 10), null);
});

test('persistence keys and template elements', (t) => {
  t.is(persistClientOf(single, Buffer.from([10, 1, 2, 0])), '10.1.2.0');
  t.is(persistClientOf(single, Buffer.alloc(16)), null);
  const k6 = Buffer.alloc(16);
  k6[0] = 0xfd;
  t.is(persistClientOf(v6, k6), 'fd00::');
  t.is(templateElementText(single, '10.1.2.0', 9, 300_000, 12_345), '10.1.2.0 timeout 300000ms expires 12345ms : 0x00000009');
  t.is(templateElementText(single, 'fd00::', 9, 300_000, 1), null, 'wrong family');
});

test('table diff: new keys, changed destination or timeout are upserts; refreshed expiry is not; gone keys reported', (t) => {
  const a = indexDump(decodeElements(Buffer.concat([
    record(key4([192, 0, 2, 1], 1), markBytes(1), 60_000, 59_000),
    record(key4([192, 0, 2, 2], 2), markBytes(2), 0, 800_000),
    record(key4([192, 0, 2, 3], 3), markBytes(3), 0, 800_000),
  ])), 1000);
  const b = indexDump(decodeElements(Buffer.concat([
    record(key4([192, 0, 2, 1], 1), markBytes(1), 0, 900_000), // first packet -> established (timeout changed)
    record(key4([192, 0, 2, 2], 2), markBytes(2), 0, 899_000), // traffic refreshed it only
    record(key4([192, 0, 2, 4], 4), markBytes(4), 60_000, 60_000), // new
  ])), 2000);
  const d = diffTables(a, b);
  t.deepEqual(d.upserts.map((e) => e.id).sort(), [1, 4]);
  t.deepEqual(d.gone.map((e) => e.id), [3]);
  t.is(b.get(key4([192, 0, 2, 4], 4).toString('hex'))!.expiresAt, 62_000);
  t.deepEqual(diffTables(b, b), { upserts: [], gone: [] });
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
auth_key = "k"
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
