// The BIRD side of [bgp] (issue 13): a missing BIRD is named at `check` and `run`, BIRD accepts
// every generated config, BIRD is restarted when it dies and dies with keepalive-ts, and MED /
// AS-path prepend make a backup director.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLab, netnsTest, waitFor } from '../lib/netns.js';
import { CLI, startDirector, type Director } from '../lib/daemon.js';
import { run } from '../lib/procs.js';
import { startNginx } from '../lib/servers.js';
import { buildBgpLab, directorBgpToml, nextHops, startRouterBird, webService, VIP4, type BgpLab, assertSameSession } from '../lib/bgp.js';
import { parseShowProtocols } from '../../src/announce/bird-status.js';
import type { LabHost } from '../lib/netns.js';

const FULL = `[bgp]
local_as = 4200000001
router_id = "10.78.0.11"
med = 100
as_path_prepend = 3
bfd_interval = 0.05
bfd_multiplier = 5
track_interface = ["eth0"]
kernel_table = 4242
kernel_protocol = 201
runtime_dir = "/run/keepalive-ts/bird-check"

[[bgp.peer]]
address = "10.78.0.1"
remote_as = 65000
bfd = false
hold_time = 30
password = "s3cret with spaces"

[[bgp.peer]]
address = "fd78::1"
remote_as = 65010

# (PROXY: \`check\` runs in the test's own namespace, whose IP forwarding a NAT service would need)
[[virtual_server]]
address = "10.99.0.10"
port = 80
lb_kind = "PROXY"
[[virtual_server]]
address = "fd99::10"
port = 53
protocol = "UDP"
lb_kind = "PROXY"
`;

netnsTest('check and run name the missing BIRD and its Debian package; check runs the generated config through the real bird', async (t) => {
  const lab = await createLab(t);
  const h = await lab.addHost('d1');
  const file = join(lab.tmpDir, 'full.toml');
  await writeFile(file, FULL);
  // In the lab host, with IP forwarding on (the NAT services' host check would warn otherwise):
  // not in the initial namespace, whose sysctls are whatever the machine has (IPv6 forwarding is
  // off on a fresh Debian install).
  await h.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  const ok = await h.exec([process.execPath, CLI, 'check', '--config', file], { allowFail: true });
  // check ran the generated bird.conf through the real bird -p (the BIRD host check).
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /OK \(.*bgp AS 4200000001 with 2 peers\)$/m);
  t.is(ok.stderr, '');
  // Hide bird and birdc in a private mount namespace: /dev/null is not executable.
  const hidden = (cmd: string) => h.exec(['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
    `for b in bird birdc; do p=$(command -v $b || echo /usr/sbin/$b); mount --bind /dev/null "$p"; done; exec ${cmd}`], { allowFail: true });
  const check = await hidden(`${process.execPath} ${CLI} check --config ${file}`);
  t.is(check.code, 1);
  t.regex(check.stderr, /full\.toml:1 bgp: \[bgp\] needs BIRD 2, and bird is not installed: install the Debian package bird2/);
  const runIt = await hidden(`${process.execPath} ${CLI} run --config ${file} --control-socket ${join(lab.tmpDir, 'c.sock')} --pid-file ${join(lab.tmpDir, 'p.pid')}`);
  t.is(runIt.code, 1);
  t.regex(runIt.stderr, /\[bgp\] needs BIRD 2, and bird is not installed: install the Debian package bird2/);
  // Without [bgp], BIRD is not needed.
  await writeFile(file, '[[virtual_server]]\naddress = "10.99.0.10"\nport = 80\n');
  t.is((await hidden(`${process.execPath} ${CLI} check --config ${file}`)).code, 0);
});

async function setUp(t: Parameters<Parameters<typeof netnsTest>[1]>[0], opts: { directors: number; extra?: (d: LabHost) => string } = { directors: 1 }): Promise<{ bl: BgpLab; ds: Director[]; birdc(bl: BgpLab, d: LabHost, ...cmd: string[]): Promise<string> }> {
  const lab = await createLab(t);
  const bl = await buildBgpLab(lab, { directors: opts.directors, reals: 1 });
  await startNginx(bl.reals[0]!, { port: 80, body: 'rs1', tmpDir: lab.tmpDir });
  await startRouterBird(bl);
  const ds = await Promise.all(bl.directors.map((d) => startDirector(lab, d, directorBgpToml(lab, d, { extra: webService(VIP4, bl.reals), bgpExtra: opts.extra?.(d) ?? '', peers: 'v4' }))));
  return {
    bl,
    ds,
    birdc: async (b, d, ...cmd) => (await d.exec(['birdc', '-s', join(b.lab.tmpDir, `bird-${d.name}`, 'bird.ctl'), ...cmd])).stdout,
  };
}

netnsTest('BIRD killed alone is restarted and re-announces; keepalive-ts killed alone takes its BIRD with it', async (t) => {
  const { bl, ds } = await setUp(t, { directors: 1 });
  const d1 = bl.directors[0]!;
  await waitFor(async () => (await nextHops(bl.router, VIP4)).length === 1, 30_000, 'announced');
  const first = (await ds[0]!.status()).bgp!.bird;
  t.true(first.running);
  t.is(first.restarts, 0);
  process.kill(first.pid!, 'SIGKILL');
  // BIRD's TCP sessions close with it: the router drops the route at once.
  await waitFor(async () => (await nextHops(bl.router, VIP4)).length === 0, 5_000, 'the router drops the route when BIRD dies');
  await waitFor(async () => (await ds[0]!.status()).bgp!.bird.restarts === 1, 10_000, 'BIRD restarted');
  const second = (await ds[0]!.status()).bgp!.bird;
  t.true(second.running);
  t.not(second.pid, first.pid);
  t.regex(second.last_error ?? '', /BIRD exited \(SIGKILL\)/);
  await waitFor(async () => (await nextHops(bl.router, VIP4)).length === 1, 20_000, 're-announced by the new BIRD');
  t.true((await ds[0]!.status()).bgp!.sessions[0]!.established);

  // keepalive-ts alone (not its process group) killed: pdeathsig takes BIRD down too.
  const runtime = join(bl.lab.tmpDir, 'bird-d1');
  process.kill(ds[0]!.proc.pid, 'SIGKILL');
  await waitFor(async () => !(await d1.exec(['ps', '-eo', 'args'])).stdout.includes(runtime), 3_000, 'BIRD died with keepalive-ts');
  await waitFor(async () => (await nextHops(bl.router, VIP4)).length === 0, 5_000, 'the router drops the route');

  // A restarted keepalive-ts removes the route the killed one left in its kernel table before announcing.
  t.regex((await d1.exec(['ip', 'route', 'show', 'table', '100'])).stdout, /10\.99\.0\.10/, 'a killed run leaves its route behind');
  await d1.exec(['ip', 'route', 'add', '10.99.0.99/32', 'dev', 'lo', 'table', '100', 'proto', '200']);
  const again = await startDirector(bl.lab, d1, directorBgpToml(bl.lab, d1, { extra: webService(VIP4, bl.reals), peers: 'v4' }));
  await waitFor(async () => (await nextHops(bl.router, VIP4)).length === 1, 30_000, 'announced again');
  t.is((await d1.exec(['ip', 'route', 'show', 'table', '100'])).stdout.trim().split('\n').length, 1, 'the stray route is gone');
  t.deepEqual(await nextHops(bl.router, '10.99.0.99'), []);
  t.true((await again.status()).bgp!.bird.running);
  // A route deleted behind keepalive-ts's back is put back by the periodic reconcile (10 s).
  await d1.exec(['ip', 'route', 'del', `${VIP4}/32`, 'table', '100']);
  await waitFor(async () => (await nextHops(bl.router, VIP4)).length === 0, 5_000, 'the router lost the route');
  await waitFor(async () => (await nextHops(bl.router, VIP4)).length === 1, 15_000, 'the route is back within the reconcile period');
});

netnsTest('MED and AS-path prepend make a backup director; changing them on reload keeps the session', async (t) => {
  // d2 also uses its own kernel table and route protocol number: BIRD learns what keepalive-ts puts there.
  const { bl, ds, birdc } = await setUp(t, { directors: 2, extra: (d) => (d.name === 'd1' ? 'med = 0' : 'med = 100\nkernel_table = 4242\nkernel_protocol = 201') });
  const [d1h, d2h] = bl.directors as [LabHost, LabHost];
  // Both paths reach the router, only the lower MED is installed.
  const routerBirdc = async (...cmd: string[]) => (await bl.router.exec(['birdc', '-s', join(bl.lab.tmpDir, 'router-bird', 'bird.ctl'), ...cmd], { allowFail: true })).stdout;
  await waitFor(async () => ((await routerBirdc('show', 'route', 'all', `${VIP4}/32`)).match(/BGP\.med/g) ?? []).length === 2, 30_000, 'both paths at the router');
  const routes = await routerBirdc('show', 'route', 'all', `${VIP4}/32`);
  t.regex(routes, /BGP\.med: 100/);
  t.regex(routes, /BGP\.med: 0/);
  t.deepEqual(await nextHops(bl.router, VIP4), [d1h.ipv4!], 'the primary (MED 0) carries the traffic');
  t.regex((await d2h.exec(['ip', 'route', 'show', 'table', '4242'])).stdout, /^10\.99\.0\.10 dev lo proto 201 scope link/);
  t.is((await d2h.exec(['ip', 'route', 'show', 'table', '100'], { allowFail: true })).stdout.trim(), '', 'nothing in the default table');
  const before = parseShowProtocols(await birdc(bl, d2h, 'show', 'protocols', 'all')).find((p) => p.proto === 'BGP')!;

  const reload = async (d: Director, h: LabHost, bgpExtra: string) => {
    await writeFile(d.configPath, directorBgpToml(bl.lab, h, { extra: webService(VIP4, bl.reals), bgpExtra: `${bgpExtra}\nkernel_table = 4242\nkernel_protocol = 201`, peers: 'v4' }));
    return (await run([process.execPath, CLI, 'reload', '--control-socket', d.socket])).stdout;
  };
  // Equal MEDs: ECMP over both.
  t.regex(await reload(ds[1]!, d2h, 'med = 0'), /bgp: med 100 -> 0/);
  await waitFor(async () => (await nextHops(bl.router, VIP4)).length === 2, 10_000, 'ECMP with equal MEDs');
  // A longer AS path makes d2 the backup again.
  t.regex(await reload(ds[1]!, d2h, 'med = 0\nas_path_prepend = 2'), /bgp: as_path_prepend 0 -> 2/);
  await waitFor(async () => (await nextHops(bl.router, VIP4)).join() === d1h.ipv4, 10_000, 'prepended path loses');
  t.regex(await routerBirdc('show', 'route', 'all', `${VIP4}/32`), /BGP\.as_path: 65001 65001 65001/);
  const after = parseShowProtocols(await birdc(bl, d2h, 'show', 'protocols', 'all')).find((p) => p.proto === 'BGP')!;
  assertSameSession(t, after, before, 'policy changes did not reset the session');
  // The primary stops: the backup takes the traffic.
  process.kill(ds[0]!.proc.pid, 'SIGTERM');
  await waitFor(async () => (await nextHops(bl.router, VIP4)).join() === d2h.ipv4, 10_000, 'the backup carries the traffic');
});
