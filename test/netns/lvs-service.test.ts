import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, waitFor, sleep, type Lab, type LabHost } from '../lib/netns.js';
import { startDirector, directorToml, hasVip, type Director } from '../lib/daemon.js';
import { startNginx } from '../lib/servers.js';
import { httpBatch } from '../lib/clients.js';
import type { LabProcess } from '../lib/procs.js';
import { assertWithinBound } from '../lib/timing.js';
import { neighMac } from '../lib/reliability.js';

const VIP = '10.77.0.50';

function serviceToml(o: { algo?: string; weights?: [number, number]; sorry?: boolean; delayLoop?: number; persistence?: number; extra?: string }): string {
  const [w1, w2] = o.weights ?? [1, 1];
  const rs = (addr: string, w: number) => `
[[virtual_server.real_server]]
address = "${addr}"
port = 80
weight = ${w}
check = { type = "HTTP_GET", path = "/", status_code = 200, connect_timeout = 1, retry = 1, delay_before_retry = 0.5 }
`;
  return `[[virtual_server]]
address = "${VIP}"
port = 80
lb_kind = "PROXY"
protocol = "TCP"
lb_algo = "${o.algo ?? 'rr'}"
delay_loop = ${o.delayLoop ?? 1}
drain_timeout = 2
${o.persistence ? `persistence_timeout = ${o.persistence}` : ''}
${o.sorry ? 'sorry_server = { address = "10.77.0.30", port = 8080 }' : ''}
${o.extra ?? ''}
${rs('10.77.0.21', w1)}${rs('10.77.0.22', w2)}`;
}

interface Farm { lab: Lab; client: LabHost; r1: LabHost; r2: LabHost; n1: LabProcess; n2: LabProcess; sorry?: LabProcess }

async function farm(t: ExecutionContext, sorry = false): Promise<Farm> {
  const lab = await createLab(t);
  const [client, r1, r2] = await Promise.all([
    lab.addHost('cl', { ipv4: '10.77.0.100/24' }), lab.addHost('r1', { ipv4: '10.77.0.21/24' }), lab.addHost('r2', { ipv4: '10.77.0.22/24' }),
  ]);
  const n1 = await startNginx(r1, { port: 80, body: 'r1', tmpDir: lab.tmpDir });
  const n2 = await startNginx(r2, { port: 80, body: 'r2', tmpDir: lab.tmpDir });
  let sorryProc: LabProcess | undefined;
  if (sorry) {
    const s = await lab.addHost('so', { ipv4: '10.77.0.30/24' });
    sorryProc = await startNginx(s, { port: 8080, body: 'sorry', tmpDir: lab.tmpDir });
  }
  return { lab, client, r1, r2, n1, n2, sorry: sorryProc };
}

async function director(lab: Lab, name: string, ip: string, priority: number, service: string): Promise<Director> {
  const host = await lab.addHost(name, { ipv4: `${ip}/24` });
  return startDirector(lab, host, directorToml({ routerId: name, priority, vips: [`${VIP}/24`], extra: service }));
}

async function serving(d: Director): Promise<void> {
  await waitFor(async () => (await d.instance()).state === 'MASTER', 8_000, `${d.host.name} MASTER`);
  await waitFor(async () => (await d.status()).virtual_servers[0]?.serving === true, 5_000, `${d.host.name} serving`);
  await waitFor(async () => (await d.status()).virtual_servers[0]!.real_servers.filter((r) => r.up).length === 2, 5_000, 'both real servers up');
}

netnsTest('rr splits evenly through the VIP; status shows the ipvsadm-like table', async (t) => {
  const f = await farm(t);
  const d = await director(f.lab, 'da', '10.77.0.11', 150, serviceToml({ algo: 'rr' }));
  await serving(d);
  const rr = await httpBatch(f.client, VIP, 80, 40);
  t.deepEqual(rr.errors, {});
  t.deepEqual(rr.bodies, { r1: 20, r2: 20 });
  const st = (await d.status()).virtual_servers[0]!;
  t.is(st.conns, 40);
  t.deepEqual(st.real_servers.map((r) => r.conns), [20, 20]);
  t.true(st.in_bytes > 0 && st.out_bytes > 0);
});

netnsTest('wrr follows weights 1:3', async (t) => {
  const f = await farm(t);
  const d = await director(f.lab, 'da', '10.77.0.11', 150, serviceToml({ algo: 'wrr', weights: [1, 3] }));
  await serving(d);
  const wrr = await httpBatch(f.client, VIP, 80, 40);
  t.deepEqual(wrr.bodies, { r1: 10, r2: 30 });
});

for (const algo of ['sh', 'mh']) {
  netnsTest(`${algo} keeps each client on one server and spreads many clients`, async (t) => {
    const f = await farm(t);
    const d = await director(f.lab, 'da', '10.77.0.11', 150, serviceToml({ algo }));
    await serving(d);
    const sources = Array.from({ length: 12 }, (_, i) => `10.77.0.${120 + i}`);
    for (const src of sources) await f.client.exec(['ip', 'addr', 'add', `${src}/24`, 'dev', 'eth0']);
    const used = new Set<string>();
    for (const src of sources) {
      const r = await httpBatch(f.client, VIP, 80, 4, { localAddress: src });
      t.deepEqual(r.errors, {});
      const servers = Object.keys(r.bodies);
      t.is(servers.length, 1, `${src} stays on one server: ${JSON.stringify(r.bodies)}`);
      used.add(servers[0]!);
    }
    t.deepEqual([...used].sort(), ['r1', 'r2'], '12 clients use both servers');
  });
}

for (const algo of ['lc', 'wlc']) netnsTest(`${algo} sends new connections to the least loaded server`, async (t) => {
  const f = await farm(t);
  const d = await director(f.lab, 'da', '10.77.0.11', 150, serviceToml({ algo }));
  await serving(d);
  // One idle connection held open through the VIP makes its server the loaded one.
  const hold = f.client.spawn([process.execPath, '-e', `require('node:net').connect(80, '${VIP}', () => console.log('held')); setInterval(() => {}, 1000);`]);
  await hold.waitForOutput(/held/, 5_000);
  await waitFor(async () => (await d.status()).virtual_servers[0]!.real_servers.some((r) => r.active_conns === 1), 3_000, 'held connection counted');
  const loaded = (await d.status()).virtual_servers[0]!.real_servers.findIndex((r) => r.active_conns === 1);
  const other = loaded === 0 ? 'r2' : 'r1';
  // A short pause between the requests: a connection still closing counts as active (as in IPVS),
  // and on a loaded machine the previous one could otherwise tie with the held one.
  const r = await httpBatch(f.client, VIP, 80, 10, { pauseMs: 100 });
  t.deepEqual(r.bodies, { [other]: 10 });
  await hold.kill('SIGKILL');
});

netnsTest('a killed real server leaves the pool within delay_loop + connect_timeout x retry and costs no request; none left -> sorry server; recovery', async (t) => {
  const f = await farm(t, true);
  const d = await director(f.lab, 'da', '10.77.0.11', 150, serviceToml({ algo: 'rr', sorry: true }));
  await serving(d);
  await f.n1.kill('SIGKILL');
  const killedAt = Date.now();
  // Requests right after the kill: the dead server costs no client request (retry on the next one).
  const during = await httpBatch(f.client, VIP, 80, 20);
  t.deepEqual(during.errors, {});
  t.deepEqual(during.bodies, { r2: 20 });
  await waitFor(async () => !(await d.status()).virtual_servers[0]!.real_servers[0]!.up, 6_000, 'r1 marked down', 50);
  // Bound: delay_loop 1 s + connect_timeout 1 s x (retry 1 + 1) + delay_before_retry 0.5 s + 0.5 s.
  assertWithinBound(t, Date.now() - killedAt, 1_000 + 2 * 1_000 + 500 + 500, 'r1 removed from the pool after its kill');

  await f.n2.kill('SIGKILL');
  await waitFor(async () => (await d.status()).virtual_servers[0]!.sorry, 6_000, 'sorry server active', 50);
  const sorry = await httpBatch(f.client, VIP, 80, 5);
  t.deepEqual(sorry.bodies, { sorry: 5 });

  await startNginx(f.r1, { port: 80, body: 'r1', tmpDir: f.lab.tmpDir });
  await waitFor(async () => (await d.status()).virtual_servers[0]!.real_servers[0]!.up, 6_000, 'r1 back up', 50);
  const back = await httpBatch(f.client, VIP, 80, 5);
  t.deepEqual(back.bodies, { r1: 5 });
});

netnsTest('demotion stops the service on the old master; the new master serves it', async (t) => {
  const f = await farm(t);
  const svc = serviceToml({ algo: 'rr' });
  const db = await director(f.lab, 'db', '10.77.0.12', 100, svc);
  const da = await director(f.lab, 'da', '10.77.0.11', 150, svc);
  await serving(da);
  await waitFor(async () => (await db.instance()).state === 'BACKUP', 3_000, 'db BACKUP');
  t.false((await db.status()).virtual_servers[0]!.serving, 'backup does not serve');
  t.deepEqual((await httpBatch(f.client, VIP, 80, 4)).errors, {});

  await Promise.all([da.proc.kill('SIGKILL'), da.host.linkDown()]);
  await serving(db);
  t.true(await hasVip(db.host, VIP));
  // The client reaches the new master once its gratuitous ARP has re-pointed the client's entry.
  await waitFor(async () => (await neighMac(f.client, VIP)).mac === db.host.mac, 5_000, 'client re-pointed at db', 20);
  const after = await httpBatch(f.client, VIP, 80, 10);
  t.deepEqual(after.errors, {});
  t.deepEqual(after.bodies, { r1: 5, r2: 5 });
});

netnsTest('quorum 2 with a sorry server, and inhibit_on_failure keeps a dead server listed at weight 0', async (t) => {
  const f = await farm(t, true);
  const d = await director(f.lab, 'da', '10.77.0.11', 150, serviceToml({ algo: 'rr', sorry: true, extra: 'quorum = 2\ninhibit_on_failure = true' }));
  await serving(d);
  t.false((await d.status()).virtual_servers[0]!.sorry);
  await f.n1.kill('SIGKILL');
  await waitFor(async () => (await d.status()).virtual_servers[0]!.sorry, 6_000, 'quorum lost -> sorry server', 50);
  const vs = (await d.status()).virtual_servers[0]!;
  t.deepEqual(vs.real_servers.map((r) => [r.address, r.up, r.weight]), [['10.77.0.21', false, 0], ['10.77.0.22', true, 0]],
    'below quorum keepalived swaps the pool for the sorry server; inhibit_on_failure servers stay listed at weight 0');
  t.deepEqual((await httpBatch(f.client, VIP, 80, 3)).bodies, { sorry: 3 });
  await startNginx(f.r1, { port: 80, body: 'r1', tmpDir: f.lab.tmpDir });
  await waitFor(async () => !(await d.status()).virtual_servers[0]!.sorry, 6_000, 'quorum back', 50);
  t.deepEqual((await httpBatch(f.client, VIP, 80, 4)).bodies, { r1: 2, r2: 2 });
});
