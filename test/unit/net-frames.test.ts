import test from 'ava';
import fc from 'fast-check';
import {
  buildGarp,
  buildUnsolicitedNa,
  internetChecksum,
  ipv4ToBuffer,
  ipv6ToBuffer,
  ipv6ToString,
  macToBuffer,
  parseArp,
  parseNa,
} from '../../src/net/frames.js';
import { parseCidr } from '../../src/net/rtnl.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Deliberately naive one's-complement sum: byte pairs, BigInt accumulator, fold at the end. */
function naiveSum16(data: number[]): number {
  let sum = 0n;
  for (let i = 0; i < data.length; i += 2) sum += BigInt((data[i]! << 8) + (i + 1 < data.length ? data[i + 1]! : 0));
  while (sum > 0xffffn) sum = (sum >> 16n) + (sum & 0xffffn);
  return Number(sum);
}

function naiveIcmpv6ChecksumOk(frame: Buffer): boolean {
  const ip = 14;
  const len = frame.readUInt16BE(ip + 4);
  const pseudo = [...frame.subarray(ip + 8, ip + 40), 0, 0, (len >> 8) & 0xff, len & 0xff, 0, 0, 0, frame[ip + 6]!];
  return naiveSum16([...pseudo, ...frame.subarray(ip + 40, ip + 40 + len)]) === 0xffff;
}

test('GARP matches keepalived byte for byte (request, sender = target = VIP, tha broadcast)', (t) => {
  const f = buildGarp('02:00:00:00:00:01', '192.0.2.10');
  t.deepEqual(
    f,
    hex(`ffffffffffff 020000000001 0806
         0001 0800 06 04 0001
         020000000001 c000020a
         ffffffffffff c000020a`),
  );
});

test('unsolicited NA known answer: addresses, hop limit 255, Override only, TLLA option, checksum', (t) => {
  const f = buildUnsolicitedNa('02:00:00:00:00:01', 'fd00::100', 'fd00::100');
  const expected = hex(`333300000001 020000000001 86dd
    60000000 0020 3a ff
    fd000000000000000000000000000100
    ff020000000000000000000000000001
    88 00 589d 20000000
    fd000000000000000000000000000100
    02 01 020000000001`);
  t.deepEqual(f, expected);
  t.true(naiveIcmpv6ChecksumOk(f));
});

test('NA router flag and explicit link-local source', (t) => {
  const f = buildUnsolicitedNa('02:00:00:00:00:01', 'fe80::1', 'fd00::100', { router: true });
  const na = parseNa(f);
  t.truthy(na);
  t.is(na!.src, 'fe80::1');
  t.true(na!.router && na!.override && !na!.solicited);
  t.true(na!.checksumOk);
  t.true(naiveIcmpv6ChecksumOk(f));
});

const macArb = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':'));
const ip4Arb = fc.ipV4();
const ip6Arb = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => ipv6ToString(b));

test('GARP round trip', (t) => {
  fc.assert(
    fc.property(macArb, ip4Arb, (mac, ip) => {
      const arp = parseArp(buildGarp(mac, ip));
      return (
        arp !== null &&
        arp.op === 1 &&
        arp.ethDst === 'ff:ff:ff:ff:ff:ff' &&
        arp.ethSrc === mac &&
        arp.senderMac === mac &&
        arp.senderIp === ip &&
        arp.targetIp === ip &&
        arp.targetMac === 'ff:ff:ff:ff:ff:ff'
      );
    }),
  );
  t.pass();
});

test('NA round trip, checksum agrees with the naive implementation', (t) => {
  fc.assert(
    fc.property(macArb, ip6Arb, ip6Arb, fc.boolean(), (mac, src, target, router) => {
      const f = buildUnsolicitedNa(mac, src, target, { router });
      const na = parseNa(f);
      return (
        na !== null &&
        na.ethDst === '33:33:00:00:00:01' &&
        na.ethSrc === mac &&
        na.src === src &&
        na.dst === 'ff02::1' &&
        na.hopLimit === 255 &&
        na.target === target &&
        na.targetMac === mac &&
        na.override &&
        !na.solicited &&
        na.router === router &&
        na.checksumOk &&
        naiveIcmpv6ChecksumOk(f)
      );
    }),
  );
  t.pass();
});

test('a single flipped bit anywhere in the ICMPv6 part or addresses breaks the checksum', (t) => {
  const f = buildUnsolicitedNa('02:00:00:00:00:01', 'fd00::100', 'fd00::100');
  fc.assert(
    fc.property(fc.integer({ min: 14 + 8, max: f.length - 1 }), fc.integer({ min: 0, max: 7 }), (byte, bit) => {
      const g = Buffer.from(f);
      g[byte]! ^= 1 << bit;
      const na = parseNa(g);
      // Either the frame is no longer an NA at all (type/option bytes), or its checksum fails.
      return na === null || !na.checksumOk;
    }),
  );
  t.pass();
});

test('parsers never throw and reject wrong kinds', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      parseArp(bytes);
      parseNa(bytes);
      return true;
    }),
    { numRuns: 2000 },
  );
  // Mutations of valid frames reach deeper parser paths than random bytes do.
  const na = buildUnsolicitedNa('02:00:00:00:00:01', 'fd00::100', 'fd00::100');
  const arp = buildGarp('02:00:00:00:00:01', '192.0.2.10');
  fc.assert(
    fc.property(
      fc.constantFrom(na, arp),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.nat({ max: 100 }),
      (base, edits, cut) => {
        const g = Buffer.from(base);
        for (const [i, v] of edits) g[i % g.length] = v;
        const h = g.subarray(0, Math.max(0, g.length - cut));
        parseArp(h);
        parseNa(h);
        return true;
      },
    ),
    { numRuns: 2000 },
  );
  t.is(parseArp(na), null);
  t.is(parseNa(arp), null);
  t.is(parseNa(na.subarray(0, na.length - 1)), null, 'payload length beyond the frame');
  const zeroOpt = Buffer.from(na);
  zeroOpt[14 + 40 + 25] = 0;
  t.is(parseNa(zeroOpt), null, 'zero-length ND option invalidates the packet');
});

test('internetChecksum handles odd-length parts split across boundaries', (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 9 }), { maxLength: 5 }), (parts) => {
      const all = parts.flatMap((p) => [...p]);
      return internetChecksum(...parts) === (~naiveSum16(all) & 0xffff);
    }),
  );
  t.pass();
});

test('IPv6 text parsing and RFC 5952 formatting', (t) => {
  t.is(ipv6ToString(ipv6ToBuffer('FE80:0:0:0:0:0:0:1')), 'fe80::1');
  t.is(ipv6ToString(ipv6ToBuffer('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1');
  t.is(ipv6ToString(ipv6ToBuffer('2001:db8:0:1:1:1:1:1')), '2001:db8:0:1:1:1:1:1');
  t.is(ipv6ToString(ipv6ToBuffer('::')), '::');
  t.is(ipv6ToString(ipv6ToBuffer('::ffff:192.0.2.1')), '::ffff:c000:201');
  t.deepEqual(ipv6ToBuffer('::ffff:192.0.2.1').subarray(12), Buffer.from([192, 0, 2, 1]));
  for (const bad of ['1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', 'g::1', '12345::', '::1.2.3', '1.2.3.4', '']) {
    t.throws(() => ipv6ToBuffer(bad), { instanceOf: TypeError }, bad);
  }
  fc.assert(fc.property(ip6Arb, (s) => ipv6ToString(ipv6ToBuffer(s)) === s));
  t.throws(() => ipv4ToBuffer('256.0.0.1'), { instanceOf: TypeError });
  t.throws(() => ipv4ToBuffer('01.2.3.4'), { instanceOf: TypeError });
  t.throws(() => macToBuffer('02:00:00:00:00'), { instanceOf: TypeError });
});

test('parseCidr normalizes and defaults to a host prefix', (t) => {
  t.deepEqual(
    { ...parseCidr('10.0.0.5'), bytes: undefined },
    { family: 4, address: '10.0.0.5', prefix: 32, bytes: undefined },
  );
  const v6 = parseCidr('FD00:0::1/64');
  t.is(v6.address, 'fd00::1');
  t.is(v6.prefix, 64);
  t.is(parseCidr('fd00::1').prefix, 128);
  for (const bad of ['10.0.0.1/33', 'fd00::1/129', '10.0.0.1/', '10.0.0.1/x', 'nope/24']) {
    t.throws(() => parseCidr(bad), { code: 'E_NETLINK' }, bad);
  }
});
