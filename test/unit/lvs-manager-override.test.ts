// The manager's runtime overrides, slow-start timer and counter history, with a scripted data
// plane (what it is told, what it reports) and scripted health checks.
import test from 'ava';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { parseConfig, planReload } from '../../src/config/index.js';
import { COUNTER_POLL_IDLE_MAX_MS, COUNTER_POLL_MS, VirtualServerManager, nextCounterPollMs } from '../../src/lvs/manager.js';
import type { HealthChangeHandler } from '../../src/lvs/health.js';
import type { DataplaneStats, DestStats, PoolSpec } from '../../src/lvs/dataplane/contract.js';
import { endpoint, type ServiceKey } from '../../src/util/endpoint.js';
import { isKeepaliveError } from '../../src/util/errors.js';

const config = (extra = '', rs3 = '') => `
[[virtual_server]]
address = "10.0.0.50"
port = 80
lb_kind = "PROXY"
lb_algo = "wlc"
${extra}
[[virtual_server.real_server]]
address = "10.0.0.21"
port = 80
check = { type = "TCP_CHECK" }
[[virtual_server.real_server]]
address = "10.0.0.22"
port = 80
weight = 3
check = { type = "TCP_CHECK" }
${rs3}
[[virtual_server]]
address = "fd00::50"
port = 53
protocol = "UDP"
lb_kind = "PROXY"
[[virtual_server.real_server]]
address = "fd00::21"
port = 53
check = { type = "UDP_CHECK" }
`;

const KEY = 'tcp/10.0.0.50:80' as ServiceKey;

function setup(text = config()) {
  const lines: Array<{ level: number; msg: string; action?: string }> = [];
  const log = pino({ level: 'debug' }, new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString())); cb(); } }));
  const changes = new Map<string, HealthChangeHandler>();
  const pools: Array<{ key: string; pool: PoolSpec; at: number }> = [];
  let stats: DataplaneStats = { services: [], extra: {} };
  const dataPlane = {
    name: 'scripted', kinds: ['PROXY' as const],
    configure: async () => undefined,
    setPool: async (key: ServiceKey, pool: PoolSpec) => { pools.push({ key, pool, at: Date.now() }); },
    serve: async () => undefined, unserve: async () => undefined,
    stats: async () => stats, close: async () => undefined,
  };
  let clock = 1_000_000;
  const cfg = parseConfig(text, 't.toml');
  const mgr = new VirtualServerManager(cfg.virtual_server, {
    dataPlane,
    log,
    now: () => clock,
    healthRunner: (opts) => {
      const id = (opts.checks[0] as { connect_ip?: string }).connect_ip ?? String(changes.size);
      changes.set(id, opts.onChange);
      return { start: () => undefined, stop: () => undefined, stats: () => ({ health: 'unknown', dynamicWeight: undefined, checksRun: 0, failures: 0, lastDurationMs: null, checkers: [] }) };
    },
  });
  const weights = (key = KEY) => Object.fromEntries(pools.filter((p) => p.key === key).at(-1)!.pool.dests.map((d) => [d.key, d.weight]));
  return {
    mgr, lines, pools, weights, cfg,
    health: (ip: string, h: 'up' | 'down', why = 'scripted') => changes.get(ip)!(h, undefined, why),
    setStats: (s: DataplaneStats) => { stats = s; },
    advance: (ms: number) => { clock += ms; },
  };
}

test('drain, weight, disable, enable: the data plane has the new pool when the command resolves; status and logs show it', async (t) => {
  const s = setup();
  await s.mgr.start();
  t.teardown(() => s.mgr.stop());
  s.health('10.0.0.21', 'up');
  s.health('10.0.0.22', 'up');
  t.deepEqual(s.weights(), { '10.0.0.21:80': 1, '10.0.0.22:80': 3 });

  const r = await s.mgr.override({ virtualServer: '10.0.0.50:80', realServer: '10.0.0.21:80', action: 'drain' });
  t.deepEqual(s.weights(), { '10.0.0.21:80': 0, '10.0.0.22:80': 3 }, 'drained: in the pool at weight 0');
  t.like(r, { virtual_server: KEY, real_server: '10.0.0.21:80', action: 'drain', override: { action: 'drain' }, configured_weight: 1, effective_weight: 0, weight: 0, up: true });
  let rs = s.mgr.status()[0]!.real_servers[0]!;
  t.like(rs, { weight: 0, configured_weight: 1, effective_weight: 0, up: true });
  t.is(rs.override?.action, 'drain');
  t.is(rs.override?.since, new Date(1_000_000).toISOString());

  await s.mgr.override({ virtualServer: 'tcp/10.0.0.50:80', realServer: '10.0.0.22:80', action: 'weight', weight: 7 });
  t.deepEqual(s.weights(), { '10.0.0.21:80': 0, '10.0.0.22:80': 7 });
  await s.mgr.override({ virtualServer: '10.0.0.50:80', realServer: '10.0.0.22:80', action: 'disable' });
  t.deepEqual(s.weights(), { '10.0.0.21:80': 0 }, 'disabled: out of the pool');
  t.false(s.mgr.status()[0]!.quorum_up, 'nothing with weight left: quorum down');
  await s.mgr.override({ virtualServer: '10.0.0.50:80', realServer: '10.0.0.22:80', action: 'enable' });
  await s.mgr.override({ virtualServer: '10.0.0.50:80', realServer: '10.0.0.21:80', action: 'enable' });
  t.deepEqual(s.weights(), { '10.0.0.21:80': 1, '10.0.0.22:80': 3 });
  rs = s.mgr.status()[0]!.real_servers[0]!;
  t.is(rs.override, null);
  t.deepEqual(s.mgr.overrideCounts(), { weight: 1, drain: 1, disable: 1, enable: 2 });
  const logged = s.lines.filter((l) => /runtime override/.test(l.msg)).map((l) => l.msg);
  t.deepEqual(logged, [
    'runtime override of 10.0.0.21:80 in tcp/10.0.0.50:80: drain: weight 0, open connections finish',
    'runtime override of 10.0.0.22:80 in tcp/10.0.0.50:80: weight 7 (configured 3)',
    'runtime override of 10.0.0.22:80 in tcp/10.0.0.50:80: disable: out of the pool',
    'runtime override of 10.0.0.22:80 in tcp/10.0.0.50:80: enable: back to the configured weight 3 (cleared disable)',
    'runtime override of 10.0.0.21:80 in tcp/10.0.0.50:80: enable: back to the configured weight 1 (cleared drain)',
  ]);
  // IPv6 and UDP services are named as the CLI takes them
  await s.mgr.override({ virtualServer: 'udp:[fd00::50]:53', realServer: '[fd00::21]:53', action: 'drain' });
  t.is(s.mgr.status()[1]!.real_servers[0]!.override?.action, 'drain');
});

test('unknown or malformed targets: a clear error, nothing changed, nothing counted', async (t) => {
  const s = setup();
  await s.mgr.start();
  t.teardown(() => s.mgr.stop());
  const sent = s.pools.length;
  const cases: Array<[Parameters<VirtualServerManager['override']>[0], string, RegExp]> = [
    [{ virtualServer: '10.0.0.99:80', realServer: '10.0.0.21:80', action: 'drain' }, 'E_NOT_FOUND', /no virtual server tcp\/10\.0\.0\.99:80 on this director \(configured: tcp\/10\.0\.0\.50:80, udp\/\[fd00::50\]:53\)/],
    [{ virtualServer: 'udp:10.0.0.50:80', realServer: '10.0.0.21:80', action: 'drain' }, 'E_NOT_FOUND', /no virtual server udp\/10\.0\.0\.50:80/],
    [{ virtualServer: 'udp/10.0.0.50:80', realServer: '10.0.0.21:80', action: 'drain' }, 'E_NOT_FOUND', /no virtual server udp\/10\.0\.0\.50:80/],
    [{ virtualServer: '10.0.0.50:80', realServer: '10.0.0.29:80', action: 'disable' }, 'E_NOT_FOUND', /tcp\/10\.0\.0\.50:80 has no real server 10\.0\.0\.29:80 \(configured: 10\.0\.0\.21:80, 10\.0\.0\.22:80\)/],
    [{ virtualServer: 'fd00::50:53', realServer: '10.0.0.21:80', action: 'drain' }, 'E_USAGE', /not a virtual server/],
    [{ virtualServer: '10.0.0.50:80', realServer: 'web1', action: 'drain' }, 'E_USAGE', /not a real server/],
    [{ virtualServer: '10.0.0.50:80', realServer: '10.0.0.21:80', action: 'weight', weight: -1 }, 'E_USAGE', /weight must be an integer/],
    [{ virtualServer: '10.0.0.50:80', realServer: '10.0.0.21:80', action: 'weight', weight: 1.5 }, 'E_USAGE', /weight must be an integer/],
    [{ virtualServer: '10.0.0.50:80', realServer: '10.0.0.21:80', action: 'weight' }, 'E_USAGE', /weight must be an integer/],
  ];
  for (const [req, code, message] of cases) {
    const err = await t.throwsAsync(s.mgr.override(req), { message });
    t.true(isKeepaliveError(err, code as never), `${JSON.stringify(req)}: ${code}`);
  }
  t.is(s.pools.length, sent);
  t.true(s.mgr.status()[0]!.real_servers.every((r) => r.override === null));
  t.deepEqual(s.mgr.overrideCounts(), { weight: 0, drain: 0, disable: 0, enable: 0 });
});

test('a reload keeps the override of a kept real server (its weight changed in the file or not) and drops it with the server', async (t) => {
  const s = setup();
  await s.mgr.start();
  t.teardown(() => s.mgr.stop());
  s.health('10.0.0.21', 'up');
  s.health('10.0.0.22', 'up');
  await s.mgr.override({ virtualServer: '10.0.0.50:80', realServer: '10.0.0.21:80', action: 'drain' });
  await s.mgr.override({ virtualServer: '10.0.0.50:80', realServer: '10.0.0.22:80', action: 'weight', weight: 9 });
  const next = parseConfig(config('delay_loop = 5').replace('weight = 3', 'weight = 4'), 't.toml');
  await s.mgr.applyReload(planReload(s.cfg, next));
  t.deepEqual(s.weights(), { '10.0.0.21:80': 0, '10.0.0.22:80': 9 });
  const rows = s.mgr.status()[0]!.real_servers;
  t.deepEqual(rows.map((r) => [r.override?.action, r.configured_weight]), [['drain', 1], ['weight', 4]]);
  // 10.0.0.21 leaves the config: its override goes with it
  const without = parseConfig(config('delay_loop = 5').replace(/\[\[virtual_server\.real_server\]\]\naddress = "10\.0\.0\.21"\nport = 80\ncheck = \{ type = "TCP_CHECK" \}\n/, ''), 't.toml');
  await s.mgr.applyReload(planReload(next, without));
  t.deepEqual(s.weights(), { '10.0.0.22:80': 9 });
  t.true(s.lines.some((l) => l.msg === 'runtime override of 10.0.0.21:80 in tcp/10.0.0.50:80 dropped: it left the config'));
});

test('slow start: a recovered server ramps on a timer of its own; an un-drained one too; none at start-up', async (t) => {
  const s = setup(config('slow_start = 0.4'));
  await s.mgr.start();
  t.teardown(() => s.mgr.stop());
  s.health('10.0.0.21', 'up');
  s.health('10.0.0.22', 'up');
  t.deepEqual(s.weights(), { '10.0.0.21:80': 1, '10.0.0.22:80': 3 });
  s.health('10.0.0.21', 'down');
  s.health('10.0.0.21', 'up');
  // weights scaled x20 (a weight-1 server ramps in 20 steps): 1 of 60 at first
  t.deepEqual(s.weights(), { '10.0.0.21:80': 1, '10.0.0.22:80': 60 });
  t.truthy(s.mgr.status()[0]!.real_servers[0]!.slow_start);
  const seen: number[] = [];
  for (let i = 0; i < 10; i++) {
    s.advance(40);
    await new Promise((r) => setTimeout(r, 130));
    seen.push(s.weights()['10.0.0.21:80']!);
  }
  t.log(`ramped weights of the recovered server: ${seen.join(' ')}`);
  const ramp = seen.slice(0, -1);
  t.deepEqual([...ramp].sort((a, b) => a - b), ramp, 'non-decreasing while scaled');
  t.true(ramp[0]! > 1 && ramp.at(-1)! < 20);
  t.deepEqual(s.weights(), { '10.0.0.21:80': 1, '10.0.0.22:80': 3 }, 'ramp over: configured weights');
  t.is(s.mgr.status()[0]!.real_servers[0]!.slow_start, null);
  // back from drain: ramps again
  await s.mgr.override({ virtualServer: '10.0.0.50:80', realServer: '10.0.0.22:80', action: 'drain' });
  const r = await s.mgr.override({ virtualServer: '10.0.0.50:80', realServer: '10.0.0.22:80', action: 'enable' });
  t.true(r.ramping);
  t.deepEqual(s.weights(), { '10.0.0.21:80': 7, '10.0.0.22:80': 1 });
});

test('counters: a real server\'s totals survive it leaving the data plane and a restart of its counters; rates from successive samples', async (t) => {
  const s = setup();
  await s.mgr.start();
  t.teardown(() => s.mgr.stop());
  const dest = (address: string, conns: number, bytes: number): DestStats => ({
    key: `${address}:80`, endpoint: endpoint(address, 80), weight: 1, sorry: false, conns, in_pkts: null, out_pkts: null, in_bytes: bytes, out_bytes: bytes,
    active_conns: 0, inact_conns: 0, connect_errors: 0,
  });
  const svc = (dests: DestStats[]): DataplaneStats => ({
    services: [{ key: KEY, kind: 'PROXY', serving: true, draining: false, sorry: false, scheduler_in_effect: 'wlc', conns: dests.reduce((n, d) => n + d.conns, 0), in_pkts: null, out_pkts: null,
      in_bytes: 0, out_bytes: 0, active_conns: 0, inact_conns: 0, dropped: 0, dests }],
    extra: {},
  });
  const row = () => s.mgr.status()[0]!.real_servers[0]!;
  s.setStats(svc([dest('10.0.0.21', 10, 1000)]));
  await s.mgr.refresh();
  t.like(row(), { conns: 10, in_bytes: 1000, in_pkts: null });
  s.setStats(svc([]));
  s.advance(2000);
  await s.mgr.refresh();
  t.like(row(), { conns: 10, in_bytes: 1000 }, 'not reported: the totals stay');
  s.setStats(svc([dest('10.0.0.21', 4, 400)]));
  s.advance(2000);
  await s.mgr.refresh();
  t.like(row(), { conns: 14, in_bytes: 1400 }, 'restarted from 0: added to the totals');
  // 4 connections in the last 2 s (2/s): the estimator moves a quarter of the way there
  t.deepEqual(row().rates, { cps: 1, in_pps: null, out_pps: null, in_bps: 50, out_bps: 50 });
});

test('the background counter poll backs off while nothing moves and comes back to its period on the first movement', async (t) => {
  t.is(nextCounterPollMs(COUNTER_POLL_MS, false), COUNTER_POLL_MS);
  t.is(nextCounterPollMs(COUNTER_POLL_MS, true), 2 * COUNTER_POLL_MS);
  t.is(nextCounterPollMs(4 * COUNTER_POLL_MS, true), 8 * COUNTER_POLL_MS);
  t.is(nextCounterPollMs(COUNTER_POLL_IDLE_MAX_MS, true), COUNTER_POLL_IDLE_MAX_MS, 'capped');
  t.is(nextCounterPollMs(COUNTER_POLL_IDLE_MAX_MS, false), COUNTER_POLL_MS);
  const s = setup();
  const dest = (conns: number): DestStats => ({
    key: '10.0.0.21:80', endpoint: endpoint('10.0.0.21', 80), weight: 1, sorry: false, conns, in_pkts: null, out_pkts: null, in_bytes: conns, out_bytes: conns,
    active_conns: 0, inact_conns: 0, connect_errors: 0,
  });
  const svc = (conns: number): DataplaneStats => ({
    services: [{ key: KEY, kind: 'PROXY', serving: true, draining: false, sorry: false, scheduler_in_effect: 'wlc', conns, in_pkts: null, out_pkts: null,
      in_bytes: 0, out_bytes: 0, active_conns: 0, inact_conns: 0, dropped: 0, dests: [dest(conns)] }],
    extra: {},
  });
  s.setStats(svc(3));
  await s.mgr.start();
  t.teardown(() => s.mgr.stop());
  t.is(s.mgr.counterPollMs(), COUNTER_POLL_MS, 'armed at its period at start');
  await s.mgr.refresh(); // every key seen once
  // The first background poll finds every counter where it was: the next one waits twice as long.
  const t0 = Date.now();
  while (s.mgr.counterPollMs() !== 2 * COUNTER_POLL_MS && Date.now() - t0 < 10 * COUNTER_POLL_MS) await new Promise((r) => setTimeout(r, 50));
  t.is(s.mgr.counterPollMs(), 2 * COUNTER_POLL_MS);
  // An on-demand refresh that sees nothing move leaves it backed off ...
  await s.mgr.refresh();
  t.is(s.mgr.counterPollMs(), 2 * COUNTER_POLL_MS);
  // ... one that sees a counter move brings the poll back to its period at once.
  s.setStats(svc(4));
  await s.mgr.refresh();
  t.is(s.mgr.counterPollMs(), COUNTER_POLL_MS);
  await s.mgr.stop();
  t.is(s.mgr.counterPollMs(), undefined, 'stopped: no poll armed');
});
