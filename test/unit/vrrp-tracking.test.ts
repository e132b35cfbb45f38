import test from 'ava';
import fc from 'fast-check';
import { isKeepaliveError } from '../../src/util/errors.js';
import {
  computeTracking,
  initialScriptState,
  scriptStatus,
  scriptStep,
  trackedContribution,
  trackingEvents,
  type ScriptConfig,
  type TrackedObject,
} from '../../src/vrrp/tracking.js';

const obj = (weight: number, ok: boolean | null, reverse = false, name = `o${weight}`): TrackedObject => ({ name, weight, ok, reverse });

test('contribution: positive weight added while OK, negative weight added while failed', (t) => {
  t.is(trackedContribution(obj(10, true)), 10);
  t.is(trackedContribution(obj(10, false)), 0);
  t.is(trackedContribution(obj(-20, true)), 0);
  t.is(trackedContribution(obj(-20, false)), -20);
});

test('contribution: reverse negates it; no result yet and weight 0 contribute nothing', (t) => {
  t.is(trackedContribution(obj(10, true, true)), -10);
  t.is(trackedContribution(obj(10, false, true)), 0);
  t.is(trackedContribution(obj(-20, false, true)), 20);
  t.is(trackedContribution(obj(10, null)), 0);
  t.is(trackedContribution(obj(0, false)), 0);
});

test('effective priority is the sum, clamped to 1..254', (t) => {
  t.is(computeTracking(100, [obj(10, true), obj(-20, false), obj(5, false)]).priority, 90);
  t.is(computeTracking(250, [obj(10, true)]).priority, 254, 'only the configured owner may use 255');
  t.is(computeTracking(5, [obj(-20, false)]).priority, 1);
});

test('the address owner keeps 255 whatever the tracked objects say', (t) => {
  t.is(computeTracking(255, [obj(-50, false)]).priority, 255);
});

test('weight 0 objects put the instance in FAULT when failed or not yet known', (t) => {
  const r = computeTracking(100, [obj(0, false, false, 'if:eth1'), obj(0, true, false, 'if:eth2'), obj(0, null, false, 'script:chk')]);
  t.deepEqual(r.faults, ['if:eth1', 'script:chk']);
  t.is(r.priority, 100);
  t.deepEqual(computeTracking(255, [obj(0, false, false, 'x')]).faults, ['x'], 'the owner can still fault');
});

test('weights outside -253..253 are rejected', (t) => {
  const err = t.throws(() => computeTracking(100, [obj(254, true)]));
  t.true(isKeepaliveError(err, 'E_CONFIG_INVALID'));
});

test('trackingEvents: the state-machine events between two tracking results', (t) => {
  const first = computeTracking(100, [obj(0, false, false, 'if:eth1'), obj(10, true, false, 's')]);
  t.deepEqual(trackingEvents(null, first), [
    { type: 'fault', source: 'if:eth1' },
    { type: 'priority', priority: 110 },
  ]);
  const second = computeTracking(100, [obj(0, true, false, 'if:eth1'), obj(10, true, false, 's')]);
  t.deepEqual(trackingEvents(first, second), [{ type: 'fault_clear', source: 'if:eth1' }]);
  const third = computeTracking(100, [obj(0, true, false, 'if:eth1'), obj(10, false, false, 's')]);
  t.deepEqual(trackingEvents(second, third), [{ type: 'priority', priority: 100 }]);
  t.deepEqual(trackingEvents(third, third), []);
});

test('script: initially unknown, one success is enough (keepalived "rise - 1")', (t) => {
  const cfg: ScriptConfig = { rise: 3, fall: 2 };
  const s0 = initialScriptState(cfg);
  t.is(scriptStatus(cfg, s0), null);
  const r = scriptStep(cfg, s0, true);
  t.true(r.ok);
  t.true(r.changed);
});

test('script: initially unknown, the first failure reports failed', (t) => {
  const cfg: ScriptConfig = { rise: 3, fall: 2 };
  const r = scriptStep(cfg, initialScriptState(cfg), false);
  t.false(r.ok);
  t.true(r.changed);
});

test('script: fall consecutive failures to fail, rise consecutive successes to recover', (t) => {
  const cfg: ScriptConfig = { rise: 3, fall: 2 };
  let s = scriptStep(cfg, initialScriptState(cfg), true).state;
  const seq: Array<[boolean, boolean, boolean]> = [
    // [success, expected ok, expected changed]
    [false, true, false],
    [true, true, false], // a success in between resets the failure count
    [false, true, false],
    [false, false, true],
    [true, false, false],
    [true, false, false],
    [false, false, false], // a failure in between resets the success count
    [true, false, false],
    [true, false, false],
    [true, true, true],
  ];
  for (const [success, ok, changed] of seq) {
    const r = scriptStep(cfg, s, success);
    t.deepEqual([r.ok, r.changed], [ok, changed]);
    s = r.state;
  }
});

test('script: init_fail starts failed and needs rise successes', (t) => {
  const cfg: ScriptConfig = { rise: 2, fall: 1, initFail: true };
  const s0 = initialScriptState(cfg);
  t.false(scriptStatus(cfg, s0));
  const f = scriptStep(cfg, s0, false);
  t.deepEqual([f.ok, f.changed], [false, false]);
  const a = scriptStep(cfg, s0, true);
  t.deepEqual([a.ok, a.changed], [false, false]);
  const b = scriptStep(cfg, a.state, true);
  t.deepEqual([b.ok, b.changed], [true, true]);
});

test('script: rise and fall must be at least 1', (t) => {
  t.true(isKeepaliveError(t.throws(() => initialScriptState({ rise: 0, fall: 1 })), 'E_CONFIG_INVALID'));
});

test('property: the rise/fall counter behaves as "N consecutive results flip the status"', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 5 }),
      fc.boolean(),
      fc.array(fc.boolean(), { maxLength: 60 }),
      (rise, fall, initFail, results) => {
        const cfg: ScriptConfig = { rise, fall, initFail };
        let s = initialScriptState(cfg);
        // Reference model: status plus the length of the current run of results against it.
        let status: boolean | null = initFail ? false : null;
        let run = 0;
        for (const success of results) {
          const before: boolean | null = status;
          if (status === null) status = success;
          else if (success !== status) {
            run += 1;
            if (run >= (status ? fall : rise)) status = success;
          }
          if (status === success || status !== before) run = 0;
          const r = scriptStep(cfg, s, success);
          if (r.ok !== status || r.changed !== (before !== status)) return false;
          s = r.state;
        }
        return true;
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});
