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
// And a director preempted and MASTER again within its cut window (10 s after its drain ended):
// its VIP:port is guarded again before its VIP is local, so its own stack resets no session in the
// instant between the VIP add and its serve transaction (docs/hitless.md "The cut window and a
// takeover").
import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, sleep, waitFor, type Lab, type LabHost } from '../lib/netns.js';
import { startDirector, directorToml, type Director } from '../lib/daemon.js';
import { prepareDrRealServer } from '../lib/nft-lab.js';
import { acrossEvent as across, ECHO_PORT, echoFlowsResult, echoFlowsUp, startEchoFlows, persistentClientsKeep as keep, serverOf, startEchoServer, startRateLimitedNginx, startUdpEcho, startUdpFlow, udpFlowResult, UDP_PORT } from '../lib/hitless.js';

const VIP = '10.78.0.50';
const KEY = 'hitless-dr-test-key';
const ADVERT = 0.1;
const CLIENTS = Array.from({ length: 20 }, (_, i) => `10.78.0.${120 + i}`);
/** Sessions of the cut-window scenario sending a line every 20 ms. */
const DENSE = 30;

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


/**
 * Counts the TCP resets `host`'s own stack sends from `vip` (output hook, a table of the test's
 * own); returns the reader.
 */
async function watchResets(host: LabHost, vip: string): Promise<() => Promise<number>> {
  await host.exec(['/usr/sbin/nft', `add table inet rstwatch; add chain inet rstwatch out { type filter hook output priority 0; policy accept; }; add rule inet rstwatch out ip saddr ${vip} tcp flags & rst != 0 counter`]);
  return async () => Number(/counter packets (\d+)/.exec((await host.exec(['/usr/sbin/nft', 'list', 'chain', 'inet', 'rstwatch', 'out'])).stdout)?.[1] ?? NaN);
}

async function recut(t: ExecutionContext, algo: 'mh' | 'rr', sync: boolean): Promise<void> {
  const f = await farm(t);
  const db = await start(f, f.b, 100, algo, sync);
  await master(db);
  const resets = await watchResets(f.b, VIP);
  const held = async () => Number(/packets (\d+)/.exec((await f.b.exec(['/usr/sbin/nft', 'list', 'counter', 'inet', 'keepalive_ts', 'g_vipin'])).stdout)?.[1] ?? NaN);
  const heldBefore = await held();
  // Besides the download and the four sessions of across(): 30 sessions sending a line every
  // 20 ms, so packets are in flight in the instant between db's VIP add and its serve transaction.
  const dense = startEchoFlows(f.client, VIP, DENSE, 16_000, { intervalMs: 20 });
  await waitFor(async () => echoFlowsUp(dense).size === DENSE, 10_000, `${DENSE} dense sessions up`);
  let da: Director | undefined;
  const label = `${algo}${sync ? '+sync' : ''} preempted, MASTER again within the cut window`;
  await across(t, f.client, VIP, label, {
    interactiveMs: 12_000,
    event: async () => {
      // da preempts: db goes BACKUP, unserves (drain_timeout 0: its drain ends at once and its
      // 10 s cut window starts), then da stops gracefully 2 s later: db is MASTER again inside it.
      da = await start(f, f.a, 150, algo, sync);
      await master(da);
      await waitFor(async () => (await db.instance()).state === 'BACKUP', 5_000, 'db BACKUP (preempted)');
      await waitFor(async () => (await db.status()).virtual_servers.every((v) => !v.serving), 5_000, 'db stopped serving');
      const preempted = Date.now();
      if (sync) await waitFor(async () => ((await db.status()).sync?.table.conns ?? 0) >= 5, 3_000, 'db holds the five long connections');
      await sleep(Math.max(0, 2_000 - (Date.now() - preempted)));
      t.log(`${label}: da stopped ${Date.now() - preempted} ms after db stopped serving (cut window 10 s)`);
      void da.proc.kill('SIGTERM');
    },
    settle: async () => {
      await master(db);
      await da!.proc.exited;
    },
  });
  const n = await resets();
  t.log(`${label}: resets sent by db's own stack from the VIP: ${n}; packets held by db's VIP:port guard (g_vipin) across the events: ${(await held()) - heldBefore}`);
  await dense.exited;
  const flows = echoFlowsResult(dense);
  const broken = flows.filter((x) => !x.ok);
  t.log(`${label}: ${flows.length - broken.length}/${DENSE} dense sessions unbroken${broken.length ? `; broken: ${broken.slice(0, 5).map((x) => `${x.localPort} ${x.reason}`).join(', ')}` : ''}`);
  t.is(flows.length, DENSE, `${label}: every dense session reported`);
  t.is(broken.length, 0, `${label}: dense sessions broken`);
  t.is(n, 0, `${label}: db's own stack sent ${n} resets from the VIP`);
}

netnsTest('DR mh: a director preempted and MASTER again within its cut window resets no session (VIP:port guarded before the VIP is local)', async (t) => {
  await recut(t, 'mh', false);
});

netnsTest('DR rr with [sync]: a director preempted and MASTER again within its cut window resets no session', async (t) => {
  await recut(t, 'rr', true);
});
