import test from 'ava';
import { createServer, type AddressInfo } from 'node:net';
import type { CheckConfig, CheckType } from '../../src/config/types.js';
import type { Checker, CheckResult } from '../../src/lvs/check/types.js';
import { HealthRunner, type CheckAttempt, type CheckHealth, type HealthRunnerOptions } from '../../src/lvs/health.js';

// ---------------------------------------------------------------------------------------------
// Scripted fake checkers on a fake clock

type Step = CheckResult | 'hang';

/** A checker that answers from a script (then repeats the last step), recording when it ran. */
class ScriptedChecker implements Checker {
  readonly calls: number[] = [];
  readonly signals: AbortSignal[] = [];
  #pending: Array<(r: CheckResult) => void> = [];
  constructor(readonly type: CheckType, private readonly clock: FakeClock, private readonly script: Step[]) {}
  run(signal: AbortSignal): Promise<CheckResult> {
    this.calls.push(this.clock.now());
    this.signals.push(signal);
    const step = this.script[Math.min(this.calls.length - 1, this.script.length - 1)]!;
    if (step !== 'hang') return Promise.resolve(step);
    return new Promise((resolve) => {
      this.#pending.push(resolve);
      signal.addEventListener('abort', () => resolve({ ok: false, detail: 'aborted' }), { once: true });
    });
  }
  /** Finishes the oldest hanging attempt. */
  finish(r: CheckResult): void { this.#pending.shift()!(r); }
}

const OK: CheckResult = { ok: true, detail: 'fine' };
const FAIL: CheckResult = { ok: false, detail: 'broken' };

function check(type: CheckType, extra: Partial<CheckConfig> = {}): CheckConfig {
  const common = { connect_timeout: 5, retry: 0, delay_before_retry: 1, delay_loop: 10, warmup: 0, connect_ip: '127.0.0.1', connect_port: 80 };
  switch (type) {
    case 'FILE_CHECK': return { type, ...common, file: '/nonexistent', weight: 0, ...extra } as CheckConfig;
    case 'MISC_CHECK': return { type, ...common, misc_path: '/bin/true', misc_timeout: 5, misc_dynamic: true, ...extra } as CheckConfig;
    default: return { type: 'TCP_CHECK', ...common, ...extra } as CheckConfig;
  }
}

interface Change { at: number; health: CheckHealth; weight: number | undefined; detail: string }

function setup(checks: CheckConfig[], scripts: Step[][], extra: Partial<HealthRunnerOptions> = {}) {
  const clock = new FakeClock();
  const checkers = checks.map((c, i) => new ScriptedChecker(c.type, clock, scripts[i]!));
  const changes: Change[] = [];
  const attempts: CheckAttempt[] = [];
  const runner = new HealthRunner({
    checks,
    weight: 5,
    clock,
    random: () => 0,
    checkerFactory: (_cfg, i) => checkers[i]!,
    onChange: (health, weight, detail) => changes.push({ at: clock.now(), health, weight, detail }),
    onAttempt: (a) => attempts.push(a),
    ...extra,
  });
  return { clock, checkers, changes, attempts, runner };
}

/** Lets resolved checker promises reach the runner. */
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * A manual clock whose advance() is async: it stops at every timer deadline, runs the timer and
 * lets the promises it started settle (setImmediate) before time moves on, so an attempt that
 * resolves at once finishes at the instant it started, as with a real fast checker.
 */
class FakeClock {
  #now = 0;
  #seq = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  now(): number { return this.#now; }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(handle: unknown): void { this.#timers.delete(handle as number); }
  get pendingTimers(): number { return this.#timers.size; }
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await flush();
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
      await flush();
    }
    this.#now = end;
    await flush();
  }
}

const advance = (clock: FakeClock, ms: number): Promise<void> => clock.advance(ms);

// ---------------------------------------------------------------------------------------------

test('warmup: the first attempt waits random() x warmup', async (t) => {
  const { clock, checkers, runner } = setup([check('TCP_CHECK', { warmup: 10 })], [[OK]], { random: () => 0.35 });
  runner.start();
  await advance(clock, 3400);
  t.deepEqual(checkers[0]!.calls, []);
  await advance(clock, 200);
  t.deepEqual(checkers[0]!.calls, [3500]);
});

test('unknown until the first result; up on the first success, reported once; then every delay_loop', async (t) => {
  const { clock, checkers, changes, runner } = setup([check('TCP_CHECK')], [[OK]]);
  t.is(runner.health, 'unknown');
  runner.start();
  runner.start(); // idempotent
  t.is(runner.health, 'unknown');
  await advance(clock, 35_000);
  t.deepEqual(checkers[0]!.calls, [0, 10_000, 20_000, 30_000]);
  t.deepEqual(changes.map((c) => [c.at, c.health, c.weight]), [[0, 'up', undefined]]);
  t.regex(changes[0]!.detail, /TCP_CHECK\[0\]: fine/);
  runner.stop();
});

test('retry: exactly `retry` retries spaced by delay_before_retry, then down; no retries while down', async (t) => {
  const cfg = check('TCP_CHECK', { retry: 2, delay_before_retry: 1, delay_loop: 10 });
  const { clock, checkers, changes, runner, attempts } = setup([cfg], [[OK, FAIL]]);
  runner.start();
  await advance(clock, 10_500);
  t.deepEqual(checkers[0]!.calls, [0, 10_000]);
  t.is(runner.health, 'up');
  await advance(clock, 1_000); // 11_500: first retry at 11_000
  t.deepEqual(checkers[0]!.calls, [0, 10_000, 11_000]);
  t.is(runner.health, 'up');
  await advance(clock, 1_000); // second retry at 12_000 fails: down
  t.deepEqual(checkers[0]!.calls, [0, 10_000, 11_000, 12_000]);
  t.is(runner.health, 'down');
  t.deepEqual(changes.map((c) => [c.at, c.health]), [[0, 'up'], [12_000, 'down']]);
  t.deepEqual(attempts.map((a) => [a.state, a.retrying]), [['up', 0], ['up', 1], ['up', 2], ['down', 0]]);
  // Down: next attempts every delay_loop, without retries.
  await advance(clock, 25_000);
  t.deepEqual(checkers[0]!.calls.slice(4), [22_000, 32_000]);
  t.is(changes.length, 2);
  runner.stop();
});

test('retry = 0: down on the first failure; the first result may be a failure (unknown -> down)', async (t) => {
  const { clock, changes, runner } = setup([check('TCP_CHECK', { retry: 0 })], [[FAIL]]);
  runner.start();
  await advance(clock, 100);
  t.deepEqual(changes.map((c) => [c.at, c.health]), [[0, 'down']]);
});

test('from unknown, failures are retried too before the first down', async (t) => {
  const { clock, checkers, changes, runner } = setup([check('TCP_CHECK', { retry: 1, delay_before_retry: 2 })], [[FAIL]]);
  runner.start();
  await advance(clock, 1_000);
  t.is(runner.health, 'unknown');
  t.deepEqual(changes, []);
  await advance(clock, 1_500);
  t.deepEqual(checkers[0]!.calls, [0, 2_000]);
  t.deepEqual(changes.map((c) => [c.at, c.health]), [[2_000, 'down']]);
});

test('a success during the retries keeps the checker up and resets the count', async (t) => {
  const cfg = check('TCP_CHECK', { retry: 2, delay_before_retry: 1, delay_loop: 10 });
  const { clock, checkers, changes, runner } = setup([cfg], [[OK, FAIL, FAIL, OK, FAIL, FAIL, FAIL]]);
  runner.start();
  // 0 ok, 10 fail, 11 fail, 12 ok, 22 fail, 23 fail, 24 fail -> down at 24 (a full 2 retries again)
  await advance(clock, 23_500);
  t.deepEqual(checkers[0]!.calls, [0, 10_000, 11_000, 12_000, 22_000, 23_000]);
  t.is(runner.health, 'up');
  await advance(clock, 1_000);
  t.deepEqual(changes.map((c) => [c.at, c.health]), [[0, 'up'], [24_000, 'down']]);
});

test('recovery: up again on the first success after down', async (t) => {
  const { clock, changes, runner } = setup([check('TCP_CHECK')], [[FAIL, FAIL, OK]]);
  runner.start();
  await advance(clock, 20_500);
  t.deepEqual(changes.map((c) => [c.at, c.health]), [[0, 'down'], [20_000, 'up']]);
});

test('the next attempt is scheduled from the end of the previous one', async (t) => {
  const { clock, checkers, runner } = setup([check('TCP_CHECK', { delay_loop: 5 })], [['hang', OK]]);
  runner.start();
  await advance(clock, 1_500); // the first attempt takes 1.5 s
  checkers[0]!.finish(OK);
  await advance(clock, 4_900);
  t.deepEqual(checkers[0]!.calls, [0]);
  await advance(clock, 200);
  t.deepEqual(checkers[0]!.calls, [0, 6_500]);
  t.is(runner.stats().lastDurationMs, 0);
  t.is(runner.stats().checkers[0]!.checksRun, 2);
});

test('all checkers must be up: unknown until every one reported, down if any is down', async (t) => {
  const checks = [check('TCP_CHECK'), check('TCP_CHECK', { warmup: 10 }), check('TCP_CHECK', { warmup: 10 })];
  const { clock, changes, runner } = setup(checks, [[OK], [OK, OK, FAIL, OK], [OK]], { random: () => 0.5 });
  runner.start();
  await advance(clock, 4_000);
  t.is(runner.health, 'unknown'); // only the first has reported
  t.deepEqual(changes, []);
  await advance(clock, 2_000); // the others report at 5_000
  t.deepEqual(changes.map((c) => [c.at, c.health]), [[5_000, 'up']]);
  await advance(clock, 20_000); // checker 2 fails at 25_000 (retry 0), recovers at 35_000
  await advance(clock, 10_000);
  t.deepEqual(changes.map((c) => [c.at, c.health]), [[5_000, 'up'], [25_000, 'down'], [35_000, 'up']]);
  runner.stop();
});

test('one checker down while another has not reported: down', async (t) => {
  const checks = [check('TCP_CHECK'), check('TCP_CHECK', { warmup: 10 })];
  const { clock, changes, runner } = setup(checks, [[FAIL], [OK]], { random: () => 0.5 });
  runner.start();
  await advance(clock, 100);
  t.deepEqual(changes.map((c) => [c.at, c.health]), [[0, 'down']]);
  await advance(clock, 6_000);
  t.is(changes.length, 1); // still down: checker 0 is down
});

test('no checks: always up, reported once at start', (t) => {
  const { changes, runner } = setup([], []);
  t.is(runner.health, 'unknown');
  runner.start();
  t.is(runner.health, 'up');
  t.deepEqual(changes.map((c) => [c.health, c.weight]), [['up', undefined]]);
  runner.stop();
});

test('stop aborts the in-flight attempt, clears timers, reports nothing more; idempotent', async (t) => {
  const checks = [check('TCP_CHECK'), check('TCP_CHECK', { warmup: 10 })];
  const { clock, checkers, changes, runner } = setup(checks, [['hang'], [OK]], { random: () => 0.5 });
  runner.start();
  await advance(clock, 100);
  t.is(checkers[0]!.calls.length, 1);
  const signal = checkers[0]!.signals[0]!;
  t.false(signal.aborted);
  runner.stop();
  t.true(signal.aborted);
  t.false(runner.running);
  runner.stop();
  t.is(clock.pendingTimers, 0);
  await advance(clock, 120_000);
  t.is(checkers[0]!.calls.length, 1);
  t.is(checkers[1]!.calls.length, 0); // its warmup timer was cleared
  t.deepEqual(changes, []);
  t.is(runner.stats().checksRun, 0); // the aborted attempt is not counted
  runner.start(); // no restart after stop
  await advance(clock, 20_000);
  t.is(checkers[1]!.calls.length, 0);
});

test('a checker that rejects counts as a failure and the loop goes on', async (t) => {
  const clock = new FakeClock();
  let calls = 0;
  const bad: Checker = { type: 'TCP_CHECK', run: () => { calls++; return Promise.reject(new Error('boom')); } };
  const changes: string[] = [];
  const runner = new HealthRunner({
    checks: [check('TCP_CHECK')], weight: 1, clock, checkerFactory: () => bad,
    onChange: (h, _w, d) => changes.push(`${h} ${d}`),
  });
  runner.start();
  await advance(clock, 25_000);
  t.is(calls, 3);
  t.deepEqual(changes, ['down TCP_CHECK[0]: checker error: boom']);
  t.is(runner.stats().failures, 3);
  runner.stop();
});

test('counters: checks run, failures (retries included), last duration', async (t) => {
  const { clock, checkers, runner } = setup([check('TCP_CHECK', { retry: 1, delay_before_retry: 1 })], [['hang', FAIL, FAIL, OK]]);
  runner.start();
  await advance(clock, 250);
  checkers[0]!.finish(OK);
  await flush();
  t.is(runner.stats().lastDurationMs, 250);
  await advance(clock, 21_000); // 10_250 fail, 11_250 fail -> down, 21_250 ok
  await advance(clock, 500);
  const s = runner.stats();
  t.is(s.checksRun, 4);
  t.is(s.failures, 2);
  t.is(s.health, 'up');
  t.deepEqual(s.checkers.map((c) => [c.type, c.state, c.checksRun, c.failures, c.lastDetail]), [['TCP_CHECK', 'up', 4, 2, 'fine']]);
  runner.stop();
});

// ---------------------------------------------------------------------------------------------
// Weights

test('MISC_CHECK misc_dynamic: weight set by the result, kept on exit 0 and on failure', async (t) => {
  const w = (weight: number): CheckResult => ({ ok: true, detail: `exit ${weight + 2}`, weight });
  const { clock, changes, runner } = setup([check('MISC_CHECK')], [[w(3), OK, FAIL, w(10), w(10)]]);
  runner.start();
  await advance(clock, 45_000);
  t.deepEqual(changes.map((c) => [c.at, c.health, c.weight]), [
    [0, 'up', 3],
    [20_000, 'down', 3],
    [30_000, 'up', 10],
  ]);
  t.is(runner.dynamicWeight, 10);
});

test('FILE_CHECK: offset added to the configured weight while up, removed while down; no retries', async (t) => {
  const off = (weightOffset: number): CheckResult => ({ ok: true, detail: 'file', weightOffset });
  const cfg = check('FILE_CHECK', { retry: 3, weight: 10 } as Partial<CheckConfig>);
  const { clock, checkers, changes, runner } = setup([cfg], [[off(0), off(30), FAIL, off(-2)]]);
  runner.start();
  await advance(clock, 35_000);
  t.deepEqual(checkers[0]!.calls, [0, 10_000, 20_000, 30_000]); // no retry after the failure at 20_000
  t.deepEqual(changes.map((c) => [c.at, c.health, c.weight]), [
    [0, 'up', undefined], // offset 0: weight unchanged
    [10_000, 'up', 35],
    [20_000, 'down', undefined],
    [30_000, 'up', 3],
  ]);
});

test('MISC and FILE together: configured + (misc - configured) + file offset', async (t) => {
  const checks = [check('MISC_CHECK'), check('FILE_CHECK', { weight: 1 } as Partial<CheckConfig>)];
  const { clock, changes, runner } = setup(checks, [[{ ok: true, detail: 'exit 5', weight: 3 }], [{ ok: true, detail: 'f', weightOffset: 10 }]]);
  runner.start();
  await advance(clock, 100);
  t.is(runner.health, 'up');
  t.is(runner.dynamicWeight, 5 + (3 - 5) + 10);
  t.deepEqual(changes.at(-1)!.weight, 13);
});

// ---------------------------------------------------------------------------------------------
// With the real factory, real clock and a real TCP listener

test('default factory: a real TCP_CHECK brings the server up, a closed port brings it down', async (t) => {
  const server = createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const events: Array<[CheckHealth, string]> = [];
  let notify: () => void = () => {};
  const runner = new HealthRunner({
    checks: [check('TCP_CHECK', { connect_port: port, delay_loop: 0.05, retry: 0 })],
    weight: 1,
    onChange: (h, _w, d) => { events.push([h, d]); notify(); },
  });
  t.teardown(() => { runner.stop(); server.close(); });
  const next = (): Promise<void> => new Promise((r) => { notify = r; });
  const up = next();
  runner.start();
  await up;
  t.is(events[0]![0], 'up');
  t.regex(events[0]![1], /connected to 127\.0\.0\.1:/);
  const down = next();
  server.close();
  await down;
  t.is(events[1]![0], 'down');
  t.regex(events[1]![1], /ECONNREFUSED/);
  t.true(runner.stats().checksRun >= 2);
});

test('an unknown result (no descriptor left, script refused) is not a failure: the server is never marked down by it', async (t) => {
  const UNKNOWN: CheckResult = { ok: false, unknown: true, detail: 'connect: EMFILE' };
  const { clock, changes, runner } = setup([check('TCP_CHECK', { retry: 0, delay_loop: 1 })], [[OK, UNKNOWN, UNKNOWN, UNKNOWN, OK]]);
  runner.start();
  await advance(clock, 0);
  t.is(runner.health, 'up');
  await advance(clock, 3000);
  t.is(runner.health, 'unknown', 'three unknown attempts: unknown, not down');
  t.false(changes.some((c) => c.health === 'down'));
  t.is(runner.stats().failures, 0);
  t.is(runner.stats().checkers[0]!.unknowns, 3);
  await advance(clock, 1000);
  t.is(runner.health, 'up');
  runner.stop();
});
