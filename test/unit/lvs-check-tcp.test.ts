import test from 'ava';
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { TcpCheck } from '../../src/config/types.js';
import { checkTarget, createChecker } from '../../src/lvs/check/index.js';
import { createTcpChecker } from '../../src/lvs/check/tcp.js';
import { ipv6Test } from '../lib/gated-test.js';
import { stuckListener } from '../lib/stuck-listener.js';

function tcpCheck(address: string, port: number, extra: Partial<TcpCheck> = {}): TcpCheck {
  return {
    type: 'TCP_CHECK', connect_timeout: 5, retry: 1, delay_before_retry: 1, delay_loop: 60, warmup: 0,
    connect_ip: address, connect_port: port, ...extra,
  };
}

async function listen(host: string): Promise<{ server: Server; port: number; peers: string[] }> {
  const peers: string[] = [];
  const server = createServer((s) => { peers.push(s.remoteAddress ?? '?'); s.on('error', () => {}); s.end(); });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  return { server, port: (server.address() as AddressInfo).port, peers };
}

async function closedPort(host: string): Promise<number> {
  const { server, port } = await listen(host);
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const run = (c: { run(s: AbortSignal): Promise<unknown> }) => c.run(new AbortController().signal);

test('connects to a listening IPv4 port', async (t) => {
  const { server, port, peers } = await listen('127.0.0.1');
  t.teardown(() => server.close());
  const cfg = tcpCheck('127.0.0.1', port);
  const checker = createChecker(cfg);
  t.is(checker.type, 'TCP_CHECK');
  const r = await checker.run(new AbortController().signal);
  t.true(r.ok, r.detail);
  t.regex(r.detail, /connected/);
  // The server saw the connection (then we closed it).
  await new Promise((r2) => setTimeout(r2, 20));
  t.is(peers.length, 1);
});

ipv6Test('connects to a listening IPv6 port', async (t) => {
  const { server, port } = await listen('::1');
  t.teardown(() => server.close());
  const cfg = tcpCheck('::1', port);
  t.deepEqual(checkTarget(cfg), { address: '::1', port, family: 6 });
  const r = await createChecker(cfg).run(new AbortController().signal);
  t.true(r.ok, r.detail);
  t.regex(r.detail, /\[::1\]:/);
});

test('a closed port fails with the refusal, not after connect_timeout', async (t) => {
  const port = await closedPort('127.0.0.1');
  // A 30 s timeout: if the checker waited for it, the detail would say "timeout".
  const r = await run(createChecker(tcpCheck('127.0.0.1', port, { connect_timeout: 30 }))) as { ok: boolean; detail: string };
  t.false(r.ok);
  t.regex(r.detail, /ECONNREFUSED/);
});

test('bind_to sets the source address', async (t) => {
  const { server, port, peers } = await listen('127.0.0.1');
  t.teardown(() => server.close());
  const r = await createChecker(tcpCheck('127.0.0.1', port, { bind_to: '127.0.0.2' })).run(new AbortController().signal);
  t.true(r.ok, r.detail);
  await new Promise((r2) => setTimeout(r2, 20));
  t.deepEqual(peers, ['127.0.0.2']);
});

ipv6Test('bind_to sets the source address (IPv6)', async (t) => {
  const { server, port, peers } = await listen('::1');
  t.teardown(() => server.close());
  const r = await createTcpChecker(tcpCheck('::1', port, { bind_to: '::1' }), { address: '::1', port, family: 6 }).run(new AbortController().signal);
  t.true(r.ok, r.detail);
  await new Promise((r2) => setTimeout(r2, 20));
  t.deepEqual(peers, ['::1']);
});

test('bind_to an address not on this host fails', async (t) => {
  const { server, port } = await listen('127.0.0.1');
  t.teardown(() => server.close());
  const r = await createChecker(tcpCheck('127.0.0.1', port, { bind_to: '192.0.2.77' })).run(new AbortController().signal);
  t.false(r.ok);
  t.regex(r.detail, /EADDRNOTAVAIL/);
});

test('a connect that never completes fails after connect_timeout', async (t) => {
  const port = await stuckListener(t, '127.0.0.1');
  const r = await createChecker(tcpCheck('127.0.0.1', port, { connect_timeout: 0.3 })).run(new AbortController().signal);
  t.false(r.ok);
  t.regex(r.detail, /timeout after 300 ms/);
});

test('abort ends a pending connect with "aborted"', async (t) => {
  const port = await stuckListener(t, '127.0.0.1');
  const ac = new AbortController();
  const p = createChecker(tcpCheck('127.0.0.1', port, { connect_timeout: 60 })).run(ac.signal);
  setTimeout(() => ac.abort(), 50);
  const r = await p;
  t.deepEqual(r, { ok: false, detail: 'aborted' });
});

test('an already aborted signal does not connect', async (t) => {
  const { server, port, peers } = await listen('127.0.0.1');
  t.teardown(() => server.close());
  const ac = new AbortController();
  ac.abort();
  const r = await createChecker(tcpCheck('127.0.0.1', port)).run(ac.signal);
  t.false(r.ok);
  t.is(r.detail, 'aborted');
  await new Promise((r2) => setTimeout(r2, 20));
  t.is(peers.length, 0);
});
