import test from 'ava';
import { createScheduler, isSchedulerName, SCHEDULER_NAMES } from '../../src/lvs/dataplane/proxy/sched/index.js';
import { RoundRobinScheduler } from '../../src/lvs/dataplane/proxy/sched/rr.js';
import { WeightedRoundRobinScheduler } from '../../src/lvs/dataplane/proxy/sched/wrr.js';
import { compareProducts, formatAddress, parseAddress, addressFold } from '../../src/lvs/dataplane/proxy/sched/common.js';
import type { RealServerRef, ScheduleContext } from '../../src/lvs/dataplane/proxy/types.js';

function dest(name: string, weight: number, activeConns = 0, inactConns = 0, overloaded = false): RealServerRef {
  return { id: `${name}:80`, address: name, port: 80, weight, activeConns, inactConns, overloaded };
}

const ctx: ScheduleContext = { clientAddress: '198.51.100.7', clientPort: 40000, family: 4, virtualAddress: '192.0.2.1' };

function clientCtx(i: number): ScheduleContext {
  // The VIP varies too so that dh, which hashes the VIP, sees more than one bucket.
  const octets = `${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  return { clientAddress: `10.${octets}`, clientPort: 1024 + (i % 50000), family: 4, virtualAddress: `172.${octets}` };
}

function names(ds: readonly (RealServerRef | null)[]): string {
  return ds.map((d) => (d ? d.address : '-')).join('');
}

function countPicks(pick: () => RealServerRef | null, n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const d = pick();
    const k = d ? d.address : 'null';
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

const options = { now: () => 0 };

// ---- rules every scheduler must follow --------------------------------------------------

for (const name of SCHEDULER_NAMES) {
  test(`${name}: empty list gives null`, (t) => {
    t.is(createScheduler(name, options).pick([], ctx), null);
  });

  test(`${name}: all weights 0 gives null`, (t) => {
    const s = createScheduler(name, options);
    const ds = [dest('a', 0), dest('b', 0), dest('c', 0)];
    for (let i = 0; i < 50; i++) t.is(s.pick(ds, clientCtx(i)), null);
  });

  test(`${name}: never picks a weight-0 or overloaded server`, (t) => {
    const s = createScheduler(name, options);
    const ds = [dest('a', 0), dest('b', 2), dest('c', 5, 0, 0, true), dest('d', 1), dest('e', 0, 0, 0)];
    let picked = 0;
    for (let i = 0; i < 500; i++) {
      const d = s.pick(ds, clientCtx(i));
      if (d) {
        picked++;
        t.true(d.address === 'b' || d.address === 'd', `picked ${d.address}`);
      }
    }
    // Hashing schedulers may legitimately answer null for clients hashed to an unavailable
    // server, but every scheduler must serve some clients here.
    t.true(picked > 0);
  });

  test(`${name}: returns an element of the given list`, (t) => {
    const s = createScheduler(name, options);
    const ds = [dest('a', 1), dest('b', 1)];
    for (let i = 0; i < 20; i++) {
      const d = s.pick(ds, clientCtx(i));
      t.true(d === null || ds.includes(d));
    }
  });
}

test('registry: names, type guard and instances', (t) => {
  t.deepEqual([...SCHEDULER_NAMES].sort(), ['dh', 'fo', 'lblc', 'lblcr', 'lc', 'mh', 'nq', 'ovf', 'rr', 'sed', 'sh', 'wlc', 'wrr']);
  for (const n of SCHEDULER_NAMES) t.is(createScheduler(n, options).name, n);
  t.true(isSchedulerName('wlc'));
  t.false(isSchedulerName('random'));
  t.not(createScheduler('rr'), createScheduler('rr'));
});

test('registry: locality schedulers require a clock, dh a virtual address', (t) => {
  t.throws(() => createScheduler('lblc'), { instanceOf: TypeError });
  t.throws(() => createScheduler('lblcr'), { instanceOf: TypeError });
  const dh = createScheduler('dh');
  t.throws(() => dh.pick([dest('a', 1)], { clientAddress: '10.0.0.1', family: 4 }), { instanceOf: TypeError });
  t.not(createScheduler('dh', { virtualAddress: '192.0.2.1' }).pick([dest('a', 1)], { clientAddress: '10.0.0.1', family: 4 }), null);
});

// ---- rr ------------------------------------------------------------------------------------

test('rr: cycles in list order and splits evenly', (t) => {
  const s = new RoundRobinScheduler();
  const ds = [dest('a', 1), dest('b', 5), dest('c', 1)];
  t.is(names(Array.from({ length: 6 }, () => s.pick(ds))), 'abcabc');
  const counts = countPicks(() => s.pick(ds), 300);
  t.deepEqual([counts.get('a'), counts.get('b'), counts.get('c')], [100, 100, 100]);
});

test('rr: skips unavailable servers and resumes after a removed one with its successor', (t) => {
  const s = new RoundRobinScheduler();
  const ds = [dest('a', 1), dest('b', 0), dest('c', 1), dest('d', 1)];
  t.is(names(Array.from({ length: 4 }, () => s.pick(ds))), 'acda');
  t.is(s.pick(ds)?.address, 'c');
  // c (last picked) is removed: continue with d, its successor, not from the start.
  const without = [dest('a', 1), dest('b', 0), dest('d', 1)];
  t.is(names(Array.from({ length: 3 }, () => s.pick(without))), 'dad');
});

// ---- wrr -----------------------------------------------------------------------------------

test('wrr: 1:3 over 400 picks is exactly 100:300', (t) => {
  const s = new WeightedRoundRobinScheduler();
  const ds = [dest('a', 1), dest('b', 3)];
  const counts = countPicks(() => s.pick(ds), 400);
  t.is(counts.get('a'), 100);
  t.is(counts.get('b'), 300);
});

test('wrr: interleaves as the kernel (4:3:2 -> AABABCABC)', (t) => {
  const s = new WeightedRoundRobinScheduler();
  const ds = [dest('A', 4), dest('B', 3), dest('C', 2)];
  t.is(names(Array.from({ length: 18 }, () => s.pick(ds))), 'AABABCABC'.repeat(2));
});

test('wrr: weights with a common divisor (2:4) behave like 1:2', (t) => {
  const s = new WeightedRoundRobinScheduler();
  const ds = [dest('a', 2), dest('b', 4)];
  const counts = countPicks(() => s.pick(ds), 300);
  t.deepEqual([counts.get('a'), counts.get('b')], [100, 200]);
});

test('wrr: weight change restarts the pass from the head with the new weights', (t) => {
  const s = new WeightedRoundRobinScheduler();
  let ds = [dest('a', 1), dest('b', 1)];
  t.is(names([s.pick(ds), s.pick(ds), s.pick(ds)]), 'aba');
  ds = [dest('a', 1), dest('b', 2)];
  const counts = countPicks(() => s.pick(ds), 300);
  t.deepEqual([counts.get('a'), counts.get('b')], [100, 200]);
});

test('wrr: all overloaded gives null, then recovers', (t) => {
  const s = new WeightedRoundRobinScheduler();
  const over = [dest('a', 2, 0, 0, true), dest('b', 3, 0, 0, true)];
  t.is(s.pick(over), null);
  t.is(s.pick(over), null);
  const ok = [dest('a', 2, 0, 0, true), dest('b', 3)];
  t.is(names(Array.from({ length: 4 }, () => s.pick(ok))), 'bbbb');
});

// ---- lc / wlc / sed / nq ------------------------------------------------------------------

test('lc: least overhead (active*256 + inactive), weight ignored beyond 0', (t) => {
  const s = createScheduler('lc');
  // a: 2*256 = 512, b: 1*256 + 300 = 556
  t.is(s.pick([dest('a', 1, 2, 0), dest('b', 100, 1, 300)], ctx)?.address, 'a');
  // inactive connections break ties of active ones
  t.is(s.pick([dest('a', 1, 1, 5), dest('b', 1, 1, 4)], ctx)?.address, 'b');
  // a heavier weight does not attract lc
  t.is(s.pick([dest('a', 1, 1, 0), dest('b', 100, 2, 0)], ctx)?.address, 'a');
  // tie: first in list
  t.is(s.pick([dest('a', 1, 3, 0), dest('b', 1, 3, 0)], ctx)?.address, 'a');
});

test('wlc: overhead / weight, so a heavier server takes proportionally more', (t) => {
  const s = createScheduler('wlc');
  // a: 256/1 = 256, b: 512/3 = 170.7
  t.is(s.pick([dest('a', 1, 1, 0), dest('b', 3, 2, 0)], ctx)?.address, 'b');
  // a: 256/1, b: 1024/3 = 341
  t.is(s.pick([dest('a', 1, 1, 0), dest('b', 3, 4, 0)], ctx)?.address, 'a');
  // exact tie by cross-multiplication (256*2 = 512*1): the earlier one
  t.is(s.pick([dest('a', 1, 1, 0), dest('b', 2, 2, 0)], ctx)?.address, 'a');
  // filling idle servers by repeatedly picking follows the 1:3 weights
  const conns = [0, 0];
  for (let i = 0; i < 400; i++) {
    const d = s.pick([dest('a', 1, conns[0]!), dest('b', 3, conns[1]!)], ctx)!;
    conns[d.address === 'a' ? 0 : 1]!++;
  }
  t.deepEqual(conns, [100, 300]);
});

test('wlc: exact comparison beyond 2^53', (t) => {
  const big = 2 ** 40;
  // a: big*256 / (2^31-1) vs b: (big*256 + 1) / (2^31-1): a is less loaded by one
  const s = createScheduler('wlc');
  t.is(s.pick([dest('b', 2147483647, big, 1), dest('a', 2147483647, big, 0)], ctx)?.address, 'a');
  t.is(compareProducts(2 ** 50, 2 ** 10, 2 ** 60, 1), 0);
  t.is(compareProducts(2 ** 50 + 1, 2 ** 10, 2 ** 60, 1), 1);
});

test('sed: (active + 1) / weight, inactive ignored', (t) => {
  const s = createScheduler('sed');
  // a: 1/1 = 1, b: 2/3
  t.is(s.pick([dest('a', 1, 0, 0), dest('b', 3, 1, 0)], ctx)?.address, 'b');
  // inactive connections do not count for sed (they would for wlc)
  t.is(s.pick([dest('a', 1, 1, 1000), dest('b', 1, 2, 0)], ctx)?.address, 'a');
  t.is(createScheduler('wlc').pick([dest('a', 1, 1, 1000), dest('b', 1, 2, 0)], ctx)?.address, 'b');
});

test('nq: an idle server first whatever its weight, else sed', (t) => {
  const s = createScheduler('nq');
  // sed would pick b (2/3 < 1); nq picks the idle a
  t.is(s.pick([dest('b', 3, 1, 0), dest('a', 1, 0, 0)], ctx)?.address, 'a');
  t.is(createScheduler('sed').pick([dest('b', 3, 1, 0), dest('a', 1, 0, 0)], ctx)?.address, 'b');
  // the first idle one in list order
  t.is(s.pick([dest('x', 1, 1), dest('a', 1, 0), dest('b', 9, 0)], ctx)?.address, 'a');
  // idle but quiescent or overloaded does not count
  t.is(s.pick([dest('a', 0, 0), dest('c', 1, 0, 0, true), dest('b', 2, 1)], ctx)?.address, 'b');
  // nobody idle: sed
  t.is(s.pick([dest('a', 1, 1), dest('b', 3, 2)], ctx)?.address, 'b');
});

// ---- fo / ovf ------------------------------------------------------------------------------

test('fo: highest weight available, first wins a tie, fails over in weight order', (t) => {
  const s = createScheduler('fo');
  t.is(s.pick([dest('a', 5), dest('b', 10), dest('c', 10)], ctx)?.address, 'b');
  t.is(s.pick([dest('a', 5), dest('b', 10, 0, 0, true), dest('c', 10)], ctx)?.address, 'c');
  t.is(s.pick([dest('a', 5), dest('b', 0), dest('c', 10, 0, 0, true)], ctx)?.address, 'a');
  // load does not matter
  t.is(s.pick([dest('a', 5), dest('b', 10, 10000)], ctx)?.address, 'b');
});

test('ovf: highest weight until its active connections exceed its weight', (t) => {
  const s = createScheduler('ovf');
  t.is(s.pick([dest('b', 2, 0), dest('a', 3, 3)], ctx)?.address, 'a');
  t.is(s.pick([dest('b', 2, 0), dest('a', 3, 4)], ctx)?.address, 'b');
  t.is(s.pick([dest('b', 2, 3), dest('a', 3, 4)], ctx), null);
  // simulate filling: a takes 4 connections (0..3 active, > 3 spills), then b takes 3
  const active = { a: 0, b: 0 };
  const seq: string[] = [];
  for (let i = 0; i < 8; i++) {
    const d = s.pick([dest('a', 3, active.a), dest('b', 2, active.b)], ctx);
    seq.push(d ? d.address : '-');
    if (d) active[d.address as 'a' | 'b']++;
  }
  t.is(seq.join(''), 'aaaabbb-');
});

// ---- shared helpers --------------------------------------------------------------------

test('address helpers: IPv6 forms parse, canonicalise and fold', (t) => {
  t.is(formatAddress(parseAddress('2001:DB8:0:0:0:0:0:1', 6)), '2001:db8::1');
  t.is(formatAddress(parseAddress('::ffff:10.0.0.1', 6)), '::ffff:a00:1');
  t.is(formatAddress(parseAddress('fe80::1%eth0', 6)), 'fe80::1');
  t.is(formatAddress(parseAddress('1:0:0:2:0:0:0:3', 6)), '1:0:0:2::3');
  t.is(formatAddress(parseAddress('::', 6)), '::');
  t.is(addressFold('10.0.0.1', 4), 0x0a000001);
  t.is(addressFold('::1:0:0:0:2', 6), (0x00000001 ^ 0x00000002) >>> 0);
  t.throws(() => parseAddress('10.0.0.256', 4), { instanceOf: TypeError });
  t.throws(() => parseAddress('10.0.0.1', 6), { instanceOf: TypeError });
});
