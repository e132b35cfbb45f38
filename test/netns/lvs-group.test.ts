// virtual_server_group with the real daemon (`keepalive-ts run`): several VIP:ports of one group
// forward to the same real servers, with ONE set of health checks; a real server that dies leaves
// every member at once. The kernel kinds (DR: two VIPs on one port; NAT: one VIP on two ports) and
// the user-space proxy (one VIP on two ports, then a reload adding and removing a member).
import type { ExecutionContext } from 'ava';
import { writeFile } from 'node:fs/promises';
import { createLab, netnsTest, waitFor, type Lab } from '../lib/netns.js';
import type { LabHost } from '../lib/lab-core.js';
import { startDirector, directorToml, CLI, type Director } from '../lib/daemon.js';
import { run } from '../lib/procs.js';
import { httpBatch } from '../lib/clients.js';
import { kernelFarm, VIP } from '../lib/nft-lab.js';
import type { LbKind } from '../../src/lvs/dataplane/contract.js';

const VIP2 = '10.77.0.51';

function groupToml(kind: LbKind, members: string[], servers: string[]): string {
  return `[[virtual_server_group]]
name = "web"
members = [${members.map((m) => `"${m}"`).join(', ')}]

[[virtual_server]]
group = "web"
lb_kind = "${kind}"
lb_algo = "rr"
delay_loop = 1
drain_timeout = 1
${servers.map((addr) => `
[[virtual_server.real_server]]
address = "${addr}"
port = 80
check = { type = "HTTP_GET", path = "/", status_code = 200, connect_timeout = 1, retry = 1, delay_before_retry = 0.5 }
`).join('')}`;
}

async function groupUp(d: Director, members: number, up: number): Promise<void> {
  await waitFor(async () => (await d.instance()).state === 'MASTER', 10_000, `${d.host.name} MASTER`);
  await waitFor(async () => {
    const vs = (await d.status()).virtual_servers[0];
    return vs !== undefined && vs.members?.length === members && vs.members.every((m) => m.serving) && vs.real_servers.filter((r) => r.up).length === up;
  }, 15_000, `${d.host.name}: ${members} members serving, ${up} real servers up`);
}

/** The group lab: both members split over both real servers; r2 dies; both members keep only r1. */
async function sharedHealth(t: ExecutionContext, lab: Lab, kind: LbKind, targets: Array<[string, number]>, members: string[]): Promise<{ d: Director; client: Awaited<ReturnType<typeof kernelFarm>>['client'] }> {
  const farm = await kernelFarm(lab, kind === 'PROXY' ? 'NAT' : kind, 2);
  const vips = [...new Set(targets.map(([a]) => a))];
  await farm.director.exec(['ip', 'addr', 'del', `${VIP}/24`, 'dev', 'eth0']); // VRRP adds it
  if (kind === 'DR') {
    // The second VIP on the real servers' lo too (arp_ignore / arp_announce are set already).
    for (const s of farm.servers) await s.host.exec(['ip', 'addr', 'add', `${VIP2}/32`, 'dev', 'lo']);
  }
  const d = await startDirector(lab, farm.director, directorToml({
    routerId: 'da', priority: 150, vips: vips.map((v) => `${v}/24`),
    extra: groupToml(kind, members, farm.servers.map((s) => s.address)),
  }));
  await groupUp(d, targets.length, 2);

  for (const [address, port] of targets) {
    const b = await httpBatch(farm.client, address, port, 10);
    t.deepEqual(b.errors, {}, `${address}:${port}`);
    t.deepEqual(b.bodies, { r1: 5, r2: 5 }, `${address}:${port} uses both real servers`);
  }
  const st = (await d.status()).virtual_servers[0]!;
  t.like(st, { key: 'tcp/group:web', group: 'web', kind, serving: true, quorum_up: true });
  t.is(st.real_servers.length, 2, 'one real-server list for the group');
  if (kind !== 'DR') t.is(st.conns, 10 * targets.length, 'the group counts the connections of every member');
  for (const m of st.members!) if (kind !== 'DR') t.is(m.conns, 10, `${m.key} has its own counters`);

  // r2 goes away: its ONE checker fails, and it leaves every member.
  await farm.servers[1]!.host.linkDown();
  await groupUp(d, targets.length, 1);
  const after = (await d.status()).virtual_servers[0]!;
  t.deepEqual(after.real_servers.map((r) => [r.address, r.health]), [[farm.servers[0]!.address, 'up'], [farm.servers[1]!.address, 'down']]);
  for (const [address, port] of targets) {
    const b = await httpBatch(farm.client, address, port, 6);
    t.deepEqual(b.errors, {}, `${address}:${port} after r2 died`);
    t.deepEqual(b.bodies, { r1: 6 }, `${address}:${port}: r2 left this member too`);
  }
  // The ipvsadm-style listing shows each member with the shared real servers.
  const ipvs = await run([process.execPath, CLI, 'status', '--control-socket', d.socket]);
  for (const [address, port] of targets) t.regex(ipvs.stdout, new RegExp(`${address.replace(/[.]/g, '\\.')}:${port} .*# group web`));
  t.log(ipvs.stdout);
  return { d, client: farm.client };
}

netnsTest('group, lb_kind DR: two VIPs of one group forward to the same real servers; a dead real server leaves both', async (t) => {
  const lab = await createLab(t);
  // A range as keepalived writes it: 10.77.0.50-51 port 80.
  await sharedHealth(t, lab, 'DR', [[VIP, 80], [VIP2, 80]], ['10.77.0.50-51:80']);
});

/** Reload: 8080 leaves the group, 8081 joins; the health carries over (r2 stays down, no re-check from unknown). */
async function reloadMembers(t: ExecutionContext, kind: LbKind, d: Director, client: LabHost, servers: string[]): Promise<void> {
  const before = (await d.status()).virtual_servers[0]!.real_servers.map((r) => r.last_change);
  await writeFile(d.configPath, directorToml({ routerId: 'da', priority: 150, vips: [`${VIP}/24`], extra: groupToml(kind, [`${VIP}:80`, `${VIP}:8081`], servers) }));
  const out = await run([process.execPath, CLI, 'reload', '--control-socket', d.socket]);
  t.regex(out.stdout, /-member tcp\/10\.77\.0\.50:8080 \(draining\)[\s\S]*\+member tcp\/10\.77\.0\.50:8081/);
  await waitFor(async () => (await d.status()).virtual_servers[0]!.members?.map((m) => m.key).join() === 'tcp/10.77.0.50:80,tcp/10.77.0.50:8081', 8_000, 'members after the reload');
  await groupUp(d, 2, 1);
  const b = await httpBatch(client, VIP, 8081, 4);
  t.deepEqual(b.errors, {});
  t.deepEqual(b.bodies, { r1: 4 }, 'the new member starts with the known health: r2 stays out');
  t.deepEqual((await d.status()).virtual_servers[0]!.real_servers.map((r) => r.last_change), before, 'no health change: the checks were kept');
  // The member that left is not forwarded any more once drained (drain_timeout 1 s).
  await waitFor(async () => Object.keys((await httpBatch(client, VIP, 8080, 1, { timeoutMs: 1000 })).bodies).length === 0, 8_000, '8080 no longer forwarded');
  t.deepEqual((await httpBatch(client, VIP, 80, 4)).bodies, { r1: 4 }, 'the kept member is untouched');
}

netnsTest('group, lb_kind NAT: two ports of one VIP share one pool and its health; a reload adds and removes a member', async (t) => {
  const lab = await createLab(t);
  const { d, client } = await sharedHealth(t, lab, 'NAT', [[VIP, 80], [VIP, 8080]], [`${VIP}:80`, `${VIP}:8080`]);
  await reloadMembers(t, 'NAT', d, client, ['10.78.0.21', '10.78.0.22']);
});

netnsTest('group, lb_kind PROXY: two ports share one pool; a reload adds and removes a member without restarting the checks', async (t) => {
  const lab = await createLab(t);
  const { d, client } = await sharedHealth(t, lab, 'PROXY', [[VIP, 80], [VIP, 8080]], [`${VIP}:80`, `${VIP}:8080`]);
  await reloadMembers(t, 'PROXY', d, client, ['10.78.0.21', '10.78.0.22']);
});
