import test from 'ava';
import { LocalityLeastConnectionScheduler } from '../../src/lvs/dataplane/proxy/sched/lblc.js';
import { LocalityLeastConnectionReplicationScheduler } from '../../src/lvs/dataplane/proxy/sched/lblcr.js';
import type { RealServerRef, ScheduleContext } from '../../src/lvs/dataplane/proxy/types.js';

function dest(name: string, weight: number, activeConns = 0, overloaded = false): RealServerRef {
  return { id: `${name}:80`, address: name, port: 80, weight, activeConns, inactConns: 0, overloaded };
}

const alice: ScheduleContext = { clientAddress: '198.51.100.1', family: 4 };
const bob: ScheduleContext = { clientAddress: '198.51.100.2', family: 4 };

function clock(start = 0): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const HOUR = 3600_000;

// ---- lblc ----------------------------------------------------------------------------------

test('lblc: a client sticks to its server although another became less loaded', (t) => {
  const c = clock();
  const s = new LocalityLeastConnectionScheduler({ now: c.now });
  t.is(s.pick([dest('a', 10, 0), dest('b', 10, 1)], alice)?.address, 'a');
  // wlc would now choose b; the cached a is neither quiescent nor overloaded
  t.is(s.pick([dest('a', 10, 5), dest('b', 10, 1)], alice)?.address, 'a');
  // a new client gets the weighted least-connection choice
  t.is(s.pick([dest('a', 10, 5), dest('b', 10, 1)], bob)?.address, 'b');
  t.is(s.entries, 2);
});

test('lblc: leaves a server with active > weight when another is below half its weight', (t) => {
  const c = clock();
  const s = new LocalityLeastConnectionScheduler({ now: c.now });
  t.is(s.pick([dest('a', 4, 0), dest('b', 4, 0)], alice)?.address, 'a');
  // a: 5 > 4, but nobody is below half load (b: 2*2 = 4, not < 4): stay
  t.is(s.pick([dest('a', 4, 5), dest('b', 4, 2)], alice)?.address, 'a');
  // b drops to 1 active (2 < 4): a counts as overloaded, move and remember b
  t.is(s.pick([dest('a', 4, 5), dest('b', 4, 1)], alice)?.address, 'b');
  t.is(s.pick([dest('a', 4, 0), dest('b', 4, 3)], alice)?.address, 'b');
});

test('lblc: re-schedules when the cached server is quiesced, overloaded or removed', (t) => {
  const c = clock();
  const s = new LocalityLeastConnectionScheduler({ now: c.now });
  t.is(s.pick([dest('a', 1), dest('b', 1, 1), dest('c', 1, 2)], alice)?.address, 'a');
  t.is(s.pick([dest('a', 0), dest('b', 1, 1), dest('c', 1, 2)], alice)?.address, 'b');
  t.is(s.pick([dest('a', 1), dest('b', 1, 0, true), dest('c', 1, 2)], alice)?.address, 'a');
  t.is(s.pick([dest('b', 1, 1), dest('c', 1, 0)], alice)?.address, 'c');
  t.is(s.pick([dest('b', 1, 0), dest('c', 1, 0, true)], alice)?.address, 'b');
  t.is(s.pick([dest('b', 0), dest('c', 0)], alice), null);
});

test('lblc: entries expire after the expiration time without use, refreshed by use', (t) => {
  const c = clock();
  const s = new LocalityLeastConnectionScheduler({ now: c.now, expirationMs: HOUR });
  // a is busier but not overloaded in the lblc sense (3 <= weight 10)
  const busyA = [dest('a', 10, 3), dest('b', 10, 0)];
  t.is(s.pick([dest('a', 10, 0), dest('b', 10, 1)], alice)?.address, 'a');
  c.advance(HOUR - 1);
  t.is(s.pick(busyA, alice)?.address, 'a'); // still cached, and refreshed
  c.advance(HOUR - 1);
  t.is(s.pick(busyA, alice)?.address, 'a');
  c.advance(HOUR);
  t.is(s.pick(busyA, alice)?.address, 'b'); // forgotten: least connection again
});

test('lblc: the periodic sweep removes idle entries of other clients', (t) => {
  const c = clock();
  const s = new LocalityLeastConnectionScheduler({ now: c.now, expirationMs: HOUR });
  for (let i = 0; i < 100; i++) s.pick([dest('a', 1)], { clientAddress: `10.0.0.${i}`, family: 4 });
  t.is(s.entries, 100);
  c.advance(2 * HOUR);
  s.pick([dest('a', 1)], alice);
  t.is(s.entries, 1);
});

test('lblc: IPv6 spellings of one client share an entry', (t) => {
  const c = clock();
  const s = new LocalityLeastConnectionScheduler({ now: c.now });
  t.is(s.pick([dest('a', 10, 0), dest('b', 10, 1)], { clientAddress: '2001:db8::1', family: 6 })?.address, 'a');
  t.is(s.pick([dest('a', 10, 3), dest('b', 10, 0)], { clientAddress: '2001:DB8:0::0:1', family: 6 })?.address, 'a');
  t.is(s.entries, 1);
});

// ---- lblcr ---------------------------------------------------------------------------------

test('lblcr: the set grows when its member is overloaded and the least loaded member serves', (t) => {
  const c = clock();
  const s = new LocalityLeastConnectionReplicationScheduler({ now: c.now, expirationMs: HOUR });
  t.is(s.pick([dest('a', 4, 0), dest('b', 4, 1), dest('c', 4, 1)], alice)?.address, 'a');
  t.deepEqual(s.serverSet(alice.clientAddress, 4), ['a:80']);
  // a overloaded (5 > 4) while b is below half (1*2 < 4): add the least loaded server, b
  t.is(s.pick([dest('a', 4, 5), dest('b', 4, 1), dest('c', 4, 2)], alice)?.address, 'b');
  t.deepEqual(s.serverSet(alice.clientAddress, 4), ['b:80', 'a:80']);
  // now the least loaded *member* serves; c, not a member, is ignored although idle
  t.is(s.pick([dest('a', 4, 2), dest('b', 4, 3), dest('c', 4, 0)], alice)?.address, 'a');
  t.is(s.pick([dest('a', 4, 3), dest('b', 4, 2), dest('c', 4, 0)], alice)?.address, 'b');
});

test('lblcr: after the set is unchanged for the expiration time its most loaded member is dropped', (t) => {
  const c = clock();
  const s = new LocalityLeastConnectionReplicationScheduler({ now: c.now, expirationMs: HOUR });
  s.pick([dest('a', 4, 0), dest('b', 4, 1)], alice);
  s.pick([dest('a', 4, 5), dest('b', 4, 1)], alice);
  t.deepEqual(s.serverSet(alice.clientAddress, 4), ['b:80', 'a:80']);
  c.advance(HOUR / 2);
  s.pick([dest('a', 4, 3), dest('b', 4, 1)], alice);
  t.is(s.serverSet(alice.clientAddress, 4).length, 2);
  c.advance(HOUR / 2 + 1);
  // a (3/4) is more loaded than b (1/4): a leaves the set; b serves
  t.is(s.pick([dest('a', 4, 3), dest('b', 4, 1)], alice)?.address, 'b');
  t.deepEqual(s.serverSet(alice.clientAddress, 4), ['b:80']);
  // a single member is never dropped
  c.advance(10 * HOUR - 1);
  s.pick([dest('a', 4, 3), dest('b', 4, 1)], alice);
  t.deepEqual(s.serverSet(alice.clientAddress, 4), ['b:80']);
});

test('lblcr: removed members are pruned; all members unusable means a new pick joins the set', (t) => {
  const c = clock();
  const s = new LocalityLeastConnectionReplicationScheduler({ now: c.now });
  s.pick([dest('a', 1), dest('b', 1, 1), dest('c', 1, 2)], alice);
  t.is(s.pick([dest('b', 1, 1), dest('c', 1, 2)], alice)?.address, 'b');
  t.deepEqual(s.serverSet(alice.clientAddress, 4), ['b:80']);
  t.is(s.pick([dest('b', 0), dest('c', 1, 2)], alice)?.address, 'c');
  t.deepEqual(s.serverSet(alice.clientAddress, 4), ['c:80', 'b:80']);
  t.is(s.pick([dest('b', 0), dest('c', 0)], alice), null);
});

test('lblcr: idle entries expire', (t) => {
  const c = clock();
  const s = new LocalityLeastConnectionReplicationScheduler({ now: c.now, expirationMs: HOUR });
  s.pick([dest('a', 1, 0), dest('b', 1, 1)], alice);
  c.advance(HOUR);
  t.deepEqual(s.serverSet(alice.clientAddress, 4), []);
  t.is(s.pick([dest('a', 1, 3), dest('b', 1, 1)], alice)?.address, 'b');
});
