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
