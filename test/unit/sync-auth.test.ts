import test from 'ava';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplayGuard, SyncAuth, newBootId, readSyncKey } from '../../src/sync/auth.js';
import { encodeControl } from '../../src/sync/codec.js';
import { isKeepaliveError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'sync-auth-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function keyFile(name: string, content: string, mode: number): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  chmodSync(p, mode);
  return p;
}

test('auth_key is used as UTF-8 bytes', (t) => {
  t.deepEqual(readSyncKey({ auth_key: 'sécret-0123456789' }), Buffer.from('sécret-0123456789', 'utf8'));
});

test('auth_key_file content is trimmed; 0600 and 0640 are accepted', (t) => {
  t.deepEqual(readSyncKey({ auth_key_file: keyFile('k600', '  s3cret-key-0123456\n', 0o600) }), Buffer.from('s3cret-key-0123456'));
  t.deepEqual(readSyncKey({ auth_key_file: keyFile('k640', 's3cret-key-0123456\n', 0o640) }), Buffer.from('s3cret-key-0123456'));
});

test('a key shorter than 16 bytes is refused, inline or in a file', (t) => {
  for (const err of [t.throws(() => readSyncKey({ auth_key: 'x' })), t.throws(() => readSyncKey({ auth_key: '0123456789abcde' })), t.throws(() => readSyncKey({ auth_key_file: keyFile('short', 'k\n', 0o600) }))]) {
    t.true(isKeepaliveError(err, 'E_CONFIG_INVALID'));
    t.regex(err!.message, /at least 16 are needed/);
  }
  t.is(readSyncKey({ auth_key: '0123456789abcdef' }).length, 16);
});

(process.getuid?.() === 0 ? test : test.skip)('a key file owned by another user is refused (it could change the key)', (t) => {
  const f = keyFile('owned', 'a-long-enough-sync-key\n', 0o600);
  chownSync(f, 65534, 65534);
  const err = t.throws(() => readSyncKey({ auth_key_file: f }));
  t.true(isKeepaliveError(err, 'E_CONFIG_INVALID'));
  t.regex(err!.message, /owned by uid 65534, not root/);
});

test('a key file other users can read or write is refused with a chmod hint', (t) => {
  for (const mode of [0o644, 0o604, 0o602, 0o666]) {
    const f = keyFile(`k${mode.toString(8)}`, 'key', mode);
    const err = t.throws(() => readSyncKey({ auth_key_file: f }));
    t.true(isKeepaliveError(err, 'E_CONFIG_INVALID'));
    t.regex(err!.message, /accessible by other users \(mode 0\d{3}\); run "chmod 600/);
  }
});

test('missing, empty, both or neither keys are clear errors', (t) => {
  const missing = t.throws(() => readSyncKey({ auth_key_file: join(dir, 'nope') }));
  t.true(isKeepaliveError(missing, 'E_CONFIG_READ'));
  t.regex(missing!.message, /cannot read auth_key_file/);
  t.true(isKeepaliveError(t.throws(() => readSyncKey({ auth_key_file: keyFile('empty', ' \n', 0o600) })), 'E_CONFIG_INVALID'));
  t.true(isKeepaliveError(t.throws(() => readSyncKey({ auth_key: '' })), 'E_CONFIG_INVALID'));
  t.true(isKeepaliveError(t.throws(() => readSyncKey({ auth_key: 'a', auth_key_file: 'b' })), 'E_CONFIG_INVALID'));
  t.true(isKeepaliveError(t.throws(() => readSyncKey({})), 'E_CONFIG_INVALID'));
  t.true(isKeepaliveError(t.throws(() => readSyncKey({ auth_key_file: dir })), 'E_CONFIG_INVALID'));
});

test('seal writes boot id, increasing sequence and an HMAC that verifies only with the key', (t) => {
  const a = new SyncAuth(Buffer.from('k1'), { bootId: 77n });
  const m1 = a.seal(encodeControl('snapshot-request', 1));
  const m2 = a.seal(encodeControl('snapshot-request', 1));
  t.is(m1.readBigUInt64BE(8), 77n);
  t.is(m1.readBigUInt64BE(16), 1n);
  t.is(m2.readBigUInt64BE(16), 2n);
  t.is(a.lastSeq, 2n);
  t.true(a.verify(m1));
  t.true(new SyncAuth(Buffer.from('k1')).verify(m2));
  t.false(new SyncAuth(Buffer.from('k2')).verify(m1));
  t.false(a.verify(m1.subarray(0, 20)));
});

test('boot ids grow with time and carry 16 random bits', (t) => {
  const a = newBootId(1_700_000_000_000);
  const b = newBootId(1_700_000_000_001);
  t.true(b > a);
  t.is(a >> 16n, 1_700_000_000_000n);
});

test('replay guard: in order, duplicates, reordering window, too old', (t) => {
  const g = new ReplayGuard({ window: 8 });
  t.is(g.check('10.0.0.1', 100n, 1n), 'unverified', 'an unproven boot is not accepted');
  t.true(g.accept('10.0.0.1', 100n, 1n, { proof: true }), 'proven by a snapshot-ack');
  t.false(g.accept('10.0.0.1', 100n, 1n), 'duplicate');
  t.true(g.accept('10.0.0.1', 100n, 5n));
  t.true(g.accept('10.0.0.1', 100n, 3n), 'late but unseen, inside window');
  t.false(g.accept('10.0.0.1', 100n, 3n), 'late duplicate');
  t.true(g.accept('10.0.0.1', 100n, 20n));
  t.false(g.accept('10.0.0.1', 100n, 12n), 'older than the window');
  t.true(g.accept('10.0.0.1', 100n, 13n), 'oldest slot in window');
  t.false(g.accept('10.0.0.1', 100n, 20n));
});

test('replay guard: the window of a proven boot starts at the proof; nothing older is accepted', (t) => {
  const g = new ReplayGuard({ window: 8 });
  t.true(g.accept('10.0.0.1', 100n, 50n, { proof: true }));
  for (const seq of [49n, 45n, 43n, 1n]) t.is(g.check('10.0.0.1', 100n, seq), 'replayed', `seq ${seq}`);
  t.true(g.accept('10.0.0.1', 100n, 51n));
});

test('replay guard: restarted sender (newer boot) accepted, old or unknown boots are not', (t) => {
  const g = new ReplayGuard();
  t.true(g.accept('10.0.0.1', 100n, 500n, { proof: true }));
  t.true(g.accept('10.0.0.1', 200n, 1n), 'restart: new boot, sequence starts over');
  t.true(g.accept('10.0.0.1', 200n, 2n));
  t.is(g.check('10.0.0.1', 50n, 9999n), 'unverified', 'unknown older boot: old run replayed, or a clock stepped back (needs a handshake)');
  t.is(g.check('10.0.0.1', 100n, 500n), 'replayed', 'old boot, already seen');
  // Other senders are independent: nothing proven there yet.
  t.is(g.check('10.0.0.2', 300n, 1n), 'unverified');
  // A snapshot-request passes (it starts the handshake) but proves nothing.
  t.is(g.check('10.0.0.3', 400n, 1n, { request: true }), 'ok');
  t.is(g.check('10.0.0.3', 400n, 2n), 'unverified');
});

test('replay guard: bounded state, and no forgetting by time', (t) => {
  let now = 0;
  const g = new ReplayGuard({ bootsPerSender: 2, maxSenders: 3, now: () => now });
  t.true(g.accept('a', 1n, 1n, { proof: true }));
  t.true(g.accept('a', 2n, 1n));
  t.true(g.accept('a', 3n, 1n)); // boot 1 evicted
  t.false(g.accept('a', 1n, 2n), 'evicted boot is older than the newest: not accepted');
  for (const [s, boot] of [['b', 11n], ['c', 12n], ['d', 13n]] as const) t.true(g.accept(s, boot, 1n, { proof: true }));
  t.is(g.senders, 3);
  now = 3_600_000;
  t.is(g.check('d', 13n, 1n), 'replayed', 'an hour of silence changes nothing');
});
