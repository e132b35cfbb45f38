// Data-plane benchmark: requests/s, latency and bulk throughput through the director, in one run:
// keepalive-ts's user-space L4 proxy (one worker thread per CPU, `dataplane.workers`), HAProxy 2.6
// (TCP mode, nbthread = the same count), the kernel data plane
// in DR and in NAT mode (nftables), and the client talking to nginx directly (the ceiling).
//
// Lab (one per benchmark run), two segments:
//   br0 (clients): client c 10.77.0.100, director d eth0 10.77.0.11 + VIP 10.77.0.50,
//                  real servers r1 eth0 10.77.0.21, r2 eth0 10.77.0.22 (DR: on-link with d)
//   br1 (servers): d eth1 10.78.0.1, r1 eth1 10.78.0.21, r2 eth1 10.78.0.22
// Real servers run nginx (one worker, `return 200` on /, a 10 MiB static file on /big) on :80 and
// :81, hold the VIP on lo with arp_ignore=1/arp_announce=2 (for DR), and route what they send from
// their br1 address back through the director (policy rule `from 10.78.0.2x table 100`, default via
// 10.78.0.1): NAT replies are un-NATed there, DR replies (from the VIP) go straight to the client.
// Services on the VIP: :80 keepalive-ts proxy (rr -> 10.78.0.2x:80), :8080 HAProxy (roundrobin ->
// 10.78.0.2x:80), :81 DR (rr -> 10.77.0.2x:81), :82 NAT (rr -> 10.78.0.2x:80); "direct" is wrk
// against r1's 10.77.0.21:80. Optionally a naive Node `net` pipe proxy on :8081. Every namespace
// has net.ipv4.tcp_tw_reuse=1 and ip_local_port_range 10000 65000.
//
// One repetition, for each mode in turn, runs wrk from the client against each implementation,
// the order rotating per repetition:
//   keep-alive   wrk -t2 -c64 -d5s --latency http://VIP:port/
//   close        wrk -t2 -c64 -d5s --latency -H 'Connection: close' http://VIP:port/
//   bulk         wrk -t2 -c4  -d5s http://VIP:port/big          (10 MiB per response)
// and reads around each run: the director process's CPU (proxy, HAProxy: utime + stime of its
// /proc/PID/stat), wrk's own CPU (GNU time), and the machine's CPU from /proc/stat (user, system,
// softirq: kernel forwarding runs in softirq context, in no process).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { directorToml, startDirector } from '../test/lib/daemon.js';
import { nginxConfig, waitUntilListening } from '../test/lib/servers.js';
import { median, sleep, waitFor, withLab, type Lab, type LabHost, type LabProcess } from './lab.js';
import type { Benchmark, BenchContext, BenchmarkResult, Figure } from './run.js';
import type { Chart } from './chart.js';

const VIP = '10.77.0.50';
const PORT_OURS = 80;
const PORT_HAPROXY = 8080;
const PORT_NAIVE = 8081;
const PORT_DR = 81;
const PORT_NAT = 82;
const BIG_BYTES = 10 * 1024 * 1024;
const CLK_TCK = 100;

type Impl = 'keepalive-ts' | 'haproxy' | 'dr' | 'nat' | 'direct' | 'naive-node';
type Mode = 'keepalive' | 'close' | 'bulk';

interface WrkResult {
  rps: number;
  /** MiB/s of response bytes (wrk's Transfer/sec). */
  mbps: number;
  p50ms: number;
  p99ms: number;
  requests: number;
  errors: string;
  /** Director CPU (process of this implementation) in % of one core over the run; NaN for kernel paths. */
  cpuPct: number;
  /** Director CPU microseconds per request (process). */
  cpuUsPerReq: number;
  /** wrk's CPU (user + system) in % of one core. */
  clientCpuPct: number;
  /** Whole machine: system + softirq microseconds per request (kernel work: forwarding, TCP). */
  kernelUsPerReq: number;
  /** Whole machine: busy microseconds per request (everything: client, servers, director). */
  machineUsPerReq: number;
  /** The director's busiest threads (as many as it has workers), % of one core each, highest first. */
  threadPct: number[];
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

export function parseWrk(out: string): Omit<WrkResult, 'cpuPct' | 'cpuUsPerReq' | 'clientCpuPct' | 'kernelUsPerReq' | 'machineUsPerReq' | 'threadPct'> {
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

/** nginx, one worker, on :80 and :81: `return 200 "<body>"` on / plus /big, a static file. */
async function startRealServer(lab: Lab, host: LabHost, body: string): Promise<LabProcess> {
  const dir = join(lab.tmpDir, `nginx-${host.name}`);
  await mkdir(join(dir, 'www'), { recursive: true });
  await writeFile(join(dir, 'www', 'big'), Buffer.alloc(BIG_BYTES, 'x'));
  const conf = nginxConfig(dir, {
    listen: ['listen 80 backlog=4096;', `listen ${PORT_DR} backlog=4096;`],
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

/** A real server for both kinds: the VIP on lo (DR), replies from its br1 address via the director (NAT). */
async function prepareRealServer(h: LabHost, br1Address: string): Promise<void> {
  await h.exec(['sh', '-ec', [
    `ip addr add ${VIP}/32 dev lo`,
    'sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2',
    `ip rule add from ${br1Address} table 100`,
    'ip route add default via 10.78.0.1 table 100',
  ].join('\n')]);
}

function serviceToml(): string {
  const rs = (addr: string, port: number) => `
[[virtual_server.real_server]]
address = "${addr}"
port = ${port}
weight = 1
check = { type = "TCP_CHECK", connect_timeout = 1, retry = 1, delay_before_retry = 0.5 }
`;
  const vs = (port: number, kind: string, servers: Array<[string, number]>) => `[[virtual_server]]
address = "${VIP}"
port = ${port}
lb_kind = "${kind}"
protocol = "TCP"
lb_algo = "rr"
delay_loop = 2
${servers.map(([a, p]) => rs(a, p)).join('')}`;
  return [
    vs(PORT_OURS, 'PROXY', [['10.78.0.21', 80], ['10.78.0.22', 80]]),
    vs(PORT_DR, 'DR', [['10.77.0.21', PORT_DR], ['10.77.0.22', PORT_DR]]),
    vs(PORT_NAT, 'NAT', [['10.78.0.21', 80], ['10.78.0.22', 80]]),
  ].join('\n');
}

function haproxyConfig(dir: string, workers: number, splice: boolean): string {
  return `global
  nbthread ${workers}
  maxconn ${splice ? 4000 : 8000}
  pidfile ${dir}/haproxy.pid

defaults
  mode tcp
  timeout connect 3s
  timeout client 30s
  timeout server 30s
${splice ? '  option splice-auto\n' : ''}
frontend vip
  bind ${VIP}:${PORT_HAPROXY} backlog 4096
  default_backend rs

backend rs
  balance roundrobin
  server r1 10.78.0.21:80
  server r2 10.78.0.22:80
`;
}

/** The anchors' "naive Node 20 net pipe proxy, 1 process", for context. */
const NAIVE_PROXY = `
const net = require('node:net');
const rs = [['10.78.0.21', 80], ['10.78.0.22', 80]];
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

/** CPU ticks (utime + stime) of each thread of a process, by thread id. */
function threadTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out.set(t, Number(f[11]) + Number(f[12]));
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    // the process ended
  }
  return out;
}

/** The busiest threads' CPU over a run, in % of one core, highest first (how evenly the workers share the load). */
function threadSplit(before: Map<string, number>, after: Map<string, number>, wallSec: number, top: number): number[] {
  return [...after].map(([t, v]) => (100 * (v - (before.get(t) ?? 0))) / CLK_TCK / wallSec).sort((a, b) => b - a).slice(0, top);
}

/** Machine-wide CPU jiffies from /proc/stat (namespaces do not split it): busy and system + softirq. */
function machineTicks(): { busy: number; kernel: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = line as [number, number, number, number, number, number, number, number];
  return { busy: user + nice + system + irq + softirq + (steal ?? 0), kernel: system + irq + softirq };
}

// ---------------------------------------------------------------------------------------------
// The benchmark

const MODES: Mode[] = ['keepalive', 'close', 'bulk'];

function wrkArgs(mode: Mode, target: string, seconds: number, conns: number, threads: number): string[] {
  const url = `http://${target}${mode === 'bulk' ? '/big' : '/'}`;
  const base = ['wrk', `-t${threads}`, `-c${mode === 'bulk' ? 4 : conns}`, `-d${seconds}s`, '--latency'];
  if (mode === 'close') base.push('-H', 'Connection: close');
  return [...base, url];
}

function wrkCommandText(mode: Mode, seconds: number, conns: number, threads: number): string {
  return wrkArgs(mode, 'TARGET', seconds, conns, threads).map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ');
}

async function runDataplane(ctx: BenchContext): Promise<BenchmarkResult> {
  const seconds = Number(ctx.params.duration ?? 5);
  const conns = Number(ctx.params.conns ?? 64);
  const threads = Number(ctx.params.threads ?? 2);
  // The proxy's worker threads and HAProxy's nbthread: the same count (default one per CPU).
  const workers = Number(ctx.params.workers ?? availableParallelism());
  const withNaive = (ctx.params.naive ?? '0') !== '0';
  const modes = ctx.params.modes ? (ctx.params.modes.split(',') as Mode[]) : MODES;
  // `--param dataplane.haproxySplice=1`: HAProxy with `option splice-auto` (kernel splice(2) between its sockets;
  // maxconn 4000 then: its pipes need file descriptors, and 8000 would ask for more than the 20000 allowed here).
  const haproxySplice = (ctx.params.haproxySplice ?? '0') !== '0';
  const onlyImpls = ctx.params.impls ? (ctx.params.impls.split(',') as Impl[]) : undefined;
  for (const m of modes) if (!MODES.includes(m)) throw new Error(`dataplane.modes: unknown mode ${m} (have ${MODES.join(', ')})`);
  const records: Record_[] = [];
  const loadBefore = loadavg()[0]!;

  await withLab(async (lab) => {
    const br1 = await lab.addBridge();
    const [c, d, r1, r2] = await Promise.all([
      lab.addHost('c', { ipv4: '10.77.0.100/24' }),
      lab.addHost('d', { ipv4: '10.77.0.11/24' }),
      lab.addHost('r1', { ipv4: '10.77.0.21/24' }),
      lab.addHost('r2', { ipv4: '10.77.0.22/24' }),
    ]);
    await lab.addLink(d, br1, { ipv4: '10.78.0.1/24' });
    await lab.addLink(r1, br1, { ipv4: '10.78.0.21/24' });
    await lab.addLink(r2, br1, { ipv4: '10.78.0.22/24' });
    for (const h of [c, d, r1, r2]) await tuneNamespace(h);
    await d.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await prepareRealServer(r1, '10.78.0.21');
    await prepareRealServer(r2, '10.78.0.22');
    await Promise.all([startRealServer(lab, r1, 'r1'), startRealServer(lab, r2, 'r2')]);

    const toml = directorToml({ routerId: 'd', priority: 150, vips: [`${VIP}/24`], garpDelay: 0, extra: serviceToml() }).replace('[global]\n', `[global]\nproxy_workers = ${workers}\n`);
    if (!toml.includes(`proxy_workers = ${workers}`)) throw new Error('dataplane: no [global] table to set proxy_workers in');
    const ours = await startDirector(lab, d, toml, {
      args: ['--log-level', 'info', '--log-format', 'json'],
    });
    await waitFor(async () => (await ours.instance()).state === 'MASTER', 10_000, 'keepalive-ts MASTER');
    // One daemon serves all three: the proxy (VIP:80), DR (VIP:81) and NAT (VIP:82) in the kernel.
    await waitFor(async () => {
      const all = (await ours.status()).virtual_servers;
      return all.length === 3 && all.every((vs) => vs.serving && vs.real_servers.filter((r) => r.up).length === 2);
    }, 15_000, 'keepalive-ts serving its three virtual servers with both real servers up');

    const hdir = join(lab.tmpDir, 'haproxy');
    await mkdir(hdir, { recursive: true });
    await writeFile(join(hdir, 'haproxy.cfg'), haproxyConfig(hdir, workers, haproxySplice));
    const haproxy = d.spawn(['haproxy', '-db', '-f', join(hdir, 'haproxy.cfg')]);
    await waitUntilListening(d, PORT_HAPROXY, haproxy, 10_000, 'haproxy');
    const hv = await d.exec(['haproxy', '-v']);
    ctx.log(hv.stdout.split('\n')[0] ?? '');

    let naive: LabProcess | undefined;
    if (withNaive) {
      naive = d.spawn(['node', '-e', NAIVE_PROXY]);
      await naive.waitForOutput(/listening/, 10_000);
    }

    const impls: Array<{ impl: Impl; target: string; pid?: number }> = [
      { impl: 'keepalive-ts', target: `${VIP}:${PORT_OURS}`, pid: ours.proc.pid },
      { impl: 'haproxy', target: `${VIP}:${PORT_HAPROXY}`, pid: haproxy.pid },
      { impl: 'dr', target: `${VIP}:${PORT_DR}` },
      { impl: 'nat', target: `${VIP}:${PORT_NAT}` },
      { impl: 'direct', target: '10.77.0.21:80' },
    ];
    if (naive) impls.push({ impl: 'naive-node', target: `${VIP}:${PORT_NAIVE}`, pid: naive.pid });
    // `--param dataplane.impls=keepalive-ts,haproxy`: only these (e.g. more repetitions of one ratio).
    if (onlyImpls) {
      for (const x of onlyImpls) if (!impls.some((i) => i.impl === x)) throw new Error(`dataplane.impls: unknown implementation ${x} (have ${impls.map((i) => i.impl).join(', ')})`);
      impls.splice(0, impls.length, ...impls.filter((i) => onlyImpls.includes(i.impl)));
    }

    const wrk = async (i: (typeof impls)[number], mode: Mode, secs: number): Promise<WrkResult> => {
      const t0 = i.pid ? cpuTicks(i.pid) : Number.NaN;
      const th0 = i.pid ? threadTicks(i.pid) : new Map<string, number>();
      const m0 = machineTicks();
      const w0 = Date.now();
      const res = await c.exec(['/usr/bin/time', '-f', 'wrk-cpu %U %S', ...wrkArgs(mode, i.target, secs, conns, threads)], { timeoutMs: (secs + 30) * 1000 });
      const wall = (Date.now() - w0) / 1000;
      const m1 = machineTicks();
      const ticks = i.pid ? cpuTicks(i.pid) - t0 : Number.NaN;
      const threadPct = i.pid ? threadSplit(th0, threadTicks(i.pid), wall, workers) : [];
      const p = parseWrk(res.stdout);
      const cpuSec = ticks / CLK_TCK;
      const wc = /wrk-cpu ([\d.]+) ([\d.]+)/.exec(res.stderr);
      const clientSec = wc ? Number(wc[1]) + Number(wc[2]) : Number.NaN;
      const perReq = (jiffies: number) => (p.requests > 0 ? ((jiffies / CLK_TCK) * 1e6) / p.requests : Number.NaN);
      return {
        ...p,
        cpuPct: (100 * cpuSec) / wall,
        cpuUsPerReq: p.requests > 0 ? (cpuSec * 1e6) / p.requests : Number.NaN,
        clientCpuPct: (100 * clientSec) / wall,
        kernelUsPerReq: perReq(m1.kernel - m0.kernel),
        machineUsPerReq: perReq(m1.busy - m0.busy),
        threadPct,
      };
    };

    // Warm-up: JIT, ARP, nginx and HAProxy buffers.
    for (const i of impls) for (const m of modes) await wrk(i, m, 1).catch(() => undefined);

    for (let rep = 0; rep < ctx.runs; rep++) {
      const order = [...impls.slice(rep % impls.length), ...impls.slice(0, rep % impls.length)];
      for (const mode of modes) {
        for (const i of order) {
          await sleep(500);
          const rec: Record_ = { rep, mode, impl: i.impl, r: undefined };
          try {
            rec.r = await wrk(i, mode, seconds);
            if (rec.r.errors) rec.note = rec.r.errors;
            if (!Number.isFinite(rec.r.rps)) rec.note = `no wrk result${rec.note ? `; ${rec.note}` : ''}`;
          } catch (err) {
            rec.note = `wrk failed: ${(err instanceof Error ? err.message : String(err)).split('\n').slice(0, 3).join(' ')}`;
            if (i.impl === 'keepalive-ts') ctx.log(`keepalive-ts output: ${ours.proc.output().slice(-1500)}`);
          }
          records.push(rec);
          const r = rec.r;
          ctx.log(
            `rep ${rep + 1} ${mode.padEnd(9)} ${i.impl.padEnd(12)} ${r ? `${r.rps.toFixed(0)} rps, ${r.mbps.toFixed(1)} MiB/s, p50 ${r.p50ms.toFixed(2)} ms, p99 ${r.p99ms.toFixed(2)} ms, director process ${r.cpuPct.toFixed(0)} %, client ${r.clientCpuPct.toFixed(0)} %, machine ${r.machineUsPerReq.toFixed(1)} µs/req (kernel ${r.kernelUsPerReq.toFixed(1)})${r.threadPct.length ? `, busiest threads ${r.threadPct.map((x) => x.toFixed(0)).join('/')} %` : ''}` : ''}${rec.note ? ` — ${rec.note}` : ''}`,
          );
        }
      }
    }
    const kst = await ours.status();
    ctx.log(`after the runs: ${kst.virtual_servers.map((s) => `${s.key} ${s.kind} (${s.scheduler_in_effect}) conns ${s.conns} in_pkts ${s.in_pkts} out_pkts ${s.out_pkts}`).join('; ')}`);
  });

  const vals = (mode: Mode, impl: Impl, key: keyof WrkResult): number[] =>
    records.filter((r) => r.mode === mode && r.impl === impl).sort((a, b) => a.rep - b.rep).map((r) => (r.r ? (r.r[key] as number) : Number.NaN));
  const figures: Figure[] = [];
  const fig = (impl: Impl, mode: Mode, figure: string, key: keyof WrkResult, unit: string, better: 'higher' | 'lower', decimals: number, target?: number, theory?: string) => {
    if (!modes.includes(mode)) return;
    figures.push({ figure, unit, better, decimals, ours: vals(mode, impl, key), theirs: vals(mode, 'haproxy', key), ...(target !== undefined ? { target } : {}), ...(theory ? { theory } : {}) });
  };
  const direct = (mode: Mode, key: keyof WrkResult, d = 0) => {
    const v = median(vals(mode, 'direct', key));
    return Number.isFinite(v) ? v.toFixed(d) : 'n/a';
  };
  const w = `wrk -t${threads} -c${conns}`;
  for (const [impl, label, ka, cl, bulk] of [
    ['keepalive-ts', 'proxy (user space)', 1.0, 0.8, 1.0], // #16: keep-alive ≥ 1.0×, connection per request ≥ 0.8×, bulk ≥ 1.0×
    ['dr', 'DR (kernel)', 1.2, 1.5, 1.0],
    ['nat', 'NAT (kernel)', 1.2, 1.5, 1.0],
  ] as const) {
    fig(impl, 'keepalive', `${label}: requests/s, keep-alive (${w})`, 'rps', 'req/s', 'higher', 0, ka, `ceiling: nginx directly ${direct('keepalive', 'rps')}`);
    fig(impl, 'close', `${label}: requests/s, one connection per request (${w}, Connection: close)`, 'rps', 'req/s', 'higher', 0, cl, `ceiling: nginx directly ${direct('close', 'rps')}`);
    fig(impl, 'bulk', `${label}: bulk throughput, 10 MiB responses (-c4)`, 'mbps', 'MiB/s', 'higher', 0, bulk, `ceiling: nginx directly ${direct('bulk', 'mbps')}`);
    fig(impl, 'keepalive', `${label}: latency p99, keep-alive`, 'p99ms', 'ms', 'lower', 2);
    fig(impl, 'close', `${label}: latency p99, one connection per request`, 'p99ms', 'ms', 'lower', 2);
    fig(impl, 'keepalive', `${label}: machine CPU per request, keep-alive (all processes + softirq)`, 'machineUsPerReq', 'µs', 'lower', 1, undefined, `nginx directly ${direct('keepalive', 'machineUsPerReq', 1)}`);
    fig(impl, 'close', `${label}: machine CPU per request, one connection per request`, 'machineUsPerReq', 'µs', 'lower', 1, undefined, `nginx directly ${direct('close', 'machineUsPerReq', 1)}`);
  }
  fig('keepalive-ts', 'keepalive', 'proxy: director process CPU per request, keep-alive', 'cpuUsPerReq', 'µs', 'lower', 1);
  fig('keepalive-ts', 'close', 'proxy: director process CPU per request, one connection per request', 'cpuUsPerReq', 'µs', 'lower', 1);

  const notes = [
    `Commands (from the client namespace; TARGET = VIP:${PORT_OURS} keepalive-ts proxy, VIP:${PORT_HAPROXY} HAProxy, VIP:${PORT_DR} DR, VIP:${PORT_NAT} NAT, 10.77.0.21:80 nginx directly${withNaive ? `, VIP:${PORT_NAIVE} naive Node pipe proxy` : ''}): ` +
      modes.map((m) => `\`${wrkCommandText(m, seconds, conns, threads)}\``).join(', ') + '. ' +
      'Each repetition runs every mode against every implementation, the order rotating per repetition, after a 1 s warm-up of each at the start.',
    'Lab: two segments. Client c 10.77.0.100 and the director d (10.77.0.11, VIP 10.77.0.50) on br0 with the real servers\' first interfaces (r1 10.77.0.21, r2 10.77.0.22: on-link for DR); the real servers\' second interfaces (10.78.0.21/.22) and the director\'s eth1 (10.78.0.1) on br1. ' +
      `nginx, one worker, \`return 200\` on / and a 10 MiB static file (sendfile) on /big. One keepalive-ts daemon (MASTER) serves three virtual servers, rr with TCP_CHECK: the proxy (\`lb_kind PROXY\`, \`proxy_workers = ${workers}\`: one worker thread each with its own SO_REUSEPORT socket) on VIP:80 to 10.78.0.2x:80; HAProxy 2.6 (Debian): \`mode tcp\`, \`nbthread ${workers}\`, \`balance roundrobin\` to the same${haproxySplice ? ', with `option splice-auto` (and maxconn 4000: its pipes need descriptors)' : ' (no splice option: HAProxy\'s default, bytes copied through its buffers; `--param dataplane.haproxySplice=1` adds `option splice-auto`)'}. ` +
      'Bulk: the proxy moves a direction with splice(2) through a pooled pipe once it has moved 256 KiB with full 64 KiB reads (no copy through user space); request/response traffic stays on recv/send. ' +
      'DR: `lb_kind DR`, rr, to 10.77.0.2x:81 (VIP on the real servers\' lo, arp_ignore=1, arp_announce=2); NAT: `lb_kind NAT`, rr, VIP:82 -> 10.78.0.2x:80, the real servers\' replies routed back through the director by a policy rule. "Directly": wrk against r1\'s nginx, the ceiling (one nginx instead of two).',
    'Everything (wrk, both nginx, the director) shares the same 2 vCPUs. "machine CPU per request" is all busy time of the VM over the run (/proc/stat: user + system + irq + softirq) divided by the requests, so a cheaper data plane shows lower figures whatever the request rate; kernel forwarding runs in softirq context and appears in no process. The client column below shows when wrk itself saturates.',
  ];
  if (withNaive) {
    const nv = (m: Mode, k: keyof WrkResult, dd = 0) => vals(m, 'naive-node', k).map((x) => (Number.isFinite(x) ? x.toFixed(dd) : 'n/a')).join(', ');
    notes.push(`Naive Node 20 \`net\` pipe proxy, same runs: ` + modes.map((m) => `${m}: ${m === 'bulk' ? `${nv(m, 'mbps')} MiB/s` : `${nv(m, 'rps')} req/s`}`).join('; ') + '.');
  }
  notes.push(`Load average of the VM (1 min) when the benchmark started: ${loadBefore.toFixed(1)}; when it ended: ${loadavg()[0]!.toFixed(1)} (other work shares the 2 vCPUs; ratios from the same run are comparable, absolute figures less so).`);
  const failed = records.filter((r) => r.note);
  if (failed.length) notes.push(`Runs with a remark: ${failed.length} (see the table below).`);
  const f = (v: number | undefined, dd: number) => (v !== undefined && Number.isFinite(v) ? v.toFixed(dd) : 'n/a');
  const rows = records.map(
    (r) =>
      `| ${r.rep + 1} | ${r.mode} | ${r.impl} | ${f(r.r?.rps, 0)} | ${f(r.r?.mbps, 1)} | ${f(r.r?.p50ms, 2)} | ${f(r.r?.p99ms, 2)} | ${f(r.r?.cpuPct, 0)} | ${f(r.r?.clientCpuPct, 0)} | ${f(r.r?.machineUsPerReq, 1)} | ${f(r.r?.kernelUsPerReq, 1)} | ${r.note ?? ''} |`,
  );
  const details = [
    '<details><summary>Every run</summary>',
    '',
    '| rep | mode | implementation | req/s | MiB/s | p50 ms | p99 ms | director process CPU % | client (wrk) CPU % | machine µs/req | of which system+softirq µs/req | remark |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    '</details>',
  ].join('\n');
  ctx.log(
    `medians: ${modes.map((m) => `${m}: ${(['keepalive-ts', 'haproxy', 'dr', 'nat', 'direct'] as Impl[]).map((i) => `${i} ${median(vals(m, i, m === 'bulk' ? 'mbps' : 'rps')).toFixed(0)}`).join(' / ')}`).join('; ')}`,
  );
  const bars = modes.filter((m) => m !== 'bulk');
  const label = (m: Mode) => (m === 'keepalive' ? 'keep-alive' : 'connection per request');
  const series = (m: Mode[], key: keyof WrkResult) => ([
    [`keepalive-ts PROXY (${workers} workers)`, 'keepalive-ts'],
    ['keepalive-ts DR (kernel)', 'dr'],
    ['keepalive-ts NAT (kernel)', 'nat'],
    [`HAProxy (nbthread ${workers})`, 'haproxy'],
    ['nginx directly (ceiling)', 'direct'],
  ] as const).map(([name, impl]) => ({ name, values: m.map((x) => vals(x, impl, key)) }));
  const charts: Chart[] = [];
  if (bars.length > 0) {
    charts.push({ id: 'dataplane-rps', title: `Requests/s per data-plane kind (wrk -t${threads} -c${conns})`, unit: 'req/s', better: 'higher', groups: bars.map(label), series: series(bars, 'rps') });
  }
  if (modes.includes('bulk')) {
    charts.push({ id: 'dataplane-bulk', title: 'Bulk throughput per data-plane kind, 10 MiB responses', unit: 'MiB/s', better: 'higher', groups: ['bulk (-c4)'], series: series(['bulk'], 'mbps') });
  }
  return { figures, notes, details, charts };
}

export const dataplane: Benchmark = {
  name: 'dataplane',
  title: 'Data plane: requests/s, latency and bulk throughput through the director',
  reference: 'HAProxy',
  description:
    'wrk on client c against the VIP of director d: keep-alive (`wrk -t2 -c64 -d5s`), one connection per request (`-H \'Connection: close\'`) and 10 MiB responses (`-c4`, MiB/s), ' +
    'through one keepalive-ts daemon\'s user-space proxy (VIP:80) and its kernel data plane in DR mode (VIP:81) and in NAT mode (VIP:82), HAProxy 2.6 in TCP mode with as many threads (`nbthread`, VIP:8080) as the proxy has workers (`proxy_workers`, default one per CPU), and straight to one nginx (the ceiling), same two nginx real servers, the order rotating per repetition; ' +
    'plus wrk\'s p50/p99 latency, the director process\'s CPU, the client\'s CPU and the whole machine\'s CPU per request. Everything shares the machine\'s 2 vCPUs.',
  run: runDataplane,
};
