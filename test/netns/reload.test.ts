import { writeFile } from 'node:fs/promises';
import { createLab, netnsTest, waitFor, sleep } from '../lib/netns.js';
import { startDirector, directorToml, hasVip, CLI } from '../lib/daemon.js';
import { startNginx } from '../lib/servers.js';
import { httpBatch } from '../lib/clients.js';
import { run } from '../lib/procs.js';
import { startAddrMonitor } from '../lib/interop.js';

const VIP = '10.77.0.50';

function config(weights: [number, number], vips: string[] = [`${VIP}/24`], priority = 150): string {
  const rs = (addr: string, w: number) => `
[[virtual_server.real_server]]
address = "${addr}"
port = 80
weight = ${w}
check = { type = "TCP_CHECK", connect_timeout = 1 }
`;
  return directorToml({
    routerId: 'a', priority, vips,
    extra: `[[virtual_server]]\naddress = "${VIP}"\nport = 80\nlb_kind = "PROXY"\nprotocol = "TCP"\nlb_algo = "wrr"\ndelay_loop = 1\n${rs('10.77.0.21', weights[0])}${rs('10.77.0.22', weights[1])}`,
  });
}

netnsTest('reloads under load: weights 1:1 -> 1:3 and a new VIP apply in place, no failed request, no VIP removed', async (t) => {
  const lab = await createLab(t);
  const [client, r1, r2, a] = await Promise.all([
    lab.addHost('cl', { ipv4: '10.77.0.100/24' }), lab.addHost('r1', { ipv4: '10.77.0.21/24' }),
    lab.addHost('r2', { ipv4: '10.77.0.22/24' }), lab.addHost('da', { ipv4: '10.77.0.11/24' }),
  ]);
  await startNginx(r1, { port: 80, body: 'r1', tmpDir: lab.tmpDir });
  await startNginx(r2, { port: 80, body: 'r2', tmpDir: lab.tmpDir });
  const d = await startDirector(lab, a, config([1, 1]));
  await waitFor(async () => (await d.status()).virtual_servers[0]?.serving === true, 8_000, 'serving');
  await waitFor(async () => (await d.status()).virtual_servers[0]!.real_servers.every((r) => r.up), 5_000, 'real servers up');
  const before = (await d.instance()).transitions;

  const monitor = await startAddrMonitor(a);
  // A steady load of new connections while two reloads happen.
  const load = httpBatch(client, VIP, 80, 300, { pauseMs: 10 });
  await sleep(800);
  await writeFile(d.configPath, config([1, 3]));
  const r1st = await run([process.execPath, CLI, 'reload', '--control-socket', d.socket]);
  t.regex(r1st.stdout, /weight 1 -> 3/);
  await sleep(800);
  await writeFile(d.configPath, config([1, 3], [`${VIP}/24`, '10.77.0.51/24']));
  const r2nd = await run([process.execPath, CLI, 'reload', '--control-socket', d.socket]);
  t.regex(r2nd.stdout, /\+VIP 10\.77\.0\.51\/24/);
  const result = await load;
  t.deepEqual(result.errors, {}, 'no failed request across the reloads');
  t.is(Object.values(result.bodies).reduce((x, y) => x + y, 0), 300);

  await monitor.waitForOutput(/inet 10\.77\.0\.51\/24/, 5_000).catch(() => undefined); // asserted below
  await sleep(300);
  const mon = monitor.output();
  t.notRegex(mon, /Deleted .*inet /, `no address removed:\n${mon}`);
  t.regex(mon, /inet 10\.77\.0\.51\/24/, 'the added VIP appeared');
  t.true(await hasVip(a, '10.77.0.51'));
  t.is((await d.instance()).transitions, before, 'VRRP state kept');

  const after = await httpBatch(client, VIP, 80, 40);
  t.deepEqual(after.bodies, { r1: 10, r2: 30 }, 'new weights apply');
  t.deepEqual((await d.status()).virtual_servers[0]!.real_servers.map((r) => r.weight), [1, 3]);
});

netnsTest('a reload that removes a VIP and lowers priority keeps the instance and removes only that VIP', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('da', { ipv4: '10.77.0.11/24' });
  const toml = (vips: string[], priority: number) => directorToml({ routerId: 'a', priority, vips });
  const d = await startDirector(lab, a, toml([`${VIP}/24`, '10.77.0.51/24'], 150));
  await waitFor(async () => (await d.instance()).state === 'MASTER', 8_000, 'MASTER');
  await waitFor(() => hasVip(a, '10.77.0.51'), 2_000, 'both VIPs');
  const monitor = await startAddrMonitor(a);
  await writeFile(d.configPath, toml([`${VIP}/24`], 120));
  const r = await run([process.execPath, CLI, 'reload', '--control-socket', d.socket]);
  t.regex(r.stdout, /priority 150 -> 120/);
  t.regex(r.stdout, /-VIP 10\.77\.0\.51\/24/);
  await monitor.waitForOutput(/Deleted .*10\.77\.0\.51/, 5_000).catch(() => undefined); // asserted below
  await sleep(300);
  const mon = monitor.output();
  t.regex(mon, /Deleted .*10\.77\.0\.51/);
  t.notRegex(mon, /Deleted .*10\.77\.0\.50/);
  const st = await d.instance();
  t.is(st.state, 'MASTER');
  t.is(st.effective_priority, 120);
  t.true(await hasVip(a, VIP));
});
