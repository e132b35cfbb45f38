import test from 'ava';
import fc from 'fast-check';
import { isKeepaliveError } from '../../src/util/errors.js';
import {
  compareAddresses,
  initialState,
  resolveParams,
  step,
  type AdvertInput,
  type VrrpAction,
  type VrrpEvent,
  type VrrpParams,
  type VrrpState,
} from '../../src/vrrp/state.js';
import { masterDownIntervalMs, skewTimeMs, startupMasterDownMs } from '../../src/vrrp/timing.js';

const ME = '10.0.0.2';
const LOWER = '10.0.0.1';
const HIGHER = '10.0.0.3';

function params(over: Partial<VrrpParams> = {}): VrrpParams {
  return { vrid: 51, version: 2, priority: 100, advertIntCs: 100, preempt: true, preemptDelayMs: 0, primaryAddress: ME, ...over };
}

/** Run a sequence of [now, event] pairs; returns the final state and the actions of the last step. */
function run(s0: VrrpState, ...events: Array<[number, VrrpEvent]>): { state: VrrpState; actions: VrrpAction[] } {
  let state = s0;
  let actions: VrrpAction[] = [];
  for (const [now, ev] of events) ({ state, actions } = step(state, ev, now));
  return { state, actions };
}

const advert = (priority: number, source = HIGHER, advertIntCs = 100): VrrpEvent => ({
  type: 'advert',
  advert: { priority, source, advertIntCs } satisfies AdvertInput,
});
const types = (actions: VrrpAction[]) => actions.map((a) => a.type);
const START: VrrpEvent = { type: 'start' };
const TIMER: VrrpEvent = { type: 'timer' };

/** A started backup at t=0 and a master that won its first election at t=MDI. */
function backup(over: Partial<VrrpParams> = {}) {
  return run(initialState(params(over)), [0, START]).state;
}
function master(over: Partial<VrrpParams> = {}) {
  const b = backup(over);
  return run(b, [b.timerAt as number, TIMER]).state;
}

test('start: a non-owner enters BACKUP and arms Master_Down_Interval', (t) => {
  const { state, actions } = step(initialState(params()), START, 1000);
  t.is(state.name, 'BACKUP');
  const mdi = masterDownIntervalMs(2, 100, 100);
  t.deepEqual(actions, [
    { type: 'transition', from: 'INIT', to: 'BACKUP', reason: 'start' },
    { type: 'notify', state: 'BACKUP' },
    { type: 'set_timer', at: 1000 + mdi },
  ]);
  t.is(state.timerAt, 1000 + mdi);
});

test('start: the priority 255 owner goes straight to MASTER, actions in the required order', (t) => {
  const { state, actions } = step(initialState(params({ priority: 255 })), START, 0);
  t.is(state.name, 'MASTER');
  t.deepEqual(actions, [
    { type: 'transition', from: 'INIT', to: 'MASTER', reason: 'start' },
    { type: 'send_advert', priority: 255 },
    { type: 'add_vips' },
    { type: 'announce' },
    { type: 'set_timer', at: 1000 },
    { type: 'notify', state: 'MASTER' },
  ]);
});

test('start: `state MASTER` on a non-owner starts as BACKUP with a one-interval timer (keepalived)', (t) => {
  const { state, actions } = step(initialState(params({ initialState: 'MASTER' })), START, 0);
  t.is(state.name, 'BACKUP');
  t.deepEqual(actions.at(-1), { type: 'set_timer', at: startupMasterDownMs(2, 100) });
  // keepalived clears nopreempt and preempt_delay for state MASTER.
  const r = resolveParams(params({ initialState: 'MASTER', preempt: false, preemptDelayMs: 5000 }));
  t.true(r.preempt);
  t.is(r.preemptDelayMs, 0);
});

test('start: an owner configured `state BACKUP` waits like everyone else', (t) => {
  const { state } = step(initialState(params({ priority: 255, initialState: 'BACKUP' })), START, 0);
  t.is(state.name, 'BACKUP');
  t.is(state.timerAt, masterDownIntervalMs(2, 255, 100));
});

test('start: a fault reported before start leads to FAULT and no timer', (t) => {
  const { state, actions } = run(initialState(params()), [0, { type: 'fault', source: 'if:eth1' }], [0, START]);
  t.is(state.name, 'FAULT');
  t.deepEqual(types(actions), ['transition', 'notify']);
  t.is(state.timerAt, null);
});

test('backup: an advert of higher or equal priority resets the down timer', (t) => {
  const b = backup();
  for (const prio of [100, 150]) {
    const { state, actions } = step(b, advert(prio, prio === 100 ? LOWER : HIGHER), 2000);
    t.deepEqual(actions, [{ type: 'set_timer', at: 2000 + masterDownIntervalMs(2, 100, 100) }]);
    t.is(state.name, 'BACKUP');
    t.is(state.masterPriority, prio);
  }
});

test('backup: a priority 0 advert shortens the timer to Skew_Time', (t) => {
  const { state, actions } = step(backup(), advert(0), 2000);
  t.deepEqual(actions, [{ type: 'set_timer', at: 2000 + skewTimeMs(2, 100, 100) }]);
  t.is(state.timerAt, 2609.375, 'v2 priority 100: 156/256 s');
});

test('backup with preempt ignores a lower-priority advert: the running timer keeps going', (t) => {
  const b = backup();
  const { state, actions } = step(b, advert(50), 2000);
  t.deepEqual(actions, []);
  t.is(state.timerAt, b.timerAt);
  t.is(state.masterAddress, HIGHER);
});

test('backup with nopreempt accepts a lower-priority master', (t) => {
  const { actions } = step(backup({ preempt: false }), advert(50), 2000);
  t.deepEqual(actions, [{ type: 'set_timer', at: 2000 + masterDownIntervalMs(2, 100, 100) }]);
});

test('v3 backup learns Master_Adver_Interval from the advert; v2 does not', (t) => {
  const v3 = step(backup({ version: 3 }), advert(150, HIGHER, 50), 2000);
  t.is(v3.state.masterAdverIntCs, 50);
  t.deepEqual(v3.actions, [{ type: 'set_timer', at: 2000 + masterDownIntervalMs(3, 100, 50) }]);
  // A priority-0 advert then uses the learned interval for the skew.
  t.deepEqual(step(v3.state, advert(0), 2500).actions, [{ type: 'set_timer', at: 2500 + skewTimeMs(3, 100, 50) }]);

  const v2 = step(backup({ version: 2 }), advert(150, HIGHER, 300), 2000);
  t.is(v2.state.masterAdverIntCs, 100);
  t.deepEqual(v2.actions, [{ type: 'set_timer', at: 2000 + masterDownIntervalMs(2, 100, 100) }]);
});

test('backup: the down timer expiring makes us MASTER with the required action order', (t) => {
  const b = backup();
  const at = b.timerAt as number;
  const { state, actions } = step(b, TIMER, at);
  t.is(state.name, 'MASTER');
  t.deepEqual(actions, [
    { type: 'transition', from: 'BACKUP', to: 'MASTER', reason: 'master_down_timer' },
    { type: 'send_advert', priority: 100 },
    { type: 'add_vips' },
    { type: 'announce' },
    { type: 'set_timer', at: at + 1000 },
    { type: 'notify', state: 'MASTER' },
  ]);
});

test('a timer event before the deadline re-arms the same deadline instead of acting', (t) => {
  const b = backup();
  const { state, actions } = step(b, TIMER, (b.timerAt as number) - 0.5);
  t.is(state.name, 'BACKUP');
  t.deepEqual(actions, [{ type: 'set_timer', at: b.timerAt as number }]);
  t.deepEqual(step(run(b, [1, { type: 'shutdown' }]).state, TIMER, 1e9).actions, [], 'no timer armed: nothing to do');
});

test('master: each timer sends an advert and re-arms Adver_Interval', (t) => {
  const m = master();
  const now = m.timerAt as number;
  const { state, actions } = step(m, TIMER, now);
  t.deepEqual(actions, [
    { type: 'send_advert', priority: 100 },
    { type: 'set_timer', at: now + 1000 },
  ]);
  t.is(state.name, 'MASTER');
});

test('master: a higher-priority advert -> BACKUP: remove_vips, notify, set_timer(MDI)', (t) => {
  const { state, actions } = step(master(), advert(150), 9000);
  t.is(state.name, 'BACKUP');
  t.deepEqual(actions, [
    { type: 'transition', from: 'MASTER', to: 'BACKUP', reason: 'higher_priority_advert' },
    { type: 'remove_vips' },
    { type: 'notify', state: 'BACKUP' },
    { type: 'set_timer', at: 9000 + masterDownIntervalMs(2, 100, 100) },
  ]);
});

test('master (v3): yielding to a higher master uses its interval for the down timer', (t) => {
  const { state, actions } = step(master({ version: 3 }), advert(150, HIGHER, 25), 9000);
  t.is(state.masterAdverIntCs, 25);
  t.deepEqual(actions.at(-1), { type: 'set_timer', at: 9000 + masterDownIntervalMs(3, 100, 25) });
});

test('master: equal priority is decided by the higher primary address', (t) => {
  const m = master();
  t.is(step(m, advert(100, HIGHER), 9000).state.name, 'BACKUP');
  const lower = step(m, advert(100, LOWER), 9000);
  t.is(lower.state.name, 'MASTER');
  t.deepEqual(lower.actions, [{ type: 'send_advert', priority: 100 }, { type: 'reannounce' }], 'answers the lower address so it yields');
  t.deepEqual(step(m, advert(100, ME), 9000).actions, [], 'our own address: only logged by keepalived');
});

test('master: equal priority tie-break with IPv6 addresses', (t) => {
  const m = master({ version: 3, primaryAddress: 'fe80::2' });
  t.is(step(m, advert(100, 'fe80::10'), 9000).state.name, 'BACKUP');
  t.is(step(m, advert(100, 'fe80::1'), 9000).state.name, 'MASTER');
});

test('master: a lower-priority advert is answered at once unless lower_prio_no_advert, and the VIPs are re-announced', (t) => {
  t.deepEqual(step(master(), advert(50), 9000).actions, [{ type: 'send_advert', priority: 100 }, { type: 'reannounce' }]);
  // After a split brain, hosts may have learnt the loser's MAC: re-announce even without answering.
  t.deepEqual(step(master({ lowerPrioNoAdvert: true }), advert(50), 9000).actions, [{ type: 'reannounce' }]);
});

test('master: a priority 0 advert from another router is answered at once, we stay MASTER', (t) => {
  const { state, actions } = step(master({ lowerPrioNoAdvert: true }), advert(0), 9000);
  t.is(state.name, 'MASTER');
  t.deepEqual(actions, [{ type: 'send_advert', priority: 100 }]);
});

test('master: higher_prio_send_advert sends one advert before yielding', (t) => {
  const { state, actions } = step(master({ higherPrioSendAdvert: true }), advert(150), 9000);
  t.is(state.name, 'BACKUP');
  t.deepEqual(types(actions), ['send_advert', 'transition', 'remove_vips', 'notify', 'set_timer']);
});

test('owner: not preempted by lower priorities, ignores tracking, steps down to 254 on an owner conflict', (t) => {
  const o = run(initialState(params({ priority: 255 })), [0, START]).state;
  t.is(step(o, advert(254), 500).state.name, 'MASTER');
  t.is(step(o, { type: 'priority', priority: 10 }, 500).state.effectivePriority, 255);
  const conflict = step(o, advert(255, HIGHER), 500);
  t.is(conflict.state.name, 'BACKUP');
  t.is(conflict.state.effectivePriority, 254);
  // Against a second owner with a lower address, keepalived still drops to 254 and then yields.
  t.is(step(o, advert(255, LOWER), 500).state.name, 'BACKUP');
});

test('shutdown from MASTER: priority-0 advert, remove VIPs, notify STOP', (t) => {
  const { state, actions } = step(master(), { type: 'shutdown' }, 9000);
  t.is(state.name, 'STOP');
  t.deepEqual(actions, [
    { type: 'transition', from: 'MASTER', to: 'STOP', reason: 'shutdown' },
    { type: 'send_advert', priority: 0 },
    { type: 'remove_vips' },
    { type: 'notify', state: 'STOP' },
    { type: 'cancel_timer' },
  ]);
  t.deepEqual(step(state, advert(150), 9500).actions, [], 'STOP ignores adverts');
});

test('shutdown from BACKUP sends nothing', (t) => {
  const { state, actions } = step(backup(), { type: 'shutdown' }, 100);
  t.is(state.name, 'STOP');
  t.deepEqual(types(actions), ['transition', 'cancel_timer', 'notify']);
});

test('a stopped instance can be started again', (t) => {
  const stopped = step(backup(), { type: 'shutdown' }, 100).state;
  const { state } = step(stopped, START, 200);
  t.is(state.name, 'BACKUP');
  t.is(state.timerAt, 200 + masterDownIntervalMs(2, 100, 100));
});

test('fault from MASTER: priority-0 advert, VIPs removed, no timer; adverts ignored while faulted', (t) => {
  const { state, actions } = step(master(), { type: 'fault', source: 'if:eth1' }, 9000);
  t.is(state.name, 'FAULT');
  t.deepEqual(actions, [
    { type: 'transition', from: 'MASTER', to: 'FAULT', reason: 'fault' },
    { type: 'send_advert', priority: 0 },
    { type: 'remove_vips' },
    { type: 'notify', state: 'FAULT' },
    { type: 'cancel_timer' },
  ]);
  t.deepEqual(step(state, advert(0), 9100).actions, []);
  t.deepEqual(step(state, TIMER, 1e9).actions, []);
});

test('fault sources are counted: FAULT lasts until the last one clears, then BACKUP with MDI', (t) => {
  const b = backup();
  const f = run(b, [10, { type: 'fault', source: 'if:eth1' }], [20, { type: 'fault', source: 'script:chk' }]).state;
  t.deepEqual(f.faults, ['if:eth1', 'script:chk']);
  const one = step(f, { type: 'fault_clear', source: 'if:eth1' }, 30);
  t.is(one.state.name, 'FAULT');
  t.deepEqual(one.actions, []);
  const up = step(one.state, { type: 'fault_clear', source: 'script:chk' }, 40);
  t.is(up.state.name, 'BACKUP');
  t.deepEqual(up.actions, [
    { type: 'transition', from: 'FAULT', to: 'BACKUP', reason: 'fault_clear' },
    { type: 'notify', state: 'BACKUP' },
    { type: 'set_timer', at: 40 + masterDownIntervalMs(2, 100, 100) },
  ]);
});

test('fault_clear for the owner returns straight to MASTER', (t) => {
  const o = run(initialState(params({ priority: 255 })), [0, START], [10, { type: 'fault', source: 'x' }]).state;
  t.is(o.name, 'FAULT');
  t.is(step(o, { type: 'fault_clear', source: 'x' }, 20).state.name, 'MASTER');
});

test('priority change in BACKUP moves the pending deadline by the change in Master_Down_Interval', (t) => {
  const b = step(backup(), advert(150), 1000).state; // timer at 1000 + MDI(100)
  const { state, actions } = step(b, { type: 'priority', priority: 200 }, 1500);
  const expected = 1000 + masterDownIntervalMs(2, 200, 100);
  t.deepEqual(actions, [{ type: 'set_timer', at: expected }]);
  t.is(state.effectivePriority, 200);
});

test('priority change in MASTER is carried by the next advert, and is clamped to 1..254', (t) => {
  const m = step(master(), { type: 'priority', priority: 300 }, 5000);
  t.deepEqual(m.actions, []);
  t.is(m.state.effectivePriority, 254);
  t.deepEqual(step(m.state, TIMER, m.state.timerAt as number).actions[0], { type: 'send_advert', priority: 254 });
  t.is(step(master(), { type: 'priority', priority: -5 }, 5000).state.effectivePriority, 1);
});

test('a backup whose priority rose above the master takes over when the down timer expires', (t) => {
  let s = step(backup(), advert(150), 1000).state;
  s = step(s, { type: 'priority', priority: 200 }, 1500).state;
  // From now on the master's adverts (150) are lower: ignored, the timer runs out.
  const deadline = s.timerAt as number;
  s = step(s, advert(150), 2000).state;
  s = step(s, advert(150), 3000).state;
  t.is(s.timerAt, deadline);
  t.is(step(s, TIMER, deadline).state.name, 'MASTER');
});

test('preempt_delay: a lower-priority master is accepted until the delay has run, then ignored', (t) => {
  let s = backup({ priority: 200, preemptDelayMs: 5000 });
  // The first lower-priority advert starts the delay (keepalived 2.2 preempt_time).
  s = step(s, advert(100), 1000).state;
  t.is(s.preemptAt, 6000);
  for (const now of [2000, 3000, 4000, 5000]) {
    const r = step(s, advert(100), now);
    t.deepEqual(r.actions, [{ type: 'set_timer', at: now + masterDownIntervalMs(2, 200, 100) }]);
    s = r.state;
  }
  const ignored = step(s, advert(100), 6000);
  t.deepEqual(ignored.actions, [], 'delay expired: the advert is ignored');
  t.is(ignored.state.timerAt, 5000 + masterDownIntervalMs(2, 200, 100));
  // An advert of our priority or higher stops the delay.
  t.is(step(s, advert(200), 5500).state.preemptAt, null);
});

test('force (sync group) moves BACKUP->MASTER and MASTER->BACKUP, and nothing else', (t) => {
  const f = step(backup(), { type: 'force', to: 'MASTER' }, 100);
  t.is(f.state.name, 'MASTER');
  t.is((f.actions[0] as { reason: string }).reason, 'sync_group');
  const g = step(master(), { type: 'force', to: 'BACKUP' }, 9000);
  t.is(g.state.name, 'BACKUP');
  t.deepEqual(types(g.actions), ['transition', 'remove_vips', 'notify', 'set_timer']);
  const faulted = step(backup(), { type: 'fault', source: 'x' }, 1).state;
  t.deepEqual(step(faulted, { type: 'force', to: 'MASTER' }, 2).actions, []);
});

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

test('step never mutates its input state', (t) => {
  let s = deepFreeze(initialState(params({ preemptDelayMs: 1000 })));
  const events: Array<[number, VrrpEvent]> = [
    [0, START],
    [100, advert(50)],
    [200, { type: 'priority', priority: 120 }],
    [300, advert(0)],
    [1000, TIMER],
    [1500, advert(50)],
    [1600, { type: 'fault', source: 'a' }],
    [1700, { type: 'fault_clear', source: 'a' }],
    [1800, advert(200)],
    [1900, { type: 'shutdown' }],
  ];
  for (const [now, ev] of events) s = deepFreeze(step(s, ev, now).state);
  t.is(s.name, 'STOP');
});

test('compareAddresses: unsigned byte order for IPv4 and IPv6, different families compare equal', (t) => {
  t.true(compareAddresses('10.0.0.10', '10.0.0.9') > 0);
  t.true(compareAddresses('9.255.255.255', '10.0.0.0') < 0);
  t.true(compareAddresses('192.168.0.1', '10.0.0.1') > 0, 'unsigned: 192 > 10');
  t.is(compareAddresses('10.0.0.1', '10.0.0.1'), 0);
  t.true(compareAddresses('fe80::1', 'fe80::0:2') < 0);
  t.true(compareAddresses('2001:db8::1:0', '2001:db8::ffff') > 0);
  t.true(compareAddresses('ff02::12', 'fe80::1%eth0') > 0);
  t.true(compareAddresses('::ffff:10.0.0.2', '::ffff:10.0.0.1') > 0);
  t.is(compareAddresses('::ffff:10.0.0.2', '::ffff:a00:2'), 0);
  t.is(compareAddresses('10.0.0.1', 'fe80::1'), 0);
});

test('resolveParams rejects invalid configuration with E_CONFIG_INVALID', (t) => {
  for (const bad of [
    { vrid: 0 },
    { priority: 0 },
    { priority: 256 },
    { version: 2 as const, advertIntCs: 150 },
    { version: 3 as const, advertIntCs: 4096 },
    { primaryAddress: 'not-an-ip' },
    { preemptDelayMs: -1 },
  ]) {
    const err = t.throws(() => resolveParams(params(bad)));
    t.true(isKeepaliveError(err, 'E_CONFIG_INVALID'), JSON.stringify(bad));
  }
});

const eventArb: fc.Arbitrary<VrrpEvent> = fc.oneof(
  fc.constant<VrrpEvent>({ type: 'start' }),
  fc.constant<VrrpEvent>({ type: 'timer' }),
  fc.constant<VrrpEvent>({ type: 'shutdown' }),
  fc.record({
    priority: fc.integer({ min: 0, max: 255 }),
    source: fc.constantFrom(LOWER, ME, HIGHER),
    advertIntCs: fc.constantFrom(100, 200),
  }).map((advert): VrrpEvent => ({ type: 'advert', advert })),
  fc.constantFrom('a', 'b').map((source): VrrpEvent => ({ type: 'fault', source })),
  fc.constantFrom('a', 'b').map((source): VrrpEvent => ({ type: 'fault_clear', source })),
  fc.integer({ min: 1, max: 254 }).map((priority): VrrpEvent => ({ type: 'priority', priority })),
  fc.constantFrom<'MASTER' | 'BACKUP'>('MASTER', 'BACKUP').map((to): VrrpEvent => ({ type: 'force', to })),
  fc.boolean().map((held): VrrpEvent => ({ type: 'hold', held })),
);

// ---------------------------------------------------------------------------------------------
// The start-up hold: no takeover from a live master until the daemon's services are ready.

const HOLD: VrrpEvent = { type: 'hold', held: true };
const RELEASE: VrrpEvent = { type: 'hold', held: false };

test('hold: a held instance accepts a lower-priority master (no preemption) and keeps refreshing its down timer', (t) => {
  const held = run(initialState(params({ priority: 150 })), [0, HOLD], [0, START]).state;
  t.is(held.name, 'BACKUP');
  const mdi = masterDownIntervalMs(2, 150, 100);
  // Without the hold this advert is ignored (the running timer would make us MASTER at mdi).
  const r = step(held, advert(100, LOWER), 500);
  t.deepEqual(r.actions, [{ type: 'set_timer', at: 500 + mdi }]);
  t.is(r.state.masterPriority, 100);
  const unheld = step(run(initialState(params({ priority: 150 })), [0, START]).state, advert(100, LOWER), 500);
  t.deepEqual(unheld.actions, [], 'not held: the lower-priority advert is ignored (preemption)');
  // Adverts every second for 10 s: still BACKUP, the timer always one MDI after the last advert.
  let s = r.state;
  for (let now = 1500; now <= 10_500; now += 1000) s = step(s, advert(100, LOWER), now).state;
  t.is(s.name, 'BACKUP');
  t.is(s.timerAt, 10_500 + mdi);
});

test('hold: a lone held instance still becomes MASTER when its down timer expires', (t) => {
  const held = run(initialState(params({ priority: 150 })), [0, HOLD], [0, START]).state;
  const r = step(held, TIMER, held.timerAt as number);
  t.is(r.state.name, 'MASTER');
  t.deepEqual(types(r.actions), ['transition', 'send_advert', 'add_vips', 'announce', 'set_timer', 'notify']);
  // The master leaving (priority 0) still hands over after Skew_Time while held.
  const s = step(held, advert(100, LOWER), 100).state;
  const z = step(s, advert(0, LOWER), 200);
  t.deepEqual(z.actions, [{ type: 'set_timer', at: 200 + skewTimeMs(2, 150, 100) }]);
});

test('hold: released, a preempting instance takes over the usual way (the next lower advert is ignored)', (t) => {
  let s = run(initialState(params({ priority: 150 })), [0, HOLD], [0, START], [100, advert(100, LOWER)]).state;
  const rel = step(s, RELEASE, 200);
  t.deepEqual(rel.actions, [], 'a non-owner does nothing at release');
  s = rel.state;
  t.false(s.held);
  t.deepEqual(step(s, advert(100, LOWER), 1100).actions, [], 'lower advert ignored again');
  const r = step(s, TIMER, s.timerAt as number);
  t.is(r.state.name, 'MASTER');
  // nopreempt stays nopreempt after the release.
  const np = run(initialState(params({ priority: 150, preempt: false })), [0, HOLD], [0, START], [100, advert(100, LOWER)], [200, RELEASE], [1100, advert(100, LOWER)]);
  t.is(np.state.name, 'BACKUP');
  t.deepEqual(types(np.actions), ['set_timer']);
});

test('hold: the owner starts in BACKUP with the short start-up timer, and becomes MASTER at release unless a higher master is heard', (t) => {
  const owner = run(initialState(params({ priority: 255 })), [0, HOLD], [0, START]);
  t.is(owner.state.name, 'BACKUP');
  t.deepEqual(owner.actions.at(-1), { type: 'set_timer', at: startupMasterDownMs(2, 100) });
  // Released with no master heard: MASTER at once (what its start would have done).
  const r = step(owner.state, RELEASE, 300);
  t.is(r.state.name, 'MASTER');
  t.deepEqual(r.actions[0], { type: 'transition', from: 'BACKUP', to: 'MASTER', reason: 'hold_released' });
  // A lower-priority master heard while held: accepted until release, then preempted at once.
  const s = step(owner.state, advert(100, LOWER), 200).state;
  t.is(s.name, 'BACKUP');
  t.is(step(s, RELEASE, 300).state.name, 'MASTER');
  // Lone and held: the short timer makes it MASTER.
  t.is(step(owner.state, TIMER, owner.state.timerAt as number).state.name, 'MASTER');
  // Without the hold the owner is MASTER at start (unchanged).
  t.is(run(initialState(params({ priority: 255 })), [0, START]).state.name, 'MASTER');
});

test('hold: `state MASTER` on a non-owner keeps its short start-up timer but does not preempt while held', (t) => {
  const s0 = run(initialState(params({ priority: 150, initialState: 'MASTER' })), [0, HOLD], [0, START]).state;
  t.is(s0.timerAt, startupMasterDownMs(2, 100));
  const s = step(s0, advert(100, LOWER), 500).state;
  t.is(s.timerAt, 500 + masterDownIntervalMs(2, 150, 100), 'held: the lower master is accepted');
  const rel = step(s, RELEASE, 600);
  t.is(rel.state.name, 'BACKUP');
  t.deepEqual(step(rel.state, advert(100, LOWER), 1500).actions, [], 'released: lower adverts ignored again');
});

test('property: actions keep VIPs, timer and state consistent for any event sequence', (t) => {
  fc.assert(
    fc.property(
      fc.record({
        priority: fc.integer({ min: 1, max: 255 }),
        version: fc.constantFrom<2 | 3>(2, 3),
        preempt: fc.boolean(),
        preemptDelayMs: fc.constantFrom(0, 1500),
        initialState: fc.constantFrom<'MASTER' | 'BACKUP' | undefined>('MASTER', 'BACKUP', undefined),
      }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 5000 }), eventArb), { maxLength: 40 }),
      (over, events) => {
        let s = initialState(params(over));
        let now = 0;
        let vips = false;
        let timer: number | null = null;
        for (const [dt, ev] of events) {
          now += dt;
          const r = step(s, ev, now);
          if (r.actions.filter((a) => a.type === 'set_timer' || a.type === 'cancel_timer').length > 1) return false;
          for (const a of r.actions) {
            if (a.type === 'add_vips') {
              if (vips) return false; // never added twice
              vips = true;
            } else if (a.type === 'remove_vips') {
              if (!vips) return false; // only removed when held
              vips = false;
            } else if (a.type === 'set_timer') timer = a.at;
            else if (a.type === 'cancel_timer') timer = null;
            else if (a.type === 'send_advert' && a.priority !== 0 && r.state.name !== 'MASTER' && s.name !== 'MASTER') return false;
          }
          s = r.state;
          // VIPs are held exactly while MASTER; the shell's timer mirrors timerAt; only BACKUP and
          // MASTER run a timer (the shell may still hold a stale one after INIT/STOP, never armed).
          if (vips !== (s.name === 'MASTER')) return false;
          if ((s.name === 'BACKUP' || s.name === 'MASTER') !== (s.timerAt !== null)) return false;
          if (s.timerAt !== null && timer !== s.timerAt) return false;
          if (s.name === 'MASTER' && s.effectivePriority < 1) return false;
        }
        return true;
      },
    ),
    { numRuns: 1000 },
  );
  t.pass();
});
