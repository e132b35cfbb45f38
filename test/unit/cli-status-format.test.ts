// `keepalive-ts status` text against fixtures in ipvsadm's layout. The fixtures
// (test/fixtures/status/ipvsadm-*.txt) are written by make-fixtures.py beside them, with
// ipvsadm.c's own printf formats (print_title, print_service_entry, print_largenum), not by the
// formatter under test.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatIpvs, formatOverride, formatStatus, largenum } from '../../src/cli/format-status.js';
import type { RealServerStatus, StatusReport, VirtualServerStatus } from '../../src/daemon/status.js';
import type { ServiceKey } from '../../src/util/endpoint.js';

const fixture = (name: string): string => readFileSync(fileURLToPath(new URL(`../../../test/fixtures/status/ipvsadm-${name}.txt`, import.meta.url)), 'utf8');

const rates = (cps: number, pps: number | null, bps: number, obps: number, opps: number | null = pps) => ({ cps, in_pps: pps, out_pps: opps, in_bps: bps, out_bps: obps });

function rs(address: string, port: number, o: Partial<RealServerStatus>): RealServerStatus {
  return {
    address, port, weight: 1, configured_weight: 1, effective_weight: 1, override: null, slow_start: null, up: true, health: 'up',
    active_conns: 0, inact_conns: 0, conns: 0, in_pkts: null, out_pkts: null, in_bytes: 0, out_bytes: 0, rates: rates(0, null, 0, 0), ...o,
  };
}

const web: VirtualServerStatus = {
  key: 'tcp/10.0.0.50:80', service: 'TCP  10.0.0.50:80', protocol: 'TCP', address: '10.0.0.50', ports: '80', port: 80, family: 4,
  kind: 'PROXY', forward: 'Proxy', lb_algo: 'wlc', scheduler_in_effect: 'wlc', sched_flags: [], persistence_timeout: 300, persistence_granularity: '255.255.255.0',
  ops: false, slow_start: 10, serving: true, sorry: false, quorum_up: true,
  conns: 1234, in_pkts: null, out_pkts: null, in_bytes: 123456789, out_bytes: 98765432101, active_conns: 5, inact_conns: 1, rates: rates(12, null, 34567, 1234567),
  real_servers: [
    rs('10.0.0.21', 80, { weight: 10, active_conns: 3, inact_conns: 1, conns: 1000, in_bytes: 100000, out_bytes: 2000000, rates: rates(10, null, 2000, 40000) }),
    rs('10.0.0.22', 80, { weight: 0, effective_weight: 0, up: false, health: 'down', reason: 'HTTP_GET[0]: status 503 from 10.0.0.22:80', last_change: '2026-01-01T00:00:00.000Z', conns: 200, in_bytes: 20000, out_bytes: 400000 }),
    rs('10.0.0.23', 80, { weight: 0, effective_weight: 0, override: { action: 'drain', since: '2026-01-01T00:00:00.000Z' }, active_conns: 2, conns: 34, in_bytes: 3400, out_bytes: 68000, rates: rates(2, null, 200, 4000) }),
    rs('10.0.0.24', 80, {
      weight: 7, effective_weight: 2, override: { action: 'weight', weight: 2, since: '2026-01-01T00:00:00.000Z' },
      slow_start: { since: '2026-01-01T00:00:00.000Z', until: '2026-01-01T00:00:10.000Z', progress: 0.357 },
    }),
  ],
  sorry_server: { address: '10.0.0.30', port: 8080, in_use: false, active_conns: 0, inact_conns: 0, conns: 0, in_pkts: null, out_pkts: null, in_bytes: 0, out_bytes: 0, rates: rates(0, null, 0, 0) },
};

const dns: VirtualServerStatus = {
  key: 'udp/[2001:db8::53]:53', service: 'UDP  [2001:db8::53]:53', protocol: 'UDP', address: '2001:db8::53', ports: '53', port: 53, family: 6,
  kind: 'DR', forward: 'Route', lb_algo: 'rr', scheduler_in_effect: 'rr', sched_flags: [], persistence_timeout: 0, persistence_granularity: '128',
  ops: true, slow_start: 0, serving: false, sorry: false, quorum_up: true,
  conns: 5, in_pkts: 100, out_pkts: 90, in_bytes: 6000, out_bytes: 9000, active_conns: null, inact_conns: null, rates: rates(1, 3, 150, 300, 2),
  real_servers: [rs('2001:db8::21', 53, { active_conns: null, inact_conns: null, conns: 5, in_pkts: 100, out_pkts: 90, in_bytes: 6000, out_bytes: 9000, rates: rates(1, 3, 150, 300, 2) })],
  sorry_server: null,
};

const fwm: VirtualServerStatus = {
  key: 'fwmark/1', service: 'FWM  1', protocol: 'TCP', fwmark: 1, family: 4,
  kind: 'NAT', forward: 'Masq', lb_algo: 'sh', scheduler_in_effect: 'sh (sh-port, sh-fallback)', sched_flags: ['sh-port', 'flag-1'], persistence_timeout: 0, persistence_granularity: '255.255.255.255',
  ops: false, slow_start: 0, serving: true, sorry: true, quorum_up: false,
  conns: 7, in_pkts: 70, out_pkts: 0, in_bytes: 7000, out_bytes: 0, active_conns: 0, inact_conns: 1, rates: rates(0, 0, 0, 0),
  real_servers: [rs('10.0.0.25', 0, { weight: 0, effective_weight: 0, override: { action: 'disable', since: '2026-01-01T00:00:00.000Z' }, in_pkts: 0, out_pkts: 0, rates: rates(0, 0, 0, 0) })],
  sorry_server: { address: '10.0.0.30', port: 0, in_use: true, active_conns: 0, inact_conns: 1, conns: 7, in_pkts: 70, out_pkts: 0, in_bytes: 7000, out_bytes: 0, rates: rates(0, 0, 0, 0) },
};

const STATUS: StatusReport = {
  router_id: 'director-a', pid: 42, version: '0.1.0', config_file: '/etc/keepalive-ts/keepalive.toml', uptime_s: 7,
  vrrp: [{ name: 'VI_1', interface: 'eth0', vrid: 51, version: 3, family: 4, state: 'MASTER', priority: 150, effective_priority: 90, master: '10.0.0.11',
    vips: ['10.0.0.50/24'], owned_vips: ['10.0.0.50/24'], transitions: 2, adverts_sent: 10, adverts_received: 3, drops: { bad_ttl: 2, auth_failure: 1 }, vips_restored: 0 }],
  vrrp_socket_drops: {},
  virtual_servers: [web, dns, fwm],
};

test('status: ipvsadm -L -n layout (Prot LocalAddress:Port Scheduler Flags; Forward Weight ActiveConn InActConn)', (t) => {
  t.is(formatIpvs(STATUS), fixture('list'));
});

test('status --stats: ipvsadm --stats layout, K/M/G as print_largenum', (t) => {
  t.is(formatIpvs(STATUS, { format: 'stats' }), fixture('stats'));
});

test('status --stats --exact: numbers in full, the column widening as ipvsadm --exact', (t) => {
  t.is(formatIpvs(STATUS, { format: 'stats', exact: true }), fixture('stats-exact'));
});

test('status --rate: ipvsadm --rate layout (CPS InPPS OutPPS as %8u for real servers, InBPS OutBPS as large numbers)', (t) => {
  t.is(formatIpvs(STATUS, { format: 'rate' }), fixture('rate'));
});

test('status text: the daemon line and the VRRP instances above the ipvsadm table', (t) => {
  const out = formatStatus(STATUS);
  t.regex(out, /^keepalive-ts 0\.1\.0 {2}router_id director-a {2}pid 42/);
  t.regex(out, /VI_1\s+eth0\s+51\s+v3\s+MASTER\s+90\(150\)\s+10\.0\.0\.11\s+10\.0\.0\.50\/24\s+2\s+10\s+3\s+3/);
  t.true(out.endsWith(`\n\n${fixture('list')}`), 'the ipvsadm part comes last, after a blank line');
  t.true(out.indexOf('VRRP instances') < out.indexOf('IP Virtual Server version'));
});

test('largenum follows print_largenum: 9 wide, K/M/G/T past 8 digits, "-" for unknown', (t) => {
  t.is(largenum(0), '        0');
  t.is(largenum(99_999_999), ' 99999999');
  t.is(largenum(100_000_000), '  100000K');
  t.is(largenum(999_999_999), '  999999K');
  t.is(largenum(1_000_000_000), '    1000M');
  t.is(largenum(99_999_999_999), '   99999M');
  t.is(largenum(100_000_000_000), '     100G');
  t.is(largenum(100_000_000_000_000), '     100T');
  t.is(largenum(null), '        -');
  t.is(largenum(12, true), '       12');
  t.is(largenum(123_456_789, true), ' 123456789');
});

test('override replies in one line: what changed, the configured weight, and the caveats', (t) => {
  const base = { virtual_server: 'tcp/10.0.0.50:80' as ServiceKey, service: 'TCP  10.0.0.50:80', real_server: '10.0.0.21:80', configured_weight: 1, ramping: false, up: true } as const;
  t.is(formatOverride({ ...base, action: 'drain', override: { action: 'drain' }, effective_weight: 0, weight: 0 }),
    '10.0.0.21:80 in TCP 10.0.0.50:80: drained: weight 0, no new connections, open ones finish; this director only; lost on restart\n');
  t.is(formatOverride({ ...base, action: 'weight', override: { action: 'weight', weight: 5 }, effective_weight: 5, weight: 5 }),
    '10.0.0.21:80 in TCP 10.0.0.50:80: weight 5 (configured 1); this director only; lost on restart\n');
  t.is(formatOverride({ ...base, action: 'enable', override: null, effective_weight: 1, weight: 1, ramping: true }),
    '10.0.0.21:80 in TCP 10.0.0.50:80: enabled: back to the configured weight 1; slow start: ramping up to weight 1; this director only; lost on restart\n');
  t.regex(formatOverride({ ...base, action: 'enable', override: null, effective_weight: 0, weight: 0, up: false }), /it is down \(its checks fail\)/);
  t.regex(formatOverride({ ...base, action: 'disable', override: { action: 'disable' }, effective_weight: 0, weight: 0 }), /disabled: out of the pool/);
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

test('status text shows connection sync: entries held, the measured lag, the last full resync, rejects by reason', (t) => {
  const sync: NonNullable<StatusReport['sync']> = {
    role: 'backup', instance: 'VI_1', table: { templates: 20, udp_flows: 1, conns: 4000 },
    sent: { messages: 0, entries: 0, bytes: 0, send_errors: 0, queue_drops: 0, snapshots: 0, snapshot_requests: 0 },
    received: { messages: 900, entries: 4021, bytes: 1, dropped: { bad_hmac: 5, replayed: 0 }, snapshot_requests_sent: 1 },
    lag: { p50_ms: 3.25, p99_ms: 61.4, max_ms: 80, last_ms: 2.5, window: 4021, measured: 4021, unmeasured: 2, transit_ms: 0.2 },
    echo: { acks_sent: 50, acks_received: 0, rtt_ms: null },
    snapshots_received: 1, snapshots_incomplete: 0, last_snapshot_ms: 412, last_snapshot_at: Date.UTC(2026, 10, 29, 16, 0, 0),
    promotions: 0, demotions: 0, restored: 0, ignored_as_master: 0, errors: 0,
  };
  const out = formatStatus({ ...STATUS, sync });
  t.regex(out, /Connection sync {2}backup \(follows VI_1\) {2}held 4021 \(templates 20, udp flows 1, conns 4000\)/);
  t.regex(out, /lag p50 3\.3 ms {2}p99 61 ms {2}last 2\.5 ms {2}\(last 4021 entries; 4021 measured, 2 not\) {2}rtt -/);
  t.regex(out, /last full resync 2026-11-29T16:00:00Z in 412 ms {2}rejects: bad_hmac 5\n/);
  t.notRegex(formatStatus(STATUS), /Connection sync/);
});

test('status notes a proxy service whose TCP bytes go through node:net (native relay unavailable), nothing for the native relay', (t) => {
  const list = (relay: 'native' | 'node') => formatIpvs({ ...STATUS, virtual_servers: [{ ...web, relay }] });
  t.regex(list('node'), /TCP {2}10\.0\.0\.50:80 wlc.*# .*relayed by node:net/);
  t.is(list('native'), formatIpvs({ ...STATUS, virtual_servers: [web] }));
});
