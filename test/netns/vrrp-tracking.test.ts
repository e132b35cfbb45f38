import { writeFile, readFile, chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createLab, netnsTest, waitFor, sleep } from '../lib/netns.js';
import { startDirector, directorToml, hasVip, type Director } from '../lib/daemon.js';

async function waitState(d: Director, state: string, ms: number, name = 'VI_1'): Promise<void> {
  await waitFor(async () => (await d.instance(name)).state === state, ms, `${d.host.name} ${name} ${state}`, 20);
}

netnsTest('notify scripts get keepalived arguments; the instance interface going down means FAULT and hand-over', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('da');
  const b = await lab.addHost('db');
  const notifyLog = join(lab.tmpDir, 'notify.log');
  const masterMark = join(lab.tmpDir, 'became-master');
  const script = join(lab.tmpDir, 'notify.sh');
  await writeFile(script, `#!/bin/sh\necho "$@" >> ${notifyLog}\n`);
  await chmod(script, 0o755);
  const extra = `notify = "${script}"\nnotify_master = "/usr/bin/touch ${masterMark}"`;
  const db = await startDirector(lab, b, directorToml({ routerId: 'b', priority: 100, vips: ['10.77.0.50/24'] }));
  const da = await startDirector(lab, a, directorToml({ routerId: 'a', priority: 150, vips: ['10.77.0.50/24'], extraInstance: extra }));
  await waitState(da, 'MASTER', 8_000);
  await waitFor(async () => (await readFile(notifyLog, 'utf8').catch(() => '')).includes('INSTANCE VI_1 MASTER 150'), 3_000, 'notify MASTER');
  await waitFor(async () => (await readFile(masterMark).then(() => true, () => false)), 3_000, 'notify_master ran');
  t.regex(await readFile(notifyLog, 'utf8'), /^INSTANCE VI_1 BACKUP 150\nINSTANCE VI_1 MASTER 150\n/);

  // Pull a's cable: a's eth0 loses carrier -> FAULT (VIP removed), b takes over.
  await a.linkDown();
  await waitState(da, 'FAULT', 2_000);
  t.false(await hasVip(a, '10.77.0.50'), 'FAULT removes the VIP');
  await waitState(db, 'MASTER', 6_000);
  await waitFor(async () => (await readFile(notifyLog, 'utf8')).includes('INSTANCE VI_1 FAULT 150'), 2_000, 'notify FAULT');
  // Cable back: BACKUP first, then preempt back to MASTER.
  await a.linkUp();
  await waitState(da, 'MASTER', 8_000);
  await waitState(db, 'BACKUP', 3_000);
  t.true(await hasVip(a, '10.77.0.50'));
});

netnsTest('vrrp_script with a negative weight lowers priority and moves mastership; recovery moves it back', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('da');
  const b = await lab.addHost('db');
  const flag = join(lab.tmpDir, 'healthy');
  await writeFile(flag, 'ok');
  const scripts = `[[vrrp_script]]\nname = "chk"\nscript = "/usr/bin/test -f ${flag}"\ninterval = 1\nweight = -60\nfall = 2\nrise = 2\n`;
  const db = await startDirector(lab, b, directorToml({ routerId: 'b', priority: 100, vips: ['10.77.0.50/24'] }));
  const da = await startDirector(lab, a, directorToml({ routerId: 'a', priority: 150, vips: ['10.77.0.50/24'], extraInstance: 'track_script = ["chk"]', extra: scripts }));
  await waitState(da, 'MASTER', 8_000);
  t.is((await da.instance()).effective_priority, 150);
  await rm(flag);
  await waitFor(async () => (await da.instance()).effective_priority === 90, 5_000, 'priority 150-60');
  await waitState(db, 'MASTER', 5_000);
  await waitState(da, 'BACKUP', 2_000);
  t.true(await hasVip(b, '10.77.0.50'));
  await writeFile(flag, 'ok');
  await waitFor(async () => (await da.instance()).effective_priority === 150, 5_000, 'priority restored');
  await waitState(da, 'MASTER', 6_000);
  await waitState(db, 'BACKUP', 2_000);
});

netnsTest('vrrp_sync_group: one member in FAULT takes the whole group to FAULT, and back', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('da');
  const flag = join(lab.tmpDir, 'vi2-ok');
  await writeFile(flag, 'ok');
  const toml = `${directorToml({ routerId: 'a', priority: 150, vips: ['10.77.0.50/24'] })}
[[vrrp_instance]]
name = "VI_2"
interface = "eth0"
virtual_router_id = 52
priority = 150
advert_int = 1
version = 3
virtual_ipaddress = ["10.77.0.60/24"]
track_script = [{ name = "chk2", weight = 0 }]

[[vrrp_script]]
name = "chk2"
script = "/usr/bin/test -f ${flag}"
interval = 1

[[vrrp_sync_group]]
name = "G1"
group = ["VI_1", "VI_2"]
`;
  const da = await startDirector(lab, a, toml);
  await waitState(da, 'MASTER', 8_000, 'VI_1');
  await waitState(da, 'MASTER', 2_000, 'VI_2');
  await rm(flag);
  await waitState(da, 'FAULT', 4_000, 'VI_2');
  await waitState(da, 'FAULT', 3_000, 'VI_1');
  await waitFor(async () => !(await hasVip(a, '10.77.0.50')) && !(await hasVip(a, '10.77.0.60')), 2_000, 'group dropped both VIPs');
  await writeFile(flag, 'ok');
  await waitState(da, 'MASTER', 8_000, 'VI_2');
  await waitState(da, 'MASTER', 3_000, 'VI_1');
  await waitFor(async () => (await hasVip(a, '10.77.0.50')) && (await hasVip(a, '10.77.0.60')), 3_000, 'group added both VIPs back').catch(() => undefined);
  t.true(await hasVip(a, '10.77.0.50'));
  t.true(await hasVip(a, '10.77.0.60'));
});

netnsTest('a VIP deleted by someone else while MASTER is put back and counted', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('da');
  const da = await startDirector(lab, a, directorToml({ routerId: 'a', priority: 150, vips: ['10.77.0.50/24', '10.77.0.51/24'] }));
  await waitState(da, 'MASTER', 8_000);
  await waitFor(() => hasVip(a, '10.77.0.51'), 2_000, 'VIP added');
  await a.exec(['ip', 'addr', 'del', '10.77.0.51/24', 'dev', 'eth0']);
  await waitFor(() => hasVip(a, '10.77.0.51'), 2_000, 'VIP restored');
  t.is((await da.instance()).vips_restored, 1);
  t.is((await da.instance()).state, 'MASTER');
});

netnsTest('restart after kill -9: stale VIPs of the dead process are removed at start', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('da');
  const b = await lab.addHost('db');
  const vip = '10.77.0.50';
  const da = await startDirector(lab, a, directorToml({ routerId: 'a', priority: 150, vips: [`${vip}/24`] }));
  const db = await startDirector(lab, b, directorToml({ routerId: 'b', priority: 100, vips: [`${vip}/24`] }));
  await waitState(da, 'MASTER', 8_000);
  await da.proc.kill('SIGKILL');
  t.true(await hasVip(a, vip), 'kill -9 leaves the VIP behind');
  await waitState(db, 'MASTER', 6_000);
  // Come back with a lower priority: the returning director must clear the stale VIP and stay BACKUP.
  const da2 = await startDirector(lab, a, directorToml({ routerId: 'a', priority: 50, vips: [`${vip}/24`] }));
  await waitFor(async () => !(await hasVip(a, vip)), 2_000, 'stale VIP removed at start');
  await sleep(4_000);
  t.is((await da2.instance()).state, 'BACKUP');
  t.is((await db.instance()).state, 'MASTER');
  t.false(await hasVip(a, vip));
});
