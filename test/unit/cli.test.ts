import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

function cli(args: string[], wrap: string[] = []) {
  const cmd = [...wrap, process.execPath, CLI, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('check accepts the shipped configs (as files for other machines)', (t) => {
  for (const f of ['conf/keepalive.toml', 'conf/director-a.toml', 'conf/director-b.toml', 'conf/lvs-dr.toml', 'conf/lvs-nat.toml']) {
    const r = cli(['check', '--no-host-checks', '--config', join(ROOT, f)]);
    t.is(r.code, 0, r.err);
    t.regex(r.out, /OK \(router_id /);
  }
});

test('check on this host finds what run would hit in the commented example: its script and key file are not here', (t) => {
  const r = cli(['check', '--config', join(ROOT, 'conf/keepalive.toml')]);
  t.is(r.code, 1, r.err);
  t.regex(r.err, /keepalive\.toml:\d+ vrrp_script\[0\]\.script: cannot run "\/usr\/local\/bin\/check-proxy": \/usr\/local\/bin\/check-proxy does not exist/);
  t.regex(r.err, /keepalive\.toml:\d+ sync\.auth_key_file: cannot read auth_key_file \/etc\/keepalive-ts\/sync\.key/);
  t.regex(r.err, /2 problems would stop or break `run` on this host/);
});

test('check: every run-time problem with file:line and key; a missing interface warns, and fails with --strict', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-cli-'));
  const plain = join(dir, 'notify.sh');
  writeFileSync(plain, '#!/bin/sh\n');
  chmodSync(plain, 0o644);
  const ok = join(dir, 'ok.sh');
  writeFileSync(ok, '#!/bin/sh\n');
  chmodSync(ok, 0o755);
  const instance = (iface: string, extra = '') =>
    `[[vrrp_instance]]\nname = "VI_1"\ninterface = "${iface}"\nvirtual_router_id = 51\npriority = 100\nvirtual_ipaddress = ["10.0.0.50/24"]\n${extra}`;
  const bad = join(dir, 'bad.toml');
  writeFileSync(bad, [
    '[global]\nscript_user = "kt-nobody-here"\n',
    `[[vrrp_script]]\nname = "chk"\nscript = "${dir}/missing --x"\n`,
    instance('lo', `track_script = ["chk"]\nnotify_master = "${plain} master"\n`),
    '[[virtual_server]]\naddress = "10.0.0.50"\nport = 80\n[[virtual_server.real_server]]\naddress = "10.0.0.21"\nport = 80\n' +
      'check = { type = "MISC_CHECK", misc_path = "kt-not-in-path-cmd" }\n',
    `[sync]\ninterface = "lo"\ninstance = "VI_1"\nauth_key_file = "${dir}/sync.key"\n`,
  ].join('\n'));
  const r = cli(['check', '--config', bad]);
  t.is(r.code, 1, r.out);
  t.regex(r.err, /bad\.toml:2 global\.script_user: unknown user "kt-nobody-here"/);
  t.regex(r.err, /bad\.toml:6 vrrp_script\[0\]\.script: cannot run .*missing --x.*does not exist/);
  t.regex(r.err, /bad\.toml:15 vrrp_instance\[0\]\.notify_master: cannot run .*notify\.sh is not executable/);
  t.regex(r.err, /bad\.toml:23 virtual_server\[0\]\.real_server\[0\]\.check\[0\]\.misc_path: cannot run "kt-not-in-path-cmd": "kt-not-in-path-cmd" is not in PATH/);
  t.regex(r.err, /bad\.toml:28 sync\.auth_key_file: cannot read auth_key_file .*sync\.key: ENOENT/);
  t.regex(r.err, /5 problems would stop or break/);

  const iface = join(dir, 'iface.toml');
  writeFileSync(iface, instance('kt-noif0', `notify = "${ok}"\n`));
  const warned = cli(['check', '--config', iface]);
  t.is(warned.code, 0, warned.err);
  t.regex(warned.err, /iface\.toml:3 vrrp_instance\[0\]\.interface: warning: interface "kt-noif0" does not exist on this host/);
  t.regex(warned.out, /OK \(router_id .*\), 1 warning/);
  const strict = cli(['check', '--strict', '--config', iface]);
  t.is(strict.code, 1);
  t.regex(strict.err, /iface\.toml:3 vrrp_instance\[0\]\.interface: interface "kt-noif0" does not exist on this host/);
  t.is(cli(['check', '--config', iface, '--no-host-checks']).err, '');
});

test('every command shows examples and the exit statuses in --help; run, check and reload default to /etc/keepalive-ts/keepalive.toml', (t) => {
  for (const cmd of [[], ['run'], ['check'], ['reload'], ['status'], ['weight'], ['drain'], ['disable'], ['enable']]) {
    const r = cli([...cmd, '--help']);
    t.is(r.code, 0);
    t.regex(r.out, /Examples:\n  keepalive-ts /);
    t.regex(r.out, /Exit status:\n  0  success\n  1  error/);
  }
  t.regex(cli(['run', '--help']).out, /--config <file>\s+TOML config file \(default:\s+"\/etc\/keepalive-ts\/keepalive\.toml"\)/);
  t.regex(cli(['check', '--help']).out, /--config <file>\s+TOML config file \(default:\s+"\/etc\/keepalive-ts\/keepalive\.toml"\)/);
});

test('status, reload and the override commands find the control socket in the --config file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-cli-'));
  const f = join(dir, 'lb.toml');
  writeFileSync(f, `[global]\ncontrol_socket = "${dir}/lb1.sock"\n`);
  const target = ['10.0.0.50:80', '10.0.0.21:80'];
  for (const cmd of [['status'], ['reload'], ['drain', ...target], ['disable', ...target], ['enable', ...target], ['weight', ...target, '2']]) {
    const r = cli([...cmd, '--config', f]);
    t.is(r.code, 1);
    t.regex(r.err, new RegExp(`cannot reach the daemon at ${dir}/lb1\\.sock`));
    // --control-socket wins over the file.
    t.regex(cli([...cmd, '--config', f, '--control-socket', `${dir}/other.sock`]).err, /other\.sock/);
  }
  // A file without control_socket means the default socket; a missing file is an error naming it.
  writeFileSync(f, '[global]\n');
  t.regex(cli(['status', '--config', f]).err, /cannot reach the daemon at \/run\/keepalive-ts\.sock/);
  t.regex(cli(['status', '--config', join(dir, 'none.toml')]).err, /cannot read config .*none\.toml \(to find its control_socket\)/);
});

test('check rejects a bad file with every problem, naming file, line and key', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-cli-'));
  const f = join(dir, 'bad.toml');
  writeFileSync(f, '[[vrrp_instance]]\nname = "VI_1"\ninterface = "eth0"\nvirtual_router_id = 51\npriority = 300\nvirtual_ipaddress = ["10.0.0.50/24"]\nadvert_intt = 1\n');
  const r = cli(['check', '--config', f]);
  t.is(r.code, 1);
  t.regex(r.err, /bad\.toml:5 vrrp_instance\[0\]\.priority: must be 1\.\.255, got 300/);
  t.regex(r.err, /bad\.toml:7 vrrp_instance\[0\]\.advert_intt: unknown key .*did you mean "advert_int"/);
  const missing = cli(['check', '--config', join(dir, 'nope.toml')]);
  t.is(missing.code, 1);
  t.regex(missing.err, /nope\.toml/);
});

test('run without CAP_NET_RAW/CAP_NET_ADMIN says exactly what is missing', (t) => {
  // As root, stay root but drop every capability (bounding set included, so exec cannot regain
  // them); as non-root we lack them already. Staying uid 0 keeps the clone readable wherever it
  // lives (under /root, mode 0700, another user could not even load the CLI).
  const wrap = process.getuid?.() === 0 ? ['setpriv', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--'] : [];
  const r = cli(['run', '--config', join(ROOT, 'conf/director-a.toml')], wrap);
  t.is(r.code, 4, r.err);
  t.regex(r.err, /missing CAP_NET_ADMIN and CAP_NET_RAW/);
  t.regex(r.err, /CAP_NET_RAW: needed to send and receive VRRP/);
});

test('weight / drain / disable / enable check their arguments before asking the daemon: exit 1 with the form expected', (t) => {
  const sock = ['--control-socket', '/nonexistent/kt.sock'];
  const cases: Array<[string[], RegExp]> = [
    [['drain', '10.0.0.50', '10.0.0.21:80'], /not a virtual server: "10\.0\.0\.50" \(ADDR:PORT for TCP, udp:ADDR:PORT, fwmark:N; IPv6 in brackets/],
    [['drain', 'fd00::50:80', '10.0.0.21:80'], /not a virtual server/],
    [['disable', 'sctp:10.0.0.50:80', '10.0.0.21:80'], /not a virtual server/],
    [['enable', '10.0.0.50:80', 'web1:80'], /not a real server: "web1:80"/],
    [['weight', '10.0.0.50:80', '10.0.0.21:80', '-1'], /weight must be an integer 0\.\.2147483647, got "-1"/],
    [['weight', '10.0.0.50:80', '10.0.0.21:80', '2147483648'], /weight must be an integer/],
    [['weight', '10.0.0.50:80', '10.0.0.21:80'], /missing required argument 'n'/],
  ];
  for (const [args, re] of cases) {
    const r = cli([...args, ...sock]);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.err, re, args.join(' '));
  }
  // well-formed ones (IPv6, UDP, fwmark, a port-less real server) get as far as the socket
  for (const args of [['drain', 'udp:[fd00::50]:53', '[fd00::21]:53'], ['disable', 'fwmark:1', '10.0.0.21'], ['weight', 'tcp:10.0.0.50:80', '10.0.0.21:80', '0']]) {
    t.regex(cli([...args, ...sock]).err, /cannot reach the daemon at \/nonexistent\/kt\.sock/, args.join(' '));
  }
});

test('status --stats and --rate are exclusive, as in ipvsadm', (t) => {
  const r = cli(['status', '--stats', '--rate', '--control-socket', '/nonexistent/kt.sock']);
  t.is(r.code, 1);
  t.regex(r.err, /--stats and --rate are exclusive/);
});

test('reload and status report an unreachable daemon clearly', (t) => {
  const r = cli(['status', '--control-socket', '/nonexistent/kt.sock']);
  t.is(r.code, 1);
  t.regex(r.err, /cannot reach the daemon at \/nonexistent\/kt\.sock/);
  t.is(cli(['reload', '--control-socket', '/nonexistent/kt.sock']).code, 1);
});

test('check reports sync key problems with file:line and key: refused key files are errors, an inline key in a world-readable file a warning', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-cli-key-'));
  const base = '[[vrrp_instance]]\nname = "VI_1"\ninterface = "eth0"\nvirtual_router_id = 51\nvirtual_ipaddress = ["10.0.0.50/24"]\n\n[sync]\ninterface = "eth0"\ninstance = "VI_1"\n';
  const inline = join(dir, 'inline.toml');
  writeFileSync(inline, `${base}auth_key = "a-long-enough-sync-key"\n`, { mode: 0o644 });
  chmodSync(inline, 0o644);
  const r1 = cli(['check', '--config', inline]);
  t.is(r1.code, 0, r1.err);
  t.regex(r1.err, /inline\.toml:10 sync\.auth_key: warning: the sync key is inline in .* which everyone can read/);
  const keyFile = join(dir, 'sync.key');
  writeFileSync(keyFile, 'a-long-enough-sync-key\n');
  chmodSync(keyFile, 0o640);
  const viaFile = join(dir, 'file.toml');
  writeFileSync(viaFile, `${base}auth_key_file = "${keyFile}"\n`);
  const r2 = cli(['check', '--config', viaFile]);
  t.is(r2.code, 0, r2.err);
  t.regex(r2.err, /file\.toml:10 sync\.auth_key_file: warning: key file .* is accessible by its group \(mode 0640\)/);
  if (process.getuid?.() === 0) {
    chownSync(keyFile, 65534, 65534);
    const r3 = cli(['check', '--config', viaFile]);
    t.is(r3.code, 1);
    t.regex(r3.err, /file\.toml:10 sync\.auth_key_file: auth_key_file .* is owned by uid 65534, not root/);
  }
  const short = join(dir, 'short.toml');
  writeFileSync(short, `${base}auth_key = "short"\n`);
  const r4 = cli(['check', '--config', short]);
  t.is(r4.code, 1);
  t.regex(r4.err, /short\.toml:10 sync\.auth_key: must be >= 16 characters long, got 5 \(a sync key needs at least 16 bytes/);
});

/**
 * A script that starts 6 worker threads which each malloc 2,000 x 4 KiB, then prints node's
 * options and how many glibc malloc arenas besides the main one the process has: 64 MiB-aligned
 * anonymous read-write mappings, each followed at once by the rest of its 64 MiB reserved.
 */
const ARENA_PROBE = `import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
function arenas() {
  const maps = readFileSync('/proc/self/maps', 'utf8').trim().split('\\n').map((l) => { const [r, perm, , , inode] = l.split(/\\s+/); const [a, b] = r.split('-').map((x) => BigInt('0x' + x)); return { a, b, perm, inode }; });
  let n = 0;
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i];
    if (m.perm !== 'rw-p' || m.inode !== '0' || m.a % (64n << 20n) !== 0n) continue;
    const next = maps[i + 1];
    const end = next && next.a === m.b && next.perm === '---p' ? next.b : m.b;
    if (end - m.a === 64n << 20n) n++;
  }
  return n;
}
const src = "const k=[];for(let i=0;i<2000;i++)k.push(Buffer.allocUnsafeSlow(4096));require('node:worker_threads').parentPort.postMessage(k.length);setTimeout(()=>{},3000)";
const ws = Array.from({ length: 6 }, () => new Worker(src, { eval: true }));
await Promise.all(ws.map((w) => new Promise((r) => w.once('message', r))));
console.log(JSON.stringify({ execArgv: process.execArgv, arenas: arenas() }));
process.exit(0);
`;

test('the installed command runs node with its memory settings (the shebang), and the test daemons get the same', async (t) => {
  const { cliNodeArgs, cliNodeEnv } = await import('../lib/daemon.js');
  t.deepEqual(cliNodeArgs(), ['--max-semi-space-size=1', '--heap-growing-percent=20']);
  t.deepEqual(cliNodeEnv(), { MALLOC_ARENA_MAX: '2' });
  // executed through its shebang (env -S), as /usr/local/bin/keepalive-ts is: the V8 flags reach
  // node, and glibc holds its threads to 2 arenas (the main one and one more)
  const dir = mkdtempSync(join(tmpdir(), 'kt-shebang-'));
  const probe = join(dir, 'probe.mjs');
  const first = spawnSync('head', ['-1', CLI], { encoding: 'utf8' }).stdout;
  writeFileSync(probe, `${first}${ARENA_PROBE}`);
  chmodSync(probe, 0o755);
  const env = { ...process.env };
  delete env.MALLOC_ARENA_MAX;
  const r = spawnSync(probe, [], { encoding: 'utf8', timeout: 20_000, env });
  t.is(r.status, 0, r.stderr);
  const via = JSON.parse(r.stdout) as { execArgv: string[]; arenas: number };
  t.deepEqual(via.execArgv, ['--max-semi-space-size=1', '--heap-growing-percent=20']);
  t.true(via.arenas <= 1, `arenas besides the main one: ${via.arenas}`);
  // the same threads without the shebang's environment: one arena each (the probe can tell)
  const plain = spawnSync(process.execPath, [probe], { encoding: 'utf8', timeout: 20_000, env });
  t.is(plain.status, 0, plain.stderr);
  t.true((JSON.parse(plain.stdout) as { arenas: number }).arenas > 2, plain.stdout);
});
