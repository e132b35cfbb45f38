/**
 * Files of a running daemon are its own:
 * - a second `run` with the same control socket and pid file fails before it starts anything (no
 *   health check, no quorum script runs) and leaves the first daemon's socket and pid file alone;
 * - a pid file path that is a symlink, or a control socket path that is not a stale socket, is
 *   refused and the file it points at / that is there is left untouched;
 * - stopping removes only the files this daemon created.
 */
import { existsSync, readFileSync, symlinkSync, writeFileSync, chmodSync, mkdtempSync, rmSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, netnsTest, waitFor, sleep } from '../lib/netns.js';
import { startDirector, directorToml, CLI } from '../lib/daemon.js';
import { controlRequest } from '../../src/cli/control-client.js';

netnsTest('a second run with the same control socket fails before starting anything and leaves the running daemon\'s files alone', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const dir = mkdtempSync(join(tmpdir(), 'kt-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'kt.pid');
  const toml = directorToml({ routerId: 'a', priority: 150, vips: [`${lab.addr4(100)}/24`] });
  const first = await startDirector(lab, a, toml, { args: ['--pid-file', pidFile] });
  await waitFor(async () => (await first.instance()).state === 'MASTER', 10_000, 'first MASTER', 100);
  t.is(readFileSync(pidFile, 'utf8').trim(), String(first.proc.pid));

  // The second daemon's scripts would leave marks if it started its checks or quorum scripts.
  const mark = join(dir, 'second-ran');
  const script = join(dir, 'mark.sh');
  writeFileSync(script, `#!/bin/sh\necho "$0 $*" >> ${mark}\nexit 0\n`);
  chmodSync(script, 0o755);
  const secondToml = `[global]
router_id = "second"
metrics_listen = ""

[[virtual_server]]
address = "${a.ipv4}"
port = 8080
lb_kind = "PROXY"
quorum_up = "${script} quorum_up"
delay_loop = 1

[[virtual_server.real_server]]
address = "${a.ipv4}"
port = 9
check = { type = "MISC_CHECK", misc_path = "${script} check" }
`;
  const secondConfig = join(dir, 'second.toml');
  writeFileSync(secondConfig, secondToml);
  const second = await a.exec(['node', CLI, 'run', '--config', secondConfig, '--control-socket', first.socket, '--pid-file', pidFile, '--log-format', 'pretty'], { allowFail: true, timeoutMs: 20_000 });
  t.not(second.code, 0);
  t.regex(second.stderr + second.stdout, /already running|in use|locked/i);
  await sleep(1_500);
  t.false(existsSync(mark), 'no check or quorum script of the second run ran');
  t.true(lstatSync(first.socket).isSocket(), 'the first daemon\'s control socket is still there');
  t.is(readFileSync(pidFile, 'utf8').trim(), String(first.proc.pid), 'the pid file still names the first daemon');
  t.true((await controlRequest(first.socket, 'status', {}, 5_000)).ok, 'and it still answers');

  // The first daemon stops cleanly (a MASTER without peer waits ~4 s for a takeover) and removes its own files.
  process.kill(first.proc.pid, 'SIGTERM');
  await Promise.race([first.proc.exited, sleep(15_000)]);
  t.false(existsSync(first.socket));
  t.false(existsSync(pidFile));
});

netnsTest('a pid file that is a symlink, or a control socket path that is not a stale socket, is refused and left untouched', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const dir = mkdtempSync(join(tmpdir(), 'kt-files-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const toml = join(dir, 'k.toml');
  writeFileSync(toml, directorToml({ routerId: 'a', priority: 150, vips: [`${lab.addr4(100)}/24`] }));
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'precious\n');

  const link = join(dir, 'kt.pid');
  symlinkSync(victim, link);
  const r1 = await a.exec(['node', CLI, 'run', '--config', toml, '--control-socket', join(dir, 'ctl.sock'), '--pid-file', link], { allowFail: true, timeoutMs: 20_000 });
  t.not(r1.code, 0);
  t.regex(r1.stderr + r1.stdout, /pid file .*symlink|not a regular file|refus/i);
  t.is(readFileSync(victim, 'utf8'), 'precious\n', 'the symlink target was not written');
  t.true(lstatSync(link).isSymbolicLink(), 'the symlink is still there');
  t.false(existsSync(join(dir, 'ctl.sock')), 'the failed run left no control socket behind');

  const notSocket = join(dir, 'ctl-file');
  writeFileSync(notSocket, 'not a socket\n');
  const r2 = await a.exec(['node', CLI, 'run', '--config', toml, '--control-socket', notSocket, '--pid-file', join(dir, 'ok.pid')], { allowFail: true, timeoutMs: 20_000 });
  t.not(r2.code, 0);
  t.regex(r2.stderr + r2.stdout, /control socket .*not a socket|refus/i);
  t.is(readFileSync(notSocket, 'utf8'), 'not a socket\n', 'the file at the control socket path was not removed');
  t.false(existsSync(join(dir, 'ok.pid')), 'the failed run removed the pid file it had written');
});

netnsTest('control_socket and pid_file from the config are used when the command line does not override them', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const dir = mkdtempSync(join(tmpdir(), 'kt-cfgpaths-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'from-config.sock');
  const pid = join(dir, 'from-config.pid');
  const toml = join(dir, 'k.toml');
  writeFileSync(toml, directorToml({ routerId: 'cfg-paths', priority: 150, vips: [`${lab.addr4(100)}/24`] }).replace('[global]', `[global]\ncontrol_socket = "${sock}"\npid_file = "${pid}"`));
  const proc = a.spawn(['node', CLI, 'run', '--config', toml, '--log-format', 'pretty']);
  await waitFor(async () => (await controlRequest(sock, 'status', {}, 2_000).then((r) => r.ok, () => false)), 15_000, 'the control socket named in the config', 100);
  const st = await controlRequest(sock, 'status', {}, 5_000);
  t.true(st.ok);
  t.is((st as { result: { router_id: string } }).result.router_id, 'cfg-paths', 'router_id from the config is reported');
  t.is(readFileSync(pid, 'utf8').trim(), String(proc.pid));
  process.kill(proc.pid, 'SIGTERM');
  await Promise.race([proc.exited, sleep(15_000)]);
  t.false(existsSync(pid));
  t.false(existsSync(sock));
});
