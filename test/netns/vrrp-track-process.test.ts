// track_process moves priority when a tracked process dies, and the peer takes over.
//
// Two keepalive-ts directors: a (150) and b (100), each tracking "its" process, a `sleep` with a
// distinctive argument (the lab namespaces share one PID namespace, so the arguments keep a's and
// b's processes apart), weight -60. Killing a's process drops a to 90: b (100) preempts. Starting
// it again brings a back to 150: a preempts back. The daemons run in network namespaces, where the
// kernel offers no process events connector, so this exercises /proc polling; the connector path is
// proven by the second test, which runs the monitor in the initial namespace.
import { createLab, netnsTest, sleep, waitFor } from '../lib/netns.js';
import { startDirector, directorToml, type Director } from '../lib/daemon.js';
import { ProcessMonitor, PROCESS_POLL_MS } from '../../src/vrrp/process-monitor.js';
import { createLogger } from '../../src/util/log.js';
import { spawn, spawnSync } from 'node:child_process';
import type { VrrpTrackProcessConfig } from '../../src/config/index.js';
import { assertWithinBound } from '../lib/timing.js';
import { gatedTest, type Availability } from '../lib/gated-test.js';
import { netnsAvailable } from '../lib/lab-core.js';

const tag = (n: number) => String(700_000 + (process.pid % 100_000) * 10 + n);

function toml(routerId: string, priority: number, arg: string): string {
  return directorToml({
    routerId, priority, vips: ['10.77.0.50/24'], version: 3, advertInt: 1,
    extraInstance: 'track_process = ["marker"]',
    extra: `[[vrrp_track_process]]\nname = "marker"\nprocess = ["sleep", "${arg}"]\nweight = -60\n`,
  });
}

/**
 * Whether this process can open the process events connector: the kernel offers it in the initial
 * network namespace only, so not in a container with its own network namespace. Asked of a
 * ProcessMonitor in a child process (registration must decide synchronously).
 */
function connectorAvailable(): Availability {
  const monitorUrl = new URL('../../src/vrrp/process-monitor.js', import.meta.url).href;
  const logUrl = new URL('../../src/util/log.js', import.meta.url).href;
  const script = `
    const { ProcessMonitor } = await import(${JSON.stringify(monitorUrl)});
    const { createLogger } = await import(${JSON.stringify(logUrl)});
    const cfg = { name: 'probe', process: ['kt-connector-probe'], weight: 0, reverse: false, quorum: 1, delay: 0, fork_delay: 0, terminate_delay: 0, full_command: false };
    const m = new ProcessMonitor([cfg], { log: createLogger({ level: 'silent' }), onChange() {} });
    await m.start();
    console.log(m.mode);
    await m.stop();
    process.exit(0);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  const mode = r.stdout?.trim();
  if (mode === 'connector') return { ok: true };
  return { ok: false, reason: `no process events connector here (the kernel offers it in the initial network namespace only: a container?); probe said ${JSON.stringify(mode || r.stderr?.trim() || r.error?.message)}` };
}

/** A test of the connector path: needs root (netns-level privileges) and the initial namespace. */
function connectorTest(title: string, fn: Parameters<typeof netnsTest>[1]): void {
  const netns = netnsAvailable();
  gatedTest(title, netns.ok ? connectorAvailable() : netns, netns.ok ? 'the process events connector' : 'network namespaces', fn);
}

async function inst(d: Director) {
  return d.instance();
}

netnsTest('track_process: the tracked process dies, priority drops by its weight, the peer takes over; it returns, priority and mastership come back', async (t) => {
  const lab = await createLab(t);
  const ha = await lab.addHost('a');
  const hb = await lab.addHost('b');
  const argA = tag(1);
  const argB = tag(2);
  let procA = ha.spawn(['sleep', argA]);
  hb.spawn(['sleep', argB]);

  const a = await startDirector(lab, ha, toml('a', 150, argA));
  await waitFor(async () => (await inst(a)).state === 'MASTER', 10_000, 'a MASTER', 50);
  const b = await startDirector(lab, hb, toml('b', 100, argB));
  await waitFor(async () => (await inst(b)).state === 'BACKUP', 10_000, 'b BACKUP', 50);
  t.is((await inst(a)).effective_priority, 150, 'a runs its process: full priority');
  t.is((await inst(b)).effective_priority, 100, 'b runs its process: full priority');
  t.regex(a.proc.output(), /following processes by \/proc polling every 500 ms/, 'in a network namespace the daemon polls /proc');

  // Kill a's process: a's priority drops to 90, b (100) takes over.
  const killedAt = Date.now();
  await procA.kill('SIGKILL');
  let seenAt = 0;
  await waitFor(async () => {
    const p = (await inst(a)).effective_priority;
    if (p === 90 && seenAt === 0) seenAt = Date.now();
    return p === 90;
  }, 5_000, 'a priority 90', 10);
  t.log(`process killed: a's effective priority dropped ${seenAt - killedAt} ms later (polling every ${PROCESS_POLL_MS} ms)`);
  assertWithinBound(t, seenAt - killedAt, PROCESS_POLL_MS, 'process death seen by /proc polling');
  await waitFor(async () => (await inst(b)).state === 'MASTER', 10_000, 'b takes over', 50);
  await waitFor(async () => (await inst(a)).state === 'BACKUP', 5_000, 'a BACKUP', 50);
  t.log(`b became MASTER ${Date.now() - killedAt} ms after the kill`);

  // The process comes back: a returns to 150 and preempts.
  procA = ha.spawn(['sleep', argA]);
  await waitFor(async () => (await inst(a)).effective_priority === 150, 5_000, 'a priority 150 again', 20);
  await waitFor(async () => (await inst(a)).state === 'MASTER', 10_000, 'a MASTER again', 50);
  await waitFor(async () => (await inst(b)).state === 'BACKUP', 5_000, 'b BACKUP again', 50);
  t.pass();
});

connectorTest('track_process follows processes through the kernel process events connector where it is available (initial namespace)', async (t) => {
  const arg = tag(3);
  const cfg: VrrpTrackProcessConfig = {
    name: 'marker', process: ['sleep', arg], weight: -10, reverse: false, quorum: 1, delay: 0, fork_delay: 0, terminate_delay: 0, full_command: false,
  };
  const changes: Array<{ ok: boolean; at: number }> = [];
  const mon = new ProcessMonitor([cfg], { log: createLogger({ level: 'silent' }), onChange: (_n, ok) => changes.push({ ok, at: Date.now() }) });
  t.teardown(() => mon.stop());
  await mon.start();
  t.is(mon.mode, 'connector', 'the initial namespace offers the process events connector');
  t.is(mon.status('marker'), false, 'no such process yet');
  const scans = mon.scans;

  const child = spawn('sleep', [arg], { stdio: 'ignore' });
  t.teardown(() => { child.kill('SIGKILL'); });
  const startedAt = Date.now();
  await waitFor(async () => mon.status('marker') === true, 3_000, 'process seen', 5);
  t.log(`fork/exec seen ${changes.at(-1)!.at - startedAt} ms after spawn`);

  const killedAt = Date.now();
  child.kill('SIGKILL');
  await waitFor(async () => mon.status('marker') === false, 3_000, 'exit seen', 5);
  const took = changes.at(-1)!.at - killedAt;
  // Events only (no /proc rescan) is the proof; how fast that is belongs to the benchmarks.
  assertWithinBound(t, took, PROCESS_POLL_MS, 'exit seen by the connector after SIGKILL');
  t.is(mon.scans, scans, 'no /proc rescan was needed: events only');
  await sleep(50);
});

connectorTest('track_process fork_delay holds a gained quorum back, terminate_delay a lost one (connector, initial namespace)', async (t) => {
  const arg = tag(4);
  const cfg: VrrpTrackProcessConfig = {
    name: 'marker', process: ['sleep', arg], weight: -10, reverse: false, quorum: 1, delay: 0, fork_delay: 0.4, terminate_delay: 0.6, full_command: false,
  };
  const mon = new ProcessMonitor([cfg], { log: createLogger({ level: 'silent' }), onChange: () => undefined });
  t.teardown(() => mon.stop());
  await mon.start();
  t.is(mon.status('marker'), false);
  const child = spawn('sleep', [arg], { stdio: 'ignore' });
  t.teardown(() => { child.kill('SIGKILL'); });
  await waitFor(async () => mon.count('marker') === 1, 3_000, 'process counted', 5);
  const counted = Date.now();
  t.is(mon.status('marker'), false, 'the gain is held back by fork_delay');
  await waitFor(async () => mon.status('marker') === true, 3_000, 'gain reported', 5);
  const gained = Date.now() - counted;
  child.kill('SIGKILL');
  await waitFor(async () => mon.count('marker') === 0, 3_000, 'exit counted', 5);
  const gone = Date.now();
  t.is(mon.status('marker'), true, 'the loss is held back by terminate_delay');
  await waitFor(async () => mon.status('marker') === false, 3_000, 'loss reported', 5);
  const lost = Date.now() - gone;
  t.log(`fork_delay 400 ms: reported after ${gained} ms; terminate_delay 600 ms: reported after ${lost} ms`);
  t.true(gained >= 300 && lost >= 500, `delays respected (${gained}, ${lost})`);
});
