// The real daemon (`keepalive-ts run`) forwarding in the kernel: lb_kind = "DR" and "NAT"
// virtual servers served while the VRRP instance is MASTER, a director pair failing over, the
// classic LVS-NAT pair (a vrrp_sync_group with a second VIP on the real-server side as their
// gateway), reload swapping rules without losing a connection, kill -9 and a clean stop.
import { createLab, netnsTest, waitFor, sleep, type Lab } from '../lib/netns.js';
import { startDirector, directorToml, hasVip, CLI, type Director } from '../lib/daemon.js';
import { run } from '../lib/procs.js';
import { httpBatch } from '../lib/clients.js';
import { httpGet } from '../lib/servers.js';
import { kernelFarm, startKeepAlive, startTransfer, transferResult, VIP, CLIENT } from '../lib/nft-lab.js';
import { writeFile } from 'node:fs/promises';

const NFT = '/usr/sbin/nft';

function serviceToml(kind: string, servers: string[], o: { algo?: string; weights?: number[]; extra?: string } = {}): string {
  const rs = servers
    .map((addr, i) => `
[[virtual_server.real_server]]
address = "${addr}"
port = 80
weight = ${o.weights?.[i] ?? 1}
check = { type = "HTTP_GET", path = "/", status_code = 200, connect_timeout = 1, retry = 1, delay_before_retry = 0.5 }
`)
    .join('');
  return `[[virtual_server]]
address = "${VIP}"
port = 80
protocol = "TCP"
lb_kind = "${kind}"
lb_algo = "${o.algo ?? 'rr'}"
delay_loop = 1
drain_timeout = 2
${o.extra ?? ''}
${rs}`;
}

async function serving(d: Director): Promise<void> {
  await waitFor(async () => (await d.instance()).state === 'MASTER', 10_000, `${d.host.name} MASTER`);
  await waitFor(async () => {
    const vs = (await d.status()).virtual_servers[0];
    return vs?.serving === true && vs.real_servers.filter((r) => r.up).length >= 2;
  }, 10_000, `${d.host.name} serving with its real servers up`);
}

async function ruleset(d: Director | { host: Director['host'] }): Promise<string> {
  return (await d.host.exec([NFT, 'list', 'ruleset'])).stdout;
}

netnsTest('daemon, lb_kind DR: MASTER forwards in the kernel (client address kept, Route), BACKUP has no rules; failover; kill -9 leaves a table the next start removes; a clean stop leaves nothing', async (t) => {
  const lab = await createLab(t);
  const farm = await kernelFarm(lab, 'DR', 2);
  await farm.director.exec(['ip', 'addr', 'del', `${VIP}/24`, 'dev', 'eth0']); // VRRP adds it
  const db = await lab.addHost('db', { ipv4: '10.77.0.12/24' });
  const svc = serviceToml('DR', ['10.77.0.21', '10.77.0.22']);
  const toml = (name: string, prio: number, extra = '') => directorToml({ routerId: name, priority: prio, vips: [`${VIP}/24`], extraInstance: extra, extra: svc });
  const da = await startDirector(lab, farm.director, toml('da', 150));
  const dB = await startDirector(lab, db, toml('db', 100));
  await serving(da);
  await waitFor(async () => (await dB.instance()).state === 'BACKUP', 5_000, 'db BACKUP');

  const rr = await httpBatch(farm.client, VIP, 80, 20);
  t.deepEqual(rr.errors, {});
  t.deepEqual(rr.bodies, { r1: 10, r2: 10 });
  t.is((await httpGet(farm.client, VIP, 80, '/who')).body, CLIENT);
  const st = (await da.status()).virtual_servers[0]!;
  t.like(st, { kind: 'DR', forward: 'Route', serving: true, scheduler_in_effect: 'rr (numgen inc)' });
  t.is(st.conns, 21);
  t.is(st.out_pkts, 0);
  t.regex(await ruleset(da), /table netdev keepalive_ts[\s\S]*hook ingress device "eth0"/);
  t.notRegex(await ruleset(dB), /hook ingress/, 'the BACKUP has our table but nothing dispatches to it');

  // Failover: the master dies without a goodbye; the backup forwards.
  await da.proc.kill('SIGKILL');
  t.regex(await ruleset(da), /hook ingress/, 'kill -9 leaves the table behind');
  await Promise.all([da.host.linkDown()]);
  await serving(dB);
  t.true(await hasVip(dB.host, VIP));
  await sleep(300);
  const after = await httpBatch(farm.client, VIP, 80, 10);
  t.deepEqual(after.errors, {});
  t.deepEqual(after.bodies, { r1: 5, r2: 5 });

  // Restart the old master with nopreempt: it stays BACKUP, and its first transaction removed the stale rules.
  await da.host.linkUp();
  const da2 = await startDirector(lab, farm.director, toml('da', 150, 'nopreempt = true\nstate = "BACKUP"'));
  await waitFor(async () => (await da2.instance()).state === 'BACKUP', 8_000, 'da BACKUP after restart');
  await waitFor(async () => !/hook ingress/.test(await ruleset(da2)), 5_000, 'stale ingress chain gone');
  t.regex(await ruleset(da2), /table netdev keepalive_ts/);

  // A clean stop removes everything of ours.
  await dB.proc.kill('SIGTERM');
  await dB.proc.exited;
  t.false((await ruleset(dB)).includes('keepalive_ts'), 'nft list ruleset shows nothing of ours after a clean stop');
});

netnsTest('daemon, lb_kind NAT: the classic LVS-NAT pair (vrrp_sync_group with the real servers\' gateway VIP) fails over; reload swaps rules without losing a connection; kill -9 then restart removes the stale rules; a clean stop leaves nothing', async (t) => {
  const lab: Lab = await createLab(t);
  const farm = await kernelFarm(lab, 'NAT', 2);
  // kernelFarm gave the first director 10.78.0.1 on the real-server side: that address is the
  // gateway VIP here, so move it into VRRP.
  await farm.director.exec(['sh', '-ec', `ip addr del ${VIP}/24 dev eth0\nip addr del 10.78.0.1/24 dev eth1\nip addr add 10.78.0.11/24 dev eth1`]);
  const db = await lab.addHost('db', { ipv4: '10.77.0.12/24' });
  await lab.addLink(db, 'br1', { ipv4: '10.78.0.12/24' });
  await db.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  const toml = (name: string, prio: number, algo: string, weights: number[] = [1, 1]) => `[global]
router_id = "${name}"
metrics_listen = ""

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = ${prio}
advert_int = 1
version = 3
virtual_ipaddress = ["${VIP}/24"]
garp_master_delay = 1

[[vrrp_instance]]
name = "VI_2"
interface = "eth1"
virtual_router_id = 52
priority = ${prio}
advert_int = 1
version = 3
virtual_ipaddress = ["10.78.0.1/24"]
garp_master_delay = 1

[[vrrp_sync_group]]
name = "G"
group = ["VI_1", "VI_2"]

${serviceToml('NAT', ['10.78.0.21', '10.78.0.22'], { algo, weights })}`;
  const da = await startDirector(lab, farm.director, toml('da', 150, 'rr'));
  const dB = await startDirector(lab, db, toml('db', 100, 'rr'));
  await serving(da);
  await waitFor(async () => (await da.instance('VI_2')).state === 'MASTER', 5_000, 'da MASTER of the gateway VIP too');
  const rr = await httpBatch(farm.client, VIP, 80, 20);
  t.deepEqual(rr.errors, {});
  t.deepEqual(rr.bodies, { r1: 10, r2: 10 });
  t.is((await httpGet(farm.client, VIP, 80, '/who')).body, CLIENT, 'NAT keeps the client address');
  const st = (await da.status()).virtual_servers[0]!;
  t.like(st, { kind: 'NAT', forward: 'Masq', serving: true });
  t.true(st.out_bytes > 0 && (st.out_pkts ?? 0) > 0, 'the replies come back through the director');

  // Reload: the scheduler and weights change while a keep-alive connection and a transfer run.
  const ka = startKeepAlive(farm.client, VIP, 80, 50);
  await ka.waitForOutput(/r\d\n/, 5_000);
  const tr = startTransfer(farm.client, VIP, 80);
  await tr.waitForOutput(/started/, 5_000);
  await writeFile(da.configPath, toml('da', 150, 'wrr', [1, 3]));
  await run([process.execPath, CLI, 'reload', '--control-socket', da.socket]);
  await waitFor(async () => /wrr/.test((await da.status()).virtual_servers[0]!.scheduler_in_effect), 8_000, 'reloaded to wrr');
  await sleep(500);
  t.false(/error|reconnected/.test(ka.output()), `the keep-alive connection survived the reload: ${ka.output().slice(-200)}`);
  t.deepEqual((await httpBatch(farm.client, VIP, 80, 8)).bodies, { r1: 2, r2: 6 }, 'new connections follow the new weights');
  await ka.kill('SIGTERM');
  t.true((await transferResult(tr)).ok, 'the transfer survived the reload');

  // Failover of the pair: the backup takes both VIPs; the real servers' gateway moves with it.
  await Promise.all([da.proc.kill('SIGKILL'), da.host.linkDown()]);
  await serving(dB);
  await waitFor(async () => (await dB.instance('VI_2')).state === 'MASTER', 8_000, 'db MASTER of the gateway VIP');
  await sleep(300);
  const after = await httpBatch(farm.client, VIP, 80, 10);
  t.deepEqual(after.errors, {});
  t.deepEqual(after.bodies, { r1: 5, r2: 5 });
  t.is((await dB.status()).virtual_servers[0]!.conns, 10);

  // kill -9 left da's NAT rules behind (the VIP still dispatched to a service); restarted as a
  // BACKUP (nopreempt), its first transaction replaces them: nothing dispatches there any more.
  const dispatch = new RegExp(`${VIP.replace(/\./g, '\\.')} \\. tcp \\. 80 : goto`);
  const stale = await ruleset(da);
  t.regex(stale, dispatch, `kill -9 leaves the NAT dispatch behind: ${stale}`);
  await da.host.linkUp();
  const da2 = await startDirector(lab, farm.director, toml('da', 150, 'rr').replace(/priority = 150\n/g, 'priority = 150\nnopreempt = true\nstate = "BACKUP"\n'));
  await waitFor(async () => (await da2.instance()).state === 'BACKUP', 8_000, 'da BACKUP after restart');
  await waitFor(async () => !dispatch.test(await ruleset(da2)), 5_000, 'stale NAT dispatch gone');
  t.regex(await ruleset(da2), /table inet keepalive_ts/);
  t.deepEqual(new Set((await dB.status()).virtual_servers.map((v) => v.serving)), new Set([true]), 'db still serves');

  // A clean stop removes everything of ours.
  // (SIGTERM only: the lab's kill() would SIGKILL after 3 s, and the MASTER drains for drain_timeout first.)
  const t0 = Date.now();
  for (const d of [da2, dB]) process.kill(d.proc.pid, 'SIGTERM');
  const exits = await Promise.all([da2.proc.exited, dB.proc.exited]);
  t.log(`clean stops took ${Date.now() - t0} ms: ${JSON.stringify(exits)}`);
  t.deepEqual(exits.map((e) => e.code), [0, 0]);
  for (const d of [da2, dB]) {
    const left = await ruleset(d);
    t.false(left.includes('keepalive_ts'), `${d.host.name}: nft list ruleset shows nothing of ours after a clean stop: ${left}`);
  }
});
