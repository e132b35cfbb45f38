// SMTP_CHECK against a real SMTP server (Debian's python3-aiosmtpd) and PING_CHECK against hosts
// that stop answering (an nft drop rule in the real server's namespace; a pulled cable), both run
// by the daemon in a lab, observed through `status`.
import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, waitFor, type Lab, type LabHost } from '../lib/netns.js';
import { startDirector, type Director } from '../lib/daemon.js';
import { waitUntilListening } from '../lib/servers.js';
import type { LabProcess } from '../lib/procs.js';
import { NFT } from '../lib/reliability.js';

/** Debian's python3 (python3-aiosmtpd is installed for it), not whatever python3 is first in PATH. */
const PYTHON = '/usr/bin/python3';

function startSmtp(host: LabHost, port = 25): Promise<LabProcess> {
  // -n: no setuid to nobody; -d: log every command received; -l: listen address. The default
  // handler accepts and discards mail.
  const proc = host.spawn([PYTHON, '-m', 'aiosmtpd', '-n', '-d', '-l', `${host.ipv4}:${port}`]);
  return waitUntilListening(host, port, proc, 15_000, `aiosmtpd on ${host.name}`).then(() => proc);
}

async function upStates(d: Director, vs = 0): Promise<Record<string, boolean>> {
  const st = (await d.status()).virtual_servers[vs]!;
  return Object.fromEntries(st.real_servers.map((r) => [r.address, r.up]));
}

async function waitStates(d: Director, want: Record<string, boolean>, ms: number, what: string, vs = 0): Promise<number> {
  const t0 = Date.now();
  await waitFor(async () => {
    const s = await upStates(d, vs);
    return Object.entries(want).every(([a, up]) => s[a] === up);
  }, ms, what);
  return Date.now() - t0;
}

async function smtpFarm(t: ExecutionContext): Promise<{ lab: Lab; da: LabHost; cl: LabHost; m1: LabHost; m2: LabHost }> {
  const lab = await createLab(t);
  const [da, cl, m1, m2] = await Promise.all([
    lab.addHost('da', { ipv4: '10.77.0.11/24' }), lab.addHost('cl', { ipv4: '10.77.0.100/24' }),
    lab.addHost('m1', { ipv4: '10.77.0.21/24' }), lab.addHost('m2', { ipv4: '10.77.0.22/24' }),
  ]);
  return { lab, da, cl, m1, m2 };
}

const SMTP_SERVICE = `[global]
router_id = "da"
metrics_listen = ""

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 150
version = 3
virtual_ipaddress = ["10.77.0.50/24"]

[[virtual_server]]
lb_kind = "PROXY"
address = "10.77.0.50"
port = 25
lb_algo = "rr"
delay_loop = 1
warmup = 0
retry = 0
alpha = true

[[virtual_server.real_server]]
address = "10.77.0.21"
check = { type = "SMTP_CHECK", helo_name = "da.lab.example", connect_timeout = 2 }

[[virtual_server.real_server]]
address = "10.77.0.22"
check = { type = "SMTP_CHECK", helo_name = "da.lab.example", connect_timeout = 2 }
`;

netnsTest('SMTP_CHECK: aiosmtpd servers are up; one stopped goes down, restarted comes back; the VIP answers SMTP', async (t) => {
  const f = await smtpFarm(t);
  const [s1] = await Promise.all([startSmtp(f.m1), startSmtp(f.m2)]);
  const d = await startDirector(f.lab, f.da, SMTP_SERVICE);
  await waitFor(async () => (await d.instance()).state === 'MASTER', 8_000, 'da MASTER');
  await waitStates(d, { '10.77.0.21': true, '10.77.0.22': true }, 10_000, 'both SMTP servers up');
  // The dialogue the server saw: HELO with our helo_name, then QUIT.
  await s1.waitForOutput(/>> b'HELO da\.lab\.example'[\s\S]*>> b'QUIT'/, 5_000);

  // A client through the VIP gets a real SMTP greeting from one of them.
  const banner = await f.cl.exec([PYTHON, '-c', 'import smtplib; s = smtplib.SMTP("10.77.0.50", 25, timeout=5); print(s.ehlo()[0]); s.quit()']);
  t.is(banner.stdout.trim(), '250');

  await s1.kill('SIGTERM');
  const down = await waitStates(d, { '10.77.0.21': false, '10.77.0.22': true }, 10_000, 'm1 down after aiosmtpd stopped');
  t.log(`m1 marked down ${down} ms after aiosmtpd stopped (delay_loop 1 s, retry 0)`);

  await startSmtp(f.m1);
  await waitStates(d, { '10.77.0.21': true, '10.77.0.22': true }, 10_000, 'm1 up again');
  t.pass();
});

netnsTest('SMTP_CHECK: a server answering 554 instead of a 220 greeting is down', async (t) => {
  const f = await smtpFarm(t);
  await startSmtp(f.m2);
  // A TCP listener that speaks first with something that is not a 220 greeting.
  const fake = f.m1.spawn([PYTHON, '-c', [
    'import socket',
    's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("10.77.0.21", 25)); s.listen(8)',
    'while True:',
    '    c, _ = s.accept(); c.sendall(b"554 5.3.2 go away\\r\\n"); c.close()',
  ].join('\n')]);
  await waitUntilListening(f.m1, 25, fake, 10_000, 'fake SMTP on m1');
  const d = await startDirector(f.lab, f.da, SMTP_SERVICE);
  await waitStates(d, { '10.77.0.21': false, '10.77.0.22': true }, 10_000, 'm1 (554 greeting) down, m2 up');
  t.pass();
});

netnsTest('PING_CHECK over IPv4 and IPv6: a dropped echo (nft in the host) and a pulled cable bring servers down, and back up', async (t) => {
  const lab = await createLab(t);
  const [da, r1, r2] = await Promise.all([
    lab.addHost('da', { ipv4: '10.77.0.11/24', ipv6: 'fd77::11/64' }),
    lab.addHost('r1', { ipv4: '10.77.0.21/24', ipv6: 'fd77::21/64' }),
    lab.addHost('r2', { ipv4: '10.77.0.22/24', ipv6: 'fd77::22/64' }),
  ]);
  // Services on the director's own addresses: only the checks matter here.
  const vs = (address: string, reals: string[]) => `
[[virtual_server]]
lb_kind = "PROXY"
address = "${address}"
port = 514
protocol = "UDP"
delay_loop = 0.5
warmup = 0
retry = 1
delay_before_retry = 0.3
alpha = true
${reals.map((r) => `[[virtual_server.real_server]]\naddress = "${r.split(' ')[0]}"\ncheck = { type = "PING_CHECK", connect_timeout = 1${r.includes(' ') ? `, bind_to = "${r.split(' ')[1]}"` : ''} }\n`).join('')}`;
  const cfg = `[global]\nrouter_id = "da"\nmetrics_listen = ""\n${vs('10.77.0.11', ['10.77.0.21', '10.77.0.22'])}${vs('fd77::11', ['fd77::21', 'fd77::22 fd77::11'])}`;
  const d = await startDirector(lab, da, cfg);
  await waitStates(d, { '10.77.0.21': true, '10.77.0.22': true }, 10_000, 'IPv4 servers up', 0);
  await waitStates(d, { 'fd77::21': true, 'fd77::22': true }, 10_000, 'IPv6 servers up', 1);

  // r1 stops answering echo requests (IPv4 and IPv6) while its link stays up.
  await r1.exec([NFT, '-f', '-'], {
    input: 'table inet kt_ping {\n chain in {\n  type filter hook input priority 0;\n  icmp type echo-request drop\n  icmpv6 type echo-request drop\n }\n}\n',
  });
  const v4down = await waitStates(d, { '10.77.0.21': false, '10.77.0.22': true }, 10_000, 'r1 down over IPv4', 0);
  await waitStates(d, { 'fd77::21': false, 'fd77::22': true }, 10_000, 'r1 down over IPv6', 1);
  t.log(`r1 down ${v4down} ms after the drop rule (delay_loop 0.5 s, connect_timeout 1 s, retry 1)`);
  await r1.exec([NFT, 'delete', 'table', 'inet', 'kt_ping']);
  await waitStates(d, { '10.77.0.21': true }, 10_000, 'r1 back over IPv4', 0);
  await waitStates(d, { 'fd77::21': true }, 10_000, 'r1 back over IPv6', 1);

  // r2's cable is pulled: nothing answers (no ICMP error either).
  await r2.linkDown();
  await waitStates(d, { '10.77.0.22': false, '10.77.0.21': true }, 10_000, 'r2 down over IPv4', 0);
  await waitStates(d, { 'fd77::22': false }, 10_000, 'r2 down over IPv6', 1);
  await r2.linkUp();
  await waitStates(d, { '10.77.0.22': true }, 15_000, 'r2 back over IPv4', 0);
  await waitStates(d, { 'fd77::22': true }, 15_000, 'r2 back over IPv6', 1);
  t.pass();
});

netnsTest('PING_CHECK bind_to sets the source address of the echo request (IPv4 and IPv6)', async (t) => {
  const lab = await createLab(t);
  const [da, r1] = await Promise.all([
    lab.addHost('da', { ipv4: '10.77.0.11/24', ipv6: 'fd77::11/64' }),
    lab.addHost('r1', { ipv4: '10.77.0.21/24', ipv6: 'fd77::21/64' }),
  ]);
  await da.exec(['ip', 'addr', 'add', '10.77.0.99/24', 'dev', 'eth0']);
  // Deprecated (preferred_lft 0), so the kernel never picks it as a source by itself; it is still
  // usable when asked for explicitly, which is what bind_to does.
  await da.exec(['ip', 'addr', 'add', 'fd77::99/64', 'dev', 'eth0', 'nodad', 'preferred_lft', '0']);
  // r1 answers only echo requests from 10.77.0.99 / fd77::99.
  await r1.exec([NFT, '-f', '-'], {
    input: 'table inet kt_src {\n chain in {\n  type filter hook input priority 0;\n  icmp type echo-request ip saddr != 10.77.0.99 drop\n  icmpv6 type echo-request ip6 saddr != fd77::99 drop\n }\n}\n',
  });
  // The same real server checked twice per family: from the bind_to address and from the primary one.
  const vs = (address: string, port: number, rs: string, bind: string) => `
[[virtual_server]]
lb_kind = "PROXY"
address = "${address}"
port = ${port}
protocol = "UDP"
delay_loop = 0.5
warmup = 0
retry = 0
alpha = true
[[virtual_server.real_server]]
address = "${rs}"
check = { type = "PING_CHECK", connect_timeout = 1${bind} }
`;
  const d = await startDirector(lab, da, `[global]\nrouter_id = "da"\nmetrics_listen = ""\n${[
    vs('10.77.0.11', 514, '10.77.0.21', ', bind_to = "10.77.0.99"'),
    vs('10.77.0.11', 515, '10.77.0.21', ''),
    vs('fd77::11', 514, 'fd77::21', ', bind_to = "fd77::99"'),
    vs('fd77::11', 515, 'fd77::21', ''),
  ].join('')}`);
  await waitStates(d, { '10.77.0.21': true }, 10_000, 'r1 up when pinged from 10.77.0.99', 0);
  await waitStates(d, { 'fd77::21': true }, 10_000, 'r1 up when pinged from fd77::99', 2);
  // From the primary addresses every echo is dropped: with alpha the server never comes up.
  await new Promise((r) => setTimeout(r, 3_000));
  t.false((await upStates(d, 1))['10.77.0.21'], 'r1 must stay down when pinged from 10.77.0.11');
  t.false((await upStates(d, 3))['fd77::21'], 'r1 must stay down when pinged from fd77::11');
  t.true((await upStates(d, 0))['10.77.0.21']);
  t.true((await upStates(d, 2))['fd77::21']);
});
