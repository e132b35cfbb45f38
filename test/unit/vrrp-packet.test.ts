import test from 'ava';
import fc from 'fast-check';
import { checksumWith, internetChecksum, pseudoHeader } from '../../src/vrrp/checksum.js';
import { DROP_REASONS, isDropReason, type DropReason } from '../../src/vrrp/drop.js';
import { canonicalIp, formatIp, parseIp } from '../../src/util/inet.js';
import {
  checkAdvert,
  decodeAdvert,
  encodeAdvert,
  parseIpv4Packet,
  passwordAuthData,
  type AdvertExpectation,
  type DecodeContext,
} from '../../src/vrrp/packet.js';
import { isKeepaliveError } from '../../src/util/errors.js';
import type { Advert, IpFamily, VrrpVersion } from '../../src/vrrp/types.js';

// ---------------------------------------------------------------------------------------------
// Naive reference codec: the RFC layouts written out byte by byte, independent of src/vrrp.
// ---------------------------------------------------------------------------------------------

function refAddrBytes(text: string, family: IpFamily): number[] {
  if (family === 4) return text.split('.').map(Number);
  // WHATWG URL parsing expands any IPv6 spelling; read the 8 groups back from its serialisation.
  const host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const [head = '', tail = ''] = host.split('::');
  const h = head ? head.split(':') : [];
  const tl = tail ? tail.split(':') : [];
  const groups = host.includes('::') ? [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl] : h;
  return groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]);
}

function refChecksum(bytes: number[]): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += bytes[i]! * 256 + (bytes[i + 1] ?? 0);
    if (sum > 0xffff) sum -= 0xffff; // end-around carry, one word at a time
  }
  return 0xffff - sum;
}

interface RefCtx {
  family: IpFamily;
  src: string;
  dst: string;
  v3ChecksumAsV2?: boolean;
}

function refPseudo(ctx: RefCtx, version: number, len: number): number[] {
  const s = refAddrBytes(ctx.src, ctx.family);
  const d = refAddrBytes(ctx.dst, ctx.family);
  if (ctx.family === 6) return [...s, ...d, 0, 0, len >> 8, len & 0xff, 0, 0, 0, 112];
  if (version === 3 && !ctx.v3ChecksumAsV2) return [...s, ...d, 0, 112, len >> 8, len & 0xff];
  return [];
}

function refEncode(a: Advert, ctx: RefCtx): Buffer {
  const out: number[] = [];
  out.push(a.version * 16 + 1, a.vrid, a.priority, a.addresses.length);
  if (a.version === 2) out.push(a.authType ?? 0, a.advertIntCs / 100);
  else out.push(Math.floor(a.advertIntCs / 256), a.advertIntCs % 256);
  out.push(0, 0);
  for (const addr of a.addresses) out.push(...refAddrBytes(addr, ctx.family));
  if (a.version === 2 && ctx.family === 4) {
    for (let i = 0; i < 8; i++) out.push(a.authData?.[i] ?? 0);
  }
  const c = refChecksum([...refPseudo(ctx, a.version, out.length), ...out]);
  out[6] = c >> 8;
  out[7] = c & 0xff;
  return Buffer.from(out);
}

/** Decodes a known-valid message the obvious way (no checks), for comparison. */
function refDecode(b: Buffer, family: IpFamily): Advert {
  const version = (b[0]! >> 4) as VrrpVersion;
  const n = b[3]!;
  const alen = family === 4 ? 4 : 16;
  const addresses: string[] = [];
  for (let i = 0; i < n; i++) {
    const raw = [...b.subarray(8 + i * alen, 8 + (i + 1) * alen)];
    addresses.push(
      family === 4
        ? raw.join('.')
        : new URL(`http://[${Array.from({ length: 8 }, (_, g) => (raw[2 * g]! * 256 + raw[2 * g + 1]!).toString(16)).join(':')}]/`).hostname.slice(1, -1),
    );
  }
  const a: Advert = { version, vrid: b[1]!, priority: b[2]!, advertIntCs: 0, addresses };
  if (version === 2) {
    a.authType = b[4]!;
    a.advertIntCs = b[5]! * 100;
    if (family === 4) a.authData = Buffer.from(b.subarray(b.length - 8));
  } else {
    a.advertIntCs = (b[4]! & 0x0f) * 256 + b[5]!;
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

const ipv4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => Array.from(b).join('.'));
const ipv6 = fc
  .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
  .map((g) => new URL(`http://[${g.map((x) => x.toString(16)).join(':')}]/`).hostname.slice(1, -1));
const addrOf = (family: IpFamily) => (family === 4 ? ipv4 : ipv6);

interface Case {
  advert: Advert;
  ctx: DecodeContext;
}

function caseArb(opts: { asV2?: fc.Arbitrary<boolean>; maxAddrs?: number } = {}): fc.Arbitrary<Case> {
  return fc
    .record({ family: fc.constantFrom<IpFamily>(4, 6), version: fc.constantFrom<VrrpVersion>(2, 3) })
    .chain(({ family, version }) =>
      fc.record({
        advert: fc.record({
          version: fc.constant(version),
          vrid: fc.integer({ min: 1, max: 255 }),
          priority: fc.integer({ min: 0, max: 255 }),
          advertIntCs:
            version === 2 ? fc.integer({ min: 1, max: 255 }).map((s) => s * 100) : fc.integer({ min: 1, max: 4095 }),
          addresses: fc.array(addrOf(family), { maxLength: opts.maxAddrs ?? 12 }),
          ...(version === 2
            ? {
                authType: fc.integer({ min: 0, max: 255 }),
                ...(family === 4 ? { authData: fc.uint8Array({ maxLength: 8 }).map((u) => Buffer.from(u)) } : {}),
              }
            : {}),
        }) as fc.Arbitrary<Advert>,
        ctx: fc.record({
          family: fc.constant(family),
          src: addrOf(family),
          dst: addrOf(family),
          ttl: fc.constant(255),
          v3ChecksumAsV2: opts.asV2 ?? fc.boolean(),
        }),
      }),
    );
}

/** What decoding an encoded advert gives back: v2/IPv4 auth data padded to 8 bytes. */
function normalized(a: Advert, family: IpFamily): Advert {
  const out: Advert = { version: a.version, vrid: a.vrid, priority: a.priority, advertIntCs: a.advertIntCs, addresses: a.addresses };
  if (a.version === 2) {
    out.authType = a.authType ?? 0;
    if (family === 4) {
      out.authData = Buffer.alloc(8);
      a.authData?.copy(out.authData);
    }
  }
  return out;
}

/** A minimal IPv4 header in front of `payload`, with a correct header checksum. */
function ipv4Packet(
  payload: Buffer,
  o: { src: string; dst: string; ttl?: number; protocol?: number; options?: number[]; id?: number },
): Buffer {
  const options = o.options ?? [];
  const ihl = 20 + options.length;
  const h = Buffer.alloc(ihl);
  h[0] = 0x40 | (ihl / 4);
  h[1] = 0xc0;
  h.writeUInt16BE(ihl + payload.length, 2);
  h.writeUInt16BE(o.id ?? 1, 4);
  h[8] = o.ttl ?? 255;
  h[9] = o.protocol ?? 112;
  Buffer.from(refAddrBytes(o.src, 4)).copy(h, 12);
  Buffer.from(refAddrBytes(o.dst, 4)).copy(h, 16);
  Buffer.from(options).copy(h, 20);
  h.writeUInt16BE(refChecksum([...h]), 10);
  return Buffer.concat([h, payload]);
}

const V4 = { family: 4, src: '192.0.2.1', dst: '224.0.0.18', ttl: 255 } as const;
const V6 = { family: 6, src: 'fe80::1', dst: 'ff02::12', ttl: 255 } as const;
const baseV2: Advert = {
  version: 2,
  vrid: 7,
  priority: 100,
  advertIntCs: 100,
  addresses: ['192.0.2.100', '192.0.2.101'],
  authType: 1,
  authData: passwordAuthData('pw'),
};
const baseV3: Advert = { version: 3, vrid: 7, priority: 100, advertIntCs: 100, addresses: ['192.0.2.100'] };

function decodeV4Packet(packet: Buffer, asV2 = false) {
  const ip = parseIpv4Packet(packet);
  if (!ip.ok) return ip;
  return decodeAdvert(ip.payload, { family: 4, src: ip.src, dst: ip.dst, ttl: ip.ttl, v3ChecksumAsV2: asV2 });
}

// ---------------------------------------------------------------------------------------------
// Address and checksum helpers
// ---------------------------------------------------------------------------------------------

test('IPv6 text is canonicalised like the WHATWG serialiser (RFC 5952)', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
      const text = formatIp(bytes);
      t.is(text, new URL(`http://[${text}]/`).hostname.slice(1, -1));
      t.deepEqual(parseIp(text, 6), Buffer.from(bytes));
    }),
  );
  t.is(canonicalIp('FD00:0:0:0::0050', 6), 'fd00::50');
  t.is(canonicalIp('2001:db8:0:1:1:1:1:1', 6), '2001:db8:0:1:1:1:1:1'); // one zero group stays
  t.is(canonicalIp('1:0:0:2:0:0:0:3', 6), '1:0:0:2::3'); // longest run wins
  t.is(canonicalIp('1:0:0:2:3:0:0:4', 6), '1::2:3:0:0:4'); // first of equal runs
  t.is(canonicalIp('::ffff:192.0.2.1', 6), '::ffff:c000:201');
  t.is(canonicalIp('::', 6), '::');
  t.is(canonicalIp('fe80::1%eth0', 6), null);
  t.is(canonicalIp('10.0.0.1', 6), null);
  t.is(canonicalIp('fd00::1', 4), null);
  t.is(canonicalIp('256.1.1.1', 4), null);
  t.is(canonicalIp('10.0.0.255', 4), '10.0.0.255');
});

test('internet checksum matches the naive word-by-word sum, odd lengths included', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      t.is(internetChecksum(bytes), refChecksum([...bytes]));
    }),
  );
  // RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d.
  t.is(internetChecksum(Buffer.from('0001f203f4f5f6f7', 'hex')), 0x220d);
  t.is(checksumWith(pseudoHeader(4, Buffer.from([10, 0, 0, 1]), Buffer.from([224, 0, 0, 18]), 8), Buffer.alloc(8)), refChecksum([10, 0, 0, 1, 224, 0, 0, 18, 0, 112, 0, 8]));
});

// ---------------------------------------------------------------------------------------------
// Encoder / decoder against the reference, and round trips
// ---------------------------------------------------------------------------------------------

test('encoder output equals the naive reference encoder on random adverts', (t) => {
  fc.assert(
    fc.property(caseArb(), ({ advert, ctx }) => {
      t.is(encodeAdvert(advert, ctx).toString('hex'), refEncode(advert, ctx).toString('hex'));
    }),
    { numRuns: 500 },
  );
});

test('decoder agrees with the naive reference decoder and round-trips v2/v3 x IPv4/IPv6', (t) => {
  const seen = new Set<string>();
  fc.assert(
    fc.property(caseArb(), ({ advert, ctx }) => {
      seen.add(`v${advert.version}/IPv${ctx.family}`);
      const wire = refEncode(advert, ctx);
      const decoded = decodeAdvert(wire, ctx);
      if (!decoded.ok) throw new Error(`dropped: ${decoded.reason}`);
      t.deepEqual(decoded.advert, refDecode(wire, ctx.family));
      t.deepEqual(decoded.advert, normalized(advert, ctx.family));
      t.deepEqual(encodeAdvert(decoded.advert, ctx), wire);
    }),
    { numRuns: 500 },
  );
  t.deepEqual([...seen].sort(), ['v2/IPv4', 'v2/IPv6', 'v3/IPv4', 'v3/IPv6']);
});

test('full IPv4 packets round-trip through parseIpv4Packet, IP options included', (t) => {
  fc.assert(
    fc.property(
      caseArb({ maxAddrs: 4 }).filter((c) => c.ctx.family === 4),
      fc.constantFrom<number[]>([], [0x94, 0x04, 0x00, 0x00], [1, 1, 1, 0, 0x94, 0x04, 0, 0]),
      ({ advert, ctx }, options) => {
        const payload = encodeAdvert(advert, ctx);
        const ip = parseIpv4Packet(ipv4Packet(payload, { src: ctx.src, dst: ctx.dst, options }));
        if (!ip.ok) throw new Error(ip.reason);
        t.is(ip.src, ctx.src);
        t.is(ip.dst, ctx.dst);
        t.is(ip.ttl, 255);
        t.is(ip.protocol, 112);
        t.deepEqual(ip.payload, payload);
      },
    ),
  );
});

test('v3 over IPv4: pseudo-header checksum by default, message-only with v3ChecksumAsV2', (t) => {
  const withPh = encodeAdvert(baseV3, V4);
  const asV2 = encodeAdvert(baseV3, { ...V4, v3ChecksumAsV2: true });
  t.is(internetChecksum(asV2), 0);
  t.not(internetChecksum(withPh), 0);
  t.true(decodeAdvert(withPh, V4).ok);
  t.deepEqual(decodeAdvert(asV2, V4), { ok: false, reason: 'bad_checksum' });
  t.true(decodeAdvert(asV2, { ...V4, v3ChecksumAsV2: true }).ok);
  t.true(decodeAdvert(withPh, { ...V4, v3ChecksumAsV2: true }).ok);
  // The pseudo-header binds the checksum to the addresses: another destination fails.
  t.deepEqual(decodeAdvert(withPh, { ...V4, dst: '192.0.2.2' }), { ok: false, reason: 'bad_checksum' });
  // Over IPv6 the option means nothing: the kernel always uses the pseudo-header.
  const v6 = { ...baseV3, addresses: ['fd00::50'] };
  t.deepEqual(encodeAdvert(v6, { ...V6, v3ChecksumAsV2: true }), encodeAdvert(v6, V6));
});

test('v3 reserved bits are ignored on receive (and sent as zero)', (t) => {
  const wire = encodeAdvert(baseV3, V4);
  t.is(wire[4]! >> 4, 0);
  const withReserved = mutated(wire, (b) => {
    b[4] = b[4]! | 0xf0;
    b.writeUInt16BE(0, 6);
    b.writeUInt16BE(refChecksum([...refPseudo(V4, 3, b.length), ...b]), 6);
  });
  t.deepEqual(decodeAdvert(withReserved, V4), { ok: true, advert: baseV3 });
});

test('encoder rejects values the wire cannot carry with E_CONFIG_INVALID', (t) => {
  const bad: Array<[string, Advert, typeof V4 | typeof V6]> = [
    ['vrid 0', { ...baseV3, vrid: 0 }, V4],
    ['vrid 256', { ...baseV3, vrid: 256 }, V4],
    ['vrid 1.5', { ...baseV3, vrid: 1.5 }, V4],
    ['priority -1', { ...baseV3, priority: -1 }, V4],
    ['priority 256', { ...baseV3, priority: 256 }, V4],
    ['256 addresses', { ...baseV3, addresses: Array.from({ length: 256 }, (_, i) => `10.0.${i >> 8}.${i & 255}`) }, V4],
    ['v2 sub-second', { ...baseV2, advertIntCs: 50 }, V4],
    ['v2 0 s', { ...baseV2, advertIntCs: 0 }, V4],
    ['v2 256 s', { ...baseV2, advertIntCs: 25600 }, V4],
    ['v3 0 cs', { ...baseV3, advertIntCs: 0 }, V4],
    ['v3 4096 cs', { ...baseV3, advertIntCs: 4096 }, V4],
    ['v3 auth', { ...baseV3, authType: 1 }, V4],
    ['v2 9 auth bytes', { ...baseV2, authData: Buffer.alloc(9, 1) }, V4],
    ['v2 auth data over IPv6', { ...baseV2, addresses: ['fd00::1'], authData: Buffer.from('pw') }, V6],
    ['IPv6 VIP on IPv4', { ...baseV3, addresses: ['fd00::1'] }, V4],
    ['garbage VIP', { ...baseV3, addresses: ['not-an-ip'] }, V4],
    ['version 4', { ...baseV3, version: 4 as VrrpVersion }, V4],
  ];
  for (const [name, advert, ctx] of bad) {
    const err = t.throws(() => encodeAdvert(advert, ctx), undefined, name);
    t.true(isKeepaliveError(err, 'E_CONFIG_INVALID'), name);
  }
  t.throws(() => encodeAdvert(baseV3, { ...V4, src: 'fe80::1' }));
  t.throws(() => encodeAdvert(baseV3, { ...V4, family: 5 as IpFamily }));
  // The limits themselves are fine.
  const max = { ...baseV3, vrid: 255, priority: 255, advertIntCs: 4095, addresses: Array.from({ length: 255 }, (_, i) => `10.0.0.${i}`) };
  t.deepEqual(decodeAdvert(encodeAdvert(max, V4), V4), { ok: true, advert: max });
  t.true(decodeAdvert(encodeAdvert({ ...baseV3, priority: 0, addresses: [] }, V4), V4).ok);
});

// ---------------------------------------------------------------------------------------------
// Drop reasons: each one is produced by a concrete case here.
// ---------------------------------------------------------------------------------------------

const expectV2: AdvertExpectation = {
  version: 2,
  vrid: 7,
  advertIntCs: 100,
  addresses: ['192.0.2.101', '192.0.2.100'],
  authType: 1,
  password: 'pw',
  ownAddresses: ['192.0.2.2'],
};
const expectV3: AdvertExpectation = { version: 3, vrid: 7, advertIntCs: 300, addresses: ['192.0.2.100'] };

function mutated(buf: Buffer, f: (b: Buffer) => void): Buffer {
  const copy = Buffer.from(buf);
  f(copy);
  return copy;
}

const v2Wire = encodeAdvert(baseV2, V4);
const v2Packet = ipv4Packet(v2Wire, V4);

const dropCases: Array<[DropReason, () => DropReason | null]> = [
  ['too_short', () => reasonOf(parseIpv4Packet(v2Packet.subarray(0, 19)))],
  ['too_short', () => reasonOf(parseIpv4Packet(v2Packet.subarray(0, v2Packet.length - 1)))],
  ['too_short', () => reasonOf(decodeAdvert(v2Wire.subarray(0, 7), V4))],
  ['bad_ip_header', () => reasonOf(parseIpv4Packet(mutated(v2Packet, (b) => (b[0] = 0x65))))],
  ['bad_ip_header', () => reasonOf(parseIpv4Packet(mutated(v2Packet, (b) => (b[0] = 0x44))))],
  ['bad_ip_header', () => reasonOf(parseIpv4Packet(mutated(v2Packet, (b) => (b[8] = 1))))], // header checksum
  ['bad_ip_header', () => reasonOf(decodeAdvert(v2Wire, { ...V4, src: 'fe80::1' }))],
  ['not_vrrp_protocol', () => reasonOf(parseIpv4Packet(ipv4Packet(v2Wire, { ...V4, protocol: 51 })))],
  ['bad_version', () => reasonOf(decodeAdvert(mutated(v2Wire, (b) => (b[0] = 0x41)), V4))],
  ['bad_type', () => reasonOf(decodeAdvert(mutated(v2Wire, (b) => (b[0] = 0x22)), V4))],
  ['bad_length', () => reasonOf(decodeAdvert(mutated(v2Wire, (b) => (b[3] = 3)), V4))],
  ['bad_length', () => reasonOf(decodeAdvert(Buffer.concat([v2Wire, Buffer.alloc(4)]), V4))],
  ['bad_length', () => reasonOf(parseIpv4Packet(Buffer.concat([v2Packet, Buffer.alloc(2)])))],
  ['bad_checksum', () => reasonOf(decodeAdvert(mutated(v2Wire, (b) => (b[2] = 99)), V4))],
  ['bad_ttl', () => reasonOf(decodeV4Packet(ipv4Packet(v2Wire, { ...V4, ttl: 254 })))],
  ['bad_ttl', () => reasonOf(decodeAdvert(encodeAdvert({ ...baseV3, addresses: ['fd00::1'] }, V6), { ...V6, ttl: 1 }))],
  ['wrong_vrid', () => checkAdvert(baseV2, { ...expectV2, vrid: 8 }, '192.0.2.1')],
  ['version_mismatch', () => checkAdvert(baseV3, { ...expectV2, version: 2 }, '192.0.2.1')],
  ['auth_type_mismatch', () => checkAdvert({ ...baseV2, authType: 0 }, expectV2, '192.0.2.1')],
  ['auth_type_mismatch', () => checkAdvert({ ...baseV2, authType: 2 }, expectV2, '192.0.2.1')],
  ['auth_failure', () => checkAdvert({ ...baseV2, authData: passwordAuthData('pW') }, expectV2, '192.0.2.1')],
  ['address_count_mismatch', () => checkAdvert({ ...baseV2, addresses: ['192.0.2.100'] }, expectV2, '192.0.2.1')],
  ['address_list_mismatch', () => checkAdvert({ ...baseV2, addresses: ['192.0.2.100', '192.0.2.9'] }, expectV2, '192.0.2.1')],
  ['interval_mismatch', () => checkAdvert({ ...baseV2, advertIntCs: 200 }, expectV2, '192.0.2.1')],
  ['own_address', () => checkAdvert(baseV2, expectV2, '192.0.2.2')],
  ['unknown_unicast_source', () => checkAdvert(baseV2, { ...expectV2, unicastPeers: [{ address: '192.0.2.9', minTtl: 0, maxTtl: 255 }] }, '192.0.2.1', 63)],
  ['ttl_out_of_range', () => checkAdvert(baseV2, { ...expectV2, unicastPeers: [{ address: '192.0.2.1', minTtl: 250, maxTtl: 255 }] }, '192.0.2.1', 63)],
  ['zero_interval', () => checkAdvert({ ...baseV3, advertIntCs: 0 }, expectV3, '192.0.2.1')],
];

function reasonOf(r: { ok: true } | { ok: false; reason: DropReason }): DropReason | null {
  return r.ok ? null : r.reason;
}

test('every drop reason is produced by at least one case', (t) => {
  for (const [want, produce] of dropCases) t.is(produce(), want);
  t.deepEqual([...new Set(dropCases.map(([r]) => r))].sort(), [...DROP_REASONS].sort());
  t.true(DROP_REASONS.every(isDropReason));
  t.false(isDropReason('bogus'));
});

test('checkAdvert accepts what the instance expects, in keepalived 2.2 manner', (t) => {
  t.is(checkAdvert(baseV2, expectV2, '192.0.2.1'), null); // address order does not matter
  // v3: the interval may differ (the backup learns it); v2 auth fields are not looked at.
  t.is(checkAdvert(baseV3, expectV3, '192.0.2.1'), null);
  t.is(checkAdvert({ ...baseV3, authType: 9 }, expectV3, '192.0.2.1'), null);
  // v2 without authentication.
  const noAuth = { ...baseV2, authType: 0, authData: Buffer.alloc(8) };
  t.is(checkAdvert(noAuth, { ...expectV2, authType: undefined, password: undefined }, '192.0.2.1'), null);
  // PASS compares 8 NUL-padded bytes: longer passwords are cut to 8, as keepalived does.
  const long = { ...baseV2, authData: passwordAuthData('12345678') };
  t.is(checkAdvert(long, { ...expectV2, password: '123456789' }, '192.0.2.1'), null);
  t.is(checkAdvert(long, { ...expectV2, password: '1234567' }, '192.0.2.1'), 'auth_failure');
  t.is(checkAdvert({ ...baseV2, authData: undefined }, expectV2, '192.0.2.1'), 'auth_failure');
  // The address check is skippable, and it ignores spelling differences.
  const other = { ...baseV2, addresses: ['198.51.100.1'] };
  t.is(checkAdvert(other, { ...expectV2, skipCheckAdvAddr: true }, '192.0.2.1'), null);
  const v6 = { ...baseV3, addresses: ['fd00::50'] };
  t.is(checkAdvert(v6, { ...expectV3, addresses: ['FD00:0::0050'], ownAddresses: ['fe80::2'] }, 'fe80::1'), null);
  t.is(checkAdvert(v6, { ...expectV3, addresses: ['fd00::50'], ownAddresses: ['FE80::1'] }, 'fe80::1'), 'own_address');
  // A changed address list is dropped whatever the priority (keepalived ignores RFC 3768's owner exception).
  t.is(checkAdvert({ ...other, priority: 255 }, expectV2, '192.0.2.1'), 'address_count_mismatch');
  // Unicast peers: any spelling of a configured peer, with a TTL inside its bounds, is accepted.
  const peers = { ...expectV3, unicastPeers: [{ address: '192.0.2.1', minTtl: 60, maxTtl: 255 }] };
  t.is(checkAdvert(baseV3, peers, '192.0.2.1', 63), null);
  t.is(checkAdvert(baseV3, peers, '192.0.2.1', 59), 'ttl_out_of_range');
  t.is(checkAdvert(baseV3, { ...expectV3, unicastPeers: [{ address: 'FD00::0001', minTtl: 0, maxTtl: 255 }] }, 'fd00::1', 255), null);
});

// ---------------------------------------------------------------------------------------------
// Fuzz: decoding never throws, and corruption is always noticed.
// ---------------------------------------------------------------------------------------------

const anyCtx = fc.record({
  family: fc.constantFrom<IpFamily>(4, 6),
  ttl: fc.integer({ min: 0, max: 255 }),
  v3ChecksumAsV2: fc.boolean(),
});

test('random bytes never throw and yield an advert or a known drop reason', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), anyCtx, (bytes, c) => {
      const buf = Buffer.from(bytes);
      const ctx = { ...c, src: c.family === 4 ? V4.src : V6.src, dst: c.family === 4 ? V4.dst : V6.dst };
      for (const r of [parseIpv4Packet(buf), decodeAdvert(buf, ctx)]) {
        if (!r.ok && !isDropReason(r.reason)) throw new Error(`unknown reason ${String(r.reason)}`);
      }
    }),
    { numRuns: 2000 },
  );
  // Random bytes shaped like a plausible header, so the deeper checks run too.
  fc.assert(
    fc.property(
      fc.constantFrom(0x21, 0x31),
      fc.integer({ min: 0, max: 3 }),
      fc.uint8Array({ maxLength: 80 }),
      anyCtx,
      (vt, count, rest, c) => {
        const buf = Buffer.concat([Buffer.from([vt, 1, 100, count]), Buffer.from(rest)]);
        const ctx = { ...c, src: c.family === 4 ? V4.src : V6.src, dst: c.family === 4 ? V4.dst : V6.dst };
        const r = decodeAdvert(buf, ctx);
        // The rare random packet that passes every check must decode field for field.
        if (r.ok) t.deepEqual(r.advert, refDecode(buf, c.family));
        else t.true(isDropReason(r.reason));
      },
    ),
    { numRuns: 2000 },
  );
  t.pass();
});

test('every truncation of a valid packet is dropped as too short or of bad length', (t) => {
  fc.assert(
    fc.property(caseArb({ maxAddrs: 4 }), ({ advert, ctx }) => {
      const wire = encodeAdvert(advert, ctx);
      for (let len = 0; len < wire.length; len++) {
        t.is(reasonOf(decodeAdvert(wire.subarray(0, len), ctx)), len < 8 ? 'too_short' : 'bad_length');
      }
      if (ctx.family === 4) {
        const packet = ipv4Packet(wire, ctx);
        for (let len = 0; len < packet.length; len++) {
          t.is(reasonOf(parseIpv4Packet(packet.subarray(0, len))), 'too_short');
        }
      }
    }),
    { numRuns: 200 },
  );
});

/*
 * Single-bit flips. Which bits are "don't care", i.e. could leave the decoded advert unchanged?
 *  - In a full IPv4 packet: none. The IP header checksum covers every header bit (TOS and the
 *    ID included) and the VRRP checksum covers every payload bit, the v3 reserved bits and the v2
 *    authentication data included. A one's complement sum changes by ±2^k ≠ 0 (mod 0xffff) on
 *    any single flip, so one flip is always detected.
 *  - At the decodeAdvert level, the IP source and destination of v2 over IPv4 are don't-care: its
 *    checksum has no pseudo-header (the IP header checksum protects them instead). For v3 over
 *    IPv4 and for IPv6 they are covered, so a flip there is a bad checksum.
 *  - With v3ChecksumAsV2 both checksum forms are accepted; a flip can then turn a packet valid
 *    under the other form when the pseudo-header sum happens to be ±2^k, so flips are tested
 *    without the option (the leniency is the documented price of interoperating with both).
 */
const STRUCTURAL: ReadonlySet<DropReason> = new Set(['bad_checksum', 'bad_version', 'bad_type', 'bad_length']);

function flipBit(buf: Buffer, bit: number): Buffer {
  return mutated(buf, (b) => (b[bit >> 3]! ^= 0x80 >> (bit & 7)));
}

test('a single flipped bit in a full IPv4 packet is always dropped', (t) => {
  fc.assert(
    fc.property(caseArb({ asV2: fc.constant(false), maxAddrs: 3 }).filter((c) => c.ctx.family === 4), ({ advert, ctx }) => {
      const wire = encodeAdvert(advert, ctx);
      const packet = ipv4Packet(wire, ctx);
      t.true(decodeV4Packet(packet).ok);
      for (let bit = 0; bit < packet.length * 8; bit++) {
        const r = decodeV4Packet(flipBit(packet, bit));
        if (r.ok) throw new Error(`flip of bit ${bit} went unnoticed`);
        // Past the IP header only the VRRP checks can notice it.
        if (bit >= 160 && !STRUCTURAL.has(r.reason)) throw new Error(`bit ${bit}: ${r.reason}`);
      }
    }),
    { numRuns: 100 },
  );
  t.pass();
});

test('a single flipped bit in a VRRP payload or in a covered IP address is a checksum or structural drop', (t) => {
  fc.assert(
    fc.property(caseArb({ asV2: fc.constant(false), maxAddrs: 3 }), ({ advert, ctx }) => {
      const wire = encodeAdvert(advert, ctx);
      const want = decodeAdvert(wire, ctx);
      if (!want.ok) throw new Error(want.reason);
      for (let bit = 0; bit < wire.length * 8; bit++) {
        const r = decodeAdvert(flipBit(wire, bit), ctx);
        if (r.ok || !STRUCTURAL.has(r.reason)) throw new Error(`bit ${bit}: ${JSON.stringify(r)}`);
      }
      const covered = ctx.family === 6 || advert.version === 3;
      for (const which of ['src', 'dst'] as const) {
        const addr = parseIp(ctx[which], ctx.family)!;
        for (let bit = 0; bit < addr.length * 8; bit++) {
          const r = decodeAdvert(wire, { ...ctx, [which]: formatIp(flipBit(addr, bit)) });
          if (covered) t.deepEqual(r, { ok: false, reason: 'bad_checksum' });
          else t.deepEqual(r, want); // don't-care for v2 over IPv4
        }
      }
    }),
    { numRuns: 100 },
  );
});
