// The monitoring kit in conf/: Prometheus alert rules (with their promtool unit tests) and the
// Grafana dashboard, checked against what the registry really exports.
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMetricsRegistry, type MetricsSnapshot } from '../../src/metrics/index.js';
import type { StatusReport } from '../../src/daemon/status.js';
import { run } from '../lib/procs.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const RULES = join(ROOT, 'conf/prometheus/keepalive-ts.rules.yml');
const RULE_TESTS = join(ROOT, 'conf/prometheus/keepalive-ts.rules.test.yml');
const DASHBOARD = join(ROOT, 'conf/grafana/keepalive-ts.json');

/** A snapshot in which every metric has series: all engines present, drops, checks, sync, reloads. */
function fullSnapshot(): MetricsSnapshot {
  const status: StatusReport = {
    router_id: 'lb1', pid: 1, version: '0.1.0', config_file: '/etc/keepalive-ts/keepalive.toml', uptime_s: 60,
    vrrp: [{
      name: 'VI_1', interface: 'eth0', vrid: 51, version: 3, family: 4, state: 'MASTER', priority: 150, effective_priority: 150, master: '10.0.0.11',
      vips: ['10.0.0.50/24'], owned_vips: ['10.0.0.50/24'], transitions: 2, adverts_sent: 100, adverts_received: 1, drops: { bad_ttl: 1 }, vips_restored: 0,
    }],
    vrrp_socket_drops: { 'eth0/v4': { too_short: 1 } },
    virtual_servers: [{
      key: 'tcp/10.0.0.50:80', service: 'TCP  10.0.0.50:80', address: '10.0.0.50', port: 80, ports: '80', family: 4, protocol: 'TCP', kind: 'PROXY', forward: 'Proxy',
      lb_algo: 'wlc', scheduler_in_effect: 'wlc', serving: true, sorry: false, quorum_up: true, conns: 10, in_pkts: null, out_pkts: null, in_bytes: 100, out_bytes: 1000,
      active_conns: 1, inact_conns: 1,
      real_servers: [{ address: '10.0.0.21', port: 80, weight: 1, up: true, active_conns: 1, inact_conns: 1, conns: 10, in_pkts: null, out_pkts: null, in_bytes: 100, out_bytes: 1000 }],
      sorry_server: null,
    }],
    bgp: {
      local_as: 65001, router_id: null,
      bird: { running: true, pid: 2, version: '2.0.12', restarts: 0, last_error: null, config_file: '/run/keepalive-ts/bird/bird.conf', control_socket: '/run/keepalive-ts/bird/bird.ctl' },
      tracked_interfaces: [{ name: 'eth0', up: true }],
      sessions: [{ peer: '10.0.0.1', remote_as: 65000, protocol: 'kt_peer_10_0_0_1', state: 'Established', established: true, since: null, uptime_s: 5, info: 'Established', last_error: null, bfd: 'Up', exported: 1 }],
      prefixes: [{ prefix: '10.0.0.60/32', mode: 'healthy', announced: true, reason: 'announced: quorum on tcp/10.0.0.60:80', since: '2026-01-01T00:00:00.000Z', last_withdrawal: null }],
      withdrawals: { quorum: 0 },
    },
  };
  return {
    status,
    extras: {
      vrrp: { VI_1: { garp_sent: 5 } },
      checks: [{ virtual_server: 'tcp/10.0.0.50:80', real_server: '10.0.0.21:80', type: 'TCP_CHECK', last_duration_seconds: 0.002, failures: 1 }],
      sync: { messages_sent: 5, messages_received: 5, rejected: { bad_hmac: 1, own_message: 3 }, entries: 2 },
      reload: { ok: 1, error: 1 },
    },
  };
}

interface Exposition {
  /** Metric family name -> type (`# TYPE` lines). */
  types: Map<string, string>;
  samples: { series: string; name: string; value: number }[];
}

async function exposition(): Promise<Exposition> {
  const text = await createMetricsRegistry(fullSnapshot).metrics();
  const types = new Map<string, string>();
  const samples: Exposition['samples'] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsed exposition line: ${line}`);
    samples.push({ series: `${m[1]}${m[2] ?? '{}'}`, name: m[1]!, value: Number(m[3]) });
  }
  return { types, samples };
}

/** Whether `name` is exported: a family, or a histogram/summary family's _bucket/_sum/_count. */
function exported(e: Exposition, name: string): boolean {
  if (e.types.has(name)) return true;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return base !== name && ['histogram', 'summary'].includes(e.types.get(base) ?? '');
}

function metricNames(text: string): string[] {
  return [...new Set(text.match(/\bkeepalive_ts_[a-z0-9_]+/g) ?? [])].sort();
}

interface Panel { id: number; type: string; title: string; gridPos?: unknown; datasource?: { uid?: string }; targets?: { expr: string; refId: string }[]; panels?: Panel[] }
interface Dashboard { uid: string; title: string; panels: Panel[]; templating: { list: { name: string; type: string; query: unknown; definition?: string }[] } }

function dashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
}

function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

test('promtool accepts the alert rules and their unit tests pass (series -> expected alerts)', async (t) => {
  const check = await run(['promtool', 'check', 'rules', RULES], { allowFail: true });
  t.is(check.code, 0, check.stdout + check.stderr);
  t.regex(check.stdout, /SUCCESS: \d+ rules found/);
  const tests = await run(['promtool', 'test', 'rules', RULE_TESTS], { allowFail: true });
  t.is(tests.code, 0, tests.stdout + tests.stderr);
  t.regex(tests.stdout, /SUCCESS/);
});

test('every alert has a unit test in which it fires, and the kit covers what operators page on', (t) => {
  const rules = readFileSync(RULES, 'utf8');
  const tests = readFileSync(RULE_TESTS, 'utf8');
  const alerts = [...rules.matchAll(/^\s+- alert: (\S+)$/gm)].map((m) => m[1]!);
  t.deepEqual(alerts, ['KeepaliveTsDown', 'KeepaliveTsNoMaster', 'KeepaliveTsTwoMasters', 'KeepaliveTsInstanceFault', 'KeepaliveTsVrrpFlapping',
    'KeepaliveTsQuorumDown', 'KeepaliveTsRealServerFlapping', 'KeepaliveTsSyncRejecting', 'KeepaliveTsReloadFailed',
    'KeepaliveTsBgpSessionDown', 'KeepaliveTsBgpPrefixNotAnnounced']);
  for (const a of alerts) {
    // An alert_rule_test block for it whose exp_alerts is not empty.
    t.regex(tests, new RegExp(`alertname: ${a}\\n\\s+exp_alerts:\\n\\s+- exp_labels:`), `${a} has no test in which it fires`);
  }
});

test('every metric the alert rules and the dashboard use is exported by the registry', async (t) => {
  const e = await exposition();
  const used = metricNames(readFileSync(RULES, 'utf8') + readFileSync(DASHBOARD, 'utf8'));
  t.true(used.length >= 25, `only ${used.length} metrics referenced`);
  const missing = used.filter((n) => !exported(e, n));
  t.deepEqual(missing, [], `referenced but not exported: ${missing.join(', ')}`);
});

test('the Grafana dashboard is valid: unique panel ids, every panel has a query and a place, data source from a variable', (t) => {
  const d = dashboard();
  t.is(d.uid, 'keepalive-ts');
  const panels = allPanels(d);
  const ids = panels.map((p) => p.id);
  t.is(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of panels) {
    t.truthy(p.gridPos, `${p.title}: gridPos`);
    if (p.type === 'row') continue;
    t.true((p.targets ?? []).length > 0, `${p.title}: no query`);
    t.is(p.datasource?.uid, '${datasource}', `${p.title}: data source`);
    for (const target of p.targets ?? []) t.regex(target.expr, /keepalive_ts_/, `${p.title}: ${target.expr}`);
  }
  t.deepEqual(d.templating.list.map((v) => v.name), ['datasource', 'job', 'instance', 'virtual_server']);
});

test('every dashboard query returns series on Prometheus data from a real exposition (promtool)', async (t) => {
  const e = await exposition();
  // The exposition as series of one scraped director, 30 scrapes 15 s apart: counters growing.
  const inputSeries = e.samples.filter((s) => Number.isFinite(s.value)).map((s) => {
    const labels = s.series.slice(s.name.length + 1, -1);
    const series = `${s.name}{${labels}${labels ? ',' : ''}job="keepalive-ts",instance="lb1:9650"}`;
    const counter = e.types.get(s.name) === 'counter' || /_(bucket|sum|count)$/.test(s.name);
    const v = Number.isInteger(s.value) ? String(s.value) : s.value.toFixed(9);
    return { series, values: counter ? `${v}+1x30` : `${v}x30` };
  });
  const subst = (expr: string) => expr.replaceAll('$job', 'keepalive-ts').replaceAll('$instance', '.*').replaceAll('$virtual_server', '.*').replaceAll('$__rate_interval', '1m');
  const queries = allPanels(dashboard()).flatMap((p) => (p.targets ?? []).map((q) => ({ name: `panel_${p.id}_${q.refId}`, title: p.title, expr: subst(q.expr) })));
  const dir = mkdtempSync(join(tmpdir(), 'kt-dash-'));
  // JSON is YAML: one alert per query, firing when the query returns at least one series.
  writeFileSync(join(dir, 'queries.yml'), JSON.stringify({ groups: [{ name: 'dashboard', rules: queries.map((q) => ({ alert: q.name, expr: `count(${q.expr}) > 0` })) }] }));
  writeFileSync(join(dir, 'test.yml'), JSON.stringify({
    rule_files: ['queries.yml'],
    evaluation_interval: '15s',
    tests: [{
      interval: '15s',
      input_series: inputSeries,
      alert_rule_test: queries.map((q) => ({ eval_time: '5m', alertname: q.name, exp_alerts: [{ exp_labels: {}, exp_annotations: {} }] })),
    }],
  }));
  const check = await run(['promtool', 'check', 'rules', join(dir, 'queries.yml')], { allowFail: true });
  t.is(check.code, 0, `a dashboard query does not parse:\n${check.stdout}${check.stderr}`);
  const r = await run(['promtool', 'test', 'rules', join(dir, 'test.yml')], { allowFail: true });
  const empty = [...(r.stdout + r.stderr).matchAll(/alertname: (panel_\d+_[A-Z])/g)].map((m) => queries.find((q) => q.name === m[1])!);
  t.is(r.code, 0, `queries returning nothing:\n${empty.map((q) => `  ${q.title}: ${q.expr}`).join('\n')}\n${r.stdout.slice(0, 3000)}`);
  t.true(queries.length >= 30);
});
