// Scale benchmark: the daemon with 1,000 virtual servers and 1,000 real servers under HTTP_GET
// every second — CPU, RSS, startup time, and the time of an (unchanged-config) reload.
//
// Lab: director da (keepalive-ts) and host r1 running one nginx that listens on 1,000 ports
// (10000..10999): each port is one real server, as a farm of many small backends behind one address
// would look. Config: 1,000 [[virtual_server]] on VIP 10.77.0.50 ports 20000..20999, each with one
// real server r1:(10000 + i), HTTP_GET `/` every delay_loop (default 1 s, `--param scale.delay_loop=`).
// Figures: startup (spawn -> control socket answers; -> every real server up; -> MASTER and every
// virtual server serving), CPU of the daemon (main + worker threads, /proc/PID/stat) and RSS over
// `scale.seconds` (default 30) of steady checking, and the `reload` round trip with the unchanged
// file (a changed file is refused with E_RELOAD_UNSUPPORTED today).
// keepalived is not measured: its virtual servers need the ip_vs kernel module, absent in this VM.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { controlRequest } from '../src/cli/control-client.js';
import { directorToml, startDirector } from '../test/lib/daemon.js';
import { nginxConfig, waitUntilListening } from '../test/lib/servers.js';
import { PROD_LOG_ARGS, cpuSeconds, rssKiB, virtualServerToml } from '../test/lib/reliability.js';
import { median, sleep, waitFor, withLab, type Lab, type LabHost, type LabProcess } from './lab.js';
import type { Benchmark, BenchContext, BenchmarkResult } from './run.js';

const VIP = '10.77.0.50';
const N = 1000;
const RS_BASE = 10_000;
const VS_BASE = 20_000;

async function startManyPortNginx(lab: Lab, host: LabHost, ports: number[]): Promise<LabProcess> {
  const dir = join(lab.tmpDir, `nginx-many-${host.name}`);
  await mkdir(dir, { recursive: true });
  const conf = nginxConfig(dir, {
    listen: ports.map((p) => `listen ${p};`),
    workerConnections: 8192,
    main: 'worker_rlimit_nofile 16384;',
    locations: 'location / { default_type text/plain; return 200 "ok"; }',
  });
  const confPath = join(dir, 'nginx.conf');
  await writeFile(confPath, conf);
  const proc = host.spawn(['nginx', '-e', 'stderr', '-p', dir, '-c', confPath]);
  await waitUntilListening(host, ports.at(-1)!, proc, 20_000, `nginx on ${host.name} (${ports.length} ports)`);
  return proc;
}

interface Rep {
  socketMs: number;
  allUpMs: number;
  servingMs: number;
  cpuPct: number;
  rssMiB: number;
  reloadMs: number;
  reloadRaw: number[];
  reloadReply: string;
}

async function once(delayLoop: number, seconds: number, log: (m: string) => void): Promise<Rep> {
  return withLab(async (lab) => {
    const [r1, a] = await Promise.all([lab.addHost('r1', { ipv4: '10.77.0.21/24' }), lab.addHost('da', { ipv4: '10.77.0.11/24' })]);
    await startManyPortNginx(lab, r1, Array.from({ length: N }, (_, i) => RS_BASE + i));
    const vs = Array.from({ length: N }, (_, i) => virtualServerToml({ address: VIP, port: VS_BASE + i, reals: [{ ip: '10.77.0.21', port: RS_BASE + i }], delayLoop }));
    const toml = directorToml({ routerId: 'da', priority: 150, vips: [`${VIP}/24`], advertInt: 1, extra: vs.join('\n') });
    const t0 = Date.now();
    const d = await startDirector(lab, a, toml, { args: PROD_LOG_ARGS });
    const socketMs = Date.now() - t0;
    await waitFor(async () => (await d.status()).virtual_servers.every((v) => v.real_servers.every((r) => r.up)), 60_000, 'all real servers up', 100);
    const allUpMs = Date.now() - t0;
    await waitFor(async () => (await d.instance()).state === 'MASTER' && (await d.status()).virtual_servers.every((v) => v.serving), 60_000, 'MASTER and serving', 100);
    const servingMs = Date.now() - t0;
    log(`socket ${socketMs} ms, all ${N} real servers up ${allUpMs} ms, MASTER + serving ${servingMs} ms`);
    await sleep(3_000);
    const pid = d.proc.pid;
    const c0 = await cpuSeconds(pid);
    const w0 = Date.now();
    await sleep(seconds * 1000);
    const cpuPct = ((await cpuSeconds(pid)) - c0) / ((Date.now() - w0) / 1000) * 100;
    const rssMiB = (await rssKiB(pid)) / 1024;
    const st = await d.status();
    const down = st.virtual_servers.filter((v) => !v.real_servers[0]!.up).length;
    if (down > 0) log(`warning: ${down} real servers down at the end of the steady phase`);
    const reloadRaw: number[] = [];
    let reloadReply = '';
    for (let i = 0; i < 5; i++) {
      const r0 = performance.now();
      const reply = await controlRequest(d.socket, 'reload', {}, 30_000);
      reloadRaw.push(performance.now() - r0);
      reloadReply = reply.ok ? `ok ${JSON.stringify(reply.result)}` : `error ${reply.error.message}`;
    }
    return { socketMs, allUpMs, servingMs, cpuPct, rssMiB, reloadMs: median(reloadRaw), reloadRaw, reloadReply };
  });
}

async function runScale(ctx: BenchContext): Promise<BenchmarkResult> {
  const delayLoop = Number(ctx.params.delay_loop ?? 1);
  const seconds = Number(ctx.params.seconds ?? 30);
  const reps: Rep[] = [];
  for (let i = 0; i < ctx.runs; i++) {
    const r = await once(delayLoop, seconds, ctx.log);
    ctx.log(`rep ${i + 1}: CPU ${r.cpuPct.toFixed(1)} %, RSS ${r.rssMiB.toFixed(1)} MiB, reload ${r.reloadRaw.map((x) => x.toFixed(1)).join('/')} ms (${r.reloadReply})`);
    reps.push(r);
  }
  const f = (figure: string, unit: string, v: (r: Rep) => number, decimals = 0, theory?: string) =>
    ({ figure, unit, better: 'lower' as const, ours: reps.map(v), theirs: [], decimals, theory });
  return {
    figures: [
      f(`daemon CPU, ${N} real servers checked every ${delayLoop} s`, '%', (r) => r.cpuPct, 1),
      f('daemon RSS', 'MiB', (r) => r.rssMiB, 1),
      f(`startup with ${N} virtual servers: spawn -> control socket answers`, 'ms', (r) => r.socketMs),
      f(`startup: spawn -> all ${N} real servers up`, 'ms', (r) => r.allUpMs),
      f('startup: spawn -> MASTER and every virtual server serving', 'ms', (r) => r.servingMs, 0, '≥ Master_Down_Interval 3.6 s (no peer)'),
      f(`reload round trip, unchanged ${N}-virtual-server config (median of 5)`, 'ms', (r) => r.reloadMs, 1),
    ],
    notes: [
      `One nginx (1 worker) listening on ports ${RS_BASE}..${RS_BASE + N - 1} of r1 stands for ${N} real servers; ${N} virtual servers on ${VIP}:${VS_BASE}..${VS_BASE + N - 1}, one real server each, HTTP_GET \`/\` every ${delayLoop} s (connect_timeout 1 s, retry 1). CPU over ${seconds} s of steady checking (main + data-plane worker thread, from /proc/PID/stat).`,
      `Reload replies: ${reps.map((r) => r.reloadReply).join('; ')}. Raw reload times (ms): ${reps.map((r) => r.reloadRaw.map((x) => x.toFixed(1)).join('/')).join('; ')}.`,
      'keepalived is not measured: its virtual servers need the ip_vs kernel module, and `modprobe ip_vs` fails in this VM ("Module ip_vs not found in directory /lib/modules/…").',
    ],
  };
}

export const scale: Benchmark = {
  name: 'scale',
  title: 'Scale: 1,000 virtual/real servers — CPU, RSS, startup and reload time',
  reference: 'keepalived',
  description:
    `Director da with ${N} virtual servers (VIP ${VIP}, ports ${VS_BASE}+i), each with one real server: one nginx on r1 listening on ${N} ports (${RS_BASE}+i). HTTP_GET every \`scale.delay_loop\` s (default 1). ` +
    'Figures: daemon CPU and RSS over `scale.seconds` (default 30) of steady checking; startup times; `reload` round trip with the unchanged file.',
  run: runScale,
};
