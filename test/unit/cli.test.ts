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
    virtual_servers: [{ address: '10.0.0.50', port: 80, protocol: 'TCP', lb_algo: 'wlc', serving: true, sorry: false, conns: 5, in_bytes: 100, out_bytes: 200,
      real_servers: [{ address: '10.0.0.21', port: 80, weight: 1, up: false, active_conns: 0, inact_conns: 1, conns: 5, in_bytes: 100, out_bytes: 200 }] }],
  };
  const out = formatStatus(s);
  t.regex(out, /VI_1\s+eth0\s+51\s+v3\s+MASTER\s+90\(150\)\s+10\.0\.0\.11\s+10\.0\.0\.50\/24\s+2\s+10\s+3\s+3/);
  t.regex(out, /TCP\s+10\.0\.0\.50:80\s+5\s+100\s+200\s+wlc/);
  t.regex(out, /-> 10\.0\.0\.21:80\s+1\s+0\s+1\s+5\s+100\s+200\s+DOWN/);
});

test('status text shows BGP sessions and prefixes with the reason of the last withdrawal', (t) => {
  const s: StatusReport = {
    router_id: 'director-1', pid: 42, version: '0.1.0', config_file: '/etc/k.toml', uptime_s: 7,
    vrrp: [], vrrp_socket_drops: {}, virtual_servers: [],
    bgp: {
      local_as: 65001, router_id: '10.78.0.11',
      bird: { running: true, pid: 4242, version: '2.0.12', restarts: 1, last_error: null, config_file: '/run/kt/bird.conf', control_socket: '/run/kt/bird.ctl' },
      tracked_interfaces: [{ name: 'eth0', up: true }],
      sessions: [
        { peer: '10.78.0.1', remote_as: 65000, protocol: 'kt_peer_10_78_0_1', state: 'Established', established: true, since: '2026-01-01T00:00:00.000Z', uptime_s: 3725, info: 'Established', last_error: null, bfd: 'Up', exported: 1 },
        { peer: 'fd78::1', remote_as: 65000, protocol: 'kt_peer_fd78__1', state: 'Active', established: false, since: null, uptime_s: null, info: 'Active Socket: Connection refused', last_error: 'Socket: Connection refused', bfd: null, exported: null },
      ],
      prefixes: [
        { prefix: '10.99.0.10/32', mode: 'healthy', announced: true, reason: 'announced: quorum on tcp/10.99.0.10:80', since: '2026-01-01T00:01:00.000Z',
          last_withdrawal: { reason: 'withdrawn: no quorum on tcp/10.99.0.10:80', at: '2026-01-01T00:00:30.000Z' } },
        { prefix: 'fd99::10/128', mode: 'healthy', announced: false, reason: 'withdrawn: not serving udp/[fd99::10]:53 yet', since: '2026-01-01T00:00:00.000Z', last_withdrawal: null },
      ],
      withdrawals: { quorum: 1 },
    },
  };
  const out = formatStatus(s);
  t.regex(out, /^BGP {2}AS 65001 {2}router id 10\.78\.0\.11 {2}BIRD 2\.0\.12 pid 4242 {2}restarts 1 {2}tracking eth0$/m);
  t.regex(out, /10\.78\.0\.1\s+65000\s+Established\s+1h2m\s+Up\s+1\s*$/m);
  t.regex(out, /fd78::1\s+65000\s+Active\s+-\s+-\s+-\s+Socket: Connection refused$/m);
  t.regex(out, /10\.99\.0\.10\/32\s+healthy\s+announced\s+2026-01-01T00:01:00Z\s+quorum on tcp\/10\.99\.0\.10:80 {2}\(last withdrawn 2026-01-01T00:00:30Z: no quorum on tcp\/10\.99\.0\.10:80\)$/m);
  t.regex(out, /fd99::10\/128\s+healthy\s+withdrawn\s+\S+\s+not serving udp\/\[fd99::10\]:53 yet$/m);
  t.notRegex(formatStatus({ ...s, bgp: undefined }), /BGP/);
});
