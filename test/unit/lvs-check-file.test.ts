import test from 'ava';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileCheck } from '../../src/config/types.js';
import { parseTrackFileValue } from '../../src/lvs/check/file.js';
import { createChecker } from '../../src/lvs/check/index.js';
import type { Checker } from '../../src/lvs/check/types.js';

let dir: string;
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'keepalive-ts-file-')); });
test.after.always(async () => { await rm(dir, { recursive: true, force: true }); });

let n = 0;
function fileCheck(weight: number): { cfg: FileCheck; path: string } {
  const path = join(dir, `status-${++n}`);
  return {
    path,
    cfg: {
      type: 'FILE_CHECK', connect_timeout: 5, retry: 1, delay_before_retry: 1, delay_loop: 60, warmup: 0,
      connect_ip: '127.0.0.1', connect_port: 80, file: path, weight,
    },
  };
}

const run = (c: Checker) => c.run(new AbortController().signal);

test('parseTrackFileValue follows strtol(base 0)', (t) => {
  t.is(parseTrackFileValue('0\n'), 0);
  t.is(parseTrackFileValue('  42 trailing'), 42);
  t.is(parseTrackFileValue('-7\n'), -7);
  t.is(parseTrackFileValue('+3'), 3);
  t.is(parseTrackFileValue('0x1F'), 31);
  t.is(parseTrackFileValue('010'), 8);
  t.is(parseTrackFileValue('08'), 0);
  t.is(parseTrackFileValue('abc'), 0);
  t.is(parseTrackFileValue(''), 0);
  t.is(parseTrackFileValue('2147483648'), 2147483648);
  t.is(parseTrackFileValue('-2147483648'), -2147483648);
  t.true(Number.isNaN(parseTrackFileValue('2147483649')));
  t.true(Number.isNaN(parseTrackFileValue('-99999999999')));
});

test('weight 0: 0 is ok, non-zero fails, a missing file counts as 0', async (t) => {
  const { cfg, path } = fileCheck(0);
  const c = createChecker(cfg);
  t.is(c.type, 'FILE_CHECK');
  t.true((await run(c)).ok); // missing
  await writeFile(path, '0\n');
  t.deepEqual(await run(c), { ok: true, detail: `${path} = 0` });
  await writeFile(path, '1\n');
  const r = await run(c);
  t.false(r.ok);
  t.is(r.weightOffset, undefined);
  await writeFile(path, '-3');
  t.false((await run(c)).ok);
  await unlink(path);
  t.true((await run(c)).ok);
});

test('weight != 0: ok with weightOffset = value x weight', async (t) => {
  const { cfg, path } = fileCheck(10);
  const c = createChecker(cfg);
  await writeFile(path, '3\n');
  const r = await run(c);
  t.true(r.ok);
  t.is(r.weightOffset, 30);
  await writeFile(path, '-2\n');
  t.is((await run(c)).weightOffset, -20);
  await writeFile(path, '0\n');
  const zero = await run(c);
  t.true(zero.ok);
  t.is(zero.weightOffset, 0);
});

test('weight != 0: a product at INT_MIN is the fault value and fails; above INT_MAX clamps', async (t) => {
  const one = fileCheck(1);
  await writeFile(one.path, '-2147483648');
  t.false((await run(createChecker(one.cfg))).ok);
  const neg = fileCheck(-1);
  await writeFile(neg.path, '-2147483648');
  const r = await run(createChecker(neg.cfg));
  t.true(r.ok);
  t.is(r.weightOffset, 2147483647);
  const big = fileCheck(254);
  await writeFile(big.path, '-100000000');
  t.false((await run(createChecker(big.cfg))).ok);
});

test('an out-of-range number is ignored: the previous value stays', async (t) => {
  const { cfg, path } = fileCheck(0);
  const c = createChecker(cfg);
  await writeFile(path, '1');
  t.false((await run(c)).ok);
  await writeFile(path, '99999999999');
  const r = await run(c);
  t.false(r.ok);
  t.regex(r.detail, /ignored, kept 1/);
  await writeFile(path, '0');
  t.true((await run(c)).ok);
  await writeFile(path, '99999999999');
  t.true((await run(c)).ok);
});

test('an aborted signal gives "aborted"', async (t) => {
  const { cfg } = fileCheck(0);
  const ac = new AbortController();
  ac.abort();
  t.deepEqual(await createChecker(cfg).run(ac.signal), { ok: false, detail: 'aborted' });
});
