import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, waitFor, sleep, type Lab, type LabHost } from '../lib/netns.js';
import { startDirector, directorToml, hasVip, type Director } from '../lib/daemon.js';
import { masterDownIntervalMs, skewTimeMs } from '../../src/vrrp/timing.js';
import { assertCrashTakeover, assertGracefulTakeover } from '../lib/timing.js';
import { startAddrMonitor, waitVipAdded } from '../lib/interop.js';

interface PairOpts { version: 2 | 3; family: 4 | 6; password?: string; advertInt?: number }

const vipFor = (f: 4 | 6) => (f === 4 ? '10.77.0.50' : 'fd77::50');

async function pair(t: ExecutionContext, o: PairOpts): Promise<{ lab: Lab; a: LabHost; b: LabHost; da: Director; db: Director; vip: string; toml: (p: number, extra?: object) => string }> {
  const lab = await createLab(t);
  const a = await lab.addHost('da');
  const b = await lab.addHost('db');
  const vip = vipFor(o.family);
  const toml = (priority: number, extra: object = {}) => directorToml({
    routerId: `r${priority}`, priority, version: o.version, vips: [`${vip}/${o.family === 4 ? 24 : 64}`], password: o.password, advertInt: o.advertInt ?? 1, ...extra,
  });
  const db = await startDirector(lab, b, toml(100));
  const da = await startDirector(lab, a, toml(150));
  return { lab, a, b, da, db, vip, toml };
}

async function waitState(d: Director, state: string, ms: number): Promise<void> {
  await waitFor(async () => (await d.instance()).state === state, ms, `${d.host.name} ${state}`, 20);
}

async function electsOneMaster(t: ExecutionContext, o: PairOpts): Promise<void> {
  const { da, db, a, b, vip } = await pair(t, o);
  await waitState(da, 'MASTER', 8_000);
  await waitState(db, 'BACKUP', 2_000);
  await waitFor(() => hasVip(a, vip), 2_000, 'VIP on the master');
  t.false(await hasVip(b, vip), 'backup must not hold the VIP');
  await sleep(1_500);
  t.is((await da.instance()).state, 'MASTER');
  t.is((await db.instance()).state, 'BACKUP');
  const bs = await db.instance();
  t.true(bs.adverts_received >= 1, 'backup hears adverts');
  t.deepEqual(bs.drops, {}, 'no drops between two correct peers');

  // Crash: SIGKILL and the cable pulled at the same instant.
  const mon = await startAddrMonitor(b);
  const killedAt = Date.now();
  await Promise.all([da.proc.kill('SIGKILL'), a.linkDown()]);
  await waitFor(() => hasVip(b, vip), 8_000, 'backup takes the VIP after a crash', 20);
  const at = await waitVipAdded(mon, vip);
  t.truthy(at, `VIP add seen by ip monitor:\n${mon.output()}`);
  assertCrashTakeover(t, at! - killedAt, { mdiMs: masterDownIntervalMs(o.version, 100, (o.advertInt ?? 1) * 100), advertMs: (o.advertInt ?? 1) * 1000 });
  t.is((await db.instance()).state, 'MASTER');
}

netnsTest('v3 IPv4 pair elects one master; crash moves the VIP within Master_Down_Interval', (t) => electsOneMaster(t, { version: 3, family: 4 }));
netnsTest('v2 PASS pair elects one master; crash moves the VIP within Master_Down_Interval', (t) => electsOneMaster(t, { version: 2, family: 4, password: 'secret' }));
netnsTest('v3 IPv6 pair elects one master; crash moves the VIP within Master_Down_Interval', (t) => electsOneMaster(t, { version: 3, family: 6 }));

netnsTest('SIGTERM hands over within Skew_Time; the old master preempts back when it returns', async (t) => {
  const { lab, a, b, da, db, vip, toml } = await pair(t, { version: 3, family: 4 });
  await waitState(da, 'MASTER', 8_000);
  await waitState(db, 'BACKUP', 2_000);
  await sleep(300);
  const mon = await startAddrMonitor(b);
  const stoppedAt = Date.now();
  await da.proc.kill('SIGTERM');
  t.is((await da.proc.exited).code, 0, 'graceful stop exits 0');
  t.false(await hasVip(a, vip), 'stopped master removed its VIP');
  await waitFor(() => hasVip(b, vip), 5_000, 'backup takes over', 10);
  const at = await waitVipAdded(mon, vip);
  t.truthy(at, `VIP add seen by ip monitor:\n${mon.output()}`);
  assertGracefulTakeover(t, at! - stoppedAt, { skewMs: skewTimeMs(3, 100, 100), mdiMs: masterDownIntervalMs(3, 100, 100), advertMs: 1000 });

  // Preempt back: the higher-priority director returns and takes the VIP again.
  const da2 = await startDirector(lab, a, toml(150));
  await waitState(da2, 'MASTER', 8_000);
  await waitState(db, 'BACKUP', 3_000);
  await waitFor(async () => !(await hasVip(b, vip)), 3_000, 'old backup released the VIP');
  t.true(await hasVip(a, vip));
});

netnsTest('nopreempt: a returning higher-priority director stays BACKUP', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('da');
  const b = await lab.addHost('db');
  const vip = '10.77.0.50';
  const db = await startDirector(lab, b, directorToml({ routerId: 'b', priority: 100, vips: [`${vip}/24`], nopreempt: true }));
  await waitState(db, 'MASTER', 8_000);
  const da = await startDirector(lab, a, directorToml({ routerId: 'a', priority: 150, vips: [`${vip}/24`], nopreempt: true }));
  await waitState(da, 'BACKUP', 3_000);
  await sleep(5_000); // longer than Master_Down_Interval: a must not take over
  t.is((await da.instance()).state, 'BACKUP');
  t.is((await db.instance()).state, 'MASTER');
  t.true(await hasVip(b, vip));
  t.false(await hasVip(a, vip));
});
