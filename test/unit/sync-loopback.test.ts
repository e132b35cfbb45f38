// Sender -> receiver over real UDP sockets on 127.0.0.1 (unicast-peer mode; no root needed).
import test from 'ava';
import { createSocket } from 'node:dgram';
import { isDeepStrictEqual } from 'node:util';
import { ReplayGuard, SyncAuth } from '../../src/sync/auth.js';
import type { SnapshotTotals } from '../../src/sync/codec.js';
import { encode } from '../../src/sync/codec.js';
import { type MessageInfo, SyncReceiver } from '../../src/sync/receiver.js';
import { SyncSender } from '../../src/sync/sender.js';
import { type NormalizedEntry, type SyncEntry, normalizeEntry } from '../../src/sync/types.js';

const KEY = Buffer.from('loopback-test-key');
const SYNC_ID = 11;

function entry(i: number): SyncEntry {
  const k = i % 3;
  if (k === 0) {
    return {
      kind: 'conn',
      family: 4,
      protocol: i % 2 ? 'tcp' : 'udp',
      state: i % 2 ? 'ESTABLISHED' : 'UDP',
      client: { address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 1024 + (i % 60000) },
      virtual: { address: '192.0.2.1', port: 443 },
      real: { address: '10.200.0.2', port: 8443 },
      timeoutSec: 900,
    };
  }
  if (k === 1) {
    return {
      kind: 'udp-flow',
      family: 6,
      client: { address: `2001:db8::1:${(i & 0xffff).toString(16)}`, port: 5000 + (i % 1000) },
      virtual: { address: '2001:db8:ffff::1', port: 53 },
      real: { address: 'fd00::2', port: 53 },
      timeoutSec: 300,
      ended: i % 7 === 0,
    };
  }
  return {
    kind: 'template',
    family: 4,
    protocol: 'tcp',
    client: { address: `172.16.${(i >> 8) & 255}.0`, port: 0 },
    virtual: { address: '192.0.2.1', port: 0 },
    real: { address: '10.200.0.3', port: 0 },
    timeoutSec: 360,
  };
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

interface Collected {
  entries: NormalizedEntry[];
  infos: MessageInfo[];
  ends: SnapshotTotals[];
}

/**
 * A replay guard that already holds `sender`'s boot as proven live (what the snapshot-ack
 * handshake does; tests of other things start from there).
 */
function proven(sender: SyncAuth, address = '127.0.0.1'): ReplayGuard {
  const g = new ReplayGuard();
  g.accept(address, sender.bootId, sender.lastSeq, { proof: true });
  return g;
}

async function openReceiver(auth: SyncAuth, extra: Partial<Parameters<typeof SyncReceiver.open>[0]> = {}) {
  const got: Collected = { entries: [], infos: [], ends: [] };
  const rx = await SyncReceiver.open({
    syncId: SYNC_ID,
    auth,
    port: 0,
    bindAddress: '127.0.0.1',
    onEntries: (e, info) => {
      for (const x of e) got.entries.push(x);
      got.infos.push(info);
    },
    onSnapshotEnd: (totals) => got.ends.push(totals),
    ...extra,
  });
  return { rx, got };
}

test('10,000 entries arrive intact and in order (unicast on loopback)', async (t) => {
  const txAuth = new SyncAuth(KEY);
  const { rx, got } = await openReceiver(new SyncAuth(KEY), { replay: proven(txAuth) });
  const tx = await SyncSender.open({ syncId: SYNC_ID, auth: txAuth, targets: [rx.address()], bindAddress: '127.0.0.1' });
  t.teardown(() => Promise.all([tx.close(), rx.close()]));
  const table = Array.from({ length: 10_000 }, (_, i) => entry(i));
  for (let i = 0; i < table.length; i += 500) tx.enqueue(table.slice(i, i + 500));
  await tx.flush();
  t.true(await waitFor(() => got.entries.length >= table.length, 10_000), `received ${got.entries.length}`);
  t.deepEqual(got.entries, table.map(normalizeEntry));
  t.is(tx.counters.entries, 10_000);
  t.is(tx.counters.sendErrors, 0);
  t.is(rx.counters.entries, 10_000);
  t.is(rx.counters.messages, tx.counters.messages);
  t.is(rx.counters.bytes, tx.counters.bytes);
  t.true(Object.values(rx.counters.dropped).every((n) => n === 0), JSON.stringify(rx.counters.dropped));
  t.true(got.infos.every((i) => i.kind === 'update' && i.from.address === '127.0.0.1'));
});

test('snapshot of 100,000 entries on loopback (time logged)', async (t) => {
  const txAuth = new SyncAuth(KEY);
  const { rx, got } = await openReceiver(new SyncAuth(KEY), { recvBufferSize: 8 * 1024 * 1024, replay: proven(txAuth) });
  const tx = await SyncSender.open({ syncId: SYNC_ID, auth: txAuth, targets: [rx.address()], bindAddress: '127.0.0.1' });
  t.teardown(() => Promise.all([tx.close(), rx.close()]));
  const table = Array.from({ length: 100_000 }, (_, i) => entry(i));
  const res = await tx.snapshot(table);
  t.log(`snapshot: ${res.entries} entries, ${res.messages} messages, ${res.bytes} bytes sent in ${res.ms.toFixed(1)} ms`);
  t.is(res.entries, 100_000);
  t.true(await waitFor(() => got.ends.length === 1, 15_000));
  t.log(`received ${got.entries.length} entries in ${rx.counters.messages} messages, ${rx.counters.bytes} bytes`);
  t.deepEqual(got.ends[0], { messages: res.messages, entries: 100_000 });
  t.is(got.entries.length, 100_000, `a loss on loopback means the sender outran the receive buffer; drops ${JSON.stringify(rx.counters.dropped)}`);
  // (element by element: one deepEqual over 100k objects overflows ava's differ)
  let mismatches = 0;
  table.forEach((e, i) => {
    if (!isDeepStrictEqual(got.entries[i], normalizeEntry(e))) mismatches++;
  });
  t.is(mismatches, 0);
});

test('a backup asks the master for its table and gets it', async (t) => {
  // Master director: sender + receiver sharing one identity; backup: a receiver.
  const masterAuth = new SyncAuth(KEY);
  const backupAuth = new SyncAuth(KEY);
  const table = Array.from({ length: 1000 }, (_, i) => entry(i));
  let tx: SyncSender | undefined;
  const { rx: masterRx } = await openReceiver(masterAuth, {
    onSnapshotRequest: (req) => void tx!.handleSnapshotRequest(req),
  });
  tx = await SyncSender.open({
    syncId: SYNC_ID,
    auth: masterAuth,
    targets: [{ address: '127.0.0.1', port: 9 }], // the regular update target: unused here
    bindAddress: '127.0.0.1',
    onSnapshotRequest: () => table,
  });
  const { rx: backupRx, got } = await openReceiver(backupAuth, { requestTargets: [masterRx.address()] });
  t.teardown(() => Promise.all([tx!.close(), masterRx.close(), backupRx.close()]));

  await backupRx.requestSnapshot();
  t.true(await waitFor(() => got.ends.length === 1, 5000));
  t.deepEqual(got.entries, table.map(normalizeEntry));
  t.true(got.infos.every((i) => i.kind === 'snapshot' && i.bootId === masterAuth.bootId));
  t.is(masterRx.counters.snapshotRequestsReceived, 1);
  t.is(backupRx.counters.snapshotRequestsSent, 1);
  t.is(tx.counters.snapshots, 1);
});

test('forged, replayed, foreign and own datagrams are dropped and counted', async (t) => {
  const auth = new SyncAuth(KEY);
  const drops: string[] = [];
  const peer = new SyncAuth(KEY);
  const { rx, got } = await openReceiver(auth, { onDrop: (r) => drops.push(r), replay: proven(peer) });
  const raw = createSocket('udp4');
  await new Promise<void>((r) => raw.bind(0, '127.0.0.1', r));
  t.teardown(async () => {
    raw.close();
    await rx.close();
  });
  const { port } = rx.address();
  const send = (b: Buffer) => new Promise<void>((res, rej) => raw.send(b, port, '127.0.0.1', (e) => (e ? rej(e) : res())));
  const msg = () => encode([entry(0)], SYNC_ID)[0]!;

  const good = peer.seal(msg());
  await send(good);
  await send(good); // replay
  await send(new SyncAuth(Buffer.from('wrong key')).seal(msg())); // bad_hmac
  await send(peer.seal(encode([entry(0)], SYNC_ID + 1)[0]!)); // foreign_sync_id
  await send(auth.seal(msg())); // own
  await send(Buffer.from([0, 1, 2])); // too_short
  const v0 = peer.seal(msg());
  v0[5] = 0;
  await send(v0); // bad_version
  const bad = msg();
  bad[8 + 4 + 4 + 1] = 1; // ICMP (version 2: the entry follows transit and one age): authentic but malformed
  await send(peer.seal(bad));
  await send(peer.seal(msg())); // fine again

  t.true(await waitFor(() => drops.length === 7 && got.entries.length === 2, 3000), drops.join(','));
  t.deepEqual(rx.counters.dropped, {
    too_short: 1,
    bad_version: 1,
    foreign_sync_id: 1,
    malformed: 1,
    bad_hmac: 1,
    replayed: 1,
    unverified: 0,
    own_message: 1,
  });
  t.is(rx.counters.messages, 2);
});

test('close is idempotent on both sides and requestSnapshot after close fails with E_CLOSED', async (t) => {
  const { rx } = await openReceiver(new SyncAuth(KEY), { requestTargets: [{ address: '127.0.0.1', port: 9 }] });
  const tx = await SyncSender.open({ syncId: SYNC_ID, auth: new SyncAuth(KEY), targets: [rx.address()], bindAddress: '127.0.0.1' });
  await Promise.all([rx.close(), rx.close(), tx.close(), tx.close()]);
  await rx.close();
  await tx.close();
  await t.throwsAsync(rx.requestSnapshot(), { code: 'E_CLOSED' } as never);
});

test('binding a port in use by a non-reuseaddr socket fails with E_SOCKET', async (t) => {
  const hog = createSocket({ type: 'udp4', reuseAddr: false });
  await new Promise<void>((r) => hog.bind(0, '127.0.0.1', r));
  t.teardown(() => hog.close());
  const port = hog.address().port;
  await t.throwsAsync(
    SyncReceiver.open({ syncId: 1, auth: new SyncAuth(KEY), port, bindAddress: '127.0.0.1', onEntries: () => {} }),
    { code: 'E_SOCKET' } as never,
  );
});
