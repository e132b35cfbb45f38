// keepalive-ts against keepalived 2.2.7 on one segment: VRRPv2 + PASS, VRRPv3 IPv4 and VRRPv3 IPv6,
// with either implementation at the higher priority. Each test runs one lab through:
//   1. election: the priority-150 router is MASTER and the only VIP holder, the other BACKUP;
//   2. graceful stop (SIGTERM) of the master: the backup takes the VIP after Skew_Time, sooner than
//      a takeover by silence could (test/lib/timing.ts);
//   3. the stopped master returns and preempts back (cross-implementation preemption);
//   4. crash (SIGKILL + switch port down): the backup takes the VIP once Master_Down_Interval of
//      silence has passed (not sooner, and not later than MDI + the load slack).
// Throughout, keepalive-ts must count no drops: a drop while talking to keepalived would mean the
// two disagree about the wire format (checksum, auth, lengths, addresses). keepalived's side of the
// same question is answered by its log (it complains about every advert it rejects) and by the fact
// that a keepalived BACKUP which could not parse our adverts would become MASTER.
import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, sleep, waitFor, type LabHost } from '../lib/netns.js';
import { hasVip } from '../lib/daemon.js';
import { masterDownIntervalMs, skewTimeMs } from '../../src/vrrp/timing.js';
import { assertCrashTakeover, assertGracefulTakeover } from '../lib/timing.js';
import {
  bareVip,
  makePeer,
  startAddrMonitor,
  waitVipAdded,
  vipHolders,
  waitPeerState,
  type Impl,
  type Peer,
  type VrrpFlavour,
} from '../lib/interop.js';

const HIGH = 150;
const LOW = 100;
const ADVERT_CS = 100;

/**
 * Lines in which keepalived reports rejecting a received packet ("received an invalid passwd!",
 * "bogus VRRP packet received", "Invalid VRRPv3 checksum", "... mismatch", "ip ttl/hl ...").
 * "received lower priority (100) advert from X - discarding" is not a complaint: it is RFC
 * preemption (a higher-priority backup ignores a lower master's adverts) and proves the advert
 * was parsed and accepted.
 */
const KEEPALIVED_COMPLAINT = /invalid|mismatch|bogus|bad |wrong|dropping|ignoring|unknown|error|checksum|ttl|auth|passwd/i;
const KEEPALIVED_BENIGN = /received lower priority \(\d+\) advert from \S+ - discarding/;

function keepalivedComplaints(p: Peer): string[] {
  if (p.impl !== 'keepalived') return [];
  return p.proc().output().split('\n').filter((l) => KEEPALIVED_COMPLAINT.test(l) && !KEEPALIVED_BENIGN.test(l));
}

async function assertNoDrops(t: ExecutionContext, peers: Peer[], phase: string): Promise<void> {
  for (const p of peers) {
    const d = await p.drops();
    if (d) {
      t.log(`${phase}: keepalive-ts adverts sent ${d.sent}, received ${d.received}`);
      t.deepEqual(d.instance, {}, `${phase}: keepalive-ts instance dropped adverts exchanged with keepalived`);
      // Sockets are listed even when nothing was dropped on them ({"eth0/v4": {}}).
      const socketDrops = Object.fromEntries(Object.entries(d.socket).filter(([, r]) => Object.keys(r).length > 0));
      t.deepEqual(socketDrops, {}, `${phase}: keepalive-ts socket-level drops while talking to keepalived`);
    }
    t.deepEqual(keepalivedComplaints(p), [], `${phase}: keepalived complained about received adverts`);
  }
}

async function assertElected(t: ExecutionContext, master: Peer, backup: Peer, vip: string, phase: string): Promise<void> {
  await waitPeerState(master, 'MASTER', 10_000);
  await waitPeerState(backup, 'BACKUP', 3_000);
  const hosts = [master.host, backup.host];
  await waitFor(async () => (await vipHolders(hosts, vip)).join() === master.host.name, 3_000, `${phase}: VIP only on ${master.impl}`, 20);
  // Steady state for a few adverts: nothing flips.
  await sleep(1_500);
  t.is(await master.state(), 'MASTER', `${phase}: ${master.impl} stays MASTER`);
  t.is(await backup.state(), 'BACKUP', `${phase}: ${backup.impl} stays BACKUP`);
  t.deepEqual(await vipHolders(hosts, vip), [master.host.name], `${phase}: exactly one VIP holder (${master.impl})`);
}

async function interop(t: ExecutionContext, f: VrrpFlavour, masterImpl: Impl): Promise<void> {
  const lab = await createLab(t);
  const backupImpl: Impl = masterImpl === 'keepalived' ? 'keepalive-ts' : 'keepalived';
  // Host names say which implementation runs there (a: the high priority one).
  const hm: LabHost = await lab.addHost(masterImpl === 'keepalived' ? 'ka' : 'kt');
  const hb: LabHost = await lab.addHost(backupImpl === 'keepalived' ? 'ka' : 'kt');
  const master = makePeer(lab, masterImpl, hm, HIGH, f);
  const backup = makePeer(lab, backupImpl, hb, LOW, f);
  const vip = bareVip(f);
  const peers = [master, backup];

  // 1. Election. The high-priority router starts first so the pair converges without a flap.
  await master.start();
  await backup.start();
  await assertElected(t, master, backup, vip, 'election');
  await assertNoDrops(t, peers, 'election');

  // 2. Graceful stop: a priority-0 advert makes the backup wait only Skew_Time.
  {
    const mon = await startAddrMonitor(hb);
    const stoppedAt = Date.now();
    await master.proc().kill('SIGTERM');
    const exit = await master.proc().exited;
    t.is(exit.code, 0, `${masterImpl} exits 0 on SIGTERM`);
    await waitFor(() => hasVip(hb, vip), 5_000, `${backupImpl} takes the VIP after SIGTERM`, 10);
    const at = await waitVipAdded(mon, vip);
    t.truthy(at, `VIP add seen by ip monitor:\n${mon.output()}`);
    assertGracefulTakeover(t, at! - stoppedAt, {
      skewMs: skewTimeMs(f.version, LOW, ADVERT_CS), mdiMs: masterDownIntervalMs(f.version, LOW, ADVERT_CS), advertMs: ADVERT_CS * 10,
    }, `SIGTERM of ${masterImpl}: ${backupImpl} took the VIP`);
    await waitPeerState(backup, 'MASTER', 2_000);
    t.false(await hasVip(hm, vip), `stopped ${masterImpl} released the VIP`);
    t.deepEqual(await vipHolders([hm, hb], vip), [hb.name], 'after SIGTERM: exactly one VIP holder');
    await mon.kill('SIGTERM');
  }
  await assertNoDrops(t, [backup], 'after SIGTERM');

  // 3. The higher-priority router returns and preempts the other implementation.
  await master.start();
  await assertElected(t, master, backup, vip, 'preempt back');
  await assertNoDrops(t, peers, 'preempt back');
  // By now keepalive-ts has heard keepalived as MASTER (as its backup during the election, or
  // on its restart), so the no-drops checks above covered real keepalived adverts.
  const ours = peers.find((p) => p.impl === 'keepalive-ts')!;
  t.true(((await ours.drops())?.received ?? 0) >= 1, 'keepalive-ts received adverts from keepalived');

  // 4. Crash: no priority-0 advert, the backup must notice the silence.
  {
    const mon = await startAddrMonitor(hb);
    const killedAt = Date.now();
    await Promise.all([master.proc().kill('SIGKILL'), hm.linkDown()]);
    await waitFor(() => hasVip(hb, vip), 10_000, `${backupImpl} takes the VIP after a crash`, 10);
    const at = await waitVipAdded(mon, vip);
    t.truthy(at, `VIP add seen by ip monitor:\n${mon.output()}`);
    assertCrashTakeover(t, at! - killedAt, { mdiMs: masterDownIntervalMs(f.version, LOW, ADVERT_CS), advertMs: ADVERT_CS * 10 },
      `crash of ${masterImpl}: ${backupImpl} took the VIP`);
    await waitPeerState(backup, 'MASTER', 2_000);
    // The crashed host keeps its VIP (nobody removed it) but is cut off; on the segment, only
    // the new master holds it.
    t.deepEqual(await vipHolders([hb], vip), [hb.name], 'after crash: the survivor holds the VIP');
    await mon.kill('SIGTERM');
  }
  await assertNoDrops(t, [backup], 'after crash');
}

const FLAVOURS: Array<{ name: string; f: VrrpFlavour }> = [
  { name: 'VRRPv2 PASS', f: { version: 2, family: 4, password: 'secret' } },
  { name: 'VRRPv3 IPv4', f: { version: 3, family: 4 } },
  { name: 'VRRPv3 IPv6', f: { version: 3, family: 6 } },
];

for (const { name, f } of FLAVOURS) {
  for (const masterImpl of ['keepalived', 'keepalive-ts'] as const) {
    const other = masterImpl === 'keepalived' ? 'keepalive-ts' : 'keepalived';
    netnsTest(
      `${name}: ${masterImpl} (150) is elected over ${other} (100); ${other} takes over on SIGTERM within Skew_Time and on crash within Master_Down_Interval`,
      (t) => interop(t, f, masterImpl),
    );
  }
}
