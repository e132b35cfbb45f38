// The native check schedule (src/lvs/health.ts, native/check_engine.c jobs):
//  - pure: checkStep() is keepalived's retry semantics; replaying only the attempts mustReport()
//    hands over gives the same checker position and detail as replaying all (any history);
//  - on loopback: a TCP_CHECK / HTTP_GET runner whose schedule runs on the engine reports up, down
//    after retry + 1 failures and up again, hands over only the attempts that change something,
//    and its counters (stats(), read from the engine) move with every attempt.
import test from 'ava';
import fc from 'fast-check';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { CheckConfig } from '../../src/config/types.js';
import { CheckEngine } from '../../src/net/native.js';
import { checkStep, mustReport, HealthRunner, type CheckAttempt, type CheckPosition, type CheckOutcome } from '../../src/lvs/health.js';
import { LOCAL_RESOURCE_ERRORS } from '../../src/lvs/check/types.js';

const LOOP = 1000;
const RETRY_MS = 300;

test('checkStep: retry N -> down after N + 1 consecutive failures, each retry after delay_before_retry', (t) => {
  let p: CheckPosition = { state: 'up', retryIt: 0 };
  const steps = [];
  for (let i = 0; i < 4; i++) {
    const s = checkStep(p, { ok: false }, 2, LOOP, RETRY_MS);
    steps.push([s.state, s.retryIt, s.nextMs, s.failed]);
    p = s;
  }
  t.deepEqual(steps, [
    ['up', 1, RETRY_MS, true],
    ['up', 2, RETRY_MS, true],
    ['down', 0, LOOP, true],
    // already down: no retries, delay_loop
    ['down', 0, LOOP, true],
  ]);
  t.deepEqual(checkStep(p, { ok: true }, 2, LOOP, RETRY_MS), { state: 'up', retryIt: 0, nextMs: LOOP, failed: false });
});

test('checkStep: unknown keeps the retry count and is no failure; success resets the retries', (t) => {
  const s = checkStep({ state: 'up', retryIt: 1 }, { ok: false, unknown: true }, 3, LOOP, RETRY_MS);
  t.deepEqual(s, { state: 'unknown', retryIt: 1, nextMs: LOOP, failed: false });
  t.deepEqual(checkStep({ state: 'unknown', retryIt: 0 }, { ok: false }, 0, LOOP, RETRY_MS), { state: 'down', retryIt: 0, nextMs: LOOP, failed: true });
  t.deepEqual(checkStep({ state: 'up', retryIt: 2 }, { ok: true }, 3, LOOP, RETRY_MS).retryIt, 0);
});

test('mustReport: replaying only the handed-over attempts gives the same position and outcome as replaying all', (t) => {
  // An outcome: code 0 + status (200 passes, 503 fails), an errno, EMFILE (unknown).
  const outcome = fc.constantFrom<CheckOutcome>({ code: 0, status: 200 }, { code: 0, status: 503 }, { code: 111, status: 0 }, { code: -1, status: 0 }, { code: 24, status: 0 });
  const judge = (o: CheckOutcome) => ({ ok: o.code === 0 && o.status === 200, unknown: o.code === 24 });
  fc.assert(fc.property(fc.array(outcome, { maxLength: 60 }), fc.integer({ min: 0, max: 3 }), (history, retries) => {
    let all: CheckPosition = { state: 'unknown', retryIt: 0 };
    let seen: CheckPosition = { state: 'unknown', retryIt: 0 };
    let last: CheckOutcome | undefined;
    for (const o of history) {
      const before = all;
      all = checkStep(all, judge(o), retries, LOOP, RETRY_MS);
      if (mustReport(last, before, all, o)) {
        last = o;
        seen = checkStep(seen, judge(o), retries, LOOP, RETRY_MS);
      }
      if (seen.state !== all.state || seen.retryIt !== all.retryIt) return false;
      // The outcome not handed over is the last handed over one: the same result, the same detail.
      if (last && (last.code !== o.code || last.status !== o.status)) return false;
    }
    return true;
  }), { numRuns: 2000 });
  t.pass();
});

test('the engine treats exactly LOCAL_RESOURCE_ERRORS (EMFILE, ENFILE) as unknown', (t) => {
  // native/check_engine.c job_done() hard-codes EMFILE / ENFILE: extend it with this set.
  t.deepEqual([...LOCAL_RESOURCE_ERRORS].sort(), ['EMFILE', 'ENFILE']);
});

/** A loopback server that can be switched between answering 200, answering 503 and refusing. */
async function switchable(): Promise<{ port: number; mode: (m: 'ok' | 'fail' | 'closed') => Promise<void>; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  let current: 'ok' | 'fail' = 'ok';
  const onConn = (s: Socket) => {
    hits++;
    s.on('error', () => undefined);
    s.once('data', () => s.end(current === 'ok' ? 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok' : 'HTTP/1.0 503 Busy\r\n\r\n'));
  };
  let server: Server = createServer(onConn);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  let open = true;
  const close = async () => {
    if (!open) return;
    open = false;
    await new Promise<void>((r) => server.close(() => r()));
  };
  return {
    port,
    hits: () => hits,
    close,
    mode: async (m) => {
      if (m === 'closed') return close();
      current = m;
      if (!open) {
        server = createServer(onConn);
        await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
        open = true;
      }
    },
  };
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function runner(check: CheckConfig) {
  const changes: string[] = [];
  const attempts: CheckAttempt[] = [];
  const r = new HealthRunner({
    checks: [check],
    weight: 1,
    onChange: (h) => changes.push(h),
    onAttempt: (a) => attempts.push(a),
  });
  return { r, changes, attempts };
}

const base = { connect_timeout: 1, retry: 1, delay_before_retry: 0.05, delay_loop: 0.1, warmup: 0, connect_ip: '127.0.0.1' } as const;

test.serial('HTTP_GET on the native schedule: up, down after retry + 1 failures, up again; steady attempts are not handed over', async (t) => {
  const srv = await switchable();
  t.teardown(srv.close);
  const jobsBefore = CheckEngine.get().jobs;
  const { r, changes, attempts } = runner({ type: 'HTTP_GET', ...base, connect_port: srv.port, path: '/', status_code: [200] });
  t.teardown(() => r.stop());
  r.start();
  t.is(CheckEngine.get().jobs, jobsBefore + 1, 'the schedule runs on the engine');
  await waitFor(() => changes.length === 1, 3_000, 'up');
  t.deepEqual(changes, ['up']);
  // Steady success: the engine counts attempts, none is handed over after the first.
  await waitFor(() => r.stats().checksRun >= 6, 3_000, '6 attempts');
  t.is(attempts.length, 1, `only the first success is handed over (${attempts.length})`);
  const st = r.stats();
  t.is(st.failures, 0);
  t.true(st.lastDurationMs !== null && st.lastDurationMs >= 0 && st.lastDurationMs < 1000, `last duration ${st.lastDurationMs}`);
  t.is(st.checkers[0]!.lastDetail, `http://127.0.0.1:${srv.port}/: status 200`);

  // 503: one retry (handed over: the retry count moved), then down (handed over), then nothing.
  const n0 = attempts.length;
  await srv.mode('fail');
  await waitFor(() => changes.length === 2, 3_000, 'down');
  t.deepEqual(changes, ['up', 'down']);
  t.deepEqual(attempts.slice(n0).map((a) => [a.state, a.retrying, a.result.ok]), [['up', 1, false], ['down', 0, false]]);
  t.regex(attempts.at(-1)!.result.detail, /status 503 not in \[200\]/);
  const runsAtDown = r.stats().checksRun;
  await waitFor(() => r.stats().checksRun >= runsAtDown + 3, 3_000, 'attempts while down');
  t.is(attempts.length, n0 + 2, 'a server that stays down for the same reason is not handed over again');
  t.true(r.stats().failures >= 4, `failures counted by the engine (${r.stats().failures})`);

  // Refused: another outcome -> handed over once (still down), then up again on the first success.
  await srv.mode('closed');
  await waitFor(() => attempts.length === n0 + 3, 3_000, 'the refusal handed over');
  t.regex(attempts.at(-1)!.result.detail, /ECONNREFUSED/);
  t.is(attempts.at(-1)!.state, 'down');
  await srv.mode('ok');
  await waitFor(() => changes.length === 3, 3_000, 'up again');
  t.deepEqual(changes, ['up', 'down', 'up']);

  r.stop();
  t.is(CheckEngine.get().jobs, jobsBefore, 'stop() ends the job');
  await new Promise((res) => setTimeout(res, 150));
  const runs = r.stats().checksRun;
  const hits = srv.hits();
  await new Promise((res) => setTimeout(res, 400));
  t.is(r.stats().checksRun, runs, 'no attempt after stop()');
  t.is(srv.hits(), hits, 'the server sees no check after stop()');
  t.is(changes.length, 3);
});

test.serial('TCP_CHECK on the native schedule, with a warmup: the first attempt waits for the drawn delay', async (t) => {
  const srv = await switchable();
  t.teardown(srv.close);
  const changes: string[] = [];
  const r = new HealthRunner({
    checks: [{ type: 'TCP_CHECK', ...base, warmup: 1, connect_port: srv.port }],
    weight: 1,
    random: () => 0.5, // first attempt after 500 ms
    onChange: (h) => changes.push(h),
  });
  t.teardown(() => r.stop());
  const t0 = Date.now();
  r.start();
  await waitFor(() => changes.length === 1, 3_000, 'up');
  const took = Date.now() - t0;
  t.log(`first TCP_CHECK result after ${took} ms (warmup draw 500 ms)`);
  t.true(took >= 450, `not before the warmup delay (${took} ms)`);
  await srv.mode('closed');
  await waitFor(() => changes.length === 2, 3_000, 'down');
  t.deepEqual(changes, ['up', 'down']);
});

test.serial('an injected clock keeps the checker on the event loop (no engine job)', (t) => {
  const before = CheckEngine.get().jobs;
  const r = new HealthRunner({
    checks: [{ type: 'TCP_CHECK', ...base, connect_port: 9 }],
    weight: 1,
    clock: { now: () => 0, setTimeout: () => 0, clearTimeout: () => undefined },
    onChange: () => undefined,
  });
  r.start();
  t.is(CheckEngine.get().jobs, before);
  r.stop();
});
