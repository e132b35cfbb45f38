// SyncService over loopback UDP (unicast-peer mode; no root): role changes, event -> table,
// promotion restores into the data plane, snapshots on (re)join, hostile datagrams counted.
import test from 'ava';
import { createSocket } from 'node:dgram';
import type { SyncConfig } from '../../src/config/types.js';
import type { ConnectionEvent, ConnectionSnapshot, RestoreEntry } from '../../src/lvs/dataplane/contract.js';
import { addrMatch, endpoint, serviceKey, type ServiceMatch } from '../../src/util/endpoint.js';
import { ReplayGuard, SyncAuth } from '../../src/sync/auth.js';
import { encode } from '../../src/sync/codec.js';
import { decode } from '../../src/sync/codec.js';
import { ServiceIndex, SyncService } from '../../src/sync/service.js';
import { parseConfig } from '../../src/config/index.js';
import { SyncTable } from '../../src/sync/table.js';
import { monotonicMs } from '../../src/util/clock.js';
import { LOAD_SLACK_MS } from '../lib/timing.js';

const KEY = 'sync-service-test-key';

class FakeDataPlane {
  listeners: Array<(ev: readonly ConnectionEvent[]) => void> = [];
  restored: RestoreEntry[][] = [];
  table: ConnectionSnapshot = { templates: [], udpFlows: [], conns: [] };
  onEvent(cb: (ev: readonly ConnectionEvent[]) => void): () => void {
    this.listeners.push(cb);
    return () => { this.listeners = this.listeners.filter((l) => l !== cb); };
  }
  async restore(entries: readonly RestoreEntry[]): Promise<void> { this.restored.push([...entries]); }
  async snapshot(): Promise<ConnectionSnapshot> { return this.table; }
  emit(events: ConnectionEvent[]): void { for (const l of this.listeners) l(events); }
}

const svc = (m: ServiceMatch) => ({ key: serviceKey(m), match: m });
const WEB = svc(addrMatch('tcp', '10.0.0.50', 80));
const DNS = svc(addrMatch('udp', '10.0.0.50', 53));
const FTP = svc({ kind: 'addr', protocol: 'tcp', address: '10.0.0.50', family: 4, ports: [{ from: 21, to: 21 }, { from: 10000, to: 20000 }] });
const FWM = svc({ kind: 'fwmark', mark: 7, family: 4 });
const WEB6 = svc(addrMatch('tcp', '2001:db8::1', 443));
const SERVICES = [WEB, DNS, FTP, FWM, WEB6];

async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

// Generous: only a failing test waits it out (three timed out at 3 s in a loaded full-suite run).
async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
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
      virtualServers: SERVICES,
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

const RS1 = endpoint('10.0.0.21', 80);
const tplEv = (client: string, dest = RS1): ConnectionEvent => ({ type: 'template', service: WEB.key, client, family: 4, dest, expiresInMs: 60_000 });
const flowEv = (port: number, dest = endpoint('10.0.0.22', 53)): ConnectionEvent =>
  ({ type: 'udp_flow_new', service: DNS.key, protocol: 'udp', client: endpoint('10.0.0.100', port), virtual: endpoint('10.0.0.50', 53), dest, timeoutMs: 300_000 });
const connEv = (type: 'conn_new' | 'conn_end', port = 4000): ConnectionEvent => ({
  type, service: WEB.key, protocol: 'tcp', client: endpoint('10.1.0.1', port), virtual: endpoint('10.0.0.50', 80), dest: RS1, ...(type === 'conn_end' ? { inBytes: 1, outBytes: 2 } : {}),
} as ConnectionEvent);

test('service index: events become wire entries from the configured services, and entries find their service again', (t) => {
  const ix = new ServiceIndex(SERVICES);
  // a template of an unconfigured service cannot be named on the wire: not synced
  t.is(ix.entryFromEvent({ ...tplEv('10.1.0.1'), service: serviceKey(addrMatch('tcp', '10.0.0.99', 80)) } as ConnectionEvent), null);
  const web = ix.entryFromEvent(tplEv('10.1.0.1'));
  t.like(web, { kind: 'template', protocol: 'tcp', virtual: { address: '10.0.0.50', port: 80 }, real: { address: '10.0.0.21', port: 80 }, timeoutSec: 60 });
  // port set: the template covers all ports (virtual port 0); fwmark: protocol any + the mark
  const ftp = ix.entryFromEvent({ type: 'template', service: FTP.key, client: '10.1.0.0', family: 4, dest: endpoint('10.0.0.21', 0), expiresInMs: 900_000 });
  t.like(ftp, { kind: 'template', protocol: 'tcp', virtual: { address: '10.0.0.50', port: 0 }, real: { address: '10.0.0.21', port: 0 } });
  const fwm = ix.entryFromEvent({ type: 'template', service: FWM.key, client: '10.1.0.0', family: 4, dest: endpoint('10.0.0.21', 0), expiresInMs: 1000 });
  t.like(fwm, { kind: 'template', protocol: 'any', virtual: { address: '0.0.0.0', port: 0 }, fwmark: 7 });
  t.like(ix.entryFromEvent({ type: 'conn_end', service: WEB6.key, protocol: 'tcp', client: endpoint('2001:db8::9', 4000), virtual: endpoint('2001:db8::1', 443), dest: endpoint('2001:db8::21', 443), inBytes: 1, outBytes: 1 }),
    { kind: 'conn', family: 6, ended: true, virtual: { address: '2001:db8::1', port: 443 }, real: { address: '2001:db8::21', port: 443 } });
  // back: through the codec and the table, each entry names its service again
  const table = new SyncTable({ now: () => 0 });
  const flow = ix.entryFromEvent({ type: 'udp_flow_new', service: DNS.key, protocol: 'udp', client: endpoint('10.0.0.100', 5000), virtual: endpoint('10.0.0.50', 53), dest: endpoint('10.0.0.22', 53), timeoutMs: 300_000 });
  const [msg] = encode([web!, ftp!, fwm!, flow!], 1);
  const r = decode(msg!, 1);
  if (!r.ok) return t.fail('decode');
  table.apply(r.entries, false);
  const restored = [...table.live()].map((le) => ix.restoreEntry(le));
  t.deepEqual(restored.map((x) => x?.service).sort(), [DNS.key, FTP.key, FWM.key, WEB.key].sort());
  t.like(restored.find((x) => x?.service === FTP.key), { type: 'template', client: '10.1.0.0', dest: endpoint('10.0.0.21', 0) });
  t.like(restored.find((x) => x?.service === DNS.key), { type: 'udp_flow', client: endpoint('10.0.0.100', 5000), virtual: endpoint('10.0.0.50', 53), dest: endpoint('10.0.0.22', 53) });
  // a connection to one port of the port set belongs to the port-set service
  t.is(ix.keyOf('tcp', { address: '10.0.0.50', port: 10001 }, 0, 4), FTP.key);
  t.is(ix.keyOf('tcp', { address: '10.0.0.50', port: 22 }, 0, 4), serviceKey(addrMatch('tcp', '10.0.0.50', 22)));
});

test('service index of a virtual_server_group: each member is a service of its own on the wire, and its entries find that member again', (t) => {
  const cfg = parseConfig('[[virtual_server_group]]\nname = "web"\nmembers = ["10.0.0.60-61:80", "fwmark:9"]\n[[virtual_server]]\ngroup = "web"\nlb_kind = "NAT"\npersistence_timeout = 60\n[[virtual_server.real_server]]\naddress = "10.0.0.21"\nport = 80\n', 'g.toml');
  const ix = new ServiceIndex(cfg.virtual_server.flatMap((vs) => vs.members));
  const [m60, m61, fw] = cfg.virtual_server[0]!.members;
  const e60 = ix.entryFromEvent({ type: 'template', service: m60!.key, client: '10.1.0.1', family: 4, dest: RS1, expiresInMs: 60_000 });
  const e61 = ix.entryFromEvent({ type: 'template', service: m61!.key, client: '10.1.0.1', family: 4, dest: RS1, expiresInMs: 60_000 });
  const efw = ix.entryFromEvent({ type: 'template', service: fw!.key, client: '10.1.0.1', family: 4, dest: endpoint('10.0.0.21', 0), expiresInMs: 60_000 });
  t.like(e60, { virtual: { address: '10.0.0.60', port: 80 } });
  t.like(e61, { virtual: { address: '10.0.0.61', port: 80 } });
  t.like(efw, { protocol: 'any', fwmark: 9 });
  const table = new SyncTable({ now: () => 0 });
  const r = decode(encode([e60!, e61!, efw!], 1)[0]!, 1);
  if (!r.ok) return t.fail('decode');
  table.apply(r.entries, false);
  t.deepEqual([...table.live()].map((le) => ix.restoreEntry(le)?.service).sort(), [m60!.key, m61!.key, fw!.key].sort());
});

test('master events reach the backup table; promotion restores templates and flows; demotion asks for a snapshot', async (t) => {
  const p = await pair();
  try {
    await p.a.setMaster(true);
    t.is(p.a.role, 'master');
    // B asked for a snapshot when it started (A was not master yet: ignored); the retry gets one.
    await waitFor(() => p.b.status().snapshots_received === 1);
    p.dpA.emit([tplEv('10.1.0.1'), tplEv('10.1.0.2'), flowEv(5000), connEv('conn_new')]);
    await waitFor(() => p.b.table.size === 4);
    t.deepEqual(p.b.status().table, { templates: 2, udp_flows: 1, conns: 1 });
    p.dpA.emit([connEv('conn_end'),
      { type: 'udp_flow_expired', service: DNS.key, protocol: 'udp', client: endpoint('10.0.0.100', 5000), virtual: endpoint('10.0.0.50', 53), dest: endpoint('10.0.0.22', 53) }]);
    await waitFor(() => p.b.table.size === 2);
    // B takes over (A "crashed"): its templates go to the data plane, with the data plane's ids.
    const restored = p.b.setMaster(true);
    t.is(p.dpB.restored.length, 1, 'restore posted synchronously, before setMaster resolves');
    await restored;
    const r = p.dpB.restored[0]!.sort((x, y) => (x.type === 'template' && y.type === 'template' ? x.client.localeCompare(y.client) : 0));
    t.is(r.length, 2);
    t.like(r[0], { type: 'template', service: WEB.key, client: '10.1.0.1', dest: RS1, family: 4 });
    t.true((r[0] as { expiresInMs: number }).expiresInMs > 55_000);
    // A comes back as backup: asks B for a snapshot, B answers from its data plane.
    await p.a.setMaster(false);
    p.dpB.table = { templates: [{ type: 'template', service: WEB.key, client: '10.1.0.7', family: 4, dest: RS1, expiresInMs: 30_000 }],
      udpFlows: [{ type: 'udp_flow', service: DNS.key, protocol: 'udp', client: endpoint('10.0.0.100', 6000), virtual: endpoint('10.0.0.50', 53), dest: endpoint('10.0.0.22', 53), expiresInMs: 100_000 }], conns: [] };
    await waitFor(() => p.a.status().snapshots_received >= 1);
    // A's table: B's data plane + the two restored-but-unused templates.
    t.deepEqual(p.a.status().table, { templates: 3, udp_flows: 1, conns: 0 });
    t.is(p.b.status().sent.snapshots, 1);
    // In-process: a few ms; the bound leaves room for a loaded machine (test/lib/timing.ts).
    t.true(p.a.status().last_snapshot_ms! < 1000 + LOAD_SLACK_MS, `snapshot took ${p.a.status().last_snapshot_ms} ms`);
    t.true(typeof p.a.status().last_snapshot_at === 'number', 'when the last full resync completed');
  } finally {
    await p.close();
  }
});

test('a fresh backup gets the master table as a snapshot; a backup ignores snapshot requests', async (t) => {
  const [pa, pb] = [await freePort(), await freePort()];
  const dpA = new FakeDataPlane();
  dpA.table = { templates: Array.from({ length: 500 }, (_, i) => ({ type: 'template' as const, service: WEB.key, client: `10.2.${i >> 8}.${i & 255}`, family: 4 as const, dest: RS1, expiresInMs: 60_000 })), udpFlows: [], conns: [] };
  const common = { config: config(), snapshotRetryMs: 200, virtualServers: SERVICES };
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
  t.true(g.accept('10.0.0.11', 1000n, 1n, { proof: true }));
  t.true(g.accept('10.0.0.11', 1000n, 2n));
  t.false(g.accept('10.0.0.66', 1000n, 2n), 'same boot id and sequence from the attacker');
  t.false(g.accept('10.0.0.66', 1000n, 1n));
  t.true(g.accept('10.0.0.11', 1000n, 3n));
  t.true(g.accept('10.0.0.12', 2000n, 1n, { proof: true }), 'another director (own boot id) is unaffected');
});

test('lag is measured: each entry\'s age on the master, plus the echoed transit, plus the write on the backup', async (t) => {
  const p = await pair();
  try {
    await p.a.setMaster(true);
    await waitFor(() => p.b.status().snapshots_received === 1);
    // Events the data plane observed 40 ms before it delivered them (a table dump, a worker batch).
    const AGE = 40;
    for (let i = 0; i < 6; i++) {
      p.dpA.emit([{ ...connEv('conn_new', 5000 + i), observedAt: monotonicMs() - AGE }]);
      await waitFor(() => p.b.status().received.entries >= i + 1);
      await new Promise((r) => setTimeout(r, 120)); // past the backup's lag-ack interval (100 ms)
    }
    await waitFor(() => p.a.status().echo.acks_received >= 2);
    p.dpA.emit([{ ...connEv('conn_new', 6000), observedAt: monotonicMs() - AGE }, { ...connEv('conn_new', 6001), observedAt: monotonicMs() - AGE }]);
    await waitFor(() => p.b.status().lag.measured + p.b.status().lag.unmeasured === 8);
    const b = p.b.status();
    const a = p.a.status();
    t.log(`backup lag ${JSON.stringify(b.lag)}; master rtt ${a.echo.rtt_ms} ms, acks ${a.echo.acks_received}/${b.echo.acks_sent}`);
    t.true(b.lag.unmeasured >= 1, 'the first message: no echo yet, no transit estimate');
    t.is(b.lag.measured + b.lag.unmeasured, 8);
    t.true(b.lag.p50_ms! >= AGE, 'the age observed -> sent is in it');
    t.true(b.lag.p50_ms! < AGE + LOAD_SLACK_MS, `p50 ${b.lag.p50_ms} ms`);
    t.true(b.lag.last_ms! >= AGE);
    t.not(a.echo.rtt_ms, null);
    t.true(a.echo.rtt_ms! >= 0 && a.echo.rtt_ms! < LOAD_SLACK_MS);
    t.not(b.lag.transit_ms, null, 'the master sends its transit estimate once it has one');
    t.true(b.echo.acks_sent >= 2);
    t.is(a.lag.measured, 0, 'the master writes nothing');
  } finally {
    await p.close();
  }
});

test('a version-1 peer (older release) still syncs: its entries are written, counted as unmeasured, and get no lag-ack', async (t) => {
  const [pb, pOld] = [await freePort(), await freePort()];
  const old = new SyncAuth(Buffer.from(KEY), { bootId: 0x5151n });
  const replay = new ReplayGuard();
  replay.accept('127.0.0.1', old.bootId, 0n, { proof: true }); // the handshake (unchanged in version 2) done
  const raw = createSocket('udp4');
  const got: Buffer[] = [];
  raw.on('message', (m) => got.push(m));
  await new Promise<void>((r) => raw.bind(pOld, '127.0.0.1', r));
  const b = await SyncService.open({ config: config(), dataPlane: new FakeDataPlane(), virtualServers: SERVICES, snapshotRetryMs: 60_000,
    sender: { targets: [{ address: '127.0.0.1', port: pOld }], bindAddress: '127.0.0.1' },
    receiver: { port: pb, bindAddress: '127.0.0.1', requestTargets: [{ address: '127.0.0.1', port: pOld }], replay } });
  try {
    const ix = new ServiceIndex(SERVICES);
    for (let i = 0; i < 3; i++) {
      const [msg] = encode([ix.entryFromEvent(connEv('conn_new', 7000 + i))!], 9, { version: 1 });
      await new Promise<void>((r) => raw.send(old.seal(msg!), pb, '127.0.0.1', () => r()));
      await new Promise((r) => setTimeout(r, 120));
    }
    await waitFor(() => b.table.size === 3);
    const s = b.status();
    t.deepEqual(s.table, { templates: 0, udp_flows: 0, conns: 3 });
    t.is(s.lag.unmeasured, 3);
    t.is(s.lag.measured, 0);
    t.is(s.echo.acks_sent, 0);
    t.true(got.every((m) => m[5] === 1), 'what the backup sent the old peer (its snapshot-request) is version 1');
    t.true(got.every((m) => m[7] !== 5), 'no lag-ack');
  } finally {
    raw.close();
    await b.close();
  }
});
