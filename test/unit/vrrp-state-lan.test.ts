/**
 * Elections on the in-memory LAN (test/lib/vrrp-lan.ts): several instances of the pure state machine
 * sharing a fake clock. Times are exact, so takeovers are asserted to the microsecond.
 */
import test from 'ava';
import fc from 'fast-check';
import type { VrrpParams } from '../../src/vrrp/state.js';
import { advertIntervalMs, masterDownIntervalMs, skewTimeMs } from '../../src/vrrp/timing.js';
import { VrrpLan } from '../lib/vrrp-lan.js';

function node(priority: number, address: string, over: Partial<VrrpParams> = {}): VrrpParams {
  return { vrid: 51, version: 2, priority, advertIntCs: 100, preempt: true, preemptDelayMs: 0, primaryAddress: address, ...over };
}

/** Two routers, A (200) and B (100), started together and converged with A master. */
function pair(overA: Partial<VrrpParams> = {}, overB: Partial<VrrpParams> = {}): VrrpLan {
  return new VrrpLan().add('A', node(200, '10.0.0.1', overA)).add('B', node(100, '10.0.0.2', overB)).start().advance(10_000);
}

/** The last advert a node sent at or before `t`. */
function lastAdvert(lan: VrrpLan, name: string, t: number): number {
  const sent = lan.adverts.filter((a) => a.node === name && a.t <= t && a.priority > 0);
  const last = sent[sent.length - 1];
  if (!last) throw new Error(`${name} sent no advert before ${t}`);
  return last.t;
}

/** After `since`, no instant ever had more than one MASTER or more than one VIP holder. */
function neverTwoMasters(lan: VrrpLan, since: number): boolean {
  return lan.snapshots.filter((s) => s.t >= since).every((s) => s.masters.length <= 1 && s.vipHolders.length <= 1);
}

test('two instances: the higher priority wins, after its own Master_Down_Interval', (t) => {
  const lan = pair();
  t.deepEqual(lan.masters(), ['A']);
  t.deepEqual(lan.vipHolders(), ['A']);
  t.deepEqual(
    lan.transitionsTo('A', 'MASTER').map((r) => r.t),
    [masterDownIntervalMs(2, 200, 100)],
  );
  t.deepEqual(lan.transitionsTo('B', 'MASTER'), [], 'the lower priority never became master');
  t.true(neverTwoMasters(lan, 0));
});

test('equal priority: the higher primary address wins (IPv4 and IPv6)', (t) => {
  for (const [lo, hi, version] of [
    ['10.0.0.9', '10.0.0.10', 2],
    ['fe80::9', 'fe80::a', 3],
  ] as const) {
    const lan = new VrrpLan()
      .add('lo', node(100, lo, { version }))
      .add('hi', node(100, hi, { version }))
      .start()
      .advance(10_000);
    t.deepEqual(lan.masters(), ['hi'], `${lo} vs ${hi}`);
    // Both timed out together and were briefly master at the same instant; the tie resolved at once.
    const at = masterDownIntervalMs(version, 100, 100);
    t.deepEqual(lan.transitionsTo('lo', 'BACKUP', 1).map((r) => [r.t, r.reason]), [[at, 'higher_priority_advert']]);
    t.true(neverTwoMasters(lan, 0));
  }
});

test('master crash: the backup takes over exactly Master_Down_Interval after the last advert', (t) => {
  const lan = pair();
  lan.crash('A');
  const crashAt = lan.now;
  lan.advance(10_000);
  t.deepEqual(lan.masters(), ['B']);
  const takeover = lan.transitionsTo('B', 'MASTER')[0];
  t.is(takeover?.t, lastAdvert(lan, 'A', crashAt) + masterDownIntervalMs(2, 100, 100));
  t.deepEqual(lan.vipHolders(), ['B']);
});

test('master shutdown: priority 0 advert, takeover after Skew_Time only', (t) => {
  const lan = pair();
  const stopAt = lan.now;
  lan.shutdown('A');
  t.deepEqual(lan.vipHolders(), [], 'A released the VIPs at once');
  lan.advance(5_000);
  t.deepEqual(lan.transitionsTo('B', 'MASTER').map((r) => r.t), [stopAt + skewTimeMs(2, 100, 100)]);
  t.deepEqual(lan.masters(), ['B']);
});

test('preempt: the higher priority takes back mastership when it returns', (t) => {
  const lan = pair();
  lan.crash('A').advance(10_000);
  t.deepEqual(lan.masters(), ['B']);
  const back = lan.now;
  lan.restart('A').advance(10_000);
  // A restarts as BACKUP, ignores B's lower-priority adverts and takes over when its timer expires;
  // B yields at the same instant on A's first advert.
  const takeover = back + masterDownIntervalMs(2, 200, 100);
  t.deepEqual(lan.transitionsTo('A', 'MASTER', back).map((r) => r.t), [takeover]);
  t.deepEqual(lan.transitionsTo('B', 'BACKUP', back).map((r) => r.t), [takeover]);
  t.deepEqual(lan.masters(), ['A']);
  t.true(neverTwoMasters(lan, back));
});

test('nopreempt: a returning higher-priority backup leaves the live master alone', (t) => {
  const lan = pair({ preempt: false });
  lan.crash('A').advance(10_000);
  lan.restart('A').advance(60_000);
  t.deepEqual(lan.masters(), ['B']);
  t.deepEqual(lan.state('A').name, 'BACKUP');
  // ...but it still takes over if that master fails.
  const crashAt = lan.now;
  lan.crash('B').advance(10_000);
  t.deepEqual(lan.transitionsTo('A', 'MASTER', crashAt).map((r) => r.t), [lastAdvert(lan, 'B', crashAt) + masterDownIntervalMs(2, 200, 100)]);
});

test('preempt_delay: the returning higher priority waits the delay before preempting', (t) => {
  const delay = 10_000;
  const lan = pair({ preemptDelayMs: delay });
  lan.crash('A').advance(10_000);
  const back = lan.now;
  lan.restart('A').advance(30_000);
  const firstSeen = lan.adverts.find((a) => a.node === 'B' && a.t >= back)?.t as number;
  const delayEnds = firstSeen + delay;
  // The last B advert accepted is the last one strictly before the delay ends; the down timer it
  // armed then runs out.
  const lastAccepted = Math.max(...lan.adverts.filter((a) => a.node === 'B' && a.t < delayEnds).map((a) => a.t));
  const takeover = lan.transitionsTo('A', 'MASTER', back)[0]?.t as number;
  t.is(takeover, lastAccepted + masterDownIntervalMs(2, 200, 100));
  t.true(takeover > delayEnds);
  t.deepEqual(lan.masters(), ['A']);

  // Without the delay the same restart preempts after one Master_Down_Interval.
  const plain = pair();
  plain.crash('A').advance(10_000);
  const back2 = plain.now;
  plain.restart('A').advance(30_000);
  t.is(plain.transitionsTo('A', 'MASTER', back2)[0]?.t, back2 + masterDownIntervalMs(2, 200, 100));
});

test('three instances: mastership passes down by priority and comes back', (t) => {
  const lan = new VrrpLan()
    .add('hi', node(200, '10.0.0.1'))
    .add('mid', node(150, '10.0.0.2'))
    .add('lo', node(100, '10.0.0.3'))
    .start()
    .advance(10_000);
  const t0 = lan.now;
  t.deepEqual(lan.masters(), ['hi']);
  lan.crash('hi').advance(10_000);
  t.deepEqual(lan.masters(), ['mid'], 'the smaller skew of the higher backup wins the race');
  t.deepEqual(lan.transitionsTo('lo', 'MASTER'), []);
  lan.crash('mid').advance(10_000);
  t.deepEqual(lan.masters(), ['lo']);
  lan.restart('hi').restart('mid').advance(10_000);
  t.deepEqual(lan.masters(), ['hi']);
  t.is(lan.state('mid').name, 'BACKUP');
  t.is(lan.state('lo').name, 'BACKUP');
  t.true(neverTwoMasters(lan, t0));
});

test('partition: both sides elect a master; healing converges back to one', (t) => {
  const lan = pair();
  lan.partition(['A'], ['B']).advance(10_000);
  t.deepEqual(lan.masters().sort(), ['A', 'B'], 'split brain while partitioned');
  const healed = lan.now;
  lan.heal().advance(5_000);
  t.deepEqual(lan.masters(), ['A']);
  // B yields on the first advert A sends after the heal (A answers B's lower adverts too).
  const yielded = lan.transitionsTo('B', 'BACKUP', healed)[0]?.t as number;
  t.true(yielded - healed <= advertIntervalMs(100));
  t.true(neverTwoMasters(lan, yielded));
});

test('v3: a backup learns the master advert interval and times out on it', (t) => {
  // The backup is configured with 3 s but the master advertises every 1 s.
  const lan = new VrrpLan()
    .add('A', node(200, '10.0.0.1', { version: 3, advertIntCs: 100 }))
    .add('B', node(100, '10.0.0.2', { version: 3, advertIntCs: 300 }))
    .start()
    .advance(20_000);
  t.is(lan.state('B').masterAdverIntCs, 100);
  const crashAt = lan.now;
  lan.crash('A').advance(20_000);
  const takeover = lan.transitionsTo('B', 'MASTER')[0]?.t as number;
  t.is(takeover, lastAdvert(lan, 'A', crashAt) + masterDownIntervalMs(3, 100, 100));
  // As master, B advertises its own configured interval.
  const mine = lan.adverts.filter((a) => a.node === 'B').map((a) => a.t);
  t.deepEqual(mine.slice(1, 3).map((x, i) => x - (mine[i] as number)), [3000, 3000]);
});

test('v3: a backup configured faster than the master waits for the slower master interval', (t) => {
  const lan = new VrrpLan()
    .add('A', node(200, '10.0.0.1', { version: 3, advertIntCs: 300 }))
    .add('B', node(100, '10.0.0.2', { version: 3, advertIntCs: 100 }))
    .start()
    .advance(30_000);
  // At startup B's own 1 s timer wins the race (A's first Master_Down_Interval is 3 x 3 s); once A
  // has taken over, B adopts the 3 s interval and never times out between A's adverts.
  const aMaster = lan.transitionsTo('A', 'MASTER')[0]?.t as number;
  t.is(aMaster, masterDownIntervalMs(3, 200, 300));
  t.deepEqual(lan.masters(), ['A']);
  t.is(lan.state('B').masterAdverIntCs, 300);
  t.deepEqual(lan.transitionsTo('B', 'MASTER', aMaster), []);
});

test('priority tracking: a master whose priority drops below the backup is preempted', (t) => {
  const lan = pair();
  const drop = lan.now;
  lan.inject('A', { type: 'priority', priority: 50 }).advance(10_000);
  t.deepEqual(lan.masters(), ['B']);
  // B ignores A's now-lower adverts and its running timer (armed by A's last 200 advert) expires.
  t.is(lan.transitionsTo('B', 'MASTER', drop)[0]?.t, lastAdvert(lan, 'A', drop) + masterDownIntervalMs(2, 100, 100));
});

test('fault on the master hands over after Skew_Time (priority 0 advert); clearing it preempts back', (t) => {
  const lan = pair();
  const faultAt = lan.now;
  lan.inject('A', { type: 'fault', source: 'if:eth1' }).advance(10_000);
  t.is(lan.transitionsTo('B', 'MASTER', faultAt)[0]?.t, faultAt + skewTimeMs(2, 100, 100));
  lan.inject('A', { type: 'fault_clear', source: 'if:eth1' }).advance(10_000);
  t.deepEqual(lan.masters(), ['A']);
});

interface Op {
  wait: number;
  kind: 'crash' | 'restart' | 'shutdown' | 'priority';
  node: number;
  priority: number;
}

const opArb = (n: number): fc.Arbitrary<Op> =>
  fc.record({
    wait: fc.integer({ min: 0, max: 8_000 }),
    kind: fc.constantFrom<Op['kind']>('crash', 'restart', 'shutdown', 'priority'),
    node: fc.integer({ min: 0, max: n - 1 }),
    priority: fc.integer({ min: 1, max: 254 }),
  });

/**
 * Random cluster, random failure schedule; after a quiet period longer than every Master_Down_Interval
 * exactly one live instance is MASTER, it holds the VIPs, and it has the highest priority.
 */
function electionProperty(distinct: boolean) {
  return fc.property(
    fc.integer({ min: 2, max: 4 }).chain((n) =>
      fc.record({
        priorities: distinct
          ? fc.uniqueArray(fc.integer({ min: 1, max: 254 }), { minLength: n, maxLength: n })
          : fc.array(fc.integer({ min: 1, max: 4 }), { minLength: n, maxLength: n }),
        version: fc.constantFrom<2 | 3>(2, 3),
        stateMaster: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
        ops: fc.array(opArb(n), { maxLength: 12 }),
      }),
    ),
    ({ priorities, version, stateMaster, ops }) => {
      const lan = new VrrpLan();
      const prio = [...priorities];
      priorities.forEach((p, i) =>
        lan.add(`n${i}`, node(p, `10.0.0.${i + 1}`, { version, initialState: stateMaster[i] ? 'MASTER' : 'BACKUP' })),
      );
      lan.start();
      for (const op of ops) {
        lan.advance(op.wait);
        const name = `n${op.node}`;
        if (op.kind === 'crash') lan.crash(name);
        else if (op.kind === 'shutdown') lan.shutdown(name);
        else if (op.kind === 'restart') {
          lan.restart(name);
          prio[op.node] = priorities[op.node] as number;
        } else if (distinct) {
          // Keep priorities distinct so "the highest" is well defined: a change only swaps in an unused value.
          if (prio.includes(op.priority)) continue;
          lan.inject(name, { type: 'priority', priority: op.priority });
          if (lan.isAlive(name) && lan.state(name).name !== 'STOP') prio[op.node] = op.priority;
        }
      }
      // Quiet period: longer than the longest Master_Down_Interval plus an advert round trip, twice.
      lan.advance(2 * (masterDownIntervalMs(version, 1, 100) + 1000));
      const live = lan.names().filter((x) => lan.isAlive(x) && lan.state(x).name !== 'STOP');
      const masters = lan.masters();
      if (live.length === 0) return masters.length === 0;
      const best = Math.max(...live.map((x) => lan.state(x).effectivePriority));
      return (
        masters.length === 1 &&
        lan.state(masters[0] as string).effectivePriority === best &&
        (!distinct || lan.state(masters[0] as string).effectivePriority === prio[Number((masters[0] as string).slice(1))]) &&
        lan.vipHolders().join() === masters.join()
      );
    },
  );
}

test('property: after a quiet period there is exactly one MASTER and it has the highest priority', (t) => {
  fc.assert(electionProperty(true), { numRuns: 150 });
  t.pass();
});

test('property: with priority ties there is still exactly one MASTER, of the highest priority', (t) => {
  // With equal priorities VRRP does not guarantee the higher address: a backup only compares priority
  // with ">=", so an equal-priority master that got there first keeps the role.
  fc.assert(electionProperty(false), { numRuns: 150 });
  t.pass();
});
