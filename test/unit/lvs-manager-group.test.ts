/**
 * virtual_server_group in the manager, with scripted health and a recording data plane: ONE
 * health runner per real server and ONE pool evaluation per group, the same PoolSpec fanned out
 * to every member (each a service of its own), serving per member address, a reload adding and
 * removing members without touching the shared health, status per member and summed, overrides
 * through the group or any member.
 */
import test from 'ava';
import pino from 'pino';
import { parseConfig, planReload, type Config } from '../../src/config/index.js';
import type { DataplaneStats, PoolSpec, ServiceSpec, ServiceStats } from '../../src/lvs/dataplane/contract.js';
import type { HealthChangeHandler } from '../../src/lvs/health.js';
import { VirtualServerManager, type LvsAlert } from '../../src/lvs/manager.js';
import { formatIpvs } from '../../src/cli/format-status.js';

const log = pino({ level: 'silent' });

const config = (members: string, extra = ''): Config => parseConfig(`
[[virtual_server_group]]
name = "web"
members = [${members}]

[[virtual_server]]
group = "web"
lb_kind = "NAT"
quorum = 2
smtp_alert = true
${extra}
[[virtual_server.real_server]]
address = "10.0.0.21"
port = 8080
smtp_alert = false
check = { type = "HTTP_GET", path = "/health" }
[[virtual_server.real_server]]
address = "10.0.0.22"
port = 8080
smtp_alert = false
check = { type = "HTTP_GET", path = "/health" }
`, 'g.toml');

const TWO_VIPS = '"10.0.0.50:80", "10.0.0.51:80", "fwmark:7"';

interface Runner { checks: unknown; started: number; stopped: number; report: HealthChangeHandler }

function harness(cfg: Config) {
  const calls: string[] = [];
  const pools = new Map<string, PoolSpec[]>();
  const configured: ServiceSpec[][] = [];
  const runners: Runner[] = [];
  const alerts: LvsAlert[] = [];
  let stats: ServiceStats[] = [];
  const dataPlane = {
    name: 'fake',
    kinds: ['NAT' as const],
    configure: async (services: readonly ServiceSpec[]) => { configured.push([...services]); calls.push(`configure ${services.map((s) => s.key).join(',')}`); },
    setPool: async (key: string, pool: PoolSpec) => { pools.set(key, [...(pools.get(key) ?? []), pool]); },
    serve: async (key: string) => { calls.push(`serve ${key}`); },
    unserve: async (key: string, ms: number) => { calls.push(`unserve ${key} ${ms}`); },
    stats: async (): Promise<DataplaneStats> => ({ services: stats, extra: {} }),
    close: async () => undefined,
  };
  const m = new VirtualServerManager(cfg.virtual_server, {
    dataPlane: dataPlane as never,
    log,
    alert: (a) => alerts.push(a),
    healthRunner: (opts) => {
      const r: Runner = { checks: opts.checks, started: 0, stopped: 0, report: opts.onChange };
      runners.push(r);
      return { start: () => { r.started++; }, stop: () => { r.stopped++; }, stats: () => ({ health: 'unknown', dynamicWeight: undefined, checksRun: 0, failures: 0, lastDurationMs: null, checkers: [] }) };
    },
  });
  const live = () => runners.filter((r) => r.started > r.stopped);
  const lastPool = (key: string) => pools.get(key)?.at(-1);
  return { m, calls, pools, configured, runners, live, alerts, lastPool, setStats: (s: ServiceStats[]) => { stats = s; } };
}

const tick = () => new Promise((r) => setTimeout(r, 20));
const weights = (p: PoolSpec | undefined) => p?.dests.map((d) => `${d.key}=${d.weight}`).join(',');

test('a group: one runner per real server, one evaluation, the same pool to every member; quorum alerts once', async (t) => {
  const h = harness(config(TWO_VIPS));
  await h.m.start();
  t.teardown(() => h.m.stop());
  t.deepEqual(h.configured[0]!.map((s) => s.key), ['tcp/10.0.0.50:80', 'tcp/10.0.0.51:80', 'fwmark/7'], 'each member is a data-plane service');
  t.true(h.configured[0]!.every((s) => s.kind === 'NAT' && s.hash.seed === h.configured[0]![0]!.hash.seed));
  h.m.setOwnership(() => false);
  await tick();
  t.is(h.runners.filter((r) => r.started > 0).length, 2, 'ONE health runner per real server, not one per member');
  t.is(h.live().length, 2);

  for (const r of h.live()) r.report('up', undefined, 'HTTP_GET[0]: 200');
  await tick();
  const up = 'rr:10.0.0.21:8080=1,10.0.0.22:8080=1';
  for (const key of ['tcp/10.0.0.50:80', 'tcp/10.0.0.51:80', 'fwmark/7']) t.is(`rr:${weights(h.lastPool(key))}`, up, `${key} has the pool`);
  t.deepEqual(h.alerts.filter((a) => a.kind === 'virtual_server'), [{ kind: 'virtual_server', virtualServer: 'tcp/group:web', up: true, quorum: 2, hysteresis: 0, weightSum: 2 }]);

  // one real server dies: removed from every member at once, by one evaluation
  const sentBefore = [...h.pools.values()].reduce((n, l) => n + l.length, 0);
  h.live()[1]!.report('down', undefined, 'HTTP_GET[0]: connection refused');
  await tick();
  for (const key of ['tcp/10.0.0.50:80', 'tcp/10.0.0.51:80', 'fwmark/7']) t.is(weights(h.lastPool(key)), '10.0.0.21:8080=1', `${key}: 10.0.0.22 left the pool`);
  t.is([...h.pools.values()].reduce((n, l) => n + l.length, 0) - sentBefore, 3, 'one new pool per member');
  t.deepEqual(h.alerts.filter((a) => a.kind === 'virtual_server').map((a) => a.up), [true, false], 'quorum lost once for the group');
});

test('each member is served while its own address is here; ha_suspend checks while any member is', async (t) => {
  const h = harness(config('"10.0.0.50:80", "10.0.0.51:80"', 'ha_suspend = true'));
  await h.m.start();
  t.teardown(() => h.m.stop());
  h.m.setOwnership(() => false);
  await tick();
  t.is(h.live().length, 0, 'no member address here: checks suspended');
  h.m.setOwnership((a) => a === '10.0.0.51');
  await tick();
  t.deepEqual(h.calls.filter((c) => c.startsWith('serve')), ['serve tcp/10.0.0.51:80']);
  t.is(h.live().length, 2, 'one member here: the shared checks run');
  h.m.setOwnership(() => true);
  await tick();
  t.deepEqual(h.calls.filter((c) => c.startsWith('serve')), ['serve tcp/10.0.0.51:80', 'serve tcp/10.0.0.50:80']);
  h.m.setOwnership((a) => a === '10.0.0.50');
  await tick();
  t.deepEqual(h.calls.filter((c) => c.startsWith('unserve')), ['unserve tcp/10.0.0.51:80 30000'], 'only the member whose address left drains');
  t.is(h.live().length, 2);
  h.m.setOwnership(() => false);
  await tick();
  t.is(h.live().length, 0);
});

test('reload: a member added and one removed; the health, the runners and the other member are untouched', async (t) => {
  const before = config(TWO_VIPS);
  const after = config('"10.0.0.51:80", "fwmark:7", "10.0.0.52:80"');
  const h = harness(before);
  await h.m.start();
  t.teardown(() => h.m.stop());
  h.m.setOwnership(() => true);
  for (const r of h.live()) r.report('up', undefined, 'ok');
  await tick();
  const plan = planReload(before, after);
  t.deepEqual(plan.virtualServers.kept.map((k) => [k.next.key, k.changes.membersAdded.map((x) => x.key), k.changes.membersRemoved.map((x) => x.key)]),
    [['tcp/group:web', ['tcp/10.0.0.52:80'], ['tcp/10.0.0.50:80']]]);
  t.deepEqual(plan.summary, ['virtual_server tcp/group:web: -member tcp/10.0.0.50:80 (draining)', 'virtual_server tcp/group:web: +member tcp/10.0.0.52:80']);
  h.calls.length = 0;
  await h.m.applyReload(plan);
  await tick();
  const ran = h.runners.filter((r) => r.started > 0);
  t.is(ran.length, 2, 'no new runner');
  t.deepEqual(ran.map((r) => [r.started, r.stopped]), [[1, 0], [1, 0]], 'the checks were not restarted');
  t.is(h.calls[0], 'configure tcp/10.0.0.51:80,fwmark/7,tcp/10.0.0.52:80', 'the removed member is left out (it drains in the data plane)');
  t.deepEqual(h.calls.filter((c) => c.startsWith('serve') || c.startsWith('unserve')), ['serve tcp/10.0.0.52:80'], 'the kept members are not served again');
  t.is(weights(h.lastPool('tcp/10.0.0.52:80')), '10.0.0.21:8080=1,10.0.0.22:8080=1', 'the new member starts with the known health');
  t.deepEqual(h.m.status()[0]!.members!.map((m) => m.key), ['tcp/10.0.0.51:80', 'fwmark/7', 'tcp/10.0.0.52:80']);
});

const svcStats = (key: string, conns: number, bytes: number, dests: Array<[string, number]>): ServiceStats => ({
  key: key as ServiceStats['key'], kind: 'NAT', serving: key !== 'fwmark/7', draining: false, sorry: false, scheduler_in_effect: 'wlc',
  conns, in_pkts: conns * 10, out_pkts: conns * 20, in_bytes: bytes, out_bytes: bytes * 2, active_conns: conns, inact_conns: 0, dropped: 0,
  dests: dests.map(([k, c]) => {
    const [address, port] = k.split(':');
    return { key: k, endpoint: { address: address!, family: 4 as const, port: Number(port) }, weight: 1, sorry: false, conns: c, in_pkts: c * 10, out_pkts: c * 20, in_bytes: c * 100, out_bytes: c * 200, active_conns: c, inact_conns: 0, connect_errors: 0 };
  }),
});

test('status: each member with its own counters, the group with their sums; ipvsadm layout lists each member', async (t) => {
  const h = harness(config(TWO_VIPS));
  await h.m.start();
  t.teardown(() => h.m.stop());
  h.m.setOwnership(() => true);
  for (const r of h.live()) r.report('up', undefined, 'ok');
  await tick();
  h.setStats([
    svcStats('tcp/10.0.0.50:80', 3, 300, [['10.0.0.21:8080', 2], ['10.0.0.22:8080', 1]]),
    svcStats('tcp/10.0.0.51:80', 5, 500, [['10.0.0.21:8080', 1], ['10.0.0.22:8080', 4]]),
  ]);
  await h.m.refresh();
  const [vs] = h.m.status();
  t.like(vs, { key: 'tcp/group:web', service: 'TCP  group:web', group: 'web', family: 4, conns: 8, in_bytes: 800, out_bytes: 1600, in_pkts: 80, active_conns: 8, serving: true });
  t.is(vs!.address, undefined);
  t.deepEqual(vs!.members!.map((m) => [m.key, m.service, m.conns, m.serving]), [
    ['tcp/10.0.0.50:80', 'TCP  10.0.0.50:80', 3, true],
    ['tcp/10.0.0.51:80', 'TCP  10.0.0.51:80', 5, true],
    ['fwmark/7', 'FWM  7', 0, false],
  ]);
  t.like(vs!.members![0], { address: '10.0.0.50', port: 80, ports: '80' });
  t.deepEqual(vs!.members![1]!.real_servers.map((r) => [r.address, r.conns, r.active_conns]), [['10.0.0.21', 1, 1], ['10.0.0.22', 4, 4]]);
  t.deepEqual(vs!.real_servers.map((r) => [r.address, r.conns, r.in_bytes, r.weight, r.health]), [['10.0.0.21', 3, 300, 1, 'up'], ['10.0.0.22', 5, 500, 1, 'up']], 'summed over the members, health and weight shared');
  const text = formatIpvs({ version: '0.1.0', virtual_servers: [vs!] });
  t.regex(text, /^TCP {2}10\.0\.0\.50:80 wlc # group web\n {2}-> 10\.0\.0\.21:8080 +Masq +1 +2 +0 *\n {2}-> 10\.0\.0\.22:8080 +Masq +1 +1 +0 *\n/m);
  t.regex(text, /^TCP {2}10\.0\.0\.51:80 wlc # group web\n {2}-> 10\.0\.0\.21:8080 +Masq +1 +1 +0 *\n {2}-> 10\.0\.0\.22:8080 +Masq +1 +4 +0 *\n/m);
  t.regex(text, /^FWM {2}7 wlc # group web; not serving here\n/m);
  t.regex(formatIpvs({ version: '0.1.0', virtual_servers: [vs!] }, { format: 'stats' }), /^TCP {2}10\.0\.0\.51:80 +5 +50 +100 +500 +1000 # group web\n/m);
});

test('overrides name the group or any member: one real server of the shared pool, every member follows', async (t) => {
  const h = harness(config(TWO_VIPS));
  await h.m.start();
  t.teardown(() => h.m.stop());
  for (const r of h.live()) r.report('up', undefined, 'ok');
  await tick();
  const r1 = await h.m.override({ virtualServer: '10.0.0.51:80', realServer: '10.0.0.22:8080', action: 'drain' });
  t.like(r1, { virtual_server: 'tcp/group:web', service: 'TCP  group:web', real_server: '10.0.0.22:8080', weight: 0 });
  for (const key of ['tcp/10.0.0.50:80', 'tcp/10.0.0.51:80', 'fwmark/7']) t.is(weights(h.lastPool(key)), '10.0.0.21:8080=1,10.0.0.22:8080=0');
  const r2 = await h.m.override({ virtualServer: 'group:web', realServer: '10.0.0.22:8080', action: 'enable' });
  t.is(r2.virtual_server as string, 'tcp/group:web');
  t.is(weights(h.lastPool('fwmark/7')), '10.0.0.21:8080=1,10.0.0.22:8080=1');
  await t.throwsAsync(h.m.override({ virtualServer: 'udp:group:web', realServer: '10.0.0.22:8080', action: 'drain' }), { message: /no virtual server udp\/group:web on this director/ });
});
