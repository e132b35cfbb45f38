import test from 'ava';
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { DnsCheck } from '../../src/config/types.js';
import { DNS_TYPE_CODES, encodeDnsQuery } from '../../src/lvs/check/dns.js';
import { createChecker } from '../../src/lvs/check/index.js';
import type { CheckResult } from '../../src/lvs/check/types.js';
import { ipv6Test } from '../lib/gated-test.js';

function dns(address: string, port: number, name: string, extra: Partial<DnsCheck> = {}): DnsCheck {
  return {
    type: 'DNS_CHECK', connect_timeout: 5, retry: 3, delay_before_retry: 60, delay_loop: 60, warmup: 0,
    connect_ip: address, connect_port: port, query_type: 'A', name, ...extra,
  };
}

interface Query { id: number; flags: number; qdcount: number; name: string; qtype: number; qclass: number }

function parseQuery(msg: Buffer): Query {
  let off = 12;
  const labels: string[] = [];
  for (;;) {
    const len = msg[off++]!;
    if (len === 0) break;
    labels.push(msg.subarray(off, off + len).toString('ascii'));
    off += len;
  }
  return {
    id: msg.readUInt16BE(0), flags: msg.readUInt16BE(2), qdcount: msg.readUInt16BE(4),
    name: labels.join('.'), qtype: msg.readUInt16BE(off), qclass: msg.readUInt16BE(off + 2),
  };
}

/** The reply: the question copied, QR + RD + RA, the RCODE, and `answers` A records. */
function reply(query: Buffer, q: Query, rcode: number, answers: number, id = q.id): Buffer {
  const qEnd = 12 + (query.length - 12);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x8000 | 0x0100 | 0x0080 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers, 6);
  const rrs: Buffer[] = [];
  for (let i = 0; i < answers; i++) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
    rr.writeUInt16BE(1, 2); rr.writeUInt16BE(1, 4); rr.writeUInt32BE(60, 6); rr.writeUInt16BE(4, 10);
    rr.set([192, 0, 2, 1 + i], 12);
    rrs.push(rr);
  }
  return Buffer.concat([header, query.subarray(12, qEnd), ...rrs]);
}

/**
 * A tiny responder: ok.test -> NOERROR + 1 answer, empty.test -> NOERROR without answers,
 * missing.test -> NXDOMAIN, servfail.test -> SERVFAIL, noise.test -> first junk (short,
 * wrong id, no QR) then NOERROR, silent.test -> nothing.
 */
async function responder(family: 4 | 6): Promise<{ sock: Socket; port: number; queries: Query[] }> {
  const sock = createSocket(family === 6 ? 'udp6' : 'udp4');
  const queries: Query[] = [];
  sock.on('message', (msg, from) => {
    const q = parseQuery(msg);
    queries.push(q);
    const send = (b: Buffer): void => { sock.send(b, from.port, from.address); };
    switch (q.name) {
      case 'ok.test': send(reply(msg, q, 0, 1)); break;
      case 'empty.test': send(reply(msg, q, 0, 0)); break;
      case 'missing.test': send(reply(msg, q, 3, 0)); break;
      case 'servfail.test': send(reply(msg, q, 2, 0)); break;
      case 'noise.test': {
        send(Buffer.from([1, 2, 3]));
        send(reply(msg, q, 3, 0, (q.id + 1) & 0xffff)); // NXDOMAIN with another id: ignored
        const echo = Buffer.from(msg); // the query itself (QR clear): ignored
        send(echo);
        setTimeout(() => send(reply(msg, q, 0, 1)), 20);
        break;
      }
      default: break;
    }
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, family === 6 ? '::1' : '127.0.0.1', () => {
      sock.off('error', reject);
      resolve();
    });
  });
  return { sock, port: (sock.address() as AddressInfo).port, queries };
}

const run = (cfg: DnsCheck, random?: () => number): Promise<CheckResult> =>
  createChecker(cfg, undefined, random ? { random } : {}).run(new AbortController().signal);

test('NOERROR with an answer is ok; the query is RD, class IN, of the configured type', async (t) => {
  const s = await responder(4);
  t.teardown(() => s.sock.close());
  const checker = createChecker(dns('127.0.0.1', s.port, 'ok.test', { query_type: 'AAAA' }), undefined, { random: () => 0.5 });
  t.is(checker.type, 'DNS_CHECK');
  const r = await checker.run(new AbortController().signal);
  t.true(r.ok, r.detail);
  t.regex(r.detail, /NOERROR, 1 answer/);
  t.deepEqual(s.queries[0], { id: 0x8000, flags: 0x0100, qdcount: 1, name: 'ok.test', qtype: 28, qclass: 1 });
});

test('NOERROR without answers is ok, as keepalived (only the RCODE is checked)', async (t) => {
  const s = await responder(4);
  t.teardown(() => s.sock.close());
  const r = await run(dns('127.0.0.1', s.port, 'empty.test', { query_type: 'MX' }));
  t.true(r.ok, r.detail);
  t.is(s.queries[0]!.qtype, 15);
});

test('NXDOMAIN and SERVFAIL fail', async (t) => {
  const s = await responder(4);
  t.teardown(() => s.sock.close());
  const nx = await run(dns('127.0.0.1', s.port, 'missing.test'));
  t.false(nx.ok);
  t.regex(nx.detail, /NXDOMAIN/);
  const sf = await run(dns('127.0.0.1', s.port, 'servfail.test'));
  t.false(sf.ok);
  t.regex(sf.detail, /SERVFAIL/);
});

ipv6Test('a server on IPv6: its answer decides (NOERROR ok, NXDOMAIN fails)', async (t) => {
  const s = await responder(6);
  t.teardown(() => s.sock.close());
  const ok = await run(dns('::1', s.port, 'ok.test'));
  t.true(ok.ok, ok.detail);
  const nx = await run(dns('::1', s.port, 'missing.test'));
  t.false(nx.ok);
  t.regex(nx.detail, /NXDOMAIN/);
});

test('short datagrams, other ids and non-responses are ignored; the real reply decides', async (t) => {
  const s = await responder(4);
  t.teardown(() => s.sock.close());
  const r = await run(dns('127.0.0.1', s.port, 'noise.test'), () => 0.25);
  t.true(r.ok, r.detail);
  t.is(s.queries[0]!.id, 0x4000);
});

test('no reply fails after connect_timeout; a closed port fails on the ICMP error', async (t) => {
  const s = await responder(4);
  t.teardown(() => s.sock.close());
  const silent = await run(dns('127.0.0.1', s.port, 'silent.test', { connect_timeout: 0.3 }));
  t.false(silent.ok);
  t.is(silent.detail, 'timeout after 300 ms');

  const closed = await responder(4);
  await new Promise<void>((r) => closed.sock.close(r));
  const refused = await run(dns('127.0.0.1', closed.port, 'ok.test', { connect_timeout: 30 }));
  t.false(refused.ok);
  t.regex(refused.detail, /ECONNREFUSED/);
});

test('encodeDnsQuery: labels, a trailing dot, the root name', (t) => {
  const a = encodeDnsQuery(0x1234, 'www.example.com', 'A');
  const b = encodeDnsQuery(0x1234, 'www.example.com.', 'A');
  t.deepEqual(a, b);
  t.deepEqual([...a.subarray(0, 12)], [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  t.deepEqual([...a.subarray(12)], [3, ...Buffer.from('www'), 7, ...Buffer.from('example'), 3, ...Buffer.from('com'), 0, 0, 1, 0, 1]);
  t.deepEqual([...encodeDnsQuery(1, '.', 'SOA').subarray(12)], [0, 0, DNS_TYPE_CODES.SOA, 0, 1]);
  t.throws(() => encodeDnsQuery(1, 'x'.repeat(64) + '.test', 'A'), { instanceOf: RangeError });
});

test('a name with a label over 63 bytes fails the check without sending', async (t) => {
  const s = await responder(4);
  t.teardown(() => s.sock.close());
  const r = await run(dns('127.0.0.1', s.port, 'x'.repeat(64) + '.test'));
  t.false(r.ok);
  t.regex(r.detail, /longer than 63/);
  t.is(s.queries.length, 0);
});
