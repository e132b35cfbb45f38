// `keepalive-ts import` output runs: the Ubuntu LVS-DR write-up's ldirectord.cf (our fixture
// test/fixtures/import/ldirectord/ubuntu-lvs-dr.cf) is imported with the CLI and the result is
// started as is. The VIP is added by hand, as heartbeat would add it for ldirectord.
//
// LVS-DR itself needs a DR data plane (the nftables branch); until it lands the import turns
// `gate` into NAT (it says so on stderr) and this test runs that: traffic through the VIP,
// HTTP_GET with the request path and the receive regex deciding which real server is used.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab, netnsTest, waitFor } from '../lib/netns.js';
import { CLI, startDirector } from '../lib/daemon.js';
import { startNginx } from '../lib/servers.js';
import { httpBatch } from '../lib/clients.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const FIXTURE = join(ROOT, 'test/fixtures/import/ldirectord/ubuntu-lvs-dr.cf');
const VIP = '10.77.0.50';

netnsTest('the imported ldirectord.cf runs: HTTP through the VIP, negotiate checks with request/receive take a server out', async (t) => {
  const imported = spawnSync(process.execPath, [CLI, 'import', FIXTURE], { encoding: 'utf8' });
  t.is(imported.status, 0, imported.stderr);
  t.regex(imported.stderr, /gate \(LVS-DR\): .*imported as NAT/);
  t.log(`import stderr:\n${imported.stderr}`);

  const lab = await createLab(t);
  const [cl, da, r1, r2] = await Promise.all([
    lab.addHost('cl', { ipv4: '10.77.0.100/24' }), lab.addHost('da', { ipv4: '10.77.0.11/24' }),
    lab.addHost('r1', { ipv4: '10.77.0.21/24' }), lab.addHost('r2', { ipv4: '10.77.0.22/24' }),
  ]);
  const [, n2] = await Promise.all([
    startNginx(r1, { port: 80, body: 'Test Page r1', tmpDir: lab.tmpDir }),
    startNginx(r2, { port: 80, body: 'Test Page r2', tmpDir: lab.tmpDir }),
  ]);
  await da.exec(['ip', 'addr', 'add', `${VIP}/24`, 'dev', 'eth0']);

  const d = await startDirector(lab, da, imported.stdout);
  await waitFor(async () => (await d.status()).virtual_servers[0]?.serving === true, 10_000, 'the virtual server serving');
  const st = (await d.status()).virtual_servers[0]!;
  t.like(st, { address: VIP, port: 80, protocol: 'TCP', lb_algo: 'wlc' });
  t.deepEqual(st.real_servers.map((r) => `${r.address}:${r.port}`), ['10.77.0.21:80', '10.77.0.22:80']);

  const before = await httpBatch(cl, VIP, 80, 20);
  t.deepEqual(before.errors, {});
  t.is(Object.entries(before.bodies).filter(([b]) => !/^Test Page r[12]$/.test(b)).length, 0);

  // r2 keeps answering, but without the receive string: its check must fail on the regex.
  await n2.kill('SIGTERM');
  await startNginx(r2, { port: 80, body: 'maintenance', tmpDir: join(lab.tmpDir, 'r2-maint') });
  await waitFor(async () => (await d.status()).virtual_servers[0]!.real_servers.find((r) => r.address === '10.77.0.22')?.up === false, 10_000, 'r2 down on the receive regex');
  t.regex(d.proc.output(), /does not match \/Test Page\//);
  const after = await httpBatch(cl, VIP, 80, 20);
  t.deepEqual(after.errors, {});
  t.deepEqual(after.bodies, { 'Test Page r1': 20 });
});
