// BGP withdrawal benchmark: how long until the router stops sending a service address's traffic
// to a director, for each way a director withdraws.
//
// Lab (test/lib/bgp.ts): router (BIRD 2, ECMP, BFD 100 ms x 3 on its side) and two directors d1, d2
// announcing 10.99.0.10/32; one fresh lab per measurement. The router runs `ip -ts monitor route`;
// a figure is the time from the event to the router's first route change for the address.
//
// Ours: keepalive-ts on both directors (its own BIRD, generated config, the address announced
// while the service has quorum). Theirs ("bare BIRD"): the same BIRD configuration written by hand
// on both directors, the host route put into table 100 with `ip route add` (the method of
// ../shared/research/bgp.md), i.e. BIRD alone without keepalive-ts in the path.
//
// Events:
//   withdraw  ours: the real servers of d1 start refusing its checks; t0 = keepalive-ts's own
//             "quorum down" log time (the decision), so the figure is decision -> router.
//             theirs: `ip route del` of the host route; t0 = just before the command.
//   stop      ours: SIGTERM (withdraw first, then drain); theirs: `birdc down` (Cease).
//   crash     the director's link goes down, then keepalive-ts and its BIRD (theirs: BIRD) are
//             SIGKILLed: only BFD (or, with BFD off, the hold timer) can tell the router.
//   crash-nobfd  as crash with BFD off on both ends (hold time 9 s).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDirector } from '../test/lib/daemon.js';
import { startNginx } from '../test/lib/servers.js';
import { killGroup } from '../test/lib/procs.js';
import { PROD_LOG_ARGS } from '../test/lib/reliability.js';
import { buildBgpLab, directorBgpToml, nextHops, startRouterBird, webService, VIP4, ROUTER_AS, DIRECTOR_AS, type BgpLab } from '../test/lib/bgp.js';
import { median, sleep, waitFor, withLab, type LabHost, type LabProcess } from './lab.js';
import type { Benchmark, BenchContext, BenchmarkResult, Figure } from './run.js';

type Impl = 'keepalive-ts' | 'bare BIRD';
type Event = 'withdraw' | 'stop' | 'crash' | 'crash-nobfd';
const EVENTS: Event[] = ['withdraw', 'stop', 'crash', 'crash-nobfd'];
const NFT = '/usr/sbin/nft';

/** The bird.conf keepalive-ts would generate for a director, written by hand (the reference). */
function bareBirdConf(d: LabHost, bfd: boolean): string {
  return [
    `router id ${d.ipv4};`,
    'log stderr all;',
    'protocol device { scan time 10; }',
    'protocol kernel { kernel table 100; learn; scan time 10; ipv4 { import where krt_source = 200 && net.len = 32; export none; }; }',
    bfd ? 'protocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }' : '',
    `protocol bgp uplink { local as ${DIRECTOR_AS}; neighbor 10.78.0.1 as ${ROUTER_AS}; hold time 9; ${bfd ? 'bfd on; ' : ''}`,
    '  connect delay time 1; connect retry time 2; error wait time 1, 10; graceful restart off;',
    '  ipv4 { import none; export where proto = "kernel1"; }; }',
    '',
  ].filter(Boolean).join('\n');
}

interface Director {
  host: LabHost;
  proc: LabProcess;
  /** Event that withdraws; resolves with t0 (epoch ms) once the event happened. */
  fire(event: Event): Promise<number>;
}

async function startOurs(bl: BgpLab, d: LabHost, bfd: boolean): Promise<Director> {
  const toml = directorBgpToml(bl.lab, d, { extra: webService(VIP4, bl.reals), peers: 'v4', peerExtra: bfd ? '' : 'bfd = false' });
  const dir = await startDirector(bl.lab, d, toml, { args: PROD_LOG_ARGS });
  return {
    host: d,
    proc: dir.proc,
    async fire(event) {
      if (event === 'withdraw') {
        const mark = dir.proc.output().length;
        await d.exec([NFT, '-f', '-'], { input: 'table inet kt_block {\n chain out {\n  type filter hook output priority 0;\n  tcp dport 80 reject with tcp reset\n }\n}\n' });
        let at: number | undefined;
        await waitFor(async () => {
          for (const line of dir.proc.output().slice(mark).split('\n')) {
            if (!line.startsWith('{')) continue;
            const rec = JSON.parse(line) as { time?: number; msg?: string };
            if (rec.msg?.includes('quorum down')) at = rec.time;
          }
          return at !== undefined;
        }, 10_000, 'quorum down logged', 10);
        return at!;
      }
      if (event === 'stop') {
        const t0 = Date.now();
        process.kill(dir.proc.pid, 'SIGTERM');
        return t0;
      }
      const t0 = Date.now();
      await d.linkDown();
      killGroup(dir.proc.pid, 'SIGKILL');
      return t0;
    },
  };
}

async function startBare(bl: BgpLab, d: LabHost, bfd: boolean): Promise<Director> {
  const dir = join(bl.lab.tmpDir, `bare-${d.name}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'bird.conf'), bareBirdConf(d, bfd));
  const sock = join(dir, 'bird.ctl');
  const proc = d.spawn(['bird', '-f', '-c', join(dir, 'bird.conf'), '-s', sock, '-P', join(dir, 'bird.pid')]);
  await d.exec(['ip', 'route', 'add', `${VIP4}/32`, 'dev', 'lo', 'table', '100', 'proto', '200']);
  return {
    host: d,
    proc,
    async fire(event) {
      const t0 = Date.now();
      if (event === 'withdraw') await d.exec(['ip', 'route', 'del', `${VIP4}/32`, 'dev', 'lo', 'table', '100', 'proto', '200']);
      else if (event === 'stop') await d.exec(['birdc', '-s', sock, 'down']);
      else {
        await d.linkDown();
        killGroup(proc.pid, 'SIGKILL');
      }
      return t0;
    },
  };
}

/** One measurement in a fresh lab: ms from the event to the router's route change. */
async function once(impl: Impl, event: Event): Promise<number> {
  return withLab(async (lab) => {
    const bl = await buildBgpLab(lab, { directors: 2, reals: 1 });
    await startNginx(bl.reals[0]!, { port: 80, body: 'rs1', tmpDir: lab.tmpDir });
    const bfd = event !== 'crash-nobfd';
    await startRouterBird(bl, { bfd });
    const ds = await Promise.all(bl.directors.map((d) => (impl === 'keepalive-ts' ? startOurs(bl, d, bfd) : startBare(bl, d, bfd))));
    const both = bl.directors.map((d) => d.ipv4!).sort().join();
    await waitFor(async () => (await nextHops(bl.router, VIP4)).join() === both, 40_000, 'two next hops', 50);
    const mon = bl.router.spawn(['ip', '-ts', 'monitor', 'route']);
    await sleep(300 + Math.random() * 300);
    const t0 = await ds[0]!.fire(event);
    await waitFor(async () => (await nextHops(bl.router, VIP4)).join() === bl.directors[1]!.ipv4, 20_000, 'router drops d1', 20);
    await sleep(50);
    for (const line of mon.output().split('\n')) {
      const m = /^\[([0-9T:.-]+)\]\s*(.*)$/.exec(line);
      if (!m || !m[2]!.includes(VIP4)) continue;
      const at = Date.parse(`${m[1]}Z`);
      if (at >= t0 - 2) return at - t0;
    }
    throw new Error(`no route change for ${VIP4} in the router's monitor output:\n${mon.output()}`);
  });
}

const THEORY: Record<Event, string> = {
  withdraw: 'route deleted -> BIRD learns it at once -> UPDATE: a few ms (research: 2–8 ms)',
  stop: 'ours: withdraw first (as "withdraw"); theirs: Cease on `birdc down`',
  crash: 'BFD detection 3 × 100 ms = 300 ms (research: 240–290 ms)',
  'crash-nobfd': 'hold timer: 9 s after the last keepalive (sent every 3 s), so 6–9 s after the crash',
};

const FIGURE: Record<Event, string> = {
  withdraw: 'withdrawal (ours: quorum lost; theirs: route deleted) -> router drops the next hop',
  stop: 'graceful stop (ours: SIGTERM; theirs: birdc down) -> router drops the next hop',
  crash: 'link down + kill -9, BFD 100 ms × 3 -> router drops the next hop',
  'crash-nobfd': 'link down + kill -9, BFD off (hold time 9 s) -> router drops the next hop',
};

async function runBgp(ctx: BenchContext): Promise<BenchmarkResult> {
  const events = (ctx.params.events?.split(',') as Event[] | undefined) ?? EVENTS;
  const ours = new Map<Event, number[]>(events.map((e) => [e, []]));
  const theirs = new Map<Event, number[]>(events.map((e) => [e, []]));
  for (let i = 0; i < ctx.runs; i++) {
    for (const event of events) {
      const order: Impl[] = i % 2 === 0 ? ['keepalive-ts', 'bare BIRD'] : ['bare BIRD', 'keepalive-ts'];
      for (const impl of order) {
        let ms = NaN;
        try {
          ms = await once(impl, event);
        } catch (err) {
          ctx.log(`rep ${i + 1} ${impl} ${event}: failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
        }
        ctx.log(`rep ${i + 1} ${impl} ${event}: ${ms} ms`);
        (impl === 'keepalive-ts' ? ours : theirs).get(event)!.push(ms);
      }
    }
  }
  const figures: Figure[] = events.map((e) => ({
    figure: FIGURE[e],
    unit: 'ms',
    better: 'lower',
    ours: ours.get(e)!,
    theirs: theirs.get(e)!,
    theory: THEORY[e],
  }));
  return {
    figures,
    notes: [
      'Reference ("bare BIRD"): BIRD 2 on each director with the configuration keepalive-ts generates, written by hand, and the host route added/deleted with `ip route` (the method of ../shared/research/bgp.md). The ratio is therefore what keepalive-ts adds on top of BIRD for the same event.',
      'The bare-BIRD "withdraw" and "stop" times include starting `ip route del` / `birdc down` inside the director namespace (a few ms; t0 is taken before the command starts).',
      'Times are the router\'s `ip -ts monitor route` timestamp of its first route change for 10.99.0.10 minus the event time in the benchmark process (same clock). "withdraw" for keepalive-ts starts at keepalive-ts\'s own "quorum down" log record (its decision), not at the moment the real servers started refusing (that adds the health-check delay, delay_loop 0.5 s here).',
      `Medians: ${events.map((e) => `${e} ${median(ours.get(e)!).toFixed(0)} / ${median(theirs.get(e)!).toFixed(0)} ms`).join('; ')} (ours / bare BIRD).`,
    ],
  };
}

export const bgp: Benchmark = {
  name: 'bgp',
  title: 'BGP: time for the router to drop a withdrawing director (BFD on/off)',
  reference: 'bare BIRD',
  description:
    'Router (BIRD 2, `merge paths on`, BFD 100 ms × 3) and two directors announcing 10.99.0.10/32 by eBGP (test/lib/bgp.ts lab, a fresh lab per measurement). ' +
    'For each event on director d1 — a withdrawal (quorum loss), a graceful stop, a crash (link down + kill -9) with BFD and without BFD — the time until the router\'s kernel route loses d1 as a next hop. ' +
    'Reference: the same BIRD configuration by hand with the host route added/deleted by `ip route` ("bare BIRD"), alternating per repetition. `--param bgp.events=withdraw,crash` selects events.',
  run: runBgp,
};
