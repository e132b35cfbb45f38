/**
 * A captured stream of sync messages must not replay (docs/sync-protocol.md, "Replay protection"):
 * not after the backup restarts (its replay state is new), not after 10 minutes of silence.
 * Freshness of a sender's boot is proven by a per-boot nonce challenge: the receiver's
 * snapshot-request (sealed with the receiver's own boot id and sequence) is answered with a
 * snapshot-ack echoing both, and only then are that boot's messages accepted.
 */
import test from 'ava';
import { ReplayGuard, SyncAuth } from '../../src/sync/auth.js';
import { encode, encodeControl } from '../../src/sync/codec.js';
import { acceptDatagram, type AcceptContext } from '../../src/sync/receiver.js';
import type { SyncEntry } from '../../src/sync/types.js';

const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const SYNC_ID = 7;
const MASTER = '10.0.0.11';

const entry = (i: number): SyncEntry => ({
  kind: 'template',
  family: 4,
  protocol: 'tcp',
  client: { address: `172.16.0.${i}`, port: 0 },
  virtual: { address: '192.0.2.1', port: 80 },
  real: { address: '10.200.0.3', port: 80 },
  timeoutSec: 360,
});

/** The master's stream: updates sealed by its SyncAuth, as an attacker on the segment captures them. */
function capture(auth: SyncAuth, n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => auth.seal(encode([entry(i + 1)], SYNC_ID)[0]!));
}

function backup(now?: () => number): AcceptContext {
  return { syncId: SYNC_ID, auth: new SyncAuth(KEY), replay: new ReplayGuard(now ? { now } : {}), requests: new Set() };
}

const verdicts = (ctx: AcceptContext, bufs: Buffer[]) => bufs.map((b) => { const r = acceptDatagram(b, MASTER, ctx); return r.ok ? 'ok' : r.reason; });

test('a captured stream does not replay into a restarted backup', (t) => {
  const master = new SyncAuth(KEY);
  // The backup that sees the stream live (after proving the master's boot fresh, see below); the
  // attacker captures the same datagrams.
  const live = backup();
  handshake(live, master);
  const stream = capture(master, 5);
  t.deepEqual(verdicts(live, stream), ['ok', 'ok', 'ok', 'ok', 'ok']);
  // The backup restarts: new process, new replay state. The attacker replays the capture.
  const restarted = backup();
  t.deepEqual(verdicts(restarted, stream), ['unverified', 'unverified', 'unverified', 'unverified', 'unverified']);
});

test('a captured stream does not replay after 10 minutes of silence', (t) => {
  let now = 0;
  const master = new SyncAuth(KEY);
  const ctx = backup(() => now);
  handshake(ctx, master);
  const stream = capture(master, 3);
  t.deepEqual(verdicts(ctx, stream), ['ok', 'ok', 'ok']);
  now += 11 * 60_000;
  t.deepEqual(verdicts(ctx, stream), ['replayed', 'replayed', 'replayed']);
});

/** The backup asks (snapshot-request sealed with its boot and seq); the master answers with an ack echoing them. */
function handshake(ctx: AcceptContext, master: SyncAuth): void {
  const request = ctx.auth.seal(encodeControl('snapshot-request', SYNC_ID));
  ctx.requests?.add(ctx.auth.lastSeq);
  const req = acceptDatagram(request, '10.0.0.12', { syncId: SYNC_ID, auth: master, replay: new ReplayGuard() });
  if (!req.ok) throw new Error(`request refused: ${req.reason}`);
  const ack = master.seal(encodeControl('snapshot-ack', SYNC_ID, undefined, { bootId: req.bootId, seq: req.seq }));
  const r = acceptDatagram(ack, MASTER, ctx);
  if (!r.ok) throw new Error(`ack refused: ${r.reason} ${r.detail}`);
}

test('after the handshake the master\'s new messages are accepted and the old ones stay rejected', (t) => {
  const master = new SyncAuth(KEY);
  const old = capture(master, 3);
  const ctx = backup();
  t.deepEqual(verdicts(ctx, old.slice(0, 1)), ['unverified'], 'nothing is accepted from an unproven boot');
  handshake(ctx, master);
  const fresh = capture(master, 2);
  t.deepEqual(verdicts(ctx, [...old, ...fresh]), ['replayed', 'replayed', 'replayed', 'ok', 'ok']);
});

test('an ack is only proof when it echoes a request this receiver sent in this run', (t) => {
  const master = new SyncAuth(KEY);
  const ctx = backup();
  // An ack echoing another boot (e.g. captured from an earlier run of this backup): not proof.
  const foreign = master.seal(encodeControl('snapshot-ack', SYNC_ID, undefined, { bootId: 12345n, seq: 1n }));
  const r1 = acceptDatagram(foreign, MASTER, ctx);
  t.false(r1.ok);
  t.is(r1.ok ? '' : r1.reason, 'unverified');
  // Echoing our boot id but a sequence number we never used for a request: not proof either.
  const guessed = master.seal(encodeControl('snapshot-ack', SYNC_ID, undefined, { bootId: ctx.auth.bootId, seq: 99n }));
  const r2 = acceptDatagram(guessed, MASTER, ctx);
  t.is(r2.ok ? '' : r2.reason, 'unverified');
  t.deepEqual(verdicts(ctx, capture(master, 1)), ['unverified']);
});

test('a restarted master (newer boot) is accepted without a new handshake; an older unknown boot is not', (t) => {
  const m1 = new SyncAuth(KEY, { bootId: 1000n << 16n });
  const ctx = backup();
  handshake(ctx, m1);
  const m2 = new SyncAuth(KEY, { bootId: 2000n << 16n });
  t.deepEqual(verdicts(ctx, capture(m2, 2)), ['ok', 'ok']);
  const m0 = new SyncAuth(KEY, { bootId: 500n << 16n });
  t.deepEqual(verdicts(ctx, capture(m0, 1)), ['unverified'], 'a clock stepped back needs a handshake, not a timeout');
  handshake(ctx, m0);
  t.deepEqual(verdicts(ctx, capture(m0, 1)), ['ok']);
});

test('snapshot-requests from an unproven boot are passed on (they start the handshake) but prove nothing', (t) => {
  const peer = new SyncAuth(KEY);
  const ctx = backup();
  const req = peer.seal(encodeControl('snapshot-request', SYNC_ID));
  const r = acceptDatagram(req, MASTER, ctx);
  t.true(r.ok);
  t.deepEqual(verdicts(ctx, capture(peer, 1)), ['unverified']);
});
