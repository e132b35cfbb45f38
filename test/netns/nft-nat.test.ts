// LVS-NAT and FULLNAT through nftables + conntrack (NftablesDataplane driven in the director's
// namespace): two segments, the real servers route back through the director.
import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, sleep, waitFor } from '../lib/netns.js';
import { httpBatch } from '../lib/clients.js';
import { httpGet, startTcpdump } from '../lib/servers.js';
import { startNftDriver, type RemoteNftDataplane } from '../lib/nft-remote.js';
import { natFarm, pool, startKeepAlive, startRealServer, startTransfer, svcSpec, transferResult, VIP, CLIENT, type NatFarm } from '../lib/nft-lab.js';
import { endpoint, endpointText } from '../../src/util/endpoint.js';

const NFT = '/usr/sbin/nft';

async function setup(t: ExecutionContext, opts: Parameters<typeof natFarm>[1] = {}): Promise<{ f: NatFarm; dp: RemoteNftDataplane }> {
  const lab = await createLab(t);
  const f = await natFarm(lab, opts);
  const dp = await startNftDriver(lab, f.director);
  return { f, dp };
}

const R1 = '10.78.0.21';
const R2 = '10.78.0.22';

netnsTest('NAT rr: the real server sees the client, replies cross the director and are un-NATed; 1:1 and 1:3 splits; counters both ways', async (t) => {
  const { f, dp } = await setup(t);
  const spec = svcSpec({ kind: 'NAT', scheduler: 'rr' });
  await dp.configure([spec]);
  await dp.setPool(spec.key, pool([[R1, 80, 1], [R2, 80, 1]]));
  await dp.serve(spec.key);
  const cap = await startTcpdump(f.director, `tcp and src port 80 and (src host ${R1} or src host ${R2})`, { iface: 'eth1' });
  const rr = await httpBatch(f.client, VIP, 80, 40);
  t.deepEqual(rr.errors, {});
  t.deepEqual(rr.bodies, { r1: 20, r2: 20 });
  t.is((await httpGet(f.client, VIP, 80, '/who')).body, CLIENT, 'NAT keeps the client address');
  await sleep(300);
  await cap.stop();
  t.true(cap.text().split('\n').filter((l) => / IP /.test(l)).length > 40, 'the replies come back through the director');
  const st = (await dp.stats()).services[0]!;
  t.is(st.kind, 'NAT');
  t.is(st.conns, 41);
  t.true(st.in_pkts! > 0 && st.out_pkts! > 0 && st.in_bytes > 0 && st.out_bytes > st.in_bytes, JSON.stringify(st));
  for (const d of st.dests) t.true(d.out_pkts! > 0 && d.in_pkts! > 0);
  await waitFor(async () => ((await dp.stats()).services[0]!.inact_conns ?? 0) >= 41, 5_000, 'conntrack counts', 100);
  const counted = (await dp.stats()).services[0]!;
  t.true((counted.inact_conns ?? 0) >= 41, `closed connections in TIME_WAIT are InActConn: ${counted.inact_conns}`);
  t.is(counted.active_conns, 0);

  await dp.setPool(spec.key, pool([[R1, 80, 1], [R2, 80, 3]]));
  const wrrSpec = svcSpec({ kind: 'NAT', scheduler: 'wrr' });
  await dp.configure([wrrSpec]);
  await dp.setPool(wrrSpec.key, pool([[R1, 80, 1], [R2, 80, 3]]));
  await dp.serve(wrrSpec.key);
  t.deepEqual((await httpBatch(f.client, VIP, 80, 40)).bodies, { r1: 10, r2: 30 });
  await dp.close();
  t.false((await f.director.exec([NFT, 'list', 'ruleset'])).stdout.includes('keepalive_ts'));
});

netnsTest('NAT: established connections keep their server across pool changes (conntrack); weight 0 drains a 10 s transfer; removed server, sorry server, recovery', async (t) => {
  const { f, dp } = await setup(t, { sorry: true });
  const spec = svcSpec({ kind: 'NAT', scheduler: 'rr' });
  await dp.configure([spec]);
  await dp.setPool(spec.key, pool([[R1, 80, 1]], ['10.78.0.30', 80]));
  await dp.serve(spec.key);
  const ka = startKeepAlive(f.client, VIP, 80, 50);
  await ka.waitForOutput(/r1\n/, 5_000);
  const tr = startTransfer(f.client, VIP, 80);
  await tr.waitForOutput(/started/, 5_000);
  for (const [w1, w2] of [[1, 1], [1, 4], [0, 1]]) {
    await dp.setPool(spec.key, pool([[R1, 80, w1!], [R2, 80, w2!]], ['10.78.0.30', 80]));
    await sleep(200);
  }
  t.deepEqual((await httpBatch(f.client, VIP, 80, 6)).bodies, { r2: 6 }, 'weight 0: no new connection to r1');
  const r = await transferResult(tr);
  t.true(r.ok && r.bytes === 2 * 1024 * 1024 && r.ms > 5_000, JSON.stringify(r));
  await ka.kill('SIGTERM');
  t.false(/r2|error|reconnected/.test(ka.output()), `the keep-alive connection stayed on r1: ${ka.output().slice(-200)}`);

  await f.n1.kill('SIGKILL');
  await dp.setPool(spec.key, pool([[R2, 80, 1]], ['10.78.0.30', 80]));
  const after = await httpBatch(f.client, VIP, 80, 10);
  t.deepEqual(after.errors, {});
  t.deepEqual(after.bodies, { r2: 10 });
  await dp.setPool(spec.key, pool([], ['10.78.0.30', 80]));
  t.deepEqual((await httpBatch(f.client, VIP, 80, 4)).bodies, { sorry: 4 });
  t.true((await dp.stats()).services[0]!.sorry);
  await dp.setPool(spec.key, pool([[R2, 80, 1]], ['10.78.0.30', 80]));
  t.deepEqual((await httpBatch(f.client, VIP, 80, 4)).bodies, { r2: 4 });
  // No destination and no sorry server: the director refuses (RST), counted as dropped.
  await dp.setPool(spec.key, pool([]));
  const none = await httpBatch(f.client, VIP, 80, 2, { timeoutMs: 2000 });
  t.is(none.errors.ECONNREFUSED, 2);
  t.is((await dp.stats()).services[0]!.dropped, 2);
});

netnsTest('FULLNAT: real servers with no route back see the director\'s address; sh keeps clients put', async (t) => {
  const { f, dp } = await setup(t);
  for (const h of [f.r1, f.r2]) await h.exec(['ip', 'route', 'del', 'default']);
  const spec = svcSpec({ kind: 'FULLNAT', scheduler: 'sh' });
  await dp.configure([spec]);
  await dp.setPool(spec.key, pool([[R1, 80, 1], [R2, 80, 1]]));
  await dp.serve(spec.key);
  t.is((await httpGet(f.client, VIP, 80, '/who')).body, '10.78.0.1', 'the real server sees the director');
  const sources = Array.from({ length: 10 }, (_, i) => `10.77.0.${120 + i}`);
  for (const src of sources) await f.client.exec(['ip', 'addr', 'add', `${src}/24`, 'dev', 'eth0']);
  const used = new Set<string>();
  for (const src of sources) {
    const r = await httpBatch(f.client, VIP, 80, 3, { localAddress: src });
    t.deepEqual(r.errors, {});
    t.is(Object.keys(r.bodies).length, 1, `${src}: ${JSON.stringify(r.bodies)}`);
    used.add(Object.keys(r.bodies)[0]!);
  }
  t.deepEqual([...used].sort(), ['r1', 'r2']);
  const st = (await dp.stats()).services[0]!;
  t.is(st.kind, 'FULLNAT');
  t.true(st.out_bytes > 0);
});

netnsTest('NAT port-set service with persistence (FTP case) and a fwmark service marked in iptables-style mangle; lc sends new connections to the idle server', async (t) => {
  const { f, dp } = await setup(t, { ports: [80, 21, 10001, 10002] });
  const ftp = svcSpec({ kind: 'NAT', scheduler: 'rr', ports: [[21, 21], [10000, 20000]], persistence: { timeoutMs: 60_000, prefix: 24 } });
  const fw = svcSpec({ kind: 'NAT', scheduler: 'rr', fwmark: 9 });
  const lc = svcSpec({ kind: 'NAT', scheduler: 'lc' });
  await dp.configure([ftp, fw, lc]);
  await dp.setPool(ftp.key, pool([[R1, 0, 1], [R2, 0, 1]]));
  await dp.serve(ftp.key);
  // persistence_granularity /24: every address of 10.77.5.0/24 shares one template.
  await f.client.exec(['sh', '-ec', 'for i in 1 2 3; do ip addr add 10.77.0.$((150+i))/24 dev eth0; ip addr add 10.77.5.$i/24 dev eth0; done; ip route add 10.77.5.0/24 dev eth0 || true']);
  await f.director.exec(['ip', 'route', 'add', '10.77.5.0/24', 'dev', 'eth0']);
  const pick = async (src: string) => {
    const seen = new Set<string>();
    for (const port of [21, 10001, 10002, 21]) for (const b of Object.keys((await httpBatch(f.client, VIP, port, 1, { localAddress: src })).bodies)) seen.add(b);
    return [...seen];
  };
  const a = await pick('10.77.5.1');
  t.is(a.length, 1, `one server across ports: ${a.join(',')}`);
  t.deepEqual(await pick('10.77.5.2'), a, 'same /24: same template');
  t.deepEqual(await pick('10.77.5.3'), a);
  const others = new Set<string>();
  for (const src of ['10.77.0.151', '10.77.0.152', '10.77.0.153']) {
    const s = await pick(src);
    t.is(s.length, 1);
    others.add(s[0]!);
  }
  t.is(others.size, 1, 'all of 10.77.0.0/24 share one template too');

  // fwmark 9 set by the operator's mangle chain (priority -150, as iptables -t mangle -j MARK).
  await f.director.exec(['sh', '-ec', [
    `${NFT} add table ip operator`,
    `${NFT} 'add chain ip operator mangle { type filter hook prerouting priority -150; }'`,
    `${NFT} add rule ip operator mangle ip daddr ${VIP} tcp dport 80 meta mark set 9`,
  ].join('\n')]);
  await dp.setPool(fw.key, pool([[R1, 80, 1], [R2, 80, 1]]));
  await dp.serve(fw.key);
  t.deepEqual((await httpBatch(f.client, VIP, 80, 4)).bodies, { r1: 2, r2: 2 });
  t.is((await dp.stats()).services.find((s) => s.key === fw.key)!.conns, 4);
  await f.director.exec([NFT, 'delete', 'table', 'ip', 'operator']);

  // lc: a held connection makes its server the loaded one; the control loop sends the next ones elsewhere.
  await dp.unserve(fw.key, 0);
  await dp.setPool(lc.key, pool([[R1, 80, 1], [R2, 80, 1]]));
  await dp.serve(lc.key);
  const hold = f.client.spawn([process.execPath, '-e', `require('node:net').connect(80, '${VIP}', () => console.log('held')); setInterval(() => {}, 1000);`]);
  await hold.waitForOutput(/held/, 5_000);
  await waitFor(async () => (await dp.stats()).services.find((s) => s.key === lc.key)!.dests.some((d) => d.active_conns === 1), 5_000, 'held connection counted', 100);
  const loaded = (await dp.stats()).services.find((s) => s.key === lc.key)!.dests.findIndex((d) => d.active_conns === 1);
  await sleep(2_500); // one control-loop period after the count
  const other = loaded === 0 ? 'r2' : 'r1';
  t.deepEqual((await httpBatch(f.client, VIP, 80, 10)).bodies, { [other]: 10 });
  t.regex((await dp.stats()).services.find((s) => s.key === lc.key)!.scheduler_in_effect, /^lc≈wrr re-weighted every 1 s/);
  await hold.kill('SIGKILL');
});

netnsTest('NAT needs IP forwarding: configure() fails with the sysctl to set, and changes nothing', async (t) => {
  const { f, dp } = await setup(t);
  await f.director.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=0']);
  const spec = svcSpec({ kind: 'NAT', scheduler: 'rr' });
  const err = await t.throwsAsync(dp.configure([spec]));
  t.is((err as { code?: string }).code, 'E_DATAPLANE_UNAVAILABLE');
  t.regex(err!.message, /net\.ipv4\.ip_forward is 0.*sysctl -w net\.ipv4\.ip_forward=1/);
  t.false((await f.director.exec([NFT, 'list', 'ruleset'])).stdout.includes('keepalive_ts'));
});

netnsTest('NAT over IPv6: DNAT to IPv6 real servers, the client address kept, replies un-NATed', async (t) => {
  const lab = await createLab(t);
  const br1 = await lab.addBridge();
  const client = await lab.addHost('cl', { ipv4: `${CLIENT}/24`, ipv6: 'fd77::100/64' });
  const director = await lab.addHost('da', { ipv4: '10.77.0.11/24', ipv6: 'fd77::11/64' });
  await lab.addLink(director, br1, { ipv4: '10.78.0.1/24', ipv6: 'fd78::1/64' });
  await director.exec(['sh', '-ec', 'ip -6 addr add fd77::50/64 dev eth0 nodad\nsysctl -qw net.ipv6.conf.all.forwarding=1']);
  const servers = [];
  for (const [name, n] of [['r1', 21], ['r2', 22]] as const) {
    const h = await lab.addHost(name, { ipv4: `10.78.0.${n}/24`, ipv6: `fd78::${n}/64`, bridge: br1 });
    await h.exec(['ip', '-6', 'route', 'add', 'default', 'via', 'fd78::1']);
    await startRealServer(lab, h, name);
    servers.push(h);
  }
  const dp = await startNftDriver(lab, director);
  const spec = svcSpec({ kind: 'NAT', scheduler: 'rr', family: 6 });
  await dp.configure([spec]);
  await dp.setPool(spec.key, { dests: [endpoint('fd78::21', 80), endpoint('fd78::22', 80)].map((e) => ({ key: endpointText(e), endpoint: e, weight: 1 })), sorry: null });
  await dp.serve(spec.key);
  const r = await httpBatch(client, 'fd77::50', 80, 10);
  t.deepEqual(r.errors, {});
  t.deepEqual(r.bodies, { r1: 5, r2: 5 });
  t.is((await httpGet(client, 'fd77::50', 80, '/who')).body, 'fd77::100');
  const st = (await dp.stats()).services[0]!;
  t.true(st.out_bytes > 0 && st.conns === 11, JSON.stringify(st));
});
