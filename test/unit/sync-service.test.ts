// SyncService over loopback UDP (unicast-peer mode; no root): role changes, event -> table,
// promotion restores into the data plane, snapshots on (re)join, hostile datagrams counted.
import test from 'ava';
import { createSocket } from 'node:dgram';
import type { SyncConfig } from '../../src/config/types.js';
import type { DataPlaneEvent, DataPlaneSnapshot, RestoreEntry } from '../../src/lvs/dataplane/index.js';
import { ReplayGuard, SyncAuth } from '../../src/sync/auth.js';
import { encode } from '../../src/sync/codec.js';
import { SyncService, entryFromEvent } from '../../src/sync/service.js';
import { LOAD_SLACK_MS } from '../lib/timing.js';

const KEY = 'sync-service-test-key';

class FakeDataPlane {
  listeners: Array<(ev: readonly DataPlaneEvent[]) => void> = [];
  restored: RestoreEntry[][] = [];
  table: DataPlaneSnapshot = { templates: [], udpFlows: [], conns: [] };
  onEvent(cb: (ev: readonly DataPlaneEvent[]) => void): () => void {
    this.listeners.push(cb);
    return () => { this.listeners = this.listeners.filter((l) => l !== cb); };
  }
  async restore(entries: readonly RestoreEntry[]): Promise<void> { this.restored.push([...entries]); }
  async snapshot(): Promise<DataPlaneSnapshot> { return this.table; }
  emit(events: DataPlaneEvent[]): void { for (const l of this.listeners) l(events); }
}

async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const config = (key = KEY): SyncConfig => ({ interface: 'lo', instance: 'VI_1', group: '224.0.0.81', port: 8848, ttl: 1, sync_id: 9, auth_key: key, unicast_peer: ['127.0.0.1'] });

async function pair(opts: { keyB?: string } = {}) {
  const [pa, pb] = [await freePort(), await freePort()];
  const mk = (dp: FakeDataPlane, own: number, peer: number, key?: string) =>
    SyncService.open({
      config: config(key),
      dataPlane: dp,
      virtualServers: [{ protocol: 'TCP', address: '10.0.0.50', port: 80, real_server: [{ address: '10.0.0.21', port: 80 } as never] }],
      sender: { targets: [{ address: '127.0.0.1', port: peer }], bindAddress: '127.0.0.1' },
      receiver: { port: own, bindAddress: '127.0.0.1', requestTargets: [{ address: '127.0.0.1', port: peer }] },
      snapshotRetryMs: 200,
    });
  const dpA = new FakeDataPlane();
  const dpB = new FakeDataPlane();
  const a = await mk(dpA, pa, pb);
  const b = await mk(dpB, pb, pa, opts.keyB);
  return { a, b, dpA, dpB, pa, pb, close: () => Promise.all([a.close(), b.close()]) };
}

const tplEv = (client: string, destId = '10.0.0.21:80'): DataPlaneEvent => ({ type: 'template', vs: 'tcp/10.0.0.50:80', client, family: 4, destId, expiresInMs: 60_000 });
const flowEv = (port: number, destId = '10.0.0.22:53'): DataPlaneEvent => ({ type: 'udp_flow_new', service: 'udp/10.0.0.50:53', client: '10.0.0.100', clientPort: port, destId, timeoutMs: 300_000 });

test('event mapping: sorry server and junk ids are not synced', (t) => {
  t.is(entryFromEvent(tplEv('10.1.0.1', 'sorry:10.0.0.30:8080')), null);
  t.like(entryFromEvent(tplEv('10.1.0.1')), { kind: 'template', protocol: 'tcp', virtual: { address: '10.0.0.50', port: 80 }, real: { address: '10.0.0.21', port: 80 }, timeoutSec: 60 });
  t.like(entryFromEvent({ type: 'conn_end', protocol: 'tcp', service: 'tcp/2001:db8::1:443', client: '2001:db8::9', clientPort: 4000, destId: '[2001:db8::21]:443', inBytes: 1, outBytes: 1 }),
    { kind: 'conn', family: 6, ended: true, virtual: { address: '2001:db8::1', port: 443 }, real: { address: '2001:db8::21', port: 443 } });
});

test('master events reach the backup table; promotion restores templates and flows; demotion asks for a snapshot', async (t) => {
  const p = await pair();
  try {
    await p.a.setMaster(true);
    t.is(p.a.role, 'master');
    // B asked for a snapshot when it started (A was not master yet: ignored); the retry gets one.
    await waitFor(() => p.b.status().snapshots_received === 1);
    p.dpA.emit([tplEv('10.1.0.1'), tplEv('10.1.0.2'), flowEv(5000),
      { type: 'conn_new', protocol: 'tcp', service: 'tcp/10.0.0.50:80', client: '10.1.0.1', clientPort: 4000, destId: '10.0.0.21:80' }]);
    await waitFor(() => p.b.table.size === 4);
    t.deepEqual(p.b.status().table, { templates: 2, udp_flows: 1, conns: 1 });
    p.dpA.emit([{ type: 'conn_end', protocol: 'tcp', service: 'tcp/10.0.0.50:80', client: '10.1.0.1', clientPort: 4000, destId: '10.0.0.21:80', inBytes: 1, outBytes: 2 },
      { type: 'udp_flow_expired', service: 'udp/10.0.0.50:53', client: '10.0.0.100', clientPort: 5000, destId: '10.0.0.22:53' }]);
    await waitFor(() => p.b.table.size === 2);
    // B takes over (A "crashed"): its templates go to the data plane, with the data plane's ids.
    const restored = p.b.setMaster(true);
    t.is(p.dpB.restored.length, 1, 'restore posted synchronously, before setMaster resolves');
    await restored;
    const r = p.dpB.restored[0]!.sort((x, y) => (x.type === 'template' && y.type === 'template' ? x.client.localeCompare(y.client) : 0));
    t.is(r.length, 2);
    t.like(r[0], { type: 'template', vs: 'tcp/10.0.0.50:80', client: '10.1.0.1', destId: '10.0.0.21:80', family: 4 });
    t.true((r[0] as { expiresInMs: number }).expiresInMs > 55_000);
    // A comes back as backup: asks B for a snapshot, B answers from its data plane.
    await p.a.setMaster(false);
    p.dpB.table = { templates: [{ type: 'template', vs: 'tcp/10.0.0.50:80', client: '10.1.0.7', family: 4, destId: '10.0.0.21:80', expiresInMs: 30_000 }],
      udpFlows: [{ type: 'udp_flow', service: 'udp/10.0.0.50:53', client: '10.0.0.100', clientPort: 6000, destId: '10.0.0.22:53', expiresInMs: 100_000 }], conns: [] };
    await waitFor(() => p.a.status().snapshots_received >= 1);
    // A's table: B's data plane + the two restored-but-unused templates.
    t.deepEqual(p.a.status().table, { templates: 3, udp_flows: 1, conns: 0 });
    t.is(p.b.status().sent.snapshots, 1);
    // In-process: a few ms; the bound leaves room for a loaded machine (test/lib/timing.ts).
    t.true(p.a.status().last_snapshot_ms! < 1000 + LOAD_SLACK_MS, `snapshot took ${p.a.status().last_snapshot_ms} ms`);
  } finally {
    await p.close();
  }
});

test('a fresh backup gets the master table as a snapshot; a backup ignores snapshot requests', async (t) => {
  const [pa, pb] = [await freePort(), await freePort()];
  const dpA = new FakeDataPlane();
  dpA.table = { templates: Array.from({ length: 500 }, (_, i) => ({ type: 'template' as const, vs: 'tcp/10.0.0.50:80', client: `10.2.${i >> 8}.${i & 255}`, family: 4 as const, destId: '10.0.0.21:80', expiresInMs: 60_000 })), udpFlows: [], conns: [] };
  const common = { config: config(), snapshotRetryMs: 200 };
  const a = await SyncService.open({ ...common, dataPlane: dpA, sender: { targets: [{ address: '127.0.0.1', port: pb }], bindAddress: '127.0.0.1' }, receiver: { port: pa, bindAddress: '127.0.0.1', requestTargets: [{ address: '127.0.0.1', port: pb }] } });
  try {
    await a.setMaster(true);
    const b = await SyncService.open({ ...common, dataPlane: new FakeDataPlane(), sender: { targets: [{ address: '127.0.0.1', port: pa }], bindAddress: '127.0.0.1' }, receiver: { port: pb, bindAddress: '127.0.0.1', requestTargets: [{ address: '127.0.0.1', port: pa }] } });
    try {
      await waitFor(() => b.status().snapshots_received === 1);
      t.is(b.table.size, 500);
      t.is(a.status().sent.snapshot_requests, 1);
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
});

test('forged, replayed and garbled datagrams change nothing and are counted', async (t) => {
  const p = await pair();
  try {
    await p.a.setMaster(true);
    await waitFor(() => p.b.status().snapshots_received === 1);
    p.dpA.emit([tplEv('10.1.0.1')]);
    await waitFor(() => p.b.table.size === 1);
    const before = JSON.stringify([...p.b.table.live()].map((l) => l.entry));
    const sock = createSocket('udp4');
    const send = (buf: Buffer) => new Promise<void>((r) => sock.send(buf, p.pb, '127.0.0.1', () => r()));
    const evil = { kind: 'template' as const, family: 4 as const, protocol: 'tcp' as const, client: { address: '10.1.0.1', port: 0 }, virtual: { address: '10.0.0.50', port: 80 }, real: { address: '10.0.0.99', port: 80 }, timeoutSec: 999 };
    // forged: right format, wrong key
    const forged = new SyncAuth(Buffer.from('wrong key')).seal(encode([evil], 9)[0]!);
    await send(forged);
    // replayed: a genuine message sent twice
    const genuine = new SyncAuth(Buffer.from(KEY)).seal(encode([{ ...evil, client: { address: '10.1.0.9', port: 0 } }], 9)[0]!);
    await send(genuine);
    await send(genuine);
    // garbled: a genuine message with one byte flipped, and random bytes
    const garbled = Buffer.from(new SyncAuth(Buffer.from(KEY)).seal(encode([evil], 9)[0]!));
    garbled[30] ^= 0xff;
    await send(garbled);
    await send(Buffer.from('definitely not a sync message'));
    await waitFor(() => Object.values(p.b.status().received.dropped).reduce((x, y) => x + y, 0) >= 4);
    const d = p.b.status().received.dropped;
    t.is(d.bad_hmac, 2, 'forged + garbled');
    t.is(d.replayed, 1);
    t.true(d.bad_version + d.too_short + d.malformed >= 1, JSON.stringify(d));
    // The genuine one (first copy) was applied; the forged template for 10.1.0.1 was not.
    t.is(p.b.table.get(evil)?.entry.real.address, '10.0.0.21');
    t.true(JSON.parse(before).length === 1);
    sock.close();
  } finally {
    await p.close();
  }
});

test('replay guard: a captured message re-sent from another address is still a replay', (t) => {
  const g = new ReplayGuard();
  t.true(g.accept('10.0.0.11', 1000n, 1n));
  t.true(g.accept('10.0.0.11', 1000n, 2n));
  t.false(g.accept('10.0.0.66', 1000n, 2n), 'same boot id and sequence from the attacker');
  t.false(g.accept('10.0.0.66', 1000n, 1n));
  t.true(g.accept('10.0.0.11', 1000n, 3n));
  t.true(g.accept('10.0.0.12', 2000n, 1n), 'another director (own boot id) is unaffected');
});
