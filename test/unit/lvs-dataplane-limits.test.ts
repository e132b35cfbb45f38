/**
 * Connection limits of the user-space proxy (descriptor exhaustion, issue 10): the worker-wide
 * budget (listeners pause at the cap and resume below the low-water mark), the per-source cap, the
 * idle timeouts (lvs_timeouts tcp / tcpfin / udp), and UDP flows counted against the same budget.
 * Loopback only; every test has its own DataPlane and virtual address.
 */
import test, { type ExecutionContext } from 'ava';
import dgram from 'node:dgram';
import net from 'node:net';
import { ProxyDataplane } from '../../src/lvs/dataplane/proxy/index.js';
import type { ServiceSpec } from '../../src/lvs/dataplane/contract.js';
import type { LimitStats } from '../../src/lvs/dataplane/proxy/protocol.js';
import { addrMatch, endpoint, endpointText, serviceKey, type Endpoint } from '../../src/util/endpoint.js';
import { contractSpec } from '../lib/dataplane-contract.js';
import { freeTcpPort } from '../lib/http-client.js';

type DataPlane = ProxyDataplane;

/** A PROXY spec of `protocol` on vip:port, with proxy options merged. */
function spec(protocol: 'tcp' | 'udp', vip: string, port: number, proxy: Partial<NonNullable<ServiceSpec['proxy']>> = {}, over: Partial<ServiceSpec> = {}): ServiceSpec {
  const base = contractSpec('PROXY', endpoint(vip, port), over);
  const match = addrMatch(protocol, vip, port);
  return { ...base, match, key: serviceKey(match), proxy: { proxyProtocol: '', connectTimeoutMs: 3000, ...proxy } };
}

const dest = (e: Endpoint, weight = 1, extra: { uthreshold?: number; lthreshold?: number } = {}) => ({ key: endpointText(e), endpoint: e, weight, ...extra });

/** The proxy's connection budget and what the limits refused, from the contract's `extra`. */
async function limitsOf(dp: DataPlane): Promise<LimitStats> {
  const x = (await dp.stats()).extra;
  return {
    max_conns: x.conn_limit!, low_water: 0, in_use: x.conn_in_use!, paused: x.conn_paused === 1, pauses: x.conn_pauses!,
    refused: x.conn_refused!, refused_per_source: x.conn_refused_per_source!, idle_closed: x.conn_idle_closed!,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function echoServer(t: ExecutionContext, address: string): Promise<number> {
  const server = net.createServer((c) => {
    c.on('error', () => undefined);
    c.on('data', (d) => c.write(d));
    c.on('end', () => c.end());
  });
  await new Promise<void>((r) => server.listen(0, address, () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

/** Connects; resolves 'open' once a byte made the round trip, else 'refused' / 'closed'. */
function attempt(host: string, port: number, localAddress?: string): Promise<{ result: 'open' | 'refused' | 'closed'; sock: net.Socket }> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    let done = false;
    const finish = (result: 'open' | 'refused' | 'closed') => { if (!done) { done = true; resolve({ result, sock }); } };
    sock.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNREFUSED' ? 'refused' : 'closed'));
    sock.on('close', () => finish('closed'));
    sock.on('connect', () => sock.write('x'));
    sock.once('data', () => finish('open'));
  });
}

async function setup(t: ExecutionContext, vip: string, proxy: Partial<NonNullable<ServiceSpec['proxy']>> = {}, protocol: 'tcp' | 'udp' = 'tcp') {
  const rsPort = protocol === 'tcp' ? await echoServer(t, '127.0.0.2') : await udpEcho(t, '127.0.0.2');
  const port = await freeTcpPort(vip);
  const s = spec(protocol, vip, port, proxy);
  const dp = new ProxyDataplane({ autoRestart: false });
  t.teardown(() => dp.close());
  await dp.configure([s]);
  await dp.setPool(s.key, { dests: [dest(endpoint('127.0.0.2', rsPort))], sorry: null });
  await dp.serve(s.key);
  return { dp, id: s.key, port };
}

async function udpEcho(t: ExecutionContext, address: string): Promise<number> {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  t.teardown(() => s.close());
  return s.address().port;
}

async function limitsWhen(dp: DataPlane, ok: (l: LimitStats) => boolean): Promise<LimitStats> {
  let l = await limitsOf(dp);
  for (let i = 0; i < 100 && !ok(l); i++) {
    await sleep(20);
    l = await limitsOf(dp);
  }
  return l;
}

test('at maxConns the listener pauses (new clients refused at once) and resumes below the low-water mark', async (t) => {
  const vip = '127.0.3.1';
  const { dp, id, port } = await setup(t, vip);
  await dp.setLimits({ maxConns: 5, lowWater: 3 });
  const held: net.Socket[] = [];
  for (let i = 0; i < 5; i++) {
    const a = await attempt(vip, port);
    t.is(a.result, 'open', `connection ${i + 1} of 5`);
    held.push(a.sock);
  }
  const full = await limitsWhen(dp, (l) => l.paused);
  t.like(full, { max_conns: 5, in_use: 5, paused: true, pauses: 1 });
  t.true((await dp.stats()).services.find((s) => s.key === id)!.serving, 'still serving while paused');
  t.is((await attempt(vip, port)).result, 'refused', 'the 6th client is refused by the kernel: no descriptor spent');
  held.pop()!.destroy();
  await sleep(200);
  t.is((await attempt(vip, port)).result, 'refused', 'above the low-water mark the listener stays paused');
  held.pop()!.destroy();
  held.pop()!.destroy();
  t.like(await limitsWhen(dp, (l) => !l.paused), { in_use: 2, paused: false });
  const again = await attempt(vip, port);
  t.is(again.result, 'open', 'accepting again below the low-water mark');
  for (const s of [...held, again.sock]) s.destroy();
  t.is((await limitsWhen(dp, (l) => l.in_use === 0)).in_use, 0, 'every slot is given back');
});

test('maxConnsPerSource: one address is capped, another is not', async (t) => {
  const vip = '127.0.3.2';
  const { dp, id, port } = await setup(t, vip, { maxConnsPerSource: 2 });
  const a1 = await attempt(vip, port, '127.0.0.1');
  const a2 = await attempt(vip, port, '127.0.0.1');
  const a3 = await attempt(vip, port, '127.0.0.1');
  const b1 = await attempt(vip, port, '127.0.0.9');
  t.deepEqual([a1.result, a2.result, a3.result, b1.result], ['open', 'open', 'closed', 'open']);
  const s = await limitsOf(dp);
  void id;
  t.is(s.refused_per_source, 1);
  t.is(s.refused, 1);
  a1.sock.destroy();
  await sleep(200);
  const a4 = await attempt(vip, port, '127.0.0.1');
  t.is(a4.result, 'open', 'a freed slot of that address can be used again');
  for (const x of [a2, b1, a4]) x.sock.destroy();
});

test('lvs_timeouts tcp: an idle connection is closed, a busy one is not', async (t) => {
  const vip = '127.0.3.3';
  const { dp, id, port } = await setup(t, vip);
  // 1.5 s idle timeout against a write every 100 ms: the busy connection stays busy even when a
  // loaded machine delays the writer's timer by a second (400 ms was closed once in a loaded run).
  await dp.setLimits({ maxConns: 0, lowWater: 0, tcpTimeoutMs: 1500, tcpFinTimeoutMs: 1500 });
  const idle = await attempt(vip, port);
  const busy = await attempt(vip, port);
  t.is(idle.result, 'open');
  const timer = setInterval(() => busy.sock.write('y'), 100);
  t.teardown(() => clearInterval(timer));
  const idleClosed = new Promise<boolean>((r) => { idle.sock.once('close', () => r(true)); setTimeout(() => r(false), 10_000); });
  t.true(await idleClosed, 'the idle connection was closed');
  t.false(busy.sock.destroyed, 'the busy connection is still open');
  t.is((await limitsOf(dp)).idle_closed, 1);
  void id;
  clearInterval(timer);
  busy.sock.destroy();
});

test('UDP flows take slots of the same budget; a flow over it is dropped and counted', async (t) => {
  const vip = '127.0.3.4';
  const { dp, id, port } = await setup(t, vip, {}, 'udp');
  await dp.setLimits({ maxConns: 2, lowWater: 1 });
  const replies: number[] = [];
  const clients: dgram.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const c = dgram.createSocket('udp4');
    await new Promise<void>((r) => c.bind(0, '127.0.0.1', () => r()));
    c.on('message', () => replies.push(i));
    clients.push(c);
    t.teardown(() => c.close());
    c.send(`hello ${i}`, port, vip);
    await sleep(100);
  }
  await sleep(300);
  t.deepEqual([...new Set(replies)].sort(), [0, 1], 'the first two flows are answered, the third is dropped');
  void id;
  t.like(await limitsOf(dp), { refused: 1, in_use: 2 });
});

test('a drain in progress is cut short by unserve(id, 0) (second stop signal), TCP and UDP', async (t) => {
  const tcp = await setup(t, '127.0.3.5');
  const held = await attempt('127.0.3.5', tcp.port);
  t.is(held.result, 'open');
  const udp = await setup(t, '127.0.3.6', {}, 'udp');
  const c = dgram.createSocket('udp4');
  t.teardown(() => c.close());
  const answered = new Promise<void>((r) => c.once('message', () => r()));
  c.send('flow', udp.port, '127.0.3.6');
  await answered;
  const started = Date.now();
  const slow = [tcp.dp.unserve(tcp.id, 60_000), udp.dp.unserve(udp.id, 60_000)];
  await sleep(200);
  await Promise.all([tcp.dp.unserve(tcp.id, 0), udp.dp.unserve(udp.id, 0)]);
  await Promise.all(slow);
  t.true(Date.now() - started < 5_000, 'the 60 s drains ended at once');
  t.true(held.sock.destroyed || (await new Promise<boolean>((r) => { held.sock.once('close', () => r(true)); setTimeout(() => r(false), 2000); })));
});

/** A real server that greets every connection with its own address. */
async function greeter(t: ExecutionContext, address: string): Promise<number> {
  const server = net.createServer((c) => { c.on('error', () => undefined); c.write(address); });
  await new Promise<void>((r) => server.listen(0, address, () => r()));
  t.teardown(() => new Promise<void>((r) => { server.close(() => r()); }));
  return (server.address() as net.AddressInfo).port;
}

function greeting(host: string, port: number): Promise<{ from: string; sock: net.Socket }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    sock.on('error', reject);
    sock.once('data', (d) => resolve({ from: d.toString(), sock }));
  });
}

test('uthreshold / lthreshold: a server at its upper threshold gets no new connections until below the lower one', async (t) => {
  const vip = '127.0.3.7';
  const [pa, pb] = [await greeter(t, '127.0.0.2'), await greeter(t, '127.0.0.3')];
  const port = await freeTcpPort(vip);
  const s = spec('tcp', vip, port, {}, { scheduler: 'fo' });
  const dp = new ProxyDataplane({ autoRestart: false });
  t.teardown(() => dp.close());
  await dp.configure([s]);
  const id = s.key;
  // fo: always the highest weight (A) while it is usable.
  await dp.setPool(id, { dests: [dest(endpoint('127.0.0.2', pa), 2, { uthreshold: 2, lthreshold: 1 }), dest(endpoint('127.0.0.3', pb), 1)], sorry: null });
  await dp.serve(id);
  const c1 = await greeting(vip, port);
  const c2 = await greeting(vip, port);
  const c3 = await greeting(vip, port);
  t.deepEqual([c1.from, c2.from, c3.from], ['127.0.0.2', '127.0.0.2', '127.0.0.3'], 'A takes 2 (its uthreshold), then B');
  c1.sock.destroy();
  await sleep(200);
  const c4 = await greeting(vip, port);
  t.is(c4.from, '127.0.0.3', 'A at 1 connection is not below its lthreshold of 1 yet');
  c2.sock.destroy();
  await sleep(200);
  const c5 = await greeting(vip, port);
  t.is(c5.from, '127.0.0.2', 'A below its lthreshold takes connections again');
  for (const c of [c3, c4, c5]) c.sock.destroy();
});

test('lvs_timeouts tcpfin: a half-closed connection idle that long is closed (the tcp timeout is much longer)', async (t) => {
  // A real server that keeps its side open after the client's FIN.
  const held: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (c) => { held.push(c); c.on('error', () => undefined); c.write('hi'); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.2', () => r()));
  t.teardown(() => new Promise<void>((r) => { for (const h of held) h.destroy(); server.close(() => r()); }));
  const vip = '127.0.3.8';
  const port = await freeTcpPort(vip);
  const s = spec('tcp', vip, port);
  const dp = new ProxyDataplane({ autoRestart: false });
  t.teardown(() => dp.close());
  await dp.configure([s]);
  await dp.setPool(s.key, { dests: [dest(endpoint('127.0.0.2', (server.address() as net.AddressInfo).port))], sorry: null });
  await dp.serve(s.key);
  await dp.setLimits({ maxConns: 0, lowWater: 0, tcpTimeoutMs: 20_000, tcpFinTimeoutMs: 300 });
  const c = net.connect({ host: vip, port, allowHalfOpen: true });
  c.on('error', () => undefined);
  await new Promise((r) => c.once('data', r));
  const started = Date.now();
  c.end();
  await new Promise((r) => c.once('close', r));
  t.true(Date.now() - started < 5_000, 'closed by tcpfin, not by the 20 s tcp timeout');
  t.is((await limitsOf(dp)).idle_closed, 1);
});

test('lvs_timeouts udp: an idle flow ends and gives its slot back', async (t) => {
  const vip = '127.0.3.9';
  const { dp, port } = await setup(t, vip, {}, 'udp');
  await dp.setLimits({ maxConns: 10, lowWater: 9, udpTimeoutMs: 200 });
  const c = dgram.createSocket('udp4');
  t.teardown(() => c.close());
  const answered = new Promise<void>((r) => c.once('message', () => r()));
  c.send('x', port, vip);
  await answered;
  t.is((await limitsOf(dp)).in_use, 1);
  t.is((await limitsWhen(dp, (l) => l.in_use === 0)).in_use, 0, 'the flow expired after udp timeout');
});
