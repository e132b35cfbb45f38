import test from 'ava';
import { DestinationHashingScheduler } from '../../src/lvs/dataplane/proxy/sched/dh.js';
import { MaglevHashingScheduler } from '../../src/lvs/dataplane/proxy/sched/mh.js';
import { SourceHashingScheduler } from '../../src/lvs/dataplane/proxy/sched/sh.js';
import type { RealServerRef, ScheduleContext, Scheduler } from '../../src/lvs/dataplane/proxy/types.js';

function dest(name: string, weight: number, overloaded = false): RealServerRef {
  return { id: `${name}:80`, address: name, port: 80, weight, activeConns: 0, inactConns: 0, overloaded };
}

function servers(n: number, weight = 1): RealServerRef[] {
  return Array.from({ length: n }, (_, i) => dest(`10.1.0.${i + 1}`, weight));
}

function client(i: number, port?: number): ScheduleContext {
  return { clientAddress: `100.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, clientPort: port, family: 4 };
}

const CLIENTS = 20000;

/** Client index -> chosen server id (or null) for the first `n` clients. */
function mapping(s: Scheduler, ds: readonly RealServerRef[], n = CLIENTS): (string | null)[] {
  return Array.from({ length: n }, (_, i) => s.pick(ds, client(i))?.id ?? null);
}

function shares(m: readonly (string | null)[]): Map<string | null, number> {
  const out = new Map<string | null, number>();
  for (const id of m) out.set(id, (out.get(id) ?? 0) + 1 / m.length);
  return out;
}

// ---- sh ------------------------------------------------------------------------------------

test('sh: one client always maps to the same server; many clients spread', (t) => {
  const s = new SourceHashingScheduler();
  const ds = servers(3);
  const first = mapping(s, ds);
  t.deepEqual(mapping(s, ds), first);
  // a fresh instance computes the same table: both directors agree
  t.deepEqual(mapping(new SourceHashingScheduler(), ds), first);
  for (const share of shares(first).values()) t.true(share > 0.25 && share < 0.42, `share ${share}`);
});

test('sh: weights give proportional numbers of buckets (1:3)', (t) => {
  const s = new SourceHashingScheduler();
  const m = shares(mapping(s, [dest('a', 1), dest('b', 3)]));
  t.true(Math.abs(m.get('a:80')! - 0.25) < 0.04, `a ${m.get('a:80')}`);
  t.true(Math.abs(m.get('b:80')! - 0.75) < 0.04, `b ${m.get('b:80')}`);
});

test('sh: a quiesced server gives no destination for its clients unless fallback', (t) => {
  const before = mapping(new SourceHashingScheduler(), servers(3));
  const quiesced = servers(3);
  quiesced[1] = dest('10.1.0.2', 0);

  const plain = mapping(new SourceHashingScheduler(), quiesced);
  const fb = mapping(new SourceHashingScheduler({ fallback: true }), quiesced);
  let moved = 0;
  for (let i = 0; i < CLIENTS; i++) {
    if (before[i] === '10.1.0.2:80') {
      t.is(plain[i], null);
      t.true(fb[i] !== null && fb[i] !== '10.1.0.2:80');
      moved++;
    } else {
      // fallback only affects clients of the unavailable server
      t.is(fb[i], plain[i]);
    }
  }
  t.true(moved > 0);
});

test('sh: with the port flag one address spreads over servers by source port', (t) => {
  const ds = servers(4);
  const byPort = new SourceHashingScheduler({ port: true });
  const noPort = new SourceHashingScheduler();
  const withPort = new Set<string>();
  const withoutPort = new Set<string>();
  for (let p = 1024; p < 1124; p++) {
    withPort.add(byPort.pick(ds, client(7, p))!.id);
    withoutPort.add(noPort.pick(ds, client(7, p))!.id);
  }
  t.is(withoutPort.size, 1);
  t.is(withPort.size, 4);
});

test('sh: IPv6 clients are hashed on the folded address', (t) => {
  const s = new SourceHashingScheduler();
  const ds = servers(4);
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const c: ScheduleContext = { clientAddress: `2001:db8::${i.toString(16)}`, family: 6 };
    const d = s.pick(ds, c)!;
    t.is(s.pick(ds, { clientAddress: `2001:0db8:0:0:0:0:0:${i.toString(16)}`, family: 6 })!.id, d.id);
    seen.add(d.id);
  }
  t.is(seen.size, 4);
});

// ---- dh ------------------------------------------------------------------------------------

test('dh: every client of one VIP goes to the same server (degenerate for a proxy)', (t) => {
  const s = new DestinationHashingScheduler({ virtualAddress: '192.0.2.10' });
  const ds = servers(4);
  const chosen = new Set(mapping(s, ds, 500));
  t.is(chosen.size, 1);
  t.false(chosen.has(null));
});

test('dh: different VIPs spread over the servers; context VIP overrides the option', (t) => {
  const s = new DestinationHashingScheduler({ virtualAddress: '192.0.2.10' });
  const ds = servers(4);
  const seen = new Set<string>();
  for (let i = 0; i < 64; i++) {
    seen.add(s.pick(ds, { clientAddress: '100.0.0.1', family: 4, virtualAddress: `192.0.2.${i}` })!.id);
  }
  t.is(seen.size, 4);
});

test('dh: the VIP bucket owner unavailable means no destination', (t) => {
  const s = new DestinationHashingScheduler({ virtualAddress: '192.0.2.10' });
  const ds = servers(4);
  const owner = s.pick(ds, client(1))!;
  const quiesced = ds.map((d) => (d.id === owner.id ? dest(d.address, 0) : d));
  t.is(s.pick(quiesced, client(1)), null);
});

// ---- mh ------------------------------------------------------------------------------------

test('mh: one client always maps to the same server; many clients spread', (t) => {
  const ds = servers(5);
  const m = mapping(new MaglevHashingScheduler(), ds);
  t.deepEqual(mapping(new MaglevHashingScheduler(), ds), m);
  for (const share of shares(m).values()) t.true(share > 0.17 && share < 0.23, `share ${share}`);
});

test('mh: removing one of N servers moves only about 1/N of the clients', (t) => {
  const ds = servers(10);
  const s = new MaglevHashingScheduler();
  const before = mapping(s, ds);
  const removed = ds[3]!.id;
  const after = mapping(s, ds.filter((d) => d.id !== removed));
  let moved = 0;
  let movedOthers = 0;
  for (let i = 0; i < CLIENTS; i++) {
    if (before[i] !== after[i]) moved++;
    if (before[i] !== removed && before[i] !== after[i]) movedOthers++;
    t.not(after[i], removed);
  }
  const onRemoved = before.filter((id) => id === removed).length;
  t.true(onRemoved / CLIENTS > 0.08 && onRemoved / CLIENTS < 0.12);
  // Maglev is near-minimal: a small fraction of the other clients move as well.
  t.true(movedOthers / CLIENTS < 0.02, `others moved ${movedOthers / CLIENTS}`);
  t.true(moved / CLIENTS < 0.13, `moved ${moved / CLIENTS}`);
});

test('mh: adding a server takes about 1/(N+1) of the clients, from everybody', (t) => {
  const ds = servers(9);
  const s = new MaglevHashingScheduler();
  const before = mapping(s, ds);
  const after = mapping(s, servers(10));
  const moved = before.filter((id, i) => id !== after[i]).length / CLIENTS;
  t.true(moved > 0.08 && moved < 0.13, `moved ${moved}`);
});

test('mh: weights give proportional shares (1:2:3)', (t) => {
  const m = shares(mapping(new MaglevHashingScheduler(), [dest('a', 1), dest('b', 2), dest('c', 3)]));
  t.true(Math.abs(m.get('a:80')! - 1 / 6) < 0.02);
  t.true(Math.abs(m.get('b:80')! - 2 / 6) < 0.02);
  t.true(Math.abs(m.get('c:80')! - 3 / 6) < 0.02);
});

test('mh: quiescing keeps the table (last weight); only that server\'s clients are affected', (t) => {
  const ds = servers(5);
  const quiesced = ds.map((d, i) => (i === 2 ? dest(d.address, 0) : d));
  const target = ds[2]!.id;
  const s = new MaglevHashingScheduler();
  const fb = new MaglevHashingScheduler({ fallback: true });
  const before = mapping(s, ds);
  mapping(fb, ds);
  const plain = mapping(s, quiesced);
  const withFallback = mapping(fb, quiesced);
  for (let i = 0; i < CLIENTS; i++) {
    if (before[i] === target) {
      t.is(plain[i], null);
      t.true(withFallback[i] !== null && withFallback[i] !== target);
    } else {
      t.is(plain[i], before[i]);
      t.is(withFallback[i], before[i]);
    }
  }
  // restoring the weight restores every client's server
  t.deepEqual(mapping(s, ds), before);
});

test('mh: a server added at weight 0 owns no slots', (t) => {
  const s = new MaglevHashingScheduler();
  const ds = [...servers(3), dest('10.1.0.9', 0)];
  const m = mapping(s, ds);
  t.false(m.includes(null));
  t.deepEqual(m, mapping(new MaglevHashingScheduler(), servers(3)));
});

test('mh: the port flag spreads one address; table size must be prime', (t) => {
  const ds = servers(4);
  const s = new MaglevHashingScheduler({ port: true, tableSize: 251 });
  const seen = new Set<string>();
  for (let p = 1024; p < 1124; p++) seen.add(s.pick(ds, client(7, p))!.id);
  t.is(seen.size, 4);
  t.throws(() => new MaglevHashingScheduler({ tableSize: 65536 }), { instanceOf: RangeError });
  t.throws(() => new MaglevHashingScheduler({ tableSize: 3 }).pick(servers(4), client(1)), { instanceOf: RangeError });
});
