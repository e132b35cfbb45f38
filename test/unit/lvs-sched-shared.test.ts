import test from 'ava';
import { RoundRobinScheduler } from '../../src/lvs/dataplane/proxy/sched/rr.js';
import { WeightedRoundRobinScheduler } from '../../src/lvs/dataplane/proxy/sched/wrr.js';
import { SHARED_CURSOR_SLOTS, SharedRoundRobinScheduler, SharedWeightedRoundRobinScheduler, cursorSlot } from '../../src/lvs/dataplane/proxy/sched/shared.js';
import type { RealServerRef, ScheduleContext } from '../../src/lvs/dataplane/proxy/types.js';

function dest(name: string, weight: number, overloaded = false): RealServerRef {
  return { id: `${name}:80`, address: name, port: 80, weight, activeConns: 0, inactConns: 0, overloaded };
}
const ctx: ScheduleContext = { clientAddress: '198.51.100.7', clientPort: 40000, family: 4 };
const cursor = () => new Int32Array(new SharedArrayBuffer(SHARED_CURSOR_SLOTS * 4));
const names = (ds: (RealServerRef | null)[]) => ds.map((d) => (d ? d.address : '-')).join('');

test('rr: two workers sharing the cursor give one rr sequence between them, as a single table would', (t) => {
  const list = ['A', 'B', 'C'].map((n) => dest(n, 1));
  const c = cursor();
  const w1 = new SharedRoundRobinScheduler(c, 7);
  const w2 = new SharedRoundRobinScheduler(c, 7);
  const single = new RoundRobinScheduler();
  const seen: (RealServerRef | null)[] = [];
  const expected: (RealServerRef | null)[] = [];
  // The connections land on the workers in any order.
  for (const w of [w1, w2, w2, w1, w1, w1, w2, w1, w2]) {
    seen.push(w.pick(list, ctx));
    expected.push(single.pick(list, ctx));
  }
  t.is(names(seen), names(expected));
  t.is(names(seen), 'ABCABCABC');
});

test('rr: weight 0 and overloaded servers are skipped; none available gives null', (t) => {
  const c = cursor();
  const s = new SharedRoundRobinScheduler(c, 1);
  const list = [dest('A', 1), dest('B', 0), dest('C', 1, true), dest('D', 2)];
  const picks = names(Array.from({ length: 8 }, () => s.pick(list, ctx)));
  t.regex(picks, /^[AD]{8}$/, picks);
  t.is([...picks].filter((x) => x === 'A').length, 4);
  t.is(s.pick([dest('A', 0), dest('B', 1, true)], ctx), null);
  t.is(s.pick([], ctx), null);
});

test('wrr: the shared cycle is the single-table wrr sequence, whichever worker picks', (t) => {
  const list = [dest('A', 4), dest('B', 3), dest('C', 2)];
  const c = cursor();
  const workers = [new SharedWeightedRoundRobinScheduler(c, 3), new SharedWeightedRoundRobinScheduler(c, 3)];
  const single = new WeightedRoundRobinScheduler();
  const seen: (RealServerRef | null)[] = [];
  const expected: (RealServerRef | null)[] = [];
  for (let i = 0; i < 27; i++) {
    seen.push(workers[(i * 7) % 3 === 0 ? 0 : 1]!.pick(list, ctx));
    expected.push(single.pick(list, ctx));
  }
  t.is(names(seen), names(expected));
  t.is(names(seen).slice(0, 9), 'AABABCABC');
});

test('wrr: weights 1:3 split 40 connections 10/30; an overloaded server passes its turn on', (t) => {
  const c = cursor();
  const s = new SharedWeightedRoundRobinScheduler(c, 9);
  const list = [dest('A', 1), dest('B', 3)];
  const picks = names(Array.from({ length: 40 }, () => s.pick(list, ctx)));
  t.is([...picks].filter((x) => x === 'A').length, 10);
  t.is([...picks].filter((x) => x === 'B').length, 30);
  const busy = [dest('A', 1, true), dest('B', 3)];
  t.is(names(Array.from({ length: 8 }, () => s.pick(busy, ctx))), 'BBBBBBBB');
});

test('cursor slots: stable per key, within the buffer', (t) => {
  t.is(cursorSlot('tcp/10.0.0.1:80'), cursorSlot('tcp/10.0.0.1:80'));
  for (const k of ['a', 'tcp/[fd00::1]:443', 'udp/1.2.3.4:53']) {
    const s = cursorSlot(k);
    t.true(s >= 0 && s < SHARED_CURSOR_SLOTS);
  }
});
