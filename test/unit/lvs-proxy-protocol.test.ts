import test from 'ava';
import { encodeProxyHeader, encodeProxyV1, encodeProxyV2, PROXY_V2_SIGNATURE, unmapAddress } from '../../src/lvs/dataplane/proxy/proxy-protocol.js';

test('v1 TCP4 line, as in the spec example', (t) => {
  const b = encodeProxyV1({ srcAddress: '192.168.0.1', srcPort: 56324, dstAddress: '192.168.0.11', dstPort: 443 });
  t.is(b.toString('latin1'), 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n');
});

test('v1 TCP6 line and UNKNOWN for mixed families', (t) => {
  t.is(
    encodeProxyV1({ srcAddress: '2001:db8::1', srcPort: 1, dstAddress: '2001:db8::2', dstPort: 65535 }).toString(),
    'PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n',
  );
  t.is(encodeProxyV1({ srcAddress: '2001:db8::1', srcPort: 1, dstAddress: '192.0.2.1', dstPort: 2 }).toString(), 'PROXY UNKNOWN\r\n');
  // IPv4-mapped addresses from a dual-stack socket are unmapped
  t.is(
    encodeProxyV1({ srcAddress: '::ffff:192.0.2.7', srcPort: 5, dstAddress: '::ffff:192.0.2.1', dstPort: 80 }).toString(),
    'PROXY TCP4 192.0.2.7 192.0.2.1 5 80\r\n',
  );
  t.is(unmapAddress('::FFFF:10.0.0.1'), '10.0.0.1');
  t.is(unmapAddress('::1'), '::1');
});

test('v2 signature is the 12 bytes of the spec', (t) => {
  t.deepEqual([...PROXY_V2_SIGNATURE], [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
});

test('v2 TCP over IPv4: byte-exact', (t) => {
  const b = encodeProxyV2({ srcAddress: '192.168.0.1', srcPort: 56324, dstAddress: '192.168.0.11', dstPort: 443 });
  t.is(
    b.toString('hex'),
    '0d0a0d0a000d0a515549540a' + // signature
      '21' + // version 2, PROXY
      '11' + // AF_INET, STREAM
      '000c' + // 12 bytes of addresses
      'c0a80001' +
      'c0a8000b' +
      'dc04' + // 56324
      '01bb', // 443
  );
  t.deepEqual(encodeProxyHeader('v2', { srcAddress: '192.168.0.1', srcPort: 56324, dstAddress: '192.168.0.11', dstPort: 443 }), b);
});

test('v2 TCP over IPv6: byte-exact', (t) => {
  const b = encodeProxyV2({ srcAddress: '2001:db8::1', srcPort: 1, dstAddress: 'fe80::aa:bb', dstPort: 8080 });
  t.is(
    b.toString('hex'),
    '0d0a0d0a000d0a515549540a' +
      '21' +
      '21' + // AF_INET6, STREAM
      '0024' + // 36
      '20010db8000000000000000000000001' +
      'fe800000000000000000000000aa00bb' +
      '0001' +
      '1f90',
  );
});

test('v2 with mixed families: PROXY command, AF_UNSPEC, no addresses', (t) => {
  const b = encodeProxyV2({ srcAddress: '2001:db8::1', srcPort: 1, dstAddress: '192.0.2.1', dstPort: 2 });
  t.is(b.toString('hex'), '0d0a0d0a000d0a515549540a' + '21' + '00' + '0000');
});

test('header selection by version', (t) => {
  const e = { srcAddress: '10.0.0.1', srcPort: 1000, dstAddress: '10.0.0.2', dstPort: 80 };
  t.is(encodeProxyHeader('v1', e).toString(), 'PROXY TCP4 10.0.0.1 10.0.0.2 1000 80\r\n');
  t.is(encodeProxyHeader('v2', e).length, 28);
});
