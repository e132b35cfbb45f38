import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MiscCheck } from '../../src/config/types.js';
import { createChecker } from '../../src/lvs/check/index.js';
import { miscResult } from '../../src/lvs/check/misc.js';
import type { CheckResult } from '../../src/lvs/check/types.js';

let dir: string;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keepalive-ts-misc-'));
  for (const code of [0, 1, 2, 5, 255]) await writeFile(join(dir, `exit${code}.sh`), `exit ${code}\n`);
  await writeFile(join(dir, 'sleep.sh'), 'echo started > "$1"\nexec sleep 30\n');
  await writeFile(join(dir, 'args.sh'), 'printf "%s|" "$@" > "$1"\nexit 0\n');
});
test.after.always(async () => { await rm(dir, { recursive: true, force: true }); });

function misc(path: string, extra: Partial<MiscCheck> = {}): MiscCheck {
  return {
    type: 'MISC_CHECK', connect_timeout: 5, retry: 0, delay_before_retry: 1, delay_loop: 60, warmup: 0,
    connect_ip: '127.0.0.1', connect_port: 80, misc_path: path, misc_timeout: 10, misc_dynamic: false, ...extra,
  };
}

const sh = (name: string, ...args: string[]): string => ['/bin/sh', join(dir, name), ...args].join(' ');
const run = (cfg: MiscCheck): Promise<CheckResult> => createChecker(cfg).run(new AbortController().signal);

test('without misc_dynamic: exit 0 ok, any other exit fails, no weight', async (t) => {
  const c0 = createChecker(misc(sh('exit0.sh')));
  t.is(c0.type, 'MISC_CHECK');
  t.deepEqual(await c0.run(new AbortController().signal), { ok: true, detail: 'exit 0' });
  t.deepEqual(await run(misc(sh('exit1.sh'))), { ok: false, detail: 'exit 1' });
  t.deepEqual(await run(misc(sh('exit5.sh'))), { ok: false, detail: 'exit 5' });
  t.deepEqual(await run(misc(sh('exit255.sh'))), { ok: false, detail: 'exit 255' });
});

test('misc_dynamic: 0 ok with weight unchanged, 1 fails, 2..255 ok with weight = status - 2', async (t) => {
  const d = { misc_dynamic: true };
  const r0 = await run(misc(sh('exit0.sh'), d));
  t.true(r0.ok);
  t.is(r0.weight, undefined);
  t.false((await run(misc(sh('exit1.sh'), d))).ok);
  t.deepEqual(await run(misc(sh('exit2.sh'), d)), { ok: true, detail: 'exit 2', weight: 0 });
  t.deepEqual(await run(misc(sh('exit5.sh'), d)), { ok: true, detail: 'exit 5', weight: 3 });
  t.deepEqual(await run(misc(sh('exit255.sh'), d)), { ok: true, detail: 'exit 255', weight: 253 });
});

test('misc_path is split keepalived-style (quotes group words, no shell)', async (t) => {
  const out = join(dir, 'args.out');
  const r = await run(misc(`/bin/sh ${join(dir, 'args.sh')} ${out} 'two words' "x y" plain`));
  t.true(r.ok, r.detail);
  t.is(await readFile(out, 'utf8'), `${out}|two words|x y|plain|`);
  // `sh -c` with a quoted script: the exit status comes through, dynamic weight included.
  t.deepEqual(await run(misc(`/bin/sh -c 'exit 7'`, { misc_dynamic: true })), { ok: true, detail: 'exit 7', weight: 5 });
});

test('a script running past misc_timeout is killed and fails', async (t) => {
  const marker = join(dir, 'sleep.marker');
  const r = await run(misc(sh('sleep.sh', marker), { misc_timeout: 0.3 }));
  t.false(r.ok);
  t.is(r.detail, 'timed out after 0.3 s');
  t.is((await readFile(marker, 'utf8')).trim(), 'started');
});

test('a program that cannot be started is refused: the result is unknown, not down (keepalived disables the checker)', async (t) => {
  const r = await run(misc(join(dir, 'no-such-program')));
  t.false(r.ok);
  t.true(r.unknown);
  t.regex(r.detail, /script refused: .*ENOENT/);
  const empty = await run(misc('   '));
  t.false(empty.ok);
});

test('abort ends the attempt with "aborted"', async (t) => {
  const ac = new AbortController();
  const marker = join(dir, 'sleep-abort.marker');
  const p = createChecker(misc(sh('sleep.sh', marker), { misc_timeout: 1 })).run(ac.signal);
  setTimeout(() => ac.abort(), 100);
  t.deepEqual(await p, { ok: false, detail: 'aborted' });
});

test('miscResult: death by signal fails, even with misc_dynamic', (t) => {
  t.deepEqual(miscResult({ code: null, signal: 'SIGSEGV', timedOut: false }, true, 5), { ok: false, detail: 'killed by SIGSEGV' });
  t.deepEqual(miscResult({ code: null, signal: 'SIGKILL', timedOut: true }, true, 5), { ok: false, detail: 'timed out after 5 s' });
  t.deepEqual(miscResult({ code: 1, signal: null, timedOut: false }, true, 5), { ok: false, detail: 'exit 1' });
  t.deepEqual(miscResult({ code: 3, signal: null, timedOut: false }, false, 5), { ok: false, detail: 'exit 3' });
  t.deepEqual(miscResult({ code: 3, signal: null, timedOut: false }, true, 5), { ok: true, detail: 'exit 3', weight: 1 });
});

(process.getuid?.() === 0 ? test : test.skip)('user: the command runs as that user', async (t) => {
  const { mkdtempSync, chmodSync, writeFileSync: wf, readFileSync: rf } = await import('node:fs');
  const { tmpdir: td } = await import('node:os');
  const d = mkdtempSync(join(td(), 'kt-misc-user-'));
  chmodSync(d, 0o777);
  const out = join(d, 'uid');
  wf(out, '');
  chmodSync(out, 0o666);
  const r = await run(misc(`/bin/sh -c "id -u > ${out}"`, { user: 'nobody' }));
  t.true(r.ok, r.detail);
  t.is(rf(out, 'utf8').trim(), '65534');
});
