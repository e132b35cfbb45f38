import test from 'ava';
import fc from 'fast-check';
import {
  effectiveQuorum,
  evaluatePool,
  type CheckHealth,
  type PoolParams,
  type PoolResult,
  type PoolState,
  type RealServerStatus,
  rampScale,
  rampWeight,
  RAMP_STEPS,
  stopPool,
} from '../../src/lvs/pool.js';

function rs(n: number, weight: number, health: CheckHealth, extra: Partial<RealServerStatus> = {}): RealServerStatus {
  return { id: `10.0.0.${n}:80`, address: `10.0.0.${n}`, port: 80, weight, health, ...extra };
}

const id = (n: number): string => `10.0.0.${n}:80`;

const base: PoolParams = {
  quorum: 1,
  hysteresis: 0,
  alpha: false,
  omega: false,
  sorryServerInhibit: false,
  depoolThreshold: 0,
};

const sorry = { id: '10.9.9.9:80', address: '10.9.9.9', port: 80 };

/** Evaluate a sequence of server lists, threading the state. */
function run(params: PoolParams, steps: RealServerStatus[][]): PoolResult[] {
  let state: PoolState | null = null;
  return steps.map((servers) => {
    const r = evaluatePool(params, servers, state);
    state = r.state;
    return r;
  });
}

/** "id:weight" list of the destinations. */
function dests(r: PoolResult): string[] {
  return r.destinations.map((d) => `${d.address}:${d.weight}`);
}

function types(r: PoolResult): string[] {
  return r.events.map((e) => ('id' in e ? `${e.type} ${e.id}` : e.type));
}

/** Four servers of weight 2 with the given healths ('u'p, 'd'own, '?' unknown). */
function four(h: string, extra: Partial<RealServerStatus> = {}): RealServerStatus[] {
  const map: Record<string, CheckHealth> = { u: 'up', d: 'down', '?': 'unknown' };
  return [...h].map((c, i) => rs(i + 1, 2, map[c]!, extra));
}

// ---- destination list ----------------------------------------------------------------------

test('down servers are removed; up ones listed with their weight in input order', (t) => {
  const [r] = run(base, [[rs(1, 3, 'up'), rs(2, 1, 'down'), rs(3, 5, 'up')]]);
  t.deepEqual(dests(r!), ['10.0.0.1:3', '10.0.0.3:5']);
  t.is(r!.weightSum, 8);
  t.true(r!.destinations.every((d) => d.kind === 'real'));
});

test('inhibit_on_failure keeps a failed server at weight 0', (t) => {
  const [r] = run(base, [[rs(1, 3, 'up'), rs(2, 4, 'down', { inhibitOnFailure: true }), rs(3, 1, 'down')]]);
  t.deepEqual(dests(r!), ['10.0.0.1:3', '10.0.0.2:0']);
  t.is(r!.weightSum, 3);
});

test('dynamic weight (MISC_CHECK) replaces the configured weight, clamped at 0', (t) => {
  const [r] = run(base, [[rs(1, 3, 'up', { dynamicWeight: 7 }), rs(2, 3, 'up', { dynamicWeight: -4 }), rs(3, 3, 'up', { dynamicWeight: 0 })]]);
  t.deepEqual(dests(r!), ['10.0.0.1:7', '10.0.0.2:0', '10.0.0.3:0']);
  t.is(r!.weightSum, 7);
});

test('without alpha a server is up until its first failure; rs events on changes only', (t) => {
  const [r1, r2, r3, r4] = run(base, [four('??uu'), four('d?uu'), four('d?uu'), four('u?ud')]);
  t.deepEqual(dests(r1!), ['10.0.0.1:2', '10.0.0.2:2', '10.0.0.3:2', '10.0.0.4:2']);
  t.deepEqual(types(r1!), ['quorum_up']);
  t.deepEqual(dests(r2!), ['10.0.0.2:2', '10.0.0.3:2', '10.0.0.4:2']);
  t.deepEqual(types(r2!), [`rs_down ${id(1)}`]);
  t.deepEqual(types(r3!), []);
  t.deepEqual(types(r4!), [`rs_up ${id(1)}`, `rs_down ${id(4)}`]);
});

test('alpha: servers start down until their first successful check', (t) => {
  const params = { ...base, alpha: true };
  const [r1, r2, r3] = run(params, [four('????'), four('u???'), four('u?d?')]);
  t.deepEqual(dests(r1!), []);
  t.deepEqual(types(r1!), []); // starting with quorum down and no sorry server is silent
  t.false(r1!.quorumUp);
  t.deepEqual(dests(r2!), ['10.0.0.1:2']);
  t.deepEqual(types(r2!), [`rs_up ${id(1)}`, 'quorum_up']);
  // a known server whose check has not reported keeps its state; a failure of a server
  // that was never up is no transition
  t.deepEqual(dests(r3!), ['10.0.0.1:2']);
  t.deepEqual(types(r3!), []);
});

test('a server added later starts as alpha says; a removed one just disappears', (t) => {
  const [, r2] = run({ ...base, alpha: true }, [[rs(1, 1, 'up')], [rs(1, 1, 'up'), rs(2, 1, 'unknown')]]);
  t.deepEqual(dests(r2!), ['10.0.0.1:1']);
  const [, s2, s3] = run(base, [[rs(1, 1, 'up')], [rs(1, 1, 'up'), rs(2, 1, 'unknown')], [rs(2, 1, 'up')]]);
  t.deepEqual(dests(s2!), ['10.0.0.1:1', '10.0.0.2:1']);
  t.deepEqual(dests(s3!), ['10.0.0.2:1']);
  t.deepEqual(types(s3!), []);
  t.deepEqual(s3!.state.known, [id(2)]);
});

// ---- quorum --------------------------------------------------------------------------------

test('quorum with hysteresis: lost below quorum - h, regained at quorum + h', (t) => {
  // quorum 6, hysteresis 2: up at >= 8, down at < 4
  const params = { ...base, quorum: 6, hysteresis: 2 };
  const seq = ['uuuu', 'duuu', 'dduu', 'dddu', 'ddud', 'duud', 'uuud', 'uuuu', 'uudd', 'uddd'];
  const results = run(params, seq.map((h) => four(h)));
  const q = results.map((r) => `${r.weightSum}${r.quorumUp ? '+' : '-'}`);
  t.deepEqual(q, ['8+', '6+', '4+', '2-', '2-', '4-', '6-', '8+', '4+', '2-']);
  const quorumEvents = results.map((r) => r.events.filter((e) => e.type.startsWith('quorum')));
  t.deepEqual(quorumEvents[0], [{ type: 'quorum_up', initial: true, stopping: false, weightSum: 8, threshold: 8 }]);
  t.deepEqual(quorumEvents[3], [{ type: 'quorum_down', initial: false, stopping: false, weightSum: 2, threshold: 4 }]);
  t.deepEqual(quorumEvents[7], [{ type: 'quorum_up', initial: false, stopping: false, weightSum: 8, threshold: 8 }]);
  t.deepEqual(quorumEvents[9]!.map((e) => e.type), ['quorum_down']);
  for (const i of [1, 2, 4, 5, 6, 8]) t.deepEqual(quorumEvents[i], [], `step ${i}`);
});

test('starting between the thresholds means starting down (quorum starts down)', (t) => {
  const params = { ...base, quorum: 6, hysteresis: 2 };
  const [r1, r2] = run(params, [four('uuud'), four('uuud')]);
  t.false(r1!.quorumUp);
  t.deepEqual(types(r1!), []);
  t.false(r2!.quorumUp);
  // without a sorry server the live servers stay in the pool anyway
  t.deepEqual(dests(r1!), ['10.0.0.1:2', '10.0.0.2:2', '10.0.0.3:2']);
});

test('effectiveQuorum: quorum capped at the total weight, hysteresis below quorum', (t) => {
  t.deepEqual(effectiveQuorum({ quorum: 100, hysteresis: 0 }, four('uuuu')), { quorum: 8, hysteresis: 0 });
  t.deepEqual(effectiveQuorum({ quorum: 3, hysteresis: 3 }, four('uuuu')), { quorum: 3, hysteresis: 2 });
  t.deepEqual(effectiveQuorum({ quorum: 5, hysteresis: 1 }, []), { quorum: 1, hysteresis: 0 });
  // an over-large quorum does not keep the pool down forever
  const [r] = run({ ...base, quorum: 100 }, [four('uuuu')]);
  t.true(r!.quorumUp);
});

// ---- sorry server ------------------------------------------------------------------------

test('sorry server replaces the pool while quorum is down', (t) => {
  const params = { ...base, quorum: 4, sorryServer: sorry };
  const servers = (h: string): RealServerStatus[] => [
    rs(1, 2, h[0] === 'u' ? 'up' : 'down'),
    rs(2, 2, h[1] === 'u' ? 'up' : 'down', { inhibitOnFailure: true }),
    rs(3, 2, h[2] === 'u' ? 'up' : 'down'),
  ];
  const [r1, r2, r3, r4] = run(params, [servers('uuu'), servers('uud'), servers('udd'), servers('uud')]);
  t.deepEqual(dests(r1!), ['10.0.0.1:2', '10.0.0.2:2', '10.0.0.3:2']);
  t.false(r1!.sorryActive);
  t.deepEqual(dests(r2!), ['10.0.0.1:2', '10.0.0.2:2']);
  // weight 2 < 4: quorum lost. Live servers leave (inhibit ones go to weight 0), sorry in.
  t.true(r3!.sorryActive);
  t.deepEqual(dests(r3!), ['10.0.0.2:0', '10.9.9.9:1']);
  t.is(r3!.destinations.at(-1)!.kind, 'sorry');
  t.deepEqual(types(r3!), [`rs_down ${id(2)}`, 'quorum_down']);
  // regained: sorry out, live servers back
  t.false(r4!.sorryActive);
  t.deepEqual(dests(r4!), ['10.0.0.1:2', '10.0.0.2:2']);
  t.deepEqual(types(r4!), [`rs_up ${id(2)}`, 'quorum_up']);
});

test('sorry_server_inhibit keeps the sorry server at weight 0 while not needed', (t) => {
  const params = { ...base, quorum: 2, sorryServer: { ...sorry, weight: 5 }, sorryServerInhibit: true };
  const [r1, r2] = run(params, [[rs(1, 2, 'up')], [rs(1, 2, 'down')]]);
  t.deepEqual(dests(r1!), ['10.0.0.1:2', '10.9.9.9:0']);
  t.deepEqual(dests(r2!), ['10.9.9.9:5']);
});

test('with a sorry server, starting without quorum is announced and the sorry server goes in', (t) => {
  const params = { ...base, alpha: true, quorum: 2, sorryServer: sorry };
  const [r1, r2, r3] = run(params, [four('????'), four('u???'), four('uu??')]);
  t.true(r1!.sorryActive);
  t.deepEqual(dests(r1!), ['10.9.9.9:1']);
  t.deepEqual(r1!.events, [{ type: 'quorum_down', initial: true, stopping: false, weightSum: 0, threshold: 2 }]);
  // weight 2 >= quorum 2: a live server is enough, sorry leaves
  t.false(r2!.sorryActive);
  t.deepEqual(dests(r2!), ['10.0.0.1:2']);
  t.deepEqual(types(r2!), [`rs_up ${id(1)}`, 'quorum_up']);
  t.deepEqual(types(r3!), [`rs_up ${id(2)}`]);
});

test('a sorry server that is also a real server is listed once', (t) => {
  const params = { ...base, quorum: 4, sorryServer: { id: id(2), address: '10.0.0.2', port: 80, weight: 9 } };
  const [r1, r2] = run(params, [[rs(1, 2, 'up'), rs(2, 2, 'up')], [rs(1, 2, 'up'), rs(2, 2, 'down')]]);
  t.deepEqual(dests(r1!), ['10.0.0.1:2', '10.0.0.2:2']);
  t.deepEqual(dests(r2!), ['10.0.0.2:9']);
});

// ---- depool threshold (PyBal) ----------------------------------------------------------

test('depool threshold: failing servers beyond the threshold stay pooled until others recover', (t) => {
  const params = { ...base, depoolThreshold: 0.5 };
  const results = run(params, [four('uuuu'), four('duuu'), four('dduu'), four('dddu'), four('dddd'), four('uddd'), four('uudd')]);
  const [, r1, r2, r3, r4, r5, r6] = results;
  t.deepEqual(dests(r1!), ['10.0.0.2:2', '10.0.0.3:2', '10.0.0.4:2']);
  t.deepEqual(dests(r2!), ['10.0.0.3:2', '10.0.0.4:2']);
  // only 1 of 4 would be up (< 0.5 * 4): 3 stays pooled at full weight
  t.deepEqual(dests(r3!), ['10.0.0.3:2', '10.0.0.4:2']);
  t.deepEqual(types(r3!), [`rs_down ${id(3)}`, `kept_despite_failing ${id(3)}`]);
  t.deepEqual(r3!.keptDespiteFailing, [id(3)]);
  t.is(r3!.weightSum, 2); // kept servers are not alive: no quorum weight
  t.deepEqual(dests(r4!), ['10.0.0.3:2', '10.0.0.4:2']);
  t.deepEqual(r4!.keptDespiteFailing, [id(3), id(4)]);
  t.true(r4!.quorumUp === false);
  // one up again: 1 < 2, the failing ones stay
  t.deepEqual(dests(r5!), ['10.0.0.1:2', '10.0.0.3:2', '10.0.0.4:2']);
  t.deepEqual(r5!.keptDespiteFailing, [id(3), id(4)]);
  // two up: now the kept ones can go, oldest first
  t.deepEqual(dests(r6!), ['10.0.0.1:2', '10.0.0.2:2']);
  t.deepEqual(types(r6!), [`rs_up ${id(2)}`, `kept_released ${id(3)}`, `kept_released ${id(4)}`]);
  t.deepEqual(r6!.keptDespiteFailing, []);
});

test('depool threshold: simultaneous failures are handled one by one in list order', (t) => {
  const [, r] = run({ ...base, depoolThreshold: 0.5 }, [four('uuuu'), four('dddd')]);
  t.deepEqual(r!.keptDespiteFailing, [id(3), id(4)]);
  t.deepEqual(dests(r!), ['10.0.0.3:2', '10.0.0.4:2']);
});

test('depool threshold: a kept server that recovers is simply alive again', (t) => {
  const [, , r] = run({ ...base, depoolThreshold: 0.75 }, [four('uuuu'), four('ddud'), four('dduu')]);
  // step 2 (need 3 of 4 up): 1 is depooled (3 still up), then 2 and 4 are kept; step 3: 4 recovers
  t.deepEqual(r!.keptDespiteFailing, [id(2)]);
  t.deepEqual(dests(r!), ['10.0.0.2:2', '10.0.0.3:2', '10.0.0.4:2']);
});

test('depool threshold: off at 0, and servers failing at start-up are never kept', (t) => {
  const [, r] = run(base, [four('uuuu'), four('dddd')]);
  t.deepEqual(dests(r!), []);
  t.deepEqual(r!.keptDespiteFailing, []);
  const [s] = run({ ...base, depoolThreshold: 1 }, [four('dddd')]);
  t.deepEqual(dests(s!), []);
  // with threshold 1, any failure of a pooled server is refused
  const [, u] = run({ ...base, depoolThreshold: 1 }, [four('uuuu'), four('uudu')]);
  t.deepEqual(u!.keptDespiteFailing, [id(3)]);
  t.deepEqual(dests(u!), ['10.0.0.1:2', '10.0.0.2:2', '10.0.0.3:2', '10.0.0.4:2']);
});

// ---- runtime overrides (weight / drain / disable) ----------------------------------------

test('override weight replaces the configured and the dynamic weight while the server is up', (t) => {
  const [r1, r2] = run(base, [
    [rs(1, 3, 'up', { override: { action: 'weight', weight: 7 } }), rs(2, 3, 'up', { dynamicWeight: 5, override: { action: 'weight', weight: 2 } })],
    [rs(1, 3, 'down', { override: { action: 'weight', weight: 7 } }), rs(2, 3, 'up', { override: { action: 'weight', weight: -3 } })],
  ]);
  t.deepEqual(dests(r1!), ['10.0.0.1:7', '10.0.0.2:2']);
  t.is(r1!.weightSum, 9);
  // a failed server leaves the pool whatever its override; a negative weight is 0
  t.deepEqual(dests(r2!), ['10.0.0.2:0']);
  t.is(r2!.destinations[0]!.targetWeight, 0);
});

test('drain: weight 0 in the list (no new connections, open ones finish), no quorum weight, health still reported', (t) => {
  const params = { ...base, quorum: 2, sorryServer: sorry };
  const drained = { override: { action: 'drain' as const } };
  const [r1, r2, r3] = run(params, [
    [rs(1, 2, 'up'), rs(2, 2, 'up')],
    [rs(1, 2, 'up', drained), rs(2, 2, 'up')],
    [rs(1, 2, 'down', drained), rs(2, 2, 'up', drained)],
  ]);
  t.deepEqual(dests(r1!), ['10.0.0.1:2', '10.0.0.2:2']);
  t.deepEqual(dests(r2!), ['10.0.0.1:0', '10.0.0.2:2']);
  t.deepEqual(types(r2!), [], 'draining is no health event');
  t.is(r2!.weightSum, 2);
  // both drained: no weight left, quorum lost, the sorry server takes over; the failure of the
  // drained server is still reported
  t.deepEqual(types(r3!), [`rs_down ${id(1)}`, 'quorum_down']);
  t.true(r3!.sorryActive);
  t.deepEqual(dests(r3!), ['10.9.9.9:1']);
});

test('disable: out of the pool as a failed server (weight 0 with inhibit_on_failure), no quorum weight, no health event', (t) => {
  const off = { override: { action: 'disable' as const } };
  const [r1, r2, r3] = run({ ...base, quorum: 3 }, [
    [rs(1, 2, 'up'), rs(2, 2, 'up'), rs(3, 2, 'up', { inhibitOnFailure: true })],
    [rs(1, 2, 'up', off), rs(2, 2, 'up'), rs(3, 2, 'up', { inhibitOnFailure: true, ...off })],
    [rs(1, 2, 'down', off), rs(2, 2, 'up'), rs(3, 2, 'up')],
  ]);
  t.deepEqual(dests(r1!), ['10.0.0.1:2', '10.0.0.2:2', '10.0.0.3:2']);
  t.deepEqual(dests(r2!), ['10.0.0.2:2', '10.0.0.3:0']);
  t.deepEqual(types(r2!), ['quorum_down'], 'weight 2 of alive, enabled servers < quorum 3');
  t.is(r2!.weightSum, 2);
  t.deepEqual(types(r3!), [`rs_down ${id(1)}`, 'quorum_up']);
  t.deepEqual(dests(r3!), ['10.0.0.2:2', '10.0.0.3:2']);
});

test('disable and the depool threshold: a disabled server is not counted and never kept', (t) => {
  const off = { override: { action: 'disable' as const } };
  const h = (c: string) => (c === 'u' ? 'up' : 'down') as CheckHealth;
  const servers = (hs: string, dis: number[]) => [...hs].map((c, i) => rs(i + 1, 2, h(c), dis.includes(i + 1) ? off : {}));
  // threshold 0.5 of 4 = 2. Two disabled: N = 2, need 1 up. Server 3 failing leaves 1 up: depooled.
  const [, r] = run({ ...base, depoolThreshold: 0.5 }, [servers('uuuu', [1, 2]), servers('uudu', [1, 2])]);
  t.deepEqual(r!.keptDespiteFailing, []);
  t.deepEqual(dests(r!), ['10.0.0.4:2']);
  // a kept server the operator disables is released from the hold and leaves
  const [, k1, k2] = run({ ...base, depoolThreshold: 1 }, [servers('uuuu', []), servers('uudu', []), servers('uudu', [3])]);
  t.deepEqual(k1!.keptDespiteFailing, [id(3)]);
  t.deepEqual(k2!.keptDespiteFailing, []);
  t.deepEqual(dests(k2!), ['10.0.0.1:2', '10.0.0.2:2', '10.0.0.4:2']);
});

// ---- slow start --------------------------------------------------------------------------

test('rampWeight: linear from 1 to target x scale; rampScale gives at least RAMP_STEPS steps', (t) => {
  t.is(rampScale(1), RAMP_STEPS);
  t.is(rampScale(3), Math.ceil(RAMP_STEPS / 3));
  t.is(rampScale(RAMP_STEPS), 1);
  t.is(rampScale(100), 1);
  t.is(rampWeight(1, 20, 0, 10_000), 1);
  t.is(rampWeight(1, 20, 5_000, 10_000), 10);
  t.is(rampWeight(1, 20, 9_999, 10_000), 20);
  t.is(rampWeight(1, 20, 10_000, 10_000), 20);
  t.is(rampWeight(100, 1, 2_500, 10_000), 25);
  t.is(rampWeight(100, 1, -5, 10_000), 1);
  const steps = new Set(Array.from({ length: 101 }, (_, i) => rampWeight(1, rampScale(1), i * 100, 10_000)));
  t.true(steps.size >= RAMP_STEPS);
});

test('slow start: a recovered server ramps from 1 to its weight over slowStartMs, the others scaled alike', (t) => {
  const params = { ...base, slowStartMs: 10_000 };
  const step = (h: string, now: number, prev: PoolState | null) => evaluatePool(params, [rs(1, 1, h[0] === 'u' ? 'up' : 'down'), rs(2, 1, h[1] === 'u' ? 'up' : 'down')], prev, now);
  const start = step('uu', 0, null);
  t.deepEqual(dests(start), ['10.0.0.1:1', '10.0.0.2:1'], 'no ramp at start-up');
  t.is(start.nextEvaluationAt, null);
  const down = step('du', 1_000, start.state);
  t.deepEqual(dests(down), ['10.0.0.2:1']);
  const back = step('uu', 2_000, down.state);
  t.deepEqual(dests(back), ['10.0.0.1:1', `10.0.0.2:${RAMP_STEPS}`]);
  t.deepEqual(back.destinations[0]!.ramp, { id: id(1), since: 2_000, until: 12_000 });
  t.is(back.destinations[0]!.targetWeight, 1);
  t.is(back.nextEvaluationAt, 2_000 + 10_000 / RAMP_STEPS);
  t.is(back.weightSum, 2, 'the quorum counts full weights');
  const half = step('uu', 7_000, back.state);
  t.deepEqual(dests(half), [`10.0.0.1:${RAMP_STEPS / 2}`, `10.0.0.2:${RAMP_STEPS}`]);
  const late = step('uu', 11_990, half.state);
  t.is(late.nextEvaluationAt, 12_000, 'the last evaluation lands on the end of the ramp');
  const done = step('uu', 12_000, late.state);
  t.deepEqual(dests(done), ['10.0.0.1:1', '10.0.0.2:1'], 'ramp over: unscaled weights');
  t.is(done.nextEvaluationAt, null);
  t.is(done.destinations[0]!.ramp, undefined);
});

test('slow start: a server added later, enabled or un-drained ramps; failing mid-ramp ends the ramp; off by default', (t) => {
  const params = { ...base, slowStartMs: 4_000 };
  const a = evaluatePool(params, [rs(1, 50, 'up')], null, 0);
  const added = evaluatePool(params, [rs(1, 50, 'up'), rs(2, 50, 'up')], a.state, 1_000);
  t.deepEqual(dests(added), ['10.0.0.1:50', '10.0.0.2:1'], 'weight 50 needs no scaling');
  const drained = evaluatePool(params, [rs(1, 50, 'up', { override: { action: 'drain' } }), rs(2, 50, 'up')], added.state, 2_000);
  t.deepEqual(dests(drained), ['10.0.0.1:0', '10.0.0.2:13']);
  const undrained = evaluatePool(params, [rs(1, 50, 'up'), rs(2, 50, 'up')], drained.state, 3_000);
  t.deepEqual(dests(undrained), ['10.0.0.1:1', '10.0.0.2:25']);
  const failed = evaluatePool(params, [rs(1, 50, 'down'), rs(2, 50, 'up')], undrained.state, 3_500);
  t.deepEqual(dests(failed), ['10.0.0.2:32']);
  t.deepEqual(failed.state.ramps!.map((r) => r.id), [id(2)]);
  // without slowStartMs nothing ramps
  const [, , r] = run(base, [[rs(1, 1, 'up')], [rs(1, 1, 'down')], [rs(1, 1, 'up')]]);
  t.deepEqual(dests(r!), ['10.0.0.1:1']);
  t.is(r!.nextEvaluationAt, null);
});

// ---- omega / shutdown ----------------------------------------------------------------------

test('stopPool: with omega, rs_down for alive servers then quorum_down; without, nothing', (t) => {
  const servers = four('uudu');
  const [r] = run({ ...base, quorum: 4, hysteresis: 1 }, [servers]);
  t.deepEqual(stopPool({ ...base, quorum: 4, hysteresis: 1 }, servers, r!.state), []);
  const events = stopPool({ ...base, quorum: 4, hysteresis: 1, omega: true }, servers, r!.state);
  t.deepEqual(events, [
    { type: 'rs_down', id: id(1), stopping: true },
    { type: 'rs_down', id: id(2), stopping: true },
    { type: 'rs_down', id: id(4), stopping: true },
    { type: 'quorum_down', initial: false, stopping: true, weightSum: 0, threshold: 3 },
  ]);
});

// ---- validation and invariants -------------------------------------------------------

test('invalid parameters are rejected', (t) => {
  t.throws(() => evaluatePool({ ...base, quorum: 0 }, [], null), { instanceOf: RangeError });
  t.throws(() => evaluatePool({ ...base, hysteresis: -1 }, [], null), { instanceOf: RangeError });
  t.throws(() => evaluatePool({ ...base, depoolThreshold: 1.5 }, [], null), { instanceOf: RangeError });
  t.throws(() => evaluatePool(base, [rs(1, 1, 'up'), rs(1, 2, 'up')], null), { instanceOf: RangeError });
  t.throws(() => evaluatePool({ ...base, slowStartMs: -1 }, [], null), { instanceOf: RangeError });
});

test('property: quorum state, sorry server and destinations obey the rules for any history', (t) => {
  const health = fc.constantFrom<CheckHealth>('up', 'down', 'unknown');
  const step = fc.array(fc.record({ health, dyn: fc.option(fc.integer({ min: -2, max: 6 }), { nil: undefined }) }), {
    minLength: 5,
    maxLength: 5,
  });
  const config = fc.record({
    quorum: fc.integer({ min: 1, max: 12 }),
    hysteresis: fc.integer({ min: 0, max: 4 }),
    alpha: fc.boolean(),
    withSorry: fc.boolean(),
    depoolThreshold: fc.constantFrom(0, 0.4, 0.6, 1),
  });
  fc.assert(
    fc.property(config, fc.array(step, { minLength: 1, maxLength: 12 }), (cfg, steps) => {
      const params: PoolParams = {
        ...base,
        quorum: cfg.quorum,
        hysteresis: cfg.hysteresis,
        alpha: cfg.alpha,
        depoolThreshold: cfg.depoolThreshold,
        sorryServer: cfg.withSorry ? sorry : undefined,
      };
      let state: PoolState | null = null;
      for (const s of steps) {
        const servers = s.map((x, i) => rs(i + 1, i + 1, x.health, { dynamicWeight: x.dyn, inhibitOnFailure: i % 2 === 0 }));
        const { quorum, hysteresis } = effectiveQuorum(params, servers);
        const before: boolean = state?.quorumUp ?? false;
        const r = evaluatePool(params, servers, state);
        // hysteresis rule
        if (!before) t.is(r.quorumUp, r.weightSum >= quorum + hysteresis);
        else t.is(r.quorumUp, !(r.weightSum === 0 || r.weightSum < quorum - hysteresis));
        t.is(r.sorryActive, !r.quorumUp && cfg.withSorry);
        t.is(r.events.filter((e) => e.type === 'quorum_up').length, !before && r.quorumUp ? 1 : 0);
        // destination rules
        const ids = r.destinations.map((d) => d.id);
        t.is(new Set(ids).size, ids.length);
        for (const d of r.destinations) {
          if (d.kind === 'sorry') continue;
          const srv = servers.find((x) => x.id === d.id)!;
          const pooled = r.state.alive.includes(d.id) || r.keptDespiteFailing.includes(d.id);
          if (r.sorryActive || !pooled) {
            t.true(srv.inhibitOnFailure === true);
            t.is(d.weight, 0);
          }
        }
        if (!r.sorryActive) {
          for (const a of r.state.alive) t.true(ids.includes(a));
        }
        state = r.state;
      }
    }),
    { seed: 42, numRuns: 300 },
  );
});
