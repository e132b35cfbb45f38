// Health-check benchmark: how long a dead real server stays in the pool, and what clients lose.
//
// Lab: client cl, director da (keepalive-ts, VIP 10.77.0.50:80, rr), real servers r1 and r2 (nginx).
// HTTP_GET checks: delay_loop 1 s, connect_timeout 1 s, retry 1, delay_before_retry 0.5 s. A client
// loop does sequential GETs (new connection each, 10 ms pause, 1 s timeout) through the VIP; r1's
// nginx is SIGKILLed; the figure is the time until the daemon's status shows r1 down (polled every
// 20 ms), plus the client requests that failed between the kill and the removal.
// keepalived needs the ip_vs kernel module for virtual servers; this VM's kernel has none
// (`modprobe ip_vs`: "Module ip_vs not found"), so only keepalive-ts is measured.
import { directorToml, startDirector } from '../test/lib/daemon.js';
import { startNginx } from '../test/lib/servers.js';
import { PROD_LOG_ARGS, clientLoop, tally, virtualServerToml } from '../test/lib/reliability.js';
import { sleep, waitFor, withLab } from './lab.js';
import type { Benchmark, BenchContext, BenchmarkResult } from './run.js';

const VIP = '10.77.0.50';

interface Rep { removalMs: number; failed: number; total: number; failures: Record<string, number> }

async function once(): Promise<Rep> {
  return withLab(async (lab) => {
    const [cl, r1, r2, a] = await Promise.all([
      lab.addHost('cl', { ipv4: '10.77.0.100/24' }),
      lab.addHost('r1', { ipv4: '10.77.0.21/24' }),
      lab.addHost('r2', { ipv4: '10.77.0.22/24' }),
      lab.addHost('da', { ipv4: '10.77.0.11/24' }),
    ]);
    const n1 = await startNginx(r1, { port: 80, body: 'r1', tmpDir: lab.tmpDir });
    await startNginx(r2, { port: 80, body: 'r2', tmpDir: lab.tmpDir });
    const svc = virtualServerToml({ address: VIP, port: 80, reals: [{ ip: '10.77.0.21', port: 80 }, { ip: '10.77.0.22', port: 80 }] });
    const d = await startDirector(lab, a, directorToml({ routerId: 'da', priority: 150, vips: [`${VIP}/24`], extra: svc }), { args: PROD_LOG_ARGS });
    await waitFor(async () => (await d.instance()).state === 'MASTER', 10_000, 'MASTER');
    await waitFor(async () => (await d.status()).virtual_servers[0]!.real_servers.every((r) => r.up), 6_000, 'real servers up');
    const loop = clientLoop(cl, VIP, 80, { seconds: 8, maxRequests: 5_000, timeoutMs: 1_000, pauseMs: 10 });
    loop.catch(() => {});
    await sleep(1_000 + Math.random() * 1_000); // random phase of the check cycle
    const killedAt = Date.now();
    await n1.kill('SIGKILL');
    await waitFor(async () => !(await d.status()).virtual_servers[0]!.real_servers[0]!.up, 10_000, 'r1 down', 20);
    const downAt = Date.now();
    const outcomes = await loop;
    const window = outcomes.filter((o) => o.at >= killedAt - 1_000 && o.at < downAt);
    const failed = window.filter((o) => !o.ok);
    return { removalMs: downAt - killedAt, failed: failed.length, total: window.length, failures: tally(failed) };
  });
}

async function runHealth(ctx: BenchContext): Promise<BenchmarkResult> {
  const reps: Rep[] = [];
  for (let i = 0; i < ctx.runs; i++) {
    const r = await once();
    ctx.log(`rep ${i + 1}: removal ${r.removalMs} ms, failed ${r.failed}/${r.total} ${JSON.stringify(r.failures)}`);
    reps.push(r);
  }
  return {
    figures: [
      { figure: 'real server death -> removal from the pool', unit: 'ms', better: 'lower', ours: reps.map((r) => r.removalMs), theirs: [], theory: '≤ delay_loop + connect_timeout × (retry+1) + delay_before_retry = 3500 ms (connection refused fails at once: ≈ phase + 0.5 s)' },
      { figure: 'client requests failed between death and removal', unit: 'requests', better: 'lower', ours: reps.map((r) => r.failed), theirs: [], theory: '0 (connect refused is retried on the next real server)' },
      { figure: 'client requests in that window', unit: 'requests', better: 'higher', ours: reps.map((r) => r.total), theirs: [] },
    ],
    notes: [
      'keepalived is not measured: its virtual servers need the ip_vs kernel module, which this VM\'s kernel does not have (`modprobe ip_vs`: "Module ip_vs not found").',
      `Failures by error, per repetition: ${reps.map((r, i) => `#${i + 1} ${JSON.stringify(r.failures)}`).join('; ')}.`,
    ],
  };
}

export const health: Benchmark = {
  name: 'health',
  title: 'Health checks: time to remove a dead real server, client errors meanwhile',
  reference: 'keepalived',
  description:
    'Director da serves VIP 10.77.0.50:80 from nginx r1 + r2 (rr), HTTP_GET every 1 s (connect_timeout 1 s, retry 1, delay_before_retry 0.5 s). A client loop does sequential GETs through the VIP (new connection each, 10 ms pause); ' +
    'r1\'s nginx is SIGKILLed at a random phase of the check cycle. Figures: kill -> r1 shown down in `status`, and the client requests that failed in that window.',
  run: runHealth,
};
