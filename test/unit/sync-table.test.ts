// SyncTable: the backup's synced connection table (pure, injected clock).
import test from 'ava';
import { SyncTable, entryKey } from '../../src/sync/table.js';
import { type NormalizedEntry, type SyncEntry, normalizeEntry } from '../../src/sync/types.js';

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const tpl = (client: string, real: string, timeoutSec = 60, ended = false): NormalizedEntry =>
  normalizeEntry({
    kind: 'template', family: 4, protocol: 'tcp',
    client: { address: client, port: 0 }, virtual: { address: '10.0.0.50', port: 80 },
    real: { address: real, port: 80 }, timeoutSec, ended,
  });
const flow = (port: number, real: string, timeoutSec = 300, ended = false): NormalizedEntry =>
  normalizeEntry({
    kind: 'udp-flow', family: 4,
    client: { address: '10.0.0.100', port }, virtual: { address: '10.0.0.50', port: 53 },
    real: { address: real, port: 53 }, timeoutSec, ended,
  });
const conn = (port: number, real: string, ended = false): NormalizedEntry =>
  normalizeEntry({
    kind: 'conn', family: 4, protocol: 'tcp', state: ended ? 'CLOSE' : 'ESTABLISHED',
    client: { address: '10.0.0.100', port }, virtual: { address: '10.0.0.50', port: 80 },
    real: { address: real, port: 80 }, timeoutSec: ended ? 0 : 900, ended,
  });

test('entries get absolute expiries, are refreshed, and expire', (t) => {
  const c = clock();
  const table = new SyncTable({ now: c.now });
  table.apply([tpl('10.1.0.1', '10.0.0.21', 10), flow(5000, '10.0.0.22', 5)]);
  t.deepEqual(table.sizes(), { templates: 1, udpFlows: 1, conns: 0 });
  t.is(table.get(tpl('10.1.0.1', 'x'))?.expiresAt, c.now() + 10_000, 'keyed by service+client, not real server');
  c.advance(6_000);
  t.is(table.get(flow(5000, 'x')), undefined, 'expired flow no longer visible');
  t.is(table.sweep(), 1);
  // Refresh: the template is sent again (and re-bound to another server by the master).
  table.apply([tpl('10.1.0.1', '10.0.0.22', 10)]);
  t.is(table.get(tpl('10.1.0.1', 'x'))?.entry.real.address, '10.0.0.22');
  t.is(table.counters.updated, 1);
  c.advance(9_000);
  t.is(table.sweep(), 0, 'the refresh moved the expiry');
  c.advance(1_000);
  t.is(table.sweep(), 1);
  t.is(table.size, 0);
  t.is(table.counters.expired, 2);
});

test('ended entries are removed at once; timeout 0 uses the default', (t) => {
  const c = clock();
  const table = new SyncTable({ now: c.now, defaults: { connMs: 5_000 } });
  table.apply([conn(1, '10.0.0.21'), conn(2, '10.0.0.21'), conn(3, '10.0.0.22')]);
  t.deepEqual(Object.fromEntries(table.connCounts()), { '10.0.0.21|80': { active: 2, inactive: 0 }, '10.0.0.22|80': { active: 1, inactive: 0 } });
  table.apply([conn(2, '10.0.0.21', true), conn(99, '10.0.0.21', true)]);
  t.is(table.counters.ended, 1, 'ending an unknown entry is a no-op');
  t.is(table.sizes().conns, 2);
  const zero = normalizeEntry({ ...flow(7, '10.0.0.21'), timeoutSec: 0 } as SyncEntry);
  table.apply([zero]);
  t.is(table.get(zero)?.expiresAt, c.now() + 300_000);
});

test('a complete snapshot sweeps what the master no longer has; an incomplete one sweeps nothing', (t) => {
  const c = clock();
  const table = new SyncTable({ now: c.now });
  table.apply([tpl('10.1.0.1', '10.0.0.21'), tpl('10.1.0.2', '10.0.0.21'), flow(1, '10.0.0.21')]);
  // Incomplete: 1 of 2 announced entries arrived.
  table.apply([tpl('10.1.0.1', '10.0.0.21')], true);
  t.true(table.snapshotInProgress);
  t.deepEqual(table.endSnapshot({ entries: 2 }), { complete: false, swept: 0 });
  t.is(table.size, 3);
  // Complete: the master has 10.1.0.1 and a new flow; an update interleaves with the snapshot.
  table.apply([tpl('10.1.0.1', '10.0.0.21')], true);
  table.apply([flow(2, '10.0.0.22')]);
  table.apply([flow(3, '10.0.0.22')], true);
  t.deepEqual(table.endSnapshot({ entries: 2 }), { complete: true, swept: 2 });
  t.deepEqual([...table.live()].map((l) => entryKey(l.entry)).sort(), [flow(2, 'x'), flow(3, 'x'), tpl('10.1.0.1', 'x')].map(entryKey).sort());
  // An empty snapshot (only the end) means the master has nothing.
  t.deepEqual(table.endSnapshot({ entries: 0 }), { complete: true, swept: 3 });
  t.is(table.size, 0);
  t.is(table.counters.snapshotsComplete, 2);
  t.is(table.counters.snapshotsIncomplete, 1);
});

test('bounded: new entries beyond maxEntries are refused and counted, updates still apply', (t) => {
  const c = clock();
  const table = new SyncTable({ now: c.now, maxEntries: 2 });
  table.apply([flow(1, 'a'), flow(2, 'a'), flow(3, 'a')].map((e) => normalizeEntry({ ...e, real: { address: '10.0.0.21', port: 53 } })));
  t.is(table.size, 2);
  t.is(table.counters.overflow, 1);
  table.apply([flow(1, '10.0.0.22')]);
  t.is(table.get(flow(1, 'x'))?.entry.real.address, '10.0.0.22');
});

test('live() reports the remaining lifetime', (t) => {
  const c = clock();
  const table = new SyncTable({ now: c.now });
  table.apply([tpl('10.1.0.1', '10.0.0.21', 30)]);
  c.advance(12_345);
  t.deepEqual([...table.live()].map((l) => l.remainingMs), [17_655]);
});
