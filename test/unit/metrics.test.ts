import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gatedTest } from '../lib/gated-test.js';
import type { StatusReport, VrrpInstanceStatus, VirtualServerStatus } from '../../src/daemon/status.js';
import { DROP_REASONS } from '../../src/vrrp/drop.js';
import {
  DROPPED_DEFAULT_METRICS,
  METRIC_DEFS,
  METRIC_PREFIX,
  VRRP_STATES,
  createMetricsRegistry,
  realServerId,
  virtualServerId,
  type MetricsSnapshot,
} from '../../src/metrics/index.js';

// ---------------------------------------------------------------------------------------------
// A small parser for the text exposition format, enough to look series up by name and labels.

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  text: string;
  series: Series[];
  types: Map<string, string>;
}

function parseExposition(text: string): Exposition {
  const series: Series[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const typeLine = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (typeLine) {
      types.set(typeLine[1]!, typeLine[2]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    const body = m[2] ?? '';
    let lm: RegExpExecArray | null;
    let end = 0;
    while ((lm = re.exec(body)) !== null) {
      labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      end = re.lastIndex;
    }
    if (end !== body.length) throw new Error(`unparsable labels: ${line}`);
    series.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { text, series, types };
}

function find(e: Exposition, name: string, labels: Record<string, string> = {}): Series[] {
  return e.series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one series matching exactly; fails when there is none or several. */
function value(t: ExecutionContext, e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = find(e, name, labels);
  t.is(hits.length, 1, `expected one ${name}${JSON.stringify(labels)}, found ${hits.length}`);
  return hits[0]?.value;
}

const P = METRIC_PREFIX;

// ---------------------------------------------------------------------------------------------
// A hand-built snapshot

function instance(over: Partial<VrrpInstanceStatus> & Pick<VrrpInstanceStatus, 'name'>): VrrpInstanceStatus {
  return {
    interface: 'eth0',
    vrid: 51,
    version: 3,
    family: 4,
    state: 'BACKUP',
    priority: 100,
    effective_priority: 100,
    master: null,
    vips: ['10.0.0.50/24'],
    owned_vips: [],
    transitions: 0,
    adverts_sent: 0,
    adverts_received: 0,
    drops: {},
    vips_restored: 0,
    ...over,
  };
}

function snapshot(): { status: StatusReport; extras: NonNullable<MetricsSnapshot['extras']> } {
  const counters = { in_pkts: null, out_pkts: null };
  const web: VirtualServerStatus = {
    key: 'tcp/10.0.0.50:80',
    service: 'TCP  10.0.0.50:80',
    address: '10.0.0.50',
    port: 80,
    ports: '80',
    family: 4,
    protocol: 'TCP',
    kind: 'PROXY',
    forward: 'Proxy',
    lb_algo: 'wlc',
    scheduler_in_effect: 'wlc',
    serving: true,
    sorry: false,
    quorum_up: true,
    conns: 1000,
    ...counters,
    in_bytes: 50_000,
    out_bytes: 900_000,
    active_conns: 7,
    inact_conns: 3,
    real_servers: [
      { address: '10.0.0.21', port: 80, weight: 3, configured_weight: 1, override: { action: 'weight', weight: 3, since: '2026-01-01T00:00:00.000Z' }, up: true, active_conns: 7, inact_conns: 2, conns: 600, ...counters, in_bytes: 30_000, out_bytes: 500_000 },
      { address: '10.0.0.22', port: 80, weight: 1, configured_weight: 1, override: null, up: false, active_conns: 0, inact_conns: 1, conns: 400, ...counters, in_bytes: 20_000, out_bytes: 400_000 },
    ],
    sorry_server: { address: '10.0.0.30', port: 8080, in_use: false, active_conns: 0, inact_conns: 0, conns: 4, ...counters, in_bytes: 40, out_bytes: 400 },
  };
  const dns: VirtualServerStatus = {
    key: 'udp/[2001:db8::53]:53',
    service: 'UDP  [2001:db8::53]:53',
    address: '2001:db8::53',
    port: 53,
    ports: '53',
    family: 6,
    protocol: 'UDP',
    kind: 'DR',
    forward: 'Route',
    lb_algo: 'rr',
    scheduler_in_effect: 'rr',
    serving: true,
    sorry: false,
    quorum_up: false,
    conns: 12,
    in_pkts: 24,
    out_pkts: 0,
    in_bytes: 1200,
    out_bytes: 4800,
    active_conns: null,
    inact_conns: null,
    real_servers: [{ address: '2001:db8::21', port: 53, weight: 1, up: true, active_conns: null, inact_conns: null, conns: 12, in_pkts: 24, out_pkts: 0, in_bytes: 1200, out_bytes: 4800 }],
    sorry_server: null,
  };
  return {
    status: {
      router_id: 'lb1',
      pid: 4242,
      version: '0.1.0',
      config_file: '/etc/keepalive-ts/keepalive.toml',
      uptime_s: 60,
      vrrp: [
        instance({ name: 'VI_WEB', state: 'MASTER', priority: 150, effective_priority: 140, transitions: 2, adverts_sent: 120, adverts_received: 3, drops: { bad_ttl: 4, auth_failure: 1 }, vips_restored: 1 }),
        instance({ name: 'VI_DNS6', interface: 'eth1', vrid: 52, family: 6, state: 'BACKUP', priority: 100, effective_priority: 100, transitions: 1, adverts_received: 200 }),
      ],
      vrrp_socket_drops: { 'eth0/v4': { too_short: 2, wrong_vrid: 9 } },
      virtual_servers: [web, dns],
      bgp: {
        local_as: 65001,
        router_id: null,
        bird: { running: true, pid: 99, version: '2.0.12', restarts: 2, last_error: 'BIRD exited (SIGKILL) after 3.2 s', config_file: '/run/b/bird.conf', control_socket: '/run/b/bird.ctl' },
        tracked_interfaces: [{ name: 'eth0', up: true }],
        sessions: [
          { peer: '10.0.0.1', remote_as: 65000, protocol: 'kt_peer_10_0_0_1', state: 'Established', established: true, since: null, uptime_s: 125, info: 'Established', last_error: null, bfd: 'Up', exported: 1 },
          { peer: '2001:db8::1', remote_as: 65000, protocol: 'kt_peer_2001_db8__1', state: 'Active', established: false, since: null, uptime_s: null, info: 'Active', last_error: 'Error: BFD session down', bfd: 'Down', exported: null },
        ],
        prefixes: [
          { prefix: '10.0.0.50/32', mode: 'master', announced: true, reason: 'announced: vrrp_instance VI_WEB is MASTER', since: '2026-01-01T00:00:00.000Z', last_withdrawal: null },
          { prefix: '2001:db8::53/128', mode: 'healthy', announced: false, reason: 'withdrawn: no quorum on udp/[2001:db8::53]:53', since: '2026-01-01T00:00:00.000Z', last_withdrawal: { reason: 'withdrawn: no quorum on udp/[2001:db8::53]:53', at: '2026-01-01T00:00:00.000Z' } },
        ],
        withdrawals: { stopping: 0, link: 0, quorum: 3, vrrp: 1, not_serving: 0, removed: 0 },
      },
    },
    extras: {
      vrrp: { VI_WEB: { garp_sent: 10 }, VI_DNS6: { na_sent: 0 }, VI_GONE: { garp_sent: 99 } },
      checks: [
        { virtual_server: 'tcp/10.0.0.50:80', real_server: '10.0.0.21:80', type: 'HTTP_GET', last_duration_seconds: 0.012, failures: 0 },
        { virtual_server: 'tcp/10.0.0.50:80', real_server: '10.0.0.22:80', type: 'HTTP_GET', last_duration_seconds: 3, failures: 17 },
        { virtual_server: 'udp/[2001:db8::53]:53', real_server: '[2001:db8::21]:53', type: 'MISC_CHECK', failures: 1 },
      ],
      sync: { messages_sent: 500, messages_received: 20, rejected: { bad_version: 2, unknown_virtual_server: 1 }, entries: 345,
        lag: { p50_ms: 12.5, p99_ms: 140, last_ms: 9.25, measured: 4000, unmeasured: 3 }, rtt_ms: 0.5 },
      reload: { ok: 3, error: 1 },
      overrides: { weight: 2, drain: 1, enable: 1 },
    },
  };
}

async function scrape(snap: () => MetricsSnapshot, opts: { defaultMetrics?: boolean } = {}): Promise<Exposition> {
  return parseExposition(await createMetricsRegistry(snap, opts).metrics());
}

// ---------------------------------------------------------------------------------------------

test('label helpers: the service key, and real servers as endpoint text (IPv6 bracketed, no port = bare address)', (t) => {
  t.is(virtualServerId({ key: 'fwmark/1' }), 'fwmark/1');
  t.is(realServerId({ address: '10.0.0.21', port: 80 }), '10.0.0.21:80');
  t.is(realServerId({ address: 'fd00::1', port: 8080 }), '[fd00::1]:8080');
  t.is(realServerId({ address: '10.0.0.21', port: 0 }), '10.0.0.21');
});

test('VRRP series of a hand-built snapshot', async (t) => {
  const s = snapshot();
  const e = await scrape(() => s, { defaultMetrics: false });
  const web = { vrrp_instance: 'VI_WEB', interface: 'eth0', vrid: '51' };
  const dns = { vrrp_instance: 'VI_DNS6', interface: 'eth1', vrid: '52' };

  t.is(value(t, e, `${P}info`, { version: '0.1.0', router_id: 'lb1' }), 1);

  // One-hot state: every known state present, exactly one at 1 per instance.
  for (const st of VRRP_STATES) {
    t.is(value(t, e, `${P}vrrp_state`, { ...web, state: st }), st === 'MASTER' ? 1 : 0);
    t.is(value(t, e, `${P}vrrp_state`, { ...dns, state: st }), st === 'BACKUP' ? 1 : 0);
  }
  t.is(find(e, `${P}vrrp_state`).length, 2 * VRRP_STATES.length);

  t.is(value(t, e, `${P}vrrp_transitions_total`, web), 2);
  t.is(value(t, e, `${P}vrrp_transitions_total`, dns), 1);
  t.is(value(t, e, `${P}vrrp_adverts_sent_total`, web), 120);
  t.is(value(t, e, `${P}vrrp_adverts_sent_total`, dns), 0);
  t.is(value(t, e, `${P}vrrp_adverts_received_total`, web), 3);
  t.is(value(t, e, `${P}vrrp_adverts_received_total`, dns), 200);
  t.is(value(t, e, `${P}vrrp_priority`, web), 150);
  t.is(value(t, e, `${P}vrrp_effective_priority`, web), 140);
  t.is(value(t, e, `${P}vrrp_effective_priority`, dns), 100);
  t.is(value(t, e, `${P}vrrp_vips_restored_total`, web), 1);

  // Drops: per instance (with the instance's socket) and per socket with vrrp_instance="".
  const drop = `${P}vrrp_packets_dropped_total`;
  t.is(value(t, e, drop, { vrrp_instance: 'VI_WEB', socket: 'eth0/v4', reason: 'bad_ttl' }), 4);
  t.is(value(t, e, drop, { vrrp_instance: 'VI_WEB', socket: 'eth0/v4', reason: 'auth_failure' }), 1);
  t.is(value(t, e, drop, { vrrp_instance: 'VI_WEB', socket: 'eth0/v4', reason: 'bad_checksum' }), 0);
  t.is(value(t, e, drop, { vrrp_instance: 'VI_DNS6', socket: 'eth1/v6', reason: 'bad_ttl' }), 0);
  t.is(value(t, e, drop, { vrrp_instance: '', socket: 'eth0/v4', reason: 'too_short' }), 2);
  t.is(value(t, e, drop, { vrrp_instance: '', socket: 'eth0/v4', reason: 'wrong_vrid' }), 9);
  // Every reason is pre-filled with 0, for both instances and the one socket.
  t.is(find(e, drop).length, 3 * DROP_REASONS.length);
  t.true(find(e, drop).every((s) => (DROP_REASONS as readonly string[]).includes(s.labels.reason!)));

  // GARP/NA: only what the extras provide, only for instances in the status (VI_GONE ignored).
  t.is(value(t, e, `${P}vrrp_garp_sent_total`, { ...web, kind: 'garp' }), 10);
  t.is(value(t, e, `${P}vrrp_garp_sent_total`, { ...dns, kind: 'na' }), 0);
  t.is(find(e, `${P}vrrp_garp_sent_total`).length, 2);
  t.is(find(e, `${P}vrrp_garp_sent_total`, { vrrp_instance: 'VI_GONE' }).length, 0);

  // No series carries a label named `instance` (it would clash with Prometheus' target label).
  t.false(e.series.some((s) => 'instance' in s.labels));
});

test('virtual server, real server, check, sync and reload series of a hand-built snapshot', async (t) => {
  const s = snapshot();
  const e = await scrape(() => s, { defaultMetrics: false });
  const web = { virtual_server: 'tcp/10.0.0.50:80' };
  const dns = { virtual_server: 'udp/[2001:db8::53]:53' };

  t.is(value(t, e, `${P}virtual_server_connections_total`, web), 1000);
  t.is(value(t, e, `${P}virtual_server_connections_total`, dns), 12);
  t.is(value(t, e, `${P}virtual_server_active_connections`, web), 7);
  // the DR service's data plane cannot tell active connections: no series rather than a wrong 0
  t.is(find(e, `${P}virtual_server_active_connections`, dns).length, 0);
  t.is(find(e, `${P}real_server_active_connections`, { ...dns, real_server: '[2001:db8::21]:53' }).length, 0);
  // packets: none for the proxy's TCP service (it never sees packets), both directions for the other
  t.is(find(e, `${P}virtual_server_packets_total`, web).length, 0);
  t.is(value(t, e, `${P}virtual_server_packets_total`, { ...dns, direction: 'in' }), 24);
  t.is(value(t, e, `${P}real_server_packets_total`, { ...dns, real_server: '[2001:db8::21]:53', direction: 'out' }), 0);
  t.is(value(t, e, `${P}virtual_server_info`, { ...web, kind: 'PROXY', scheduler: 'wlc' }), 1);
  t.is(value(t, e, `${P}virtual_server_info`, { ...dns, kind: 'DR', scheduler: 'rr' }), 1);
  // the sorry server is not a real server: its own series, none for the service without one
  t.is(value(t, e, `${P}sorry_server_active`, web), 0);
  t.is(value(t, e, `${P}sorry_server_connections_total`, web), 4);
  t.is(find(e, `${P}sorry_server_active`, dns).length, 0);
  t.is(find(e, `${P}real_server_up`, { real_server: '10.0.0.30:8080' }).length, 0);
  t.is(value(t, e, `${P}virtual_server_bytes_total`, { ...web, direction: 'in' }), 50_000);
  t.is(value(t, e, `${P}virtual_server_bytes_total`, { ...web, direction: 'out' }), 900_000);
  t.is(value(t, e, `${P}virtual_server_bytes_total`, { ...dns, direction: 'out' }), 4800);
  t.is(value(t, e, `${P}virtual_server_quorum_up`, web), 1);
  t.is(value(t, e, `${P}virtual_server_quorum_up`, dns), 0);

  const rs1 = { ...web, real_server: '10.0.0.21:80' };
  const rs2 = { ...web, real_server: '10.0.0.22:80' };
  const rs6 = { ...dns, real_server: '[2001:db8::21]:53' };
  t.is(value(t, e, `${P}real_server_up`, rs1), 1);
  t.is(value(t, e, `${P}real_server_up`, rs2), 0);
  t.is(value(t, e, `${P}real_server_up`, rs6), 1);
  t.is(value(t, e, `${P}real_server_weight`, rs1), 3);
  t.is(value(t, e, `${P}real_server_active_connections`, rs1), 7);
  t.is(value(t, e, `${P}real_server_inactive_connections`, rs2), 1);
  t.is(find(e, `${P}real_server_inactive_connections`, rs6).length, 0);
  t.is(value(t, e, `${P}real_server_connections_total`, rs2), 400);
  t.is(value(t, e, `${P}real_server_bytes_total`, { ...rs1, direction: 'in' }), 30_000);
  t.is(value(t, e, `${P}real_server_bytes_total`, { ...rs2, direction: 'out' }), 400_000);
  t.is(find(e, `${P}real_server_bytes_total`).length, 6);

  t.is(value(t, e, `${P}check_duration_seconds`, { ...rs1, check: 'HTTP_GET' }), 0.012);
  t.is(value(t, e, `${P}check_duration_seconds`, { ...rs2, check: 'HTTP_GET' }), 3);
  // A check that never completed has no duration yet, but its failures are exported.
  t.is(find(e, `${P}check_duration_seconds`, rs6).length, 0);
  t.is(value(t, e, `${P}check_failures_total`, { ...rs6, check: 'MISC_CHECK' }), 1);
  t.is(value(t, e, `${P}check_failures_total`, { ...rs2, check: 'HTTP_GET' }), 17);

  t.is(value(t, e, `${P}sync_messages_total`, { direction: 'sent' }), 500);
  t.is(value(t, e, `${P}sync_messages_total`, { direction: 'received' }), 20);
  t.is(value(t, e, `${P}sync_rejected_total`, { reason: 'bad_version' }), 2);
  t.is(value(t, e, `${P}sync_rejected_total`, { reason: 'unknown_virtual_server' }), 1);
  t.is(value(t, e, `${P}sync_entries`), 345);
  t.is(value(t, e, `${P}sync_lag_p50_seconds`), 0.0125);
  t.is(value(t, e, `${P}sync_lag_p99_seconds`), 0.14);
  t.is(value(t, e, `${P}sync_lag_last_seconds`), 0.00925);
  t.is(value(t, e, `${P}sync_lag_entries_total`, { measured: 'true' }), 4000);
  t.is(value(t, e, `${P}sync_lag_entries_total`, { measured: 'false' }), 3);
  t.is(value(t, e, `${P}sync_rtt_seconds`), 0.0005);
  t.is(value(t, e, `${P}reload_total`, { result: 'ok' }), 3);
  t.is(value(t, e, `${P}reload_total`, { result: 'error' }), 1);

  // runtime overrides: the commands by action (all four, 0 included), the override in place, the configured weight
  t.is(value(t, e, `${P}runtime_overrides_total`, { action: 'weight' }), 2);
  t.is(value(t, e, `${P}runtime_overrides_total`, { action: 'disable' }), 0);
  t.is(find(e, `${P}runtime_overrides_total`).length, 4);
  t.is(value(t, e, `${P}real_server_override`, { ...rs1, action: 'weight' }), 1);
  t.is(find(e, `${P}real_server_override`).length, 1);
  t.is(value(t, e, `${P}real_server_configured_weight`, rs1), 1);
  t.is(find(e, `${P}real_server_configured_weight`, rs6).length, 0, 'no configured weight in the status: no series');
});

test('BGP series of a hand-built snapshot; none without [bgp]', async (t) => {
  const s = snapshot();
  const e = await scrape(() => s, { defaultMetrics: false });
  t.is(value(t, e, `${P}bgp_session_up`, { peer: '10.0.0.1' }), 1);
  t.is(value(t, e, `${P}bgp_session_up`, { peer: '2001:db8::1' }), 0);
  t.is(value(t, e, `${P}bgp_session_uptime_seconds`, { peer: '10.0.0.1' }), 125);
  t.is(value(t, e, `${P}bgp_session_uptime_seconds`, { peer: '2001:db8::1' }), 0);
  t.is(value(t, e, `${P}bgp_session_prefixes`, { peer: '10.0.0.1' }), 1);
  t.is(value(t, e, `${P}bgp_session_prefixes`, { peer: '2001:db8::1' }), 0);
  t.is(value(t, e, `${P}bgp_prefix_announced`, { prefix: '10.0.0.50/32' }), 1);
  t.is(value(t, e, `${P}bgp_prefix_announced`, { prefix: '2001:db8::53/128' }), 0);
  t.is(value(t, e, `${P}bgp_withdrawals_total`, { reason: 'quorum' }), 3);
  t.is(value(t, e, `${P}bgp_withdrawals_total`, { reason: 'stopping' }), 0);
  t.is(value(t, e, `${P}bird_up`), 1);
  t.is(value(t, e, `${P}bird_restarts_total`), 2);
  const none = await scrape(() => ({ status: { ...s.status, bgp: undefined } }), { defaultMetrics: false });
  t.deepEqual(none.series.filter((x) => /bgp|bird/.test(x.name)), []);
});

test('metric types: *_total are counters, the rest gauges, as METRIC_DEFS declares', async (t) => {
  const s = snapshot();
  const e = await scrape(() => s, { defaultMetrics: false });
  for (const d of METRIC_DEFS) {
    const name = `${P}${d.name}`;
    t.is(e.types.get(name), d.type, name);
    t.is(d.type === 'counter', name.endsWith('_total'), `${name}: counters and only counters end in _total`);
  }
  // The requested metric list, all present.
  const expected = [
    'vrrp_state', 'vrrp_transitions_total', 'vrrp_adverts_sent_total', 'vrrp_adverts_received_total', 'vrrp_packets_dropped_total',
    'vrrp_priority', 'vrrp_effective_priority', 'vrrp_vips_restored_total', 'vrrp_garp_sent_total', 'virtual_server_connections_total',
    'virtual_server_active_connections', 'virtual_server_bytes_total', 'real_server_up', 'real_server_weight', 'real_server_active_connections',
    'real_server_inactive_connections', 'real_server_connections_total', 'real_server_bytes_total', 'check_duration_seconds',
    'virtual_server_info', 'virtual_server_packets_total', 'real_server_packets_total', 'sorry_server_active', 'sorry_server_connections_total',
    'check_failures_total', 'sync_messages_total', 'sync_rejected_total', 'sync_entries', 'reload_total',
    'runtime_overrides_total', 'real_server_override', 'real_server_configured_weight',
  ];
  for (const n of expected) t.true(find(e, `${P}${n}`).length > 0, `${P}${n} has series`);
});

test('state changes and counter increments show in the next scrape', async (t) => {
  const s = snapshot();
  const registry = createMetricsRegistry(() => s, { defaultMetrics: false });
  const web = { vrrp_instance: 'VI_WEB', interface: 'eth0', vrid: '51' };
  let e = parseExposition(await registry.metrics());
  t.is(value(t, e, `${P}vrrp_state`, { ...web, state: 'MASTER' }), 1);

  const vi = s.status.vrrp[0]!;
  vi.state = 'FAULT';
  vi.effective_priority = 0;
  vi.transitions = 3;
  vi.drops = { ...vi.drops, bad_ttl: 5 };
  s.status.virtual_servers[0]!.real_servers[0]!.up = false;
  s.extras.reload = { ok: 4, error: 1 };
  e = parseExposition(await registry.metrics());
  for (const st of VRRP_STATES) t.is(value(t, e, `${P}vrrp_state`, { ...web, state: st }), st === 'FAULT' ? 1 : 0);
  t.is(value(t, e, `${P}vrrp_effective_priority`, web), 0);
  t.is(value(t, e, `${P}vrrp_transitions_total`, web), 3);
  t.is(value(t, e, `${P}vrrp_packets_dropped_total`, { vrrp_instance: 'VI_WEB', reason: 'bad_ttl' }), 5);
  t.is(value(t, e, `${P}real_server_up`, { real_server: '10.0.0.21:80' }), 0);
  t.is(value(t, e, `${P}reload_total`, { result: 'ok' }), 4);

  // Counters are exported as the engines' absolute values, not accumulated across scrapes.
  e = parseExposition(await registry.metrics());
  t.is(value(t, e, `${P}vrrp_transitions_total`, web), 3);
  t.is(value(t, e, `${P}vrrp_adverts_sent_total`, web), 120);
});

test('an unknown state name is still exported, as its own state label at 1', async (t) => {
  const s = snapshot();
  s.status.vrrp[0]!.state = 'GOING_DOWN';
  const e = await scrape(() => s, { defaultMetrics: false });
  t.is(value(t, e, `${P}vrrp_state`, { vrrp_instance: 'VI_WEB', state: 'GOING_DOWN' }), 1);
  t.is(find(e, `${P}vrrp_state`, { vrrp_instance: 'VI_WEB' }).filter((x) => x.value === 1).length, 1);
});

test('label sets that vanish from the snapshot vanish from the exposition', async (t) => {
  const s = snapshot();
  const registry = createMetricsRegistry(() => s, { defaultMetrics: false });
  let e = parseExposition(await registry.metrics());
  t.true(find(e, `${P}vrrp_transitions_total`, { vrrp_instance: 'VI_DNS6' }).length > 0);
  t.true(find(e, `${P}real_server_up`, { real_server: '10.0.0.22:80' }).length > 0);

  // Reload removed an instance, a real server and a whole virtual server; a socket closed; the
  // checker dropped the removed real server; sync and reload engines gone.
  s.status.vrrp = s.status.vrrp.filter((i) => i.name !== 'VI_DNS6');
  s.status.vrrp_socket_drops = {};
  s.status.virtual_servers = s.status.virtual_servers.filter((v) => v.protocol === 'TCP');
  s.status.virtual_servers[0]!.real_servers.pop();
  s.extras.checks = s.extras.checks!.filter((c) => c.real_server === '10.0.0.21:80');
  delete s.extras.sync;
  delete s.extras.reload;
  e = parseExposition(await registry.metrics());

  t.is(e.series.filter((x) => x.labels.vrrp_instance === 'VI_DNS6').length, 0);
  t.is(find(e, `${P}vrrp_packets_dropped_total`, { vrrp_instance: '' }).length, 0);
  t.is(find(e, `${P}vrrp_packets_dropped_total`).length, DROP_REASONS.length);
  t.is(e.series.filter((x) => x.labels.virtual_server === 'udp/[2001:db8::53]:53').length, 0);
  t.is(e.series.filter((x) => x.labels.real_server === '10.0.0.22:80').length, 0);
  t.is(find(e, `${P}vrrp_garp_sent_total`).length, 1);
  t.is(find(e, `${P}check_failures_total`).length, 1);
  for (const n of ['sync_messages_total', 'sync_rejected_total', 'sync_entries', 'reload_total']) t.is(find(e, `${P}${n}`).length, 0, n);
  // Still present: what remained.
  t.is(value(t, e, `${P}vrrp_state`, { vrrp_instance: 'VI_WEB', state: 'MASTER' }), 1);
  t.is(value(t, e, `${P}real_server_up`, { real_server: '10.0.0.21:80' }), 1);

  // And back: a label set that reappears is exported again.
  s.extras.sync = { entries: 0 };
  e = parseExposition(await registry.metrics());
  t.is(value(t, e, `${P}sync_entries`), 0);
});

test('samples with the same label set: counters add up, gauges keep the largest', async (t) => {
  const s = snapshot();
  const rs = { virtual_server: 'tcp/10.0.0.50:80', real_server: '10.0.0.21:80', check: 'HTTP_GET' };
  // A second HTTP_GET check (another URL) on the same real server.
  s.extras.checks!.push({ virtual_server: rs.virtual_server, real_server: rs.real_server, type: 'HTTP_GET', last_duration_seconds: 0.5, failures: 4 });
  const e = await scrape(() => s, { defaultMetrics: false });
  t.is(value(t, e, `${P}check_failures_total`, rs), 4);
  t.is(value(t, e, `${P}check_duration_seconds`, rs), 0.5);
});

test('a status with no extras: only status-derived series, no empty engine series', async (t) => {
  const s = snapshot();
  const e = await scrape(() => ({ status: s.status }), { defaultMetrics: false });
  for (const n of ['vrrp_garp_sent_total', 'check_duration_seconds', 'check_failures_total', 'sync_messages_total', 'sync_rejected_total', 'sync_entries', 'reload_total']) {
    t.is(find(e, `${P}${n}`).length, 0, n);
  }
  t.true(find(e, `${P}vrrp_state`).length > 0);
});

test('one snapshot per scrape, shared by all metrics', async (t) => {
  const s = snapshot();
  let calls = 0;
  const registry = createMetricsRegistry(() => {
    calls++;
    // Each snapshot differs: a consistent scrape shows the same value everywhere.
    const i = s.status.vrrp[0]!;
    i.adverts_sent = calls;
    i.transitions = calls;
    return structuredClone(s);
  });
  const e1 = parseExposition(await registry.metrics());
  t.is(calls, 1);
  const e2 = parseExposition(await registry.metrics());
  t.is(calls, 2);
  t.is(value(t, e1, `${P}vrrp_adverts_sent_total`, { vrrp_instance: 'VI_WEB' }), 1);
  t.is(value(t, e1, `${P}vrrp_transitions_total`, { vrrp_instance: 'VI_WEB' }), 1);
  t.is(value(t, e2, `${P}vrrp_adverts_sent_total`, { vrrp_instance: 'VI_WEB' }), 2);
  t.is(value(t, e2, `${P}vrrp_transitions_total`, { vrrp_instance: 'VI_WEB' }), 2);
});

test('a bad value drops that series only; a throwing source fails the scrape, the next one works', async (t) => {
  const s = snapshot();
  s.status.vrrp[0]!.adverts_sent = -1;
  s.status.vrrp[0]!.priority = Number.NaN;
  s.extras.sync!.messages_sent = Number.POSITIVE_INFINITY;
  let fail = true;
  const registry = createMetricsRegistry(() => {
    if (fail) throw new Error('status unavailable');
    return s;
  }, { defaultMetrics: false });
  await t.throwsAsync(registry.metrics(), { message: 'status unavailable' });
  fail = false;
  const e = parseExposition(await registry.metrics());
  t.is(find(e, `${P}vrrp_adverts_sent_total`, { vrrp_instance: 'VI_WEB' }).length, 0);
  t.is(find(e, `${P}vrrp_priority`, { vrrp_instance: 'VI_WEB' }).length, 0);
  t.is(find(e, `${P}sync_messages_total`, { direction: 'sent' }).length, 0);
  t.is(value(t, e, `${P}vrrp_adverts_sent_total`, { vrrp_instance: 'VI_DNS6' }), 0);
  t.is(value(t, e, `${P}sync_messages_total`, { direction: 'received' }), 20);
});

test('default process metrics are on the private registry, prefixed; registries are independent', async (t) => {
  const s = snapshot();
  const a = await scrape(() => s);
  t.true(find(a, `${P}process_cpu_seconds_total`).length === 1);
  t.true(find(a, `${P}process_resident_memory_bytes`).length === 1);
  t.true(find(a, `${P}nodejs_heap_size_used_bytes`).length === 1);
  t.false(a.series.some((x) => !x.name.startsWith(P)), 'every series is prefixed');
  for (const n of DROPPED_DEFAULT_METRICS) t.false(a.types.has(`${P}${n}`), n);
  // A second registry in the same process does not collide with the first.
  const b = await scrape(() => s);
  t.is(find(b, `${P}process_cpu_seconds_total`).length, 1);
  const c = await scrape(() => s, { defaultMetrics: false });
  t.is(find(c, `${P}process_cpu_seconds_total`).length, 0);
});

test('docs/metrics.md documents every metric', (t) => {
  const docs = readFileSync(fileURLToPath(new URL('../../../docs/metrics.md', import.meta.url)), 'utf8');
  for (const d of METRIC_DEFS) {
    t.true(docs.includes(`\`${P}${d.name}\``), `${P}${d.name} missing from docs/metrics.md`);
    for (const l of d.labelNames) t.true(docs.includes(`\`${l}\``), `label ${l} of ${d.name} missing from docs/metrics.md`);
  }
});

// ---------------------------------------------------------------------------------------------
// promtool

function promtoolAvailable(): { ok: boolean; reason?: string } {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return { ok: false, reason: `promtool not usable (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}); install the Debian package "prometheus"` };
  if (r.status !== 0) return { ok: false, reason: `promtool --version exited ${r.status}` };
  return { ok: true };
}

/**
 * Skipped (reason in the title) without promtool, failing instead when KEEPALIVE_TS_REQUIRE_NETNS=1
 * (CI), so CI cannot pass without actually running it.
 */
function promtoolTest(title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  gatedTest(title, promtoolAvailable(), 'promtool', fn);
}

function promtoolCheck(text: string): { code: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

promtoolTest('promtool check metrics accepts the exposition (default metrics included)', async (t) => {
  // Control: promtool does flag a lint problem, so a pass below means something.
  const bad = promtoolCheck('# HELP x_total a gauge named like a counter\n# TYPE x_total gauge\nx_total 1\n');
  t.not(bad.code, 0, 'promtool should reject a gauge named *_total');

  const s = snapshot();
  s.status.vrrp[1]!.state = 'SOMETHING_NEW';
  const text = await createMetricsRegistry(() => s).metrics();
  const full = promtoolCheck(text);
  t.is(full.code, 0, full.output);

  // An empty daemon (no instances, no virtual servers, no extras): metrics with no series.
  const empty: StatusReport = { ...s.status, vrrp: [], vrrp_socket_drops: {}, virtual_servers: [] };
  const none = promtoolCheck(await createMetricsRegistry(() => ({ status: empty })).metrics());
  t.is(none.code, 0, none.output);
});

test('a group virtual server: its series under the group key (the sums), each member with its own serving, connections and bytes', async (t) => {
  const s = snapshot();
  const web = s.status.virtual_servers[0]!;
  const member = (key: string, service: string, serving: boolean, conns: number, bytes: number) => ({
    key, service, serving, conns, in_pkts: null, out_pkts: null, in_bytes: bytes, out_bytes: bytes * 2, active_conns: 0, inact_conns: 0, real_servers: [], sorry_server: null,
  });
  const { address: _a, port: _p, ports: _ps, ...rest } = web;
  const group: VirtualServerStatus = {
    ...rest, key: 'tcp/group:web', service: 'TCP  group:web', group: 'web', conns: 8, in_bytes: 800, out_bytes: 1600,
    members: [member('tcp/10.0.0.60:80', 'TCP  10.0.0.60:80', true, 3, 300), member('fwmark/7', 'FWM  7', false, 5, 500)],
  };
  s.status.virtual_servers.push(group);
  const e = await scrape(() => s, { defaultMetrics: false });
  const g = { virtual_server: 'tcp/group:web' };
  t.is(value(t, e, `${P}virtual_server_connections_total`, g), 8);
  t.is(value(t, e, `${P}virtual_server_member_serving`, { ...g, service: 'tcp/10.0.0.60:80' }), 1);
  t.is(value(t, e, `${P}virtual_server_member_serving`, { ...g, service: 'fwmark/7' }), 0);
  t.is(value(t, e, `${P}virtual_server_member_connections_total`, { ...g, service: 'fwmark/7' }), 5);
  t.is(value(t, e, `${P}virtual_server_member_bytes_total`, { ...g, service: 'tcp/10.0.0.60:80', direction: 'out' }), 600);
  t.is(find(e, `${P}virtual_server_member_connections_total`).length, 2, 'no member series for virtual servers of their own');
  t.is(value(t, e, `${P}real_server_up`, { ...g, real_server: '10.0.0.21:80' }), 1, 'real servers under the group key');
});
