// `npm run demo`: a director pair running keepalive-ts from conf/director-a.toml and
// conf/director-b.toml unchanged (LVS-DR through nftables, with connection sync), two nginx real
// servers and a sorry server set up for DR, and a client, all in network namespaces of one
// machine; then a narrated tour: status, traffic through the VIP, persistence, metrics, a crash of
// the MASTER during a long download and an interactive session, and the takeover. Everything is torn down at the
// end, on error and on Ctrl-C. Needs root (network namespaces), iproute2 and nginx.
//
// Compiled to dist/scripts/demo.js; run as root: `npm run demo`, or
// `KEEPALIVE_TS_SKIP_BUILD=1 node dist/scripts/demo.js` after a build.
import { existsSync, unlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeAllLabsSync, createLab, netnsAvailable, sleep, waitFor, type Lab, type LabHost, type LabProcess } from '../test/lib/lab-core.js';
import { startNginx } from '../test/lib/servers.js';
import { prepareDrRealServer } from '../test/lib/nft-lab.js';
import { ECHO_PORT, gapsOf, stallAfter, startDownload, startEchoServer, startInteractive, startRateLimitedNginx } from '../test/lib/hitless.js';
import { CLI } from '../test/lib/daemon.js';
import { controlRequest } from '../src/cli/control-client.js';
import type { StatusReport } from '../src/daemon/status.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const VIP = '10.77.0.50';
const CLIENT_SOURCES = ['10.77.0.101', '10.77.0.102', '10.77.0.103', '10.77.0.104', '10.77.0.105', '10.77.0.106'];

interface DirectorSpec {
  name: 'director-a' | 'director-b';
  ip: string;
  config: string;
  socket: string;
}
// Addresses and socket paths as written in the two config files (they are used as they are).
const DIRECTORS: DirectorSpec[] = [
  { name: 'director-a', ip: '10.77.0.11', config: join(ROOT, 'conf/director-a.toml'), socket: '/run/keepalive-ts/director-a.sock' },
  { name: 'director-b', ip: '10.77.0.12', config: join(ROOT, 'conf/director-b.toml'), socket: '/run/keepalive-ts/director-b.sock' },
];

// ---------------------------------------------------------------------------------------------
// Output

const tty = process.stdout.isTTY === true;
const style = (code: string) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = style('1');
const dim = style('2');
const green = style('32');
const yellow = style('33');
const red = style('31');
const t0 = Date.now();
const stamp = () => dim(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s]`);

let step = 0;
function heading(title: string): void {
  console.log(`\n${bold(`== ${++step}. ${title} `.padEnd(78, '='))}`);
}
function say(msg: string): void {
  console.log(`${stamp()} ${msg}`);
}
function indent(text: string, by = '    '): string {
  return text.replace(/\n$/, '').replace(/^/gm, by);
}

// ---------------------------------------------------------------------------------------------
// Helpers

interface Running {
  spec: DirectorSpec;
  host: LabHost;
  proc: LabProcess;
}

async function status(d: Running): Promise<StatusReport> {
  const r = await controlRequest(d.spec.socket, 'status', {}, 3_000);
  if (!r.ok) throw new Error(r.error.message);
  return r.result as StatusReport;
}

/** `keepalive-ts status` exactly as an operator would type it (the CLI, not a library call). */
function cliStatus(d: Running): string {
  const r = spawnSync(process.execPath, [CLI, 'status', '--control-socket', d.spec.socket], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout : `(status failed, exit ${r.status}): ${r.stderr}`;
}

async function vrrpState(d: Running): Promise<string> {
  return (await status(d)).vrrp[0]?.state ?? '?';
}

async function hasVip(host: LabHost): Promise<boolean> {
  return (await host.addresses()).includes(VIP);
}

/**
 * HTTP GETs from the client through the VIP, each on a new connection, from the given source
 * addresses in turn (`rounds` requests per source). Runs as one Node process in the client's
 * namespace. Returns, per source, the bodies (real server names) or error codes in order.
 */
async function requests(client: LabHost, sources: string[], rounds: number, timeoutMs = 2_000): Promise<Record<string, string[]>> {
  const script = `
const http = require('node:http');
const [vip, timeout, rounds, ...sources] = process.argv.slice(1);
const one = (src) => new Promise((resolve) => {
  const req = http.get({ host: vip, port: 80, path: '/', agent: false, timeout: Number(timeout), localAddress: src }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (body += d));
    res.on('end', () => resolve(body.trim()));
    res.on('error', (e) => resolve('error:' + (e.code || e.message)));
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
  req.on('error', (e) => resolve('error:' + (e.code || e.message)));
});
(async () => {
  const out = {};
  for (const s of sources) out[s] = [];
  for (let i = 0; i < Number(rounds); i++) for (const s of sources) out[s].push(await one(s));
  process.stdout.write(JSON.stringify(out));
})();
`;
  const r = await client.exec([process.execPath, '-e', script, VIP, String(timeoutMs), String(rounds), ...sources], {
    timeoutMs: sources.length * rounds * (timeoutMs + 500) + 10_000,
  });
  return JSON.parse(r.stdout) as Record<string, string[]>;
}

/** GET of a director's /metrics from the client's namespace (as a Prometheus server would). */
async function scrape(client: LabHost, ip: string): Promise<string> {
  const script = `fetch(process.argv[1]).then(async (r) => process.stdout.write(await r.text()), (e) => { console.error(String(e.cause ?? e)); process.exit(1); })`;
  return (await client.exec([process.execPath, '-e', script, `http://${ip}:9650/metrics`], { timeoutMs: 10_000 })).stdout;
}

function pickMetrics(text: string, patterns: RegExp[]): string[] {
  return text.split('\n').filter((l) => !l.startsWith('#') && patterns.some((p) => p.test(l)));
}

/** The part of a status report about connection sync, read loosely (it is optional). */
interface SyncView {
  role?: string;
  table?: { templates?: number; conns?: number; udp_flows?: number };
  received?: { messages?: number; entries?: number; dropped?: Record<string, number> };
  restored?: number;
  promotions?: number;
}
function syncOf(st: StatusReport): SyncView | undefined {
  return (st as { sync?: SyncView }).sync;
}

/** The one real server a client was sent to, or a description when there were several / errors. */
function servedBy(bodies: string[]): string {
  const distinct = [...new Set(bodies)];
  return distinct.length === 1 ? distinct[0]! : distinct.join('+');
}

// ---------------------------------------------------------------------------------------------
// Preconditions

function preflight(): string[] {
  const problems: string[] = [];
  const avail = netnsAvailable();
  if (!avail.ok) problems.push(`${avail.reason}: run it as root (sudo npm run demo), on Linux with iproute2`);
  if (spawnSync('nginx', ['-v'], { encoding: 'utf8' }).error) problems.push('nginx is not installed (Debian: apt-get install nginx-light); it serves the real servers');
  if (!existsSync(CLI)) problems.push(`${CLI} is missing: build first (npm run build, or just npm run demo)`);
  for (const d of DIRECTORS) if (!existsSync(d.config)) problems.push(`${d.config} is missing`);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Teardown (also on Ctrl-C)

const startedSockets = new Set<string>();
let activeLab: Lab | undefined;

function removeStaleSockets(): void {
  // A director killed with SIGKILL cannot remove its control socket; the others remove their own.
  for (const s of startedSockets) {
    try {
      unlinkSync(s);
    } catch {
      // already removed by the daemon
    }
  }
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.log(`\n${yellow(`${sig}: tearing the lab down`)}`);
    const lab = activeLab;
    const finish = () => {
      closeAllLabsSync();
      removeStaleSockets();
      process.exit(130);
    };
    if (lab) lab.close().then(finish, finish);
    else finish();
    // If the orderly close hangs, the synchronous one still runs.
    setTimeout(finish, 8_000).unref();
  });
}

// ---------------------------------------------------------------------------------------------
// The tour

interface Summary {
  takeoverMs?: number;
  firstAnswerMs?: number;
  persistent?: { stayed: number; total: number };
  /** The long download and the interactive session across the crash: unbroken? stall (ms). */
  download?: { ok: boolean; stallMs: number; line: string };
  interactive?: { ok: boolean; stallMs: number; line: string };
  syncVisible?: boolean;
  requestsOk: number;
  requestsFailed: number;
}

async function tour(lab: Lab, summary: Summary): Promise<void> {
  heading('Building the lab');
  say(`network namespaces on one bridge, 10.77.0.0/24 (lab ${lab.id}):`);
  const [da, db, rs1, rs2, sorry, client] = await Promise.all([
    lab.addHost('director-a', { ipv4: '10.77.0.11/24' }),
    lab.addHost('director-b', { ipv4: '10.77.0.12/24' }),
    lab.addHost('rs1', { ipv4: '10.77.0.21/24' }),
    lab.addHost('rs2', { ipv4: '10.77.0.22/24' }),
    lab.addHost('sorry', { ipv4: '10.77.0.30/24' }),
    lab.addHost('client', { ipv4: '10.77.0.100/24' }),
  ]);
  for (const src of CLIENT_SOURCES) await client.exec(['ip', 'addr', 'add', `${src}/24`, 'dev', 'eth0']);
  // LVS-DR: every real server (and the sorry server) holds the VIP on lo and never answers ARP for it.
  for (const h of [rs1, rs2, sorry]) await prepareDrRealServer(h, VIP);
  await Promise.all([
    startRateLimitedNginx(rs1, lab.tmpDir, 'rs1'),
    startRateLimitedNginx(rs2, lab.tmpDir, 'rs2'),
    startNginx(sorry, { port: 80, body: 'sorry-server', tmpDir: lab.tmpDir, ipv6: false }),
    startEchoServer(rs1, 'rs1'),
    startEchoServer(rs2, 'rs2'),
  ]);
  console.log(indent([
    'director-a  10.77.0.11   keepalive-ts, conf/director-a.toml (priority 150)',
    'director-b  10.77.0.12   keepalive-ts, conf/director-b.toml (priority 100)',
    'rs1         10.77.0.21   nginx :80, answers "rs1" (and /big: 2 MiB at 200 KiB/s); line echo :7000',
    'rs2         10.77.0.22   nginx :80, answers "rs2" (and /big); line echo :7000',
    'sorry       10.77.0.30   nginx :80, answers "sorry-server"',
    `client      10.77.0.100  plus ${CLIENT_SOURCES[0]}-${CLIENT_SOURCES.at(-1)!.split('.')[3]} as six distinct clients`,
    `VIP         ${VIP}   TCP :80, wlc, persistence_timeout 300, HTTP_GET checks every 2 s; TCP :${ECHO_PORT} wlc`,
  ].join('\n')));
  say(`lb_kind "DR" (direct routing in the kernel, nftables): the directors only rewrite the destination MAC;`);
  say(`rs1, rs2 and sorry are set up for DR: ${VIP}/32 on lo, net.ipv4.conf.all.arp_ignore=1, arp_announce=2,`);
  say('so they accept packets for the VIP, never answer ARP for it, and reply to the clients directly');

  heading('Starting both directors from the config files as they are');
  const hosts = { 'director-a': da, 'director-b': db };
  const running: Running[] = [];
  for (const spec of DIRECTORS) {
    const host = hosts[spec.name];
    // The config's pid_file (/run/keepalive-ts.pid) would be shared by both on one machine.
    const proc = host.spawn(['node', CLI, 'run', '--config', spec.config, '--pid-file', join(lab.tmpDir, `${spec.name}.pid`), '--log-format', 'pretty', '--log-level', 'info']);
    startedSockets.add(spec.socket);
    running.push({ spec, host, proc });
    say(`ip netns exec ${host.ns} keepalive-ts run --config conf/${spec.name}.toml`);
  }
  const [a, b] = running as [Running, Running];
  for (const d of running) {
    let dead = false;
    void d.proc.exited.then(() => (dead = true));
    await waitFor(async () => {
      if (dead) throw new Error(`keepalive-ts on ${d.spec.name} exited:\n${d.proc.output()}`);
      return status(d).then(() => true, () => false);
    }, 15_000, `${d.spec.name} control socket`, 50);
  }
  const electionStart = Date.now();
  await waitFor(async () => (await vrrpState(a)) === 'MASTER' && (await vrrpState(b)) === 'BACKUP', 15_000, 'director-a MASTER, director-b BACKUP', 50);
  say(`director-a is ${green('MASTER')} and director-b ${green('BACKUP')} after ${Date.now() - electionStart} ms (3 x advert_int + skew: nobody was advertising yet)`);
  for (const d of running) {
    await waitFor(async () => (await status(d)).virtual_servers[0]!.real_servers.filter((r) => r.up).length === 2, 15_000, `${d.spec.name}: both real servers pass HTTP_GET`, 100);
  }
  await waitFor(async () => (await status(a)).virtual_servers[0]!.serving, 5_000, 'director-a serving the VIP', 50);
  say('both directors see rs1 and rs2 healthy; only the MASTER serves the virtual server');

  heading('keepalive-ts status on both directors');
  for (const d of running) {
    console.log(`\n  $ keepalive-ts status --control-socket ${d.spec.socket}`);
    console.log(indent(cliStatus(d)));
  }

  heading('Traffic from six clients through the VIP');
  say(`each client (source address) sends 4 requests to http://${VIP}/, a new TCP connection each`);
  const before = await requests(client, CLIENT_SOURCES, 4);
  const assignment = new Map<string, string>();
  for (const src of CLIENT_SOURCES) {
    const bodies = before[src]!;
    const ok = bodies.filter((x) => !x.startsWith('error:')).length;
    summary.requestsOk += ok;
    summary.requestsFailed += bodies.length - ok;
    assignment.set(src, servedBy(bodies));
    console.log(`    client ${src.padEnd(12)} -> ${bodies.join(' ')}`);
  }
  const stuck = CLIENT_SOURCES.filter((s) => !assignment.get(s)!.includes('+')).length;
  say(`${stuck} of ${CLIENT_SOURCES.length} clients stayed on one real server for all their requests (persistence_timeout 300)`);
  const spread = [...new Set(assignment.values())].sort();
  say(`real servers used: ${spread.join(', ')}`);

  heading('Prometheus metrics (GET http://10.77.0.11:9650/metrics)');
  // The daemon reads the data plane's counters once a second; connection sync batches too.
  await sleep(1_500);
  const metricsA = await scrape(client, a.spec.ip);
  const lines = pickMetrics(metricsA, [
    /^keepalive_ts_vrrp_state\{.*state="(MASTER|BACKUP)"/,
    /^keepalive_ts_vrrp_adverts_sent_total/,
    /^keepalive_ts_virtual_server_connections_total/,
    /^keepalive_ts_real_server_up/,
    /^keepalive_ts_real_server_connections_total/,
    /^keepalive_ts_check_duration_seconds/,
    /^keepalive_ts_sync_/,
  ]);
  console.log(indent(lines.join('\n')));
  say(`${metricsA.split('\n').filter((l) => l && !l.startsWith('#')).length} samples in all; docs/metrics.md describes every series`);

  heading('Connection sync: what director-b (BACKUP) has received');
  // The MASTER multicasts its connection and persistence entries to the BACKUP ([sync] in the
  // configs). Read director-b's own account of it: status --json, and its sync metrics.
  const syncB = syncOf(await status(b));
  const syncMetricsB = pickMetrics(await scrape(client, b.spec.ip), [/^keepalive_ts_sync_/]);
  summary.syncVisible = syncB !== undefined && (syncB.received?.messages ?? 0) > 0;
  if (!syncB) {
    say(yellow('director-b reports no connection sync (no "sync" in its status): not running in this build'));
  } else {
    const drops = Object.entries(syncB.received?.dropped ?? {}).filter(([, n]) => n > 0).map(([why, n]) => `${n} ${why}`);
    say(`director-b: sync role ${syncB.role ?? '?'}, received ${syncB.received?.messages ?? 0} messages / ${syncB.received?.entries ?? 0} entries` +
      `, holds ${syncB.table?.templates ?? 0} persistence templates and ${syncB.table?.conns ?? 0} connections` +
      (drops.length ? `; dropped: ${drops.join(', ')}` : ''));
    if (!summary.syncVisible) say(yellow('director-b has not received any sync message'));
  }
  if (syncMetricsB.length > 0) console.log(indent(syncMetricsB.join('\n')));
  else say(dim('(no keepalive_ts_sync_* series in director-b\'s /metrics yet)'));

  heading('Crash of the MASTER: SIGKILL director-a and pull its cable');
  say('no priority-0 advert, no VIP removal: director-b must notice the silence, Master_Down_Interval');
  say('= 3 x advert_int + (256 - priority) / 256 = 3.61 s after the last advert it heard');
  say(`first, two long-lived connections through the VIP: a 2 MiB download (~10 s at nginx limit_rate 200k)`);
  say(`and an interactive session (a line echoed every 100 ms by a real server, port ${ECHO_PORT})`);
  const download = startDownload(client, VIP);
  const session = startInteractive(client, VIP, 9_000);
  await sleep(2_000);
  const killedAt = Date.now();
  await a.proc.kill('SIGKILL');
  await da.linkDown();
  say(`director-a killed (exit signal SIGKILL) and its switch port is down`);
  let firstAnswerAt: number | undefined;
  // Poll both: when director-b owns the VIP, and when the client gets its first answer again.
  const probeClient = (async () => {
    while (Date.now() - killedAt < 15_000 && firstAnswerAt === undefined) {
      const r = await requests(client, ['10.77.0.100'], 1, 250);
      if (!r['10.77.0.100']![0]!.startsWith('error:')) firstAnswerAt = Date.now();
      else await sleep(25);
    }
  })();
  await waitFor(() => hasVip(db), 15_000, 'director-b owning the VIP', 10);
  const ownedAt = Date.now();
  summary.takeoverMs = ownedAt - killedAt;
  await probeClient;
  if (firstAnswerAt !== undefined) summary.firstAnswerMs = firstAnswerAt - killedAt;
  say(`director-b owns ${VIP} ${green(`${summary.takeoverMs} ms`)} after the kill`);
  say(firstAnswerAt !== undefined
    ? `the client got its first answer through the VIP ${green(`${summary.firstAnswerMs} ms`)} after the kill`
    : red('the client got no answer through the VIP within 15 s'));
  console.log(`\n  $ keepalive-ts status --control-socket ${b.spec.socket}`);
  console.log(indent(cliStatus(b)));
  const syncAfter = syncOf(await status(b));
  if (syncAfter) say(`director-b's sync after the takeover: role ${syncAfter.role ?? '?'}, ${syncAfter.restored ?? 0} entries handed to its data plane on promotion`);

  heading('Did the established connections survive the crash?');
  const dlDone = await download.exited;
  const sessDone = await session.exited;
  const dlLine = /^DL .*$/m.exec(download.output())?.[0] ?? 'no result';
  const sessLine = /^ECHO .*$/m.exec(session.output())?.[0] ?? 'no result';
  summary.download = { ok: dlDone.code === 0, stallMs: stallAfter(gapsOf(download), killedAt, 15_000), line: dlLine };
  summary.interactive = { ok: sessDone.code === 0, stallMs: stallAfter(gapsOf(session), killedAt, 15_000), line: sessLine };
  const verdict = (x: { ok: boolean; stallMs: number }) => (x.ok ? green(`unbroken, stalled ${x.stallMs} ms at the crash`) : red('BROKEN'));
  say(`download:            ${verdict(summary.download)} (${dlLine.replace(/^DL /, '')})`);
  say(`interactive session: ${verdict(summary.interactive)} (${sessLine.replace(/^ECHO /, '')})`);
  if (summary.download.ok && summary.interactive.ok) {
    say('director-b forwarded both connections to the real servers director-a had chosen: their entries reached it');
    say('through connection sync before the crash, and it wrote them into its kernel connection tables before serving');
  }

  heading('Did the persistent clients keep their real server?');
  // In swapped pairs (102, 101, 104, 103, ...): a director scheduling these clients afresh, in
  // this order, would not hand out the same servers as before just by repeating the same
  // sequence of choices. Only persistence entries carried over keep every client in place.
  const order = CLIENT_SOURCES.map((_, i) => CLIENT_SOURCES[i % 2 === 0 ? i + 1 : i - 1]!);
  say(`the same six clients send 4 requests each through director-b, in a different order (${order.map((s) => s.split('.')[3]).join(', ')})`);
  const after = await requests(client, order, 4);
  let stayed = 0;
  for (const src of CLIENT_SOURCES) {
    const bodies = after[src]!;
    const ok = bodies.filter((x) => !x.startsWith('error:')).length;
    summary.requestsOk += ok;
    summary.requestsFailed += bodies.length - ok;
    const was = assignment.get(src)!;
    const now = servedBy(bodies);
    const same = now === was;
    if (same) stayed++;
    console.log(`    client ${src.padEnd(12)} before: ${was.padEnd(4)} after: ${now.padEnd(4)} ${same ? green('stayed') : yellow('moved')}`);
  }
  summary.persistent = { stayed, total: CLIENT_SOURCES.length };
  if (stayed === CLIENT_SOURCES.length && summary.syncVisible) {
    say(green(`all ${stayed} clients stayed on their real server: their persistence entries reached director-b through connection sync before the crash`));
  } else if (stayed === CLIENT_SOURCES.length) {
    say(yellow(`all ${stayed} clients stayed, but director-b had received no sync messages: its own scheduler happened to make the same choices`));
  } else {
    say(yellow(`${stayed === 0 ? "none" : `${stayed} of ${CLIENT_SOURCES.length}`} of the clients stayed; ${stayed === 0 ? "all were" : "the others were"} scheduled afresh by director-b` +
      (summary.syncVisible ? ' (connection sync ran, but these entries did not take effect on director-b)' : ' (director-b had received no sync messages, so it did not know their persistence entries)')));
  }
}

async function main(): Promise<number> {
  console.log(bold('keepalive-ts demo: a director pair, two real servers and a client in network namespaces'));
  const problems = preflight();
  if (problems.length > 0) {
    console.error(red('cannot run the demo:'));
    for (const p of problems) console.error(`  - ${p}`);
    return 2;
  }
  for (const d of DIRECTORS) {
    if (existsSync(d.socket)) {
      const alive = await controlRequest(d.socket, 'status', {}, 1_000).then(() => true, () => false);
      if (alive) {
        console.error(red(`a keepalive-ts daemon already answers on ${d.socket}; stop it first (the demo uses the config files' socket paths)`));
        return 2;
      }
    }
  }
  const summary: Summary = { requestsOk: 0, requestsFailed: 0 };
  let lab: Lab | undefined;
  let failed = false;
  try {
    lab = await createLab();
    activeLab = lab;
    await tour(lab, summary);
  } catch (err) {
    failed = true;
    if (!interrupted) {
      console.error(`\n${red('demo failed:')} ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      if (lab) {
        console.error(dim('output of the lab processes:'));
        lab.logProcesses((m) => console.error(dim(m)));
      }
    }
  } finally {
    if (!interrupted) {
      heading('Teardown');
      if (lab) await lab.close();
      removeStaleSockets();
      say('processes stopped, namespaces and temp files removed');
    }
  }
  if (interrupted) return 130;

  heading('Summary');
  const s = summary;
  console.log(indent([
    `election at start         director-a MASTER (priority 150), director-b BACKUP (100)`,
    `requests through the VIP  ${s.requestsOk} answered, ${s.requestsFailed} failed (before and after the crash)`,
    `takeover                  ${s.takeoverMs !== undefined ? `director-b owned the VIP ${s.takeoverMs} ms after director-a was killed` : 'not reached'}`,
    `client outage             ${s.firstAnswerMs !== undefined ? `${s.firstAnswerMs} ms until the first answer through director-b` : 'not measured'}`,
    `persistence after crash   ${s.persistent ? `${s.persistent.stayed}/${s.persistent.total} clients kept their real server` : 'not reached'}`,
    `download across crash     ${s.download ? (s.download.ok ? `unbroken, stall ${s.download.stallMs} ms` : 'BROKEN') : 'not reached'}`,
    `interactive across crash  ${s.interactive ? (s.interactive.ok ? `unbroken, stall ${s.interactive.stallMs} ms` : 'BROKEN') : 'not reached'}`,
    `connection sync           ${s.syncVisible === undefined ? 'not reached' : s.syncVisible ? 'director-b received sync messages from director-a' : 'director-b received no sync messages'}`,
  ].join('\n')));
  console.log(`\n${failed ? red('demo FAILED') : green('demo finished')} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const broken = (s.download && !s.download.ok) || (s.interactive && !s.interactive.ok);
  return failed || broken ? 1 : 0;
}

process.exitCode = await main();
