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
// The reference is HAProxy 2.6 (TCP mode, 1 thread) in its own lab with the same nginx: 1,000 `listen`
// sections on VIP:20000+i, one server r1:(10000+i) each, `option httpchk GET /` every 1 s — CPU, RSS,
// spawn -> stats socket answers, spawn -> every server's first check passed (L7OK); alternating per
// repetition. Reload stays ours-only (see the notes).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { controlRequest } from '../src/cli/control-client.js';
import { directorToml, startDirector } from '../test/lib/daemon.js';
import { nginxConfig, waitUntilListening } from '../test/lib/servers.js';
import { PROD_LOG_ARGS, cpuSeconds, rssKiB, virtualServerToml } from '../test/lib/reliability.js';
import { median, sleep, waitFor, withLab, type Lab, type LabHost, type LabProcess } from './lab.js';
import type { Benchmark, BenchContext, BenchmarkResult } from './run.js';
import { haproxyCmd } from './health.js';

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

interface TheirRep { socketMs: number; allUpMs: number; cpuPct: number; rssMiB: number }

function haproxyConfig(dir: string, delayLoop: number): string {
  const listens = Array.from({ length: N }, (_, i) => `listen vs${i}\n  bind ${VIP}:${VS_BASE + i}\n  server rs 10.77.0.21:${RS_BASE + i} check\n`).join('\n');
  return `global
  nbthread 1
  maxconn 4000
  pidfile ${dir}/haproxy.pid
  stats socket ${dir}/stats.sock mode 600 level admin

defaults
  mode tcp
  balance roundrobin
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  timeout check 1s
  retries 3
  option redispatch 1
  option httpchk GET /
  http-check expect status 200
  default-server inter ${delayLoop}s fastinter 500ms downinter ${delayLoop}s fall 2 rise 1

${listens}`;
}

async function onceHaproxy(delayLoop: number, seconds: number, log: (m: string) => void): Promise<TheirRep> {
  return withLab(async (lab) => {
    const [r1, a] = await Promise.all([lab.addHost('r1', { ipv4: '10.77.0.21/24' }), lab.addHost('da', { ipv4: '10.77.0.11/24' })]);
    await startManyPortNginx(lab, r1, Array.from({ length: N }, (_, i) => RS_BASE + i));
    await a.exec(['ip', 'addr', 'add', `${VIP}/24`, 'dev', a.ifname]);
    const hdir = join(lab.tmpDir, 'haproxy');
    await mkdir(hdir, { recursive: true });
    await writeFile(join(hdir, 'haproxy.cfg'), haproxyConfig(hdir, delayLoop));
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
    await sleep(3_000);
    const c0 = await cpuSeconds(hp.pid);
    const w0 = Date.now();
    await sleep(seconds * 1000);
    const cpuPct = ((await cpuSeconds(hp.pid)) - c0) / ((Date.now() - w0) / 1000) * 100;
    const rssMiB = (await rssKiB(hp.pid)) / 1024;
    const bad = await notOk();
    if (bad > 0) log(`warning: haproxy: ${bad} servers not L7OK at the end of the steady phase`);
    return { socketMs, allUpMs, cpuPct, rssMiB };
  });
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
  const theirs: TheirRep[] = [];
  for (let i = 0; i < ctx.runs; i++) {
    // Alternate: keepalive-ts first on odd repetitions, HAProxy first on even ones.
    for (const impl of i % 2 === 0 ? ['ours', 'haproxy'] : ['haproxy', 'ours']) {
      if (impl === 'ours') {
        const r = await once(delayLoop, seconds, ctx.log);
        ctx.log(`rep ${i + 1} keepalive-ts: CPU ${r.cpuPct.toFixed(1)} %, RSS ${r.rssMiB.toFixed(1)} MiB, reload ${r.reloadRaw.map((x) => x.toFixed(1)).join('/')} ms (${r.reloadReply})`);
        reps.push(r);
      } else {
        const t = await onceHaproxy(delayLoop, seconds, ctx.log);
        ctx.log(`rep ${i + 1} haproxy: CPU ${t.cpuPct.toFixed(1)} %, RSS ${t.rssMiB.toFixed(1)} MiB`);
        theirs.push(t);
      }
    }
  }
  const f = (figure: string, unit: string, v: (r: Rep) => number, decimals = 0, theory?: string, t?: (r: TheirRep) => number) =>
    ({ figure, unit, better: 'lower' as const, ours: reps.map(v), theirs: t ? theirs.map(t) : [], decimals, theory });
  return {
    figures: [
      f(`daemon CPU, ${N} real servers checked every ${delayLoop} s`, '%', (r) => r.cpuPct, 1, undefined, (t) => t.cpuPct),
      f('daemon RSS', 'MiB', (r) => r.rssMiB, 1, undefined, (t) => t.rssMiB),
      f(`startup with ${N} virtual servers: spawn -> control socket answers`, 'ms', (r) => r.socketMs, 0, 'HAProxy: spawn -> stats socket answers `show info`', (t) => t.socketMs),
      f(`startup: spawn -> all ${N} real servers up`, 'ms', (r) => r.allUpMs, 0, 'HAProxy: spawn -> every server\'s first check passed (L7OK); its servers start UP', (t) => t.allUpMs),
      f('startup: spawn -> MASTER and every virtual server serving', 'ms', (r) => r.servingMs, 0, '≥ Master_Down_Interval 3.6 s (no peer)'),
      f(`reload round trip, unchanged ${N}-virtual-server config (median of 5)`, 'ms', (r) => r.reloadMs, 1),
    ],
    notes: [
      `One nginx (1 worker) listening on ports ${RS_BASE}..${RS_BASE + N - 1} of r1 stands for ${N} real servers; ${N} virtual servers on ${VIP}:${VS_BASE}..${VS_BASE + N - 1}, one real server each, HTTP_GET \`/\` every ${delayLoop} s (connect_timeout 1 s, retry 1). CPU over ${seconds} s of steady checking (main + data-plane worker thread, from /proc/PID/stat).`,
      `Reload replies: ${reps.map((r) => r.reloadReply).join('; ')}. Raw reload times (ms): ${reps.map((r) => r.reloadRaw.map((x) => x.toFixed(1)).join('/')).join('; ')}.`,
      'keepalived is not measured: its virtual servers need the ip_vs kernel module, and `modprobe ip_vs` fails in this VM ("Module ip_vs not found in directory /lib/modules/…").',
      `The reference ("theirs") is HAProxy 2.6 (Debian), \`mode tcp\`, \`nbthread 1\`, in its own fresh lab with the same many-port nginx, alternating with keepalive-ts per repetition (ours first on odd ones): ${N} \`listen\` sections on ${VIP}:${VS_BASE}+i, one \`server … check\` r1:(${RS_BASE}+i) each, \`option httpchk GET /\`, \`http-check expect status 200\`, \`inter ${delayLoop}s fastinter 500ms fall 2 rise 1\`, \`timeout connect 1s\`, \`timeout check 1s\`. CPU (utime + stime of the haproxy process) and RSS over the same ${seconds} s window, 3 s after startup.`,
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
    `Director da with ${N} virtual servers (VIP ${VIP}, ports ${VS_BASE}+i), each with one real server: one nginx on r1 listening on ${N} ports (${RS_BASE}+i). HTTP_GET every \`scale.delay_loop\` s (default 1). ` +
    'Figures: daemon CPU and RSS over `scale.seconds` (default 30) of steady checking; startup times; `reload` round trip with the unchanged file. ' +
    'Reference: HAProxy 2.6 (TCP mode, 1 thread, 1,000 `listen` sections, `option httpchk` every 1 s) against the same nginx, alternating per repetition (CPU, RSS, startup; reload is ours-only).',
  run: runScale,
};
