// nativeExecutor (src/vrrp/native-sender.ts) over a fake AdvertSender: what it hands over with a
// takeover (the extras), and where the thread's report goes — the current plan's callback, or, for a
// job that ran just before the shell replaced it, that job's own callback when its thread added VIPs.
import test from 'ava';
import { nativeExecutor } from '../../src/vrrp/native-sender.js';
import type { AdvertSender, TakeoverDone, TakeoverExtras } from '../../src/net/native.js';
import type { NativeTakeover } from '../../src/vrrp/instance.js';
import { FakeClock } from '../lib/fake-clock.js';

function fakeSender() {
  let report: ((gen: number, ageMs: number, done: TakeoverDone) => void) | undefined;
  const scheduled: { gen: number; kind: string; extras: TakeoverExtras | undefined }[] = [];
  const sender = {
    job: (cb: typeof report) => { report = cb; return 1; },
    schedule: (_id: number, gen: number, kind: string, _f: unknown, _d: number, _p: number, _k: boolean, extras?: TakeoverExtras) => { scheduled.push({ gen, kind, extras }); },
    cancel: () => undefined,
    heardAgo: () => undefined,
    stats: () => ({ sent: 0, errors: 0, maxLateUs: 0, maxWakeLateUs: 0 }),
  } as unknown as AdvertSender;
  return { sender, scheduled, report: (gen: number, ageMs: number, done: TakeoverDone) => report!(gen, ageMs, done) };
}

const frames = () => ({ fd: 3, ifindex: 2, vrid: 51, packets: [Buffer.alloc(40)], dsts: ['224.0.0.18'] });
const extras: TakeoverExtras = { nl: Buffer.alloc(40), nlCount: 1, garpIfindex: 2, garps: [Buffer.alloc(42)] };
const takeover = (at: number) => ({ kind: 'takeover' as const, at, priority: 100 });

test('a takeover hands the extras over; the report gives the current callback when its VIPs went in', (t) => {
  const clock = new FakeClock();
  const s = fakeSender();
  const ex = nativeExecutor(s.sender, clock, frames, () => extras);
  const calls: [number | undefined, NativeTakeover | undefined][] = [];
  ex.run(takeover(100), false, (at, done) => calls.push([at, done]));
  t.is(s.scheduled[0]!.extras, extras);
  clock.advance(101);
  s.report(s.scheduled[0]!.gen, 1, { vipsAgeMs: 0.5, vipsErrno: 0, garps: 5 });
  t.deepEqual(calls, [[100, { vipsAt: 100.5, vipsErrno: 0, garps: 5 }]]);
  // A periodic plan carries none.
  ex.run({ kind: 'periodic', at: 200, priority: 100, intervalMs: 100 }, false, () => undefined);
  t.is(s.scheduled[1]!.extras, undefined);
});

test('a job that ran just before it was replaced: its VIPs reach its own callback (which takes them out), not the new one', (t) => {
  const clock = new FakeClock();
  const s = fakeSender();
  const ex = nativeExecutor(s.sender, clock, frames, () => extras);
  const first: unknown[] = [];
  const second: unknown[] = [];
  ex.run(takeover(100), false, (at, done) => first.push([at, done]));
  ex.run(takeover(400), false, (at, done) => second.push([at, done])); // an advert refreshed the down timer
  clock.advance(101);
  s.report(s.scheduled[0]!.gen, 1, { vipsAgeMs: 0.5, vipsErrno: 0, garps: 5 });
  t.deepEqual(first, [[100, { vipsAt: 100.5, vipsErrno: 0, garps: 5 }]]);
  t.deepEqual(second, []);
  // A stale job that added nothing is not reported at all.
  ex.run(takeover(700), false, () => second.push('third'));
  s.report(s.scheduled[1]!.gen, -1, { vipsAgeMs: undefined, vipsErrno: 0, garps: 0 });
  t.deepEqual(second, []);
});
