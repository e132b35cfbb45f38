/**
 * Known answers: adverts captured from keepalived 2.2.7 (scripts/capture-vrrp-fixtures.sh).
 * Expected fields come from the capture script's keepalived configuration, not from our decoder;
 * re-encoding must reproduce keepalived's bytes, checksum included.
 */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatIp } from '../../src/util/inet.js';
import {
  checkAdvert,
  decodeAdvert,
  encodeAdvert,
  parseIpv4Packet,
  passwordAuthData,
  type DecodeContext,
} from '../../src/vrrp/packet.js';
import type { Advert, IpFamily, VrrpVersion } from '../../src/vrrp/types.js';

// Tests run from dist/test/unit; the fixtures stay in the source tree.
const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/vrrp/', import.meta.url));

interface Expected {
  family: IpFamily;
  src: string;
  dst: string;
  ttl: number;
  advert: {
    version: VrrpVersion;
    vrid: number;
    priority: number;
    advertIntCs: number;
    addresses: string[];
    authType?: number;
    password?: string;
  };
}

const names = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.hex'))
  .map((f) => f.slice(0, -'.hex'.length))
  .sort();

test('the fixture set covers v2 PASS, v3 IPv4, v3 IPv6 and several VIPs', (t) => {
  t.deepEqual(names, ['v2-ipv4-pass', 'v3-ipv4', 'v3-ipv4-multi', 'v3-ipv6', 'v3-ipv6-multi']);
});

/** Splits a captured IP packet into the VRRP payload and the decode context its header gives. */
function split(packet: Buffer): { payload: Buffer; ctx: DecodeContext } {
  if (packet[0]! >> 4 === 4) {
    const ip = parseIpv4Packet(packet);
    if (!ip.ok) throw new Error(`fixture IPv4 header rejected: ${ip.reason}`);
    return { payload: ip.payload, ctx: { family: 4, src: ip.src, dst: ip.dst, ttl: ip.ttl } };
  }
  // Fixed IPv6 header: payload length at 4, next header at 6, hop limit at 7, addresses at 8/24.
  if (packet[6] !== 112) throw new Error('fixture IPv6 packet is not VRRP');
  return {
    payload: packet.subarray(40, 40 + packet.readUInt16BE(4)),
    ctx: { family: 6, src: formatIp(packet.subarray(8, 24)), dst: formatIp(packet.subarray(24, 40)), ttl: packet[7]! },
  };
}

for (const name of names) {
  const expected = JSON.parse(readFileSync(`${FIXTURES}${name}.json`, 'utf8')) as Expected;
  const packets = readFileSync(`${FIXTURES}${name}.hex`, 'utf8')
    .trim()
    .split('\n')
    .map((line) => Buffer.from(line, 'hex'));

  test(`${name}: every captured advert decodes to the configured fields`, (t) => {
    t.true(packets.length >= 2);
    for (const packet of packets) {
      const { payload, ctx } = split(packet);
      t.is(ctx.family, expected.family);
      t.is(ctx.src, expected.src);
      t.is(ctx.dst, expected.dst);
      t.is(ctx.ttl, expected.ttl);
      const decoded = decodeAdvert(payload, ctx);
      if (!decoded.ok) return t.fail(`dropped: ${decoded.reason}`);
      const e = expected.advert;
      const want: Advert = {
        version: e.version,
        vrid: e.vrid,
        priority: e.priority,
        advertIntCs: e.advertIntCs,
        addresses: e.addresses,
      };
      if (e.version === 2) {
        want.authType = e.authType ?? 0;
        want.authData = passwordAuthData(e.password ?? '');
      }
      t.deepEqual(decoded.advert, want);
      // The instance keepalived's peer would run accepts it.
      t.is(
        checkAdvert(
          decoded.advert,
          { version: e.version, vrid: e.vrid, advertIntCs: e.advertIntCs, addresses: e.addresses, authType: e.authType, password: e.password },
          ctx.src,
        ),
        null,
      );
    }
  });

  test(`${name}: re-encoding reproduces keepalived's bytes, checksum included`, (t) => {
    for (const packet of packets) {
      const { payload, ctx } = split(packet);
      const decoded = decodeAdvert(payload, ctx);
      if (!decoded.ok) return t.fail(`dropped: ${decoded.reason}`);
      t.is(encodeAdvert(decoded.advert, ctx).toString('hex'), payload.toString('hex'));
    }
  });
}

test('v3 over IPv4 from keepalived 2.2.7 carries the pseudo-header checksum, not the v2-style one', (t) => {
  const { payload, ctx } = split(Buffer.from(readFileSync(`${FIXTURES}v3-ipv4.hex`, 'utf8').split('\n')[0]!, 'hex'));
  // Known answer from the capture: 0x60ab.
  t.is(payload.readUInt16BE(6), 0x60ab);
  const decoded = decodeAdvert(payload, ctx);
  if (!decoded.ok) return t.fail(decoded.reason);
  t.not(encodeAdvert(decoded.advert, { ...ctx, v3ChecksumAsV2: true }).readUInt16BE(6), 0x60ab);
  // Accepted with the option too: keepalived peers keep sending the pseudo-header form.
  t.true(decodeAdvert(payload, { ...ctx, v3ChecksumAsV2: true }).ok);
});
