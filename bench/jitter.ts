// Advert jitter benchmark: how regular the master's VRRP adverts are.
//
// Part 1 — 100 instances on one interface (VRID 1..100, advert_int 1 s, VRRPv3, one VIP each), a single
// director da that becomes MASTER of all of them (no peer runs VRRP); host p captures with
// `tcpdump -tt ip proto 112`. For every instance, each interval between two consecutive adverts is
// compared with advert_int: deviation = |interval - 1000 ms|. Figures: p50 / p99 / max over all
// instances' deviations. keepalive-ts vs keepalived 2.2.7 (100 vrrp_instance blocks), alternating.
// Part 1b — the same while the director also checks 1,000 real servers (HTTP_GET every 1 s) and
// proxies wrk -c50: keepalive-ts does both itself; keepalived runs beside HAProxy doing them.
// Part 2 — one instance at advert_int 0.1 s on a director that also serves VIP:80 (nginx r1 + r2):
// deviation idle, then while wrk -t1 -c200 saturates the VIP. keepalived is measured idle only (its
// virtual servers need the ip_vs kernel module, absent in this VM, so it cannot carry the traffic).
import { startDirector, directorToml } from '../test/lib/daemon.js';
import { startKeepalived, startNginx, startTcpdump } from '../test/lib/servers.js';
import { PROD_LOG_ARGS, advertTimes, gaps, maxOf, percentile, runWrk, tuneForLoad, virtualServerToml } from '../test/lib/reliability.js';
import { sleep, waitFor, withLab, type Lab, type LabHost } from './lab.js';
import type { Benchmark, BenchContext, BenchmarkResult, Figure } from './run.js';
import { oursRt, rtNote, rtParam, theirsRt, type Rt } from './rt.js';
import { BUSY_CHECKS, busyServicesToml, busyWrk, startBusyHaproxy, startBusyReals, waitBusyServing } from './busy.js';

type Impl = 'keepalive-ts' | 'keepalived';
const VIP = '10.77.0.50';

interface Dev { p50: number; p99: number; max: number; n: number; missing: number; stalls?: string }

function deviations(text: string, src: string, vrids: number[], advertMs: number, from: number, to: number): Dev {
  const all = advertTimes(text);
  const devs: number[] = [];
  let missing = 0;
  // Intervals longer than 1.5 advert_int (an advert missing): when, and how many instances, so that
  // a stall of the whole host (every instance at once) is told apart from a lost packet.
  const long: Array<{ at: number; len: number }> = [];
  for (const v of vrids) {
    const t = (all.get(`${src}/${v}`) ?? []).filter((x) => x >= from && x <= to);
    if (t.length < 2) missing++;
    for (let i = 1; i < t.length; i++) {
      const g = t[i]! - t[i - 1]!;
      devs.push(Math.abs(g - advertMs));
      if (g > 1.5 * advertMs) long.push({ at: t[i - 1]! - from, len: g });
    }
  }
  const stalls = long.length === 0 ? undefined
    : `${long.length} intervals > 1.5 × advert_int, from ${(Math.min(...long.map((l) => l.at)) / 1000).toFixed(2)} to ${(Math.max(...long.map((l) => l.at)) / 1000).toFixed(2)} s into the window, ${Math.min(...long.map((l) => l.len)).toFixed(0)}–${Math.max(...long.map((l) => l.len)).toFixed(0)} ms long`;
  return { p50: percentile(devs, 50), p99: percentile(devs, 99), max: maxOf(devs), n: devs.length, missing, ...(stalls ? { stalls } : {}) };
}

function oursManyToml(n: number, rt: Rt): string {
  const out = ['[global]', 'router_id = "da"', 'metrics_listen = ""', oursRt(rt), ''];
  for (let v = 1; v <= n; v++) {
    out.push('[[vrrp_instance]]', `name = "VI_${v}"`, 'interface = "eth0"', `virtual_router_id = ${v}`, 'priority = 150', 'advert_int = 1', 'version = 3',
      `virtual_ipaddress = ["10.78.${Math.floor(v / 250)}.${(v % 250) + 1}/32"]`, 'garp_master_delay = 0', '');
  }
  return out.join('\n');
}

function keepalivedManyConf(n: number, rt: Rt): string {
  const out = ['global_defs {', '  router_id da', '  vrrp_version 3', '  vrrp_garp_master_delay 0', '  enable_script_security', theirsRt(rt), '}'];
  for (let v = 1; v <= n; v++) {
    out.push(`vrrp_instance VI_${v} {`, '  state BACKUP', '  interface eth0', `  virtual_router_id ${v}`, '  priority 150', '  advert_int 1',
      '  virtual_ipaddress {', `    10.78.${Math.floor(v / 250)}.${(v % 250) + 1}/32`, '  }', '}');
  }
  return `${out.join('\n')}\n`;
}

/**
 * `busy`: the director also checks BUSY_CHECKS real servers and proxies wrk -c50 through one of them
 * for the whole capture (busy.ts: keepalive-ts doing it itself, HAProxy beside keepalived).
 */
async function many(impl: Impl, n: number, seconds: number, rt: Rt, busy = false): Promise<Dev & { rps?: number; senderLate?: string }> {
  return withLab(async (lab) => {
    const [a, p] = await Promise.all([lab.addHost('da', { ipv4: '10.77.0.11/24' }), lab.addHost('p', { ipv4: '10.77.0.12/24' })]);
    const cap = await startTcpdump(p, 'ip proto 112', { args: ['-tt'] });
    const vrids = Array.from({ length: n }, (_, i) => i + 1);
    let load: Promise<{ rps: number }> | undefined;
    let client: LabHost | undefined;
    let ours: Awaited<ReturnType<typeof startDirector>> | undefined;
    if (impl === 'keepalive-ts') {
      let toml = oursManyToml(n, rt);
      let cl: LabHost | undefined;
      if (busy) {
        const r1 = await lab.addHost('r1', { ipv4: '10.77.0.21/24' });
        cl = await lab.addHost('cl', { ipv4: '10.77.0.100/24' });
        await startBusyReals(lab, r1, [cl, a]);
        toml += busyServicesToml('10.77.0.11', '10.77.0.21');
      }
      const d = await startDirector(lab, a, toml, { args: PROD_LOG_ARGS });
      ours = d;
      // Say why when it fails: the daemon's last words (a crash) with the error.
      await waitFor(async () => (await d.status()).vrrp.every((v) => v.state === 'MASTER'), 20_000, 'all MASTER', 200)
        .catch((err: unknown) => { throw new Error(`jitter: ${String(err)}; the daemon's last output: ${d.proc.output().slice(-4000)}`); });
      if (busy) {
        await waitBusyServing(d);
        load = busyWrk(cl!, '10.77.0.11', seconds + 3);
      }
    } else {
      if (busy) {
        const r1 = await lab.addHost('r1', { ipv4: '10.77.0.21/24' });
        const cl = await lab.addHost('cl', { ipv4: '10.77.0.100/24' });
        await startBusyReals(lab, r1, [cl, a]);
        await startBusyHaproxy(lab, a, '10.77.0.11', '10.77.0.21');
        client = cl;
      }
      const k = await startKeepalived(a, keepalivedManyConf(n, rt), lab);
      await waitFor(async () => (k.output().match(/Entering MASTER STATE/g) ?? []).length >= n, 20_000, 'all MASTER', 200);
      if (client) load = busyWrk(client, '10.77.0.11', seconds + 3);
    }
    await sleep(1_500);
    const from = Date.now();
    await sleep(seconds * 1000);
    const to = Date.now();
    await cap.stop();
    // The sender thread's own account (since start): the largest lateness of an advert against its
    // deadline, and of that the thread's wake-up: what the capture sees, measured at the source.
    let senderLate: string | undefined;
    if (ours) {
      const v = (await ours.status()).vrrp;
      const mx = (k: 'sender_max_late_us' | 'sender_max_wake_late_us') => Math.max(...v.map((x) => x[k] ?? Number.NaN)) / 1000;
      senderLate = `sender thread's own max lateness ${mx('sender_max_late_us').toFixed(2)} ms (wake-up ${mx('sender_max_wake_late_us').toFixed(2)} ms)`;
    }
    const rps = load ? (await load).rps : undefined;
    return { ...deviations(cap.text(), a.ipv4!, vrids, 1000, from, to), ...(rps !== undefined ? { rps } : {}), ...(senderLate ? { senderLate } : {}) };
  });
}

interface OneRep { ours: { idle: Dev; load: Dev; rps: number }; theirsIdle: Dev }

async function oneInstance(impl: Impl, seconds: number, rt: Rt): Promise<{ idle: Dev; load?: Dev; rps?: number }> {
  return withLab(async (lab: Lab) => {
    const [cl, r1, r2, a, p] = await Promise.all([
      lab.addHost('cl', { ipv4: '10.77.0.100/24' }),
      lab.addHost('r1', { ipv4: '10.77.0.21/24' }),
      lab.addHost('r2', { ipv4: '10.77.0.22/24' }),
      lab.addHost('da', { ipv4: '10.77.0.11/24' }),
      lab.addHost('p', { ipv4: '10.77.0.12/24' }),
    ]);
    const cap = await startTcpdump(p, 'ip proto 112', { args: ['-tt'] });
    if (impl === 'keepalive-ts') {
      for (const h of [cl, a]) await tuneForLoad(h);
      await Promise.all([startNginx(r1, { port: 80, body: 'r1', tmpDir: lab.tmpDir }), startNginx(r2, { port: 80, body: 'r2', tmpDir: lab.tmpDir })]);
      const svc = virtualServerToml({ address: VIP, port: 80, reals: [{ ip: '10.77.0.21', port: 80 }, { ip: '10.77.0.22', port: 80 }] });
      const d = await startDirector(lab, a, directorToml({ routerId: 'da', priority: 150, vips: [`${VIP}/24`], advertInt: 0.1, extra: svc }).replace('metrics_listen = ""', `metrics_listen = ""\n${oursRt(rt)}`), { args: PROD_LOG_ARGS });
      await waitFor(async () => (await d.instance()).state === 'MASTER' && (await d.status()).virtual_servers[0]!.real_servers.every((r) => r.up), 10_000, 'serving');
    } else {
      const conf = `global_defs {\n  router_id da\n  vrrp_version 3\n  enable_script_security\n${theirsRt(rt)}\n}\nvrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 150\n  advert_int 0.1\n  virtual_ipaddress {\n    ${VIP}/24\n  }\n}\n`;
      const k = await startKeepalived(a, conf, lab);
      await waitFor(async () => /Entering MASTER STATE/.test(k.output()), 10_000, 'MASTER');
    }
    await sleep(1_000);
    const i0 = Date.now();
    await sleep(seconds * 1000);
    const i1 = Date.now();
    let load: Dev | undefined;
    let rps: number | undefined;
    if (impl === 'keepalive-ts') {
      const l0 = Date.now();
      const w = await runWrk(cl, `http://${VIP}/`, { threads: 1, conns: 200, seconds });
      const l1 = Date.now();
      rps = w.rps;
      await sleep(300);
      await cap.stop();
      load = deviations(cap.text(), a.ipv4!, [51], 100, l0 + 500, l1 - 500);
    } else {
      await cap.stop();
    }
    return { idle: deviations(cap.text(), a.ipv4!, [51], 100, i0, i1), load, rps };
  });
}

async function runJitter(ctx: BenchContext): Promise<BenchmarkResult> {
  const n = Number(ctx.params.instances ?? 100);
  const seconds = Number(ctx.params.seconds ?? 20);
  const manyOurs: Dev[] = [];
  const manyTheirs: Dev[] = [];
  const withBusy = (ctx.params.busy ?? '1') !== '0';
  const manyBusy: Array<Dev & { rps?: number }> = [];
  const manyBusyTheirs: Array<Dev & { rps?: number }> = [];
  const one: OneRep[] = [];
  const rt = rtParam(ctx, 'jitter');
  for (let i = 0; i < ctx.runs; i++) {
    const order: Impl[] = i % 2 === 0 ? ['keepalive-ts', 'keepalived'] : ['keepalived', 'keepalive-ts'];
    for (const impl of order) {
      const d = await many(impl, n, seconds, rt);
      ctx.log(`rep ${i + 1} ${impl} ${n} instances: deviation p50 ${d.p50.toFixed(2)} p99 ${d.p99.toFixed(2)} max ${d.max.toFixed(2)} ms (${d.n} intervals, ${d.missing} instances without adverts)${d.senderLate ? `; ${d.senderLate}` : ''}${d.stalls ? `; ${d.stalls}` : ''}`);
      (impl === 'keepalive-ts' ? manyOurs : manyTheirs).push(d);
    }
    if (withBusy) {
      for (const impl of order) {
        const b = await many(impl, n, seconds, rt, true);
        ctx.log(`rep ${i + 1} ${impl}${impl === 'keepalived' ? ' + HAProxy' : ''} ${n} instances + ${BUSY_CHECKS} HTTP_GET checks + wrk (${b.rps?.toFixed(0)} req/s): deviation p50 ${b.p50.toFixed(2)} p99 ${b.p99.toFixed(2)} max ${b.max.toFixed(2)} ms (${b.n} intervals, ${b.missing} instances without adverts)${b.senderLate ? `; ${b.senderLate}` : ''}${b.stalls ? `; ${b.stalls}` : ''}`);
        (impl === 'keepalive-ts' ? manyBusy : manyBusyTheirs).push(b);
      }
    }
    const rec: Partial<OneRep> = {};
    for (const impl of order) {
      const r = await oneInstance(impl, Math.max(5, Math.round(seconds / 2)), rt);
      if (impl === 'keepalive-ts') rec.ours = { idle: r.idle, load: r.load!, rps: r.rps! };
      else rec.theirsIdle = r.idle;
      ctx.log(`rep ${i + 1} ${impl} 1 instance @0.1 s: idle p99 ${r.idle.p99.toFixed(2)} max ${r.idle.max.toFixed(2)} ms${r.load ? `; under wrk (${r.rps!.toFixed(0)} req/s) p99 ${r.load.p99.toFixed(2)} max ${r.load.max.toFixed(2)} ms` : ''}`);
    }
    one.push(rec as OneRep);
  }
  const fig = (figure: string, ours: number[], theirs: number[], theory?: string, limit?: number): Figure => ({ figure, unit: 'ms', better: 'lower', ours, theirs, decimals: 2, ...(theory ? { theory } : {}), ...(limit !== undefined ? { limit } : {}) });
  return {
    figures: [
      fig(`${n} instances @1 s: advert interval deviation p50`, manyOurs.map((d) => d.p50), manyTheirs.map((d) => d.p50), '0'),
      fig(`${n} instances @1 s: deviation p99`, manyOurs.map((d) => d.p99), manyTheirs.map((d) => d.p99), undefined, 1),
      fig(`${n} instances @1 s: deviation max`, manyOurs.map((d) => d.max), manyTheirs.map((d) => d.max), '< 3 × 1000 + skew: nothing a backup would notice'),
      ...(manyBusy.length > 0 ? [
        fig(`${n} instances @1 s, busy (${BUSY_CHECKS} HTTP_GET checks every 1 s + wrk -c50 through the data plane on the same host): deviation p50`, manyBusy.map((d) => d.p50), manyBusyTheirs.map((d) => d.p50), 'reference: keepalived beside HAProxy doing the same checks and proxying'),
        fig(`${n} instances @1 s, busy: deviation p99`, manyBusy.map((d) => d.p99), manyBusyTheirs.map((d) => d.p99), undefined, 1),
        fig(`${n} instances @1 s, busy: deviation max`, manyBusy.map((d) => d.max), manyBusyTheirs.map((d) => d.max)),
        { figure: 'wrk throughput during the busy measurement', unit: 'req/s', better: 'higher' as const, ours: manyBusy.map((d) => d.rps ?? Number.NaN), theirs: manyBusyTheirs.map((d) => d.rps ?? Number.NaN) },
      ] : []),
      fig('1 instance @0.1 s, idle: deviation p99', one.map((r) => r.ours.idle.p99), one.map((r) => r.theirsIdle.p99)),
      fig('1 instance @0.1 s, idle: deviation max', one.map((r) => r.ours.idle.max), one.map((r) => r.theirsIdle.max)),
      fig('1 instance @0.1 s, wrk -c200 through the VIP: deviation p99', one.map((r) => r.ours.load.p99), []),
      fig('1 instance @0.1 s, wrk -c200 through the VIP: deviation max', one.map((r) => r.ours.load.max), [], '< Master_Down_Interval − 100 = 261 ms to stay safe'),
      { figure: 'wrk throughput during the loaded measurement', unit: 'req/s', better: 'higher', ours: one.map((r) => r.ours.rps), theirs: [] },
    ],
    notes: [
      rtNote(rt),
      `Capture on a passive peer (tcpdump -tt, kernel receive timestamps; checked against a capture on the director's own egress and the sender thread's own clock: they agree within 0.03 ms, so the deviation is the sender's, not the capture's), ${seconds} s per ${n}-instance measurement, ${Math.max(5, Math.round(seconds / 2))} s idle + the same under load for the 0.1 s instance. Deviation = |interval between consecutive adverts of one instance − advert_int|, pooled over all instances.`,
      'The 0.1 s loaded rows have no keepalived value: keepalived forwards virtual-server traffic with the ip_vs kernel module, which this VM does not have, so it cannot serve the VIP here. The busy 100-instance rows do: there keepalived runs beside HAProxy 2.6 on the same host, HAProxy doing what our daemon does itself (1,000 `listen` sections with `option httpchk` sending our exact request every 1 s to the same many-port nginx, `nbthread` = one per CPU = our default proxy workers, wrk -t1 -c50 through one of them).',
      `Intervals measured (ours/keepalived, ${n} instances): ${manyOurs.map((d) => d.n).join('/')} vs ${manyTheirs.map((d) => d.n).join('/')}; instances with < 2 adverts: ${manyOurs.map((d) => d.missing).join('/')} vs ${manyTheirs.map((d) => d.missing).join('/')}.`,
    ],
  };
}

export const jitter: Benchmark = {
  name: 'jitter',
  title: 'Advert jitter: 100 instances at 1 s, and 1 instance at 0.1 s under load',
  reference: 'keepalived',
  description:
    'A passive peer captures the master\'s adverts (tcpdump -tt). Deviation = |interval between consecutive adverts of one instance − advert_int|, p50/p99/max over all instances. ' +
    '(1) 100 VRRPv3 instances on one interface (VRID 1..100, advert_int 1 s), keepalive-ts vs keepalived 2.2.7 with 100 vrrp_instance blocks; (2) 1 instance at 0.1 s idle (both) and while wrk -t1 -c200 saturates the VIP through keepalive-ts\' data plane. ' +
    '(1b) the same 100 instances while the host also checks 1,000 real servers (HTTP_GET every 1 s) and proxies wrk -c50: keepalive-ts doing it itself, keepalived beside HAProxy doing it (`jitter.busy=0` skips it). ' +
    '`--param jitter.seconds=N` (default 20), `--param jitter.instances=N` (default 100), `--param jitter.rt=N` (scheduling of both sides, see the note).',
  run: runJitter,
};
