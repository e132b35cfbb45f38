/**
 * The facade/worker boundary: message validation, malformed messages never crash the worker,
 * a dead worker is reported and restarted with its services, close() leaves no handle behind.
 */

import test from 'ava';
import { run } from '../lib/procs.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { ProxyDataplane, WORKER_URL } from '../../src/lvs/dataplane/proxy/index.js';
import { parseRequest, type WorkerMessage } from '../../src/lvs/dataplane/proxy/protocol.js';
import { endpoint, endpointText } from '../../src/util/endpoint.js';
import { contractSpec } from '../lib/dataplane-contract.js';

const spec = contractSpec('PROXY', endpoint('127.0.3.1', 8080));
const dest = (address: string, port: number, weight = 1) => ({ key: endpointText({ address, port }), endpoint: endpoint(address, port), weight });

test('parseRequest accepts well-formed requests and rejects malformed ones', (t) => {
  t.truthy(parseRequest({ t: 'configure', seq: 1, services: [spec] }));
  t.truthy(parseRequest({ t: 'setPool', seq: 2, key: spec.key, pool: { dests: [dest('127.0.0.2', 80, 0)], sorry: null } }));
  t.truthy(parseRequest({ t: 'unserve', seq: 3, key: spec.key, drainMs: 0 }));
  t.truthy(parseRequest({ t: 'stats', seq: 4 }));
  t.truthy(parseRequest({ t: 'update', seq: 5, services: [spec], removed: ['tcp/127.0.3.1:9090'] }));
  t.truthy(parseRequest({ t: 'update', seq: 6, services: [], removed: [] }));
  const bad: unknown[] = [
    { t: 'update', seq: 1, services: [spec] },
    { t: 'update', seq: 1, services: [spec], removed: [spec.key] },
    { t: 'update', seq: 1, services: [spec, spec], removed: [] },
    { t: 'update', seq: 1, services: [{ ...spec, kind: 'DR' }], removed: [] },
    { t: 'update', seq: 1, services: [], removed: [1] },
    null,
    42,
    'stats',
    [],
    { t: 'stats' },
    { t: 'stats', seq: -1 },
    { t: 'nope', seq: 1 },
    { t: 'configure', seq: 1, services: [{ ...spec, scheduler: 'random' }] },
    { t: 'configure', seq: 1, services: [{ ...spec, kind: 'DR' }] },
    { t: 'configure', seq: 1, services: [{ ...spec, match: { ...spec.match, ports: [{ from: 70000, to: 70000 }] } }] },
    { t: 'configure', seq: 1, services: [{ ...spec, match: { ...spec.match, ports: [{ from: 80, to: 90 }] } }] },
    { t: 'configure', seq: 1, services: [{ ...spec, match: { ...spec.match, address: 'vip.example' } }] },
    { t: 'configure', seq: 1, services: [{ ...spec, match: { ...spec.match, address: '::ffff:127.0.3.1' } }] },
    { t: 'configure', seq: 1, services: [{ kind: 'fwmark', mark: 1, family: 4 }] },
    { t: 'configure', seq: 1, services: [spec, spec] },
    { t: 'configure', seq: 1, services: [{ ...spec, persistence: { timeoutMs: 0, prefix: 32 } }] },
    { t: 'configure', seq: 1, services: [{ ...spec, persistence: { timeoutMs: 10, prefix: 33 } }] },
    { t: 'configure', seq: 1, services: [{ ...spec, proxy: { proxyProtocol: 'v3', connectTimeoutMs: 1 } }] },
    { t: 'setPool', seq: 1, key: spec.key, pool: { dests: [dest('127.0.0.2', 80, -1)], sorry: null } },
    { t: 'setPool', seq: 1, key: spec.key, pool: { dests: [dest('127.0.0.2', 80), dest('127.0.0.2', 80)], sorry: null } },
    { t: 'setPool', seq: 1, key: spec.key, pool: { dests: [], sorry: { address: 'x', family: 4, port: 1 } } },
    { t: 'setPool', seq: 1, key: spec.key, pool: { dests: {}, sorry: null } },
    { t: 'unserve', seq: 1, key: spec.key, drainMs: 1.5 },
    { t: 'restore', seq: 1, entries: [{ type: 'template', service: 'x', client: 'nope', family: 4, dest: endpoint('127.0.0.2', 80), expiresInMs: 1 }] },
    { t: 'events', seq: 1, enabled: 'yes' },
  ];
  for (const b of bad) t.is(parseRequest(b), null, JSON.stringify(b));
  // a getter that throws is caught too
  t.is(parseRequest(Object.defineProperty({ seq: 1 }, 't', { get: () => { throw new Error('x'); } })), null);
});

test('the worker ignores and counts malformed messages and keeps serving', async (t) => {
  const w = new Worker(WORKER_URL);
  t.teardown(() => w.terminate());
  const replies = new Map<number, WorkerMessage>();
  const waiters = new Map<number, (m: WorkerMessage) => void>();
  w.on('message', (m: WorkerMessage) => {
    if (m.t !== 'reply') return;
    replies.set(m.seq, m);
    waiters.get(m.seq)?.(m);
  });
  const ask = (msg: Record<string, unknown>) =>
    new Promise<WorkerMessage>((resolve) => {
      waiters.set(msg.seq as number, resolve);
      w.postMessage(msg);
    });
  const junk: unknown[] = [
    undefined,
    null,
    'hello',
    123,
    new Uint8Array([1, 2, 3]),
    { t: 'configure', seq: 100, services: 'all' },
    { t: 'setPool', seq: 101, id: 5 },
    { t: 'serve' },
    { t: 'shutdown', seq: 'now' },
    { t: 'configure', seq: 102, services: [{ ...spec, match: { ...spec.match, ports: [{ from: 0, to: 0 }] } }] },
    { seq: 103 },
    [{ t: 'stats', seq: 104 }],
    { t: 'restore', seq: 105, entries: [{ type: 'udp_flow' }] },
  ];
  for (const j of junk) w.postMessage(j);
  const r = await ask({ t: 'stats', seq: 1 });
  t.true(r.t === 'reply' && r.ok);
  t.is((r as { result: { malformed: number } }).result.malformed, junk.length);
  for (const s of [100, 101, 102, 103, 104, 105]) t.false(replies.has(s));
  // well-formed requests still work, and request errors are replies, not crashes
  const c = await ask({ t: 'configure', seq: 2, services: [spec] });
  t.true(c.t === 'reply' && c.ok);
  const e = await ask({ t: 'setPool', seq: 3, key: 'tcp/127.9.9.9:1', pool: { dests: [], sorry: null } });
  t.like(e, { t: 'reply', ok: false, error: { code: 'E_CONFIG_INVALID' } });
  const st = await ask({ t: 'stats', seq: 4 });
  t.is((st as { result: { services: unknown[] } }).result.services.length, 1);
  await ask({ t: 'shutdown', seq: 5 });
});

test('the worker applies an update as a delta: listed services added or changed, removed keys drained, the others untouched', async (t) => {
  const w = new Worker(WORKER_URL);
  t.teardown(() => w.terminate());
  const waiters = new Map<number, (m: WorkerMessage) => void>();
  w.on('message', (m: WorkerMessage) => {
    if (m.t === 'reply') waiters.get(m.seq)?.(m);
  });
  let seq = 0;
  const ask = (msg: Record<string, unknown>) =>
    new Promise<WorkerMessage & { t: 'reply' }>((resolve) => {
      const n = ++seq;
      waiters.set(n, resolve as (m: WorkerMessage) => void);
      w.postMessage({ ...msg, seq: n });
    });
  const services = async () => ((await ask({ t: 'stats' })) as { result: { services: Array<{ key: string; scheduler_in_effect: string }> } }).result.services.map((s) => `${s.key} ${s.scheduler_in_effect}`).sort();
  const a = contractSpec('PROXY', endpoint('127.0.3.1', 8081));
  const b = contractSpec('PROXY', endpoint('127.0.3.1', 8082));
  t.true((await ask({ t: 'update', services: [a, b], removed: [] })).ok);
  t.deepEqual(await services(), [`${a.key} rr`, `${b.key} rr`]);
  t.true((await ask({ t: 'update', services: [{ ...b, scheduler: 'wrr' }], removed: [] })).ok);
  t.deepEqual(await services(), [`${a.key} rr`, `${b.key} wrr`]);
  t.true((await ask({ t: 'update', services: [], removed: [a.key, 'tcp/127.0.3.1:9999'] })).ok, 'an unknown removed key is ignored');
  t.deepEqual(await services(), [`${b.key} wrr`]);
  await ask({ t: 'shutdown' });
});

function httpRs(address: string): Promise<{ port: number; close: () => void }> {
  return new Promise((resolve) => {
    const s = http.createServer((_q, res) => res.end(address));
    s.listen(0, address, () =>
      resolve({
        port: (s.address() as net.AddressInfo).port,
        close: () => {
          s.closeAllConnections();
          s.close();
        },
      }),
    );
  });
}

function httpGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host, port, agent: false }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve(b));
      })
      .on('error', reject);
  });
}

test('a dead worker is reported and restarted with its services re-applied', async (t) => {
  const rs = await httpRs('127.0.0.2');
  t.teardown(() => rs.close());
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.3.2', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const svc = contractSpec('PROXY', endpoint('127.0.3.2', port));
  const id = svc.key;
  const dp = new ProxyDataplane();
  t.teardown(() => dp.close());
  await dp.configure([svc]);
  await dp.setPool(id, { dests: [dest('127.0.0.2', rs.port)], sorry: null });
  await dp.serve(id);
  t.is(await httpGet('127.0.3.2', port), '127.0.0.2');
  const errored = new Promise<Error>((r) => dp.once('error', r));
  const restarted = new Promise<void>((r) => dp.once('restart', () => r()));
  const pendingStats = dp.stats();
  await dp.workerThread!.terminate();
  t.true((await errored) instanceof Error);
  // a request in flight when the worker died is rejected (E_CLOSED), never left hanging
  const lost = await pendingStats.then(
    () => 'answered',
    (e: { code?: string }) => e.code,
  );
  t.true(lost === 'E_CLOSED' || lost === 'answered', String(lost));
  await restarted;
  t.is(await httpGet('127.0.3.2', port), '127.0.0.2');
  const s = await dp.stats();
  t.is(s.services.length, 1);
  t.true(s.services[0]!.serving);
  t.is(s.services[0]!.conns, 1); // counters start over with the new worker
  t.is(s.extra.restarts, 1);
});

test('close() ends listeners, connections and the worker: the process exits on its own', async (t) => {
  const script = `
    import net from 'node:net';
    import { ProxyDataplane } from ${JSON.stringify(new URL('../../src/lvs/dataplane/proxy/index.js', import.meta.url).href)};
    import { contractSpec } from ${JSON.stringify(new URL('../lib/dataplane-contract.js', import.meta.url).href)};
    import { addrMatch, endpoint, serviceKey } from ${JSON.stringify(new URL('../../src/util/endpoint.js', import.meta.url).href)};
    const rs = net.createServer((c) => c.on('data', (d) => c.write(d)));
    await new Promise((r) => rs.listen(0, '127.0.0.2', r));
    const vipPort = await new Promise((r) => { const s = net.createServer().listen(0, '127.0.3.3', () => { const p = s.address().port; s.close(() => r(p)); }); });
    const dp = new ProxyDataplane();
    const tcp = contractSpec('PROXY', endpoint('127.0.3.3', vipPort));
    const udpMatch = addrMatch('udp', '127.0.3.3', vipPort);
    const udp = { ...tcp, match: udpMatch, key: serviceKey(udpMatch) };
    await dp.configure([tcp, udp]);
    await dp.setPool(tcp.key, { dests: [{ key: '127.0.0.2:' + rs.address().port, endpoint: endpoint('127.0.0.2', rs.address().port), weight: 1 }], sorry: null });
    await dp.serve(tcp.key);
    await dp.serve(udp.key);
    dp.onEvent(() => {});
    const c = net.connect(vipPort, '127.0.3.3');
    c.on('error', () => {});
    await new Promise((r) => c.once('data', r).write('ping'));
    const closedByProxy = new Promise((r) => c.once('close', r));
    rs.close();
    await dp.close();
    await closedByProxy;
    console.log('closed');
  `;
  const dir = mkdtempSync(join(tmpdir(), 'dp-close-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'close.mjs');
  writeFileSync(file, script);
  // A harness child: killed (and the test failed) if it does not exit on its own within 15 s.
  const r = await run([process.execPath, file], { timeoutMs: 15_000, allowFail: true });
  const out = r.stdout;
  t.is(r.code, 0, r.stderr);
  t.is(out.trim(), 'closed');
});
