// use_vmac against real peers on one segment: keepalived 2.2.7 with `use_vmac` and FRR 8.4's vrrpd
// (macvlan in bridge mode, as its docs require). In each lab the peer starts at priority 150 and
// keepalive-ts at 100, then:
//   1. the peer is MASTER, keepalive-ts BACKUP: the VIP lives on the peer's VMAC only, and a client
//      that pings it has 00:00:5e:00:01:VRID in its neighbour table;
//   2. the peer stops: keepalive-ts takes over on its own VMAC (vrrp.51, private macvlan with the
//      virtual MAC), the client's pings keep working and its neighbour entry still says the virtual
//      MAC (that is the point of a VMAC: no client has to relearn anything);
//   3. the peer returns and preempts: keepalive-ts releases the VIP from its VMAC again;
//   4. keepalive-ts stops: its VMAC is deleted.
// keepalive-ts must count no dropped adverts throughout (the peers' adverts come in on the VMAC:
// a private macvlan gets the frames whose source MAC is its own).
import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, sleep, waitFor, type Lab, type LabHost } from '../lib/netns.js';
import { startDirector, directorToml, type Director } from '../lib/daemon.js';
import { keepalivedState, keepalivedVrrpConfig, startKeepalived } from '../lib/servers.js';
import { neighEntry, startAddrMonitor, vipAddedAt } from '../lib/interop.js';
import { startFrrVrrp, waitFrrState } from '../lib/frr.js';
import type { LabProcess } from '../lib/procs.js';

const VRID = 51;
const VMAC = '00:00:5e:00:01:33';
const VIP = '10.77.0.50';

/** Interfaces of `host` that hold `addr` (any interface, the VMAC included). */
async function holders(host: LabHost, addr: string): Promise<string[]> {
  const out = (await host.exec(['ip', '-o', 'addr', 'show'])).stdout;
  return out.split('\n').filter((l) => l.includes(` ${addr}/`)).map((l) => l.split(/\s+/)[1]!.replace(/@.*$/, ''));
}

async function linkExists(host: LabHost, name: string): Promise<boolean> {
  return (await host.exec(['ip', 'link', 'show', 'dev', name], { allowFail: true })).code === 0;
}

async function ping(client: LabHost, addr: string): Promise<boolean> {
  return (await client.exec(['ping', '-c', '1', '-W', '1', addr], { allowFail: true })).code === 0;
}

/** The client reaches the VIP and knows it at the virtual MAC. */
/**
 * The client resolves the VIP afresh and reaches it: the ARP reply says the virtual MAC (and no
 * other MAC answers). When keepalive-ts is the master (`ours`), the client's neighbour entry must
 * also still say the virtual MAC after the traffic. For a keepalived or FRR master that last part is
 * not asserted: their replies leave through the base interface, whose ARP request for the client
 * carries the VIP as sender and moves the client's entry to the base MAC (see vmac.ts baseSysctls).
 */
async function assertClientSeesVmac(t: ExecutionContext, client: LabHost, arp: LabProcess, phase: string, ours: boolean): Promise<void> {
  await client.exec(['ip', 'neigh', 'flush', 'to', VIP, 'dev', 'eth0'], { allowFail: true });
  const mark = arp.output().length;
  await waitFor(() => ping(client, VIP), 10_000, `${phase}: client pings the VIP`, 100);
  const replyLines = () => [...arp.output().slice(mark).matchAll(/Reply 10\.77\.0\.50 is-at ([0-9a-f:]+)/g)].map((m) => m[1]);
  // tcpdump prints a moment after the packet.
  await waitFor(async () => replyLines().length > 0, 3_000, `${phase}: the client's capture shows the ARP reply`, 20).catch(() => undefined);
  const replies = replyLines();
  t.true(replies.length > 0 && replies.every((m) => m === VMAC), `${phase}: ARP replies for the VIP give the virtual MAC only: ${replies.join(', ')}`);
  const n = await neighEntry(client, VIP);
  if (ours) t.is(n?.lladdr, VMAC, `${phase}: client's neighbour entry for the VIP is the virtual MAC (${JSON.stringify(n)})`);
  else t.log(`${phase}: client's neighbour entry after the ping: ${JSON.stringify(n)}`);
}

async function ktState(d: Director): Promise<string> {
  return (await d.instance()).state;
}

async function assertNoDrops(t: ExecutionContext, d: Director, phase: string): Promise<void> {
  const s = await d.status();
  const i = s.vrrp.find((v) => v.name === 'VI_1')!;
  t.deepEqual(i.drops, {}, `${phase}: keepalive-ts dropped adverts`);
  const socketDrops = Object.fromEntries(Object.entries(s.vrrp_socket_drops).filter(([, r]) => Object.keys(r).length > 0));
  t.deepEqual(socketDrops, {}, `${phase}: socket-level drops`);
}

function ktToml(routerId: string, extra = ''): string {
  return directorToml({ routerId, vrid: VRID, priority: 100, vips: [`${VIP}/24`], version: 3, advertInt: 1, garpDelay: 1, garpRepeat: 3, extraInstance: `use_vmac = true\n${extra}` });
}

interface Peer {
  start(): Promise<void>;
  stop(): Promise<void>;
  isMaster(): boolean;
  isBackup(): boolean;
  vmacName: string;
  log(): string;
}

async function vmacScenario(t: ExecutionContext, lab: Lab, peerHost: LabHost, peer: Peer, ktExtra = ''): Promise<void> {
  const kt = await lab.addHost('kt');
  const client = await lab.addHost('client');
  const arp = client.spawn(['tcpdump', '-l', '-eni', 'eth0', 'arp']);
  await arp.waitForOutput(/listening on/, 5_000);

  // 1. The peer (150) is elected; keepalive-ts (100) backs it up on its own VMAC.
  await peer.start();
  await waitFor(async () => peer.isMaster(), 10_000, 'peer MASTER', 50);
  let d = await startDirector(lab, kt, ktToml('kt-vmac', ktExtra));
  await waitFor(async () => (await ktState(d)) === 'BACKUP', 10_000, 'keepalive-ts BACKUP', 50);
  t.true(await linkExists(kt, 'vrrp.51'), 'keepalive-ts created its VMAC vrrp.51');
  const link = JSON.parse((await kt.exec(['ip', '-d', '-j', 'link', 'show', 'dev', 'vrrp.51'])).stdout)[0] as { address: string; linkinfo?: { info_kind: string; info_data?: { mode: string } } };
  t.is(link.address, VMAC, 'the VMAC carries the virtual router MAC');
  t.like(link.linkinfo, { info_kind: 'macvlan', info_data: { mode: 'private' } }, 'private-mode macvlan, as keepalived');
  await sleep(1_500);
  t.true(peer.isMaster(), 'the peer stays MASTER');
  t.is(await ktState(d), 'BACKUP', 'keepalive-ts stays BACKUP');
  t.deepEqual(await holders(kt, VIP), [], 'keepalive-ts does not hold the VIP as BACKUP');
  t.deepEqual(await holders(peerHost, VIP), [peer.vmacName], `the VIP is on the peer's VMAC ${peer.vmacName}`);
  await assertClientSeesVmac(t, client, arp, 'peer MASTER', false);
  await assertNoDrops(t, d, 'peer MASTER');
  t.true((await d.instance()).adverts_received >= 1, 'keepalive-ts hears the peer (on its VMAC, or on eth0 with vmac_xmit_base)');

  // 2. The peer stops: keepalive-ts takes over on its VMAC; the client never relearns a MAC.
  {
    const mon = await startAddrMonitor(kt);
    const stoppedAt = Date.now();
    await peer.stop();
    await waitFor(async () => (await holders(kt, VIP)).includes('vrrp.51'), 10_000, 'keepalive-ts takes the VIP on vrrp.51', 10);
    const at = vipAddedAt(mon.output(), VIP);
    t.log(`peer stopped: keepalive-ts added the VIP on its VMAC ${at === null ? '?' : at - stoppedAt} ms later`);
    await mon.kill('SIGTERM');
    t.is(await ktState(d), 'MASTER');
    t.deepEqual(await holders(kt, VIP), ['vrrp.51'], 'the VIP is on the VMAC only, not on eth0');
    const before = Date.now();
    await assertClientSeesVmac(t, client, arp, 'keepalive-ts MASTER', true);
    t.log(`client reached the VIP through keepalive-ts ${Date.now() - before} ms after the VIP was added`);
    // Adverts leave from the virtual MAC, or from eth0's own MAC with vmac_xmit_base.
    const cap = await client.exec(['timeout', '5', 'tcpdump', '-c', '1', '-eni', 'eth0', `ip proto 112 and src host ${kt.ipv4}`], { allowFail: true });
    const srcMac = /^\S+ ([0-9a-f:]{17}) >/m.exec(cap.stdout)?.[1];
    t.is(srcMac, ktExtra.includes('vmac_xmit_base') ? kt.mac : VMAC, `keepalive-ts adverts leave from ${srcMac}:\n${cap.stdout}${cap.stderr}`);
  }

  // 3. The peer returns at the higher priority and preempts.
  await peer.start();
  await waitFor(async () => peer.isMaster(), 15_000, 'peer MASTER again', 50);
  await waitFor(async () => (await ktState(d)) === 'BACKUP', 5_000, 'keepalive-ts BACKUP again', 50);
  await waitFor(async () => (await holders(kt, VIP)).length === 0, 3_000, 'keepalive-ts released the VIP', 20);
  await assertClientSeesVmac(t, client, arp, 'peer MASTER again', false);
  await assertNoDrops(t, d, 'peer MASTER again');

  // 4. keepalive-ts stops: its VMAC goes with it.
  await d.proc.kill('SIGTERM');
  t.is((await d.proc.exited).code, 0);
  t.false(await linkExists(kt, 'vrrp.51'), 'the VMAC was deleted on stop');

  // And a VMAC left by a killed run is swept at the next start.
  d = await startDirector(lab, kt, ktToml('kt-vmac', ktExtra));
  await waitFor(() => linkExists(kt, 'vrrp.51'), 5_000, 'VMAC recreated', 50);
  await d.proc.kill('SIGKILL');
  t.true(await linkExists(kt, 'vrrp.51'), 'SIGKILL leaves the VMAC behind');
  d = await startDirector(lab, kt, ktToml('kt-vmac', ktExtra).replace('use_vmac = true', 'use_vmac = "vm51"'));
  await waitFor(async () => (await ktState(d)) === 'BACKUP', 10_000, 'keepalive-ts BACKUP on vm51', 50);
  t.false(await linkExists(kt, 'vrrp.51'), 'the stale VMAC vrrp.51 was swept at start');
  t.true(await linkExists(kt, 'vm51'), 'a named VMAC is used');
  await d.proc.kill('SIGTERM');
}

function keepalivedPeer(lab: Lab, host: LabHost, extra = '', vip = `${VIP}/24`): Peer {
  let proc: LabProcess | undefined;
  return {
    vmacName: 'vrrp.51',
    async start() {
      proc = await startKeepalived(host, keepalivedVrrpConfig({ routerId: 'ka-vmac', vrid: VRID, priority: 150, version: 3, advertInt: 1, vips: [vip], extra: `  use_vmac\n${extra}` }), lab);
    },
    async stop() {
      await proc!.kill('SIGTERM');
    },
    isMaster: () => proc !== undefined && keepalivedState(proc) === 'MASTER',
    isBackup: () => proc !== undefined && keepalivedState(proc) === 'BACKUP',
    log: () => proc?.output() ?? '',
  };
}

netnsTest('use_vmac interoperates with keepalived use_vmac: one master, the VIP moves between the VMACs, the client keeps the virtual MAC', async (t) => {
  const lab = await createLab(t);
  const ka = await lab.addHost('ka');
  await vmacScenario(t, lab, ka, keepalivedPeer(lab, ka));
});

netnsTest('use_vmac with vmac_xmit_base interoperates with keepalived use_vmac + vmac_xmit_base', async (t) => {
  const lab = await createLab(t);
  const ka = await lab.addHost('ka');
  await vmacScenario(t, lab, ka, keepalivedPeer(lab, ka, '  vmac_xmit_base\n'), 'vmac_xmit_base = true');
});

netnsTest("use_vmac interoperates with FRR's vrrpd: one master, the VIP moves between the VMACs, the client keeps the virtual MAC", async (t) => {
  const lab = await createLab(t);
  const fr = await lab.addHost('frr');
  let frr: Awaited<ReturnType<typeof startFrrVrrp>> | undefined;
  const macvlan = 'vrrp4-2-1';
  t.teardown(() => frr?.stop());
  await vmacScenario(t, lab, fr, {
    vmacName: macvlan,
    async start() {
      // The macvlan is the operator's (FRR never creates it); startFrrVrrp makes it as FRR's docs say.
      frr = await startFrrVrrp(lab, fr, { vrid: VRID, priority: 150, vip: `${VIP}/24`, version: 3, advertMs: 1000, macvlan });
      await waitFrrState(frr, 'Master', 10_000).catch(() => undefined);
    },
    async stop() {
      // The router goes away: vrrpd, zebra and the macvlan holding the VIP.
      await frr!.stop();
      await fr.exec(['ip', 'link', 'del', macvlan], { allowFail: true });
    },
    isMaster: () => frr?.state() === 'Master',
    isBackup: () => frr?.state() === 'Backup',
    log: () => frr?.vrrpd.output() ?? '',
  });
});

netnsTest('use_vmac IPv6 (VRRPv3) interoperates with keepalived: the VIP moves to the VMAC 00:00:5e:00:02:VRID, the client reaches it there', async (t) => {
  const lab = await createLab(t);
  const ka = await lab.addHost('ka');
  const kt = await lab.addHost('kt');
  const client = await lab.addHost('client');
  const vip6 = 'fd77::50';
  const vmac6 = '00:00:5e:00:02:33';
  const peer = keepalivedPeer(lab, ka, '', `${vip6}/64`);
  await peer.start();
  await waitFor(async () => peer.isMaster(), 10_000, 'keepalived MASTER', 50);
  const d = await startDirector(lab, kt, directorToml({ routerId: 'kt-vmac6', vrid: VRID, priority: 100, vips: [`${vip6}/64`], version: 3, advertInt: 1, garpDelay: 1, garpRepeat: 3, extraInstance: 'use_vmac = true' }));
  await waitFor(async () => (await ktState(d)) === 'BACKUP', 10_000, 'keepalive-ts BACKUP', 50);
  const link = JSON.parse((await kt.exec(['ip', '-d', '-j', 'addr', 'show', 'dev', 'vrrp6.51'])).stdout)[0] as { address: string; addr_info: Array<{ local: string }> };
  t.is(link.address, vmac6);
  const baseLl = (await kt.addresses()).find((a) => a.startsWith('fe80:'));
  t.deepEqual(link.addr_info.map((a) => a.local), [baseLl], "the VMAC carries the base interface's link-local address only (no EUI-64 one of its own)");
  await sleep(1_500);
  t.is(await ktState(d), 'BACKUP');
  t.true((await d.instance()).adverts_received >= 1, 'keepalive-ts hears keepalived on its IPv6 VMAC');
  await assertNoDrops(t, d, 'keepalived MASTER');

  await peer.stop();
  await waitFor(async () => (await holders(kt, vip6)).includes('vrrp6.51'), 10_000, 'keepalive-ts takes the IPv6 VIP on vrrp6.51', 10);
  t.is(await ktState(d), 'MASTER');
  await waitFor(async () => (await client.exec(['ping', '-6', '-c', '1', '-W', '1', vip6], { allowFail: true })).code === 0, 10_000, 'client pings the IPv6 VIP', 100);
  const out = (await client.exec(['ip', '-6', '-j', 'neigh', 'show', 'to', vip6, 'dev', 'eth0'])).stdout.trim();
  const n = (JSON.parse(out || '[]') as Array<{ lladdr?: string }>)[0];
  t.is(n?.lladdr, vmac6, `client's neighbour entry for the IPv6 VIP: ${out}`);

  await peer.start();
  await waitFor(async () => peer.isMaster(), 15_000, 'keepalived MASTER again', 50);
  await waitFor(async () => (await ktState(d)) === 'BACKUP', 5_000, 'keepalive-ts BACKUP again', 50);
  await waitFor(async () => (await holders(kt, vip6)).length === 0, 3_000, 'keepalive-ts released the IPv6 VIP', 20);
  await assertNoDrops(t, d, 'keepalived MASTER again');
});

