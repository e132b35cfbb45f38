// Long-lived clients and servers for the hitless-failover labs: an nginx real server with a
// rate-limited 2 MiB file, a line-echo server, a downloading client and an interactive client
// that both report every stall (gap between two arrivals) with its wall-clock time, so a test can
// tell which failover event caused which stall.
import type { ExecutionContext } from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LabHost, LabProcess } from './netns.js';
import { nginxConfig, waitUntilListening } from './servers.js';
import { httpBatch } from './clients.js';

export const ECHO_PORT = 7000;

/** nginx answering `200 <body>` on / and a 2 MiB file on /big at `rate` (nginx limit_rate, e.g. "200k"). */
export async function startRateLimitedNginx(host: LabHost, tmpDir: string, body: string, rate = '200k'): Promise<LabProcess> {
  const dir = join(tmpDir, `nginx-hitless-${host.name}`);
  await mkdir(join(dir, 'www'), { recursive: true });
  await writeFile(join(dir, 'www', 'big'), Buffer.alloc(2 << 20, 0x61));
  const conf = nginxConfig(dir, {
    listen: ['listen 80;'],
    locations: `location = / {\n      default_type text/plain;\n      return 200 "${body}";\n    }\n    location /big {\n      root ${dir}/www;\n      limit_rate ${rate};\n      sendfile off;\n    }`,
  });
  await writeFile(join(dir, 'nginx.conf'), conf);
  const proc = host.spawn(['nginx', '-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf')]);
  await waitUntilListening(host, 80, proc, 10_000, `nginx on ${host.name}`);
  return proc;
}

const ECHO_SERVER = `
const name = process.argv[1];
require('node:net').createServer((c) => {
  let buf = '';
  c.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { c.write(name + ' ' + buf.slice(0, i) + '\\n'); buf = buf.slice(i + 1); } });
  c.on('error', () => {});
}).listen(${ECHO_PORT}, () => console.log('echo ready'));`;

export async function startEchoServer(host: LabHost, name: string): Promise<LabProcess> {
  const p = host.spawn([process.execPath, '-e', ECHO_SERVER, name]);
  await p.waitForOutput(/echo ready/, 5_000);
  return p;
}

/** Prints "GAP <epoch ms> <gap ms>" for every gap over 150 ms, then one "DL ..." result line. */
const DOWNLOAD = `
const [vip, path] = process.argv.slice(1);
let bytes = 0, last = Date.now(), maxGap = 0; const t0 = Date.now();
setTimeout(() => { console.log('DL timeout bytes=' + bytes); process.exit(1); }, 45000);
const req = require('node:http').get({ host: vip, port: 80, path, agent: false }, (res) => {
  res.on('data', (d) => { const now = Date.now(); const g = now - last; if (g > 150) console.log('GAP ' + now + ' ' + g); if (g > maxGap) maxGap = g; last = now; bytes += d.length; });
  res.on('end', () => { console.log('DL ok status=' + res.statusCode + ' bytes=' + bytes + ' maxgap=' + maxGap + ' ms=' + (Date.now() - t0)); process.exit(0); });
  res.on('error', (e) => { console.log('DL error ' + e.message + ' bytes=' + bytes); process.exit(1); });
});
req.on('error', (e) => { console.log('DL error ' + e.message + ' bytes=' + bytes); process.exit(1); });`;

/** Sends "n" every 100 ms for argv ms; checks every echo comes back in order from one server. */
const INTERACTIVE = `
const [vip, port, ms] = process.argv.slice(1);
const s = require('node:net').connect(Number(port), vip);
let n = 0, next = 0, buf = '', server = null, last = Date.now(), maxGap = 0, bad = null;
setTimeout(() => { console.log('ECHO timeout sent=' + n + ' recv=' + next); process.exit(1); }, Number(ms) + 20000);
s.on('connect', () => {
  const iv = setInterval(() => s.write((n++) + '\\n'), 100);
  setTimeout(() => { clearInterval(iv); setTimeout(() => { console.log((bad ? 'ECHO bad ' + bad : 'ECHO ok') + ' sent=' + n + ' recv=' + next + ' maxgap=' + maxGap + ' server=' + server); s.end(); process.exit(bad || next !== n ? 1 : 0); }, 3000); }, Number(ms));
});
s.on('data', (d) => {
  buf += d; let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const [who, num] = buf.slice(0, i).split(' '); buf = buf.slice(i + 1);
    const now = Date.now(); const g = now - last; if (g > 150) console.log('GAP ' + now + ' ' + g); if (g > maxGap) maxGap = g; last = now;
    if (server === null) server = who; else if (who !== server && !bad) bad = 'server changed ' + server + ' -> ' + who;
    if (Number(num) !== next && !bad) bad = 'expected ' + next + ' got ' + num;
    next++;
  }
});
s.on('error', (e) => { console.log('ECHO error ' + e.message + ' sent=' + n + ' recv=' + next); process.exit(1); });
s.on('close', () => { if (next !== n) { console.log('ECHO closed sent=' + n + ' recv=' + next); process.exit(1); } });`;

export function startDownload(client: LabHost, vip: string, path = '/big'): LabProcess {
  return client.spawn([process.execPath, '-e', DOWNLOAD, vip, path]);
}

export function startInteractive(client: LabHost, vip: string, durationMs: number, port = ECHO_PORT): LabProcess {
  return client.spawn([process.execPath, '-e', INTERACTIVE, vip, String(port), String(durationMs)]);
}

export interface Gap {
  at: number;
  ms: number;
}

export function gapsOf(p: LabProcess): Gap[] {
  return [...p.output().matchAll(/^GAP (\d+) (\d+)$/gm)].map((m) => ({ at: Number(m[1]), ms: Number(m[2]) }));
}

/** The longest gap that ended within `windowMs` after `eventAt` (the stall the event caused), 0 if none. */
export function stallAfter(gaps: readonly Gap[], eventAt: number, windowMs = 8_000): number {
  return Math.max(0, ...gaps.filter((g) => g.at >= eventAt && g.at - g.ms <= eventAt + windowMs).map((g) => g.ms));
}

// ---------------------------------------------------------------------------------------------
// Scenario helpers shared by the hitless labs (ava-bound: they assert and log).


/** The real server (nginx body) that answers `src` through `vip`:80. */
export async function serverOf(client: LabHost, vip: string, src: string): Promise<string> {
  const r = await httpBatch(client, vip, 80, 1, { localAddress: src });
  if (Object.keys(r.errors).length > 0) throw new Error(`${src}: ${JSON.stringify(r.errors)}`);
  return Object.keys(r.bodies)[0]!;
}

/** Every client still gets the real server it had (queried in reverse order, so rr alone would move them). */
export async function persistentClientsKeep(t: ExecutionContext, client: LabHost, vip: string, before: ReadonlyMap<string, string>, label: string): Promise<void> {
  let moved = 0;
  for (const src of [...before.keys()].reverse()) if ((await serverOf(client, vip, src)) !== before.get(src)) moved++;
  t.is(moved, 0, `${label}: ${moved} of ${before.size} persistent clients changed real server`);
}

/**
 * Starts a 2 MiB download and four interactive sessions (rr spreads them over both servers: a new
 * master that scheduled their packets afresh would move at least one), runs `event` once they
 * flow, waits for `settle`, then checks every connection finished unbroken and logs the stalls.
 * The interactive sessions last `interactiveMs` (default 6 s; the download about 10 s).
 */
export async function acrossEvent(
  t: ExecutionContext,
  client: LabHost,
  vip: string,
  label: string,
  steps: { before?: () => Promise<void>; event: () => Promise<void>; settle: () => Promise<void>; diagnose?: () => Promise<string>; interactiveMs?: number },
): Promise<void> {
  const dl = startDownload(client, vip);
  const echos: LabProcess[] = [];
  for (let i = 0; i < 4; i++) echos.push(startInteractive(client, vip, steps.interactiveMs ?? 6_000));
  await new Promise((r) => setTimeout(r, 1_500));
  await steps.before?.();
  const at = Date.now();
  await steps.event();
  await steps.settle();
  const dlRc = (await dl.exited).code;
  const dlLine = /^DL .*$/m.exec(dl.output())?.[0] ?? `(no result) ${dl.output().slice(-300)}`;
  const echoRcs = await Promise.all(echos.map(async (e) => (await e.exited).code));
  // A broken connection: the directors' state, logged before the assertions below end the test.
  if (steps.diagnose && (dlRc !== 0 || echoRcs.some((rc) => rc !== 0))) t.log(`${label}: a connection broke; the directors now:\n${await steps.diagnose().catch((e: Error) => `(diagnose failed: ${e.message})`)}`);
  t.is(dlRc, 0, `${label}: download unbroken (${dlLine})`);
  t.regex(dlLine, /DL ok status=200 bytes=2097152/, `${label}: whole file`);
  const lines: string[] = [];
  let stallEcho = 0;
  for (const echo of echos) {
    const rc = (await echo.exited).code;
    const line = /^ECHO .*$/m.exec(echo.output())?.[0] ?? `(no result) ${echo.output().slice(-300)}`;
    lines.push(line.replace(/^ECHO /, ''));
    stallEcho = Math.max(stallEcho, stallAfter(gapsOf(echo), at));
    t.is(rc, 0, `${label}: interactive session unbroken (${line})`);
  }
  t.log(`${label}: download ${dlLine}; stall ${stallAfter(gapsOf(dl), at)} ms | interactive x4 [${lines.join(' | ')}]; longest stall ${stallEcho} ms`);
  t.true(stallEcho < 5_000, `${label}: interactive stall ${stallEcho} ms`);
}

// ---------------------------------------------------------------------------------------------
// UDP: an echo bound to the VIP (DR real servers hold it on lo) and a client sending every 10 ms.

export const UDP_PORT = 9000;

const UDP_ECHO = `
const [name, vip, port] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(name, r.port, r.address));
s.bind(Number(port), vip, () => console.log('udp-echo ready'));`;

/** Prints "R <ms since start> <body>" per reply, then "done sent=<n>". */
const UDP_CLIENT = `
const [vip, port, ms] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
const t0 = Date.now(); let sent = 0;
s.on('message', (m) => process.stdout.write('R ' + (Date.now() - t0) + ' ' + m + '\\n'));
s.bind(0, () => {
  const iv = setInterval(() => { sent++; s.send('x', Number(port), vip); }, 10);
  setTimeout(() => { clearInterval(iv); setTimeout(() => { console.log('done sent=' + sent); process.exit(0); }, 300); }, Number(ms));
});`;

export async function startUdpEcho(host: LabHost, name: string, vip: string, port = UDP_PORT): Promise<LabProcess> {
  const p = host.spawn([process.execPath, '-e', UDP_ECHO, name, vip, String(port)]);
  await p.waitForOutput(/udp-echo ready/, 5_000);
  return p;
}

export function startUdpFlow(client: LabHost, vip: string, durationMs: number, port = UDP_PORT): LabProcess {
  return client.spawn([process.execPath, '-e', UDP_CLIENT, vip, String(port), String(durationMs)]);
}

/** The replies of a UDP flow: servers that answered, the longest gap, replies vs datagrams sent. */
export function udpFlowResult(p: LabProcess): { servers: string[]; replies: number; sent: number; longestGapMs: number } {
  const replies = [...p.output().matchAll(/^R (\d+) (\S+)$/gm)].map((m) => ({ t: Number(m[1]), body: m[2]! }));
  let gap = 0;
  for (let i = 1; i < replies.length; i++) gap = Math.max(gap, replies[i]!.t - replies[i - 1]!.t);
  return { servers: [...new Set(replies.map((r) => r.body))], replies: replies.length, sent: Number(/done sent=(\d+)/.exec(p.output())?.[1] ?? 0), longestGapMs: gap };
}

// ---------------------------------------------------------------------------------------------
// Many long-lived line-echo sessions from one process (one process per session does not scale to
// the 60+ sessions of the BGP labs on two cores).

/**
 * Opens `n` connections to vip:port one after another, then sends "n\n" on every one every
 * `intervalMs` for `durationMs`. Prints "UP <i> <local port> <server>" at a session's first echo,
 * then "END <i> <local port> ok|broken <server> sent=<n> recv=<n> <reason>" per session.
 */
const ECHO_FLOWS = `
const [vip, port, n, ms, every] = process.argv.slice(1).map((x, i) => (i === 0 ? x : Number(x)));
const net = require('node:net');
const flows = [];
function open(i) {
  const f = { i, s: net.connect(port, vip), sent: 0, recv: 0, server: null, bad: null, buf: '', lport: 0, done: false };
  f.s.on('connect', () => { f.lport = f.s.localPort; });
  f.s.on('data', (d) => {
    f.buf += d; let k;
    while ((k = f.buf.indexOf('\\n')) >= 0) {
      const [who, num] = f.buf.slice(0, k).split(' '); f.buf = f.buf.slice(k + 1);
      if (f.server === null) { f.server = who; console.log('UP ' + i + ' ' + f.lport + ' ' + who); }
      else if (who !== f.server && !f.bad) f.bad = 'server changed ' + f.server + ' -> ' + who;
      if (Number(num) !== f.recv && !f.bad) f.bad = 'expected ' + f.recv + ' got ' + num;
      f.recv++;
    }
  });
  f.s.on('error', (e) => { if (!f.bad) f.bad = 'error ' + e.code; });
  f.s.on('close', () => { if (!f.done && !f.bad) f.bad = 'closed'; });
  flows.push(f);
  return new Promise((r) => { f.s.once('connect', r); f.s.once('error', r); });
}
(async () => {
  for (let i = 0; i < n; i++) { await open(i); const f = flows[i]; if (!f.bad) { f.s.write('0\\n'); f.sent = 1; } }
  const iv = setInterval(() => { for (const f of flows) if (!f.bad) { f.s.write(f.sent + '\\n'); f.sent++; } }, every);
  setTimeout(() => {
    clearInterval(iv);
    setTimeout(() => {
      for (const f of flows) {
        f.done = true;
        if (!f.bad && f.recv !== f.sent) f.bad = 'lost ' + (f.sent - f.recv) + ' echoes';
        console.log('END ' + f.i + ' ' + f.lport + ' ' + (f.bad ? 'broken' : 'ok') + ' ' + f.server + ' sent=' + f.sent + ' recv=' + f.recv + ' ' + (f.bad || ''));
        f.s.destroy();
      }
      process.exit(0);
    }, 3000);
  }, ms);
})();`;

export interface EchoFlow {
  i: number;
  localPort: number;
  ok: boolean;
  server: string;
  reason: string;
}

export function startEchoFlows(client: LabHost, vip: string, n: number, durationMs: number, opts: { port?: number; intervalMs?: number } = {}): LabProcess {
  return client.spawn([process.execPath, '-e', ECHO_FLOWS, vip, String(opts.port ?? ECHO_PORT), String(n), String(durationMs), String(opts.intervalMs ?? 200)]);
}

/** The sessions that are up so far: local port -> real server. */
export function echoFlowsUp(p: LabProcess): Map<number, string> {
  return new Map([...p.output().matchAll(/^UP \d+ (\d+) (\S+)$/gm)].map((m) => [Number(m[1]), m[2]!]));
}

/** The END lines of a finished startEchoFlows. */
export function echoFlowsResult(p: LabProcess): EchoFlow[] {
  return [...p.output().matchAll(/^END (\d+) (\d+) (ok|broken) (\S+) sent=\d+ recv=\d+ ?(.*)$/gm)]
    .map((m) => ({ i: Number(m[1]), localPort: Number(m[2]), ok: m[3] === 'ok', server: m[4]!, reason: m[5]! }));
}
