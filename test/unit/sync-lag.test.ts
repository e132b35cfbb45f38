// Lag measurement of connection sync: the version-2 timing block (per-entry ages, the sender's
// transit estimate), the lag-ack echo (authenticated, one answer per message: replays are
// refused), and the pure estimators of src/sync/lag.ts.
import test from 'ava';
import fc from 'fast-check';
import { ReplayGuard, SyncAuth } from '../../src/sync/auth.js';
import {
  MAX_TIME_US,
  MessageBuilder,
  NO_TIME,
  TRAILER_LEN,
  decode,
  encode,
  encodeControl,
  encodeLagAck,
  stampTiming,
} from '../../src/sync/codec.js';
import { LagWindow, PEER_STALE_MS, PeerRtt, SentLog, entryLagMs, percentile } from '../../src/sync/lag.js';
import { acceptDatagram } from '../../src/sync/receiver.js';
import type { SyncEntry } from '../../src/sync/types.js';
import { canonicalIp, formatIp, parseIp } from '../../src/util/inet.js';

const KEY = Buffer.from('lag-test-key-of-enough-bytes');

function conn(i: number, family: 4 | 6 = 4): SyncEntry {
  const a = (n: number) => (family === 4 ? `198.51.100.${n & 255}` : `2001:db8::${(n & 0xffff).toString(16)}`);
  return { kind: 'conn', family, protocol: 'tcp', state: 'ESTABLISHED', client: { address: a(i), port: 1024 + i }, virtual: { address: a(1), port: 80 }, real: { address: a(2), port: 80 }, timeoutSec: 900 };
}

const master = () => new SyncAuth(KEY, { bootId: 0x1111n });
const backup = () => new SyncAuth(KEY, { bootId: 0x2222n });
/** The master's receive context: its own auth, a sent log, the backup's boot unknown (lag-acks need no proof). */
const masterCtx = (auth: SyncAuth, sent: SentLog) => ({ syncId: 7, auth, replay: new ReplayGuard(), requests: new Set<bigint>(), sent });

test('split input: every entry keeps its own age across the messages it is split into, and the transit rides in each', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom<4 | 6>(4, 6), fc.double({ min: 0, max: 5000, noNaN: true })), { minLength: 1, maxLength: 200 }),
      fc.option(fc.integer({ min: 0, max: 10_000_000 }), { nil: null }),
      fc.integer({ min: 200, max: 3000 }),
      (items, transit, maxPayload) => {
        const now = 10_000;
        const b = new MessageBuilder(7, 'update', maxPayload);
        const ages: Array<number | null> = [];
        const bufs: Buffer[] = [];
        const flush = () => {
          const m = b.finishMessage();
          bufs.push(stampTiming(m.buf, m.observed, now, transit));
        };
        items.forEach(([family, ageMs], i) => {
          const e = conn(i, family);
          if (!b.add(e, now - ageMs)) {
            flush();
            b.add(e, now - ageMs);
          }
          ages.push(Math.round(ageMs * 1000));
        });
        flush();
        const got: Array<number | null> = [];
        for (const buf of bufs) {
          if (buf.length > maxPayload) return false;
          const r = decode(buf, 7);
          if (!r.ok || !r.timing) return false;
          if (r.timing.transitUs !== transit) return false;
          if (r.timing.agesUs.length !== r.entries.length) return false;
          got.push(...r.timing.agesUs);
        }
        t.deepEqual(got, ages);
        return true;
      },
    ),
    { numRuns: 200 },
  );
});

test('timing fields: unknown stays unknown, negative ages are 0, huge ones saturate', (t) => {
  const b = new MessageBuilder(7);
  b.add(conn(1), Number.NaN);
  b.add(conn(2), 2000); // observed "after" now (clock mixup): age 0
  b.add(conn(3), -1e10); // saturates
  b.add(conn(4)); // default: unknown
  const m = b.finishMessage();
  const unstamped = decode(m.buf, 7);
  t.true(unstamped.ok && unstamped.timing?.transitUs === null && unstamped.timing.agesUs.every((a) => a === null), 'before stamping: all unknown');
  stampTiming(m.buf, m.observed, 1000, null);
  const r = decode(m.buf, 7);
  t.true(r.ok);
  if (r.ok) t.deepEqual(r.timing, { transitUs: null, agesUs: [null, 0, MAX_TIME_US, null] });
  // A version-1 message has no timing, and stamping leaves it alone.
  const [v1] = encode([conn(1)], 7, { version: 1 });
  const copy = Buffer.from(v1!);
  stampTiming(v1!, [0], 1000, 5);
  t.true(copy.equals(v1!));
  const d1 = decode(v1!, 7);
  t.true(d1.ok && d1.version === 1 && d1.timing === undefined);
});

test('lag-ack: round trip, version 2 only, body size checked', (t) => {
  const a = backup();
  const buf = a.seal(encodeLagAck(7, { bootId: 0x1111n, seq: 42n, holdUs: 1234.4 }));
  t.is(buf[5], 2);
  const r = decode(buf, 7);
  t.true(r.ok);
  if (r.ok) {
    t.is(r.kind, 'lag-ack');
    t.deepEqual(r.lagEcho, { bootId: 0x1111n, seq: 42n, holdUs: 1234 });
  }
  const v1 = encodeLagAck(7, { bootId: 1n, seq: 1n, holdUs: 0 });
  v1[5] = 1;
  const r1 = decode(v1, 7);
  t.true(!r1.ok && r1.reason === 'malformed', 'a lag-ack in version 1');
  const short = encodeLagAck(7, { bootId: 1n, seq: 1n, holdUs: 0 });
  short.writeUInt16BE(8 + 16, 2);
  const r2 = decode(short.subarray(0, 8 + 16 + TRAILER_LEN), 7);
  t.true(!r2.ok && r2.reason === 'malformed', 'body of 16 bytes instead of 20');
  const noHold = encodeLagAck(7, { bootId: 1n, seq: 1n, holdUs: Number.NaN });
  t.is(noHold.readUInt32BE(8 + 16), NO_TIME);
  const r3 = decode(noHold, 7);
  t.true(!r3.ok && r3.reason === 'malformed', 'a lag-ack without hold time');
  // Control messages keep the version-1 layout (older peers understand them).
  t.is(encodeControl('snapshot-request', 7)[5], 1);
  t.is(encodeControl('snapshot-end', 7, { messages: 1, entries: 1 })[5], 1);
});

test('lag-ack on the master: matched once; a replay, a forgery, a garbled copy and an echo of nothing are refused', (t) => {
  const m = master();
  const b = backup();
  const sent = new SentLog();
  sent.record(5n, 100);
  sent.record(6n, 110);
  const ctx = masterCtx(m, sent);
  const ack = b.seal(encodeLagAck(7, { bootId: m.bootId, seq: 5n, holdUs: 300 }));
  const ok = acceptDatagram(ack, '192.0.2.2', ctx);
  t.true(ok.ok);
  if (ok.ok) t.is(ok.sentAt, 100);
  const again = acceptDatagram(ack, '192.0.2.2', ctx);
  t.false(again.ok);
  if (!again.ok) t.is(again.reason, 'replayed', 'the same ack again: its message was taken');
  // A fresh ack (new sequence) echoing an already answered message is refused as well.
  const second = acceptDatagram(b.seal(encodeLagAck(7, { bootId: m.bootId, seq: 5n, holdUs: 1 })), '192.0.2.2', ctx);
  t.true(!second.ok && second.reason === 'replayed');
  const unknown = acceptDatagram(b.seal(encodeLagAck(7, { bootId: m.bootId, seq: 99n, holdUs: 1 })), '192.0.2.2', ctx);
  t.true(!unknown.ok && unknown.reason === 'replayed', 'echo of a message never sent');
  const forged = acceptDatagram(new SyncAuth(Buffer.from('not the key at all!!')).seal(encodeLagAck(7, { bootId: m.bootId, seq: 6n, holdUs: 1 })), '192.0.2.2', ctx);
  t.true(!forged.ok && forged.reason === 'bad_hmac');
  const garbled = b.seal(encodeLagAck(7, { bootId: m.bootId, seq: 6n, holdUs: 1 }));
  garbled[8 + 19] ^= 1;
  const g = acceptDatagram(garbled, '192.0.2.2', ctx);
  t.true(!g.ok && g.reason === 'bad_hmac');
  t.is(sent.size, 1, 'neither the forgery nor the garbled copy took message 6');
  // An ack echoing another director's boot (a multicast fleet): accepted as a message, not a sample.
  const other = acceptDatagram(b.seal(encodeLagAck(7, { bootId: 0x9999n, seq: 6n, holdUs: 1 })), '192.0.2.2', ctx);
  t.true(other.ok && other.sentAt === undefined);
  t.is(sent.size, 1);
  // A lag-ack from a known boot is still subject to its window.
  const known = masterCtx(m, sent);
  known.replay.accept('192.0.2.2', b.bootId, 0n, { proof: true });
  const k = b.seal(encodeLagAck(7, { bootId: m.bootId, seq: 6n, holdUs: 1 }));
  t.true(acceptDatagram(k, '192.0.2.2', known).ok);
  const k2 = acceptDatagram(k, '192.0.2.2', known);
  t.true(!k2.ok && k2.reason === 'replayed');
});

test('SentLog is bounded and answers each message once', (t) => {
  const s = new SentLog(3);
  for (let i = 1n; i <= 5n; i++) s.record(i, Number(i) * 10);
  t.is(s.size, 3);
  t.is(s.take(1n), undefined, 'the oldest were forgotten');
  t.is(s.take(4n), 40);
  t.is(s.take(4n), undefined);
});

test('PeerRtt: median per peer, the slowest peer counts, silent peers expire', (t) => {
  const r = new PeerRtt();
  t.is(r.transitUs(0), null);
  for (const v of [10, 11, 500, 12, 9]) r.add('a', v, 0); // one outlier
  t.is(r.rttMs(0), 11);
  t.is(r.transitUs(0), 5500);
  r.add('b', 100, 1000);
  t.is(r.rttMs(1000), 100, 'the slowest peer');
  t.is(r.rttMs(PEER_STALE_MS + 500), 100, 'a went silent');
  t.is(r.rttMs(PEER_STALE_MS + 2000), null);
  r.add('c', -3, 0);
  t.is(r.rttMs(0), 0, 'negative (clock granularity) counts as 0');
});

test('LagWindow: percentiles over the last entries, unmeasured counted apart', (t) => {
  const w = new LagWindow(100);
  t.deepEqual(w.summary(), { p50_ms: null, p99_ms: null, max_ms: null, last_ms: null, window: 0, measured: 0, unmeasured: 0 });
  for (let i = 1; i <= 150; i++) w.add(i);
  w.add(null);
  const s = w.summary();
  t.is(s.window, 100, 'only the last 100');
  t.is(s.p50_ms, 100);
  t.is(s.p99_ms, 149);
  t.is(s.max_ms, 150);
  t.is(s.last_ms, 150);
  t.is(s.measured, 150);
  t.is(s.unmeasured, 1);
  t.is(percentile([1, 2, 3, 4], 50), 2);
});

test('entryLagMs adds age, transit and local time; any unknown part makes it unknown', (t) => {
  t.is(entryLagMs(20_000, 500, 1.5), 22);
  t.is(entryLagMs(null, 500, 1), null);
  t.is(entryLagMs(1, null, 1), null);
  t.is(entryLagMs(0, 0, -1), 0, 'local time never negative');
});

test('IPv4 fast paths (the fresh-backup profile): canonicalIp and formatIp agree with the byte round trip', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (b) => {
      const text = formatIp(b);
      return text === [...b].join('.') && canonicalIp(text, 4) === text && parseIp(text, 4)!.equals(Buffer.from(b));
    }),
    { numRuns: 500 },
  );
  for (const bad of ['01.2.3.4', '1.2.3', '256.1.1.1', '1.2.3.4 ', '::1', '1.2.3.4%eth0', '']) t.is(canonicalIp(bad, 4), null, bad);
  fc.assert(fc.property(fc.string({ maxLength: 20 }), (s) => canonicalIp(s, 4) === (parseIp(s, 4) ? formatIp(parseIp(s, 4)!) : null)), { numRuns: 2000 });
});
