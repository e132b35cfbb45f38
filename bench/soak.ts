// Soak benchmark: the daemon's memory over a long run under load.
//
// Lab: client cl, director da (keepalive-ts, VIP 10.77.0.50:80, rr, HTTP_GET every 1 s), nginx r1 + r2.
// wrk (-t1 -c50, keep-alive) runs through the VIP for soak.seconds (default 600; e.g.
// `--param soak.seconds=60` for a quick run) while the daemon's RSS (VmRSS of its process: main
// thread + data-plane worker) is sampled every 10 s. keepalived is not measured (no ip_vs in this VM).
import { directorToml, startDirector } from '../test/lib/daemon.js';
import { startNginx } from '../test/lib/servers.js';
import { PROD_LOG_ARGS, cpuSeconds, rssKiB, runWrk, tuneForLoad, virtualServerToml } from '../test/lib/reliability.js';
import { sleep, waitFor, withLab } from './lab.js';
import type { Benchmark, BenchContext, BenchmarkResult } from './run.js';

const VIP = '10.77.0.50';
const SAMPLE_S = 10;

interface Rep { samples: Array<{ t: number; rssMiB: number }>; rps: number; errors: string; cpuPct: number }

async function once(seconds: number, log: (m: string) => void): Promise<Rep> {
  return withLab(async (lab) => {
    const [cl, r1, r2, a] = await Promise.all([
      lab.addHost('cl', { ipv4: '10.77.0.100/24' }),
      lab.addHost('r1', { ipv4: '10.77.0.21/24' }),
      lab.addHost('r2', { ipv4: '10.77.0.22/24' }),
      lab.addHost('da', { ipv4: '10.77.0.11/24' }),
    ]);
    for (const h of [cl, a]) await tuneForLoad(h);
    await startNginx(r1, { port: 80, body: 'r1', tmpDir: lab.tmpDir });
    await startNginx(r2, { port: 80, body: 'r2', tmpDir: lab.tmpDir });
    const svc = virtualServerToml({ address: VIP, port: 80, reals: [{ ip: '10.77.0.21', port: 80 }, { ip: '10.77.0.22', port: 80 }] });
    const d = await startDirector(lab, a, directorToml({ routerId: 'da', priority: 150, vips: [`${VIP}/24`], advertInt: 1, extra: svc }), { args: PROD_LOG_ARGS });
    await waitFor(async () => (await d.instance()).state === 'MASTER', 10_000, 'MASTER');
    await waitFor(async () => (await d.status()).virtual_servers[0]!.real_servers.every((r) => r.up), 6_000, 'real servers up');
    const pid = d.proc.pid;
    const t0 = Date.now();
    const cpu0 = await cpuSeconds(pid);
    const samples: Rep['samples'] = [{ t: 0, rssMiB: (await rssKiB(pid)) / 1024 }];
    const wrk = runWrk(cl, `http://${VIP}/`, { threads: 1, conns: 50, seconds });
    wrk.catch(() => {});
    let done = false;
    void wrk.finally(() => (done = true));
    while (!done) {
      const next = t0 + samples.length * SAMPLE_S * 1000;
      while (!done && Date.now() < next) await sleep(Math.min(250, Math.max(1, next - Date.now())));
      if (done) break;
      const s = { t: Math.round((Date.now() - t0) / 1000), rssMiB: (await rssKiB(pid)) / 1024 };
      samples.push(s);
      if (samples.length % 6 === 1) log(`t=${s.t} s RSS ${s.rssMiB.toFixed(1)} MiB`);
    }
    const w = await wrk;
    const cpuPct = ((await cpuSeconds(pid)) - cpu0) / ((Date.now() - t0) / 1000) * 100;
    const tEnd = Math.round((Date.now() - t0) / 1000);
    if (tEnd > samples.at(-1)!.t) samples.push({ t: tEnd, rssMiB: (await rssKiB(pid)) / 1024 });
    return { samples, rps: w.rps, errors: JSON.stringify(w.errors), cpuPct };
  });
}

async function runSoak(ctx: BenchContext): Promise<BenchmarkResult> {
  const seconds = Number(ctx.params.seconds ?? 600);
  if (!Number.isFinite(seconds) || seconds < 10) throw new Error(`soak.seconds must be >= 10, got ${ctx.params.seconds}`);
  // A soak is long: one repetition unless --param soak.reps=N asks for more.
  const reps = Number(ctx.params.reps ?? 1);
  const results: Rep[] = [];
  for (let i = 0; i < reps; i++) {
    const r = await once(seconds, ctx.log);
    ctx.log(`rep ${i + 1}: ${r.rps.toFixed(0)} req/s, RSS ${r.samples[0]!.rssMiB.toFixed(1)} -> ${r.samples.at(-1)!.rssMiB.toFixed(1)} MiB`);
    results.push(r);
  }
  const first = (r: Rep) => r.samples[0]!.rssMiB;
  // Growth is taken after the first minute (or the first third), once the pools and JIT have warmed up.
  const warm = (r: Rep) => r.samples.find((s) => s.t >= Math.min(60, seconds / 3))?.rssMiB ?? first(r);
  const last = (r: Rep) => r.samples.at(-1)!.rssMiB;
  const max = (r: Rep) => Math.max(...r.samples.map((s) => s.rssMiB));
  const rows = results[0]!.samples.map((s) => `| ${s.t} | ${results.map((r) => r.samples.find((x) => x.t === s.t)?.rssMiB.toFixed(1) ?? '').join(' | ')} |`);
  return {
    figures: [
      { figure: 'RSS at start of load', unit: 'MiB', better: 'lower', ours: results.map(first), theirs: [], decimals: 1 },
      { figure: 'RSS after warm-up (min(60 s, duration/3))', unit: 'MiB', better: 'lower', ours: results.map(warm), theirs: [], decimals: 1 },
      { figure: `RSS at end (${seconds} s)`, unit: 'MiB', better: 'lower', ours: results.map(last), theirs: [], decimals: 1 },
      { figure: 'RSS max', unit: 'MiB', better: 'lower', ours: results.map(max), theirs: [], decimals: 1 },
      { figure: 'RSS growth after warm-up', unit: 'MiB', better: 'lower', ours: results.map((r) => last(r) - warm(r)), theirs: [], decimals: 1, theory: '≈ 0 (no leak)' },
      { figure: 'daemon CPU during the soak (main + worker threads)', unit: '%', better: 'lower', ours: results.map((r) => r.cpuPct), theirs: [], decimals: 0 },
      { figure: 'wrk throughput through the VIP', unit: 'req/s', better: 'higher', ours: results.map((r) => r.rps), theirs: [] },
    ],
    notes: [
      `wrk -t1 -c50 -d${seconds}s (keep-alive) from the client through the VIP; RSS sampled every ${SAMPLE_S} s. wrk socket errors per repetition: ${results.map((r) => r.errors).join('; ')}.`,
      'keepalived is not measured: it has no user-space data plane and its virtual servers need the ip_vs kernel module, which this VM lacks.',
    ],
    details: ['RSS over time (MiB):', '', `| t (s) | ${results.map((_, i) => `rep ${i + 1}`).join(' | ')} |`, `|---|${results.map(() => '---|').join('')}`, ...rows].join('\n'),
  };
}

export const soak: Benchmark = {
  name: 'soak',
  title: 'Soak: daemon RSS over a long run under load',
  reference: 'keepalived',
  description:
    'Director da serves VIP 10.77.0.50:80 from nginx r1 + r2 with HTTP_GET every 1 s while wrk -t1 -c50 runs through the VIP for `soak.seconds` (default 600 s; `--param soak.seconds=60` for a quick run, `--param soak.reps=N` for more repetitions). ' +
    'The daemon\'s RSS (VmRSS, main thread + data-plane worker) is sampled every 10 s; growth is measured from the end of a warm-up (min(60 s, duration/3)).',
  run: runSoak,
};
