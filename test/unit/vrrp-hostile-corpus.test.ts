/**
 * The hostile-VRRP corpus (test/netns/fixtures/vrrp-sender.ts) and its oracle, checked without a
 * network: the corpus is deterministic, accepts nothing, covers every reason the integration test
 * counts, and the oracle's verdicts equal what the real receive path (VrrpHub demultiplexing into a
 * real VrrpInstance, i.e. decodeAdvert + checkAdvert + the hub's blame rule) counts.
 */
import test from 'ava';
import fc from 'fast-check';
import { VrrpHub, type HubMember } from '../../src/vrrp/hub.js';
import { VrrpInstance, type Clock } from '../../src/vrrp/instance.js';
import type { VrrpPacketIn, VrrpTransport } from '../../src/vrrp/transport.js';
import {
  buildCorpus,
  classify,
  expectedCounts,
  semanticAttacks,
  validAdvert,
  type CorpusOptions,
  type ReceiverModel,
  type WirePacket,
} from '../netns/fixtures/vrrp-sender.js';

const A = '10.77.0.11';
const B = '10.77.0.12';
const X = '10.77.0.13';
const GROUP = '224.0.0.18';
const VIP = '10.77.0.50';

const opts: CorpusOptions = {
  seed: 0x5eed51, src: X, group: GROUP, unicast: [A, B], unicastShare: 0.1,
  vrid: 51, password: 'secret', vip: VIP, advertIntS: 1, priority: 254,
};
const rxModel = (addr: string): ReceiverModel => ({ addr, vrid: 51, password: 'secret', advertIntS: 1, vip: VIP });

const stillClock: Clock = { now: () => 0, setTimeout: () => 0, clearTimeout: () => undefined };

/** The daemon's receive path for one director, fed by hand: hub + fake transport + real instance. */
function receiver(addr: string) {
  let deliver: (pkt: VrrpPacketIn) => void = () => undefined;
  const transport: VrrpTransport = {
    family: 4, ifindex: 2,
    send: () => undefined,
    onPacket: (cb) => { deliver = cb; },
    onError: () => undefined,
    close: () => undefined,
  };
  const hub = new VrrpHub(() => transport, (err) => { throw err; });
  const instance = new VrrpInstance('VI_1',
    { vrid: 51, version: 2, priority: 100, advertIntCs: 100, preempt: true, preemptDelayMs: 0, primaryAddress: addr },
    { version: 2, vrid: 51, advertIntCs: 100, addresses: [VIP], authType: 1, password: 'secret', ownAddresses: [addr] },
    {
      sendAdvert: () => undefined, addVips: async () => undefined, removeVips: async () => undefined,
      announce: () => undefined, stopAnnounce: () => undefined, reannounce: () => undefined, notify: () => undefined,
      onTransition: () => undefined, onError: (err) => { throw err; },
    },
    stillClock,
  );
  const member: HubMember = { instance, vrid: 51, family: 4, ifname: 'eth0', ifindex: 2, src: addr, destinations: [GROUP], v3ChecksumAsV2: false, unicast: false };
  hub.add(member, [GROUP]);
  return {
    feed: (p: WirePacket) => deliver({ family: 4, ifindex: 2, src: p.src ?? X, dst: p.dst, ttl: p.ttl, payload: Buffer.from(p.hex, 'hex') }),
    /** Same keys as expectedCounts. */
    counts: (): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const [r, n] of Object.entries(instance.counters.drops)) out[`instance:${r}`] = n;
      for (const [r, n] of Object.entries(hub.socketDrops()['eth0/v4'] ?? {})) out[`socket:${r}`] = n!;
      if (instance.counters.advertsReceived > 0) out.accept = instance.counters.advertsReceived;
      return out;
    },
  };
}

const reaches = (addr: string) => (p: WirePacket) => p.dst === GROUP || p.dst === addr;

test('corpus is deterministic in its seed', (t) => {
  const one = buildCorpus(opts, 500, [rxModel(A), rxModel(B)]);
  const two = buildCorpus(opts, 500, [rxModel(A), rxModel(B)]);
  const other = buildCorpus({ ...opts, seed: opts.seed + 1 }, 500, [rxModel(A), rxModel(B)]);
  t.deepEqual(one, two);
  t.notDeepEqual(one, other);
});

test('corpus: nothing accepted, every reason covered, oracle equals the real receive path', (t) => {
  const corpus = buildCorpus(opts, 6000, [rxModel(A), rxModel(B)]);
  for (const addr of [A, B]) {
    const want = expectedCounts(corpus, X, rxModel(addr), reaches(addr));
    const rx = receiver(addr);
    for (const p of corpus) if (reaches(addr)(p)) rx.feed(p);
    t.deepEqual(rx.counts(), want, `director ${addr}`);
    t.false('accept' in want, 'the hostile corpus must not contain an acceptable advert');
    for (const key of [
      'socket:too_short', 'socket:bad_version', 'socket:wrong_vrid',
      'instance:too_short', 'instance:bad_version', 'instance:bad_type', 'instance:bad_length', 'instance:bad_checksum', 'instance:bad_ttl',
      'instance:auth_failure', 'instance:auth_type_mismatch', 'instance:version_mismatch', 'instance:interval_mismatch',
      'instance:address_count_mismatch', 'instance:address_list_mismatch',
    ]) t.true((want[key] ?? 0) > 0, `${addr}: corpus exercises ${key}`);
  }
  const sizes = corpus.filter((p) => p.kind === 'random').map((p) => p.hex.length / 2);
  t.true(Math.min(...sizes) <= 10 && Math.max(...sizes) >= 590, `random payload sizes span 0..600 (${Math.min(...sizes)}..${Math.max(...sizes)})`);
  t.true(corpus.some((p) => p.dst === A) && corpus.some((p) => p.dst === B), 'some packets are unicast to each director');
});

test('single bit flips of a valid advert never pass: bad_checksum unless the flip hits version/type/count', (t) => {
  const valid = validAdvert(opts, GROUP);
  const rx = rxModel(A);
  for (let bit = 0; bit < valid.length * 8; bit++) {
    const m = Buffer.from(valid);
    m[bit >> 3]! ^= 0x80 >> (bit & 7);
    const v = classify(m, { src: X, dst: GROUP, ttl: 255 }, rx);
    const byte = bit >> 3;
    // Version 2 -> 3 (bit 3) is a v3 header, whose length differs: bad_length.
    const expected = byte === 0 ? (bit === 3 ? 'bad_length' : bit < 4 ? 'bad_version' : 'bad_type') : byte === 3 ? 'bad_length' : 'bad_checksum';
    t.deepEqual(v, { kind: 'drop', bucket: byte === 1 ? 'socket' : 'instance', reason: byte === 1 ? 'bad_checksum' : expected }, `bit ${bit}`);
  }
});

test('semantic attacks: each has exactly one reason, and the unmutated advert is accepted (the oracle can say yes)', (t) => {
  const rx = rxModel(A);
  const verdicts = Object.fromEntries(semanticAttacks(opts, GROUP).map((s) => [s.kind, classify(s.payload, { src: X, dst: GROUP, ttl: s.ttl }, rx)]));
  t.deepEqual(verdicts, {
    ttl64: { kind: 'drop', bucket: 'instance', reason: 'bad_ttl' },
    wrong_password: { kind: 'drop', bucket: 'instance', reason: 'auth_failure' },
    other_vrid: { kind: 'drop', bucket: 'socket', reason: 'wrong_vrid' },
    address_list: { kind: 'drop', bucket: 'instance', reason: 'address_list_mismatch' },
    address_count: { kind: 'drop', bucket: 'instance', reason: 'address_count_mismatch' },
    v3: { kind: 'drop', bucket: 'instance', reason: 'version_mismatch' },
    interval: { kind: 'drop', bucket: 'instance', reason: 'interval_mismatch' },
    auth_none: { kind: 'drop', bucket: 'instance', reason: 'auth_type_mismatch' },
    bad_type: { kind: 'drop', bucket: 'instance', reason: 'bad_type' },
  });
  t.deepEqual(classify(validAdvert(opts, GROUP), { src: X, dst: GROUP, ttl: 255 }, rx), { kind: 'accept', priority: 254 });
  t.deepEqual(classify(validAdvert(opts, GROUP), { src: A, dst: GROUP, ttl: 255 }, rx), { kind: 'drop', bucket: 'instance', reason: 'own_address' });
});

test('oracle equals the real receive path on arbitrary mutations (accepts included)', (t) => {
  const packet = fc.record({
    base: fc.constantFrom(...semanticAttacks(opts, GROUP).map((s) => s.payload), validAdvert(opts, GROUP)),
    cut: fc.option(fc.nat(40), { nil: undefined }),
    flips: fc.array(fc.nat(40 * 8 - 1), { maxLength: 3 }),
    ttl: fc.constantFrom(255, 255, 64, 1),
    src: fc.constantFrom(X, A),
  });
  fc.assert(fc.property(packet, ({ base, cut, flips, ttl, src }) => {
    const m = Buffer.from(cut === undefined ? base : base.subarray(0, cut));
    for (const bit of flips) if (bit >> 3 < m.length) m[bit >> 3]! ^= 0x80 >> (bit & 7);
    const p: WirePacket = { src, dst: GROUP, ttl, hex: m.toString('hex') };
    const rx = receiver(A);
    rx.feed(p);
    return JSON.stringify(rx.counts()) === JSON.stringify(expectedCounts([p], X, rxModel(A), () => true));
  }), { seed: 51, numRuns: 3000 });
  t.pass();
});
