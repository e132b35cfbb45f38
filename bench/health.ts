// Health-check benchmark: how long a dead real server stays in the pool, and what clients lose.
//
// Lab: client cl, director da (keepalive-ts, VIP 10.77.0.50:80, rr), real servers r1 and r2 (nginx).
// HTTP_GET checks: delay_loop 1 s, connect_timeout 1 s, retry 1, delay_before_retry 0.5 s. A client
// loop does sequential GETs (new connection each, 10 ms pause, 1 s timeout) through the VIP; r1's
// nginx is SIGKILLed; the figure is the time until the daemon's status shows r1 down (polled every
// 20 ms), plus the client requests that failed between the kill and the removal.
// keepalived needs the ip_vs kernel module for virtual servers; this VM's kernel has none
// (`modprobe ip_vs`: "Module ip_vs not found"), so the reference is HAProxy 2.6 (TCP mode, 1 thread)
// on the same lab, alternating per repetition: `option httpchk GET /`, `http-check expect status 200`,
// `inter 1s fastinter 500ms fall 2 rise 1`, `timeout connect 1s`, `timeout check 1s`, and
// `retries 3` + `option redispatch 1` (a refused connect is retried on another server, as ours does).
// Its removal is seen by polling `show servers state` on its stats socket every 20 ms.
import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { directorToml, startDirector } from '../test/lib/daemon.js';
import { startNginx, waitUntilListening } from '../test/lib/servers.js';
import { PROD_LOG_ARGS, clientLoop, tally, virtualServerToml } from '../test/lib/reliability.js';
import { sleep, waitFor, withLab } from './lab.js';
import type { Benchmark, BenchContext, BenchmarkResult } from './run.js';

const VIP = '10.77.0.50';

interface Rep { removalMs: number; failed: number; total: number; failures: Record<string, number> }
type Impl = 'keepalive-ts' | 'haproxy';

/** One command on an HAProxy stats socket (a Unix socket file, reachable from any namespace). */
export function haproxyCmd(sock: string, cmd: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(sock);
    let out = '';
    const t = setTimeout(() => { c.destroy(); reject(new Error(`haproxy ${cmd}: timeout`)); }, timeoutMs);
    c.setEncoding('utf8');
    c.on('connect', () => c.write(`${cmd}\n`));
    c.on('data', (d: string) => { out += d; });
    c.on('error', (e) => { clearTimeout(t); reject(e); });
    c.on('close', () => { clearTimeout(t); resolve(out); });
  });
}

/** `show servers state BACKEND` -> server name -> srv_op_state (0 stopped, 2 running). */
export async function haproxyServerStates(sock: string, backend: string): Promise<Map<string, number>> {
  const out = await haproxyCmd(sock, `show servers state ${backend}`);
  const m = new Map<string, number>();
  for (const line of out.split('\n')) {
    if (!line || line.startsWith('#') || !line.includes(' ')) continue;
    const f = line.split(' ');
    // be_id be_name srv_id srv_name srv_addr srv_op_state ...
    if (f.length > 5) m.set(f[3]!, Number(f[5]));
  }
  return m;
}

function haproxyConfig(dir: string): string {
  return `global
  nbthread 1
  maxconn 4000
  pidfile ${dir}/haproxy.pid
  stats socket ${dir}/stats.sock mode 600 level admin

defaults
  mode tcp
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  timeout check 1s
  retries 3
  option redispatch 1

listen vip
  bind ${VIP}:80
  balance roundrobin
  option httpchk GET /
  http-check expect status 200
  default-server check inter 1s fastinter 500ms downinter 1s fall 2 rise 1
  server r1 10.77.0.21:80
  server r2 10.77.0.22:80
`;
}

async function once(impl: Impl): Promise<Rep> {
  return withLab(async (lab) => {
    const [cl, r1, r2, a] = await Promise.all([
      lab.addHost('cl', { ipv4: '10.77.0.100/24' }),
      lab.addHost('r1', { ipv4: '10.77.0.21/24' }),
      lab.addHost('r2', { ipv4: '10.77.0.22/24' }),
      lab.addHost('da', { ipv4: '10.77.0.11/24' }),
    ]);
    const n1 = await startNginx(r1, { port: 80, body: 'r1', tmpDir: lab.tmpDir });
    await startNginx(r2, { port: 80, body: 'r2', tmpDir: lab.tmpDir });
    let r1Down: () => Promise<boolean>;
    if (impl === 'keepalive-ts') {
      const svc = virtualServerToml({ address: VIP, port: 80, reals: [{ ip: '10.77.0.21', port: 80 }, { ip: '10.77.0.22', port: 80 }] });
      const d = await startDirector(lab, a, directorToml({ routerId: 'da', priority: 150, vips: [`${VIP}/24`], extra: svc }), { args: PROD_LOG_ARGS });
      await waitFor(async () => (await d.instance()).state === 'MASTER', 10_000, 'MASTER');
      await waitFor(async () => (await d.status()).virtual_servers[0]!.real_servers.every((r) => r.up), 6_000, 'real servers up');
      r1Down = async () => !(await d.status()).virtual_servers[0]!.real_servers[0]!.up;
    } else {
      await a.exec(['ip', 'addr', 'add', `${VIP}/24`, 'dev', a.ifname]);
      const hdir = join(lab.tmpDir, 'haproxy');
      await mkdir(hdir, { recursive: true });
      await writeFile(join(hdir, 'haproxy.cfg'), haproxyConfig(hdir));
      const hp = a.spawn(['haproxy', '-db', '-f', join(hdir, 'haproxy.cfg')]);
      await waitUntilListening(a, 80, hp, 10_000, 'haproxy');
      const sock = join(hdir, 'stats.sock');
      // Servers start UP in HAProxy 2.6; wait for a first passed check (`show stat` check_status L7OK).
      await waitFor(async () => {
        const csv = (await haproxyCmd(sock, 'show stat')).split('\n');
        const hdr = csv[0]!.replace(/^# /, '').split(',');
        const ci = hdr.indexOf('check_status');
        return csv.filter((l) => /^vip,r[12],/.test(l)).every((l) => l.split(',')[ci] === 'L7OK');
      }, 6_000, 'haproxy checks passed');
      r1Down = async () => (await haproxyServerStates(sock, 'vip')).get('r1') === 0;
    }
    const loop = clientLoop(cl, VIP, 80, { seconds: 8, maxRequests: 5_000, timeoutMs: 1_000, pauseMs: 10 });
    loop.catch(() => {});
    await sleep(1_000 + Math.random() * 1_000); // random phase of the check cycle
    const killedAt = Date.now();
    await n1.kill('SIGKILL');
    await waitFor(r1Down, 10_000, 'r1 down', 20);
    const downAt = Date.now();
    const outcomes = await loop;
    const window = outcomes.filter((o) => o.at >= killedAt - 1_000 && o.at < downAt);
    const failed = window.filter((o) => !o.ok);
    return { removalMs: downAt - killedAt, failed: failed.length, total: window.length, failures: tally(failed) };
  });
}

async function runHealth(ctx: BenchContext): Promise<BenchmarkResult> {
  const reps: Rep[] = [];
  const theirs: Rep[] = [];
  for (let i = 0; i < ctx.runs; i++) {
    // Alternate: keepalive-ts first on odd repetitions, HAProxy first on even ones.
    const order: Impl[] = i % 2 === 0 ? ['keepalive-ts', 'haproxy'] : ['haproxy', 'keepalive-ts'];
    for (const impl of order) {
      const r = await once(impl);
      ctx.log(`rep ${i + 1} ${impl}: removal ${r.removalMs} ms, failed ${r.failed}/${r.total} ${JSON.stringify(r.failures)}`);
      (impl === 'keepalive-ts' ? reps : theirs).push(r);
    }
  }
  return {
    figures: [
      { figure: 'real server death -> removal from the pool', unit: 'ms', better: 'lower', ours: reps.map((r) => r.removalMs), theirs: theirs.map((r) => r.removalMs), theory: '≤ delay_loop + connect_timeout × (retry+1) + delay_before_retry = 3500 ms (connection refused fails at once: ≈ phase + 0.5 s)' },
      { figure: 'client requests failed between death and removal', unit: 'requests', better: 'lower', ours: reps.map((r) => r.failed), theirs: theirs.map((r) => r.failed), theory: '0 (connect refused is retried on the next real server)' },
      { figure: 'client requests in that window', unit: 'requests', better: 'higher', ours: reps.map((r) => r.total), theirs: theirs.map((r) => r.total) },
    ],
    notes: [
      'keepalived is not measured: its virtual servers need the ip_vs kernel module, which this VM\'s kernel does not have (`modprobe ip_vs`: "Module ip_vs not found"). The reference ("theirs") is HAProxy 2.6 (Debian), `mode tcp`, `nbthread 1`, on the same lab (its own fresh lab per run, VIP added to `da` by hand), alternating with keepalive-ts per repetition (ours first on odd repetitions).',
      'HAProxy settings equivalent to ours (delay_loop 1 s, connect_timeout 1 s, retry 1, delay_before_retry 0.5 s): `option httpchk GET /`, `http-check expect status 200`, `check inter 1s fastinter 500ms downinter 1s fall 2 rise 1`, `timeout connect 1s`, `timeout check 1s`; for client traffic `retries 3` + `option redispatch 1` (a refused connect is retried on another server, like ours). Its removal is r1\'s `srv_op_state` = 0 in `show servers state vip` on the stats socket, polled every 20 ms like our `status`.',
      `Failures by error, per repetition: ours ${reps.map((r, i) => `#${i + 1} ${JSON.stringify(r.failures)}`).join('; ')}; HAProxy ${theirs.map((r, i) => `#${i + 1} ${JSON.stringify(r.failures)}`).join('; ')}.`,
    ],
  };
}

export const health: Benchmark = {
  name: 'health',
  title: 'Health checks: time to remove a dead real server, client errors meanwhile',
  reference: 'HAProxy',
  description:
    'Director da serves VIP 10.77.0.50:80 from nginx r1 + r2 (rr), HTTP_GET every 1 s (connect_timeout 1 s, retry 1, delay_before_retry 0.5 s). A client loop does sequential GETs through the VIP (new connection each, 10 ms pause); ' +
    'r1\'s nginx is SIGKILLed at a random phase of the check cycle. Figures: kill -> r1 shown down in `status`, and the client requests that failed in that window. ' +
    'Reference: HAProxy 2.6 (TCP mode, 1 thread, `option httpchk`, inter 1s / fastinter 500ms / fall 2 / rise 1, timeout check 1s) in the same lab layout (a fresh lab per run), alternating per repetition; its removal read from `show servers state`.',
  run: runHealth,
};
