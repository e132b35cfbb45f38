/**
 * Descriptor exhaustion: a client holding more idle connections to the VIP than the director has
 * descriptors for (`ulimit -n 1024`, 1,200 connections) must not take down the control plane.
 * While the connections are held: the control socket answers, /metrics answers, the health check
 * keeps the real server up (no "down", quorum kept), the MASTER keeps the VIP, and new clients are
 * refused fast (the listener pauses at the cap) instead of the daemon running out of descriptors.
 */
import { createLab, netnsTest, waitFor, sleep } from '../lib/netns.js';
import { startDirector, hasVip } from '../lib/daemon.js';
import { startNginx, httpGet } from '../lib/servers.js';

/** Keeps `total` connections to host:port open: every one the server closes is opened again. */
const HOLDER_JS = `
const net = require('node:net');
const [host, port, total] = process.argv.slice(1);
let live = 0, opened = 0, connected = 0, errors = 0, closed = 0;
function one() {
  if (live >= Number(total)) return;
  live++; opened++;
  const s = net.connect({ host, port: Number(port) });
  s.on('connect', () => { connected++; setImmediate(one); });
  s.on('error', () => { errors++; });
  s.on('close', () => { closed++; live--; setTimeout(one, 5); });
}
for (let i = 0; i < 50; i++) one();
setInterval(() => console.log(JSON.stringify({ live, opened, connected, errors, closed })), 500);
`;

netnsTest('1,200 idle connections under ulimit -n 1024: control socket, metrics and health checks keep working, no real server down, VIP kept', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const rs = await lab.addHost('rs');
  const c = await lab.addHost('c');
  const vip = lab.addr4(100);
  await startNginx(rs, { port: 80, body: 'rs', tmpDir: lab.tmpDir, ipv6: false });
  const toml = `[global]
router_id = "a"
metrics_listen = "${a.ipv4}:9650"

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 150
version = 3
advert_int = 1
virtual_ipaddress = ["${vip}/24"]

[[virtual_server]]
address = "${vip}"
port = 80
lb_kind = "PROXY"
lb_algo = "rr"
delay_loop = 1
quorum = 1

[[virtual_server.real_server]]
address = "${rs.ipv4}"
port = 80
check = { type = "HTTP_GET", path = "/", status_code = 200, connect_timeout = 1, retry = 1, delay_before_retry = 0.5 }

# A second service whose real server comes up only while the first one is flooded: proves the
# health checks still run (and succeed) under the flood.
[[virtual_server]]
address = "${vip}"
port = 8081
lb_kind = "PROXY"
delay_loop = 1
alpha = true

[[virtual_server.real_server]]
address = "${rs.ipv4}"
port = 8081
check = { type = "TCP_CHECK", connect_timeout = 1, retry = 0 }
`;
  const d = await startDirector(lab, a, toml, { wrap: ['prlimit', '--nofile=1024:1024'], args: ['--log-level', 'info'] });
  await waitFor(async () => (await d.instance()).state === 'MASTER' && (await d.status()).virtual_servers[0]?.real_servers[0]?.up === true, 15_000, 'MASTER with the real server up', 200);
  t.is((await httpGet(c, vip, 80)).body, 'rs');

  const holder = c.spawn([process.execPath, '-e', HOLDER_JS, vip, '80', '1200']);
  const stats = () => {
    const last = holder.output().trim().split('\n').filter((l) => l.startsWith('{')).pop();
    return last ? (JSON.parse(last) as { live: number; opened: number; connected: number; errors: number; closed: number }) : undefined;
  };
  await waitFor(() => (stats()?.opened ?? 0) >= 1200, 30_000, 'the client to have tried 1,200 connections', 200);
  await sleep(1_000);

  // For six seconds (six health-check rounds) while the connections are held:
  const downs: string[] = [];
  for (let i = 0; i < 12; i++) {
    const s = await d.status();
    const real = s.virtual_servers[0]!.real_servers[0]!;
    if (!real.up) downs.push(`round ${i}: real server down`);
    t.is(s.vrrp[0]!.state, 'MASTER');
    const m = await httpGet(c, a.ipv4!, 9650, '/metrics', 3_000);
    t.is(m.status, 200);
    t.regex(m.body, /keepalive_ts_vrrp_state/);
    await sleep(500);
  }
  t.deepEqual(downs, [], 'the real server stayed up');
  // A check that has to succeed now: the second real server starts listening during the flood.
  await startNginx(rs, { port: 8081, body: 'rs2', tmpDir: lab.tmpDir, ipv6: false });
  await waitFor(async () => (await d.status()).virtual_servers[1]?.real_servers[0]?.up === true, 15_000, 'the health check to see the second real server come up during the flood', 250);
  t.true(await hasVip(a, vip), 'the MASTER kept the VIP');
  const st = stats()!;
  const vs = (await d.status()).virtual_servers[0]!;
  t.log(`client: ${JSON.stringify(st)}; director active conns ${vs.real_servers[0]!.active_conns}`);
  t.true(st.connected > 100, 'the service took connections up to its cap');
  t.true((vs.real_servers[0]!.active_conns ?? 0) < 1024 / 2, 'the proxy stayed below the descriptor limit');
  const out = d.proc.output();
  t.notRegex(out, /10\.77\.0\.\d+:80 is down|quorum down|EMFILE/);

  // Once the client lets go, new clients are served again.
  await holder.kill('SIGKILL');
  await waitFor(async () => (await httpGet(c, vip, 80, '/', 2_000).then((r) => r.body === 'rs', () => false)), 15_000, 'the service to accept again', 200);
});
