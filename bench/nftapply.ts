// Kernel data plane: time from a pool change to the rule committed in the kernel.
//
// An NftablesDataplane runs in a director namespace (test/netns/fixtures/nft-driver.ts) and takes
// pool changes (a weight flips, as a health check or `keepalive-ts weight` would do); each call
// returns once the transaction is committed, and the driver measures call -> commit. Ours: the
// transactions go through libnftables in-process (the N-API addon, on the libuv thread pool). The
// reference: the same data plane sending the same transactions to an `nft -f -` child process.
// Sizes: one DR service with 2 real servers; one of 100 DR services with 2 real servers each
// (the 99 others untouched); a NAT service; a Maglev (mh) table of 65,537 slots. The first
// transaction (creating 100 services) is reported too.
import { startNftDriver, type RemoteNftDataplane } from '../test/lib/nft-remote.js';
import { pool, svcSpec } from '../test/lib/nft-lab.js';
import type { ServiceSpec } from '../src/lvs/dataplane/contract.js';
import { SHARD_SERVICES } from '../src/lvs/dataplane/nftables/ruleset.js';
import { withLab, type Lab, type LabHost } from './lab.js';
import type { Benchmark, BenchContext, BenchmarkResult, Figure } from './run.js';

type Impl = 'libnftables' | 'nft';

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : Number.NaN;
}

async function measure(lab: Lab, d: LabHost, impl: Impl, changes: number): Promise<Record<string, number>> {
  const dp: RemoteNftDataplane = await startNftDriver(lab, d, { transport: impl });
  const out: Record<string, number> = {};
  try {
    const one = svcSpec({ kind: 'DR', scheduler: 'wrr', address: '10.77.0.50' });
    const many: ServiceSpec[] = Array.from({ length: 100 }, (_, i) => svcSpec({ kind: 'DR', scheduler: 'wrr', address: '10.77.0.50', ports: [[1000 + i, 1000 + i]] }));
    const nat = svcSpec({ kind: 'NAT', scheduler: 'wrr', address: '10.77.0.50', ports: [[8080, 8080]] });
    const p = (w: number) => pool([['10.77.0.21', 0, 1], ['10.77.0.22', 0, w]]);
    const pn = (w: number) => pool([['10.77.0.21', 80, 1], ['10.77.0.22', 80, w]]);
    // The first transaction: 100 services with their pools, served.
    await dp.configure(many);
    const t0 = performance.now();
    for (const s of many) {
      await dp.setPool(s.key, p(1));
      await dp.serve(s.key);
    }
    out.create100 = performance.now() - t0;
    const single: number[] = [];
    const in100: number[] = [];
    const natL: number[] = [];
    for (let i = 0; i < changes; i++) {
      await dp.setPool(many[i % many.length]!.key, p(1 + (i % 3)));
      in100.push(dp.lastMs);
    }
    await dp.configure([one, nat]);
    await dp.setPool(one.key, p(1));
    await dp.serve(one.key);
    await dp.setPool(nat.key, pn(1));
    await dp.serve(nat.key);
    for (let i = 0; i < changes; i++) {
      await dp.setPool(one.key, p(1 + (i % 3)));
      single.push(dp.lastMs);
      await dp.setPool(nat.key, pn(1 + (i % 3)));
      natL.push(dp.lastMs);
    }
    // Maglev: a 65,537-slot table over 5 servers; then one server leaves and comes back.
    const mh = svcSpec({ kind: 'DR', scheduler: 'mh', address: '10.77.0.50', ports: [[9000, 9000]], tableSize: 65537 });
    const five = (n: number) => pool(Array.from({ length: n }, (_, i) => [`10.77.0.${21 + i}`, 0, 1] as [string, number, number]));
    await dp.configure([one, nat, mh]);
    await dp.setPool(mh.key, five(5));
    out.mhLoad = dp.lastMs;
    await dp.serve(mh.key);
    const mhL: number[] = [];
    for (let i = 0; i < Math.max(10, changes / 10); i++) {
      await dp.setPool(mh.key, five(i % 2 === 0 ? 4 : 5));
      mhL.push(dp.lastMs);
    }
    out.mhP50 = quantile(mhL, 0.5);
    out.singleP50 = quantile(single, 0.5);
    out.singleP99 = quantile(single, 0.99);
    out.in100P50 = quantile(in100, 0.5);
    out.in100P99 = quantile(in100, 0.99);
    out.natP50 = quantile(natL, 0.5);
    out.natP99 = quantile(natL, 0.99);
    await dp.close();
  } finally {
    await dp.proc.kill('SIGTERM');
  }
  return out;
}

/**
 * Many DR services at once (ours only): configure(n), then every pool and every serve sent
 * concurrently (the data plane coalesces them into a few transactions), each phase timed from
 * the first call to the last answer. The kernel finds sets by name with a linear walk of their
 * table, so this is what shows the services spread over shard tables (ruleset.ts SHARD_SERVICES).
 */
export async function measureMany(lab: Lab, d: LabHost, n: number): Promise<{ configure: number; pools: number; serve: number; total: number; tables: number }> {
  const dp: RemoteNftDataplane = await startNftDriver(lab, d, { transport: 'libnftables' });
  try {
    const specs: ServiceSpec[] = Array.from({ length: n }, (_, i) => svcSpec({ kind: 'DR', scheduler: 'wrr', address: `10.77.${Math.floor(i / 50_000)}.50`, ports: [[1000 + (i % 50_000), 1000 + (i % 50_000)]] }));
    const p = pool([['10.77.0.21', 0, 1], ['10.77.0.22', 0, 1]]);
    // Bounded concurrency: one control connection per call.
    const all = async (f: (s: ServiceSpec) => Promise<void>) => {
      for (let i = 0; i < specs.length; i += 500) await Promise.all(specs.slice(i, i + 500).map(f));
    };
    const t0 = performance.now();
    await dp.configure(specs);
    const t1 = performance.now();
    await all((s) => dp.setPool(s.key, p));
    const t2 = performance.now();
    await all((s) => dp.serve(s.key));
    const t3 = performance.now();
    // `nft list tables` (1.0.6) takes long beside a ruleset this size: best effort.
    const tables = await d.exec(['/usr/sbin/nft', 'list', 'tables'], { timeoutMs: 300_000 }).then((r) => r.stdout.split('\n').filter((l) => /keepalive_ts/.test(l)).length, () => Number.NaN);
    await dp.close();
    return { configure: t1 - t0, pools: t2 - t1, serve: t3 - t2, total: t3 - t0, tables };
  } finally {
    await dp.proc.kill('SIGTERM');
  }
}

async function runNftApply(ctx: BenchContext): Promise<BenchmarkResult> {
  const changes = Number(ctx.params.changes ?? 200);
  // `nftapply.many`: DR services set up at once (0 skips).
  const manyN = Number(ctx.params.many ?? 10_000);
  const many: Array<Awaited<ReturnType<typeof measureMany>>> = [];
  const recs: Array<{ impl: Impl; r: Record<string, number> }> = [];
  await withLab(async (lab) => {
    const [d] = await Promise.all([lab.addHost('d', { ipv4: '10.77.0.11/24' }), lab.addHost('r1', { ipv4: '10.77.0.21/24' }), lab.addHost('r2', { ipv4: '10.77.0.22/24' })]);
    await d!.exec(['sh', '-ec', 'ip addr add 10.77.0.50/24 dev eth0\nsysctl -qw net.ipv4.ip_forward=1']);
    for (let rep = 0; rep < ctx.runs; rep++) {
      const order: Impl[] = rep % 2 === 0 ? ['libnftables', 'nft'] : ['nft', 'libnftables'];
      for (const impl of order) {
        const r = await measure(lab, d!, impl, changes);
        recs.push({ impl, r });
        ctx.log(`rep ${rep + 1} ${impl.padEnd(11)} ${Object.entries(r).map(([k, v]) => `${k} ${v.toFixed(2)} ms`).join(', ')}`);
      }
      if (manyN > 0) {
        const m = await measureMany(lab, d!, manyN);
        many.push(m);
        ctx.log(`rep ${rep + 1} ${manyN} DR services: configure ${m.configure.toFixed(0)} ms, pools ${m.pools.toFixed(0)} ms, serve ${m.serve.toFixed(0)} ms, total ${m.total.toFixed(0)} ms (${m.tables} tables)`);
      }
    }
  });
  const vals = (impl: Impl, k: string) => recs.filter((x) => x.impl === impl).map((x) => x.r[k]!);
  const fig = (figure: string, k: string, target?: number, theory?: string): Figure => ({
    figure,
    unit: 'ms',
    better: 'lower',
    decimals: 2,
    ours: vals('libnftables', k),
    theirs: vals('nft', k),
    ...(target !== undefined ? { target } : {}),
    ...(theory ? { theory } : {}),
  });
  return {
    figures: [
      fig('pool change -> committed, 1 DR service, p50', 'singleP50', undefined, 'goal: within 10 ms of the change'),
      fig('pool change -> committed, 1 DR service, p99', 'singleP99'),
      fig('pool change -> committed, 1 of 100 DR services, p50', 'in100P50'),
      fig('pool change -> committed, 1 of 100 DR services, p99', 'in100P99'),
      fig('pool change -> committed, NAT service, p50', 'natP50'),
      fig('pool change -> committed, NAT service, p99', 'natP99'),
      fig('100 DR services created and served (200 transactions)', 'create100'),
      fig('mh: first load of a 65,537-slot Maglev table (5 servers)', 'mhLoad'),
      fig('mh: one of 5 servers leaves or comes back (about 1/5 of the slots change), p50', 'mhP50'),
      ...(many.length ? [
        { figure: `${manyN} DR services (2 real servers each): configure + every pool + every serve, sent at once`, unit: 'ms', better: 'lower' as const, decimals: 0, ours: many.map((m) => m.total), theirs: [],
          theory: `libnftables only. Services spread over shard tables of ${SHARD_SERVICES} (the kernel walks a table's set list by name: 10,000 services in one table took 375 s). Phases (configure / pools / serve, ms): ${many.map((m) => `${m.configure.toFixed(0)} / ${m.pools.toFixed(0)} / ${m.serve.toFixed(0)}, ${m.tables} tables`).join('; ')}` },
      ] : []),
    ],
    notes: [
      `Each repetition: ${changes} weight changes per case, one at a time, each timed inside the data plane's process from the setPool() call to the committed transaction (the data plane coalesces concurrent changes; here there are none). ` +
        'keepalive-ts = libnftables through the addon on the libuv thread pool; reference = the same transactions written to `/usr/sbin/nft -f -` (a child process per transaction). Both runs alternate which goes first.',
      'A change rebuilds the changed service only (the others are cached), diffs it against what the kernel has, and sends one batch: the flush and refill of the service\'s chain plus the changed verdict-map elements; connection and persistence tables are never touched.',
    ],
  };
}

export const nftapply: Benchmark = {
  name: 'nftapply',
  title: 'Kernel data plane: time from a pool change to the committed nftables transaction',
  reference: '`nft -f` process',
  description:
    'An NftablesDataplane in a director namespace takes weight changes one at a time; the time from setPool() to the committed transaction, libnftables in-process (ours) vs the same transactions through an `nft -f -` child process.',
  run: runNftApply,
};
