import test from 'ava';
import { encodeEchoRequest, ipv4Header, parseIcmp, PING_PAYLOAD_BYTES } from '../../src/lvs/check/ping.js';
import { internetChecksum } from '../../src/util/inet.js';

/** An IPv4 packet around an ICMP message, as a raw IPv4 ICMP socket delivers it. */
function ip4(src: string, dst: string, icmp: Buffer, ihlWords = 5): Buffer {
  const h = Buffer.alloc(ihlWords * 4);
  h[0] = 0x40 | ihlWords;
  h.writeUInt16BE(h.length + icmp.length, 2);
  h[8] = 64;
  h[9] = 1;
  Buffer.from(src.split('.').map(Number)).copy(h, 12);
  Buffer.from(dst.split('.').map(Number)).copy(h, 16);
  return Buffer.concat([h, icmp]);
}

function ip6Header(dst: string): Buffer {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h[6] = 58;
  h[7] = 64;
  // dst 2001:db8::5 -> bytes
  const groups = ['2001', 'db8', '0', '0', '0', '0', '0', dst === '2001:db8::5' ? '5' : '6'];
  groups.forEach((g, i) => h.writeUInt16BE(parseInt(g, 16), 24 + i * 2));
  return h;
}

test('IPv4 echo request: type 8, id, seq, payload, a checksum that verifies', (t) => {
  const b = encodeEchoRequest(4, 0x1234, 0xfffe);
  t.is(b.length, 8 + PING_PAYLOAD_BYTES);
  t.is(b[0], 8);
  t.is(b[1], 0);
  t.is(b.readUInt16BE(4), 0x1234);
  t.is(b.readUInt16BE(6), 0xfffe);
  t.is(internetChecksum(b), 0); // a correct checksum sums to zero
  t.not(b.readUInt16BE(2), 0);
});

test('IPv6 echo request: type 128, checksum left to the kernel', (t) => {
  const b = encodeEchoRequest(6, 7, 9, Buffer.from('abc'));
  t.deepEqual([...b], [128, 0, 0, 0, 0, 7, 0, 9, 97, 98, 99]);
});

test('an echo reply inside an IPv4 packet (with IP options) is found', (t) => {
  const reply = encodeEchoRequest(4, 0xbeef, 42);
  reply[0] = 0; // echo reply
  t.deepEqual(parseIcmp(4, ip4('10.0.0.2', '10.0.0.1', reply)), { kind: 'reply', id: 0xbeef, seq: 42 });
  t.deepEqual(parseIcmp(4, ip4('10.0.0.2', '10.0.0.1', reply, 6)), { kind: 'reply', id: 0xbeef, seq: 42 });
});

test('our own echo request and unrelated ICMP are "other"', (t) => {
  t.deepEqual(parseIcmp(4, ip4('10.0.0.1', '10.0.0.2', encodeEchoRequest(4, 1, 1))), { kind: 'other' });
  t.deepEqual(parseIcmp(4, Buffer.from([0x45, 0])), { kind: 'other' });
  t.deepEqual(parseIcmp(6, Buffer.from([134, 0, 0, 0, 0, 0, 0, 0])), { kind: 'other' }); // router advert
  t.deepEqual(parseIcmp(6, encodeEchoRequest(6, 1, 1)), { kind: 'other' });
});

test('an IPv4 destination unreachable quoting our request names the request', (t) => {
  const request = ip4('10.0.0.1', '10.0.0.9', encodeEchoRequest(4, 0x55, 3));
  const err = Buffer.concat([Buffer.from([3, 1, 0, 0, 0, 0, 0, 0]), request.subarray(0, 28)]);
  t.deepEqual(parseIcmp(4, ip4('10.0.0.254', '10.0.0.1', err)), { kind: 'error', type: 3, code: 1, id: 0x55, seq: 3, to: '10.0.0.9' });
  // Quoting a UDP datagram instead: not ours.
  const udp = Buffer.from(request);
  udp[9] = 17;
  t.deepEqual(parseIcmp(4, ip4('10.0.0.254', '10.0.0.1', Buffer.concat([Buffer.from([3, 3, 0, 0, 0, 0, 0, 0]), udp]))), { kind: 'other' });
});

test('an ICMPv6 reply and an ICMPv6 unreachable quoting our request', (t) => {
  const reply = encodeEchoRequest(6, 0x77, 5);
  reply[0] = 129;
  t.deepEqual(parseIcmp(6, reply), { kind: 'reply', id: 0x77, seq: 5 });
  const quoted = Buffer.concat([ip6Header('2001:db8::5'), encodeEchoRequest(6, 0x77, 5)]);
  const err = Buffer.concat([Buffer.from([1, 3, 0, 0, 0, 0, 0, 0]), quoted]);
  t.deepEqual(parseIcmp(6, err), { kind: 'error', type: 1, code: 3, id: 0x77, seq: 5, to: '2001:db8::5' });
});

test('the bind_to IPv4 header carries source, destination, protocol ICMP and TTL 64', (t) => {
  const h = ipv4Header('10.0.0.1', '10.0.0.9', 64);
  t.is(h[0], 0x45);
  t.is(h.readUInt16BE(2), 84);
  t.is(h[8], 64);
  t.is(h[9], 1);
  t.deepEqual([...h.subarray(12, 20)], [10, 0, 0, 1, 10, 0, 0, 9]);
});
