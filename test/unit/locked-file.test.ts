import test from 'ava';
import { existsSync, linkSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LockedFile } from '../../src/daemon/locked-file.js';
import { isKeepaliveError } from '../../src/util/errors.js';

function dir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'kt-lockfile-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('acquire writes our pid; a second holder is refused naming the first pid; release removes only our file', (t) => {
  const d = dir(t);
  const p = join(d, 'sub', 'kt.pid');
  const a = LockedFile.acquire(p, 'pid file');
  t.is(readFileSync(p, 'utf8'), `${process.pid}\n`);
  const err = t.throws(() => LockedFile.acquire(p, 'pid file', () => false));
  t.true(isKeepaliveError(err, 'E_ALREADY_RUNNING'));
  t.regex(err!.message, new RegExp(`already running \\(pid ${process.pid}\\)`));
  a.release();
  t.false(existsSync(p));
  a.release();
});

test('a stale file (no holder) is taken over and rewritten', (t) => {
  const p = join(dir(t), 'kt.pid');
  writeFileSync(p, '99999\n');
  const a = LockedFile.acquire(p, 'pid file');
  t.is(readFileSync(p, 'utf8'), `${process.pid}\n`);
  a.release();
});

test('a symlink, a directory or a hard-linked file is refused and not written', (t) => {
  const d = dir(t);
  const victim = join(d, 'victim');
  writeFileSync(victim, 'precious');
  symlinkSync(victim, join(d, 'link.pid'));
  t.throws(() => LockedFile.acquire(join(d, 'link.pid'), 'pid file'), { message: /symlink; refusing/ });
  linkSync(victim, join(d, 'hard.pid'));
  t.throws(() => LockedFile.acquire(join(d, 'hard.pid'), 'pid file'), { message: /2 hard links/ });
  t.throws(() => LockedFile.acquire(d, 'pid file'));
  t.is(readFileSync(victim, 'utf8'), 'precious');
});

test('release leaves a file that replaced ours alone', (t) => {
  const p = join(dir(t), 'kt.pid');
  const a = LockedFile.acquire(p, 'pid file');
  rmSync(p);
  writeFileSync(p, 'someone else');
  a.release();
  t.is(readFileSync(p, 'utf8'), 'someone else');
});
