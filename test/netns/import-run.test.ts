// `keepalive-ts import` output runs: the Ubuntu LVS-DR write-up's ldirectord.cf (our fixture
// test/fixtures/import/ldirectord/ubuntu-lvs-dr.cf) is imported with the CLI and the result is
// started as is. The VIP is added by hand, as heartbeat would add it for ldirectord. And a
// keepalived.conf with routes, rules and static addresses, one route of which keepalive-ts refuses,
// is imported and run: the kernel shows every line but that one.
//
// `gate` is imported as lb_kind = "DR" and runs as DR through the nftables data plane, with the
// real servers set up as the write-up says (VIP on lo, arp_ignore=1 / arp_announce=2): traffic
// through the VIP (nft-dr.test.ts proves what DR itself does), HTTP_GET with the request path
// and the receive regex deciding which real server is used.
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab, netnsTest, waitFor } from '../lib/netns.js';
import { CLI, startDirector } from '../lib/daemon.js';
import { startNginx } from '../lib/servers.js';
import { httpBatch } from '../lib/clients.js';
import { prepareDrRealServer } from '../lib/nft-lab.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const FIXTURE = join(ROOT, 'test/fixtures/import/ldirectord/ubuntu-lvs-dr.cf');
const VIP = '10.77.0.50';

netnsTest('the imported ldirectord.cf runs: HTTP through the VIP, negotiate checks with request/receive take a server out', async (t) => {
  const imported = spawnSync(process.execPath, [CLI, 'import', FIXTURE], { encoding: 'utf8' });
  t.is(imported.status, 0, imported.stderr);
  t.regex(imported.stdout, /^lb_kind = "DR"$/m, 'gate is imported as DR');
  t.log(`import stderr:\n${imported.stderr}`);
  const toml = imported.stdout;

  const lab = await createLab(t);
  const [cl, da, r1, r2] = await Promise.all([
    lab.addHost('cl', { ipv4: '10.77.0.100/24' }), lab.addHost('da', { ipv4: '10.77.0.11/24' }),
    lab.addHost('r1', { ipv4: '10.77.0.21/24' }), lab.addHost('r2', { ipv4: '10.77.0.22/24' }),
  ]);
  await Promise.all([prepareDrRealServer(r1, VIP), prepareDrRealServer(r2, VIP)]);
  const [, n2] = await Promise.all([
    startNginx(r1, { port: 80, body: 'Test Page r1', tmpDir: lab.tmpDir }),
    startNginx(r2, { port: 80, body: 'Test Page r2', tmpDir: lab.tmpDir }),
  ]);
  await da.exec(['ip', 'addr', 'add', `${VIP}/24`, 'dev', 'eth0']);

  const d = await startDirector(lab, da, toml);
  await waitFor(async () => (await d.status()).virtual_servers[0]?.serving === true, 10_000, 'the virtual server serving');
  const st = (await d.status()).virtual_servers[0]!;
  t.like(st, { address: VIP, port: 80, protocol: 'TCP', lb_algo: 'wlc' });
  t.like(st, { kind: 'DR', forward: 'Route' }, 'runs as imported: direct routing in the kernel');
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

const KEEPALIVED_CONF = `global_defs {
    router_id lab-a
}
static_ipaddress {
    192.168.99.1/24 dev eth0
}
static_routes {
    10.210.0.0/16 via 10.77.0.1
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        ${VIP}/24
    }
    virtual_routes {
        10.200.0.0/16 via 10.77.0.1
        10.201.0.0/16 via 10.77.0.1 or 10.77.0.2
        blackhole 10.202.0.0/16
    }
    virtual_rules {
        from ${VIP} table 100 priority 1000
    }
}
`;

netnsTest('an imported keepalived.conf runs: its routes, rules and static addresses are in the kernel, the refused multipath route is not', async (t) => {
  const lab = await createLab(t);
  const conf = join(lab.tmpDir, 'keepalived.conf');
  await writeFile(conf, KEEPALIVED_CONF);
  const imported = spawnSync(process.execPath, [CLI, 'import', conf], { encoding: 'utf8' });
  t.is(imported.status, 0, imported.stderr);
  t.regex(imported.stderr, /keepalived\.conf:21: unsupported: virtual_routes "10\.201\.0\.0\/16 via 10\.77\.0\.1 or 10\.77\.0\.2": "or" is not supported/);
  t.log(`import stderr:\n${imported.stderr}`);

  const da = await lab.addHost('da', { ipv4: '10.77.0.11/24' });
  const d = await startDirector(lab, da, imported.stdout);
  await waitFor(async () => (await d.instance()).state === 'MASTER', 10_000, 'VI_1 MASTER', 50);
  const view = async () => `${(await da.exec(['ip', 'route', 'show', 'table', 'all'])).stdout}${(await da.exec(['ip', 'rule'])).stdout}${(await da.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0'])).stdout}`;
  const want = [
    /^10\.200\.0\.0\/16 via 10\.77\.0\.1 dev eth0 proto keepalived/m,
    /^blackhole 10\.202\.0\.0\/16 proto keepalived/m,
    /^1000:\s+from 10\.77\.0\.50 lookup 100 proto keepalived/m,
    /^10\.210\.0\.0\/16 via 10\.77\.0\.1 dev eth0 proto keepalived/m,
    /inet 192\.168\.99\.1\/24 /,
  ];
  await waitFor(async () => { const v = await view(); return want.every((re) => re.test(v)); }, 5_000, 'the imported routes, rules and addresses', 50).catch(() => undefined);
  const v = await view();
  for (const re of want) t.regex(v, re);
  t.notRegex(v, /10\.201\.0\.0/, 'the refused multipath route is not installed');
});
