import test from 'ava';
import { Announcer, type AnnouncerTiming, type Scheduler } from '../../src/net/announcer.js';
import { parseArp, parseNa } from '../../src/net/frames.js';

/** Deterministic clock: timers fire only when the test advances time. */
class FakeScheduler implements Scheduler {
  now = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.now + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  get pending(): number {
    return this.#timers.size;
  }

  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= end && (!due || e[1].at < due[1].at || (e[1].at === due[1].at && e[0] < due[0]))) due = e;
      if (!due) break;
      this.#timers.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
    }
    this.now = end;
  }
}

const MAC = '02:00:00:00:00:01';

function setup(timing: Partial<AnnouncerTiming>, vips = ['192.0.2.10/24', '192.0.2.11', 'fd00::10/64']) {
  const clock = new FakeScheduler();
  const log: { at: number; vip: string; family: 4 | 6 }[] = [];
  const announcer = new Announcer({
    mac: MAC,
    vips,
    timing,
    scheduler: clock,
    send: (frame) => {
      const arp = parseArp(frame);
      if (arp) log.push({ at: clock.now, vip: arp.targetIp, family: 4 });
      else {
        const na = parseNa(frame);
        if (!na) throw new Error('announcer produced an unparseable frame');
        log.push({ at: clock.now, vip: na.target, family: 6 });
      }
    },
  });
  return { clock, log, announcer };
}

test('becoming MASTER sends garp_master_repeat rounds over every VIP at once', (t) => {
  const { log, announcer, clock } = setup({ garpMasterRepeat: 3, garpMasterDelay: 0 });
  announcer.start();
  t.is(log.length, 9);
  t.true(log.every((e) => e.at === 0));
  t.deepEqual(
    log.slice(0, 3).map((e) => e.vip),
    ['192.0.2.10', '192.0.2.11', 'fd00::10'],
  );
  t.is(announcer.sent, 9);
  t.is(clock.pending, 0, 'no delayed burst, no refresh');
  clock.advance(3_600_000);
  t.is(log.length, 9);
});

test('garp_master_delay schedules a second burst of the same size', (t) => {
  const { log, announcer, clock } = setup({ garpMasterRepeat: 2, garpMasterDelay: 5 });
  announcer.start();
  t.is(log.length, 6);
  clock.advance(4999);
  t.is(log.length, 6);
  clock.advance(1);
  t.is(log.length, 12);
  t.true(log.slice(6).every((e) => e.at === 5000));
  clock.advance(60_000);
  t.is(log.length, 12);
});

test('garp_master_refresh repeats garp_master_refresh_repeat rounds while MASTER', (t) => {
  const { log, announcer, clock } = setup({ garpMasterRepeat: 1, garpMasterDelay: 0, garpMasterRefresh: 10, garpMasterRefreshRepeat: 2 }, ['192.0.2.10']);
  announcer.start();
  t.is(log.length, 1);
  clock.advance(10_000);
  t.is(log.length, 3);
  clock.advance(20_000);
  t.is(log.length, 7);
  t.deepEqual(
    log.map((e) => e.at),
    [0, 10_000, 10_000, 20_000, 20_000, 30_000, 30_000],
  );
  announcer.stop();
  clock.advance(100_000);
  t.is(log.length, 7);
  t.is(clock.pending, 0);
});

test('vrrp_garp_interval / vrrp_gna_interval pace each family independently', (t) => {
  const { log, announcer, clock } = setup({ garpMasterRepeat: 2, garpMasterDelay: 0, garpInterval: 0.1, gnaInterval: 0.25 });
  announcer.start();
  // First frame of each family leaves at once, the rest wait for their family's interval.
  t.deepEqual(log, [
    { at: 0, vip: '192.0.2.10', family: 4 },
    { at: 0, vip: 'fd00::10', family: 6 },
  ]);
  clock.advance(1000);
  const v4 = log.filter((e) => e.family === 4);
  const v6 = log.filter((e) => e.family === 6);
  t.deepEqual(
    v4.map((e) => [e.at, e.vip]),
    [
      [0, '192.0.2.10'],
      [100, '192.0.2.11'],
      [200, '192.0.2.10'],
      [300, '192.0.2.11'],
    ],
  );
  t.deepEqual(
    v6.map((e) => e.at),
    [0, 250],
  );
  t.is(announcer.sent, 6);
});

test('stop() on demotion cancels queued frames and the delayed burst', (t) => {
  const { log, announcer, clock } = setup({ garpMasterRepeat: 5, garpMasterDelay: 2, garpInterval: 0.5, gnaInterval: 0.5 });
  announcer.start();
  clock.advance(600);
  const before = log.length;
  announcer.stop();
  announcer.stop();
  t.false(announcer.active);
  clock.advance(60_000);
  t.is(log.length, before);
  t.is(clock.pending, 0);
  // A later promotion starts over cleanly.
  announcer.start();
  t.is(log.length, before + 2);
});

test('start() while already MASTER does not double the schedule', (t) => {
  const { log, announcer, clock } = setup({ garpMasterRepeat: 1, garpMasterDelay: 1 }, ['192.0.2.10']);
  announcer.start();
  announcer.start();
  t.is(log.length, 1);
  clock.advance(1000);
  t.is(log.length, 2);
});

test('send failures are counted and reported, not thrown, and do not stop the burst', (t) => {
  const clock = new FakeScheduler();
  const errors: string[] = [];
  let calls = 0;
  const a = new Announcer({
    mac: MAC,
    vips: ['192.0.2.10', '192.0.2.11'],
    timing: { garpMasterRepeat: 2, garpMasterDelay: 0 },
    scheduler: clock,
    send: () => {
      if (calls++ % 2 === 0) throw new Error('ENETDOWN');
    },
    onError: (_err, vip) => errors.push(vip),
  });
  a.start();
  t.is(calls, 4);
  t.is(a.sent, 2);
  t.is(a.failed, 2);
  t.deepEqual(errors, ['192.0.2.10', '192.0.2.10']);
});

test('invalid VIP or MAC is rejected at construction', (t) => {
  t.throws(() => new Announcer({ mac: MAC, vips: ['300.1.1.1'], send: () => {} }), { instanceOf: TypeError });
  t.throws(() => new Announcer({ mac: 'zz', vips: ['10.0.0.1'], send: () => {} }), { instanceOf: TypeError });
});

test('firstGarps: garp_master_repeat rounds of the IPv4 frames (what a sender thread puts out first); none when vrrp_garp_interval paces them', (t) => {
  const { announcer } = setup({ garpMasterRepeat: 3, garpMasterDelay: 0 });
  const frames = announcer.firstGarps();
  t.is(frames.length, 3 * 2);
  t.deepEqual(frames.map((f) => parseArp(f)?.targetIp), ['192.0.2.10', '192.0.2.11', '192.0.2.10', '192.0.2.11', '192.0.2.10', '192.0.2.11']);
  t.deepEqual(setup({ garpMasterRepeat: 3, garpInterval: 0.01 }).announcer.firstGarps(), []);
});

test('start({ garpsSent }): all of the first GARPs out already -> only the NAs now, counted; the second burst and the refresh keep their timing', (t) => {
  const { clock, log, announcer } = setup({ garpMasterRepeat: 2, garpMasterDelay: 5, garpMasterRefresh: 20, garpMasterRefreshRepeat: 1 });
  announcer.start({ garpsSent: announcer.firstGarps().length });
  t.deepEqual(log.map((l) => l.family), [6, 6], 'no IPv4 frame again in the first burst');
  t.is(announcer.sent, 4 + 2);
  clock.advance(5_000);
  t.is(log.filter((l) => l.at === 5_000).length, 2 * 3, 'garp_master_delay: the full second burst');
  clock.advance(15_000);
  t.is(log.filter((l) => l.at === 20_000).length, 3, 'garp_master_refresh: one round');
});

test('start({ garpsSent }): only some of them out -> the whole first burst goes again', (t) => {
  const { log, announcer } = setup({ garpMasterRepeat: 2, garpMasterDelay: 0 });
  announcer.start({ garpsSent: 1 });
  t.is(log.filter((l) => l.family === 4).length, 4);
  t.is(announcer.sent, 1 + 6);
});

test('start({ garpsSent, sinceMs }): the second burst is garp_master_delay after the GARPs that left first, not after start()', (t) => {
  const { clock, log, announcer } = setup({ garpMasterRepeat: 1, garpMasterDelay: 5 });
  announcer.start({ garpsSent: announcer.firstGarps().length, sinceMs: 1_200 });
  clock.advance(3_799);
  t.is(log.filter((l) => l.family === 4).length, 0);
  clock.advance(1);
  t.is(log.filter((l) => l.family === 4).length, 2);
});
