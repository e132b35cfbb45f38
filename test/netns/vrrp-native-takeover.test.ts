// The takeover's VIPs and first gratuitous ARPs leave from the advert sender thread
// (native/vrrp_sender.c), right after its takeover advert: with the BACKUP's event loop blocked (a
// test-only preload, as in vrrp-native-sender: no production knob), the VIP is on its interface and
// the GARPs are on the wire within a few ms of the advert, long before the loop runs again. The loop
// then reconciles (the VIP was there already: EEXIST is fine) and keeps keepalived's timing: the
// first burst is not sent twice, and garp_master_delay's second burst follows from the loop.
// With accept = false the thread leaves all of it to the loop (the drop filter must come first).
import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, waitFor, sleep, type LabHost } from '../lib/netns.js';
import { startDirector, directorToml, hasVip, type Director } from '../lib/daemon.js';
import { startTcpdump } from '../lib/servers.js';
import { parseAdverts, parseWire } from '../../bench/failover.js';
import { blockOnSignal, crashDuringBlock } from '../lib/loop-block.js';

const VIP = '10.77.0.50';
const REPEAT = 3;
const BLOCK_MS = 1_500;

async function state(d: Director, s: string, ms: number): Promise<void> {
  await waitFor(async () => (await d.instance()).state === s, ms, `${d.host.name} ${s}`, 50);
}

const toml = (routerId: string, priority: number, extraInstance?: string) =>
  directorToml({ routerId, priority, version: 3, advertInt: 0.1, vips: [`${VIP}/24`], garpRepeat: REPEAT, garpDelay: 2, ...(extraInstance ? { extraInstance } : {}) });

/**
 * Master da and backup db (its config's instance gets `extraInstance`); db's loop is blocked for
 * BLOCK_MS while da crashes, so db's down timer expires during the block. Polls db's addresses from
 * here meanwhile; after the takeover waits `afterMs` (the second GARP burst) and returns the wire.
 */
async function takeoverWhileBlocked(t: ExecutionContext, extraInstance: string | undefined, afterMs: number) {
  const lab = await createLab(t);
  const [a, b, p]: LabHost[] = [await lab.addHost('da'), await lab.addHost('db'), await lab.addHost('p')];
  const cap = await startTcpdump(p, 'ip proto 112', { args: ['-tt', '--immediate-mode'] });
  const wire = await startTcpdump(p, 'arp', { args: ['-tt', '-e', '--immediate-mode'] });
  const da = await startDirector(lab, a, toml('da', 150));
  await state(da, 'MASTER', 10_000);
  const db = await startDirector(lab, b, toml('db', 100, extraInstance), { nodeArgs: blockOnSignal(BLOCK_MS) });
  await state(db, 'BACKUP', 10_000);
  t.false(await hasVip(b, VIP));
  await sleep(500);
  // Right after a fresh advert of the master, block the backup's loop and crash the master: the
  // down timer (MDI = 361 ms) expires in the middle of the block.
  const crashed = crashDuringBlock(a, da, db, () => cap.text());
  // Meanwhile poll b's addresses from here (the namespace, not the daemon).
  let vipSeenAt: number | undefined;
  const pollUntil = Date.now() + BLOCK_MS + 3_000;
  while (vipSeenAt === undefined && Date.now() < pollUntil) {
    if (await hasVip(b, VIP)) vipSeenAt = Date.now();
    else await sleep(10);
  }
  const { blockFrom, blockTo } = await crashed;
  await waitFor(async () => (await db.instance().catch(() => undefined))?.state === 'MASTER', 10_000, 'backup MASTER', 50);
  await sleep(afterMs);
  await cap.stop();
  await wire.stop();
  const ads = parseAdverts(cap.text());
  const lastA = ads.filter((x) => x.src === a.ipv4).at(-1)!.t;
  const firstB = ads.find((x) => x.src === b.ipv4 && x.t > lastA)!.t;
  const garps = parseWire(wire.text(), VIP).filter((f) => f.what === 'garp' && f.src === b.mac && f.t > lastA).map((f) => f.t);
  return { b, db, vipSeenAt, blockFrom, blockTo, firstB, garps };
}

netnsTest('a BACKUP whose loop is blocked: the sender thread puts the VIP up and sends the GARPs right after its takeover advert', async (t: ExecutionContext) => {
  // garp_master_delay = 2 s: wait for the second burst, from the loop.
  const { b, db, vipSeenAt, blockFrom, blockTo, firstB, garps } = await takeoverWhileBlocked(t, undefined, 2_500);
  const first = garps.filter((g) => g < firstB + 1_000);
  const second = garps.filter((g) => g >= firstB + 1_000);
  t.log(`loop blocked ${(blockFrom - firstB).toFixed(0)}..${(blockTo - firstB).toFixed(0)} ms around b's first advert; VIP seen ${vipSeenAt === undefined ? 'never' : `${(vipSeenAt - firstB).toFixed(0)} ms`} after it; ` +
    `GARPs at ${garps.map((g) => (g - firstB).toFixed(1)).join(', ')} ms after it`);
  t.log(/takeover timeline.*$/m.exec(db.proc.output())?.[0] ?? 'no timeline line');
  t.true(blockFrom < firstB - 20 && blockTo > firstB + 300, 'the takeover happened while the loop was blocked (test set-up)');
  t.true(vipSeenAt !== undefined && vipSeenAt < blockTo, 'the VIP was on b while its loop was still blocked');
  t.is(first.length, REPEAT, `one first burst of garp_master_repeat GARPs (not sent again by the loop): ${first.length}`);
  // Generous for a loaded host: right after the advert, not after the block.
  t.true(first[0]! - firstB < 50, `first GARP ${(first[0]! - firstB).toFixed(1)} ms after the takeover advert`);
  t.true(first.at(-1)! < blockTo - 100, 'the whole first burst left while the loop was blocked');
  t.is(second.length, REPEAT, `garp_master_delay's second burst: ${second.length}`);
  // keepalived times it from becoming MASTER: from the thread's burst, not from the loop's wake-up.
  const gap = second[0]! - first[0]!;
  t.true(gap > 1_900 && gap < 2_600, `the second burst garp_master_delay (2 s) after the first: ${gap.toFixed(0)} ms`);
  t.true(await hasVip(b, VIP));
  const st = await db.status();
  t.is(st.vrrp[0]!.owned_vips.length, 1);
});

netnsTest('accept = false: the sender thread leaves the VIPs to the loop (its drop filter goes first): nothing before the loop runs', async (t: ExecutionContext) => {
  const { db, vipSeenAt, blockTo, firstB, garps } = await takeoverWhileBlocked(t, 'accept = false', 300);
  t.log(`b's first advert ${(blockTo - firstB).toFixed(0)} ms before the block ended; VIP seen ${vipSeenAt === undefined ? 'never' : `${(vipSeenAt - blockTo).toFixed(0)} ms after the block`}; GARPs at ${garps.map((g) => (g - blockTo).toFixed(1)).join(', ')} ms after it`);
  t.true(firstB < blockTo - 300, 'the takeover advert left during the block (the thread still times it)');
  t.true(vipSeenAt !== undefined && vipSeenAt >= blockTo, 'the VIP went up only once the loop ran (after the drop filter)');
  t.is(garps.length, REPEAT);
  t.true(garps[0]! >= blockTo, 'no GARP before the loop ran');
  t.false(/thread_vips_added/.test(db.proc.output()), 'the timeline shows no VIP add by the thread');
});
