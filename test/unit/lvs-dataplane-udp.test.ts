/**
 * Data plane UDP proxy on loopback: flows stick to one real server, replies come from the
 * virtual address, flows count as inactive connections and expire when idle, one-packet
 * scheduling, removal of a flow's server, restore of a synced flow, drain.
 */

import test, { type ExecutionContext } from 'ava';
import dgram from 'node:dgram';
import { ProxyDataplane } from '../../src/lvs/dataplane/proxy/index.js';
import type { ConnectionEvent, PoolSpec, ServiceSpec, ServiceStats } from '../../src/lvs/dataplane/contract.js';
import { addrMatch, endpoint, endpointText, serviceKey, type ServiceKey } from '../../src/util/endpoint.js';
import { contractSpec } from '../lib/dataplane-contract.js';

interface Rs {
  address: string;
  port: number;
  id: string;
  socket: dgram.Socket;
}

/** UDP echo real server: answers "<address>:<payload>". */
function udpEcho(address: string): Promise<Rs> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (m, r) => socket.send(`${address}:${m.toString()}`, r.port, r.address));
    socket.bind(0, address, () => {
      const port = socket.address().port;
      resolve({ address, port, id: endpointText({ address, port }), socket });
    });
  });
}

function freeUdpPort(address: string): Promise<number> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, address, () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

interface Client {
  ask(msg: string, timeoutMs?: number): Promise<{ text: string; from: string }>;
  close(): void;
}

async function client(t: ExecutionContext, localAddress: string, vip: string, port: number): Promise<Client> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, localAddress, () => r()));
  t.teardown(() => {
    try {
      s.close();
    } catch {
      /* closed */
    }
  });
  return {
    ask: (msg, timeoutMs = 2000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no reply to ${msg}`)), timeoutMs);
        s.once('message', (m, r) => {
          clearTimeout(timer);
          resolve({ text: m.toString(), from: `${r.address}:${r.port}` });
        });
        s.send(msg, port, vip);
      }),
    close: () => s.close(),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setup(t: ExecutionContext, vip: string, extra: Partial<ServiceSpec> = {}, proxy: Partial<NonNullable<ServiceSpec['proxy']>> = {}) {
  const port = await freeUdpPort(vip);
  const match = addrMatch('udp', vip, port);
  const id: ServiceKey = serviceKey(match);
  const dp = new ProxyDataplane({ autoRestart: false });
  t.teardown(() => dp.close());
  await dp.configure([contractSpec('PROXY', endpoint(vip, port), { key: id, match, proxy: { proxyProtocol: '', connectTimeoutMs: 3000, ...proxy }, ...extra })]);
  return { dp, id, port };
}

async function rsPool(t: ExecutionContext, addrs: string[]) {
  const rss = await Promise.all(addrs.map(udpEcho));
  t.teardown(() => rss.forEach((r) => r.socket.close()));
  return rss;
}

const pool = (rss: Rs[], weights: number[] = [], sorry: Rs | null = null): PoolSpec => ({
  dests: rss.map((r, i) => ({ key: r.id, endpoint: endpoint(r.address, r.port), weight: weights[i] ?? 1 })),
  sorry: sorry ? endpoint(sorry.address, sorry.port) : null,
});

async function svcStats(dp: ProxyDataplane, id: ServiceKey): Promise<ServiceStats> {
  return (await dp.stats()).services.find((x) => x.key === id)!;
}

test('UDP echo: a flow stays on one server, replies come from the service address, counters', async (t) => {
  const rss = await rsPool(t, ['127.0.0.2', '127.0.0.3']);
  const vip = '127.0.2.1';
  const { dp, id, port } = await setup(t, vip);
  await dp.setPool(id, pool(rss));
  await dp.serve(id);
  const a = await client(t, '127.0.0.50', vip, port);
  const b = await client(t, '127.0.0.51', vip, port);
  for (let i = 0; i < 5; i++) {
    t.deepEqual(await a.ask(`a${i}`), { text: `127.0.0.2:a${i}`, from: `${vip}:${port}` });
    t.deepEqual(await b.ask(`b${i}`), { text: `127.0.0.3:b${i}`, from: `${vip}:${port}` });
  }
  const s = await svcStats(dp, id);
  t.is(s.kind, 'PROXY');
  t.is(s.conns, 2);
  t.is(s.active_conns, 0);
  t.is(s.inact_conns, 2); // ipvsadm shows UDP connections as InActConn
  t.is(s.in_bytes, 20);
  t.is(s.out_bytes, 20 + 10 * '127.0.0.2:'.length);
  t.is(s.in_pkts, 10); // UDP: datagrams are packets
  t.is(s.out_pkts, 10);
  t.deepEqual(
    s.dests.map((r) => [r.endpoint.address, r.conns, r.inact_conns, r.in_bytes, r.in_pkts, r.out_pkts]),
    [
      ['127.0.0.2', 1, 1, 10, 5, 5],
      ['127.0.0.3', 1, 1, 10, 5, 5],
    ],
  );
});

test('UDP flows expire when idle (events), then the client is scheduled anew', async (t) => {
  const rss = await rsPool(t, ['127.0.0.2', '127.0.0.3']);
  const vip = '127.0.2.2';
  const { dp, id, port } = await setup(t, vip, {}, { udpFlowTimeoutMs: 200 });
  await dp.setPool(id, pool(rss));
  const events: ConnectionEvent[] = [];
  dp.onEvent((evs) => events.push(...evs));
  await dp.serve(id);
  const a = await client(t, '127.0.0.50', vip, port);
  t.is((await a.ask('x')).text, '127.0.0.2:x');
  t.is((await svcStats(dp, id)).inact_conns, 1);
  // Expired after 200 ms idle (polled: the worker's sweep may run late on a loaded machine).
  for (let i = 0; i < 100 && (await svcStats(dp, id)).inact_conns !== 0; i++) await sleep(50);
  t.is((await svcStats(dp, id)).inact_conns, 0);
  t.is((await a.ask('y')).text, '127.0.0.3:y'); // a new flow: rr moved on
  for (let i = 0; i < 100 && events.length < 3; i++) await sleep(50); // events come in 100 ms batches
  const kinds = events.map((e) => e.type);
  t.deepEqual(kinds.slice(0, 3), ['udp_flow_new', 'udp_flow_expired', 'udp_flow_new']);
  t.like(events[0], { service: id, protocol: 'udp', client: { address: '127.0.0.50' }, virtual: endpoint(vip, port), dest: endpoint(rss[0]!.address, rss[0]!.port), timeoutMs: 200 });
});

test('UDP one-packet scheduling: every datagram is scheduled, no flow counted', async (t) => {
  const rss = await rsPool(t, ['127.0.0.2', '127.0.0.3']);
  const vip = '127.0.2.3';
  const { dp, id, port } = await setup(t, vip, { ops: true });
  await dp.setPool(id, pool(rss));
  await dp.serve(id);
  const a = await client(t, '127.0.0.50', vip, port);
  const got: string[] = [];
  for (let i = 0; i < 4; i++) got.push((await a.ask(`${i}`)).text);
  t.deepEqual(got, ['127.0.0.2:0', '127.0.0.3:1', '127.0.0.2:2', '127.0.0.3:3']);
  const s = await svcStats(dp, id);
  t.is(s.conns, 4);
  t.is(s.inact_conns, 0);
});

test('UDP: weight 0 keeps the flow; removal from the pool re-schedules it (expireNodestConn)', async (t) => {
  const rss = await rsPool(t, ['127.0.0.2', '127.0.0.3']);
  const vip = '127.0.2.4';
  const { dp, id, port } = await setup(t, vip);
  await dp.setPool(id, pool(rss));
  await dp.serve(id);
  const a = await client(t, '127.0.0.50', vip, port);
  t.is((await a.ask('1')).text, '127.0.0.2:1');
  await dp.setPool(id, pool(rss, [0, 1]));
  t.is((await a.ask('2')).text, '127.0.0.2:2');
  await dp.setPool(id, pool([rss[1]!]));
  t.is((await a.ask('3')).text, '127.0.0.3:3');
  const s = await svcStats(dp, id);
  t.deepEqual(
    s.dests.map((r) => [r.endpoint.address, r.inact_conns]),
    [['127.0.0.3', 1]],
  );
});

test('UDP: with expireNodestConn false the flow keeps its removed server until idle', async (t) => {
  const rss = await rsPool(t, ['127.0.0.2', '127.0.0.3']);
  const vip = '127.0.2.5';
  const { dp, id, port } = await setup(t, vip, {}, { expireNodestConn: false });
  await dp.setPool(id, pool(rss));
  await dp.serve(id);
  const a = await client(t, '127.0.0.50', vip, port);
  t.is((await a.ask('1')).text, '127.0.0.2:1');
  await dp.setPool(id, pool([rss[1]!]));
  t.is((await a.ask('2')).text, '127.0.0.2:2');
});

test('UDP: persistence across client ports; restored flow; sorry server; drain', async (t) => {
  const rss = await rsPool(t, ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  const [sorry] = await rsPool(t, ['127.0.0.9']);
  const vip = '127.0.2.6';
  const { dp, id, port } = await setup(t, vip, { persistence: { timeoutMs: 60_000, prefix: 32 } });
  await dp.setPool(id, pool(rss, [], sorry!));
  await dp.serve(id);
  // two sockets (two flows) from one address: persistence puts both on one server
  const a1 = await client(t, '127.0.0.50', vip, port);
  const a2 = await client(t, '127.0.0.50', vip, port);
  t.is((await a1.ask('p')).text, '127.0.0.2:p');
  t.is((await a2.ask('q')).text, '127.0.0.2:q');
  // a template synced from the peer keeps its client network on the template's server
  const c = await client(t, '127.0.0.52', vip, port);
  await dp.restore([
    { type: 'template', service: id, client: '127.0.0.53', family: 4, dest: endpoint(rss[2]!.address, rss[2]!.port), expiresInMs: 10_000 },
  ]);
  const d = await client(t, '127.0.0.53', vip, port);
  t.is((await d.ask('r')).text, '127.0.0.4:r');
  t.is((await c.ask('s')).text, '127.0.0.3:s');
  // no real server: sorry server answers
  await dp.setPool(id, pool([], [], sorry!));
  const e = await client(t, '127.0.0.54', vip, port);
  t.is((await e.ask('t')).text, '127.0.0.9:t');
  t.true((await svcStats(dp, id)).sorry);
  // drain: no new flows, the open one continues until the window ends
  await dp.setPool(id, pool(rss));
  const draining = dp.unserve(id, 1000);
  const f = await client(t, '127.0.0.55', vip, port);
  await t.throwsAsync(f.ask('u', 150));
  t.is((await a1.ask('v')).text, '127.0.0.2:v');
  await draining;
  await t.throwsAsync(a1.ask('w', 200));
  const s = await svcStats(dp, id);
  t.false(s.serving);
  t.is(s.inact_conns, 0);
});

test('UDP restore of a synced flow keeps the client port on its server', async (t) => {
  const rss = await rsPool(t, ['127.0.0.2', '127.0.0.3']);
  const vip = '127.0.2.7';
  const { dp, id, port } = await setup(t, vip);
  await dp.setPool(id, pool(rss));
  await dp.serve(id);
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.56', () => r()));
  t.teardown(() => s.close());
  const cport = s.address().port;
  await dp.restore([{ type: 'udp_flow', service: id, protocol: 'udp', client: endpoint('127.0.0.56', cport), virtual: endpoint(vip, port), dest: endpoint(rss[1]!.address, rss[1]!.port), expiresInMs: 5000 }]);
  const reply = await new Promise<string>((resolve) => {
    s.once('message', (m) => resolve(m.toString()));
    s.send('z', port, vip);
  });
  t.is(reply, '127.0.0.3:z');
});
