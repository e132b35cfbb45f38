// Connection sync across a failover, end to end: two keepalive-ts directors with [sync], nginx and
// UDP echo real servers, clients in their own namespace. The master is crashed (SIGKILL + cable
// pulled); the backup takes over with the synced persistence templates and UDP flows.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, waitFor, sleep, type Lab, type LabHost } from '../lib/netns.js';
import { startDirector, directorToml, type Director } from '../lib/daemon.js';
import { httpGet, startNginx } from '../lib/servers.js';
import { httpBatch } from '../lib/clients.js';
import type { LabProcess } from '../lib/procs.js';
import { assertWithinBound } from '../lib/timing.js';

const VIP = '10.77.0.50';
const UDP_PORT = 9000;
const KEY = 'sync-failover-test-key';

const UDP_ECHO = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(process.argv[1], r.port, r.address));
s.bind(${UDP_PORT}, () => console.log('udp-echo ready'));`;

/** Sends a datagram every 10 ms from one socket for argv[2] ms; prints "<ms since start> <reply>" per reply, then "done". */
const UDP_CLIENT = `
const s = require('node:dgram').createSocket('udp4');
const t0 = Date.now(); let sent = 0;
s.on('message', (m) => process.stdout.write('R ' + (Date.now() - t0) + ' ' + m + '\\n'));
s.bind(0, () => {
  const iv = setInterval(() => { sent++; s.send('x', ${UDP_PORT}, process.argv[1]); }, 10);
  setTimeout(() => { clearInterval(iv); setTimeout(() => { console.log('done sent=' + sent); process.exit(0); }, 200); }, Number(process.argv[2]));
});`;

function services(): string {
  const rs = (addr: string, port: number) => `
[[virtual_server.real_server]]
address = "${addr}"
port = ${port}
weight = 1
`;
  return `[[virtual_server]]
address = "${VIP}"
port = 80
lb_kind = "PROXY"
protocol = "TCP"
lb_algo = "rr"
persistence_timeout = 300
drain_timeout = 0
${rs('10.77.0.21', 80)}${rs('10.77.0.22', 80)}
[[virtual_server]]
address = "${VIP}"
port = ${UDP_PORT}
lb_kind = "PROXY"
protocol = "UDP"
lb_algo = "rr"
drain_timeout = 0
${rs('10.77.0.21', UDP_PORT)}${rs('10.77.0.22', UDP_PORT)}
[sync]
interface = "eth0"
instance = "VI_1"
auth_key = "${KEY}"
`;
}

interface Farm { lab: Lab; client: LabHost; a: LabHost; b: LabHost }

async function farm(t: ExecutionContext): Promise<Farm> {
  const lab = await createLab(t);
  const [client, r1, r2, a, b] = await Promise.all([
    lab.addHost('cl', { ipv4: '10.77.0.100/24' }), lab.addHost('r1', { ipv4: '10.77.0.21/24' }), lab.addHost('r2', { ipv4: '10.77.0.22/24' }),
    lab.addHost('da', { ipv4: '10.77.0.11/24' }), lab.addHost('db', { ipv4: '10.77.0.12/24' }),
  ]);
  await startNginx(r1, { port: 80, body: 'r1', tmpDir: lab.tmpDir });
  await startNginx(r2, { port: 80, body: 'r2', tmpDir: lab.tmpDir });
  for (const [h, name] of [[r1, 'r1'], [r2, 'r2']] as const) {
    const p = h.spawn([process.execPath, '-e', UDP_ECHO, name]);
    await p.waitForOutput(/udp-echo ready/, 5_000);
  }
  return { lab, client, a, b };
}

const start = (f: Farm, host: LabHost, priority: number) =>
  startDirector(f.lab, host, directorToml({ routerId: host.name, priority, vips: [`${VIP}/24`], garpDelay: 0, extra: services() }));

async function master(d: Director): Promise<void> {
  await waitFor(async () => (await d.instance()).state === 'MASTER', 10_000, `${d.host.name} MASTER`);
  await waitFor(async () => (await d.status()).virtual_servers.every((v) => v.serving), 5_000, `${d.host.name} serving`);
}

const CLIENTS = Array.from({ length: 10 }, (_, i) => `10.77.0.${120 + i}`);

async function serverOf(f: Farm, src: string): Promise<string> {
  const r = await httpBatch(f.client, VIP, 80, 1, { localAddress: src });
  if (Object.keys(r.errors).length > 0) throw new Error(`${src}: ${JSON.stringify(r.errors)}`);
  return Object.keys(r.bodies)[0]!;
}

function udpReplies(p: LabProcess): Array<{ t: number; body: string }> {
  return [...p.output().matchAll(/^R (\d+) (\S+)$/gm)].map((m) => ({ t: Number(m[1]), body: m[2]! }));
}

netnsTest('persistent clients and a UDP flow keep their real server when the master crashes; failback too', async (t) => {
  const f = await farm(t);
  for (const src of CLIENTS) await f.client.exec(['ip', 'addr', 'add', `${src}/24`, 'dev', 'eth0']);
  const da = await start(f, f.a, 150);
  await master(da);
  const db = await start(f, f.b, 100);
  await waitFor(async () => (await db.instance()).state === 'BACKUP', 8_000, 'db BACKUP');
  await waitFor(async () => (await db.status()).sync?.snapshots_received === 1, 3_000, 'db got the initial snapshot');

  const before = new Map<string, string>();
  for (const src of CLIENTS) before.set(src, await serverOf(f, src));
  t.deepEqual(new Set(before.values()), new Set(['r1', 'r2']), 'rr spread the clients over both servers');

  const udp = f.client.spawn([process.execPath, '-e', UDP_CLIENT, VIP, '12000']);
  await waitFor(async () => udpReplies(udp).length > 20, 3_000, 'UDP replies flowing');
  const udpServer = udpReplies(udp)[0]!.body;
  await waitFor(async () => {
    const s = (await db.status()).sync!;
    return s.table.templates === 10 && s.table.udp_flows === 1;
  }, 2_000, 'db has the 10 templates and the UDP flow');
  const synced = (await db.status()).sync!;
  t.is(synced.role, 'backup');
  t.is(synced.table.conns, 0, 'the HTTP connections ended: conn_end synced');

  // Crash the master: SIGKILL and the cable pulled at the same instant.
  const crashAt = udpReplies(udp).at(-1)!.t;
  await Promise.all([da.proc.kill('SIGKILL'), f.a.linkDown()]);
  await master(db);
  const st = (await db.status()).sync!;
  t.is(st.role, 'master');
  t.is(st.promotions, 1);
  t.true(st.restored >= 11, `restored ${st.restored}`);

  // Persistent clients, queried in reverse order (rr alone would now hand out servers afresh).
  for (const src of [...CLIENTS].reverse()) t.is(await serverOf(f, src), before.get(src)!, `${src} keeps its server`);

  await udp.exited;
  const replies = udpReplies(udp);
  const servers = new Set(replies.map((r) => r.body));
  t.deepEqual([...servers], [udpServer], 'every UDP reply, before and after the failover, from one real server');
  const after = replies.filter((r) => r.t > crashAt);
  t.true(after.length > 50, `UDP flow continued after takeover (${after.length} replies)`);
  let gap = 0;
  for (let i = 1; i < replies.length; i++) gap = Math.max(gap, replies[i]!.t - replies[i - 1]!.t);
  const sent = Number(/done sent=(\d+)/.exec(udp.output())?.[1]);
  t.log(`UDP: ${replies.length}/${sent} replies, longest gap ${gap} ms (the failover window), all from ${udpServer}`);
  t.true(gap < 6_000);
  t.true(sent - replies.length <= Math.ceil(gap / 10) + 20, 'lost only the failover window');

  // Failback: da restarts (empty table), asks db for a snapshot, then preempts with the table.
  await f.a.linkUp();
  const da2 = await start(f, f.a, 150);
  await master(da2);
  await waitFor(async () => (await db.instance()).state === 'BACKUP', 5_000, 'db back to BACKUP');
  const daSync = (await da2.status()).sync!;
  t.true(daSync.restored >= 10, `da restored ${daSync.restored} on failback`);
  await waitFor(async () => (await db.status()).sync?.demotions === 1 && (await db.status()).sync!.snapshots_received >= 2, 5_000, 'demoted db became a receiver and got a snapshot');
  for (const src of CLIENTS) t.is(await serverOf(f, src), before.get(src)!, `${src} keeps its server after failback`);
});

netnsTest('a restarted backup gets the full table from a snapshot at start-up', async (t) => {
  const f = await farm(t);
  for (const src of CLIENTS) await f.client.exec(['ip', 'addr', 'add', `${src}/24`, 'dev', 'eth0']);
  const da = await start(f, f.a, 150);
  await master(da);
  for (const src of CLIENTS) await serverOf(f, src);
  let db = await start(f, f.b, 100);
  await waitFor(async () => (await db.status()).sync?.table.templates === 10, 3_000, 'db has 10 templates');
  await db.proc.kill('SIGKILL');
  const t0 = Date.now();
  db = await start(f, f.b, 100);
  await waitFor(async () => (await db.status()).sync?.table.templates === 10, 3_000, 'restarted db has 10 templates', 20);
  const s = (await db.status()).sync!;
  t.log(`restarted backup complete: snapshot ${s.last_snapshot_ms} ms after asking; ${Date.now() - t0} ms after spawn (incl. node start-up)`);
  // Nothing changed on the master since the restart: the table can only have come from the snapshot.
  t.not(s.last_snapshot_ms, null, 'the table came from a snapshot');
  assertWithinBound(t, s.last_snapshot_ms!, 1_000, 'snapshot asked -> complete');
  t.is(s.role, 'backup');
});

/**
 * A relay on the sync path that can delay it (the kernel here has no netem): listens on 8848 at its
 * own address and passes datagrams between the two directors, each after the delay (ms) read from
 * the file argv[1] (absent: 0), in both directions.
 */
const SYNC_RELAY = `
const dgram = require('node:dgram');
const fs = require('node:fs');
const [file, a, b] = process.argv.slice(1);
let delay = 0;
setInterval(() => { try { delay = Number(fs.readFileSync(file, 'utf8')) || 0; } catch { delay = 0; } }, 50);
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => {
  const to = r.address === a ? b : r.address === b ? a : null;
  if (to) setTimeout(() => s.send(m, 8848, to), delay);
});
s.bind(8848, () => console.log('relay ready'));`;

netnsTest('measured sync lag: a 50 ms delay on the sync path each way raises the lag the backup reports by about 50 ms (the echo halves the round trip)', async (t) => {
  const f = await farm(t);
  const relay = await f.lab.addHost('dl', { ipv4: '10.77.0.13/24' });
  const delayFile = join(f.lab.tmpDir, 'sync-delay');
  const rp = relay.spawn([process.execPath, '-e', SYNC_RELAY, delayFile, '10.77.0.11', '10.77.0.12']);
  await rp.waitForOutput(/relay ready/, 5_000);
  // Both directors send their sync traffic to the relay (unicast), which passes it on.
  const toml = (h: LabHost, prio: number) => directorToml({ routerId: h.name, priority: prio, vips: [`${VIP}/24`], garpDelay: 0, extra: `${services()}unicast_peer = ["10.77.0.13"]\n` })
    .replace('metrics_listen = ""', `metrics_listen = "${h === f.b ? '10.77.0.12' : '10.77.0.11'}:9650"`);
  const da = await startDirector(f.lab, f.a, toml(f.a, 150));
  await master(da);
  const db = await startDirector(f.lab, f.b, toml(f.b, 100));
  await waitFor(async () => (await db.status()).sync?.snapshots_received === 1, 5_000, 'db got the initial snapshot (through the relay)');

  /** New connections (each a conn_new and a conn_end on the master) for `ms`, sampling the backup's last lag. */
  const phase = async (ms: number, settleMs: number): Promise<{ lags: number[]; rtt: number | null }> => {
    const traffic = httpBatch(f.client, VIP, 80, Math.ceil((ms + settleMs) / 40), { pauseMs: 30 });
    await sleep(settleMs); // the round-trip estimate follows the path (median of the last 9 echoes, one per 100 ms at most)
    const lags: number[] = [];
    const end = Date.now() + ms;
    let before = (await db.status()).sync!.lag.measured;
    while (Date.now() < end) {
      await sleep(100);
      const l = (await db.status()).sync!.lag;
      if (l.measured > before && l.last_ms !== null) lags.push(l.last_ms);
      before = l.measured;
    }
    await traffic;
    return { lags, rtt: (await da.status()).sync!.echo.rtt_ms };
  };
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;

  const base = await phase(2_000, 1_000);
  writeFileSync(delayFile, '50');
  const slow = await phase(2_500, 2_000);
  const s = (await db.status()).sync!;
  t.log(`lag (last entry, sampled): direct ${med(base.lags).toFixed(1)} ms (${base.lags.length} samples), +50 ms each way ${med(slow.lags).toFixed(1)} ms (${slow.lags.length}); rtt ${base.rtt} -> ${slow.rtt} ms; window p50 ${s.lag.p50_ms} p99 ${s.lag.p99_ms} ms, ${s.lag.measured} measured, ${s.lag.unmeasured} not`);
  t.true(base.lags.length >= 5 && slow.lags.length >= 5, 'entries kept arriving');
  t.true(s.lag.measured > 20);
  t.true(s.echo.acks_sent > 5, 'the backup answered with lag-acks');
  t.true(base.rtt !== null && slow.rtt !== null);
  // Generous bounds (a shared, loaded machine): the round trip grows by the 100 ms the relay adds,
  // the reported lag by half of it.
  t.true(slow.rtt! - base.rtt! >= 80 && slow.rtt! - base.rtt! <= 250, `rtt ${base.rtt} -> ${slow.rtt} ms`);
  const rise = med(slow.lags) - med(base.lags);
  t.true(rise >= 35 && rise <= 130, `lag rose by ${rise.toFixed(1)} ms`);

  // /metrics says what status --json says (the window does not move while no entry arrives).
  await sleep(300);
  const st = (await db.status()).sync!;
  const metrics = (await httpGet(f.b, '10.77.0.12', 9650, '/metrics')).body;
  const sample = (name: string) => Number(new RegExp(`^keepalive_ts_${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
  t.is(sample('sync_lag_p50_seconds'), st.lag.p50_ms! / 1000);
  t.is(sample('sync_lag_p99_seconds'), st.lag.p99_ms! / 1000);
  t.is(sample('sync_lag_last_seconds'), st.lag.last_ms! / 1000);
  t.is(sample('sync_lag_entries_total\\{measured="true"\\}'), st.lag.measured);
  t.is(sample('sync_lag_entries_total\\{measured="false"\\}'), st.lag.unmeasured);
  t.is(sample('sync_entries'), st.table.templates + st.table.udp_flows + st.table.conns);
  const ma = (await httpGet(f.a, '10.77.0.11', 9650, '/metrics')).body;
  const rttA = Number(/^keepalive_ts_sync_rtt_seconds (\S+)$/m.exec(ma)?.[1] ?? NaN);
  t.true(Math.abs(rttA * 1000 - (await da.status()).sync!.echo.rtt_ms!) < 50, 'the master exports its round trip');
  await rp.kill();
});
