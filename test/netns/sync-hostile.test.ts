// Hostile sync traffic on the directors' segment: an attacker joins the sync group, captures the
// master's genuine messages and sends forged (wrong key), replayed (captured, from its own address)
// and garbled (captured, one byte flipped; random bytes) datagrams to the group. The backup drops
// and counts each; its table is unchanged, and after a failover the clients keep their servers.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, waitFor } from '../lib/netns.js';
import { prepareDrRealServer } from '../lib/nft-lab.js';
import { startDirector, directorToml, type Director } from '../lib/daemon.js';
import { httpGet, startNginx } from '../lib/servers.js';
import { httpBatch } from '../lib/clients.js';

const VIP = '10.77.0.50';
const KEY = 'sync-hostile-test-key';
const DIST_SRC = join(dirname(fileURLToPath(import.meta.url)), '../../src');

const SERVICE = (kind: 'PROXY' | 'DR') => `[[virtual_server]]
address = "${VIP}"
port = 80
lb_kind = "${kind}"
protocol = "TCP"
lb_algo = "rr"
persistence_timeout = 300
drain_timeout = 0
[[virtual_server.real_server]]
address = "10.77.0.21"
port = 80
[[virtual_server.real_server]]
address = "10.77.0.22"
port = 80
[sync]
interface = "eth0"
instance = "VI_1"
auth_key = "${KEY}"
`;

/**
 * Attacker: joins 224.0.0.81 on eth0, prints "captured" after `want` genuine datagrams, then on
 * the trigger file (argv[1]) appears sends forged x5, replayed x5 (each captured one again), garbled x5, junk x5.
 */
const ATTACKER = `
const dgram = require('node:dgram');
(async () => {
  const { encode } = await import('${DIST_SRC}/sync/codec.js');
  const { SyncAuth } = await import('${DIST_SRC}/sync/auth.js');
  const captured = [];
  const rx = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  rx.on('message', (m) => { if (captured.length < 5) { captured.push(Buffer.from(m)); if (captured.length === 5) console.log('captured'); } });
  rx.bind(8848, () => { rx.addMembership('224.0.0.81', '10.77.0.66'); console.log('listening'); });
  const tx = dgram.createSocket('udp4');
  tx.bind(0, '10.77.0.66', () => tx.setMulticastInterface('10.77.0.66'));
  const send = (b) => new Promise((r) => tx.send(b, 8848, '224.0.0.81', r));
  const iv = setInterval(async () => {
    if (!require('node:fs').existsSync(process.argv[1])) return;
    clearInterval(iv);
    const evil = (i) => ({ kind: 'template', family: 4, protocol: 'tcp', client: { address: '10.77.0.' + (120 + i), port: 0 },
      virtual: { address: '${VIP}', port: 80 }, real: { address: '10.77.0.99', port: 80 }, timeoutSec: 3000 });
    const wrong = new SyncAuth(Buffer.from('not the key'));
    for (let i = 0; i < 5; i++) await send(wrong.seal(encode([evil(i), evil(i + 5)], 51)[0]));
    for (const c of captured) await send(c);
    for (const c of captured) { const g = Buffer.from(c); g[8 + 24] ^= 0x5a; await send(g); }
    for (let i = 0; i < 5; i++) await send(require('node:crypto').randomBytes(20 + i * 37));
    console.log('attack sent');
  }, 20);
})();`;

async function hostile(t: ExecutionContext, kind: 'PROXY' | 'DR'): Promise<void> {
  const lab = await createLab(t);
  const [client, r1, r2, a, b, ev] = await Promise.all([
    lab.addHost('cl', { ipv4: '10.77.0.100/24' }), lab.addHost('r1', { ipv4: '10.77.0.21/24' }), lab.addHost('r2', { ipv4: '10.77.0.22/24' }),
    lab.addHost('da', { ipv4: '10.77.0.11/24' }), lab.addHost('db', { ipv4: '10.77.0.12/24' }), lab.addHost('ev', { ipv4: '10.77.0.66/24' }),
  ]);
  // DR: the real servers hold the VIP on lo and do not answer ARP for it.
  if (kind === 'DR') for (const r of [r1, r2]) await prepareDrRealServer(r, VIP);
  await startNginx(r1, { port: 80, body: 'r1', tmpDir: lab.tmpDir });
  await startNginx(r2, { port: 80, body: 'r2', tmpDir: lab.tmpDir });
  const clients = Array.from({ length: 10 }, (_, i) => `10.77.0.${120 + i}`);
  for (const src of clients) await client.exec(['ip', 'addr', 'add', `${src}/24`, 'dev', 'eth0']);
  const metricsAt = (h: typeof a) => `${h.name === 'da' ? '10.77.0.11' : '10.77.0.12'}:9650`;
  const start = (h: typeof a, prio: number) => startDirector(lab, h, directorToml({ routerId: h.name, priority: prio, vips: [`${VIP}/24`], garpDelay: 0, extra: SERVICE(kind) })
    .replace('metrics_listen = ""', `metrics_listen = "${metricsAt(h)}"`));
  const master = async (d: Director) => {
    await waitFor(async () => (await d.instance()).state === 'MASTER', 10_000, `${d.host.name} MASTER`);
    await waitFor(async () => (await d.status()).virtual_servers.every((v) => v.serving), 5_000, `${d.host.name} serving`);
  };
  const da = await start(a, 150);
  await master(da);
  const db = await start(b, 100);
  await waitFor(async () => (await db.status()).sync?.snapshots_received === 1, 5_000, 'db synced');
  const trigger = join(lab.tmpDir, 'attack-now');
  const attacker = ev.spawn([process.execPath, '-e', ATTACKER, trigger]);
  await attacker.waitForOutput(/listening/, 5_000);

  const before = new Map<string, string>();
  for (const src of clients) {
    const r = await httpBatch(client, VIP, 80, 1, { localAddress: src });
    before.set(src, Object.keys(r.bodies)[0]!);
  }
  await attacker.waitForOutput(/captured/, 5_000);
  await waitFor(async () => {
    const tb = (await db.status()).sync?.table;
    return tb?.templates === 10 && tb.conns === 0;
    // DR: a connection's end is its entry expiring from the kernel table (10 s after FIN) and the next poll.
  }, kind === 'DR' ? 20_000 : 3_000, 'db has 10 templates and every connection\'s end');
  const s0 = (await db.status()).sync!;

  writeFileSync(trigger, 'go');
  await attacker.waitForOutput(/attack sent/, 5_000);
  const sum = (d: Record<string, number>) => Object.values(d).reduce((x, y) => x + y, 0);
  await waitFor(async () => sum((await db.status()).sync!.received.dropped) - sum(s0.received.dropped) >= 20, 3_000, 'db counted 20 drops');
  const s1 = (await db.status()).sync!;
  const delta = Object.fromEntries(Object.entries(s1.received.dropped).map(([k, v]) => [k, v - (s0.received.dropped[k] ?? 0)]));
  t.log(`drops on the backup: ${JSON.stringify(delta)}`);
  t.is(delta.bad_hmac, 5 + 5, 'forged (wrong key) and garbled (byte flipped) fail the HMAC');
  t.is(delta.replayed, 5, 'captured genuine messages re-sent from the attacker are replays');
  t.is((delta.too_short ?? 0) + (delta.bad_version ?? 0) + (delta.malformed ?? 0) + (delta.foreign_sync_id ?? 0), 5, 'random bytes');
  t.deepEqual(s1.table, s0.table, 'table unchanged');
  t.is(s1.received.entries, s0.received.entries, 'no entry accepted from the attack');
  // /metrics says the same: rejects by reason and entries held.
  const metrics = (await httpGet(b, metricsAt(b).split(':')[0]!, 9650, '/metrics')).body;
  const sample = (name: string) => Number(new RegExp(`^keepalive_ts_${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
  for (const [reason, n] of Object.entries(s1.received.dropped)) if (n > 0) t.is(sample(`sync_rejected_total\\{reason="${reason}"\\}`), n, `sync_rejected_total{reason="${reason}"}`);
  t.is(sample('sync_entries'), s1.table.templates + s1.table.udp_flows + s1.table.conns, 'sync_entries');
  // The master counts them too (it listens on the group as well) and its table is its own.
  t.true(sum((await da.status()).sync!.received.dropped) >= 20);

  // Proof by failover: the forged templates (all clients -> 10.77.0.99) were not taken.
  await Promise.all([da.proc.kill('SIGKILL'), a.linkDown()]);
  await master(db);
  for (const src of [...clients].reverse()) {
    const r = await httpBatch(client, VIP, 80, 1, { localAddress: src });
    t.deepEqual(r.bodies, { [before.get(src)!]: 1 }, `${src} keeps its server`);
  }
  await attacker.kill();
}

netnsTest('forged, replayed and garbled sync datagrams change nothing and are counted', async (t) => {
  await hostile(t, 'PROXY');
});

netnsTest('kernel path (lb_kind DR): forged, replayed and garbled sync datagrams change nothing and are counted; the clients keep their servers after a failover', async (t) => {
  await hostile(t, 'DR');
});
