// LVS-DR through nftables netdev ingress (NftablesDataplane driven in the director's namespace):
// real servers see the client's own address and answer it directly; schedulers, stickiness,
// pool changes, sorry server, drain, fwmark and port-set services, ownership of the table.
import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, sleep, waitFor } from '../lib/netns.js';
import { httpBatch } from '../lib/clients.js';
import { httpGet, startTcpdump } from '../lib/servers.js';
import { startNftDriver, type RemoteNftDataplane } from '../lib/nft-remote.js';
import { drFarm, pool, startKeepAlive, startTransfer, svcSpec, transferResult, VIP, VIP6, CLIENT, type DrFarm } from '../lib/nft-lab.js';

const NFT = '/usr/sbin/nft';

async function setup(t: ExecutionContext, opts: Parameters<typeof drFarm>[1] = {}): Promise<{ f: DrFarm; dp: RemoteNftDataplane }> {
  const lab = await createLab(t);
  const f = await drFarm(lab, opts);
  const dp = await startNftDriver(lab, f.director);
  return { f, dp };
}

async function ourTables(f: DrFarm): Promise<string> {
  return (await f.director.exec([NFT, 'list', 'tables'])).stdout.split('\n').filter((l) => l.includes('keepalive_ts')).join('\n');
}

netnsTest('DR rr: real servers log the client address, answer it directly (no reply frame crosses the director), split 1:1, counters like ipvsadm', async (t) => {
  const { f, dp } = await setup(t);
  const spec = svcSpec({ kind: 'DR', scheduler: 'rr' });
  await dp.configure([spec]);
  await dp.setPool(spec.key, pool([['10.77.0.21', 80, 1], ['10.77.0.22', 80, 1]]));
  await dp.serve(spec.key);
  t.log(`serve() transaction: ${dp.lastMs.toFixed(2)} ms in the driver`);
  // Replies from the real servers carry the VIP as source; none may reach the director's port.
  const cap = await startTcpdump(f.director, `tcp and src host ${VIP} and src port 80`);
  const rr = await httpBatch(f.client, VIP, 80, 40);
  t.deepEqual(rr.errors, {});
  t.deepEqual(rr.bodies, { r1: 20, r2: 20 });
  const who = await httpGet(f.client, VIP, 80, '/who');
  t.is(who.body, CLIENT, 'the real server saw the client itself, not the director');
  await sleep(300);
  await cap.stop();
  const frames = cap.text().split('\n').filter((l) => / IP /.test(l));
  t.deepEqual(frames, [], 'no reply frame from a real server on the director');
  const st = await dp.stats();
  const s = st.services[0]!;
  t.is(s.kind, 'DR');
  t.is(s.conns, 41);
  t.deepEqual(s.dests.map((d) => d.conns).sort(), [20, 21]);
  t.true(s.in_pkts! > 41 * 3 && s.in_bytes > 0);
  t.is(s.out_pkts, 0, 'DR never sees the replies (as IPVS: OutPkts 0)');
  t.is(s.scheduler_in_effect, 'rr (numgen inc)');
  t.true(s.serving);
  t.log(`extra: ${JSON.stringify(st.extra)}`);
  await dp.close();
  t.is(await ourTables(f), '', 'close() removes our table');
});

netnsTest('DR wrr 1:3; sh and mh keep each client on one server', async (t) => {
  const { f, dp } = await setup(t);
  const wrr = svcSpec({ kind: 'DR', scheduler: 'wrr' });
  await dp.configure([wrr]);
  await dp.setPool(wrr.key, pool([['10.77.0.21', 80, 1], ['10.77.0.22', 80, 3]]));
  await dp.serve(wrr.key);
  t.deepEqual((await httpBatch(f.client, VIP, 80, 40)).bodies, { r1: 10, r2: 30 });

  const sources = Array.from({ length: 12 }, (_, i) => `10.77.0.${120 + i}`);
  for (const src of sources) await f.client.exec(['ip', 'addr', 'add', `${src}/24`, 'dev', 'eth0']);
  for (const algo of ['sh', 'mh'] as const) {
    const spec = svcSpec({ kind: 'DR', scheduler: algo, tableSize: 251 });
    await dp.configure([spec]);
    await dp.setPool(spec.key, pool([['10.77.0.21', 80, 1], ['10.77.0.22', 80, 1]]));
    await dp.serve(spec.key);
    const used = new Set<string>();
    for (const src of sources) {
      const r = await httpBatch(f.client, VIP, 80, 4, { localAddress: src });
      t.deepEqual(r.errors, {});
      const servers = Object.keys(r.bodies);
      t.is(servers.length, 1, `${algo}: ${src} stays on one server: ${JSON.stringify(r.bodies)}`);
      used.add(servers[0]!);
    }
    t.deepEqual([...used].sort(), ['r1', 'r2'], `${algo}: 12 clients use both servers`);
    t.regex((await dp.stats()).services[0]!.scheduler_in_effect, new RegExp(`^${algo} `));
  }
});

netnsTest('DR pool changes: established connections keep their server, a removed server costs no request, sorry server and recovery', async (t) => {
  const { f, dp } = await setup(t, { sorry: true });
  const spec = svcSpec({ kind: 'DR', scheduler: 'rr' });
  await dp.configure([spec]);
  await dp.setPool(spec.key, pool([['10.77.0.21', 80, 1]], ['10.77.0.30', 80]));
  await dp.serve(spec.key);
  // A keep-alive connection pinned to r1 stays there while the pool grows and r1's weight changes.
  const ka = startKeepAlive(f.client, VIP, 80, 50);
  await ka.waitForOutput(/r1\n/, 5_000);
  const latencies: number[] = [];
  for (const [w1, w2] of [[1, 1], [1, 5], [2, 1], [1, 1]]) {
    await dp.setPool(spec.key, pool([['10.77.0.21', 80, w1!], ['10.77.0.22', 80, w2!]], ['10.77.0.30', 80]));
    latencies.push(dp.lastMs);
    await sleep(150);
  }
  t.log(`setPool() -> committed in the driver: ${latencies.map((x) => x.toFixed(2)).join(', ')} ms`);
  const split = await httpBatch(f.client, VIP, 80, 20);
  t.deepEqual(split.bodies, { r1: 10, r2: 10 });
  await ka.kill('SIGTERM');
  t.false(/r2|error|reconnected/.test(ka.output()), `the keep-alive connection stayed on r1: ${ka.output().slice(-200)}`);

  // r1 dies: the health checker removes it; the next requests all go to r2, none fails.
  await f.n1.kill('SIGKILL');
  await dp.setPool(spec.key, pool([['10.77.0.22', 80, 1]], ['10.77.0.30', 80]));
  const after = await httpBatch(f.client, VIP, 80, 10);
  t.deepEqual(after.errors, {});
  t.deepEqual(after.bodies, { r2: 10 });
  // Nothing left: the sorry server answers.
  await dp.setPool(spec.key, pool([], ['10.77.0.30', 80]));
  t.deepEqual((await httpBatch(f.client, VIP, 80, 4)).bodies, { sorry: 4 });
  const st = (await dp.stats()).services[0]!;
  t.true(st.sorry);
  t.is(st.scheduler_in_effect, 'sorry server');
  t.true(st.dests.some((d) => d.sorry && d.conns === 4));
  // Recovery.
  await dp.setPool(spec.key, pool([['10.77.0.22', 80, 1]], ['10.77.0.30', 80]));
  t.deepEqual((await httpBatch(f.client, VIP, 80, 4)).bodies, { r2: 4 });
  t.false((await dp.stats()).services[0]!.sorry);
});

netnsTest('DR weight 0 drains: a 10 s transfer continues to the end while new connections go elsewhere', async (t) => {
  const { f, dp } = await setup(t);
  const spec = svcSpec({ kind: 'DR', scheduler: 'rr' });
  await dp.configure([spec]);
  await dp.setPool(spec.key, pool([['10.77.0.21', 80, 1]]));
  await dp.serve(spec.key);
  const tr = startTransfer(f.client, VIP, 80);
  await tr.waitForOutput(/started/, 5_000);
  await dp.setPool(spec.key, pool([['10.77.0.21', 80, 0], ['10.77.0.22', 80, 1]]));
  t.deepEqual((await httpBatch(f.client, VIP, 80, 6)).bodies, { r2: 6 }, 'no new connection to the quiescent server');
  const r = await transferResult(tr);
  t.true(r.ok, JSON.stringify(r));
  t.is(r.bytes, 2 * 1024 * 1024);
  t.true(r.ms > 5_000, `the transfer really was long (${r.ms} ms)`);
  const st = (await dp.stats()).services[0]!;
  t.is(st.dests.find((d) => d.weight === 0)?.conns, 1);
});

netnsTest('DR unserve drains established flows, then stops; serve again; kill -9 leaves a table that the next start removes', async (t) => {
  const { f, dp } = await setup(t);
  const spec = svcSpec({ kind: 'DR', scheduler: 'rr', drainMs: 3000 });
  await dp.configure([spec]);
  await dp.setPool(spec.key, pool([['10.77.0.21', 80, 1]]));
  await dp.serve(spec.key);
  const ka = startKeepAlive(f.client, VIP, 80, 100);
  await ka.waitForOutput(/r1\n/, 5_000);
  await dp.unserve(spec.key, 3000);
  // New connections are no longer forwarded (the director itself has nothing on port 80: RST).
  const refused = await httpBatch(f.client, VIP, 80, 2, { timeoutMs: 2000 });
  t.deepEqual(refused.bodies, {});
  t.true((refused.errors.ECONNREFUSED ?? 0) === 2, JSON.stringify(refused.errors));
  const st = (await dp.stats()).services[0]!;
  t.true(st.draining && !st.serving);
  await sleep(1000);
  t.false(/error/.test(ka.output()), 'the established connection keeps working while draining');
  await waitFor(async () => /error|reconnected/.test(ka.output()), 8_000, 'drain ends', 100);
  await ka.kill('SIGTERM');
  t.false((await dp.stats()).services[0]!.draining);
  await dp.serve(spec.key);
  t.deepEqual((await httpBatch(f.client, VIP, 80, 2)).bodies, { r1: 2 });

  // kill -9: the table stays behind; a new data plane removes it at its first transaction.
  await dp.proc.kill('SIGKILL');
  t.not(await ourTables(f), '');
  const dp2 = await startNftDriver(f.lab, f.director);
  const other = await f.director.exec(['sh', '-c', `${NFT} add table inet operator_table; ${NFT} add chain inet operator_table c`]);
  t.is(other.code, 0);
  await dp2.configure([spec]);
  await dp2.setPool(spec.key, pool([['10.77.0.22', 80, 1]]));
  await dp2.serve(spec.key);
  t.deepEqual((await httpBatch(f.client, VIP, 80, 2)).bodies, { r2: 2 }, 'the stale rules are gone');
  await dp2.close();
  const left = (await f.director.exec([NFT, 'list', 'ruleset'])).stdout;
  t.false(left.includes('keepalive_ts'), left);
  t.true(left.includes('operator_table'), 'other tables are never touched');
});

/** The operator's own netdev chain (priority -10, before ours) marking VIP:ports with `mark`. */
async function operatorMark(f: DrFarm, ports: string, mark: number): Promise<void> {
  await f.director.exec(['sh', '-ec', [
    `${NFT} add table netdev operator`,
    `${NFT} 'add chain netdev operator setmark { type filter hook ingress device "eth0" priority -10; }'`,
    `${NFT} add rule netdev operator setmark ip daddr ${VIP} tcp dport '{ ${ports} }' meta mark set ${mark}`,
  ].join('\n')]);
}

/** Six FTP-style clients (10.77.0.<first>..+5): each stays on one server across 21 and data ports; rr uses both. */
async function ftpClientsStay(t: ExecutionContext, f: DrFarm, first: number): Promise<string[]> {
  const sources = Array.from({ length: 6 }, (_, i) => `10.77.0.${first + i}`);
  for (const src of sources) await f.client.exec(['ip', 'addr', 'add', `${src}/24`, 'dev', 'eth0']);
  const used = new Set<string>();
  for (const src of sources) {
    const seen = new Set<string>();
    for (const port of [21, 10001, 10002, 21, 10003]) {
      const r = await httpBatch(f.client, VIP, port, 1, { localAddress: src });
      t.deepEqual(r.errors, {}, `${src} -> ${port}`);
      for (const b of Object.keys(r.bodies)) seen.add(b);
    }
    t.is(seen.size, 1, `${src} stays on one server across ports: ${[...seen].join(',')}`);
    used.add([...seen][0]!);
  }
  t.deepEqual([...used].sort(), ['r1', 'r2'], 'rr spreads the clients');
  return sources;
}

netnsTest('DR port-set service with persistence: an FTP-style client keeps its server across ports; fwmark service marked by the operator', async (t) => {
  const { f, dp } = await setup(t, { ports: [80, 21, 10001, 10002, 10003] });
  const ftp = svcSpec({ kind: 'DR', scheduler: 'rr', ports: [[21, 21], [10000, 20000]], persistence: { timeoutMs: 60_000, prefix: 32 } });
  await dp.configure([ftp]);
  await dp.setPool(ftp.key, pool([['10.77.0.21', 0, 1], ['10.77.0.22', 0, 1]]));
  await dp.serve(ftp.key);
  const sources = await ftpClientsStay(t, f, 140);
  await waitFor(async () => (await dp.stats()).extra.persistence_entries === sources.length, 5_000, 'one template per client in the kernel map');

  // fwmark: the operator's own netdev chain marks VIP:80 and VIP:10001 with 7.
  await operatorMark(f, '80, 10001', 7);
  const fw = svcSpec({ kind: 'DR', scheduler: 'rr', fwmark: 7 });
  await dp.configure([ftp, fw]);
  await dp.setPool(fw.key, pool([['10.77.0.21', 0, 1], ['10.77.0.22', 0, 1]]));
  await dp.serve(fw.key);
  t.deepEqual((await httpBatch(f.client, VIP, 80, 4)).bodies, { r1: 2, r2: 2 }, 'fwmark 7 on port 80');
  const fwStats = (await dp.stats()).services.find((s) => s.key === fw.key)!;
  t.is(fwStats.conns, 4);
});

netnsTest('DR fwmark FTP case (keepalived virtual_server fwmark + persistence): the operator marks 21 and 10000-20000 alike; each client keeps one server across the marked ports', async (t) => {
  const { f, dp } = await setup(t, { ports: [21, 10001, 10002, 10003] });
  await operatorMark(f, '21, 10000-20000', 1);
  const ftp = svcSpec({ kind: 'DR', scheduler: 'rr', fwmark: 1, persistence: { timeoutMs: 60_000, prefix: 32 } });
  await dp.configure([ftp]);
  await dp.setPool(ftp.key, pool([['10.77.0.21', 0, 1], ['10.77.0.22', 0, 1]]));
  await dp.serve(ftp.key);
  const sources = await ftpClientsStay(t, f, 180);
  const st = (await dp.stats()).services[0]!;
  t.is(st.conns, sources.length * 5);
  await waitFor(async () => (await dp.stats()).extra.persistence_entries === sources.length, 5_000, 'one template per client', 100);
});

/** UDP servers on the real servers, bound to the VIP (DR: replies must come from it), answering their name. */
async function startUdpNames(f: DrFarm, port: number): Promise<void> {
  for (const [h, name] of [[f.r1, 'r1'], [f.r2, 'r2']] as const) {
    const p = h.spawn([process.execPath, '-e', `const s = require('node:dgram').createSocket('udp4'); s.on('message', (m, r) => s.send('${name}', r.port, r.address)); s.bind(${port}, '${VIP}', () => console.log('bound'));`]);
    await p.waitForOutput(/bound/, 5_000);
  }
}

/** From the client: `flows` UDP sockets (distinct source ports), `per` datagrams each; the answers per flow. */
async function udpFlows(f: DrFarm, port: number, flows: number, per: number): Promise<string[][]> {
  const script = `
const dgram = require('node:dgram');
const [host, port, flows, per] = process.argv.slice(1).map((x, i) => (i ? Number(x) : x));
(async () => {
  const out = [];
  for (let i = 0; i < flows; i++) {
    const s = dgram.createSocket('udp4');
    const got = [];
    await new Promise((res) => s.bind(0, res));
    s.on('message', (m) => got.push(m.toString()));
    for (let j = 0; j < per; j++) { s.send('x', port, host); await new Promise((r) => setTimeout(r, 30)); }
    await new Promise((r) => setTimeout(r, 200));
    s.close();
    out.push(got);
  }
  process.stdout.write(JSON.stringify(out));
})();`;
  return JSON.parse((await f.client.exec([process.execPath, '-e', script, VIP, String(port), String(flows), String(per)])).stdout) as string[][];
}

netnsTest('DR UDP flows stay on their server, rr across flows; IPv6 DR', async (t) => {
  const { f, dp } = await setup(t);
  await startUdpNames(f, 5353);
  const udp = svcSpec({ kind: 'DR', scheduler: 'rr', protocol: 'udp', ports: [[5353, 5353]] });
  const v6 = svcSpec({ kind: 'DR', scheduler: 'rr', family: 6 });
  await dp.configure([udp, v6]);
  await dp.setPool(udp.key, pool([['10.77.0.21', 5353, 1], ['10.77.0.22', 5353, 1]]));
  await dp.serve(udp.key);
  const flows = await udpFlows(f, 5353, 6, 4);
  for (const got of flows) {
    t.is(got.length, 4, JSON.stringify(flows));
    t.is(new Set(got).size, 1, `one flow, one server: ${got.join(',')}`);
  }
  t.deepEqual(flows.map((g) => g[0]), ['r1', 'r2', 'r1', 'r2', 'r1', 'r2']);
  const st = (await dp.stats()).services.find((s) => s.key === udp.key)!;
  t.is(st.conns, 6, 'Conns = first datagram of each flow');
  t.is(st.in_pkts, 24);

  await dp.setPool(v6.key, pool([['fd77::21', 80, 1], ['fd77::22', 80, 1]]));
  await dp.serve(v6.key);
  t.is((await httpGet(f.client, 'fd77::21', 80, '/')).body, 'r1', 'IPv6 to the real server directly');
  const r = await httpBatch(f.client, VIP6, 80, 10);
  t.deepEqual(r.errors, {});
  t.deepEqual(r.bodies, { r1: 5, r2: 5 });
  t.is((await httpGet(f.client, VIP6, 80, '/who')).body, f.client.ipv6!);
  // The IPv6 connection table (low 96 address bits + port) holds the flows.
  await waitFor(async () => ((await dp.stats()).extra.conn_table_entries ?? 0) >= 11, 5_000, 'IPv6 flows in the table', 100);
});

netnsTest('DR connection table full (issue 10): new flows are still forwarded and stay on one server, counted as conn_table_full_total', async (t) => {
  const lab = await createLab(t);
  const f = await drFarm(lab);
  const dp = await startNftDriver(lab, f.director, { limits: { connMax: 4 } });
  const spec = svcSpec({ kind: 'DR', scheduler: 'rr' });
  await dp.configure([spec]);
  await dp.setPool(spec.key, pool([['10.77.0.21', 80, 1], ['10.77.0.22', 80, 1]]));
  await dp.serve(spec.key);
  const r = await httpBatch(f.client, VIP, 80, 20);
  t.deepEqual(r.errors, {}, 'no request fails when the table is full');
  t.is((r.bodies.r1 ?? 0) + (r.bodies.r2 ?? 0), 20);
  const ka = startKeepAlive(f.client, VIP, 80, 20);
  await waitFor(async () => ka.output().split('\n').filter((l) => /^r\d$/.test(l)).length >= 20, 10_000, '20 keep-alive answers', 50);
  await ka.kill('SIGTERM');
  const answers = new Set(ka.output().split('\n').filter((l) => /^r\d$/.test(l)));
  t.is(answers.size, 1, 'an unpinned keep-alive connection stays on one server (flow hash)');
  t.false(/error|reconnected/.test(ka.output()));
  const st = await dp.stats();
  t.true(st.extra.conn_table_full_total! > 0, JSON.stringify(st.extra));
  t.true(st.extra.conn_table_entries! <= 4);
  t.log(`with a 4-entry table: ${st.extra.conn_table_full_total} packets forwarded without an entry`);
});

netnsTest('DR persistence table full (issue 10): clients with a template keep it, a new client gets none and is scheduled normally, no request fails', async (t) => {
  const lab = await createLab(t);
  const f = await drFarm(lab);
  const dp = await startNftDriver(lab, f.director, { limits: { persistMax: 3 } });
  const spec = svcSpec({ kind: 'DR', scheduler: 'rr', persistence: { timeoutMs: 300_000, prefix: 32 } });
  await dp.configure([spec]);
  await dp.setPool(spec.key, pool([['10.77.0.21', 80, 1], ['10.77.0.22', 80, 1]]));
  await dp.serve(spec.key);
  const first = ['10.77.0.160', '10.77.0.161', '10.77.0.162'];
  const later = ['10.77.0.170', '10.77.0.171', '10.77.0.172'];
  for (const src of [...first, ...later]) await f.client.exec(['ip', 'addr', 'add', `${src}/24`, 'dev', 'eth0']);
  // The first three clients fill the table (one template each) and stay on one server.
  const placed = new Map<string, string>();
  for (const src of first) {
    const r = await httpBatch(f.client, VIP, 80, 3, { localAddress: src });
    t.deepEqual(r.errors, {});
    t.is(Object.keys(r.bodies).length, 1, `${src} pinned: ${JSON.stringify(r.bodies)}`);
    placed.set(src, Object.keys(r.bodies)[0]!);
  }
  await waitFor(async () => (await dp.stats()).extra.persistence_entries === first.length, 5_000, 'the table is full', 100);
  // Later clients find the table full: every request is answered, scheduled by rr (a client's
  // consecutive connections alternate, which a template would have prevented).
  for (const src of later) {
    const r = await httpBatch(f.client, VIP, 80, 4, { localAddress: src });
    t.deepEqual(r.errors, {}, `${src}: no request fails when the persistence table is full`);
    t.deepEqual(r.bodies, { r1: 2, r2: 2 }, `${src} has no template: scheduled normally`);
  }
  // The clients that have a template keep it.
  for (const src of first) t.deepEqual((await httpBatch(f.client, VIP, 80, 3, { localAddress: src })).bodies, { [placed.get(src)!]: 3 }, `${src} keeps its server`);
  const st = await dp.stats();
  t.is(st.extra.persistence_entries, first.length, 'never more templates than the table holds');
  t.log(`persistence table of 3: ${JSON.stringify({ persistence_entries: st.extra.persistence_entries, conn_table_entries: st.extra.conn_table_entries })}`);
});

netnsTest('connection state for sync: templates and DR flows in the snapshot, template events from the poll, restore into a fresh data plane sends clients to their synced server', async (t) => {
  const { f, dp } = await setup(t, { ports: [80, 5353] });
  await startUdpNames(f, 5353);
  const web = svcSpec({ kind: 'DR', scheduler: 'rr', persistence: { timeoutMs: 300_000, prefix: 32 } });
  const dns = svcSpec({ kind: 'DR', scheduler: 'rr', protocol: 'udp', ports: [[5353, 5353]] });
  await dp.configure([web, dns]);
  await dp.setPool(web.key, pool([['10.77.0.21', 80, 1], ['10.77.0.22', 80, 1]]));
  await dp.setPool(dns.key, pool([['10.77.0.21', 5353, 1], ['10.77.0.22', 5353, 1]]));
  await dp.serve(web.key);
  await dp.serve(dns.key);
  const sources = ['10.77.0.150', '10.77.0.151', '10.77.0.152', '10.77.0.153'];
  for (const s of sources) await f.client.exec(['ip', 'addr', 'add', `${s}/24`, 'dev', 'eth0']);
  const events = dp.events(8000); // the poll runs every second (less often under load)
  const placed = new Map<string, string>();
  for (const s of sources) placed.set(s, Object.keys((await httpBatch(f.client, VIP, 80, 2, { localAddress: s })).bodies)[0]!);
  await udpFlows(f, 5353, 2, 2);
  const evs = await events;
  t.deepEqual([...new Set(evs.filter((e) => e.type === 'template').map((e) => (e as { client: string }).client))].sort(), sources, 'a template event per new client');
  const snap = await dp.snapshot();
  t.deepEqual(snap.templates.map((x) => x.client).sort(), sources);
  for (const x of snap.templates) t.is(x.dest.address === '10.77.0.21' ? 'r1' : 'r2', placed.get(x.client)!, `template of ${x.client}`);
  t.true(snap.templates.every((x) => x.expiresInMs > 290_000 && x.expiresInMs <= 300_000));
  t.true(snap.conns.some((c) => c.client.address === '10.77.0.150' && c.virtual.port === 80), 'TCP flows listed as connections');
  t.is(snap.udpFlows.length, 2, 'UDP flows with their idle time');
  t.true(snap.udpFlows.every((u) => u.expiresInMs > 200_000 && u.virtual.port === 5353));

  // A fresh data plane (the peer after a takeover): templates pointing every client at r2.
  await dp.close();
  const dp2 = await startNftDriver(f.lab, f.director);
  await dp2.configure([web, dns]);
  await dp2.setPool(web.key, pool([['10.77.0.21', 80, 1], ['10.77.0.22', 80, 1]]));
  await dp2.setPool(dns.key, pool([['10.77.0.21', 5353, 1], ['10.77.0.22', 5353, 1]]));
  const r2 = snap.templates.find((x) => x.dest.address === '10.77.0.22')?.dest ?? { address: '10.77.0.22', family: 4 as const, port: 80 };
  await dp2.restore(snap.templates.map((x) => ({ ...x, dest: r2 })));
  await dp2.restore(snap.templates.map((x) => ({ ...x, dest: r2 }))); // twice: entries already there are kept, not an error
  await dp2.serve(web.key);
  for (const s of sources) t.deepEqual((await httpBatch(f.client, VIP, 80, 2, { localAddress: s })).bodies, { r2: 2 }, `${s} follows its restored template`);
  await waitFor(async () => (await dp2.stats()).extra.persistence_entries === sources.length, 5_000, 'the restored templates in the kernel map', 100);
});

/** GET / from a fixed source port (the server closes first, so the port is free again at once). */
async function getFromPort(f: DrFarm, port: number): Promise<string> {
  const script = `
const http = require('node:http');
http.get({ host: process.argv[1], port: 80, path: '/', localPort: Number(process.argv[2]), agent: false, headers: { connection: 'close' } }, (res) => {
  let b = ''; res.setEncoding('utf8'); res.on('data', (d) => (b += d)); res.on('end', () => process.stdout.write(b));
}).on('error', (e) => { process.stdout.write('error ' + e.message); });`;
  return (await f.client.exec([process.execPath, '-e', script, VIP, String(port)])).stdout;
}

netnsTest('DR: a new connection reusing the source port of a just-closed one gets a new decision (not a quiescent server), and works to its end', async (t) => {
  const { f, dp } = await setup(t);
  const spec = svcSpec({ kind: 'DR', scheduler: 'rr' });
  await dp.configure([spec]);
  await dp.setPool(spec.key, pool([['10.77.0.21', 80, 1], ['10.77.0.22', 80, 1]]));
  await dp.serve(spec.key);
  const first = await getFromPort(f, 40001);
  t.regex(first, /^r[12]$/);
  const other = first === 'r1' ? 'r2' : 'r1';
  // The server that answered goes quiescent; the same client port connects again at once.
  await dp.setPool(spec.key, pool([['10.77.0.21', 80, first === 'r1' ? 0 : 1], ['10.77.0.22', 80, first === 'r2' ? 0 : 1]]));
  for (let i = 0; i < 3; i++) t.is(await getFromPort(f, 40001), other, `reuse ${i + 1} of the port goes to the server taking new connections`);
  // And an unrelated port still follows rr over the one eligible server.
  t.is(await getFromPort(f, 40002), other);
});
