// Scale-out by BGP (issue 13): three keepalive-ts directors, each running its own BIRD started by
// keepalive-ts, announce the service addresses to a router running BIRD 2 with ECMP. Data plane:
// the user-space proxy (lb_kind PROXY), so these tests need no kernel forwarding.
import { createLab, netnsTest, waitFor, sleep } from '../lib/netns.js';
import { startDirector, type Director } from '../lib/daemon.js';
import { startNginx } from '../lib/servers.js';
import { httpBatch } from '../lib/clients.js';
import { buildBgpLab, directorBgpToml, nextHops, startBgpSet, startRouterBird, webService, VIP4, VIP6 } from '../lib/bgp.js';

const NFT = '/usr/sbin/nft';

async function conns(d: Director, vip: string): Promise<number> {
  return (await d.status()).virtual_servers.find((v) => v.address === vip)?.conns ?? 0;
}

netnsTest('three directors announce while healthy: three next hops (IPv4 and IPv6), flows on every director; quorum loss withdraws only there, recovery re-announces', async (t) => {
  const lab = await createLab(t);
  const bl = await buildBgpLab(lab, { directors: 3, reals: 2 });
  await Promise.all(bl.reals.map((r, i) => startNginx(r, { port: 80, body: `rs${i + 1}`, tmpDir: lab.tmpDir })));
  const router = await startRouterBird(bl);
  const svc = webService(VIP4, bl.reals) + webService(VIP6, bl.reals);
  const ds = await Promise.all(bl.directors.map((d) => startDirector(lab, d, directorBgpToml(lab, d, { extra: svc }))));
  const all = bl.directors.map((d) => d.ipv4!).sort();
  const all6 = bl.directors.map((d) => d.ipv6!).sort();
  await waitFor(async () => (await nextHops(bl.router, VIP4)).join() === all.join(), 30_000, 'three IPv4 next hops at the router');
  await waitFor(async () => (await nextHops(bl.router, VIP6)).join() === all6.join(), 30_000, 'three IPv6 next hops at the router');

  // Flows hash on ports at the router: 60 connections from one client reach every director.
  const before = await Promise.all(ds.map((d) => conns(d, VIP4)));
  const r = await httpBatch(bl.client, VIP4, 80, 60);
  t.deepEqual(r.errors, {});
  t.is(Object.values(r.bodies).reduce((a, b) => a + b, 0), 60);
  const per = (await Promise.all(ds.map((d) => conns(d, VIP4)))).map((n, i) => n - before[i]!);
  t.log(`60 IPv4 connections per director: ${per.join(' / ')}`);
  t.true(per.every((n) => n > 0), `every director got connections: ${per.join(' / ')}`);
  t.is(per.reduce((a, b) => a + b, 0), 60);
  const r6 = await httpBatch(bl.client, VIP6, 80, 30);
  t.deepEqual(r6.errors, {});

  // Status: both sessions up with an uptime, both prefixes announced.
  const s1 = (await ds[0]!.status()).bgp!;
  t.deepEqual(s1.sessions.map((x) => [x.peer, x.state, x.bfd]), [['10.78.0.1', 'Established', 'Up'], ['fd78::1', 'Established', 'Up']]);
  t.true(s1.sessions.every((x) => x.uptime_s !== null && x.exported === 1));
  t.deepEqual(s1.prefixes.map((p) => [p.prefix, p.mode, p.announced]), [[`${VIP4}/32`, 'healthy', true], [`${VIP6}/128`, 'healthy', true]]);
  t.true(s1.bird.running);

  // d1 cannot reach the IPv4 real servers any more: its IPv4 service loses quorum.
  const d1 = bl.directors[0]!;
  await d1.exec([NFT, '-f', '-'], { input: 'table inet kt_block {\n chain out {\n  type filter hook output priority 0;\n  ip daddr { 10.78.0.21, 10.78.0.22 } tcp dport 80 reject with tcp reset\n }\n}\n' });
  await waitFor(async () => (await nextHops(bl.router, VIP4)).join() === all.slice(1).join(), 15_000, 'the router drops d1 for the IPv4 address');
  const s1b = (await ds[0]!.status()).bgp!;
  const p4 = s1b.prefixes.find((p) => p.prefix === `${VIP4}/32`)!;
  t.false(p4.announced);
  t.is(p4.reason, `withdrawn: no quorum on tcp/${VIP4}:80`);
  t.is(p4.last_withdrawal?.reason, p4.reason);
  t.is(s1b.withdrawals.quorum, 1);
  t.true(s1b.prefixes.find((p) => p.prefix === `${VIP6}/128`)!.announced, 'the IPv6 address keeps its quorum on d1');
  t.is((await nextHops(bl.router, VIP6)).length, 3);
  // The other directors still announce; d1 stopped serving the address it withdrew.
  for (const d of ds.slice(1)) t.true((await d.status()).bgp!.prefixes.every((p) => p.announced));
  await waitFor(async () => (await ds[0]!.status()).virtual_servers.find((v) => v.address === VIP4)?.serving === false, 5_000, 'd1 unserves the IPv4 service');
  // Clients see no error: the router sends everything to d2 and d3.
  const r2 = await httpBatch(bl.client, VIP4, 80, 30);
  t.deepEqual(r2.errors, {});
  // Sessions were not touched by the withdrawal.
  const sessions = await router!.birdc('show', 'protocols');
  t.is((sessions.match(/Established/g) ?? []).length, 6, sessions);

  // Recovery: the checks pass again, d1 serves and re-announces.
  await d1.exec([NFT, 'delete', 'table', 'inet', 'kt_block']);
  await waitFor(async () => (await nextHops(bl.router, VIP4)).join() === all.join(), 15_000, 'd1 re-announced');
  const s1c = (await ds[0]!.status()).bgp!;
  t.true(s1c.prefixes.every((p) => p.announced));
  t.is(s1c.prefixes[0]!.last_withdrawal?.reason, `withdrawn: no quorum on tcp/${VIP4}:80`);
  await sleep(200);
  const r3 = await httpBatch(bl.client, VIP4, 80, 30);
  t.deepEqual(r3.errors, {});
});

netnsTest('announce = "master": only the VRRP MASTER announces; the backup announces once it takes over', async (t) => {
  const lab = await createLab(t);
  const bl = await buildBgpLab(lab, { directors: 2, reals: 1 });
  await startNginx(bl.reals[0]!, { port: 80, body: 'rs1', tmpDir: lab.tmpDir });
  await startRouterBird(bl);
  const VIPM = '10.99.0.20';
  const toml = (d: typeof bl.directors[0], priority: number) => directorBgpToml(lab, d!, {
    peers: 'v4',
    extra: [
      '[[vrrp_instance]]', 'name = "VI_1"', 'interface = "eth0"', 'virtual_router_id = 51', `priority = ${priority}`,
      'advert_int = 0.1', 'version = 3', `virtual_ipaddress = ["${VIPM}/32"]`, '',
      webService(VIPM, bl.reals),
    ].join('\n'),
  });
  const [h1, h2] = bl.directors as [typeof bl.directors[0], typeof bl.directors[0]];
  const d1 = await startDirector(lab, h1!, toml(h1, 150));
  const d2 = await startDirector(lab, h2!, toml(h2, 100));
  await waitFor(async () => (await d1.instance()).state === 'MASTER' && (await d2.instance()).state === 'BACKUP', 10_000, 'd1 MASTER, d2 BACKUP');
  await waitFor(async () => (await nextHops(bl.router, VIPM)).join() === h1!.ipv4, 20_000, 'the MASTER announces');
  const s2 = (await d2.status()).bgp!;
  t.deepEqual(s2.prefixes.map((p) => [p.prefix, p.mode, p.announced, p.reason]), [[`${VIPM}/32`, 'master', false, 'withdrawn: vrrp_instance VI_1 is not MASTER']]);
  await waitFor(async () => (await d2.status()).bgp!.sessions[0]!.established, 20_000, 'the backup keeps its session up, ready');
  t.deepEqual((await httpBatch(bl.client, VIPM, 80, 10)).errors, {});
  // The MASTER stops: the backup takes over the VIP and announces it before the old MASTER withdraws,
  // so the router always has a route.
  const mon = bl.router.spawn(['ip', 'monitor', 'route']);
  await sleep(200);
  process.kill(d1.proc.pid, 'SIGTERM');
  await waitFor(async () => (await d2.instance()).state === 'MASTER', 5_000, 'd2 MASTER');
  await waitFor(async () => (await nextHops(bl.router, VIPM)).join() === h2!.ipv4, 10_000, 'the new MASTER announces');
  t.true((await d2.status()).bgp!.prefixes[0]!.announced);
  t.is((await d1.proc.exited).code, 0);
  await sleep(100);
  const changes = mon.output().split('\n').filter((l) => l.includes(VIPM));
  t.log(changes.join('\n'));
  t.false(changes.some((l) => l.startsWith('Deleted')), 'the router never lost the route');
  t.deepEqual((await httpBatch(bl.client, VIPM, 80, 10)).errors, {});
});
