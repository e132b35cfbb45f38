import test from 'ava';
import { maskAddress, PersistenceTable } from '../../src/lvs/dataplane/proxy/persistence.js';
import { RoundRobinScheduler } from '../../src/lvs/dataplane/proxy/sched/rr.js';
import type { RealServerRef, ScheduleContext } from '../../src/lvs/dataplane/proxy/types.js';

function dest(name: string, weight = 1): RealServerRef {
  return { id: `${name}:80`, address: name, port: 80, weight, activeConns: 0, inactConns: 0 };
}

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const VS = 'tcp/192.0.2.1:80';
const ds = [dest('a'), dest('b'), dest('c')];
const from = (clientAddress: string, family: 4 | 6 = 4): ScheduleContext => ({ clientAddress, family });

test('a client keeps its server while the scheduler would rotate', (t) => {
  const c = clock();
  const p = new PersistenceTable({ timeoutMs: 300_000, now: c.now });
  const rr = new RoundRobinScheduler();
  const first = p.pick(VS, ds, from('198.51.100.1'), rr)!;
  for (let i = 0; i < 5; i++) t.is(p.pick(VS, ds, from('198.51.100.1'), rr), first);
  // another client goes through the scheduler: the next server in turn
  t.not(p.pick(VS, ds, from('198.51.100.2'), rr)!.id, first.id);
  t.is(p.lookup(VS, '198.51.100.1', 4), first.id);
  // templates are per virtual service
  t.is(p.lookup('tcp/192.0.2.1:443', '198.51.100.1', 4), undefined);
});

test('granularity groups a client network onto one server (IPv4 netmask and IPv6 prefix)', (t) => {
  const c = clock();
  const p = new PersistenceTable({ timeoutMs: 60_000, netmaskV4: '255.255.255.0', prefixV6: 64, now: c.now });
  const rr = new RoundRobinScheduler();
  const a = p.pick(VS, ds, from('198.51.100.1'), rr)!;
  t.is(p.pick(VS, ds, from('198.51.100.200'), rr), a);
  t.not(p.pick(VS, ds, from('198.51.101.1'), rr), a);
  const v6 = p.pick(VS, ds, from('2001:db8:1:2::1', 6), rr)!;
  t.is(p.pick(VS, ds, from('2001:db8:1:2:ffff::9', 6), rr), v6);
  t.deepEqual(
    p.entries().map((e) => e.client).sort(),
    ['198.51.100.0', '198.51.101.0', '2001:db8:1:2::'],
  );
});

test('maskAddress and netmask validation', (t) => {
  t.is(maskAddress('10.1.2.3', 4, 16), '10.1.0.0');
  t.is(maskAddress('10.1.2.255', 4, 25), '10.1.2.128');
  t.is(maskAddress('2001:db8:aaaa:bbbb::1', 6, 36), '2001:db8:a000::');
  t.throws(() => new PersistenceTable({ timeoutMs: 1, netmaskV4: '255.0.255.0', now: () => 0 }), { instanceOf: RangeError });
  t.throws(() => new PersistenceTable({ timeoutMs: 1, prefixV6: 129, now: () => 0 }), { instanceOf: RangeError });
  t.throws(() => new PersistenceTable({ timeoutMs: 0, now: () => 0 }), { instanceOf: RangeError });
  t.notThrows(() => new PersistenceTable({ timeoutMs: 1, netmaskV4: '0.0.0.0', now: () => 0 }));
});

test('templates expire after the timeout since last use; each use refreshes', (t) => {
  const c = clock();
  const p = new PersistenceTable({ timeoutMs: 1000, now: c.now });
  const rr = new RoundRobinScheduler();
  const first = p.pick(VS, ds, from('198.51.100.1'), rr)!;
  c.advance(999);
  t.is(p.pick(VS, ds, from('198.51.100.1'), rr), first);
  c.advance(999);
  t.is(p.pick(VS, ds, from('198.51.100.1'), rr), first);
  t.true(p.touch(VS, '198.51.100.1', 4));
  c.advance(999);
  t.is(p.lookup(VS, '198.51.100.1', 4), first.id);
  c.advance(1);
  t.is(p.lookup(VS, '198.51.100.1', 4), undefined);
  t.false(p.touch(VS, '198.51.100.1', 4));
  // a new scheduling decision: rr moves on to the next server
  t.not(p.pick(VS, ds, from('198.51.100.1'), rr), first);
});

test('a template to a quiesced (weight 0) server is honoured, as IPVS does', (t) => {
  const c = clock();
  const p = new PersistenceTable({ timeoutMs: 60_000, now: c.now });
  const rr = new RoundRobinScheduler();
  const first = p.pick(VS, ds, from('198.51.100.1'), rr)!;
  const quiesced = ds.map((d) => (d.id === first.id ? dest(d.address, 0) : d));
  const again = p.pick(VS, quiesced, from('198.51.100.1'), rr)!;
  t.is(again.id, first.id);
  t.is(again.weight, 0);
  // but the quiesced server gets no new client
  for (let i = 2; i < 10; i++) t.not(p.pick(VS, quiesced, from(`198.51.100.${i}`), rr)!.id, first.id);
});

test('expireQuiescentTemplate drops templates to weight-0 servers', (t) => {
  const c = clock();
  const p = new PersistenceTable({ timeoutMs: 60_000, expireQuiescentTemplate: true, now: c.now });
  const rr = new RoundRobinScheduler();
  const first = p.pick(VS, ds, from('198.51.100.1'), rr)!;
  const quiesced = ds.map((d) => (d.id === first.id ? dest(d.address, 0) : d));
  const moved = p.pick(VS, quiesced, from('198.51.100.1'), rr)!;
  t.not(moved.id, first.id);
  // and the new template sticks even after the weight comes back
  t.is(p.pick(VS, ds, from('198.51.100.1'), rr)!.id, moved.id);
});

test('a template to a removed server is dropped and a new pick made', (t) => {
  const c = clock();
  const p = new PersistenceTable({ timeoutMs: 60_000, now: c.now });
  const rr = new RoundRobinScheduler();
  const first = p.pick(VS, ds, from('198.51.100.1'), rr)!;
  const remaining = ds.filter((d) => d.id !== first.id);
  const second = p.pick(VS, remaining, from('198.51.100.1'), rr)!;
  t.true(remaining.includes(second));
  t.is(p.lookup(VS, '198.51.100.1', 4), second.id);
  // the old server returning does not steal the client back
  t.is(p.pick(VS, ds, from('198.51.100.1'), rr)!.id, second.id);
});

test('no template when the scheduler finds no destination', (t) => {
  const p = new PersistenceTable({ timeoutMs: 60_000, now: () => 0 });
  t.is(p.pick(VS, [dest('a', 0)], from('198.51.100.1'), new RoundRobinScheduler()), null);
  t.is(p.size, 0);
});

test('forgetDest and sweep', (t) => {
  const c = clock();
  const p = new PersistenceTable({ timeoutMs: 1000, now: c.now });
  const rr = new RoundRobinScheduler();
  for (let i = 1; i <= 6; i++) p.pick(VS, ds, from(`198.51.100.${i}`), rr);
  t.is(p.forgetDest(VS, 'a:80'), 2);
  t.is(p.forgetDest('other', 'b:80'), 0);
  t.is(p.size, 4);
  c.advance(500);
  p.pick(VS, ds, from('198.51.100.2'), rr);
  c.advance(500);
  t.is(p.sweep(), 3);
  t.is(p.size, 1);
});

test('entries() / restore() carry templates to a peer with a different clock', (t) => {
  const c1 = clock(5_000);
  const c2 = clock(9_999_000);
  const master = new PersistenceTable({ timeoutMs: 10_000, netmaskV4: 24, now: c1.now });
  const backup = new PersistenceTable({ timeoutMs: 10_000, netmaskV4: 24, now: c2.now });
  const rr = new RoundRobinScheduler();
  master.pick(VS, ds, from('198.51.100.1'), rr);
  c1.advance(4_000);
  master.pick(VS, ds, from('203.0.113.9'), rr);
  master.pick(VS, ds, from('2001:db8::5', 6), rr);
  const exported = master.entries();
  t.deepEqual(exported.find((e) => e.client === '198.51.100.0')?.expiresInMs, 6_000);
  for (const e of exported) backup.restore(e);
  t.deepEqual(
    backup.entries().sort((x, y) => x.client.localeCompare(y.client)),
    exported.sort((x, y) => x.client.localeCompare(y.client)),
  );
  // on the backup the client continues to its server, whatever the backup's scheduler says
  const onMaster = master.lookup(VS, '198.51.100.77', 4)!;
  t.is(backup.pick(VS, ds, from('198.51.100.77'), new RoundRobinScheduler())!.id, onMaster);
  // remaining lifetime is honoured on the backup's clock
  c2.advance(10_001);
  t.is(backup.lookup(VS, '203.0.113.9', 4), undefined);
});

test('restore(): peer is authoritative, lifetime capped, expired entries ignored', (t) => {
  const c = clock();
  const p = new PersistenceTable({ timeoutMs: 1000, now: c.now });
  p.pick(VS, ds, from('198.51.100.1'), new RoundRobinScheduler());
  p.restore({ vs: VS, client: '198.51.100.1', family: 4, destId: 'c:80', expiresInMs: 50_000 });
  t.is(p.lookup(VS, '198.51.100.1', 4), 'c:80');
  t.is(p.entries()[0]!.expiresInMs, 1000);
  p.restore({ vs: VS, client: '198.51.100.9', family: 4, destId: 'c:80', expiresInMs: 0 });
  t.is(p.size, 1);
});
