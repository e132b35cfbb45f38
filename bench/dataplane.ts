// Data-plane benchmark: requests/s, latency and bulk throughput through the director, keepalive-ts's
// user-space L4 proxy (one worker thread per CPU, `dataplane.threads`) vs HAProxy 2.6 (TCP mode,
// nbthread = the same count) on the same director host, and wrk straight to one real server (the
// direct ceiling: no director at all).
//
// Lab (one per benchmark run): client c 10.77.0.100, director d 10.77.0.11 holding the VIP
// 10.77.0.50 (keepalive-ts MASTER), real servers r1 10.77.0.21 and r2 10.77.0.22 running nginx
// (one worker, `return 200` on /, a 10 MiB static file on /big). keepalive-ts serves VIP:80
// (TCP virtual server, rr over r1/r2, proxy_workers = threads); HAProxy serves VIP:8080 (mode tcp, nbthread = threads, roundrobin
// over the same r1/r2). Optionally a naive Node `net` pipe proxy (the anchors' third row) on
// VIP:8081. Every namespace has net.ipv4.tcp_tw_reuse=1 and ip_local_port_range 10000 65000, as in
// /work/shared/anchors.md.
//
// One repetition, for each mode in turn, runs wrk from the client against each implementation,
// ours first on odd repetitions and HAProxy first on even ones:
//   keep-alive   wrk -t1 -c50 -d5s --latency http://VIP:port/
//   close        wrk -t1 -c50 -d5s --latency -H 'Connection: close' http://VIP:port/
//   bulk         wrk -t1 -c4  -d5s http://VIP:port/big          (10 MiB per response)
// and reads the director process's CPU time (utime + stime from /proc/PID/stat) around each run.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { directorToml, startDirector } from '../test/lib/daemon.js';
import { nginxConfig, waitUntilListening } from '../test/lib/servers.js';
import { availableParallelism } from 'node:os';
import { median, sleep, waitFor, withLab, type Lab, type LabHost, type LabProcess } from './lab.js';
import type { Benchmark, BenchContext, BenchmarkResult, Figure } from './run.js';
import type { Chart } from './chart.js';

const VIP = '10.77.0.50';
const PORT_OURS = 80;
const PORT_HAPROXY = 8080;
const PORT_NAIVE = 8081;
const BIG_BYTES = 10 * 1024 * 1024;
const CLK_TCK = 100;

type Impl = 'keepalive-ts' | 'haproxy' | 'naive-node' | 'direct';
type Mode = 'keepalive' | 'close' | 'bulk';

interface WrkResult {
  rps: number;
  /** MiB/s of response bytes (wrk's Transfer/sec). */
  mbps: number;
  p50ms: number;
  p99ms: number;
  requests: number;
  errors: string;
  /** Director CPU (process of this implementation) in % of one core over the run. */
  cpuPct: number;
  /** Director CPU microseconds per request. */
  cpuUsPerReq: number;
}

interface Record_ {
  rep: number;
  mode: Mode;
  impl: Impl;
  r: WrkResult | undefined;
  note?: string;
}

// ---------------------------------------------------------------------------------------------
// Parsing wrk

function toMs(v: string, unit: string): number {
  const x = Number(v);
  switch (unit) {
    case 'us':
      return x / 1000;
    case 'ms':
      return x;
    case 's':
      return x * 1000;
    case 'm':
      return x * 60_000;
    default:
      return Number.NaN;
  }
}

function toMiB(v: string, unit: string): number {
  const x = Number(v);
  const k = { B: 1 / 1024 / 1024, KB: 1 / 1024, MB: 1, GB: 1024, TB: 1024 * 1024 }[unit];
  return k === undefined ? Number.NaN : x * k;
}

export function parseWrk(out: string): Omit<WrkResult, 'cpuPct' | 'cpuUsPerReq'> {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const tr = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB|TB)/.exec(out);
  const lat = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? toMs(m[1]!, m[2]!) : Number.NaN;
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN);
  const errs: string[] = [];
  const se = /Socket errors: (.*)/.exec(out);
  if (se) errs.push(se[1]!.trim());
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) errs.push(`non-2xx ${non2xx[1]}`);
  return { rps, mbps: tr ? toMiB(tr[1]!, tr[2]!) : Number.NaN, p50ms: lat('50'), p99ms: lat('99'), requests, errors: errs.join('; ') };
}

// ---------------------------------------------------------------------------------------------
// Lab pieces

async function tuneNamespace(h: LabHost): Promise<void> {
  await h.exec(['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse; echo "10000 65000" > /proc/sys/net/ipv4/ip_local_port_range; echo 4096 > /proc/sys/net/core/somaxconn']);
}

/** nginx, one worker: `return 200 "<body>"` on / (like test/lib/servers.ts startNginx) plus /big, a static file. */
async function startRealServer(lab: Lab, host: LabHost, body: string): Promise<LabProcess> {
  const dir = join(lab.tmpDir, `nginx-${host.name}`);
  await mkdir(join(dir, 'www'), { recursive: true });
  await writeFile(join(dir, 'www', 'big'), Buffer.alloc(BIG_BYTES, 'x'));
  const conf = nginxConfig(dir, {
    listen: ['listen 80 backlog=4096;'],
    workerConnections: 4096,
    http: 'sendfile on;',
    locations: `location = /big { root ${dir}/www; default_type application/octet-stream; }\n    location / { default_type text/plain; return 200 "${body}"; }`,
  });
  const confPath = join(dir, 'nginx.conf');
  await writeFile(confPath, conf);
  const proc = host.spawn(['nginx', '-e', 'stderr', '-p', dir, '-c', confPath]);
  await waitUntilListening(host, 80, proc, 10_000, `nginx on ${host.name}`);
  return proc;
}

function serviceToml(): string {
  const rs = (addr: string) => `
[[virtual_server.real_server]]
address = "${addr}"
port = 80
weight = 1
check = { type = "TCP_CHECK", connect_timeout = 1, retry = 1, delay_before_retry = 0.5 }
`;
  return `[[virtual_server]]
address = "${VIP}"
port = ${PORT_OURS}
lb_kind = "PROXY"
protocol = "TCP"
lb_algo = "rr"
delay_loop = 2
${rs('10.77.0.21')}${rs('10.77.0.22')}`;
}

function haproxyConfig(dir: string, threads: number): string {
  return `global
  nbthread ${threads}
  maxconn 8000
  pidfile ${dir}/haproxy.pid

defaults
  mode tcp
  timeout connect 3s
  timeout client 30s
  timeout server 30s

frontend vip
  bind ${VIP}:${PORT_HAPROXY} backlog 4096
  default_backend rs

backend rs
  balance roundrobin
  server r1 10.77.0.21:80
  server r2 10.77.0.22:80
`;
}

/** The anchors' "naive Node 20 net pipe proxy, 1 process", for context. */
const NAIVE_PROXY = `
const net = require('node:net');
const rs = [['10.77.0.21', 80], ['10.77.0.22', 80]];
let i = 0;
net.createServer({ allowHalfOpen: true }, (c) => {
  const [h, p] = rs[i++ % rs.length];
  const u = net.connect({ host: h, port: p, allowHalfOpen: true });
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
  c.pipe(u); u.pipe(c);
}).listen({ host: '${VIP}', port: ${PORT_NAIVE}, backlog: 4096 }, () => console.log('listening'));
`;

function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after "(comm)": state is index 0 => utime = field 14 => index 11, stime => 12
    return Number(f[11]) + Number(f[12]);
  } catch {
    return Number.NaN;
  }
}

// ---------------------------------------------------------------------------------------------
// The benchmark

const MODES: Mode[] = ['keepalive', 'close', 'bulk'];

function wrkArgs(mode: Mode, port: number, seconds: number, conns: number, host = VIP): string[] {
  const url = `http://${host}:${port}${mode === 'bulk' ? '/big' : '/'}`;
  const base = ['wrk', '-t1', `-c${mode === 'bulk' ? 4 : conns}`, `-d${seconds}s`, '--latency'];
  if (mode === 'close') base.push('-H', 'Connection: close');
  return [...base, url];
}

function wrkCommandText(mode: Mode, seconds: number, conns: number): string {
  return wrkArgs(mode, 0, seconds, conns).map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ').replace(`:0`, ':PORT');
}

async function runDataplane(ctx: BenchContext): Promise<BenchmarkResult> {
  const seconds = Number(ctx.params.duration ?? 5);
  const conns = Number(ctx.params.conns ?? 50);
  const withNaive = (ctx.params.naive ?? '1') !== '0';
  const threads = Number(ctx.params.threads ?? availableParallelism());
  const modes = ctx.params.modes ? (ctx.params.modes.split(',') as Mode[]) : MODES;
  for (const m of modes) if (!MODES.includes(m)) throw new Error(`dataplane.modes: unknown mode ${m} (have ${MODES.join(', ')})`);
  const records: Record_[] = [];

  await withLab(async (lab) => {
    const [c, d, r1, r2] = await Promise.all([
      lab.addHost('c', { ipv4: '10.77.0.100/24' }),
      lab.addHost('d', { ipv4: '10.77.0.11/24' }),
      lab.addHost('r1', { ipv4: '10.77.0.21/24' }),
      lab.addHost('r2', { ipv4: '10.77.0.22/24' }),
    ]);
    for (const h of [c, d, r1, r2]) await tuneNamespace(h);
    const [r1Nginx] = await Promise.all([startRealServer(lab, r1, 'r1'), startRealServer(lab, r2, 'r2')]);

    const toml = directorToml({ routerId: 'd', priority: 150, vips: [`${VIP}/24`], garpDelay: 0, extra: serviceToml() }).replace('[global]\n', `[global]\nproxy_workers = ${threads}\n`);
    const ours = await startDirector(lab, d, toml, {
      args: ['--log-level', 'info', '--log-format', 'json'],
    });
    await waitFor(async () => (await ours.instance()).state === 'MASTER', 10_000, 'keepalive-ts MASTER');
    await waitFor(async () => {
      const vs = (await ours.status()).virtual_servers[0];
      return vs?.serving === true && vs.real_servers.filter((r) => r.up).length === 2;
    }, 10_000, 'keepalive-ts serving with both real servers up');

    const hdir = join(lab.tmpDir, 'haproxy');
    await mkdir(hdir, { recursive: true });
    await writeFile(join(hdir, 'haproxy.cfg'), haproxyConfig(hdir, threads));
    const haproxy = d.spawn(['haproxy', '-db', '-f', join(hdir, 'haproxy.cfg')]);
    await waitUntilListening(d, PORT_HAPROXY, haproxy, 10_000, 'haproxy');
    const hv = await d.exec(['haproxy', '-v']);
    ctx.log(hv.stdout.split('\n')[0] ?? '');

    let naive: LabProcess | undefined;
    if (withNaive) {
      naive = d.spawn(['node', '-e', NAIVE_PROXY]);
      await naive.waitForOutput(/listening/, 10_000);
    }

    const impls: Array<{ impl: Impl; port: number; pid: number; host?: string }> = [
      { impl: 'keepalive-ts', port: PORT_OURS, pid: ours.proc.pid },
      { impl: 'haproxy', port: PORT_HAPROXY, pid: haproxy.pid },
    ];
    if (naive) impls.push({ impl: 'naive-node', port: PORT_NAIVE, pid: naive.pid });
    // The ceiling: wrk straight to r1 (no director; its "director CPU" is that nginx's).
    impls.push({ impl: 'direct', port: 80, pid: r1Nginx.pid, host: '10.77.0.21' });

    const wrk = async (impl: Impl, port: number, pid: number, mode: Mode, secs: number, host?: string): Promise<WrkResult> => {
      const t0 = cpuTicks(pid);
      const w0 = Date.now();
      const res = await c.exec(wrkArgs(mode, port, secs, conns, host), { timeoutMs: (secs + 30) * 1000 });
      const wall = (Date.now() - w0) / 1000;
      const ticks = cpuTicks(pid) - t0;
      const p = parseWrk(res.stdout);
      const cpuSec = ticks / CLK_TCK;
      return { ...p, cpuPct: (100 * cpuSec) / wall, cpuUsPerReq: p.requests > 0 ? (cpuSec * 1e6) / p.requests : Number.NaN };
    };

    // Warm-up: JIT, ARP, nginx and HAProxy buffers.
    for (const i of impls) for (const m of modes) await wrk(i.impl, i.port, i.pid, m, 1, i.host).catch(() => undefined);

    for (let rep = 0; rep < ctx.runs; rep++) {
      const order = rep % 2 === 0 ? impls : [impls[1]!, impls[0]!, ...impls.slice(2)];
      for (const mode of modes) {
        for (const i of order) {
          await sleep(500);
          const rec: Record_ = { rep, mode, impl: i.impl, r: undefined };
          try {
            rec.r = await wrk(i.impl, i.port, i.pid, mode, seconds, i.host);
            if (rec.r.errors) rec.note = rec.r.errors;
            if (!Number.isFinite(rec.r.rps)) rec.note = `no wrk result${rec.note ? `; ${rec.note}` : ''}`;
          } catch (err) {
            rec.note = `wrk failed: ${(err instanceof Error ? err.message : String(err)).split('\n').slice(0, 3).join(' ')}`;
            if (i.impl === 'keepalive-ts') ctx.log(`keepalive-ts output: ${ours.proc.output().slice(-1500)}`);
          }
          records.push(rec);
          const r = rec.r;
          ctx.log(
            `rep ${rep + 1} ${mode.padEnd(9)} ${i.impl.padEnd(12)} ${r ? `${r.rps.toFixed(0)} rps, ${r.mbps.toFixed(1)} MiB/s, p50 ${r.p50ms.toFixed(2)} ms, p99 ${r.p99ms.toFixed(2)} ms, director CPU ${r.cpuPct.toFixed(0)} % (${r.cpuUsPerReq.toFixed(1)} µs/req)` : ''}${rec.note ? ` — ${rec.note}` : ''}`,
          );
        }
      }
    }
  });

  const vals = (mode: Mode, impl: Impl, key: keyof WrkResult): number[] =>
    records.filter((r) => r.mode === mode && r.impl === impl).sort((a, b) => a.rep - b.rep).map((r) => (r.r ? (r.r[key] as number) : Number.NaN));
  const figures: Figure[] = [];
  const fig = (mode: Mode, figure: string, key: keyof WrkResult, unit: string, better: 'higher' | 'lower', decimals: number, target?: number, theory?: string) => {
    if (!modes.includes(mode)) return;
    figures.push({ figure, unit, better, decimals, ours: vals(mode, 'keepalive-ts', key), theirs: vals(mode, 'haproxy', key), ...(target !== undefined ? { target } : {}), ...(theory ? { theory } : {}) });
  };
  fig('keepalive', `requests/s, keep-alive (wrk -c${conns})`, 'rps', 'req/s', 'higher', 0, 1.0, 'anchors: HAProxy 47-53 k, naive Node pipe 42-49 k, nginx direct 123-126 k');
  fig('close', `requests/s, one connection per request (wrk -c${conns}, Connection: close)`, 'rps', 'req/s', 'higher', 0, 1.0, 'anchors: HAProxy 10.7 k, naive Node pipe 6.6-6.9 k, nginx direct 16.8 k');
  fig('bulk', 'bulk throughput, 10 MiB responses (wrk -c4)', 'mbps', 'MiB/s', 'higher', 0, 1.0);
  fig('keepalive', 'latency p50, keep-alive', 'p50ms', 'ms', 'lower', 2);
  fig('keepalive', 'latency p99, keep-alive', 'p99ms', 'ms', 'lower', 2);
  fig('close', 'latency p50, one connection per request', 'p50ms', 'ms', 'lower', 2);
  fig('close', 'latency p99, one connection per request', 'p99ms', 'ms', 'lower', 2);
  fig('keepalive', 'director CPU per request, keep-alive', 'cpuUsPerReq', 'µs', 'lower', 1);
  fig('close', 'director CPU per request, one connection per request', 'cpuUsPerReq', 'µs', 'lower', 1);
  fig('bulk', 'director CPU, bulk (% of one core)', 'cpuPct', '%', 'lower', 0);

  const notes = [
    `Commands (from the client namespace; PORT = ${PORT_OURS} keepalive-ts, ${PORT_HAPROXY} HAProxy${withNaive ? `, ${PORT_NAIVE} naive Node pipe proxy` : ''}, all on the VIP of director d): ` +
      modes.map((m) => `\`${wrkCommandText(m, seconds, conns)}\``).join(', ') + '. ' +
      'Each repetition runs every mode against every implementation, keepalive-ts first on odd repetitions and HAProxy first on even ones, after a 1 s warm-up of each at the start.',
    'Lab: client c 10.77.0.100, director d 10.77.0.11 with VIP 10.77.0.50 (keepalive-ts MASTER), real servers r1 10.77.0.21 and r2 10.77.0.22: nginx, one worker, `return 200` on / and a 10 MiB static file (sendfile) on /big. ' +
      `keepalive-ts: TCP virtual server VIP:80, rr, TCP_CHECK health checks, \`proxy_workers = ${threads}\` (one worker thread per CPU, each with its own SO_REUSEPORT socket); HAProxy 2.6 (Debian): \`mode tcp\`, \`nbthread ${threads}\`, \`balance roundrobin\` over the same servers on VIP:8080. ` +
      '"direct" is wrk straight to r1\'s nginx (http://10.77.0.21/): the ceiling without any director (its CPU figures are that nginx\'s). ' +
      'Every namespace: net.ipv4.tcp_tw_reuse=1, ip_local_port_range 10000 65000, somaxconn 4096.',
    'Everything (wrk, both nginx, the director\'s proxy) shares the same 2 vCPUs, so a proxy that uses less CPU leaves more for wrk and nginx: the "director CPU" rows (utime + stime of the daemon process — all its threads — or of haproxy, from /proc/PID/stat over the wrk run) show the efficiency independent of the request rate.',
  ];
  if (withNaive) {
    const nv = (m: Mode, k: keyof WrkResult, dd = 0) => vals(m, 'naive-node', k).map((x) => (Number.isFinite(x) ? x.toFixed(dd) : 'n/a')).join(', ');
    notes.push(
      `Naive Node 20 \`net\` pipe proxy (one process, createServer + connect + pipe both ways, the anchors' third row), same runs: ` +
        modes.map((m) => `${m}: ${m === 'bulk' ? `${nv(m, 'mbps')} MiB/s` : `${nv(m, 'rps')} req/s`} (CPU ${nv(m, 'cpuUsPerReq', 1)} µs/req)`).join('; ') + '.',
    );
  }
  const failed = records.filter((r) => r.note);
  if (failed.length) notes.push(`Runs with a remark: ${failed.length} (see the table below).`);
  const f = (v: number | undefined, dd: number) => (v !== undefined && Number.isFinite(v) ? v.toFixed(dd) : 'n/a');
  const rows = records.map(
    (r) =>
      `| ${r.rep + 1} | ${r.mode} | ${r.impl} | ${f(r.r?.rps, 0)} | ${f(r.r?.mbps, 1)} | ${f(r.r?.p50ms, 2)} | ${f(r.r?.p99ms, 2)} | ${f(r.r?.cpuPct, 0)} | ${f(r.r?.cpuUsPerReq, 1)} | ${r.note ?? ''} |`,
  );
  const details = [
    '<details><summary>Every run</summary>',
    '',
    '| rep | mode | implementation | req/s | MiB/s | p50 ms | p99 ms | director CPU % | CPU µs/req | remark |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    '</details>',
  ].join('\n');
  ctx.log(
    `medians: ${modes.map((m) => `${m}: ours ${median(vals(m, 'keepalive-ts', m === 'bulk' ? 'mbps' : 'rps')).toFixed(0)} / haproxy ${median(vals(m, 'haproxy', m === 'bulk' ? 'mbps' : 'rps')).toFixed(0)}`).join('; ')}`,
  );
  const charts: Chart[] = [
    {
      id: 'dataplane-rps',
      title: `Requests/s through the director (${threads} threads each) and without it`,
      unit: 'req/s',
      better: 'higher',
      groups: modes.filter((m) => m !== 'bulk').map((m) => (m === 'keepalive' ? 'keep-alive' : 'connection per request')),
      series: [
        { name: `keepalive-ts PROXY (${threads} workers)`, values: modes.filter((m) => m !== 'bulk').map((m) => vals(m, 'keepalive-ts', 'rps')) },
        { name: `HAProxy (nbthread ${threads})`, values: modes.filter((m) => m !== 'bulk').map((m) => vals(m, 'haproxy', 'rps')) },
        { name: 'direct to nginx (ceiling)', values: modes.filter((m) => m !== 'bulk').map((m) => vals(m, 'direct', 'rps')) },
      ],
    },
  ];
  if (modes.includes('bulk')) {
    charts.push({
      id: 'dataplane-bulk',
      title: 'Bulk throughput, 10 MiB responses',
      unit: 'MiB/s',
      better: 'higher',
      groups: ['bulk'],
      series: [
        { name: `keepalive-ts PROXY (${threads} workers)`, values: [vals('bulk', 'keepalive-ts', 'mbps')] },
        { name: `HAProxy (nbthread ${threads})`, values: [vals('bulk', 'haproxy', 'mbps')] },
        { name: 'direct to nginx (ceiling)', values: [vals('bulk', 'direct', 'mbps')] },
      ],
    });
  }
  const dv = (m: Mode, k: keyof WrkResult) => vals(m, 'direct', k).map((x) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a')).join(', ');
  notes.push(`Direct to r1 (no director), same runs: ${modes.map((m) => `${m}: ${m === 'bulk' ? `${dv(m, 'mbps')} MiB/s` : `${dv(m, 'rps')} req/s`}`).join('; ')}.`);
  return { figures, notes, details, charts };
}

export const dataplane: Benchmark = {
  name: 'dataplane',
  title: 'Data plane: requests/s, latency and bulk throughput through the director',
  reference: 'HAProxy',
  description:
    'wrk on client c against the VIP of director d: keep-alive (`wrk -t1 -c50 -d5s`), one connection per request (`-H \'Connection: close\'`) and 10 MiB responses (`-c4`, MiB/s), ' +
    'through keepalive-ts\'s user-space TCP virtual server (VIP:80, rr, one proxy worker per CPU) vs HAProxy 2.6 in TCP mode with as many threads (`nbthread`, VIP:8080, roundrobin), same two nginx real servers, alternating per repetition, and straight to one nginx (the ceiling); ' +
    'plus wrk\'s p50/p99 latency and the director process\'s CPU time. Everything shares the machine\'s 2 vCPUs.',
  run: runDataplane,
};
