import test from 'ava';
import fc from 'fast-check';
import { formatIp as formatAddress } from '../../src/util/inet.js';
import { ReplayGuard, SyncAuth } from '../../src/sync/auth.js';
import {
  DEFAULT_MAX_PAYLOAD,
  MIN_MAX_PAYLOAD,
  MessageBuilder,
  TRAILER_LEN,
  decode,
  encode,
  encodeControl,
} from '../../src/sync/codec.js';
import { SYNC_DROP_REASONS, type SyncDropReason } from '../../src/sync/drop.js';
import { acceptDatagram } from '../../src/sync/receiver.js';
import {
  FWD_METHODS,
  type NormalizedEntry,
  type SyncEntry,
  TCP_STATES,
  normalizeEntry,
} from '../../src/sync/types.js';

// ---------------------------------------------------------------------------------------
// Naive reference implementation of the documented format (docs/sync-protocol.md), written
// from the spec byte by byte, sharing no code with src/sync/codec.ts.
// ---------------------------------------------------------------------------------------

function refAddrBytes(address: string, family: 4 | 6): number[] {
  if (family === 4) return address.split('.').map((x) => parseInt(x, 10));
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out: number[] = [];
  for (const g of groups) {
    const v = parseInt(g, 16);
    out.push(v >> 8, v & 0xff);
  }
  return out;
}

const be16 = (v: number) => [(v >> 8) & 0xff, v & 0xff];
const be32 = (v: number) => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];

interface RefOpts {
  /** Insert an IPVS seq-data option (type 1, 24 bytes) after the addresses. */
  seqOption?: boolean;
  /** Insert a 1-byte optional param (type 7|x) so the entry needs padding. */
  oddOption?: boolean;
}

function refEntry(e: SyncEntry, o: RefOpts = {}): number[] {
  const f = e.family;
  let proto: number;
  let flags = FWD_METHODS.indexOf(e.fwd ?? 'masq');
  let state = 0;
  if (e.kind === 'conn') {
    proto = e.protocol === 'tcp' ? 6 : 17;
    if (e.protocol === 'tcp') {
      state = (TCP_STATES as readonly string[]).indexOf(e.state);
      if (e.state !== 'ESTABLISHED') flags |= 0x100;
    }
  } else if (e.kind === 'template') {
    proto = e.protocol === 'tcp' ? 6 : e.protocol === 'udp' ? 17 : 0;
    flags |= 0x1000;
  } else {
    proto = 17;
    flags |= 0x0100_0000;
  }
  if (e.ended) flags |= 0x0200_0000;
  const opts: number[] = [];
  if (o.seqOption) opts.push(1, 24, ...Array(24).fill(0xab));
  if (o.oddOption) opts.push(0x47, 1, 0x5a);
  const base = f === 4 ? 36 : 72;
  const size = base + opts.length;
  return [
    f === 6 ? 1 : 0,
    proto,
    ...be16(size),
    ...be32(flags),
    ...be16(state),
    ...be16(e.client.port),
    ...be16(e.virtual.port),
    ...be16(e.real.port),
    ...be32(e.fwmark ?? 0),
    ...be32(e.timeoutSec),
    ...refAddrBytes(e.client.address, f),
    ...refAddrBytes(e.virtual.address, f),
    ...refAddrBytes(e.real.address, f),
    ...opts,
  ];
}

/**
 * Reference: one message holding all `entries`, 4-byte aligned, with a zero trailer. Version 1 by
 * default (the IPVS layout); version 2 puts the timing block first: transit_us, then one age_us
 * per entry (`ages`, default all unknown = 0xffffffff, as the builder leaves them until stamped).
 */
function refMessage(entries: SyncEntry[], syncId: number, kind = 0, o: RefOpts & { version?: 1 | 2; transit?: number; ages?: number[] } = {}): Buffer {
  const body: number[] = [];
  if (o.version === 2) {
    body.push(...be32(o.transit ?? 0xffffffff));
    entries.forEach((_, i) => body.push(...be32(o.ages?.[i] ?? 0xffffffff)));
  }
  entries.forEach((e, i) => {
    const bytes = refEntry(e, o);
    body.push(...bytes);
    if (i < entries.length - 1) while (body.length % 4 !== 0) body.push(0);
  });
  const size = 8 + body.length;
  return Buffer.from([0, syncId, ...be16(size), entries.length, o.version ?? 1, ...be16(kind), ...body, ...Array(TRAILER_LEN).fill(0)]);
}

/** Reference decoder of entries (no validation beyond what is needed to walk). */
function refDecodeEntries(buf: Buffer): NormalizedEntry[] {
  const n = buf[4]!;
  const out: NormalizedEntry[] = [];
  let p = buf[5] === 2 ? 8 + 4 + 4 * n : 8;
  for (let i = 0; i < n; i++) {
    const fam = buf[p] === 1 ? 6 : 4;
    const alen = fam === 6 ? 16 : 4;
    const size = buf.readUInt16BE(p + 2) & 0xfff;
    const flags = buf.readUInt32BE(p + 4);
    const state = buf.readUInt16BE(p + 8);
    const proto = buf[p + 1]!;
    const addr = (o: number) => formatAddress(Uint8Array.from(buf.subarray(o, o + alen)));
    const common = {
      family: fam as 4 | 6,
      client: { address: addr(p + 24), port: buf.readUInt16BE(p + 10) },
      virtual: { address: addr(p + 24 + alen), port: buf.readUInt16BE(p + 12) },
      real: { address: addr(p + 24 + 2 * alen), port: buf.readUInt16BE(p + 14) },
      timeoutSec: buf.readUInt32BE(p + 20),
      fwmark: buf.readUInt32BE(p + 16),
      fwd: FWD_METHODS[flags & 7]!,
      ended: (flags & 0x0200_0000) !== 0,
    };
    if (flags & 0x1000) out.push({ kind: 'template', protocol: proto === 6 ? 'tcp' : proto === 17 ? 'udp' : 'any', ...common });
    else if (flags & 0x0100_0000) out.push({ kind: 'udp-flow', ...common });
    else if (proto === 6) out.push({ kind: 'conn', protocol: 'tcp', state: TCP_STATES[state]!, ...common });
    else out.push({ kind: 'conn', protocol: 'udp', state: 'UDP', ...common });
    p += (size + 3) & ~3;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------

const addrArb = (family: 4 | 6) =>
  fc.uint8Array({ minLength: family === 4 ? 4 : 16, maxLength: family === 4 ? 4 : 16 }).map((b) => formatAddress(b));
const port = fc.integer({ min: 0, max: 65535 });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const endpoint = (family: 4 | 6) => fc.record({ address: addrArb(family), port });

const entryArb: fc.Arbitrary<SyncEntry> = fc.constantFrom<4 | 6>(4, 6).chain((family) => {
  const common = {
    family: fc.constant(family),
    client: endpoint(family),
    virtual: endpoint(family),
    real: endpoint(family),
    timeoutSec: u32,
    fwmark: u32,
    fwd: fc.constantFrom(...FWD_METHODS),
    ended: fc.boolean(),
  };
  return fc.oneof(
    fc.record({ kind: fc.constant('conn' as const), protocol: fc.constant('tcp' as const), state: fc.constantFrom(...TCP_STATES), ...common }),
    fc.record({ kind: fc.constant('conn' as const), protocol: fc.constant('udp' as const), state: fc.constant('UDP' as const), ...common }),
    fc.record({ kind: fc.constant('template' as const), protocol: fc.constantFrom('tcp' as const, 'udp' as const, 'any' as const), ...common }),
    fc.record({ kind: fc.constant('udp-flow' as const), ...common }),
  );
});

const KEY = Buffer.from('correct horse battery staple');
/** A receiving director (boot 0x9999) expecting sync id 7, with fresh replay state. */
/** A receiving director; the signers' boots are already proven live (the snapshot-ack handshake). */
const ctx = (...signers: SyncAuth[]) => {
  const replay = new ReplayGuard();
  for (const s of signers) replay.accept('192.0.2.9', s.bootId, 0n, { proof: true });
  return { syncId: 7, auth: new SyncAuth(KEY, { bootId: 0x9999n }), replay, requests: new Set<bigint>() };
};

function entriesOf(bufs: Buffer[], syncId: number): NormalizedEntry[] {
  const out: NormalizedEntry[] = [];
  for (const b of bufs) {
    const r = decode(b, syncId);
    if (!r.ok) throw new Error(`decode failed: ${r.reason} ${r.detail}`);
    out.push(...r.entries);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Round trips and reference comparison
// ---------------------------------------------------------------------------------------

test('encode is byte-identical to the reference, and both decoders agree (random v4/v6 mixes, versions 1 and 2)', (t) => {
  fc.assert(
    fc.property(fc.array(entryArb, { maxLength: 300 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: MIN_MAX_PAYLOAD, max: 9000 }), fc.constantFrom<1 | 2>(1, 2), (entries, syncId, maxPayload, version) => {
      const bufs = encode(entries, syncId, { maxPayload, version });
      // Re-split the entries the way the encoder did and compare each message to the reference.
      let i = 0;
      for (const b of bufs) {
        if (b.length > maxPayload) return false;
        const n = b[4]!;
        if (n === 0 || n > 255) return false;
        const ref = refMessage(entries.slice(i, i + n), syncId, 0, { version });
        if (!ref.equals(b)) return false;
        i += n;
      }
      if (i !== entries.length) return false;
      const expected = entries.map(normalizeEntry);
      t.deepEqual(entriesOf(bufs, syncId), expected);
      t.deepEqual(bufs.flatMap(refDecodeEntries), expected);
      return true;
    }),
    { numRuns: 200 },
  );
});

test('the decoder accepts reference messages with IPVS options and padding', (t) => {
  fc.assert(
    fc.property(fc.array(entryArb, { minLength: 1, maxLength: 10 }), fc.boolean(), fc.boolean(), fc.constantFrom<1 | 2>(1, 2), (entries, seqOption, oddOption, version) => {
      const buf = refMessage(entries, 3, 0, { seqOption, oddOption, version });
      const r = decode(buf, 3);
      t.true(r.ok, r.ok ? '' : r.detail);
      if (r.ok) t.deepEqual(r.entries, entries.map(normalizeEntry));
    }),
    { numRuns: 200 },
  );
});

test('batches split at the MTU: version 2 v4 35 per message, v6 18 (version 1: 39, 19), nr_conns capped at 255', (t) => {
  const v4: SyncEntry = {
    kind: 'conn',
    family: 4,
    protocol: 'tcp',
    state: 'ESTABLISHED',
    client: { address: '198.51.100.7', port: 40000 },
    virtual: { address: '192.0.2.1', port: 443 },
    real: { address: '10.0.0.2', port: 8443 },
    timeoutSec: 900,
  };
  const v6: SyncEntry = { ...v4, family: 6, client: { address: '2001:db8::7', port: 1 }, virtual: { address: '2001:db8::1', port: 443 }, real: { address: 'fd00::2', port: 443 } };
  const a = encode(Array(100).fill(v4), 1);
  t.deepEqual(a.map((b) => b[4]), [35, 35, 30]);
  t.true(a.every((b) => b.length <= DEFAULT_MAX_PAYLOAD));
  t.is(a[0]!.length, 8 + 4 + 35 * (4 + 36) + TRAILER_LEN);
  const b = encode(Array(40).fill(v6), 1);
  t.deepEqual(b.map((m) => m[4]), [18, 18, 4]);
  const a1 = encode(Array(100).fill(v4), 1, { version: 1 });
  t.deepEqual(a1.map((m) => m[4]), [39, 39, 22]);
  t.is(a1[0]!.length, 8 + 39 * 36 + TRAILER_LEN);
  t.deepEqual(encode(Array(40).fill(v6), 1, { version: 1 }).map((m) => m[4]), [19, 19, 2]);
  const big = encode(Array(600).fill(v4), 1, { maxPayload: 65507 });
  t.deepEqual(big.map((m) => m[4]), [255, 255, 90]);
  t.deepEqual(encode([], 1), []);
  // The smallest payload still fits one IPv6 entry with its timing.
  t.deepEqual(encode([v6, v6], 1, { maxPayload: MIN_MAX_PAYLOAD }).map((m) => m[4]), [1, 1]);
});

test('encode rejects invalid entries with RangeError', (t) => {
  const good: SyncEntry = {
    kind: 'conn',
    family: 4,
    protocol: 'udp',
    state: 'UDP',
    client: { address: '198.51.100.7', port: 5000 },
    virtual: { address: '192.0.2.1', port: 53 },
    real: { address: '10.0.0.2', port: 53 },
    timeoutSec: 300,
  };
  t.notThrows(() => encode([good], 1));
  const bad: unknown[] = [
    { ...good, family: 5 },
    { ...good, client: { address: '2001:db8::1', port: 1 } },
    { ...good, real: { address: 'not-an-ip', port: 1 } },
    { ...good, virtual: { address: '192.0.2.1', port: 70000 } },
    { ...good, timeoutSec: -1 },
    { ...good, timeoutSec: 1.5 },
    { ...good, fwmark: 2 ** 32 },
    { ...good, state: 'ESTABLISHED' },
    { ...good, protocol: 'tcp', state: 'UDP' },
    { ...good, protocol: 'sctp' },
    { ...good, kind: 'template', protocol: 'icmp' },
    { ...good, kind: 'bogus' },
    { ...good, fwd: 'teleport' },
  ];
  for (const e of bad) t.throws(() => encode([e as SyncEntry], 1), { instanceOf: RangeError }, JSON.stringify(e));
  t.throws(() => encode([good], 256), { instanceOf: RangeError });
  t.throws(() => encode([good], 1, { maxPayload: MIN_MAX_PAYLOAD - 1 }), { instanceOf: RangeError });
  // A failed add leaves the builder usable and unchanged.
  const b = new MessageBuilder(1);
  b.add(good);
  t.throws(() => b.add({ ...good, family: 6 } as SyncEntry));
  t.is(b.count, 1);
  t.deepEqual(entriesOf([b.finish()], 1), [normalizeEntry(good)]);
});

// ---------------------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------------------

test('decode never throws on arbitrary bytes and always gives a known reason', (t) => {
  const reasons = new Set<string>(SYNC_DROP_REASONS);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), fc.integer({ min: 0, max: 255 }), (bytes, syncId) => {
      const r = decode(bytes, syncId);
      return r.ok || reasons.has(r.reason);
    }),
    { numRuns: 2000 },
  );
  // Random bytes behind a valid-looking header reach the entry parser.
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 1400 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 6 }), fc.constantFrom(1, 2), (body, n, kind, version) => {
      const size = 8 + body.length;
      const buf = Buffer.concat([Buffer.from([0, 9, size >> 8, size & 0xff, n, version, 0, kind]), body, Buffer.alloc(TRAILER_LEN)]);
      const r = decode(buf, 9);
      return r.ok || reasons.has(r.reason);
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('decode never throws on mutated valid messages', (t) => {
  fc.assert(
    fc.property(
      fc.array(entryArb, { minLength: 1, maxLength: 20 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      (entries, edits) => {
        const [buf] = encode(entries, 1, { maxPayload: 9000 });
        const m = Buffer.from(buf!);
        for (const [pos, v] of edits) m[pos % m.length] = v;
        const r = decode(m, 1);
        return r.ok ? Array.isArray(r.entries) : typeof r.detail === 'string';
      },
    ),
    { numRuns: 1000 },
  );
  t.pass();
});

const sample: SyncEntry[] = [
  {
    kind: 'conn',
    family: 4,
    protocol: 'tcp',
    state: 'FIN_WAIT',
    client: { address: '198.51.100.7', port: 40000 },
    virtual: { address: '192.0.2.1', port: 80 },
    real: { address: '10.0.0.2', port: 8080 },
    timeoutSec: 120,
  },
  {
    kind: 'udp-flow',
    family: 6,
    client: { address: '2001:db8::7', port: 5353 },
    virtual: { address: '2001:db8::1', port: 53 },
    real: { address: 'fd00::2', port: 53 },
    timeoutSec: 300,
  },
];

test('every truncation and every extension of a sealed message is rejected', (t) => {
  const signer = new SyncAuth(KEY, { bootId: 0x1234n });
  const sealed = signer.seal(encode(sample, 7)[0]!);
  for (let len = 0; len < sealed.length; len++) {
    const c = ctx(signer);
    const r = acceptDatagram(sealed.subarray(0, len), '192.0.2.9', c);
    t.false(r.ok, `prefix ${len}`);
    t.is(decode(sealed.subarray(0, len), 7).ok, false);
  }
  for (const extra of [1, 3, 4, 48]) {
    const r = acceptDatagram(Buffer.concat([sealed, Buffer.alloc(extra)]), '192.0.2.9', ctx(signer));
    t.false(r.ok);
    if (!r.ok) t.is(r.reason, 'malformed');
  }
  const ok = acceptDatagram(sealed, '192.0.2.9', ctx(signer));
  t.true(ok.ok);
});

test('every single bit flip of a sealed message is detected', (t) => {
  const signer = new SyncAuth(KEY, { bootId: 0x1234n });
  for (const buf of [
    signer.seal(encode(sample, 7)[0]!),
    signer.seal(encodeControl('snapshot-request', 7)),
    signer.seal(encodeControl('snapshot-end', 7, { messages: 3, entries: 100 })),
  ]) {
    const seen = new Set<SyncDropReason>();
    for (let bit = 0; bit < buf.length * 8; bit++) {
      const m = Buffer.from(buf);
      m[bit >> 3] ^= 0x80 >> (bit & 7);
      const r = acceptDatagram(m, '192.0.2.9', ctx(signer));
      if (r.ok) {
        t.fail(`bit ${bit} flip accepted`);
        return;
      }
      seen.add(r.reason);
    }
    t.true(seen.has('bad_hmac'));
    t.true(acceptDatagram(buf, '192.0.2.9', ctx(signer)).ok);
  }
});

test('each reject reason is produced', (t) => {
  const signer = new SyncAuth(KEY, { bootId: 0x1234n });
  // Version 1 (an older peer's layout, still accepted): entries start right after the header.
  const good = () => encode(sample, 7, { version: 1 })[0]!;
  const reasonOf = (buf: Buffer, c = ctx(signer), from = '192.0.2.9') => {
    const r = acceptDatagram(buf, from, c);
    return r.ok ? 'ok' : r.reason;
  };
  t.is(reasonOf(Buffer.alloc(5)), 'too_short');
  t.is(reasonOf(signer.seal(good()).subarray(0, 60)), 'too_short');
  const v0 = signer.seal(good());
  v0[5] = 0;
  t.is(reasonOf(v0), 'bad_version');
  const v3 = good();
  v3[5] = 3;
  t.is(reasonOf(signer.seal(v3)), 'bad_version', 'an unknown (newer) version');
  const rsv = good();
  rsv[0] = 3;
  t.is(reasonOf(signer.seal(rsv)), 'bad_version');
  t.is(reasonOf(signer.seal(encode(sample, 8)[0]!)), 'foreign_sync_id');
  const kind = good();
  kind[7] = 9;
  t.is(reasonOf(signer.seal(kind)), 'malformed');
  const size = good();
  size.writeUInt16BE(4, 2);
  t.is(reasonOf(signer.seal(size)), 'malformed');
  // Authentic but structurally wrong bodies (a buggy peer): malformed.
  const mutate = (f: (b: Buffer) => void) => {
    const b = good();
    f(b);
    return reasonOf(signer.seal(b));
  };
  t.is(mutate((b) => (b[8] = 2)), 'malformed'); // entry type
  t.is(mutate((b) => (b[9] = 1)), 'malformed'); // protocol ICMP
  t.is(mutate((b) => b.writeUInt16BE(0x1000 | 36, 10)), 'malformed'); // entry version 1
  t.is(mutate((b) => b.writeUInt16BE(32, 10)), 'malformed'); // entry size < 36
  t.is(mutate((b) => b.writeUInt16BE(20, 16)), 'malformed'); // TCP state 20
  t.is(mutate((b) => (b[4] = 3)), 'malformed'); // nr_conns larger than the body
  t.is(mutate((b) => (b[4] = 1)), 'malformed'); // trailing bytes
  t.is(mutate((b) => b.writeUInt32BE(0x0100_1000, 12)), 'malformed'); // template + flow
  t.is(mutate((b) => b.writeUInt32BE(0x0000_0005, 12)), 'malformed'); // fwd method 5
  // Padding between entries must be zero (an odd-sized entry with an option needs 1 byte).
  const padded = refMessage([sample[0]!, sample[0]!], 7, 0, { oddOption: true });
  t.is(reasonOf(signer.seal(Buffer.from(padded))), 'ok');
  padded[8 + 39] = 0xee;
  t.is(reasonOf(signer.seal(padded)), 'malformed');
  // Options must be well-formed TLVs inside the entry.
  const badOpt = refMessage([sample[0]!], 7, 0, { oddOption: true });
  badOpt[8 + 37] = 0; // zero option length
  t.is(reasonOf(signer.seal(badOpt)), 'malformed');
  // Version 2: the timing block must fit (4 + 4 per entry) before the entries.
  const timed = () => encode(sample, 7)[0]!;
  t.is(reasonOf(signer.seal(timed())), 'ok');
  const mutate2 = (f: (b: Buffer) => void) => {
    const b = timed();
    f(b);
    return reasonOf(signer.seal(b));
  };
  t.is(mutate2((b) => (b[4] = 200)), 'malformed'); // ages of 200 entries past the end
  t.is(mutate2((b) => (b[4] = 3)), 'malformed'); // entries misaligned behind a longer timing block
  t.is(mutate2((b) => (b[8 + 4 + 8 + 1] = 1)), 'malformed'); // first entry's protocol ICMP
  t.is(mutate2((b) => b.writeUInt32BE(12345, 8)), 'ok'); // any transit value is valid
  // bad_hmac: another key, or a tampered body.
  t.is(reasonOf(new SyncAuth(Buffer.from('another key'), { bootId: 5n }).seal(good())), 'bad_hmac');
  const tampered = signer.seal(good());
  tampered[40] ^= 1;
  t.is(reasonOf(tampered), 'bad_hmac');
  // own_message: the receiver's own boot id.
  const own = ctx(signer);
  t.is(reasonOf(own.auth.seal(good()), own), 'own_message');
  // replayed: the same datagram twice.
  const c = ctx(signer);
  const once = signer.seal(good());
  t.is(reasonOf(once, c), 'ok');
  t.is(reasonOf(once, c), 'replayed');
  // The checks come in the documented order: a forged message with a foreign sync id is foreign.
  t.is(reasonOf(new SyncAuth(Buffer.from('x'), { bootId: 5n }).seal(encode(sample, 8)[0]!)), 'foreign_sync_id');
});

test('control messages round-trip', (t) => {
  const signer = new SyncAuth(KEY, { bootId: 0xabcdefn });
  const req = acceptDatagram(signer.seal(encodeControl('snapshot-request', 7)), '192.0.2.9', ctx(signer));
  t.true(req.ok);
  if (req.ok) {
    t.is(req.kind, 'snapshot-request');
    t.is(req.bootId, 0xabcdefn);
    t.is(req.seq, 1n);
  }
  const end = acceptDatagram(signer.seal(encodeControl('snapshot-end', 7, { messages: 2564, entries: 100000 })), '192.0.2.9', ctx(signer));
  t.true(end.ok);
  if (end.ok) {
    t.is(end.kind, 'snapshot-end');
    t.deepEqual(end.totals, { messages: 2564, entries: 100000 });
    t.is(end.seq, 2n);
  }
  const snap = encode(sample, 7, { kind: 'snapshot' })[0]!;
  const r = decode(snap, 7);
  t.true(r.ok && r.kind === 'snapshot');
  const ack = decode(signer.seal(encodeControl('snapshot-ack', 7, undefined, { bootId: 0x77n, seq: 9n })), 7);
  t.true(ack.ok);
  if (ack.ok) {
    t.is(ack.kind, 'snapshot-ack');
    t.deepEqual(ack.echo, { bootId: 0x77n, seq: 9n });
  }
  const badAck = encodeControl('snapshot-ack', 7, undefined, { bootId: 1n, seq: 1n });
  badAck.writeUInt16BE(20, 2); // body of 12 bytes instead of 16
  t.false(decode(badAck.subarray(0, 20 + 48), 7).ok);
  // unverified: an authentic message of a boot nobody proved.
  const fresh = new SyncAuth(KEY, { bootId: 0x4242n });
  const u = acceptDatagram(fresh.seal(encode(sample, 7)[0]!), '192.0.2.9', ctx());
  t.is(u.ok ? 'ok' : u.reason, 'unverified');
});
