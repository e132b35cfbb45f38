// The advert sender thread (native/vrrp_sender.c) takes the event loop out of VRRP timing: with the
// daemon's loop deliberately blocked (a test-only preload, `node --import data:...`: no production
// knob), a MASTER's adverts still leave on schedule, and a BACKUP's first advert at takeover still
// leaves at its down timer. Without the thread both would wait for the loop (gaps of the block's length).
import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, waitFor, sleep, type LabHost } from '../lib/netns.js';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, startDirector, directorToml, type Director } from '../lib/daemon.js';
import { run } from '../lib/procs.js';
import { startTcpdump } from '../lib/servers.js';
import { parseAdverts } from '../../bench/failover.js';
import { blockInAsync, blockOnSignal, crashDuringBlock } from '../lib/loop-block.js';
import { masterDownIntervalMs } from '../../src/vrrp/timing.js';

const VIP = '10.77.0.50';
const BLOCK_MS = 300;

/**
 * A preload that blocks the daemon's main thread for BLOCK_MS every `everyMs` (after `afterMs`),
 * printing a line per block so the test can see that the blocks happened.
 */
function blocker(everyMs: number, afterMs: number): string[] {
  const src = `const f=()=>{const t0=performance.now();while(performance.now()-t0<${BLOCK_MS});process.stderr.write('LOOP-BLOCKED\\n');setTimeout(f,${everyMs})};setTimeout(f,${afterMs}).unref();`;
  return ['--import', `data:text/javascript,${encodeURIComponent(src)}`];
}

const gapsOf = (ts: number[]) => ts.slice(1).map((t, i) => t - ts[i]!);

async function state(d: Director, s: string, ms: number): Promise<void> {
  await waitFor(async () => (await d.instance()).state === s, ms, `${d.host.name} ${s}`, 50);
}

function toml(routerId: string, priority: number): string {
  return directorToml({ routerId, priority, version: 3, advertInt: 0.1, vips: [`${VIP}/24`] });
}

netnsTest('a MASTER\'s adverts leave on schedule while its event loop is blocked', async (t: ExecutionContext) => {
  const lab = await createLab(t);
  const a = await lab.addHost('da');
  const p = await lab.addHost('p');
  const cap = await startTcpdump(p, 'ip proto 112', { args: ['-tt', '--immediate-mode'] });
  const d = await startDirector(lab, a, toml('da', 150), { nodeArgs: blocker(700, 3_000) });
  await state(d, 'MASTER', 10_000);
  await waitFor(() => (d.proc.output().match(/LOOP-BLOCKED/g) ?? []).length >= 4, 15_000, 'four loop blocks', 50);
  await cap.stop();
  const blocks = (d.proc.output().match(/LOOP-BLOCKED/g) ?? []).length;
  const ts = parseAdverts(cap.text()).filter((x) => x.src === a.ipv4).map((x) => x.t);
  const gaps = gapsOf(ts.slice(-30));
  const max = Math.max(...gaps);
  t.log(`${blocks} blocks of ${BLOCK_MS} ms; last ${gaps.length} advert intervals: max ${max.toFixed(1)} ms, min ${Math.min(...gaps).toFixed(1)} ms`);
  t.true(gaps.length >= 25, `adverts captured: ${ts.length}`);
  // advert_int 100 ms; a loop-timed advert would leave a gap of >= BLOCK_MS. Generous for a loaded host.
  t.true(max < 200, `largest interval ${max.toFixed(1)} ms while the loop was blocked ${BLOCK_MS} ms at a time`);
  t.is((await d.instance()).state, 'MASTER');
});

netnsTest('a BACKUP whose event loop is blocked still sends its first advert at the down timer, then takes over', async (t: ExecutionContext) => {
  const lab = await createLab(t);
  const [a, b, p]: LabHost[] = [await lab.addHost('da'), await lab.addHost('db'), await lab.addHost('p')];
  const cap = await startTcpdump(p, 'ip proto 112', { args: ['-tt', '--immediate-mode'] });
  const da = await startDirector(lab, a, toml('da', 150));
  await state(da, 'MASTER', 10_000);
  const db = await startDirector(lab, b, toml('db', 100), { nodeArgs: blockOnSignal(1_000) });
  await state(db, 'BACKUP', 10_000);
  await sleep(500);
  // Right after a fresh advert of the master (the backup has read it), block the backup's loop for
  // 1 s and crash the master: the down timer (MDI = 361 ms) expires in the middle of the block.
  const { blockFrom, blockTo } = await crashDuringBlock(a, da, db, () => cap.text());
  await waitFor(async () => (await db.instance().catch(() => undefined))?.state === 'MASTER', 10_000, 'backup MASTER', 50);
  await sleep(300);
  await cap.stop();
  const ads = parseAdverts(cap.text());
  const lastA = ads.filter((x) => x.src === a.ipv4).at(-1)!.t;
  const firstB = ads.find((x) => x.src === b.ipv4 && x.t > lastA)!.t;
  const mdi = masterDownIntervalMs(3, 100, 10);
  const late = firstB - (lastA + mdi);
  t.log(`loop blocked ${(blockFrom - lastA).toFixed(0)}..${(blockTo - lastA).toFixed(0)} ms after the master's last advert; backup's first advert at ${(firstB - lastA).toFixed(1)} ms = ${late.toFixed(1)} ms after last advert + MDI (${mdi} ms)`);
  t.true(blockFrom < lastA + mdi - 50 && blockTo > lastA + mdi + 100, 'the down timer expired while the loop was blocked (test set-up)');
  // Loop-timed, the advert would wait for the end of the block. Generous bounds for a loaded host.
  t.true(late > -5 && late < 50, `first backup advert ${late.toFixed(1)} ms after the down timer`);
  t.true(firstB < blockTo - 50, 'the first advert left while the loop was still blocked');
  // The machine then ran the transition and the adverts keep coming on schedule.
  const fromB = ads.filter((x) => x.src === b.ipv4).map((x) => x.t);
  t.true(fromB.length >= 2, `adverts from the new master: ${fromB.length}`);
});

netnsTest('a BACKUP whose loop is blocked past its down timer does not take over from a live master', async (t: ExecutionContext) => {
  // The sender thread heard the master's adverts and held its takeover advert back; the loop must
  // then read those adverts before it runs the down timer itself, even when the thread's report
  // reaches it in a poll phase that polled the VRRP socket before they arrived.
  const lab = await createLab(t);
  const [a, b, p]: LabHost[] = [await lab.addHost('da'), await lab.addHost('db'), await lab.addHost('p')];
  const cap = await startTcpdump(p, 'ip proto 112', { args: ['-tt', '--immediate-mode'] });
  const da = await startDirector(lab, a, toml('da', 150));
  await state(da, 'MASTER', 10_000);
  const db = await startDirector(lab, b, toml('db', 100), { nodeArgs: blockInAsync(1_000) });
  await state(db, 'BACKUP', 10_000);
  await sleep(500);
  const mdi = masterDownIntervalMs(3, 100, 10);
  const fromA = () => parseAdverts(cap.text()).filter((x) => x.src === a.ipv4);
  const blocks: [number, number][] = [];
  for (let i = 0; i < 3; i++) {
    const seen = fromA().length;
    await waitFor(() => fromA().length > seen, 2_000, 'a fresh advert of the master', 1);
    await sleep(5);
    process.kill(db.proc.pid, 'SIGUSR2');
    await waitFor(() => (db.proc.output().match(/LOOP-BLOCKED/g) ?? []).length > i, 10_000, `loop block ${i + 1}`, 20);
    const m = [...db.proc.output().matchAll(/LOOP-BLOCKED (\d+) (\d+)/g)].at(-1)!;
    blocks.push([Number(m[1]), Number(m[2])]);
    await sleep(600);
  }
  await cap.stop();
  const ads = parseAdverts(cap.text());
  const fromB = ads.filter((x) => x.src === b.ipv4);
  const inst = await db.instance();
  for (const [from, to] of blocks) {
    const before = ads.filter((x) => x.src === a.ipv4 && x.t < from).at(-1)!.t;
    t.log(`loop blocked ${from - before} .. ${to - before} ms after the master's last advert before it (MDI ${mdi} ms)`);
    t.true(to > before + mdi + 100, 'the down timer expired while the loop was blocked (test set-up)');
  }
  t.deepEqual(fromB.map((x) => x.t), [], 'the backup sent no advert while the master was advertising');
  t.is(inst.state, 'BACKUP');
  t.is(inst.transitions, 1, 'INIT -> BACKUP only');
  t.is((await da.instance()).state, 'MASTER');
});

/** Policy (0 SCHED_OTHER, 2 SCHED_RR) and rt_priority of each thread of `pid`, by thread name. */
async function threadSched(pid: number): Promise<Map<string, { policy: number; rtPriority: number }>> {
  const out = new Map<string, { policy: number; rtPriority: number }>();
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => undefined);
    if (!stat) continue; // the thread ended meanwhile
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    // Fields after "comm)": state is field 3, so field n is rest[n - 3]; rt_priority 40, policy 41 (proc(5)).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cur = out.get(name);
    const rec = { policy: Number(rest[41 - 3]), rtPriority: Number(rest[40 - 3]) };
    if (!cur || rec.policy > cur.policy) out.set(name, rec);
  }
  return out;
}

netnsTest('global.vrrp_rt_priority runs the sender thread (only it) SCHED_RR at that priority, with RLIMIT_RTTIME; reload applies it live', async (t: ExecutionContext) => {
  const lab = await createLab(t);
  const a = await lab.addHost('da');
  const withGlobal = (extra: string) => toml('da', 150).replace('metrics_listen = ""', `metrics_listen = ""\n${extra}`);
  const d = await startDirector(lab, a, withGlobal('vrrp_rt_priority = 7\nvrrp_rlimit_rttime = 20000'));
  await state(d, 'MASTER', 10_000);
  const pid = Number((await readFile(join(lab.tmpDir, 'kt-da', 'kt.pid'), 'utf8')).trim());
  let th = await threadSched(pid);
  t.deepEqual(th.get('kt-vrrp-send'), { policy: 2, rtPriority: 7 }, [...th].map(([n, s]) => `${n}:${s.policy}/${s.rtPriority}`).join(' '));
  // Nothing else is real-time: the main thread (the event loop) and every other thread stay SCHED_OTHER.
  for (const [name, s] of th) if (name !== 'kt-vrrp-send') t.is(s.policy, 0, `thread ${name}`);
  const limits = await readFile(`/proc/${pid}/limits`, 'utf8');
  t.regex(limits, /Max realtime timeout\s+10000\s+20000\s+us/, 'RLIMIT_RTTIME soft = half, hard = vrrp_rlimit_rttime');
  t.regex(d.proc.output(), /VRRP sender thread: SCHED_RR priority 7, RLIMIT_RTTIME 20000/);

  // 0 = SCHED_OTHER, applied by a reload without restarting anything.
  await writeFile(d.configPath, withGlobal('vrrp_rt_priority = 0'));
  await run([process.execPath, CLI, 'reload', '--control-socket', d.socket]);
  await waitFor(async () => (await threadSched(pid)).get('kt-vrrp-send')?.policy === 0, 5_000, 'sender back to SCHED_OTHER', 50);
  // The default (no key): SCHED_RR 1.
  await writeFile(d.configPath, toml('da', 150));
  await run([process.execPath, CLI, 'reload', '--control-socket', d.socket]);
  await waitFor(async () => (await threadSched(pid)).get('kt-vrrp-send')?.rtPriority === 1, 5_000, 'sender at the default SCHED_RR 1', 50);
  th = await threadSched(pid);
  t.deepEqual(th.get('kt-vrrp-send'), { policy: 2, rtPriority: 1 });
  const inst = await d.instance();
  t.is(inst.state, 'MASTER');
  // status carries the thread's own account of its lateness (bench/jitter.ts logs it).
  t.true(typeof inst.sender_max_late_us === 'number' && inst.sender_max_late_us >= (inst.sender_max_wake_late_us ?? Infinity), JSON.stringify(inst));
  t.log(`sender thread: max lateness ${inst.sender_max_late_us} µs, of it wake-up ${inst.sender_max_wake_late_us} µs`);
});
