// Scale benchmark: the daemon with 1,000 virtual servers and 1,000 real servers under HTTP_GET
// every second — CPU, RSS, startup time, and the time of an (unchanged-config) reload.
//
// Lab: director da (keepalive-ts) and host r1 running one nginx that listens on 1,000 ports
// (10000..10999): each port is one real server, as a farm of many small backends behind one address
// would look. Config: 1,000 [[virtual_server]] on VIP 10.77.0.50 ports 20000..20999, each with one
// real server r1:(10000 + i), HTTP_GET `/` every delay_loop (default 1 s, `--param scale.delay_loop=`).
// Figures: startup (spawn -> VRRP running, i.e. the instance on its socket with its down timer armed,
// from the daemon's log; -> first advert; -> services ready, the start-up hold released; -> control
// socket answers; -> every real server up; -> MASTER and every virtual server serving), CPU of the daemon (main + worker threads, /proc/PID/stat) and RSS over
// `scale.seconds` (default 30) of steady checking, and the `reload` round trip with the unchanged
// file (a changed file is refused with E_RELOAD_UNSUPPORTED today).
// keepalived is not measured: its virtual servers need the ip_vs kernel module, absent in this VM.
// The reference is HAProxy 2.6 (TCP mode, as many threads as our proxy workers) in its own lab with the same nginx: 1,000 `listen`
// sections on VIP:20000+i, one server r1:(10000+i) each, `option httpchk` with our request every 1 s — CPU, RSS,
// spawn -> stats socket answers, spawn -> every server's first check passed (L7OK); alternating per
// repetition. Reload stays ours-only (see the notes).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { controlRequest } from '../src/cli/control-client.js';
import { directorToml, startDirector } from '../test/lib/daemon.js';
import { nginxConfig, startTcpdump, waitUntilListening } from '../test/lib/servers.js';
import { PROD_LOG_ARGS, advertTimes, memoryKiB, percentile, threadCpuSeconds, treeCpuSeconds, virtualServerToml } from '../test/lib/reliability.js';
import { median, sleep, waitFor, withLab, type Lab, type LabHost, type LabProcess } from './lab.js';
import type { Benchmark, BenchContext, BenchmarkResult, Figure } from './run.js';
import type { Chart } from './chart.js';
import { haproxyCmd } from './health.js';

const VIP = '10.77.0.50';
const DEFAULT_N = 1000;
const RS_BASE = 10_000;
const VS_BASE = 20_000;

/**
 * One nginx listening on every port of `ports`; with `accessLog`, each request is logged as
 * "<$msec> <$server_port>" (the health checks' arrival times, for their lateness).
 */
export async function startManyPortNginx(lab: Lab, host: LabHost, ports: number[], accessLog?: string): Promise<LabProcess> {
  const dir = join(lab.tmpDir, `nginx-many-${host.name}`);
  await mkdir(dir, { recursive: true });
  const conf = nginxConfig(dir, {
    listen: ports.map((p) => `listen ${p};`),
    workerConnections: Math.max(8192, ports.length * 4),
    main: `worker_rlimit_nofile ${Math.max(16384, ports.length * 8)};`,
    ...(accessLog ? { http: 'log_format arrivals \'$msec $server_port\';' } : {}),
    locations: `${accessLog ? `access_log ${accessLog} arrivals buffer=256k flush=1s;\n    ` : ''}location / { default_type text/plain; return 200 "ok"; }`,
  });
  const confPath = join(dir, 'nginx.conf');
  await writeFile(confPath, conf);
  const proc = host.spawn(['nginx', '-e', 'stderr', '-p', dir, '-c', confPath]);
  await waitUntilListening(host, ports.at(-1)!, proc, 60_000, `nginx on ${host.name} (${ports.length} ports)`);
  return proc;
}

/**
 * Lateness of periodic checks from their arrival log ("<$msec> <$server_port>" lines): for every
 * port, each interval between two consecutive checks inside [from, to] minus the check interval;
 * p50 / p99 / max over every port (ms; negative = early).
 */
export function checkLateness(log: string, intervalMs: number, from: number, to: number): { p50: number; p99: number; max: number; n: number } {
  const byPort = new Map<string, number[]>();
  for (const line of log.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp < 0) continue;
    const t = Number(line.slice(0, sp)) * 1000;
    if (!(t >= from && t <= to)) continue;
    const port = line.slice(sp + 1).trim();
    let l = byPort.get(port);
    if (!l) byPort.set(port, (l = []));
    l.push(t);
  }
  const late: number[] = [];
  for (const l of byPort.values()) {
    l.sort((a, b) => a - b);
    for (let i = 1; i < l.length; i++) late.push(l[i]! - l[i - 1]! - intervalMs);
  }
  return { p50: percentile(late, 50), p99: percentile(late, 99), max: late.length ? Math.max(...late) : Number.NaN, n: late.length };
}

/** What one side costs over a steady window: CPU and memory of the process tree, and which threads used the CPU. */
export interface Steady { cpuPct: number; rssMiB: number; pssMiB: number; anonMiB: number; threads: string; w0: number; w1: number }

/**
 * Measures `pid` and every process below it (all threads) for `seconds`: CPU % of one core from
 * utime + stime, and the largest RSS / PSS (smaps_rollup, summed over the processes) of samples
 * taken every second. `threads` names the threads that used CPU (comm: seconds), largest first.
 */
export async function steadyWindow(pid: number, seconds: number): Promise<Steady> {
  const t0 = await threadCpuSeconds(pid);
  const c0 = await treeCpuSeconds(pid);
  const w0 = Date.now();
  let rss = 0;
  let pss = 0;
  let anon = 0;
  while (Date.now() - w0 < seconds * 1000) {
    await sleep(Math.min(1_000, seconds * 1000 - (Date.now() - w0)));
    const m = await memoryKiB(pid);
    rss = Math.max(rss, m.rss);
    pss = Math.max(pss, m.pss);
    anon = Math.max(anon, m.anon);
  }
  const c1 = await treeCpuSeconds(pid);
  const w1 = Date.now();
  const t1 = await threadCpuSeconds(pid);
  const per = [...t1].map(([name, v]) => [name, v - (t0.get(name) ?? 0)] as const).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
  const secs = (w1 - w0) / 1000;
  return {
    cpuPct: (c1 - c0) / secs * 100, rssMiB: rss / 1024, pssMiB: pss / 1024, anonMiB: anon / 1024, w0, w1,
    threads: per.map(([name, v]) => `${name} ${(v / secs * 100).toFixed(1)} %`).join(', '),
  };
}

interface Rep {
  /** spawn -> the instance runs (INIT -> BACKUP/MASTER in the daemon's log): VRRP on the wire and listening. */
  vrrpRunningMs: number;
  firstAdvertMs: number;
  /** spawn -> the start-up hold released (pools in the data plane, every first check result in). */
  readyMs: number;
  socketMs: number;
  allUpMs: number;
  servingMs: number;
  cpuPct: number;
  rssMiB: number;
  pssMiB: number;
  anonMiB: number;
  threadCpu: string;
  reloadMs: number;
  reloadRaw: number[];
  reloadReply: string;
  reloadChangedMs: number;
  reloadChangedRaw: number[];
  reloadChangedReply: string;
  lateP50: number;
  lateP99: number;
  lateMax: number;
}

interface TheirRep { socketMs: number; allUpMs: number; cpuPct: number; rssMiB: number; pssMiB: number; anonMiB: number; threadCpu: string; lateP50: number; lateP99: number; lateMax: number }

/**
 * HAProxy checking and proxying N real servers the way our HTTP_GET does: `listen` i on
 * bind:(vsBase + i) -> real:(rsBase + i), `option httpchk` with our request byte for byte
 * (check/http.ts httpRequestBytes: HTTP/1.0, Host = the real server's address:port, User-Agent,
 * Connection: close), status 200 expected, every delayLoop s.
 */
export function haproxyChecksConfig(o: { dir: string; delayLoop: number; n: number; threads: number; bind: string; real: string; vsBase: number; rsBase: number; maxconn: number }): string {
  const listens = Array.from({ length: o.n }, (_, i) => `listen vs${i}\n  bind ${o.bind}:${o.vsBase + i}\n` +
    `  http-check send meth GET uri / ver HTTP/1.0 hdr Host ${o.real}:${o.rsBase + i} hdr User-Agent keepalive-ts hdr Connection close\n  http-check expect status 200\n` +
    `  server rs ${o.real}:${o.rsBase + i} check\n`).join('\n');
  return `global
  nbthread ${o.threads}
  maxconn ${o.maxconn}
  pidfile ${o.dir}/haproxy.pid
  stats socket ${o.dir}/stats.sock mode 600 level admin

defaults
  mode tcp
  balance roundrobin
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  timeout check 1s
  retries 3
  option redispatch 1
  option httpchk
  default-server inter ${o.delayLoop}s fastinter 500ms downinter ${o.delayLoop}s fall 2 rise 1

${listens}`;
}

function haproxyConfig(dir: string, delayLoop: number, N: number, threads: number): string {
  const cfg = haproxyChecksConfig({ dir, delayLoop, n: N, threads, bind: VIP, real: '10.77.0.21', vsBase: VS_BASE, rsBase: RS_BASE, maxconn: N > DEFAULT_N ? 2000 : 4000 });
  // The large farm: HAProxy wants 2 x maxconn + one descriptor per listener and per check
  // (24,024 for 10,000 `listen` sections) and refuses to start above the hard limit here (20,000,
  // not raisable in this container): `backend` sections, the same checks without the listeners.
  return N > DEFAULT_N ? cfg.replace(/^listen (vs\d+)\n {2}bind [^\n]*\n/gm, 'backend $1\n') : cfg;
}

async function onceHaproxy(delayLoop: number, seconds: number, N: number, threads: number, log: (m: string) => void, settleS = 3): Promise<TheirRep> {
  return withLab(async (lab) => {
    const [r1, a] = await Promise.all([lab.addHost('r1', { ipv4: '10.77.0.21/24' }), lab.addHost('da', { ipv4: '10.77.0.11/24' })]);
    const accessLog = join(lab.tmpDir, 'arrivals.log');
    await startManyPortNginx(lab, r1, Array.from({ length: N }, (_, i) => RS_BASE + i), accessLog);
    await a.exec(['ip', 'addr', 'add', `${VIP}/24`, 'dev', a.ifname]);
    const hdir = join(lab.tmpDir, 'haproxy');
    await mkdir(hdir, { recursive: true });
    await writeFile(join(hdir, 'haproxy.cfg'), haproxyConfig(hdir, delayLoop, N, threads));
    const sock = join(hdir, 'stats.sock');
    const t0 = Date.now();
    const hp = a.spawn(['haproxy', '-db', '-f', join(hdir, 'haproxy.cfg')]);
    await waitFor(async () => (await haproxyCmd(sock, 'show info', 1_000).catch(() => '')).includes('Pid:'), 30_000, 'haproxy stats socket', 10);
    const socketMs = Date.now() - t0;
    // HAProxy 2.6 starts servers UP; "all up" here is every server's first check passed (check_status L7OK).
    const notOk = async () => {
      const csv = (await haproxyCmd(sock, 'show stat')).split('\n');
      const ci = csv[0]!.replace(/^# /, '').split(',').indexOf('check_status');
      return csv.filter((l) => /^vs\d+,rs,/.test(l) && l.split(',')[ci] !== 'L7OK').length + (N - csv.filter((l) => /^vs\d+,rs,/.test(l)).length);
    };
    await waitFor(async () => (await notOk()) === 0, 60_000, 'haproxy: every first check passed', 100);
    const allUpMs = Date.now() - t0;
    log(`haproxy: stats socket ${socketMs} ms, every first check L7OK ${allUpMs} ms`);
    await sleep(settleS * 1000);
    const { cpuPct, rssMiB, pssMiB, anonMiB, threads: threadCpu, w0, w1 } = await steadyWindow(hp.pid, seconds);
    log(`haproxy: CPU by thread: ${threadCpu}; RSS ${rssMiB.toFixed(1)} MiB, PSS ${pssMiB.toFixed(1)} MiB, anonymous ${anonMiB.toFixed(1)} MiB`);
    const bad = await notOk();
    if (bad > 0) log(`warning: haproxy: ${bad} servers not L7OK at the end of the steady phase`);
    await sleep(1_500); // nginx flushes its log buffer every second
    const late = checkLateness(await readFile(accessLog, 'utf8'), delayLoop * 1000, w0, w1);
    log(`haproxy: check lateness p50 ${late.p50.toFixed(1)} p99 ${late.p99.toFixed(1)} max ${late.max.toFixed(1)} ms (${late.n} intervals)`);
    return { socketMs, allUpMs, cpuPct, rssMiB, pssMiB, anonMiB, threadCpu, lateP50: late.p50, lateP99: late.p99, lateMax: late.max };
  });
}

/**
 * `time` (ms since the epoch) of the first JSON log line whose text matches `pattern`, watched from
 * the process's first output: at 10,000 services the start-up logs (one "serving" and one real
 * server line each) pass the lab's 4 MiB output cap, so early lines are gone by the time the
 * control socket answers. NaN when no such line came within `timeoutMs`.
 */
function watchLogTime(proc: LabProcess, pattern: string, timeoutMs: number): Promise<number> {
  // The whole line, newline included: a line split between two reads is not parsed half.
  const re = new RegExp(`\\{[^\\n]*${pattern}[^\\n]*\\n`);
  return proc.waitForOutput(re, timeoutMs).then((m) => {
    try {
      const t = (JSON.parse(m[0]) as { time?: number }).time;
      return typeof t === 'number' ? t : Number.NaN;
    } catch {
      return Number.NaN;
    }
  }, () => Number.NaN);
}

async function once(delayLoop: number, seconds: number, N: number, log: (m: string) => void, proxyWorkers?: number, nodeArgs?: string[], kind: string = 'PROXY', settleS = 3): Promise<Rep> {
  return withLab(async (lab) => {
    const [r1, a] = await Promise.all([lab.addHost('r1', { ipv4: '10.77.0.21/24' }), lab.addHost('da', { ipv4: '10.77.0.11/24' })]);
    const accessLog = join(lab.tmpDir, 'arrivals.log');
    await startManyPortNginx(lab, r1, Array.from({ length: N }, (_, i) => RS_BASE + i), accessLog);
    // `scale.kind`: the virtual servers' lb_kind (PROXY by default; DR / NAT go through nftables).
    // DR keeps the port: the real server is VIP's port, its check goes to nginx's port (connect_port).
    const vs = Array.from({ length: N }, (_, i) => (kind === 'DR'
      ? virtualServerToml({ address: VIP, port: VS_BASE + i, reals: [{ ip: '10.77.0.21', port: VS_BASE + i }], delayLoop })
        .replace('status_code = 200,', `status_code = 200, connect_port = ${RS_BASE + i},`)
      : virtualServerToml({ address: VIP, port: VS_BASE + i, reals: [{ ip: '10.77.0.21', port: RS_BASE + i }], delayLoop })).replace('lb_kind = "PROXY"', `lb_kind = "${kind}"`));
    if (kind === 'NAT') await a.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    // Priority 255: the address owner advertises at once (no Master_Down_Interval), so spawn ->
    // first advert on the wire is the start-up time of the VRRP engine with N services configured.
    // state MASTER: the schema's default state (BACKUP) would make even the owner wait one
    // Master_Down_Interval.
    let toml = directorToml({ routerId: 'da', priority: 255, vips: [`${VIP}/24`], advertInt: 1, extra: vs.join('\n') }).replace('priority = 255\n', 'priority = 255\nstate = "MASTER"\n');
    if (!toml.includes('state = "MASTER"')) throw new Error('scale: could not set state = "MASTER"');
    if (proxyWorkers !== undefined) {
      toml = toml.replace('[global]\n', `[global]\nproxy_workers = ${proxyWorkers}\n`);
      if (!toml.includes(`proxy_workers = ${proxyWorkers}`)) throw new Error('scale: no [global] table to set proxy_workers in');
    }
    const cap = await startTcpdump(r1, 'ip proto 112', { args: ['-tt'] });
    const t0 = Date.now();
    // 10,000 services take a while to load on a busy machine: a generous start-up bound.
    let vrrpRunningAt: Promise<number> = Promise.resolve(Number.NaN);
    let readyAt: Promise<number> = Promise.resolve(Number.NaN);
    const bound = N > DEFAULT_N ? 600_000 : 60_000;
    const d = await startDirector(lab, a, toml, {
      args: PROD_LOG_ARGS, startTimeoutMs: N > DEFAULT_N ? 180_000 : 60_000, ...(nodeArgs ? { nodeArgs } : {}),
      onSpawn: (p) => {
        vrrpRunningAt = watchLogTime(p, '"msg":"VRRP VI_1 INIT -> ', bound);
        readyAt = watchLogTime(p, 'start-up hold released', bound);
      },
    });
    const socketMs = Date.now() - t0;
    // 10,000 services make a large status answer on a busy machine: a generous timeout.
    const status = async () => {
      const reply = await controlRequest(d.socket, 'status', {}, 60_000).catch(async (err: unknown) => {
        // Say why: whether the daemon is still there, its last words (a crash, a kill) with the error.
        const exit = await Promise.race([d.proc.exited.then((e) => `it exited: ${JSON.stringify(e)}`), sleep(2_000).then(() => 'it is still running')]);
        throw new Error(`scale: status: ${String(err)}; ${exit}; its last output: ${d.proc.output().slice(-3000)}`);
      });
      if (!reply.ok) throw new Error(`scale: status: ${reply.error.message}`);
      return reply.result as Awaited<ReturnType<typeof d.status>>;
    };
    await waitFor(async () => /VRRPv3, Advertisement/.test(cap.text()), 30_000, 'first advert', 20);
    const firstAdvertMs = Math.min(...(advertTimes(cap.text()).get(`${a.ipv4!}/51`) ?? [Number.NaN])) - t0;
    await cap.stop();
    // The daemon's JSON log lines carry Date.now() of the same host as t0.
    const readyAbs = await readyAt;
    if (!Number.isFinite(readyAbs)) throw new Error(`scale: no "start-up hold released" line within ${bound} ms; the daemon's last output: ${d.proc.output().slice(-3000)}`);
    const vrrpRunningMs = (await vrrpRunningAt) - t0;
    const readyMs = readyAbs - t0;
    await waitFor(async () => (await status()).virtual_servers.every((v) => v.real_servers.every((r) => r.up)), bound, 'all real servers up', 100);
    const allUpMs = Date.now() - t0;
    // One status per probe, with the generous timeout (d.instance() allows 5 s: a 10,000-DR-service status takes longer).
    await waitFor(async () => {
      const st = await status();
      return st.vrrp.find((v) => v.name === 'VI_1')?.state === 'MASTER' && st.virtual_servers.every((v) => v.serving);
    }, bound, 'MASTER and serving', 100);
    const servingMs = Date.now() - t0;
    // The kernel data plane's own figures at that point (transactions sent, their latency).
    const dpx = Object.entries((await status()).dataplane ?? {}).filter(([k]) => /^nftables_nft_/.test(k)).map(([k, v]) => `${k.replace('nftables_nft_', '')} ${v}`).join(', ');
    log(`VRRP running ${vrrpRunningMs.toFixed(0)} ms, first advert ${firstAdvertMs.toFixed(0)} ms, services ready (hold released) ${readyMs.toFixed(0)} ms, socket ${socketMs} ms, all ${N} real servers up ${allUpMs} ms, MASTER + serving ${servingMs} ms${dpx ? ` (nftables: ${dpx})` : ''}`);
    await sleep(settleS * 1000);
    const { cpuPct, rssMiB, pssMiB, anonMiB, threads: threadCpu, w0, w1 } = await steadyWindow(d.proc.pid, seconds);
    log(`keepalive-ts: CPU by thread: ${threadCpu}; RSS ${rssMiB.toFixed(1)} MiB, PSS ${pssMiB.toFixed(1)} MiB, anonymous ${anonMiB.toFixed(1)} MiB`);
    await sleep(1_500); // nginx flushes its log buffer every second
    const late = checkLateness(await readFile(accessLog, 'utf8'), delayLoop * 1000, w0, w1);
    log(`keepalive-ts: check lateness p50 ${late.p50.toFixed(1)} p99 ${late.p99.toFixed(1)} max ${late.max.toFixed(1)} ms (${late.n} intervals)`);
    const st = await status();
    const down = st.virtual_servers.filter((v) => !v.real_servers[0]!.up).length;
    if (down > 0) log(`warning: ${down} real servers down at the end of the steady phase`);
    if (nodeArgs?.some((x) => x.startsWith('--cpu-prof'))) {
      // A profiling run: stop the daemon gracefully right after the steady window so node writes
      // its profile (the lab's teardown would SIGKILL it after 3 s); no reload figures then.
      process.kill(d.proc.pid, 'SIGTERM');
      await Promise.race([d.proc.exited, sleep(60_000)]);
      log('profiling run: daemon stopped after the steady window, no reload figures');
      return {
        vrrpRunningMs, firstAdvertMs, readyMs, socketMs, allUpMs, servingMs, cpuPct, rssMiB, pssMiB, anonMiB, threadCpu, reloadMs: Number.NaN, reloadRaw: [], reloadReply: 'not measured (profiling run)',
        reloadChangedMs: Number.NaN, reloadChangedRaw: [], reloadChangedReply: 'not measured (profiling run)', lateP50: late.p50, lateP99: late.p99, lateMax: late.max,
      };
    }
    const reloadRaw: number[] = [];
    let reloadReply = '';
    for (let i = 0; i < 5; i++) {
      const r0 = performance.now();
      const reply = await controlRequest(d.socket, 'reload', {}, 30_000);
      reloadRaw.push(performance.now() - r0);
      reloadReply = reply.ok ? `ok ${JSON.stringify(reply.result)}` : `error ${reply.error.message}`;
    }
    // One real server changed (its weight, alternately 2 and 1): signal to applied is the round trip
    // (the reply comes once the plan is applied: pools sent, checkers restarted).
    const original = await readFile(d.configPath, 'utf8');
    const rsPort = (kind === 'DR' ? VS_BASE : RS_BASE) + Math.floor(N / 2);
    const marker = `port = ${rsPort}\ncheck`;
    if (!original.includes(marker)) throw new Error(`scale: no real server line ${JSON.stringify(marker)} in the config`);
    const reloadChangedRaw: number[] = [];
    let reloadChangedReply = '';
    for (let i = 0; i < 5; i++) {
      await writeFile(d.configPath, i % 2 === 0 ? original.replace(marker, `port = ${rsPort}\nweight = 2\ncheck`) : original);
      const r0 = performance.now();
      const reply = await controlRequest(d.socket, 'reload', {}, 30_000);
      reloadChangedRaw.push(performance.now() - r0);
      reloadChangedReply = reply.ok ? `ok ${JSON.stringify(reply.result)}` : `error ${reply.error.message}`;
    }
    return {
      vrrpRunningMs, firstAdvertMs, readyMs, socketMs, allUpMs, servingMs, cpuPct, rssMiB, pssMiB, anonMiB, threadCpu, reloadMs: median(reloadRaw), reloadRaw, reloadReply,
      reloadChangedMs: median(reloadChangedRaw), reloadChangedRaw, reloadChangedReply, lateP50: late.p50, lateP99: late.p99, lateMax: late.max,
    };
  });
}

async function runScale(ctx: BenchContext): Promise<BenchmarkResult> {
  const delayLoop = Number(ctx.params.delay_loop ?? 1);
  const seconds = Number(ctx.params.seconds ?? 30);
  // Seconds between every first check passed and the steady window (both sides).
  const settle = Number(ctx.params.settle ?? 3);
  const N = Number(ctx.params.n ?? DEFAULT_N);
  const withHaproxy = (ctx.params.haproxy ?? '1') !== '0';
  const kind = ctx.params.kind ?? 'PROXY';
  if (!['PROXY', 'DR', 'NAT'].includes(kind)) throw new Error(`scale.kind: PROXY, DR or NAT, got ${kind}`);
  // Threads of each side, the same on both: our proxy_workers and HAProxy's nbthread (`scale.threads`).
  const threads = Number(ctx.params.threads ?? 1);
  // `scale.node_args`: options of node for our daemon, space-separated, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it.
  const nodeArgs = ctx.params.node_args ? ctx.params.node_args.split(' ').filter(Boolean) : undefined;
  // The large farm, one thread on both sides: one proxy worker (each worker holds one listening
  // socket per virtual server: 2 x 10,000 would pass the descriptor limit), HAProxy nbthread 1.
  const bigN = Number(ctx.params.big ?? 10_000);
  const bigDelay = Number(ctx.params.big_delay_loop ?? 5);
  const big: Rep[] = [];
  const bigTheirs: TheirRep[] = [];
  const reps: Rep[] = [];
  const theirs: TheirRep[] = [];
  for (let i = 0; i < ctx.runs; i++) {
    // Alternate: keepalive-ts first on odd repetitions, HAProxy first on even ones.
    // `scale.n=0` skips the 1,000-server part (only the large farm is measured).
    for (const impl of (i % 2 === 0 ? ['ours', 'haproxy'] : ['haproxy', 'ours']).filter((x) => N > 0 && (withHaproxy || x === 'ours'))) {
      if (impl === 'ours') {
        const r = await once(delayLoop, seconds, N, ctx.log, threads, nodeArgs, kind, settle);
        ctx.log(`rep ${i + 1} keepalive-ts: CPU ${r.cpuPct.toFixed(1)} %, RSS ${r.rssMiB.toFixed(1)} MiB, reload ${r.reloadRaw.map((x) => x.toFixed(1)).join('/')} ms (${r.reloadReply}), one real server changed ${r.reloadChangedRaw.map((x) => x.toFixed(1)).join('/')} ms (${r.reloadChangedReply})`);
        reps.push(r);
      } else {
        const t = await onceHaproxy(delayLoop, seconds, N, threads, ctx.log, settle);
        ctx.log(`rep ${i + 1} haproxy: CPU ${t.cpuPct.toFixed(1)} %, RSS ${t.rssMiB.toFixed(1)} MiB`);
        theirs.push(t);
      }
    }
    if (bigN > 0) {
      for (const impl of (i % 2 === 0 ? ['ours', 'haproxy'] : ['haproxy', 'ours']).filter((x) => withHaproxy || x === 'ours')) {
        if (impl === 'ours') {
          const b = await once(bigDelay, seconds, bigN, ctx.log, 1, nodeArgs, kind, settle);
          ctx.log(`rep ${i + 1} keepalive-ts ${bigN} real servers every ${bigDelay} s: CPU ${b.cpuPct.toFixed(1)} %, RSS ${b.rssMiB.toFixed(1)} MiB, check lateness p99 ${b.lateP99.toFixed(1)} ms, max ${b.lateMax.toFixed(1)} ms`);
          big.push(b);
        } else {
          const t = await onceHaproxy(bigDelay, seconds, bigN, 1, ctx.log, settle);
          ctx.log(`rep ${i + 1} haproxy ${bigN} real servers every ${bigDelay} s: CPU ${t.cpuPct.toFixed(1)} %, RSS ${t.rssMiB.toFixed(1)} MiB, check lateness p99 ${t.lateP99.toFixed(1)} ms, max ${t.lateMax.toFixed(1)} ms`);
          bigTheirs.push(t);
        }
      }
    }
  }
  const f = (figure: string, unit: string, v: (r: Rep) => number, decimals = 0, theory?: string, t?: (r: TheirRep) => number, target: { ratio?: number; limit?: number } = {}): Figure =>
    ({ figure, unit, better: 'lower' as const, ours: reps.map(v), theirs: t ? theirs.map(t) : [], decimals, ...(theory ? { theory } : {}), ...(target.ratio !== undefined ? { target: target.ratio } : {}), ...(target.limit !== undefined ? { limit: target.limit } : {}) });
  const charts: Chart[] = [
    {
      id: `scale-checks-${N}`,
      title: `Health checks: ${N} real servers, HTTP_GET every ${delayLoop} s`,
      unit: '% of one CPU / MiB',
      better: 'lower',
      groups: ['CPU (%)', 'RSS (MiB)'],
      series: [
        { name: 'keepalive-ts', values: [reps.map((r) => r.cpuPct), reps.map((r) => r.rssMiB)] },
        { name: `HAProxy 2.6 (nbthread ${threads})`, values: [theirs.map((t) => t.cpuPct), theirs.map((t) => t.rssMiB)] },
      ],
    },
  ];
  return {
    charts,
    figures: [
      f(`daemon CPU, ${N} real servers checked every ${delayLoop} s`, '%', (r) => r.cpuPct, 1, undefined, (t) => t.cpuPct, N === DEFAULT_N && delayLoop === 1 ? { ratio: 1.0 } : {}),
      f('RSS (largest sample over the window, whole process tree)', 'MiB', (r) => r.rssMiB, 1, 'VmRSS-equivalent: Rss of /proc/PID/smaps_rollup, summed over the process and its children (threads share it)', (t) => t.rssMiB, N === DEFAULT_N && delayLoop === 1 ? { ratio: 2.0 } : {}),
      f('PSS (same samples)', 'MiB', (r) => r.pssMiB, 1, 'shared pages divided among the processes mapping them (the node binary is shared with other node processes on this machine)', (t) => t.pssMiB),
      f('anonymous RSS (same samples)', 'MiB', (r) => r.anonMiB, 1, 'the Anonymous part of Rss: heap, stacks, copy-on-write pages — what the process holds itself, without the clean pages of its executable and libraries (node maps ~35-41 MiB of its binary, HAProxy a few MiB)', (t) => t.anonMiB),
      f('check lateness p99 (interval between two checks of one server − delay_loop)', 'ms', (r) => r.lateP99, 1, 'arrival times in the real server\'s access log; ≈ the check\'s own duration when on time', (t) => t.lateP99),
      f('check lateness, largest', 'ms', (r) => r.lateMax, 1, undefined, (t) => t.lateMax),
      f(`startup with ${N} virtual servers: spawn -> VRRP running (instance on its socket, down timer armed)`, 'ms', (r) => r.vrrpRunningMs, 0, 'the "INIT -> BACKUP" line of the daemon\'s log (same clock as the spawn); the VRRP engine starts before the data plane, under the start-up hold; process start (node) included', undefined, { limit: 500 }),
      f(`startup with ${N} virtual servers: spawn -> first VRRP advert on the wire (priority 255, alone)`, 'ms', (r) => r.firstAdvertMs, 0, 'state MASTER, priority 255, no peer; tcpdump on r1. Under the start-up hold = min(services ready, VRRP running + Adver_Int + skew ≈ 1 s)'),
      f(`startup with ${N} virtual servers: spawn -> services ready (start-up hold released)`, 'ms', (r) => r.readyMs, 0, 'pools in the data plane and every real server\'s first check result (warmup = delay_loop spreads the first checks over 1 s)'),
      f(`startup with ${N} virtual servers: spawn -> control socket answers`, 'ms', (r) => r.socketMs, 0, 'HAProxy: spawn -> stats socket answers `show info`', (t) => t.socketMs),
      f(`startup: spawn -> all ${N} real servers up`, 'ms', (r) => r.allUpMs, 0, 'HAProxy: spawn -> every server\'s first check passed (L7OK); its servers start UP', (t) => t.allUpMs),
      f('startup: spawn -> MASTER and every virtual server serving', 'ms', (r) => r.servingMs, 0, 'address owner (priority 255): no Master_Down_Interval'),
      f(`reload round trip, unchanged ${N}-virtual-server config (median of 5)`, 'ms', (r) => r.reloadMs, 1, undefined, undefined, { limit: 50 }),
      f(`reload round trip, one real server changed (weight) of ${N}${kind === 'PROXY' ? '' : ` (lb_kind ${kind}, nftables)`} (median of 5)`, 'ms', (r) => r.reloadChangedMs, 1, 'signal to applied: the reply comes once the plan is applied', undefined, { limit: 100 }),
      ...(big.length > 0 ? [
        { figure: `${bigN} real servers, HTTP_GET every ${bigDelay} s (proxy_workers = 1, HAProxy nbthread 1): daemon CPU`, unit: '%', better: 'lower' as const, ours: big.map((r) => r.cpuPct), theirs: bigTheirs.map((t) => t.cpuPct), decimals: 1 },
        { figure: `${bigN} real servers every ${bigDelay} s: RSS (largest sample, whole process tree)`, unit: 'MiB', better: 'lower' as const, ours: big.map((r) => r.rssMiB), theirs: bigTheirs.map((t) => t.rssMiB), decimals: 1 },
        { figure: `${bigN} real servers every ${bigDelay} s: PSS`, unit: 'MiB', better: 'lower' as const, ours: big.map((r) => r.pssMiB), theirs: bigTheirs.map((t) => t.pssMiB), decimals: 1 },
        { figure: `${bigN} real servers every ${bigDelay} s: check lateness p99`, unit: 'ms', better: 'lower' as const, ours: big.map((r) => r.lateP99), theirs: bigTheirs.map((t) => t.lateP99), decimals: 1, theory: 'deadlines hold: p99 stays near the check duration, no growing tail' },
        { figure: `${bigN} real servers every ${bigDelay} s: check lateness, largest`, unit: 'ms', better: 'lower' as const, ours: big.map((r) => r.lateMax), theirs: bigTheirs.map((t) => t.lateMax), decimals: 1 },
        { figure: `${bigN} virtual servers: spawn -> VRRP running`, unit: 'ms', better: 'lower' as const, ours: big.map((r) => r.vrrpRunningMs), theirs: [], decimals: 0 },
        { figure: `${bigN} virtual servers: spawn -> first VRRP advert`, unit: 'ms', better: 'lower' as const, ours: big.map((r) => r.firstAdvertMs), theirs: [], decimals: 0 },
        { figure: `${bigN} virtual servers${kind === 'PROXY' ? '' : ` (lb_kind ${kind}, nftables)`}: spawn -> services ready (start-up hold released)`, unit: 'ms', better: 'lower' as const, ours: big.map((r) => r.readyMs), theirs: [], decimals: 0 },
        { figure: `${bigN} virtual servers${kind === 'PROXY' ? '' : ` (lb_kind ${kind}, nftables)`}: spawn -> MASTER and every virtual server serving`, unit: 'ms', better: 'lower' as const, ours: big.map((r) => r.servingMs), theirs: [], decimals: 0 },
        { figure: `${bigN} virtual servers: reload, unchanged / one real server changed`, unit: 'ms', better: 'lower' as const, ours: big.map((r) => r.reloadMs), theirs: big.map((r) => r.reloadChangedMs), decimals: 1, theory: '"reference" column = one real server changed' },
      ] : []),
    ],
    notes: [
      'Start-up: the VRRP engine starts first (before the data plane, health checks, sync, metrics and BGP are loaded) under the start-up hold: the instance listens and runs its timers at once, but takes nothing over from a live master until the services are ready (pools in the data plane, the first check result of every real server, the sync peer\'s snapshot). Hence two start-up figures: "VRRP running" is when this director is on the wire and participating (it would hear a master, and a lone one is on its way to MASTER) — the figure the ≤ 500 ms target is held against; "first advert" of this lone owner is the earlier of "services ready" and one advert interval plus skew with no master heard (keepalived\'s start-up timer for `state MASTER`), because until one of them it cannot know that it would not be preempting a live master whose data plane is serving.',
      `One nginx (1 worker) listening on ports ${RS_BASE}..${RS_BASE + N - 1} of r1 stands for ${N} real servers; ${N} virtual servers on ${VIP}:${VS_BASE}..${VS_BASE + N - 1}, one real server each, HTTP_GET \`/\` every ${delayLoop} s (connect_timeout 1 s, retry 1). CPU over ${seconds} s of steady checking: utime + stime of the process and every process below it, all threads (/proc/PID/stat), for both sides; memory: the largest of one sample per second over the same window, Rss and Pss of /proc/PID/smaps_rollup summed over the same processes. Threads: \`proxy_workers = ${threads}\` for ours, \`nbthread ${threads}\` for HAProxy (\`scale.threads\`). Both answer the same checks (\`GET / HTTP/1.0\` + Host, status 200 expected, the connection closed after the status line and headers).`,
      `CPU by thread over the window (ours: main = the JavaScript event loop, kt-checks = the native check engine, node = V8's GC/compiler helpers and the proxy worker(s)): ${reps.map((r, i) => `rep ${i + 1}: ${r.threadCpu}`).join('; ')}. HAProxy: ${theirs.map((t, i) => `rep ${i + 1}: ${t.threadCpu}`).join('; ')}.`,
      `Reload replies: ${reps.map((r) => r.reloadReply).join('; ')}. Raw reload times (ms): ${reps.map((r) => r.reloadRaw.map((x) => x.toFixed(1)).join('/')).join('; ')}. One real server changed (weight 1 -> 2 -> 1 …), replies: ${reps.map((r) => r.reloadChangedReply).join('; ')}; raw (ms): ${reps.map((r) => r.reloadChangedRaw.map((x) => x.toFixed(1)).join('/')).join('; ')}.`,
      'Check lateness: r1\'s nginx logs every request as `$msec $server_port` (one port per real server); for each real server, every interval between two consecutive checks in the steady window minus the check interval (delay_loop / HAProxy `inter`). A scheduler that starts the next check delay_loop after the previous one ended shows the check\'s duration here; slipping deadlines show as a growing tail. Median and largest per repetition: ' +
        `ours ${reps.map((r) => `${r.lateP50.toFixed(1)}/${r.lateMax.toFixed(1)}`).join(', ')}; HAProxy ${theirs.map((t) => `${t.lateP50.toFixed(1)}/${t.lateMax.toFixed(1)}`).join(', ')} ms.`,
      'keepalived is not measured: its virtual servers need the ip_vs kernel module, and `modprobe ip_vs` fails in this VM ("Module ip_vs not found in directory /lib/modules/…").',
      `The reference ("theirs") is HAProxy 2.6 (Debian), \`mode tcp\`, \`nbthread ${threads}\`, in its own fresh lab with the same many-port nginx, alternating with keepalive-ts per repetition (ours first on odd ones): ${N} \`listen\` sections on ${VIP}:${VS_BASE}+i, one \`server … check\` r1:(${RS_BASE}+i) each, \`option httpchk GET /\`, \`http-check expect status 200\`, \`inter ${delayLoop}s fastinter 500ms fall 2 rise 1\`, \`timeout connect 1s\`, \`timeout check 1s\`. CPU and memory measured as ours over the same ${seconds} s window, ${settle} s after every first check passed (\`scale.settle\`). The 10,000-server run: the same checks in 10,000 \`backend\` sections (no listeners: with 10,000 \`listen\` sections HAProxy needs 24,024 descriptors and refuses to start above the hard limit of 20,000 here, which this container cannot raise), \`inter ${bigDelay}s\`, \`maxconn 2000\`, one thread on both sides.`,
      'HAProxy startup: "control socket answers" is spawn -> its stats socket answers `show info`; "all real servers up" is spawn -> every server\'s `check_status` is L7OK in `show stat` (HAProxy 2.6 starts servers UP before any check, so this is the first check of every server having passed, the closest equivalent of our servers going up after their first good check).',
      'No HAProxy figure for "MASTER and every virtual server serving" (it is our VRRP startup, dominated by Master_Down_Interval; HAProxy has no VRRP) nor for reload: our `reload` is a control-socket round trip that re-reads and compares the unchanged file in the running process, whereas an HAProxy reload starts a new process that re-parses the config and takes the listeners over from the old one (master-worker `-sf`), a different operation with no common end point to time — so both stay ours-only.',
    ],
  };
}

export const scale: Benchmark = {
  name: 'scale',
  title: 'Scale: 1,000 virtual/real servers — CPU, RSS, startup and reload time',
  reference: 'HAProxy',
  description:
    `Director da with ${DEFAULT_N} virtual servers (VIP ${VIP}, ports ${VS_BASE}+i; \`scale.n\`), each with one real server: one nginx on r1 listening on as many ports (${RS_BASE}+i). HTTP_GET every \`scale.delay_loop\` s (default 1). ` +
    'Figures: daemon CPU and RSS over `scale.seconds` (default 30) of steady checking, starting `scale.settle` s (default 3) after every first check passed, and the lateness of the checks (arrival times in nginx\'s log); startup times (to VRRP running — the figure held against the 500 ms target —, to the first advert of this lone priority-255 director, to services ready); `reload` round trip with the unchanged file and with one real server changed. ' +
    'Reference: HAProxy 2.6 (TCP mode, as many threads as our proxy workers: `scale.threads`, default 1; 1,000 `listen` sections, `option httpchk` every 1 s) against the same nginx, alternating per repetition (CPU, RSS/PSS of the whole process tree, startup, lateness; reload is ours-only). ' +
    'Then 10,000 real servers every 5 s (`scale.big`, `scale.big_delay_loop`; 0 skips), one thread on both sides, HAProxy beside it the same way. `scale.node_args="--cpu-prof --cpu-prof-dir=DIR"` profiles our daemon (it is then stopped after the steady window: no reload figures).',
  run: runScale,
};
