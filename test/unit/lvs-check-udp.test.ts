import test from 'ava';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { UdpCheck } from '../../src/config/types.js';
import { createChecker } from '../../src/lvs/check/index.js';
import type { CheckResult } from '../../src/lvs/check/types.js';
import { ipv6Test } from '../lib/gated-test.js';

function udp(address: string, port: number, extra: Partial<UdpCheck> = {}): UdpCheck {
  return {
    type: 'UDP_CHECK', connect_timeout: 5, retry: 1, delay_before_retry: 1, delay_loop: 60, warmup: 0,
    connect_ip: address, connect_port: port, payload: '', require_reply: false, ...extra,
  };
}

interface UdpServer { sock: Socket; port: number; got: Array<{ msg: Buffer; from: RemoteInfo }> }

/** echo = true: replies with what it got; false: records and stays silent. */
async function server(family: 4 | 6, echo: boolean): Promise<UdpServer> {
  const sock = createSocket(family === 6 ? 'udp6' : 'udp4');
  const got: UdpServer['got'] = [];
  sock.on('message', (msg, from) => {
    got.push({ msg, from });
    if (echo) sock.send(msg, from.port, from.address);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, family === 6 ? '::1' : '127.0.0.1', () => {
      sock.off('error', reject);
      resolve();
    });
  });
  return { sock, port: (sock.address() as AddressInfo).port, got };
}

async function closedPort(family: 4 | 6): Promise<number> {
  const s = await server(family, false);
  await new Promise<void>((r) => s.sock.close(r));
  return s.port;
}

const run = (cfg: UdpCheck): Promise<CheckResult> => createChecker(cfg).run(new AbortController().signal);

test('require_reply: an echo server answers -> ok; the payload is sent as text', async (t) => {
  const s = await server(4, true);
  t.teardown(() => s.sock.close());
  const checker = createChecker(udp('127.0.0.1', s.port, { payload: 'ping', require_reply: true }));
  t.is(checker.type, 'UDP_CHECK');
  const r = await checker.run(new AbortController().signal);
  t.true(r.ok, r.detail);
  t.regex(r.detail, /reply of 4 bytes/);
  t.is(s.got.length, 1);
  t.is(s.got[0]!.msg.toString(), 'ping');
});

test('empty payload sends a single zero byte', async (t) => {
  const s = await server(4, true);
  t.teardown(() => s.sock.close());
  const r = await run(udp('127.0.0.1', s.port, { require_reply: true }));
  t.true(r.ok, r.detail);
  t.deepEqual([...s.got[0]!.msg], [0]);
});

test('require_reply: a silent server fails after connect_timeout', async (t) => {
  const s = await server(4, false);
  t.teardown(() => s.sock.close());
  const r = await run(udp('127.0.0.1', s.port, { payload: 'ping', require_reply: true, connect_timeout: 0.3 }));
  t.false(r.ok);
  t.is(r.detail, 'timeout after 300 ms');
  t.is(s.got.length, 1); // the datagram did arrive
});

test('without require_reply: a silent open port is ok (no ICMP error within connect_timeout)', async (t) => {
  const s = await server(4, false);
  t.teardown(() => s.sock.close());
  const r = await run(udp('127.0.0.1', s.port, { payload: 'ping', connect_timeout: 0.3 }));
  t.true(r.ok, r.detail);
  t.regex(r.detail, /no ICMP error/);
  t.is(s.got.length, 1);
});

test('without require_reply: a closed port fails on the ICMP port unreachable, not at the timeout', async (t) => {
  const port4 = await closedPort(4);
  const r4 = await run(udp('127.0.0.1', port4, { connect_timeout: 30 }));
  t.false(r4.ok);
  t.regex(r4.detail, /ECONNREFUSED/);
});

ipv6Test('IPv6: an echo server answers; a closed port fails on the ICMPv6 port unreachable', async (t) => {
  const s = await server(6, true);
  t.teardown(() => s.sock.close());
  const ok = await run(udp('::1', s.port, { payload: 'ping', require_reply: true }));
  t.true(ok.ok, ok.detail);
  t.is(s.got[0]!.msg.toString(), 'ping');
  const port6 = await closedPort(6);
  const r6 = await run(udp('::1', port6, { connect_timeout: 30, require_reply: true }));
  t.false(r6.ok);
  t.regex(r6.detail, /ECONNREFUSED/);
});

test('bind_to sets the source address', async (t) => {
  const s = await server(4, true);
  t.teardown(() => s.sock.close());
  const r = await run(udp('127.0.0.1', s.port, { bind_to: '127.0.0.1', require_reply: true }));
  t.true(r.ok, r.detail);
  t.is(s.got[0]!.from.address, '127.0.0.1');
  const bad = await run(udp('127.0.0.1', s.port, { bind_to: '192.0.2.77', require_reply: true }));
  t.false(bad.ok);
  t.regex(bad.detail, /EADDRNOTAVAIL/);
});

test('abort ends the wait with "aborted"', async (t) => {
  const s = await server(4, false);
  t.teardown(() => s.sock.close());
  const ac = new AbortController();
  const p = createChecker(udp('127.0.0.1', s.port, { require_reply: true, connect_timeout: 60 })).run(ac.signal);
  setTimeout(() => ac.abort(), 50);
  t.deepEqual(await p, { ok: false, detail: 'aborted' });
});
