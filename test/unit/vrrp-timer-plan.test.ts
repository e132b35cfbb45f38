// timerPlan (state.ts): what the pending timer will do, handed to the advert sender thread; and the
// shell's use of a TimerExecutor (instance.ts): when it hands plans over, cancels, keeps the phase,
// skips the advert the executor already sent, and defers a held-back takeover behind pending reads.
import test from 'ava';
import fc from 'fast-check';
import { initialState, samePlan, step, timerPlan, type TimerPlan, type VrrpEvent, type VrrpParams, type VrrpState } from '../../src/vrrp/state.js';
import { VrrpInstance, arrivalTime, type InstanceEffects, type NativeTakeover, type TimerExecutor } from '../../src/vrrp/instance.js';
import { advertIntervalMs, masterDownIntervalMs } from '../../src/vrrp/timing.js';
import { FakeClock } from '../lib/fake-clock.js';

const ME = '10.0.0.2';
const params = (over: Partial<VrrpParams> = {}): VrrpParams => ({ vrid: 51, version: 3, priority: 100, advertIntCs: 100, preempt: true, preemptDelayMs: 0, primaryAddress: ME, ...over });

const eventArb: fc.Arbitrary<VrrpEvent> = fc.oneof(
  fc.constant<VrrpEvent>({ type: 'timer' }),
  fc.record({ priority: fc.integer({ min: 0, max: 255 }), source: fc.constantFrom('10.0.0.1', '10.0.0.3'), advertIntCs: fc.constantFrom(10, 100) })
    .map((advert): VrrpEvent => ({ type: 'advert', advert })),
  fc.integer({ min: 1, max: 254 }).map((priority): VrrpEvent => ({ type: 'priority', priority })),
  fc.constantFrom<VrrpEvent>({ type: 'fault', source: 'x' }, { type: 'fault_clear', source: 'x' }, { type: 'hold', held: true }, { type: 'hold', held: false }),
);

test('timerPlan says exactly what the timer does when it expires first (any reachable state)', (t) => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 255 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 5_000 }), eventArb), { maxLength: 25 }), (prio, events) => {
    let s: VrrpState = step(initialState(params({ priority: prio })), { type: 'start' }, 0).state;
    let now = 0;
    const check = (st: VrrpState): void => {
      const plan = timerPlan(st);
      if (!plan) {
        if (st.timerAt !== null) t.true(st.name !== 'MASTER' && st.name !== 'BACKUP');
        return;
      }
      const { state, actions } = step(st, { type: 'timer' }, plan.at);
      if (plan.kind === 'periodic') {
        t.is(st.name, 'MASTER');
        t.deepEqual(actions, [{ type: 'send_advert', priority: plan.priority }, { type: 'set_timer', at: plan.at + plan.intervalMs }]);
        t.deepEqual(timerPlan(state), { ...plan, at: plan.at + plan.intervalMs });
      } else {
        t.is(st.name, 'BACKUP');
        t.is(state.name, 'MASTER');
        t.deepEqual(actions.filter((a) => a.type !== 'transition')[0], { type: 'send_advert', priority: plan.priority });
        t.is(timerPlan(state)?.kind, 'periodic');
      }
    };
    check(s);
    for (const [dt, ev] of events) {
      now += dt;
      s = step(s, ev, now).state;
      check(s);
    }
  }), { numRuns: 300 });
});

test('timerPlan: MASTER periodic at its interval, BACKUP takeover at the down timer, none in FAULT/STOP/INIT', (t) => {
  const init = initialState(params({ priority: 255 }));
  t.is(timerPlan(init), null);
  const master = step(init, { type: 'start' }, 1_000).state;
  t.deepEqual(timerPlan(master), { kind: 'periodic', at: 1_000 + advertIntervalMs(100), priority: 255, intervalMs: 1_000 });
  const backup = step(initialState(params()), { type: 'start' }, 0).state;
  t.deepEqual(timerPlan(backup), { kind: 'takeover', at: masterDownIntervalMs(3, 100, 100), priority: 100 });
  t.is(timerPlan(step(backup, { type: 'fault', source: 'x' }, 10).state), null);
  t.is(timerPlan(step(master, { type: 'shutdown' }, 10).state), null);
  t.true(samePlan(timerPlan(master), timerPlan(master)));
  t.false(samePlan(timerPlan(master), timerPlan(backup)));
  t.false(samePlan(timerPlan(master), null));
  t.true(samePlan(null, null));
});

test('arrivalTime: the thread\'s time counts only when it can be this packet\'s (not later, not an interval older)', (t) => {
  t.is(arrivalTime(1_000, 997, 100), 997);
  t.is(arrivalTime(1_000, 940, 100), 940, 'a loop 60 ms late');
  t.is(arrivalTime(1_000, 1_000, 100), 1_000);
  t.is(arrivalTime(1_000, 1_001, 100), 1_000, 'after the loop read it: not this packet');
  t.is(arrivalTime(1_000, 899, 100), 1_000, 'older than an interval: not trusted');
  t.is(arrivalTime(1_000, undefined, 100), 1_000);
  t.is(arrivalTime(undefined, 990, 100), undefined);
});

interface Run { plan: TimerPlan; keepPhase: boolean; fired: (sentAt: number | undefined, done?: NativeTakeover) => void }

function shell(priority: number, opts: { accept?: boolean } = {}) {
  const clock = new FakeClock();
  const log: string[] = [];
  const runs: Run[] = [];
  let accept = opts.accept ?? true;
  const executor: TimerExecutor = {
    run: (plan, keepPhase, fired) => {
      if (!accept) return false;
      runs.push({ plan, keepPhase, fired });
      log.push(`run ${plan.kind} ${plan.priority}${keepPhase ? ' keep' : ''}`);
      return true;
    },
    cancel: () => log.push('cancel'),
    heardAt: () => undefined,
    sent: 7,
  };
  const effects: InstanceEffects = {
    sendAdvert: (p) => log.push(`send ${p}`),
    addVips: async () => { log.push('add_vips'); },
    removeVips: async () => { log.push('remove_vips'); },
    announce: () => undefined,
    stopAnnounce: () => undefined,
    reannounce: () => undefined,
    notify: () => undefined,
    onTransition: (from, to) => log.push(`${from}->${to}`),
    onError: (err) => log.push(`error ${String(err)}`),
  };
  const inst = new VrrpInstance('vi', params({ priority }), { version: 3, vrid: 51, advertIntCs: 100, addresses: ['10.0.0.50'], ownAddresses: [ME] }, effects, clock, executor);
  return { clock, log, runs, inst, setAccept: (v: boolean) => (accept = v) };
}

const advert = (priority: number) => ({ version: 3 as const, vrid: 51, priority, advertIntCs: 100, addresses: ['10.0.0.50'], family: 4 as const, source: '10.0.0.3', ttl: 255, ifindex: 2 });

test('shell: a MASTER hands its adverts to the executor and arms no timer of its own; a priority change keeps the phase', (t) => {
  const { clock, log, runs, inst } = shell(255);
  inst.start();
  t.is(inst.state.name, 'MASTER');
  t.deepEqual(log.filter((l) => l.startsWith('send') || l.startsWith('run')), ['send 255', 'run periodic 255']);
  log.length = 0;
  clock.advance(10_000);
  t.deepEqual(log, [], 'no advert from the loop: the executor sends them');
  t.is(inst.counters.advertsSent, 1 + 7, 'counts its own and the executor\'s');
  // An owner ignores tracking; take a non-owner MASTER for the priority change.
  const s = shell(200);
  s.inst.start();
  s.inst.dispatch({ type: 'force', to: 'MASTER' });
  s.log.length = 0;
  s.inst.dispatch({ type: 'priority', priority: 120 });
  t.deepEqual(s.log, ['run periodic 120 keep']);
  t.is(s.runs.at(-1)!.plan.at, s.runs.at(-2)!.plan.at);
});

test('shell: leaving MASTER cancels the executor before the priority-0 advert goes out', async (t) => {
  const { log, inst } = shell(255);
  inst.start();
  log.length = 0;
  await inst.shutdown();
  t.deepEqual(log.filter((l) => l === 'cancel' || l.startsWith('send')).slice(0, 2), ['cancel', 'send 0']);
});

test('shell: a takeover the executor sent is not sent again; the MASTER\'s adverts go on from its send time', (t) => {
  const { log, runs, inst, clock } = shell(100);
  inst.start();
  const plan = runs.at(-1)!;
  t.is(plan.plan.kind, 'takeover');
  clock.advance(plan.plan.at + 1); // the report reaches the loop a little after the send
  log.length = 0;
  plan.fired(plan.plan.at + 0.2);
  t.is(inst.state.name, 'MASTER');
  t.false(log.some((l) => l.startsWith('send')), log.join(', '));
  const next = runs.at(-1)!.plan;
  t.is(next.kind, 'periodic');
  t.is(next.at, plan.plan.at + 0.2 + 1_000);
  // A stale report (the plan was replaced) does nothing.
  plan.fired(plan.plan.at + 5);
  t.is(runs.at(-1)!.plan, next);
});

test('shell: a takeover the executor held back waits for pending reads; an advert read meanwhile keeps BACKUP', async (t) => {
  const { log, runs, inst, clock } = shell(100);
  inst.start();
  const first = runs.at(-1)!;
  clock.advance(first.plan.at - clock.now());
  first.fired(undefined);
  t.is(inst.state.name, 'BACKUP', 'not at once');
  // The advert is read in the next iteration's poll phase (after this iteration's immediates).
  await new Promise((r) => setImmediate(r));
  t.is(inst.state.name, 'BACKUP', 'nor in this iteration');
  inst.receive(advert(150));
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  t.is(inst.state.name, 'BACKUP');
  t.is(runs.at(-1)!.plan.kind, 'takeover');
  t.true(runs.at(-1)!.plan.at > first.plan.at);
  // Held back and nothing read: the machine takes over and the loop sends the advert.
  const second = runs.at(-1)!;
  clock.advance(second.plan.at - clock.now());
  log.length = 0;
  second.fired(undefined);
  // Not in this loop iteration's check phase: the report may have come in a poll phase that polled
  // the VRRP socket before the held-back packet arrived; the next iteration's poll reads it first.
  await new Promise((r) => setImmediate(r));
  t.is(inst.state.name, 'BACKUP', 'not before the next poll phase');
  await new Promise((r) => setImmediate(r));
  t.is(inst.state.name, 'MASTER');
  t.true(log.includes('send 100'), log.join(', '));
});

test('shell: an executor that cannot take the plan leaves the timer to the clock', (t) => {
  const { clock, log, inst } = shell(255, { accept: false });
  inst.start();
  log.length = 0;
  clock.advance(3_000);
  t.deepEqual(log.filter((l) => l.startsWith('send')), ['send 255', 'send 255', 'send 255']);
});

test('shell: VIPs the thread added at a takeover are reconciled by the machine\'s add_vips; the record says what the thread did', async (t) => {
  const { log, runs, inst, clock } = shell(100);
  inst.start();
  const plan = runs.at(-1)!;
  clock.advance(plan.plan.at + 1);
  log.length = 0;
  plan.fired(plan.plan.at + 0.1, { vipsAt: plan.plan.at + 0.2, vipsErrno: 0, garps: 5 });
  await inst.settled;
  t.is(inst.state.name, 'MASTER');
  t.deepEqual(log.filter((l) => l.endsWith('_vips')), ['add_vips'], 'the shell adds them again (EEXIST is fine), removes nothing');
  const rec = inst.takeTakeover();
  t.deepEqual(rec?.done, { vipsAt: plan.plan.at + 0.2, vipsErrno: 0, garps: 5 });
  t.is(inst.takeTakeover(), undefined, 'taken once');
});

test('shell: VIPs the thread added for a takeover the machine did not make go again (an advert read before the report)', async (t) => {
  const { log, runs, inst, clock } = shell(100);
  inst.start();
  const plan = runs.at(-1)!;
  clock.advance(plan.plan.at - clock.now());
  // The thread sent the advert and added the VIPs; the loop reads a live master's advert first.
  inst.receive(advert(150));
  t.is(inst.state.name, 'BACKUP');
  log.length = 0;
  plan.fired(plan.plan.at, { vipsAt: plan.plan.at + 0.1, vipsErrno: 0, garps: 5 });
  await inst.settled;
  t.is(inst.state.name, 'BACKUP');
  t.deepEqual(log.filter((l) => l.endsWith('_vips')), ['remove_vips']);
  // Without VIPs from the thread, a stale report changes nothing.
  log.length = 0;
  plan.fired(plan.plan.at, { vipsAt: undefined, vipsErrno: 17, garps: 0 });
  await inst.settled;
  t.deepEqual(log, []);
});
