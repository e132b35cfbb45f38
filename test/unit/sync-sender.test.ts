import test from 'ava';
import { ReplayGuard, SyncAuth } from '../../src/sync/auth.js';
import { decode } from '../../src/sync/codec.js';
import { acceptDatagram } from '../../src/sync/receiver.js';
import { SyncSender, type SyncTransport } from '../../src/sync/sender.js';
import { type SyncEntry, normalizeEntry } from '../../src/sync/types.js';
import { FakeClock } from '../lib/fake-clock.js';

const KEY = Buffer.from('sender-test-key');

/** Records datagrams instead of sending them; everything else (encode, seal) is real. */
class RecordingTransport implements SyncTransport {
  readonly sent: { buf: Buffer; port: number; address: string }[] = [];
  closed = 0;
  failNext = 0;
  send(buf: Buffer, port: number, address: string): Promise<number> {
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(new Error('EPERM'));
    }
    this.sent.push({ buf, port, address });
    return Promise.resolve(buf.length);
  }
  close(): Promise<void> {
    this.closed++;
    return Promise.resolve();
  }
}

function conn(i: number): SyncEntry {
  return {
    kind: 'conn',
    family: 4,
    protocol: 'tcp',
    state: 'ESTABLISHED',
    client: { address: `198.51.${(i >> 8) & 255}.${i & 255}`, port: 10000 + (i % 50000) },
    virtual: { address: '192.0.2.1', port: 443 },
    real: { address: '10.0.0.2', port: 443 },
    timeoutSec: 900,
  };
}

function setup(extra: Partial<ConstructorParameters<typeof SyncSender>[0]> = {}) {
  const clock = new FakeClock();
  const transport = new RecordingTransport();
  const auth = new SyncAuth(KEY, { bootId: 1n });
  const sender = new SyncSender(
    { syncId: 5, auth, targets: [{ address: '192.0.2.200', port: 8848 }], timers: clock, ...extra },
    transport,
  );
  // Decode everything recorded so far, as a fresh receiving director would.
  const received = () => {
    // ... that has already proven the sender's boot live (the snapshot-ack handshake).
    const replay = new ReplayGuard();
    replay.accept('192.0.2.100', 1n, 0n, { proof: true });
    const rx = { syncId: 5, auth: new SyncAuth(KEY, { bootId: 2n }), replay };
    return transport.sent.map((s) => {
      const r = acceptDatagram(s.buf, '192.0.2.100', rx);
      if (!r.ok) throw new Error(`${r.reason}: ${r.detail}`);
      return r;
    });
  };
  return { clock, transport, sender, received };
}

const tick = () => new Promise((r) => setImmediate(r));

test('a partial batch goes out 100 ms after its first entry, not before', async (t) => {
  const { clock, transport, sender, received } = setup();
  sender.enqueue(conn(1));
  clock.advance(50);
  sender.enqueue([conn(2), conn(3)]);
  clock.advance(49);
  await tick();
  t.is(transport.sent.length, 0);
  t.is(sender.pending, 3);
  clock.advance(1);
  await tick();
  t.is(transport.sent.length, 1);
  t.deepEqual(transport.sent[0]!.address, '192.0.2.200');
  t.deepEqual(received()[0]!.entries, [conn(1), conn(2), conn(3)].map(normalizeEntry));
  // Nothing pending: no timer, nothing more is sent.
  clock.advance(1000);
  await tick();
  t.is(transport.sent.length, 1);
  t.is(sender.counters.messages, 1);
  t.is(sender.counters.entries, 3);
});

test('a full batch goes out at once; the overflow waits for the timer', async (t) => {
  const { clock, transport, sender, received } = setup();
  sender.enqueue(Array.from({ length: 40 }, (_, i) => conn(i)));
  await tick();
  t.is(transport.sent.length, 1, '35 IPv4 entries (with their ages) fill a 1472-byte message');
  t.is(received()[0]!.entries.length, 35);
  t.is(sender.pending, 5);
  clock.advance(99);
  await tick();
  t.is(transport.sent.length, 1);
  clock.advance(1);
  await tick();
  t.is(transport.sent.length, 2);
  const all = received();
  t.deepEqual(all.flatMap((r) => r.entries), Array.from({ length: 40 }, (_, i) => normalizeEntry(conn(i))));
  t.deepEqual(all.map((r) => r.seq), [1n, 2n], 'sequence numbers increase');
  t.true(transport.sent.every((s) => s.buf.length <= 1472));
});

test('maxPayload and the 255-entry limit decide when a batch is full', async (t) => {
  const { transport, sender } = setup({ maxPayload: 65507 });
  sender.enqueue(Array.from({ length: 256 }, (_, i) => conn(i)));
  await tick();
  t.is(transport.sent.length, 1);
  t.is(transport.sent[0]!.buf[4], 255);
  await sender.flush();
  t.is(transport.sent.length, 2);
});

test('flush sends now; unicast peers each get every message', async (t) => {
  const { transport, sender } = setup({
    targets: [
      { address: '127.0.0.2', port: 1 },
      { address: '127.0.0.3', port: 2 },
    ],
  });
  sender.enqueue(conn(1));
  await sender.flush();
  t.deepEqual(
    transport.sent.map((s) => `${s.address}:${s.port}`),
    ['127.0.0.2:1', '127.0.0.3:2'],
  );
  t.is(sender.counters.messages, 2);
  t.true(transport.sent[0]!.buf.equals(transport.sent[1]!.buf));
});

test('send errors are counted and do not stop the sender', async (t) => {
  const errors: unknown[] = [];
  const { transport, sender } = setup({ onError: (e) => errors.push(e) });
  transport.failNext = 1;
  sender.enqueue(conn(1));
  await sender.flush();
  sender.enqueue(conn(2));
  await sender.flush();
  t.is(sender.counters.sendErrors, 1);
  t.is(sender.counters.messages, 1);
  t.is(errors.length, 1);
});

test('snapshot: pending updates first, then snapshot messages, then snapshot-end with totals', async (t) => {
  const { transport, sender, received } = setup();
  sender.enqueue(conn(0));
  const table = Array.from({ length: 100 }, (_, i) => conn(i + 1));
  const res = await sender.snapshot(table);
  t.is(res.entries, 100);
  t.is(res.messages, 3);
  const msgs = received();
  t.deepEqual(msgs.map((m) => m.kind), ['update', 'snapshot', 'snapshot', 'snapshot', 'snapshot-end']);
  t.deepEqual(msgs.at(-1)!.totals, { messages: 3, entries: 100 });
  t.deepEqual(msgs.filter((m) => m.kind === 'snapshot').flatMap((m) => m.entries), table.map(normalizeEntry));
  t.is(transport.sent.length, 5);
});

test('snapshot requests: the hook supplies the table, the answer goes to the requester only', async (t) => {
  const table = [conn(1), conn(2)];
  const asked: unknown[] = [];
  const { transport, sender, received } = setup({
    onSnapshotRequest: (req) => {
      asked.push(req.from);
      return table;
    },
  });
  const res = await sender.handleSnapshotRequest({ from: { address: '127.0.0.9', port: 9999 }, bootId: 42n, seq: 5n });
  t.is(res?.entries, 2);
  t.deepEqual(asked, [{ address: '127.0.0.9', port: 9999 }]);
  t.true(transport.sent.every((s) => s.address === '127.0.0.9' && s.port === 9999));
  t.deepEqual(received().map((m) => m.kind), ['snapshot-ack', 'snapshot', 'snapshot-end']);
  t.deepEqual(received()[0]!.echo, { bootId: 42n, seq: 5n }, 'the ack echoes the request: the requester\'s proof of freshness');
  // Concurrent requests from the same requester are coalesced.
  const [a, b] = await Promise.all([
    sender.handleSnapshotRequest({ from: { address: '127.0.0.9', port: 9999 }, bootId: 42n, seq: 5n }),
    sender.handleSnapshotRequest({ from: { address: '127.0.0.9', port: 9999 }, bootId: 42n, seq: 5n }),
  ]);
  t.truthy(a);
  t.is(b, undefined);
  t.is(sender.counters.snapshotRequestsIgnored, 1);
});

test('without a hook a snapshot request is ignored and counted', async (t) => {
  const { transport, sender } = setup();
  t.is(await sender.handleSnapshotRequest({ from: { address: '127.0.0.9', port: 1 }, bootId: 1n, seq: 1n }), undefined);
  t.is(sender.counters.snapshotRequestsIgnored, 1);
  t.is(transport.sent.length, 0);
});

test('close flushes, is idempotent, and later entries are dropped and counted', async (t) => {
  const { clock, transport, sender } = setup();
  sender.enqueue(conn(1));
  const c1 = sender.close();
  const c2 = sender.close();
  t.is(c1, c2);
  await c1;
  await sender.close();
  t.is(transport.closed, 1);
  t.is(transport.sent.length, 1);
  sender.enqueue([conn(2), conn(3)]);
  clock.advance(500);
  await tick();
  t.is(transport.sent.length, 1);
  t.is(sender.counters.droppedAfterClose, 2);
  await t.throwsAsync(sender.snapshot([conn(4)]), { code: 'E_CLOSED' } as never);
});

test('an invalid entry throws and does not disturb the batch', async (t) => {
  const { sender, received } = setup();
  sender.enqueue(conn(1));
  t.throws(() => sender.enqueue({ ...conn(2), family: 6 } as SyncEntry), { instanceOf: RangeError });
  await sender.flush();
  const d = received();
  t.is(d.length, 1);
  t.deepEqual(d[0]!.entries, [normalizeEntry(conn(1))]);
  t.true(decode(Buffer.alloc(0), 5).ok === false);
});
