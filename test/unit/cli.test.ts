import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
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

test('check accepts the shipped configs', (t) => {
  for (const f of ['conf/keepalive.toml', 'conf/director-a.toml', 'conf/director-b.toml']) {
    const r = cli(['check', '--config', join(ROOT, f)]);
    t.is(r.code, 0, r.err);
    t.regex(r.out, /OK \(router_id /);
  }
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
    virtual_servers: [{ address: '10.0.0.50', port: 80, protocol: 'TCP', lb_algo: 'wlc', serving: true, sorry: false, conns: 5, in_bytes: 100, out_bytes: 200,
      real_servers: [{ address: '10.0.0.21', port: 80, weight: 1, up: false, active_conns: 0, inact_conns: 1, conns: 5, in_bytes: 100, out_bytes: 200 }] }],
  };
  const out = formatStatus(s);
  t.regex(out, /VI_1\s+eth0\s+51\s+v3\s+MASTER\s+90\(150\)\s+10\.0\.0\.11\s+10\.0\.0\.50\/24\s+2\s+10\s+3\s+3/);
  t.regex(out, /TCP\s+10\.0\.0\.50:80\s+5\s+100\s+200\s+wlc/);
  t.regex(out, /-> 10\.0\.0\.21:80\s+1\s+0\s+1\s+5\s+100\s+200\s+DOWN/);
});
