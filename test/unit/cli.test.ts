import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatStatus } from '../../src/cli/format-status.js';
import type { StatusReport } from '../../src/daemon/status.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

function cli(args: string[], wrap: string[] = []) {
  const cmd = [...wrap, process.execPath, CLI, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('check accepts the shipped configs (as files for other machines)', (t) => {
  for (const f of ['conf/keepalive.toml', 'conf/director-a.toml', 'conf/director-b.toml']) {
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
  for (const cmd of [[], ['run'], ['check'], ['reload'], ['status']]) {
    const r = cli([...cmd, '--help']);
    t.is(r.code, 0);
    t.regex(r.out, /Examples:\n  keepalive-ts /);
    t.regex(r.out, /Exit status:\n  0  success\n  1  error/);
  }
  t.regex(cli(['run', '--help']).out, /--config <file>\s+TOML config file \(default:\s+"\/etc\/keepalive-ts\/keepalive\.toml"\)/);
  t.regex(cli(['check', '--help']).out, /--config <file>\s+TOML config file \(default:\s+"\/etc\/keepalive-ts\/keepalive\.toml"\)/);
});

test('status and reload find the control socket in the --config file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-cli-'));
  const f = join(dir, 'lb.toml');
  writeFileSync(f, `[global]\ncontrol_socket = "${dir}/lb1.sock"\n`);
  for (const cmd of ['status', 'reload']) {
    const r = cli([cmd, '--config', f]);
    t.is(r.code, 1);
    t.regex(r.err, new RegExp(`cannot reach the daemon at ${dir}/lb1\\.sock`));
    // --control-socket wins over the file.
    t.regex(cli([cmd, '--config', f, '--control-socket', `${dir}/other.sock`]).err, /other\.sock/);
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
  // As root, drop to nobody with no capabilities; as non-root we lack them already.
  const wrap = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'] : [];
  const r = cli(['run', '--config', join(ROOT, 'conf/director-a.toml')], wrap);
  t.is(r.code, 4, r.err);
  t.regex(r.err, /missing CAP_NET_ADMIN and CAP_NET_RAW/);
  t.regex(r.err, /CAP_NET_RAW: needed to send and receive VRRP/);
});

test('reload and status report an unreachable daemon clearly', (t) => {
  const r = cli(['status', '--control-socket', '/nonexistent/kt.sock']);
  t.is(r.code, 1);
  t.regex(r.err, /cannot reach the daemon at \/nonexistent\/kt\.sock/);
  t.is(cli(['reload', '--control-socket', '/nonexistent/kt.sock']).code, 1);
});

test('status text lays out instances and ipvsadm-like service rows', (t) => {
  const s: StatusReport = {
    router_id: 'director-a', pid: 42, version: '0.1.0', config_file: '/etc/k.toml', uptime_s: 7,
    vrrp: [{ name: 'VI_1', interface: 'eth0', vrid: 51, version: 3, family: 4, state: 'MASTER', priority: 150, effective_priority: 90, master: '10.0.0.11',
      vips: ['10.0.0.50/24'], owned_vips: ['10.0.0.50/24'], transitions: 2, adverts_sent: 10, adverts_received: 3, drops: { bad_ttl: 2, auth_failure: 1 }, vips_restored: 0 }],
    vrrp_socket_drops: {},
    virtual_servers: [
      { key: 'tcp/10.0.0.50:80', service: 'TCP  10.0.0.50:80', address: '10.0.0.50', port: 80, ports: '80', family: 4, protocol: 'TCP', kind: 'PROXY', forward: 'Proxy',
        lb_algo: 'wlc', scheduler_in_effect: 'wlc', serving: true, sorry: true, conns: 7, in_pkts: null, out_pkts: null, in_bytes: 100, out_bytes: 200, active_conns: 0, inact_conns: 1,
        real_servers: [{ address: '10.0.0.21', port: 80, weight: 1, up: false, active_conns: 0, inact_conns: 1, conns: 5, in_pkts: null, out_pkts: null, in_bytes: 100, out_bytes: 200 }],
        sorry_server: { address: '10.0.0.30', port: 8080, in_use: true, active_conns: 0, inact_conns: 0, conns: 2, in_pkts: null, out_pkts: null, in_bytes: 10, out_bytes: 20 } },
      { key: 'fwmark/1', service: 'FWM  1', fwmark: 1, family: 4, protocol: 'TCP', kind: 'DR', forward: 'Route',
        lb_algo: 'mh', scheduler_in_effect: 'mh (mh-port)', serving: false, sorry: false, conns: 3, in_pkts: 30, out_pkts: 0, in_bytes: 3000, out_bytes: 0, active_conns: null, inact_conns: null,
        real_servers: [{ address: '10.0.0.22', port: 0, weight: 2, up: true, active_conns: null, inact_conns: null, conns: 3, in_pkts: 30, out_pkts: 0, in_bytes: 3000, out_bytes: 0 }],
        sorry_server: null },
    ],
  };
  const out = formatStatus(s);
  t.regex(out, /VI_1\s+eth0\s+51\s+v3\s+MASTER\s+90\(150\)\s+10\.0\.0\.11\s+10\.0\.0\.50\/24\s+2\s+10\s+3\s+3/);
  t.regex(out, /Prot LocalAddress:Port\s+Scheduler\s+Forward\s+Weight\s+ActiveConn\s+InActConn\s+Conns\s+InPkts\s+OutPkts\s+InBytes\s+OutBytes/);
  t.regex(out, /TCP  10\.0\.0\.50:80\s+wlc\s+Proxy\s+0\s+1\s+7\s+-\s+-\s+100\s+200\s+sorry-server/);
  t.regex(out, /-> 10\.0\.0\.21:80\s+Proxy\s+1\s+0\s+1\s+5\s+-\s+-\s+100\s+200\s+DOWN/);
  t.regex(out, /-> 10\.0\.0\.30:8080\s+Proxy\s+0\s+0\s+2\s+-\s+-\s+10\s+20\s+SORRY \(in use\)/);
  t.regex(out, /FWM  1\s+mh \(mh-port\)\s+Route\s+-\s+-\s+3\s+30\s+0\s+3000\s+0\s+not-serving/);
  t.regex(out, /-> 10\.0\.0\.22\s+Route\s+2\s+-\s+-\s+3\s+30\s+0\s+3000\s+0\n/);
});
