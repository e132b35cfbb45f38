import test from 'ava';
import { preciseClock } from '../../src/vrrp/precise-clock.js';
import { spinClock } from '../../src/vrrp/instance.js';
import { nativeAvailable } from '../../src/net/native.js';

test('the daemon clock is the timerfd one when the addon is built', (t) => {
  t.true(nativeAvailable());
  t.not(preciseClock(), spinClock);
});

test('deadlines fire in order, never before they are due, cancelled ones never', async (t) => {
  const clock = preciseClock();
  const fired: { name: string; late: number }[] = [];
  const at = (name: string, ms: number) => {
    const due = clock.now() + ms;
    return clock.setTimeout(() => fired.push({ name, late: clock.now() - due }), ms);
  };
  at('c', 30);
  at('a', 5);
  const gone = at('x', 10);
  at('b', 12.5);
  at('d', 30); // same deadline as c, scheduled after it: fires after it
  clock.clearTimeout(gone);
  clock.clearTimeout(gone); // twice is harmless
  await new Promise((r) => setTimeout(r, 300));
  t.deepEqual(fired.map((f) => f.name), ['a', 'b', 'c', 'd']);
  for (const f of fired) {
    t.true(f.late >= -0.05, `${f.name} fired ${-f.late} ms early`);
    t.true(f.late < 250, `${f.name} fired ${f.late} ms late`);
  }
});

test('a callback can schedule and cancel other deadlines', async (t) => {
  const clock = preciseClock();
  const seen: string[] = [];
  let later: unknown;
  clock.setTimeout(() => {
    seen.push('first');
    clock.setTimeout(() => seen.push('rescheduled'), 1);
    clock.clearTimeout(later);
  }, 2);
  later = clock.setTimeout(() => seen.push('cancelled by first'), 20);
  clock.setTimeout(() => seen.push('second'), 4);
  await new Promise((r) => setTimeout(r, 200));
  // 'second' may come before 'rescheduled' when the machine made 'first' late.
  t.deepEqual([...seen].sort(), ['first', 'rescheduled', 'second']);
  t.is(seen[0], 'first');
});

test('an idle clock does not keep the process alive; a pending deadline does', async (t) => {
  // Checked from outside: a child that only schedules one 50 ms deadline exits after it fired.
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { fileURLToPath } = await import('node:url');
  const mod = fileURLToPath(new URL('../../src/vrrp/precise-clock.js', import.meta.url));
  // (Asynchronously: a synchronous child would hold this file's other tests' event loop.)
  const { stdout: out } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e',
    `const { preciseClock } = await import(${JSON.stringify(mod)}); const c = preciseClock(); const t0 = c.now(); c.setTimeout(() => console.log('fired', Math.round(c.now() - t0)), 50);`],
  { encoding: 'utf8', timeout: 20_000 });
  t.regex(out, /^fired \d+/);
});
