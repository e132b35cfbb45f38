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
//
// Flows across a director change (DR + mh, the kernel data plane): three directors, three real
// servers, one fresh lab per measurement; 120 long-lived line-echo sessions from the client to
// 10.99.0.10:7000 (each names its real server in every echo) spread by the router over the
// directors. Then
//   leave     d1's link goes down and keepalive-ts + BIRD are SIGKILLed (BFD drops it);
//   join      d1 (stopped gracefully before the sessions opened) starts again and announces.
// Figures: the share of sessions that change real server (a session breaks, or an echo comes from
// another server), and the share that changed director as far as the directors' own counts tell
// (leave: the sessions the dead director forwarded; join: the sessions the joining director
// forwards afterwards). Reference: the same with lb_algo rr (no hash shared by the directors).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDirector } from '../test/lib/daemon.js';
import { startNginx } from '../test/lib/servers.js';
import { killGroup } from '../test/lib/procs.js';
import { PROD_LOG_ARGS } from '../test/lib/reliability.js';
import { buildBgpLab, directorBgpToml, nextHops, startBgpSet, startLongSessions, startRouterBird, webService, VIP4, ROUTER_AS, DIRECTOR_AS, type BgpLab } from '../test/lib/bgp.js';
import { ECHO_PORT } from '../test/lib/hitless.js';
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

type FlowEvent = 'leave' | 'join';
type Algo = 'mh' | 'rr';
const FLOW_EVENTS: FlowEvent[] = ['leave', 'join'];
const DIRECTORS = 3;

/** One lab: `sessions` long sessions across a director leaving or joining; shares in %. */
async function flowsOnce(algo: Algo, event: FlowEvent, sessions: number): Promise<{ changedServer: number; movedDirector: number; perDirector: number[]; reasons: string[] }> {
  return withLab(async (lab) => {
    const { bl, ds, toml } = await startBgpSet(lab, { directors: DIRECTORS, reals: 3, kind: 'DR', algo });
    const all = bl.directors.map((d) => d.ipv4!).sort().join();
    const others = bl.directors.slice(1).map((d) => d.ipv4!).sort().join();
    const key = `tcp/${VIP4}:${ECHO_PORT}`;
    const activeOn = async (d: (typeof ds)[number]) => (await d.status()).virtual_servers.find((v) => v.key === key)?.active_conns ?? 0;
    let moved: number;
    let long: Awaited<ReturnType<typeof startLongSessions>>;
    // Real-server health changes on d2/d3 while the sessions run (a check timing out under load
    // changes that director's table: not what is measured, so it is reported beside the figure).
    const marks = ds.map((d) => d.proc.output().length);
    const flaps = () => ds.slice(1).flatMap((d, i) => d.proc.output().slice(marks[i + 1]).split('\n').filter((l) => / real server \S+ of \S+ is (up|down)/.test(l)).map((l) => `${d.host.name}: ${l.replace(/^.*?(real server)/, '$1').slice(0, 120)}`));
    if (event === 'leave') {
      long = await startLongSessions(bl, ds, sessions, 6_000);
      await sleep(1_000);
      await bl.directors[0]!.linkDown();
      killGroup(ds[0]!.proc.pid, 'SIGKILL');
      await waitFor(async () => (await nextHops(bl.router, VIP4)).join() === others, 10_000, 'router drops d1', 20);
      moved = long.perDirector[0]!;
    } else {
      process.kill(ds[0]!.proc.pid, 'SIGTERM');
      await ds[0]!.proc.exited;
      await waitFor(async () => (await nextHops(bl.router, VIP4)).join() === others, 10_000, 'router drops d1', 20);
      long = await startLongSessions(bl, ds.slice(1), sessions, 25_000);
      await sleep(1_000);
      const d1 = await startDirector(lab, bl.directors[0]!, toml(bl.directors[0]!));
      await waitFor(async () => (await nextHops(bl.router, VIP4)).join() === all, 20_000, 'router adds d1 again', 20);
      // The sessions the router now hashes to d1 reach it within 200 ms (one echo line each); its
      // counters are read every second, the first time a while after it started serving.
      await sleep(2_500);
      moved = 0;
      await waitFor(async () => (moved = await activeOn(d1)) > 0, 6_000, 'the joining director counts its sessions', 250).catch(() => undefined);
    }
    const res = await long.result();
    if (res.length !== sessions) throw new Error(`${res.length} of ${sessions} session results:\n${long.proc.output().slice(-1500)}`);
    const broken = res.filter((f) => !f.ok);
    const reasons = [...new Set(broken.map((f) => `${f.server}: ${f.reason}`)), ...flaps()];
    return { changedServer: (100 * broken.length) / sessions, movedDirector: (100 * moved) / sessions, perDirector: long.perDirector, reasons };
  });
}

async function runFlows(ctx: BenchContext): Promise<{ figures: Figure[]; notes: string[] }> {
  const events = (ctx.params.flows?.split(',').filter(Boolean) as FlowEvent[] | undefined) ?? FLOW_EVENTS;
  const sessions = Number(ctx.params.sessions ?? 120);
  const unknown = events.filter((e) => !FLOW_EVENTS.includes(e));
  if (unknown.length) throw new Error(`bgp.flows: unknown ${unknown.join(', ')} (known: ${FLOW_EVENTS.join(', ')}; empty for none)`);
  const r = new Map<string, { changed: number[]; moved: number[] }>();
  for (const e of events) for (const a of ['mh', 'rr'] as Algo[]) r.set(`${e} ${a}`, { changed: [], moved: [] });
  for (let i = 0; i < ctx.runs; i++) {
    for (const event of events) {
      for (const algo of (i % 2 === 0 ? ['mh', 'rr'] : ['rr', 'mh']) as Algo[]) {
        const slot = r.get(`${event} ${algo}`)!;
        try {
          const m = await flowsOnce(algo, event, sessions);
          ctx.log(`rep ${i + 1} DR ${algo} ${event}: ${m.changedServer.toFixed(1)} % changed real server, ${m.movedDirector.toFixed(1)} % counted on the ${event === 'leave' ? 'leaving' : 'joining'} director (sessions per director before: ${m.perDirector.join(' / ')})${m.reasons.length ? `; broken: ${m.reasons.slice(0, 6).join('; ')}` : ''}`);
          slot.changed.push(m.changedServer);
          slot.moved.push(m.movedDirector);
        } catch (err) {
          ctx.log(`rep ${i + 1} DR ${algo} ${event}: failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
          slot.changed.push(NaN);
          slot.moved.push(NaN);
        }
      }
    }
  }
  const share = `${(100 / DIRECTORS).toFixed(0)} %`;
  const bound = `${(100 / DIRECTORS + 2).toFixed(0)} %`;
  const what: Record<FlowEvent, string> = { leave: 'a director leaves (link down + kill -9)', join: 'a director joins (starts and announces)' };
  const figures: Figure[] = events.flatMap((e) => [
    {
      figure: `DR, ${DIRECTORS} directors, ${sessions} long sessions, ${what[e]}: share of sessions that change real server (ours mh, theirs rr)`,
      unit: '%',
      better: 'lower' as const,
      ours: r.get(`${e} mh`)!.changed,
      theirs: r.get(`${e} rr`)!.changed,
      theory: `mh: 0 (every director computes the same Maglev table); target ≤ 1/N + 2 % = ${bound}. rr: the sessions that change director × (1 − 1/3 real servers)`,
      decimals: 1,
    },
    {
      figure: `… share of sessions on the ${e === 'leave' ? 'leaving' : 'joining'} director (${e === 'leave' ? 'moved away from it' : 'moved onto it'}), from its own counters`,
      unit: '%',
      better: 'lower' as const,
      ours: r.get(`${e} mh`)!.moved,
      theirs: r.get(`${e} rr`)!.moved,
      theory: `its ECMP share, 1/N = ${share}`,
      decimals: 1,
    },
  ]);
  const med = (e: FlowEvent, a: Algo, k: 'changed' | 'moved') => median(r.get(`${e} ${a}`)![k]).toFixed(1);
  return {
    figures,
    notes: events.length === 0 ? [] : [
      `Flows across a director change: ${sessions} line-echo sessions (one line per session every 200 ms, each echo names the real server) from one client to 10.99.0.10:7000, lb_kind DR, three real servers; the router hashes addresses and ports (fib_multipath_hash_policy=1). A session counts as "changed real server" when it breaks (reset, lost echo) or an echo comes from another server. mh: mh_table_size 251, hash_seed 4242, sched_flags mh-port on every director (the same config); reference rr: nothing shared, a director that receives a flow it has not seen schedules it afresh.`,
      `Medians, changed real server: ${events.map((e) => `${e} ${med(e, 'mh', 'changed')} % (mh) / ${med(e, 'rr', 'changed')} % (rr)`).join('; ')}; target ≤ 1/N + 2 % = ${bound}. On the ${events.map((e) => (e === 'leave' ? 'leaving' : 'joining')).join(' / ')} director: ${events.map((e) => `${med(e, 'mh', 'moved')} %`).join(' / ')} of the sessions (1/N = ${share}).`,
      'In the flow rows the reference column ("bare BIRD") is DR + rr with keepalive-ts, not bare BIRD. Every repetition logs its raw figures; with mh a repetition that breaks sessions lists the reasons and any real-server state change on the surviving directors (none seen so far).',
      'The router\'s ECMP is hash-threshold (Linux\'s default, not a resilient next-hop group): when one of three next hops leaves or joins, besides the leaving/joining director\'s own share about 1/6 of the flows also move between the other two directors. Those moves are not counted in the "on the director" figure; the rr reference shows them: the share of rr sessions that break is about two thirds of all the sessions that changed director. With mh none of them changes real server.',
    ],
  };
}

async function runBgp(ctx: BenchContext): Promise<BenchmarkResult> {
  const flows = await runFlows(ctx);
  const events = (ctx.params.events?.split(',').filter(Boolean) as Event[] | undefined) ?? EVENTS;
  const unknown = events.filter((e) => !EVENTS.includes(e));
  if (unknown.length) throw new Error(`bgp.events: unknown ${unknown.join(', ')} (known: ${EVENTS.join(', ')}; empty for none)`);
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
    figures: [...figures, ...flows.figures],
    notes: [
      'Reference ("bare BIRD"): BIRD 2 on each director with the configuration keepalive-ts generates, written by hand, and the host route added/deleted with `ip route` (the method of ../shared/research/bgp.md). The ratio is therefore what keepalive-ts adds on top of BIRD for the same event.',
      'The bare-BIRD "withdraw" and "stop" times include starting `ip route del` / `birdc down` inside the director namespace (a few ms; t0 is taken before the command starts).',
      'Times are the router\'s `ip -ts monitor route` timestamp of its first route change for 10.99.0.10 minus the event time in the benchmark process (same clock). "withdraw" for keepalive-ts starts at keepalive-ts\'s own "quorum down" log record (its decision), not at the moment the real servers started refusing (that adds the health-check delay, delay_loop 0.5 s here).',
      `Medians: ${events.map((e) => `${e} ${median(ours.get(e)!).toFixed(0)} / ${median(theirs.get(e)!).toFixed(0)} ms`).join('; ')} (ours / bare BIRD).`,
      ...flows.notes,
    ],
  };
}

export const bgp: Benchmark = {
  name: 'bgp',
  title: 'BGP: time for the router to drop a withdrawing director (BFD on/off); flows across a director change (DR + mh)',
  reference: 'bare BIRD',
  description:
    'Router (BIRD 2, `merge paths on`, BFD 100 ms × 3) and two directors announcing 10.99.0.10/32 by eBGP (test/lib/bgp.ts lab, a fresh lab per measurement). ' +
    'For each event on director d1 — a withdrawal (quorum loss), a graceful stop, a crash (link down + kill -9) with BFD and without BFD — the time until the router\'s kernel route loses d1 as a next hop. ' +
    'Reference: the same BIRD configuration by hand with the host route added/deleted by `ip route` ("bare BIRD"), alternating per repetition. `--param bgp.events=withdraw,crash` selects events. ' +
    'Then, with three directors in lb_kind DR and three real servers: the share of long-lived sessions that change real server when a director leaves (link down + kill -9) or joins, with mh (same table and seed on every director) against rr (reference); `--param bgp.flows=leave`, `--param bgp.sessions=120`.',
  run: runBgp,
};
