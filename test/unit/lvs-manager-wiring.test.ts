/**
 * The virtual-server keys reach what they configure: VirtualServerManager from a parsed config,
 * with a recording data plane, scripted health runners and a recording script runner. Each test
 * fails if its key were ignored (the key audit, test/unit/config-key-audit.test.ts, points here).
 */
import test from 'ava';
import pino from 'pino';
import { parseConfig, type VirtualServerConfig } from '../../src/config/index.js';
import { VirtualServerManager, serviceSpec, poolParams } from '../../src/lvs/manager.js';
import type { HealthChangeHandler } from '../../src/lvs/health.js';
import { ScriptRunner } from '../../src/util/script.js';

const log = pino({ level: 'silent' });

function vsConfig(extra: string, real = ''): VirtualServerConfig {
  const cfg = parseConfig(`[[virtual_server]]
address = "10.0.0.50"
port = 80
lb_kind = "PROXY"
${extra}

[[virtual_server.real_server]]
address = "10.0.0.21"
${real}
check = { type = "TCP_CHECK" }

[[virtual_server.real_server]]
address = "10.0.0.22"
check = { type = "TCP_CHECK" }
`, 'w.toml');
  return cfg.virtual_server[0]!;
}

interface FakeRunner { started: number; stopped: number; report: HealthChangeHandler }

function harness(cfg: VirtualServerConfig) {
  const pools: Array<{ id: string; dests: Array<Record<string, unknown> & { endpoint: { address: string } }>; sorry: unknown }> = [];
  const runners: FakeRunner[] = [];
  const ran: string[] = [];
  const dataPlane = {
    name: 'fake',
    kinds: ['PROXY'],
    configure: async () => undefined,
    setPool: async (id: string, pool: { dests: readonly (Record<string, unknown> & { endpoint: { address: string } })[]; sorry: unknown }) => { pools.push({ id, dests: [...pool.dests], sorry: pool.sorry }); },
    serve: async () => undefined,
    unserve: async () => undefined,
    stats: async () => ({ services: [], extra: {} }),
    close: async () => undefined,
  };
  const scripts = new ScriptRunner({
    policy: () => ({ enable_script_security: false }),
    fs: { lstat: () => { throw new Error('unused'); }, stat: () => ({ mode: 0o100755, uid: 0, gid: 0, isFile: () => true, isDirectory: () => false, isSymbolicLink: () => false }), realpath: (p) => p },
    run: async (line) => { ran.push(line); return { code: 0, signal: null, timedOut: false }; },
  });
  const m = new VirtualServerManager([cfg], {
    dataPlane: dataPlane as never,
    log,
    scripts,
    healthRunner: (opts) => {
      const r: FakeRunner = { started: 0, stopped: 0, report: opts.onChange };
      runners.push(r);
      return { start: () => { r.started++; }, stop: () => { r.stopped++; }, stats: () => ({ health: 'unknown', dynamicWeight: undefined, checksRun: 0, failures: 0, lastDurationMs: null, checkers: [] }) };
    },
  });
  return { m, pools, runners, ran };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

test('ha_suspend: checks run only while this director holds the virtual address', async (t) => {
  const { m, runners } = harness(vsConfig('ha_suspend = true'));
  await m.start();
  m.setOwnership(() => false);
  await tick();
  const live = () => runners.filter((r) => r.started > r.stopped).length;
  t.is(live(), 0, 'suspended while the address is not ours');
  m.setOwnership(() => true);
  await tick();
  t.is(live(), 2, 'both real servers checked while we own it');
  m.setOwnership(() => false);
  await tick();
  t.is(live(), 0, 'suspended again');
  await m.stop();
});

test('without ha_suspend checks run whether or not this director holds the address', async (t) => {
  const { m, runners } = harness(vsConfig(''));
  await m.start();
  m.setOwnership(() => false);
  await tick();
  t.is(runners.filter((r) => r.started > r.stopped).length, 2);
  await m.stop();
});

test('uthreshold / lthreshold reach the data plane pool', async (t) => {
  const { m, pools, runners } = harness(vsConfig('', 'uthreshold = 100\nlthreshold = 50'));
  await m.start();
  for (const r of runners) r.report('up', undefined, 'ok');
  await tick();
  const last = pools.at(-1)!;
  t.like(last.dests.find((d) => d.endpoint.address === '10.0.0.21'), { uthreshold: 100, lthreshold: 50 });
  const other = last.dests.find((d) => d.endpoint.address === '10.0.0.22')!;
  t.is(other.uthreshold, undefined, 'no threshold configured: none sent');
  await m.stop();
});

test('quorum_up / quorum_down / notify_up / notify_down run through the script runner', async (t) => {
  const { m, runners, ran } = harness(vsConfig('quorum = 2\nquorum_up = "/bin/q up"\nquorum_down = "/bin/q down"\nalpha = true', 'notify_up = "/bin/n up"\nnotify_down = "/bin/n down"'));
  await m.start();
  for (const r of runners) r.report('up', undefined, 'ok');
  await tick();
  runners[0]!.report('down', undefined, 'fail');
  await tick();
  t.deepEqual(ran.sort(), ['/bin/n down', '/bin/n up', '/bin/q down', '/bin/q up'].sort());
  await m.stop();
});

test('serviceSpec and poolParams carry every service key the data plane and the pool logic use', (t) => {
  const cfg = vsConfig(`protocol = "UDP"
lb_algo = "sh"
persistence_timeout = 30
persistence_granularity = "255.255.255.0"
connect_timeout = 2
ops = true
drain_timeout = 7
maxconn_per_source = 5
proxy_protocol = ""
quorum = 2
hysteresis = 1
alpha = true
omega = true
depool_threshold = 0.5
sorry_server = { address = "10.0.0.99", port = 8080 }
sorry_server_inhibit = true`);
  t.like(serviceSpec(cfg), {
    match: { protocol: 'udp' }, scheduler: 'sh', persistence: { timeoutMs: 30_000, prefix: 24 }, ops: true, drainMs: 7000,
    proxy: { connectTimeoutMs: 2000, maxConnsPerSource: 5, proxyProtocol: '' },
  });
  t.is(serviceSpec(vsConfig('proxy_protocol = "v2"')).proxy?.proxyProtocol, 'v2');
  t.like(poolParams(cfg), { quorum: 2, hysteresis: 1, alpha: true, omega: true, depoolThreshold: 0.5, sorryServerInhibit: true });
  t.like(poolParams(cfg).sorryServer, { address: '10.0.0.99', port: 8080 });
});

test('virtual_server defaults of the checks (delay_loop, retry, delay_before_retry, connect_timeout, warmup, virtualhost) reach every check', (t) => {
  const cfg = parseConfig(`[[virtual_server]]
address = "10.0.0.50"
port = 80
delay_loop = 6
retry = 3
delay_before_retry = 2
connect_timeout = 4
warmup = 5
virtualhost = "example.org"

[[virtual_server.real_server]]
address = "10.0.0.21"
check = { type = "HTTP_GET" }
`, 'w.toml').virtual_server[0]!;
  t.like(cfg.real_server[0]!.check[0], { delay_loop: 6, retry: 3, delay_before_retry: 2, connect_timeout: 4, warmup: 5, virtualhost: 'example.org' });
});

test('announceFacts: checked once every real server had a first result, latched (a check turning unknown does not undo it)', async (t) => {
  const { m, runners } = harness(vsConfig('alpha = true'));
  await m.start();
  const checked = () => [...m.announceFacts().values()][0]!.checked;
  t.false(checked());
  runners[0]!.report('up', undefined, 'ok');
  await tick();
  t.true([...m.announceFacts().values()][0]!.quorum, 'quorum with one server up');
  t.false(checked(), 'the other server has no result yet');
  runners[1]!.report('down', undefined, 'refused');
  await tick();
  t.true(checked());
  runners[1]!.report('unknown', undefined, 'no descriptor');
  await tick();
  t.true(checked());
  await m.stop();
});

test('firstChecks (the start-up hold) resolves once every real server has a first check result in the data plane; ha_suspend services are not waited for', async (t) => {
  const { m, runners } = harness(vsConfig(''));
  await m.start();
  let done = false;
  const first = m.firstChecks().then(() => { done = true; });
  await tick();
  t.false(done, 'no result yet');
  t.deepEqual(m.uncheckedServices(), ['tcp/10.0.0.50:80']);
  runners[0]!.report('up', undefined, 'ok');
  await tick();
  t.false(done, 'one of two real servers has a result');
  runners[1]!.report('down', undefined, 'refused');
  await first;
  t.true(done, 'both have one (a failed check counts: the pool is what it will be)');
  t.deepEqual(m.uncheckedServices(), []);
  await m.stop();

  const suspended = harness(vsConfig('ha_suspend = true'));
  await suspended.m.start();
  suspended.m.setOwnership(() => false);
  await suspended.m.firstChecks();
  t.pass('a service whose checks are suspended does not hold the start-up');
  await suspended.m.stop();
});
