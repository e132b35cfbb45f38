// Small helpers shared by the reliability tests (test/netns/reliability-*.test.ts) and the
// reliability benchmarks (bench/jitter.ts, scale.ts, health.ts, soak.ts). Framework-free.
import { readFile, readdir } from 'node:fs/promises';
import type { LabHost } from './lab-core.js';

/** Sets the usual load-test sysctls in a host's namespace (many short connections). */
export async function tuneForLoad(host: LabHost): Promise<void> {
  await host.exec(['sh', '-ec', [
    'echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse',
    'echo "10000 65000" > /proc/sys/net/ipv4/ip_local_port_range',
  ].join('\n')]);
}

/**
 * Timestamps (epoch ms) of the VRRP adverts in tcpdump text output made with `-tt -n`, by source
 * address and VRID: `1712345678.123456 IP 10.77.0.11 > 224.0.0.18: VRRPv3, Advertisement, vrid 51, prio 150, ...`.
 */
export function advertTimes(text: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const line of text.split('\n')) {
    const m = /^(\d+\.\d+) IP (\d+\.\d+\.\d+\.\d+) > [\d.]+: VRRPv\d, Advertisement, vrid (\d+), prio (\d+)/.exec(line);
    if (!m) continue;
    const key = `${m[2]}/${m[3]}`;
    let list = out.get(key);
    if (!list) out.set(key, (list = []));
    list.push(Number(m[1]) * 1000);
  }
  return out;
}

/** Differences between consecutive values. */
export function gaps(times: readonly number[]): number[] {
  const g: number[] = [];
  for (let i = 1; i < times.length; i++) g.push(times[i]! - times[i - 1]!);
  return g;
}

/** Nearest-rank percentile (p in 0..100) of the finite values; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const rank = Math.min(v.length, Math.max(1, Math.ceil((p / 100) * v.length)));
  return v[rank - 1]!;
}

export function maxOf(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => Math.max(a, b), -Infinity) : Number.NaN;
}

export interface WrkResult {
  rps: number;
  requests: number;
  /** connect/read/write/timeout socket errors and non-2xx responses. */
  errors: { connect: number; read: number; write: number; timeout: number; non2xx: number };
  output: string;
}

/** Parses wrk's text report. */
export function parseWrk(output: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1] ?? Number.NaN);
  const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? Number.NaN);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  return {
    rps,
    requests,
    errors: { connect: Number(se?.[1] ?? 0), read: Number(se?.[2] ?? 0), write: Number(se?.[3] ?? 0), timeout: Number(se?.[4] ?? 0), non2xx },
    output,
  };
}

/** Runs wrk from `host` (bounded: `seconds` + a margin) and parses its report. */
export async function runWrk(host: LabHost, url: string, o: { threads?: number; conns: number; seconds: number; timeoutS?: number }): Promise<WrkResult> {
  const r = await host.exec(['wrk', `-t${o.threads ?? 1}`, `-c${o.conns}`, `-d${o.seconds}s`, `--timeout`, `${o.timeoutS ?? 2}s`, url], {
    timeoutMs: (o.seconds + 20) * 1000,
  });
  return parseWrk(r.stdout + r.stderr);
}

/** Resident set size of a process in KiB (VmRSS), or NaN when it is gone. */
export async function rssKiB(pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /VmRSS:\s+(\d+) kB/.exec(s);
  return m ? Number(m[1]) : Number.NaN;
}

/** `pid` and every process below it (children of children…), from /proc/PID/task/TID/children. */
export async function processTree(pid: number): Promise<number[]> {
  const out: number[] = [];
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop()!;
    out.push(p);
    const tids = await readdir(`/proc/${p}/task`).catch(() => [] as string[]);
    for (const t of tids) {
      const kids = await readFile(`/proc/${p}/task/${t}/children`, 'utf8').catch(() => '');
      for (const k of kids.split(/\s+/)) if (k) todo.push(Number(k));
    }
  }
  return out;
}

/**
 * Memory of a whole side of a comparison: `pid` and every process below it (all their threads
 * share their process's memory), KiB: RSS and PSS (proportional: shared pages divided among the
 * processes mapping them) summed from /proc/PID/smaps_rollup, and `anon`: the anonymous part of RSS
 * (heap, stacks, copy-on-write pages — what the process itself holds, without the clean pages of
 * its executable and libraries, which the page cache keeps anyway). NaN when `pid` is gone.
 */
export async function memoryKiB(pid: number): Promise<{ rss: number; pss: number; anon: number; processes: number }> {
  let rss = 0;
  let pss = 0;
  let anon = 0;
  let processes = 0;
  for (const p of await processTree(pid)) {
    const s = await readFile(`/proc/${p}/smaps_rollup`, 'utf8').catch(() => '');
    const r = /^Rss:\s+(\d+) kB/m.exec(s);
    const q = /^Pss:\s+(\d+) kB/m.exec(s);
    const a = /^Anonymous:\s+(\d+) kB/m.exec(s);
    if (!r || !q) continue;
    rss += Number(r[1]);
    pss += Number(q[1]);
    anon += Number(a?.[1] ?? Number.NaN);
    processes++;
  }
  return processes === 0 ? { rss: Number.NaN, pss: Number.NaN, anon: Number.NaN, processes } : { rss, pss, anon, processes };
}

/** CPU seconds (user + system) of `pid` and every process below it, all threads. */
export async function treeCpuSeconds(pid: number): Promise<number> {
  let sum = 0;
  for (const p of await processTree(pid)) {
    const c = await cpuSeconds(p);
    if (Number.isFinite(c)) sum += c;
  }
  return sum;
}

/**
 * CPU seconds per thread of one process: Map "name/tid" -> seconds ("main" for the thread whose
 * tid is the pid, else the thread's comm).
 */
export async function threadCpuSeconds(pid: number): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const t of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const s = await readFile(`/proc/${pid}/task/${t}/stat`, 'utf8').catch(() => '');
    if (!s) continue;
    const name = Number(t) === pid ? 'main' : s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    m.set(`${name}/${t}`, (Number(rest[11]) + Number(rest[12])) / 100);
  }
  return m;
}

/** CPU time (user + system, all threads) a process has used, in seconds. */
export async function cpuSeconds(pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the ")" of the command name: state is field 3, utime 14, stime 15.
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / 100; // USER_HZ is 100 on Linux
}

/**
 * nftables' nft by absolute path: under `npx ava`, PATH starts with node_modules/.bin, which holds
 * @vercel/nft's unrelated `nft` CLI (it exits 0 and does nothing we want).
 */
export const NFT = '/usr/sbin/nft';

/** Drops VRRP (IP protocol 112) in and out of a host with nftables (table inet kt_part). */
export async function dropVrrp(host: LabHost): Promise<void> {
  await host.exec([NFT, '-f', '-'], {
    input: [
      'table inet kt_part {',
      '  chain in { type filter hook input priority 0; ip protocol 112 drop; }',
      '  chain out { type filter hook output priority 0; ip protocol 112 drop; }',
      '}',
    ].join('\n') + '\n',
  });
}

/** Removes the table dropVrrp added. */
export async function healVrrp(host: LabHost): Promise<void> {
  await host.exec([NFT, 'delete', 'table', 'inet', 'kt_part']);
}

/** The link-layer address the host's neighbour table has for `ip` on eth0, or undefined. */
export async function neighMac(host: LabHost, ip: string): Promise<{ mac?: string; state: string }> {
  const r = await host.exec(['ip', '-j', 'neigh', 'show', 'dev', 'eth0', 'to', ip], { allowFail: true });
  const list = JSON.parse(r.stdout || '[]') as Array<{ lladdr?: string; state?: string[] }>;
  return { mac: list[0]?.lladdr, state: (list[0]?.state ?? []).join(',') };
}

/**
 * Parses `ip -ts monitor address` output: timestamps (epoch ms) at which `vip` was added (or, with
 * deleted, removed).
 */
export function vipEvents(monitorOutput: string, vip: string, deleted: boolean): number[] {
  const out: number[] = [];
  for (const line of monitorOutput.split('\n')) {
    const m = /^\[([0-9T:.-]+)\]\s+(Deleted\s+)?\d+:\s+\S+\s+inet6?\s+([0-9a-f.:]+)\//.exec(line);
    if (m && m[3] === vip && Boolean(m[2]) === deleted) out.push(Date.parse(`${m[1]}Z`));
  }
  return out;
}

export const fmtMs = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');

/**
 * A Node HTTP/1.1 "real server" on `port` whose behaviour switches on signals: it answers
 * `200 <body>` (mode "ok"); after SIGUSR1 it accepts connections and never answers ("hold");
 * after SIGUSR2 it resets every connection as soon as it is accepted ("reset"). Prints
 * "listening" once bound and "mode X" on each switch.
 */
export const MODE_SERVER_JS = `
const net = require('node:net');
const [port, body] = process.argv.slice(1);
let mode = 'ok';
const held = [];
process.on('SIGUSR1', () => { mode = 'hold'; console.log('mode hold'); });
process.on('SIGUSR2', () => { mode = 'reset'; console.log('mode reset'); });
net.createServer((s) => {
  if (mode === 'hold') { held.push(s); s.on('error', () => {}); return; }
  if (mode === 'reset') { s.resetAndDestroy(); return; }
  s.on('error', () => {});
  let buf = '';
  s.on('data', (d) => {
    buf += d;
    while (buf.includes('\\r\\n\\r\\n')) {
      buf = buf.slice(buf.indexOf('\\r\\n\\r\\n') + 4);
      s.write('HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: ' + body.length + '\\r\\n\\r\\n' + body);
    }
  });
}).listen(Number(port), () => console.log('listening'));
`;

/**
 * A client loop inside `host`: sequential HTTP GETs (new connection each) to address:port for
 * `seconds`, at most `maxRequests`; prints one JSON line per second-long bucket and a final total.
 * Returns per-request outcomes with their start times so a caller can split them into windows.
 */
export const CLIENT_LOOP_JS = `
const http = require('node:http');
const [host, port, seconds, maxReq, timeout, pause] = process.argv.slice(1);
const out = [];
const end = Date.now() + Number(seconds) * 1000;
const one = () => new Promise((resolve) => {
  const t0 = Date.now();
  const done = (ok, what) => { out.push([t0, Date.now() - t0, ok ? 1 : 0, what]); resolve(); };
  const req = http.get({ host, port: Number(port), path: '/', agent: false, timeout: Number(timeout) }, (res) => {
    let b = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (b += d));
    res.on('end', () => done(res.statusCode === 200, res.statusCode === 200 ? b : 'status ' + res.statusCode));
    res.on('error', (e) => done(false, e.code || e.message));
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  req.on('error', (e) => done(false, e.code || e.message));
});
(async () => {
  let n = 0;
  while (Date.now() < end && n < Number(maxReq)) {
    await one(); n++;
    if (Number(pause) > 0) await new Promise((r) => setTimeout(r, Number(pause)));
  }
  process.stdout.write(JSON.stringify(out));
})();
`;

export interface RequestOutcome {
  /** Start (epoch ms). */
  at: number;
  ms: number;
  ok: boolean;
  /** Body when ok, error code otherwise. */
  what: string;
}

/** Runs CLIENT_LOOP_JS in `host` (bounded by `seconds` and `maxRequests`). */
export async function clientLoop(host: LabHost, address: string, port: number, o: { seconds: number; maxRequests?: number; timeoutMs?: number; pauseMs?: number }): Promise<RequestOutcome[]> {
  const r = await host.exec(
    [process.execPath, '-e', CLIENT_LOOP_JS, address, String(port), String(o.seconds), String(o.maxRequests ?? 100_000), String(o.timeoutMs ?? 2_000), String(o.pauseMs ?? 0)],
    { timeoutMs: (o.seconds + 15) * 1000 },
  );
  return (JSON.parse(r.stdout) as Array<[number, number, number, string]>).map(([at, ms, ok, what]) => ({ at, ms, ok: ok === 1, what }));
}

/** Counts outcomes by `what`. */
export function tally(list: readonly RequestOutcome[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const o of list) t[o.what] = (t[o.what] ?? 0) + 1;
  return t;
}

/** The keepalive-ts daemon's production logging, for benchmarks (the test default is pretty + debug). */
export const PROD_LOG_ARGS = ['--log-level', 'info', '--log-format', 'json'];

/** A [[virtual_server]] TOML block: `address:port` -> real servers `ip:port`, HTTP_GET checks. */
export function virtualServerToml(o: {
  address: string;
  port: number;
  reals: Array<{ ip: string; port: number }>;
  delayLoop?: number;
  connectTimeout?: number;
  retry?: number;
  delayBeforeRetry?: number;
}): string {
  const check = `{ type = "HTTP_GET", path = "/", status_code = 200, connect_timeout = ${o.connectTimeout ?? 1}, retry = ${o.retry ?? 1}, delay_before_retry = ${o.delayBeforeRetry ?? 0.5} }`;
  const reals = o.reals.map((r) => `[[virtual_server.real_server]]\naddress = "${r.ip}"\nport = ${r.port}\ncheck = ${check}\n`).join('\n');
  return `[[virtual_server]]\naddress = "${o.address}"\nport = ${o.port}\nlb_kind = "PROXY"\nprotocol = "TCP"\nlb_algo = "rr"\ndelay_loop = ${o.delayLoop ?? 1}\ndrain_timeout = 1\n\n${reals}`;
}
