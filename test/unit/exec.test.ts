import test from 'ava';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveUser, runCommand, splitCommand } from '../../src/util/exec.js';

test('splitCommand follows keepalived quoting (no shell)', (t) => {
  t.deepEqual(splitCommand('/usr/bin/killall -0 haproxy'), ['/usr/bin/killall', '-0', 'haproxy']);
  t.deepEqual(splitCommand(`/bin/x "a b" 'c d' e\\ f ""`), ['/bin/x', 'a b', 'c d', 'e f', '']);
  t.deepEqual(splitCommand('   '), []);
});

test('resolveUser reads passwd and group, by name or number, and rejects unknown ones', (t) => {
  const passwd = 'root:x:0:0::/root:/bin/sh\nkeepalived_script:x:999:998::/:/usr/sbin/nologin\n';
  const group = 'root:x:0:\nlb:x:1234:\n';
  t.deepEqual(resolveUser('keepalived_script', { passwd, group }), { uid: 999, gid: 998, groups: [998], name: 'keepalived_script', home: '/' });
  t.deepEqual(resolveUser('keepalived_script:lb', { passwd, group }), { uid: 999, gid: 1234, groups: [998], name: 'keepalived_script', home: '/' });
  t.deepEqual(resolveUser('4242', { passwd, group }), { uid: 4242, gid: 4242, groups: [4242] });
  t.throws(() => resolveUser('nosuch', { passwd, group }), { message: /unknown user "nosuch"/ });
  t.throws(() => resolveUser('root:nogroup', { passwd, group }), { message: /unknown group "nogroup"/ });
});

test('exit codes, missing programs and timeouts', async (t) => {
  t.is((await runCommand('/bin/sh -c "exit 3"')).code, 3);
  const missing = await runCommand('/nonexistent/prog');
  t.is(missing.code, null);
  t.regex(missing.error!, /ENOENT/);
  const slow = await runCommand('/bin/sleep 5', [], 100);
  t.true(slow.timedOut);
});

test('a timeout kills the whole process group, children included', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-exec-'));
  const mark = join(dir, 'late');
  // The background child would write the file after 1 s if it survived its parent's timeout.
  const r = await runCommand('/bin/sh -c', [`(sleep 1; touch ${mark}) & sleep 10`], 200);
  t.true(r.timedOut);
  await new Promise((res) => setTimeout(res, 1_500));
  t.false(existsSync(mark), 'the script\'s child was killed with it');
});

test('abort kills the command at once', async (t) => {
  const ac = new AbortController();
  const started = Date.now();
  const p = runCommand('/bin/sleep 10', [], 0, { signal: ac.signal });
  setTimeout(() => ac.abort(), 100);
  const r = await p;
  t.is(r.signal, 'SIGTERM');
  t.true(Date.now() - started < 5_000);
});

test('runAs runs the script as that user (root only: switching users needs CAP_SETUID)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-exec-'));
  const out = join(dir, 'uid');
  writeFileSync(out, '');
  const { chmodSync } = await import('node:fs');
  chmodSync(dir, 0o777);
  chmodSync(out, 0o666);
  const r = await runCommand('/bin/sh -c', [`id -u > ${out}`], 5_000, { runAs: { uid: 65534, gid: 65534 } });
  if (process.getuid?.() === 0) {
    t.is(r.code, 0);
    t.is(readFileSync(out, 'utf8').trim(), '65534');
  } else {
    t.not(r.code, 0, 'without CAP_SETUID the switch must fail, never run as ourselves');
    t.is(readFileSync(out, 'utf8'), '');
  }
});
