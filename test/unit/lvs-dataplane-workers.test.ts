/**
 * The proxy with several worker threads: the worker count comes from global.proxy_workers (0 = one
 * per CPU) through the DataplaneSet; a service is served by every worker (SO_REUSEPORT); killing one
 * worker leaves the others serving and the VRRP engine on the main thread advertising on time,
 * and the dead worker comes back with the desired state.
 */
import test from 'ava';
import http from 'node:http';
import net from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseConfig } from '../../src/config/index.js';
import { DataplaneSet, proxyWorkerCount } from '../../src/lvs/dataplane/index.js';
import { PROXY_WORKER_NICE, servedByEveryWorker } from '../../src/lvs/dataplane/proxy/engine.js';
import { ProxyDataplane, mergeProxyStats, workerLimits } from '../../src/lvs/dataplane/proxy/index.js';
import { endpoint, endpointText, type ServiceKey } from '../../src/util/endpoint.js';
import { VrrpHub } from '../../src/vrrp/hub.js';
import { VrrpInstance } from '../../src/vrrp/instance.js';
import { preciseClock } from '../../src/vrrp/precise-clock.js';
import { MemorySegment, MemoryTransport } from '../../src/vrrp/transport-memory.js';
import { contractSpec } from '../lib/dataplane-contract.js';
import { freeTcpPort, httpOnce } from '../lib/http-client.js';

test('proxy_workers: 0 means one per CPU; the configured count reaches the proxy through the DataplaneSet', async (t) => {
  t.is(proxyWorkerCount(0, 8), 8);
  t.is(proxyWorkerCount(3, 8), 3);
  t.is(proxyWorkerCount(0, 0), 1);
  t.is(parseConfig('[global]\nrouter_id = "a"\n', 'x.toml').global.proxy_workers, 0);
  t.is(parseConfig('[global]\nrouter_id = "a"\nproxy_workers = 3\n', 'x.toml').global.proxy_workers, 3);
  t.throws(() => parseConfig('[global]\nrouter_id = "a"\nproxy_workers = -1\n', 'x.toml'));
  t.is(proxyWorkerCount(parseConfig('[global]\nrouter_id = "a"\n', 'x.toml').global.proxy_workers), availableParallelism());

  const set = new DataplaneSet({ proxyWorkers: 3 });
  t.teardown(() => set.close());
  const vip = endpoint('127.0.3.40', await freeTcpPort('127.0.3.40'));
  await set.configure([contractSpec('PROXY', vip)]);
  t.is((await set.stats()).extra.proxy_workers, 3);
});

test('stats of several workers add up per service and destination', (t) => {
  const svc = (conns: number, active: number, serving: boolean) => ({
    key: 'tcp/127.0.0.1:80' as ServiceKey, kind: 'PROXY' as const, serving, draining: false, sorry: false, scheduler_in_effect: 'rr',
    conns, in_pkts: null, out_pkts: null, in_bytes: conns * 10, out_bytes: conns * 20, active_conns: active, inact_conns: 0, dropped: 0,
    dests: [{ key: '127.0.0.2:80', endpoint: endpoint('127.0.0.2', 80), weight: 1, sorry: false, conns, in_pkts: null, out_pkts: null, in_bytes: conns * 10, out_bytes: conns * 20, active_conns: active, inact_conns: 0, connect_errors: 0 }],
  });
  const lim = (max: number, low: number, inUse: number, paused: boolean, refused: number) => ({
    max_conns: max, low_water: low, in_use: inUse, paused, pauses: paused ? 1 : 0, refused, refused_per_source: 1, idle_closed: 2,
  });
  const m = mergeProxyStats([
    { services: [svc(3, 1, true)], malformed: 1, events_dropped: 0, limits: lim(100, 90, 3, false, 0), splice: { spliced_bytes: 1000, pipes_made: 2, pipes_in_use: 1, fallbacks: 0 } },
    { services: [svc(4, 2, false)], malformed: 0, events_dropped: 2, limits: lim(100, 90, 100, true, 5), splice: { spliced_bytes: 500, pipes_made: 1, pipes_in_use: 1, fallbacks: 1 } },
  ]);
  t.is(m.services.length, 1);
  t.like(m.services[0], { conns: 7, in_bytes: 70, out_bytes: 140, active_conns: 3, serving: true, in_pkts: null });
  t.like(m.services[0]!.dests[0], { conns: 7, active_conns: 3, in_pkts: null });
  t.like(m, { malformed: 1, events_dropped: 2 });
  // The budget is split between the workers (workerLimits): the totals are the sums.
  t.deepEqual(m.limits, { max_conns: 200, low_water: 180, in_use: 103, paused: true, pauses: 1, refused: 5, refused_per_source: 2, idle_closed: 4 });
  t.deepEqual(m.splice, { spliced_bytes: 1500, pipes_made: 3, pipes_in_use: 2, fallbacks: 1 });
});

test('which services every worker serves: TCP rr without persistence or a per-client limit; the rest only worker 0', (t) => {
  const vip = endpoint('127.0.3.42', 80);
  t.true(servedByEveryWorker(contractSpec('PROXY', vip)));
  t.false(servedByEveryWorker(contractSpec('PROXY', vip, { scheduler: 'wlc' })));
  t.false(servedByEveryWorker(contractSpec('PROXY', vip, { persistence: { timeoutMs: 1000, prefix: 32 } })));
  // A per-client limit must count every connection of that client: one worker only.
  t.false(servedByEveryWorker(contractSpec('PROXY', vip, { proxy: { proxyProtocol: '', connectTimeoutMs: 3000, maxConnsPerSource: 5 } })));
  t.true(servedByEveryWorker(contractSpec('PROXY', vip, { proxy: { proxyProtocol: '', connectTimeoutMs: 3000, maxConnsPerSource: 0 } })));
});

test('the connection budget is split between the workers; idle timeouts are the same for each', (t) => {
  const limits = { maxConns: 1001, lowWater: 900, tcpTimeoutMs: 5000 };
  const shares = [0, 1, 2].map((i) => workerLimits(limits, 3, i));
  t.deepEqual(shares.map((l) => l.maxConns), [334, 334, 333]);
  t.is(shares.reduce((n, l) => n + l.maxConns, 0), 1001);
  for (const l of shares) {
    t.true(l.lowWater <= l.maxConns && l.lowWater >= Math.floor(l.maxConns * 0.89));
    t.is(l.tcpTimeoutMs, 5000);
  }
  t.is(workerLimits(limits, 1, 0), limits);
  t.is(workerLimits({ maxConns: 0, lowWater: 0 }, 4, 2).maxConns, 0);
  // Fewer connections than workers: every worker still gets one.
  t.is(workerLimits({ maxConns: 2, lowWater: 1 }, 4, 3).maxConns, 1);
});

test('a killed worker: the other keeps serving at once, VRRP on the main thread keeps advertising, the worker comes back', async (t) => {
  // Real server and a two-worker proxy in front of it.
  const rs = http.createServer((_req, res) => res.end('rs'));
  await new Promise<void>((r) => rs.listen(0, '127.0.0.2', () => r()));
  t.teardown(() => new Promise<void>((r) => { rs.closeAllConnections(); rs.close(() => r()); }));
  const rsPort = (rs.address() as net.AddressInfo).port;
  const vip = endpoint('127.0.3.41', await freeTcpPort('127.0.3.41'));
  const dp = new ProxyDataplane({ workers: 2 });
  t.teardown(() => dp.close());
  const spec = contractSpec('PROXY', vip);
  await dp.configure([spec]);
  const rsEp = endpoint('127.0.0.2', rsPort);
  await dp.setPool(spec.key, { dests: [{ key: endpointText(rsEp), endpoint: rsEp, weight: 1 }], sorry: null });
  await dp.serve(spec.key);
  t.is(dp.workerThreads.filter(Boolean).length, 2);
  // The workers run nicer than the main thread (VRRP first under CPU saturation).
  // A thread may end between listing /proc/self/task and reading its stat (a short-lived helper
  // thread; failed once in CI with ENOENT): a vanished thread has no nice value.
  const nice = (tid: string) => {
    try {
      return Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return Number.NaN;
      throw err;
    }
  };
  const mainNice = nice(String(process.pid));
  const niced = readdirSync('/proc/self/task').filter((tid) => nice(tid) === Math.min(19, mainNice + PROXY_WORKER_NICE));
  t.true(niced.length >= 2, `${niced.length} threads at nice ${mainNice + PROXY_WORKER_NICE}`);

  // A VRRP master on the main thread, advertising every 100 ms on the daemon's clock.
  const seg = new MemorySegment();
  const hub = new VrrpHub((_if, idx, family) => new MemoryTransport(seg, family, idx), (err) => { throw err; });
  const effects = {
    sendAdvert: (p: number) => hub.send(member, { version: 3 as const, vrid: 9, priority: p, advertIntCs: 10, addresses: ['10.0.0.50'] }),
    addVips: async () => {}, removeVips: async () => {}, announce: () => {}, stopAnnounce: () => {}, reannounce: () => {},
    notify: () => {}, onTransition: () => {}, onError: (err: unknown) => { throw err; },
  };
  const inst = new VrrpInstance('VI', { vrid: 9, version: 3, priority: 255, advertIntCs: 10, preempt: true, preemptDelayMs: 0, primaryAddress: '10.0.0.1', initialState: 'MASTER' },
    { version: 3, vrid: 9, advertIntCs: 10, addresses: ['10.0.0.50'], ownAddresses: ['10.0.0.1'] }, effects, preciseClock());
  const member = { instance: inst, vrid: 9, family: 4 as const, ifname: 'eth0', ifindex: 2, src: '10.0.0.1', destinations: ['224.0.0.18'], v3ChecksumAsV2: false, unicast: false };
  hub.add(member, ['224.0.0.18']);
  const sent: number[] = [];
  const peer = new MemoryTransport(seg, 4, 3);
  peer.onPacket(() => sent.push(performance.now()), () => {});
  t.teardown(() => { void inst.shutdown(); hub.close(); });
  inst.start();
  t.is(inst.state.name, 'MASTER');

  const get = () => httpOnce({ host: vip.address, port: vip.port });
  t.is(await get(), 'rs');
  const restarted = new Promise<void>((r) => dp.once('restart', () => r()));
  const errored = new Promise<Error>((r) => dp.once('error', r));
  const before = sent.length;
  const killedAt = performance.now();
  await dp.workerThreads[0]!.terminate();
  t.true((await errored) instanceof Error);
  // The surviving worker's socket is the whole SO_REUSEPORT group now: every connection lands on it.
  const bodies = await Promise.all(Array.from({ length: 20 }, () => get().then((r) => r, (e: Error) => e.message)));
  t.deepEqual(bodies, Array(20).fill('rs'));
  await restarted;
  t.is(dp.workerThreads.filter(Boolean).length, 2);
  const s = await dp.stats();
  t.true(s.services[0]!.serving);
  t.is(s.extra.restarts, 1);
  await new Promise((r) => setTimeout(r, 300));
  // Adverts went on every ~100 ms through the kill and the restart (generous bound for a loaded machine).
  const during = sent.filter((x) => x >= killedAt);
  t.true(sent.length - before >= 3, `${sent.length - before} adverts since the kill`);
  const gaps = during.slice(1).map((x, i) => x - during[i]!);
  t.true(Math.max(...gaps) < 1_000, `largest advert gap ${Math.max(...gaps).toFixed(1)} ms`);
});
