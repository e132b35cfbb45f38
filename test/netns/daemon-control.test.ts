import { writeFile } from 'node:fs/promises';
import { createLab, netnsTest, waitFor } from '../lib/netns.js';
import { startDirector, directorToml, hasVip, CLI } from '../lib/daemon.js';
import { run } from '../lib/procs.js';

netnsTest('status over the control socket; a broken reload is refused with its errors and changes nothing', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('da');
  const toml = directorToml({ routerId: 'a', priority: 150, vips: ['10.77.0.50/24'] });
  const da = await startDirector(lab, a, toml);
  await waitFor(async () => (await da.instance()).state === 'MASTER', 8_000, 'MASTER');

  const text = await run([process.execPath, CLI, 'status', '--control-socket', da.socket]);
  t.regex(text.stdout, /VI_1\s+eth0\s+51\s+v3\s+MASTER\s+150/);
  const json = JSON.parse((await run([process.execPath, CLI, 'status', '--json', '--control-socket', da.socket])).stdout);
  t.is(json.vrrp[0].state, 'MASTER');
  t.deepEqual(json.vrrp[0].owned_vips, ['10.77.0.50/24']);

  // Unchanged file: reload succeeds with no changes.
  const same = await run([process.execPath, CLI, 'reload', '--control-socket', da.socket]);
  t.regex(same.stdout, /reloaded \(no changes\)/);

  // Broken file: the caller gets the errors (file:line key), exit 1; daemon keeps running as it was.
  await writeFile(da.configPath, toml.replace('priority = 150', 'priority = 300'));
  const bad = await run([process.execPath, CLI, 'reload', '--control-socket', da.socket], { allowFail: true });
  t.is(bad.code, 1);
  t.regex(bad.stderr, /keepalive\.toml:\d+ vrrp_instance\[0\]\.priority: must be 1\.\.255, got 300/);
  process.kill(da.proc.pid, 'SIGHUP'); // `ip netns exec` execs node, so this pid is the daemon
  await da.proc.waitForOutput(/reload on SIGHUP failed; running config kept/, 5_000);
  const after = await da.instance();
  t.is(after.state, 'MASTER');
  t.is(after.priority, 150);
  t.true(await hasVip(a, '10.77.0.50'));
  t.is(after.transitions, 2, 'INIT->BACKUP->MASTER only');
});
