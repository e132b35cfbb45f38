import test from 'ava';
import { CounterCarry, RateEstimator, RATE_PERIOD_MS } from '../../src/lvs/counters.js';
import type { Counters } from '../../src/lvs/dataplane/contract.js';

const c = (conns: number, bytes: number, pkts: number | null = null): Counters => ({ conns, in_pkts: pkts, out_pkts: pkts, in_bytes: bytes, out_bytes: 2 * bytes });

test('CounterCarry: totals hold while a destination is not reported and survive a restart from 0', (t) => {
  const carry = new CounterCarry();
  t.deepEqual(carry.observe('a', undefined), { conns: 0, in_pkts: 0, out_pkts: 0, in_bytes: 0, out_bytes: 0 });
  t.deepEqual(carry.observe('a', c(5, 100)), c(5, 100));
  t.deepEqual(carry.observe('a', c(7, 150)), c(7, 150));
  // gone from the data plane (left the pool): the last totals stay
  t.deepEqual(carry.observe('a', undefined), c(7, 150));
  // back, counting from 0 again: added to what was carried
  t.deepEqual(carry.observe('a', c(1, 10)), c(8, 160));
  t.deepEqual(carry.observe('a', c(3, 40)), c(10, 190));
  // a data plane that kept its counters (nftables): no double counting
  const kept = new CounterCarry();
  kept.observe('b', c(5, 100));
  kept.observe('b', undefined);
  t.deepEqual(kept.observe('b', c(9, 300)), c(9, 300));
  t.deepEqual(kept.get('b'), c(9, 300));
  kept.retain(() => false);
  t.is(kept.get('b'), undefined);
  // only the counters of what the data plane reports are kept (a DestStats carries more)
  const more = new CounterCarry();
  t.deepEqual(Object.keys(more.observe('d', { ...c(1, 2), active_conns: 5, weight: 3 } as Counters)).sort(), ['conns', 'in_bytes', 'in_pkts', 'out_bytes', 'out_pkts']);
});

test('CounterCarry: an unchanged observation costs no copy, and a change after it is still carried', (t) => {
  const carry = new CounterCarry();
  const first = carry.observe('a', c(5, 100));
  // the poll sees the same figures again (an idle service): the same totals, not a new object
  t.is(carry.observe('a', c(5, 100)), first);
  t.deepEqual(first, c(5, 100));
  // a restart from 0 after the unchanged polls is still added to what was carried
  t.deepEqual(carry.observe('a', c(2, 30)), c(7, 130));
  t.deepEqual(first, c(5, 100), 'an earlier result is not changed by a later observation');
  t.deepEqual(carry.get('a'), c(7, 130));
});

test('CounterCarry: packet counters stay null where the data plane never sees packets', (t) => {
  const carry = new CounterCarry();
  t.deepEqual(carry.observe('tcp', c(1, 10, null)), c(1, 10, null));
  t.deepEqual(carry.observe('tcp', c(2, 20, null)), c(2, 20, null));
  const udp = new CounterCarry();
  udp.observe('udp', c(1, 10, 4));
  t.deepEqual(udp.observe('udp', c(0, 0, 0)), c(1, 10, 4));
});

test('RateEstimator: the kernel estimator: a 2 s period and a quarter of the difference per period', (t) => {
  const est = new RateEstimator();
  // 100 connections/s and 10 kB/s in, 20 kB/s out, 50 packets/s each way
  const at = (s: number): Counters => ({ conns: 100 * s, in_pkts: 50 * s, out_pkts: 50 * s, in_bytes: 10_000 * s, out_bytes: 20_000 * s });
  est.sample('x', at(0), 0);
  t.deepEqual(est.rates('x'), { cps: 0, in_pps: 0, out_pps: 0, in_bps: 0, out_bps: 0 });
  est.sample('x', at(1), 1000); // within the period: ignored
  t.is(est.rates('x').cps, 0);
  est.sample('x', at(2), RATE_PERIOD_MS);
  t.deepEqual(est.rates('x'), { cps: 25, in_pps: 13, out_pps: 13, in_bps: 2500, out_bps: 5000 });
  let s = 2;
  for (let i = 0; i < 40; i++) {
    s += 2;
    est.sample('x', at(s), s * 1000);
  }
  t.deepEqual(est.rates('x'), { cps: 100, in_pps: 50, out_pps: 50, in_bps: 10_000, out_bps: 20_000 });
  // the load stops: the average decays by a quarter per period
  const stop = at(s);
  est.sample('x', stop, (s + 2) * 1000);
  t.is(est.rates('x').cps, 75);
  // a 4 s gap weighs as two periods: 1 - (3/4)^2
  est.sample('x', stop, (s + 6) * 1000);
  t.is(est.rates('x').cps, Math.round(75 * 0.5625));
});

test('RateEstimator: null packet counters give null packet rates; unknown keys give zeros', (t) => {
  const est = new RateEstimator();
  est.sample('tcp', c(0, 0), 0);
  est.sample('tcp', c(20, 4000), 2000);
  t.deepEqual(est.rates('tcp'), { cps: 3, in_pps: null, out_pps: null, in_bps: 500, out_bps: 1000 });
  t.deepEqual(est.rates('nope'), { cps: 0, in_pps: 0, out_pps: 0, in_bps: 0, out_bps: 0 });
});

test('RateEstimator.sample says when a key is at rest: the same totals as before and every rate 0', (t) => {
  const est = new RateEstimator();
  const idle = c(5, 500, 7);
  t.false(est.sample('k', idle, 0), 'a first sample is not at rest');
  t.true(est.sample('k', idle, RATE_PERIOD_MS), 'the same totals (the same object), rates 0');
  t.true(est.sample('k', { ...idle }, 2 * RATE_PERIOD_MS), 'the same totals in another object');
  t.true(est.sample('k', idle, 2 * RATE_PERIOD_MS + 500), 'within the period, unchanged');
  const busy = c(6, 600, 8);
  t.false(est.sample('k', busy, 2 * RATE_PERIOD_MS + 600), 'within the period, changed: not at rest (although not used for the rates)');
  t.false(est.sample('k', busy, 3 * RATE_PERIOD_MS), 'changed');
  t.true(est.rates('k').in_bps > 0);
  t.false(est.sample('k', busy, 4 * RATE_PERIOD_MS), 'unchanged, but the rates still decay');
  let now = 4 * RATE_PERIOD_MS;
  while (!est.sample('k', busy, (now += RATE_PERIOD_MS))) t.true(now < 200 * RATE_PERIOD_MS, 'the rates reach 0');
  t.deepEqual(est.rates('k'), { cps: 0, in_pps: 0, out_pps: 0, in_bps: 0, out_bps: 0 });
});
