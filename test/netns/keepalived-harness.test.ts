// Proves that real keepalived peers run in the lab: two instances elect one master, the VIP
// follows the election, and VRRPv3 adverts are visible on the wire. The VRRP interop tests
// (keepalive-ts against keepalived) stand on this.
import type { ExecutionContext } from 'ava';
import { createLab, type Lab, type LabHost, type LabProcess, netnsTest, sleep, waitFor } from '../lib/netns.js';
import { type Capture, keepalivedState, keepalivedVrrpConfig, ping, startKeepalived, startTcpdump } from '../lib/servers.js';
import { assertCrashTakeover } from '../lib/timing.js';
import { masterDownIntervalMs } from '../../src/vrrp/timing.js';

async function hasAddr(host: LabHost, addr: string): Promise<boolean> {
  const out = (await host.exec(['ip', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
  return out.split('\n').some((l) => l.split(/\s+/).some((w) => w.split('/')[0] === addr));
}

async function assertVipOnlyOn(t: ExecutionContext, vip: string, owner: LabHost, other: LabHost): Promise<void> {
  t.true(await hasAddr(owner, vip), `${vip} on ${owner.name}`);
  t.false(await hasAddr(other, vip), `${vip} not on ${other.name}`);
}

interface Pair {
  a: LabHost;
  b: LabHost;
  kaA: LabProcess;
  kaB: LabProcess;
  vip: string;
}

/**
 * Starts keepalived on a (priority 150) and b (100), both in BACKUP state so the election
 * decides, and waits until it has converged: a MASTER holding the VIP, b BACKUP. The two
 * start concurrently and their master-down timers differ by only ~0.2 s, so on a loaded
 * machine b may win the first round and then be preempted; only the converged state counts.
 */
async function electedPair(lab: Lab, family: 4 | 6): Promise<Pair> {
  const a = await lab.addHost('a');
  const b = await lab.addHost('b');
  const vip = family === 4 ? lab.addr4(100) : lab.addr6(100);
  const prefix = family === 4 ? lab.prefix4 : lab.prefix6;
  const conf = (routerId: string, priority: number) =>
    keepalivedVrrpConfig({ routerId, vrid: 51, priority, version: 3, advertInt: 1, vips: [`${vip}/${prefix}`] });
  const [kaA, kaB] = await Promise.all([startKeepalived(a, conf('ka-a', 150), lab), startKeepalived(b, conf('ka-b', 100), lab)]);
  await waitFor(
    async () => keepalivedState(kaA) === 'MASTER' && keepalivedState(kaB) === 'BACKUP' && (await hasAddr(a, vip)) && !(await hasAddr(b, vip)),
    20_000,
    `a MASTER with ${vip}, b BACKUP`,
  );
  return { a, b, kaA, kaB, vip };
}

/** The advert lines a capture receives during the next `ms` milliseconds. */
async function advertsDuring(capture: Capture, ms: number): Promise<string> {
  const before = capture.text().length;
  await sleep(ms);
  return capture.text().slice(before);
}

netnsTest('two keepalived (VRRPv3, VRID 51) elect the priority-150 host; the other takes over when it stops', async (t) => {
  const lab = await createLab(t);
  const { a, b, kaA, kaB, vip } = await electedPair(lab, 4);
  const capture = await startTcpdump(b, 'vrrp', { args: ['-vv'] });

  await assertVipOnlyOn(t, vip, a, b);
  // Steady state: exactly one router advertises (multicast 224.0.0.18 crosses the bridge),
  // with the configured fields.
  const steady = await advertsDuring(capture, 2_500);
  t.regex(steady, /VRRPv3, Advertisement, vrid 51, prio 150, intvl 100cs/);
  t.notRegex(steady, /prio 100/, 'b stays silent while backup');
  t.true((await ping(b, vip, 1)).ok, 'VIP answers');

  // A graceful stop sends a priority-0 advert and releases the VIP; b must take over.
  await kaA.kill('SIGTERM');
  await waitFor(() => keepalivedState(kaB) === 'MASTER', 10_000, 'b to become MASTER');
  await waitFor(async () => (await hasAddr(b, vip)) && !(await hasAddr(a, vip)), 5_000, `VIP ${vip} to move to b`);
  await assertVipOnlyOn(t, vip, b, a);
  await waitFor(() => /vrid 51, prio 100/.test(capture.text()), 5_000, 'b to advertise');
  t.regex(capture.text(), /vrid 51, prio 0,/, 'a announced its resignation with priority 0');
  await waitFor(async () => (await ping(a, vip, 1)).ok, 5_000, 'VIP reachable from a after failover');
});

netnsTest('keepalived master crash (SIGKILL): the backup takes the VIP after the master-down interval', async (t) => {
  const lab = await createLab(t);
  const { a, b, kaA, kaB, vip } = await electedPair(lab, 4);

  // No priority-0 advert this time: b must notice the silence (3 * advert_int + skew ≈ 3.6 s).
  const killedAt = Date.now();
  await kaA.kill('SIGKILL');
  await waitFor(() => keepalivedState(kaB) === 'MASTER', 10_000, 'b to become MASTER', 20);
  const takeoverMs = Date.now() - killedAt;
  await waitFor(() => hasAddr(b, vip), 5_000, `VIP ${vip} on b`);
  // Master_Down_Interval of keepalived's v3 backup at priority 100, advert_int 1 s.
  assertCrashTakeover(t, takeoverMs, { mdiMs: masterDownIntervalMs(3, 100, 100), advertMs: 1000 }, 'keepalived backup MASTER after the crash');
  // A crashed keepalived cannot remove its VIP: a (dead daemon) keeps it, as on a real box.
  t.true(await hasAddr(a, vip));
});

netnsTest('keepalived over IPv6 (VRRPv3 to ff02::12) elects the priority-150 host', async (t) => {
  const lab = await createLab(t);
  const { a, b, vip } = await electedPair(lab, 6);
  const capture = await startTcpdump(b, 'ip6 and ip6 proto 112', { args: ['-vv'] });

  await assertVipOnlyOn(t, vip, a, b);
  const steady = await advertsDuring(capture, 2_500);
  t.regex(steady, /> ff02::12: .*VRRPv3, Advertisement, vrid 51, prio 150/s);
  t.notRegex(steady, /prio 100/);
  t.true((await ping(b, vip, 1)).ok, 'IPv6 VIP answers');
});
