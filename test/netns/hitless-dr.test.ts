// Hitless failover on the kernel path, LVS-DR: two keepalive-ts directors (nftables netdev
// ingress), two real servers set up for DR (VIP on lo, arp_ignore=1, arp_announce=2) serving a
// rate-limited 2 MiB download (nginx limit_rate) and a line echo. Across a master crash (SIGKILL +
// cable pulled), the old master preempting back, and a graceful stop (SIGTERM, priority 0), a long
// download and an interactive session keep going with 0 broken connections, and 20 persistent
// clients keep their real server:
//   - mh (Maglev, same seed and table on both directors): no state needed, the new master computes
//     the same real server for every flow;
//   - rr with [sync]: the master's connection and persistence tables reach the backup over our
//     authenticated sync, and the new master writes them into its own tables before it serves.
import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, waitFor, type Lab, type LabHost } from '../lib/netns.js';
import { startDirector, directorToml, type Director } from '../lib/daemon.js';
import { prepareDrRealServer } from '../lib/nft-lab.js';
import { acrossEvent as across, ECHO_PORT, persistentClientsKeep as keep, serverOf, startEchoServer, startRateLimitedNginx, startUdpEcho, startUdpFlow, udpFlowResult, UDP_PORT } from '../lib/hitless.js';

const VIP = '10.78.0.50';
const KEY = 'hitless-dr-test-key';
const ADVERT = 0.1;
const CLIENTS = Array.from({ length: 20 }, (_, i) => `10.78.0.${120 + i}`);

function services(algo: 'mh' | 'rr', sync: boolean): string {
  const rs = (addr: string) => `\n[[virtual_server.real_server]]\naddress = "${addr}"\nweight = 1\n`;
  const vs = (port: number, persistence: boolean, protocol = 'TCP') => `[[virtual_server]]
address = "${VIP}"
port = ${port}
protocol = "${protocol}"
lb_kind = "DR"
lb_algo = "${algo}"
${persistence ? 'persistence_timeout = 300\n' : ''}drain_timeout = 0
${rs('10.78.0.21')}${rs('10.78.0.22')}`;
  return `${vs(80, true)}\n${vs(ECHO_PORT, false)}\n${vs(UDP_PORT, false, 'UDP')}\n${sync ? `[sync]\ninterface = "eth0"\ninstance = "VI_1"\nauth_key = "${KEY}"\n` : ''}`;
}

interface Farm { lab: Lab; client: LabHost; a: LabHost; b: LabHost }

async function farm(t: ExecutionContext): Promise<Farm> {
  const lab = await createLab(t);
  const [client, r1, r2, a, b] = await Promise.all([
    lab.addHost('cl', { ipv4: '10.78.0.100/24' }), lab.addHost('r1', { ipv4: '10.78.0.21/24' }), lab.addHost('r2', { ipv4: '10.78.0.22/24' }),
    lab.addHost('da', { ipv4: '10.78.0.11/24' }), lab.addHost('db', { ipv4: '10.78.0.12/24' }),
  ]);
  for (const [h, name] of [[r1, 'r1'], [r2, 'r2']] as const) {
    await prepareDrRealServer(h, VIP);
    await startRateLimitedNginx(h, lab.tmpDir, name);
    await startEchoServer(h, name);
    await startUdpEcho(h, name, VIP);
  }
  for (const src of CLIENTS) await client.exec(['ip', 'addr', 'add', `${src}/24`, 'dev', 'eth0']);
  return { lab, client, a, b };
}

const start = (f: Farm, host: LabHost, priority: number, algo: 'mh' | 'rr', sync: boolean) =>
  startDirector(f.lab, host, directorToml({ routerId: host.name, priority, advertInt: ADVERT, vips: [`${VIP}/24`], garpDelay: 0, extra: services(algo, sync) }));

async function master(d: Director): Promise<void> {
  await waitFor(async () => (await d.instance()).state === 'MASTER', 10_000, `${d.host.name} MASTER`);
  await waitFor(async () => (await d.status()).virtual_servers.every((v) => v.serving), 5_000, `${d.host.name} serving`);
}

async function scenario(t: ExecutionContext, algo: 'mh' | 'rr', sync: boolean): Promise<void> {
  const f = await farm(t);
  let da = await start(f, f.a, 150, algo, sync);
  await master(da);
  const db = await start(f, f.b, 100, algo, sync);
  await waitFor(async () => (await db.instance()).state === 'BACKUP', 8_000, 'db BACKUP');
  const before = new Map<string, string>();
  for (const src of CLIENTS) before.set(src, await serverOf(f.client, VIP, src));
  t.deepEqual(new Set(before.values()), new Set(['r1', 'r2']), 'clients spread over both servers');

  // 1. Crash of the master: SIGKILL and the cable pulled at the same instant. A UDP flow (a
  //    datagram every 10 ms) runs across it too.
  const udp = startUdpFlow(f.client, VIP, 10_000);
  await waitFor(async () => udpFlowResult(udp).replies > 20, 3_000, 'UDP replies flowing');
  await across(t, f.client, VIP, `${algo}${sync ? '+sync' : ''} crash`, {
    before: async () => {
      if (sync) await waitFor(async () => ((await db.status()).sync?.table.conns ?? 0) >= 5, 3_000, 'db holds the five long connections');
    },
    event: async () => void (await Promise.all([da.proc.kill('SIGKILL'), f.a.linkDown()])),
    settle: () => master(db),
  });
  await keep(t, f.client, VIP, before, 'after the crash');
  await udp.exited;
  const u = udpFlowResult(udp);
  t.log(`UDP flow across the crash: ${u.replies}/${u.sent} replies, longest gap ${u.longestGapMs} ms, from ${u.servers.join(', ')}`);
  t.is(u.servers.length, 1, 'every UDP reply, before and after the crash, from one real server');
  t.true(u.sent - u.replies <= Math.ceil(u.longestGapMs / 10) + 20, 'lost only the failover window');
  if (sync) {
    const full = await db.status();
    const st = full.sync!;
    t.true(st.restored >= 2 + CLIENTS.length, `db restored ${st.restored} entries (connections + templates)`);
    t.true((full.dataplane?.nftables_sync_restored_conns ?? 0) >= 5, `db wrote ${full.dataplane?.nftables_sync_restored_conns} synced TCP connections into its connection tables`);
    t.log(`db data plane: ${JSON.stringify(Object.fromEntries(Object.entries(full.dataplane ?? {}).filter(([k]) => k.includes('sync'))))}`);
  }

  // 2. The old master comes back and preempts.
  await f.a.linkUp();
  await across(t, f.client, VIP, `${algo}${sync ? '+sync' : ''} preempt-back`, {
    event: async () => {
      da = await start(f, f.a, 150, algo, sync);
    },
    settle: async () => {
      await master(da);
      await waitFor(async () => (await db.instance()).state === 'BACKUP', 5_000, 'db back to BACKUP');
    },
  });
  await keep(t, f.client, VIP, before, 'after preempt-back');

  // 3. Graceful stop of the master (SIGTERM: priority 0, the backup takes over at once).
  await across(t, f.client, VIP, `${algo}${sync ? '+sync' : ''} graceful stop`, {
    before: async () => {
      if (sync) await waitFor(async () => ((await db.status()).sync?.table.conns ?? 0) >= 5, 3_000, 'db holds the five long connections');
    },
    event: async () => void da.proc.kill('SIGTERM'),
    settle: async () => {
      await master(db);
      await da.proc.exited;
    },
  });
  await keep(t, f.client, VIP, before, 'after the graceful stop');
  const final = (await db.status()).virtual_servers;
  t.log(`scheduler in effect on db: ${final.map((v) => `${v.key}: ${(v as { scheduler_in_effect?: string }).scheduler_in_effect ?? '?'}`).join('; ')}`);
}

netnsTest('DR mh: established connections and persistent clients survive crash, preempt-back and graceful stop with no state synced', async (t) => {
  await scenario(t, 'mh', false);
});

netnsTest('DR rr with [sync]: connection and persistence tables synced; established connections and persistent clients survive all three events', async (t) => {
  await scenario(t, 'rr', true);
});

