// Connection-sync benchmark: replication lag (p50/p99) of new connections at a steady rate, and
// how long a 100,000-entry snapshot takes to reach a fresh backup.
//
// Both run in one process over loopback UDP (unicast-peer mode), with the real DataPlane worker on
// the master side: (1) a load-generator worker thread opens TCP connections to a virtual service
// on 127.0.0.1 (a local echo server is the real server) at a steady rate; the master SyncService
// turns the data plane's conn_new events into sync messages; the backup SyncService's onApplied
// hook records when each connection's entry landed. Lag = backup arrival - client connect, on
// the shared wall clock (performance.timeOrigin + now). (2) 100,000 persistence templates are
// restored into the master's data plane; a fresh backup SyncService starts, asks for a snapshot
// and the time to the complete snapshot-end is measured (last_snapshot_ms), plus the wall time.
import { createServer, type Server } from 'node:net';
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Benchmark, BenchContext, BenchmarkResult } from './run.js';
import { ProxyDataplane } from '../src/lvs/dataplane/proxy/index.js';
import type { ConnectionState, ServiceSpec } from '../src/lvs/dataplane/contract.js';
import { endpoint } from '../src/util/endpoint.js';
import { contractSpec } from '../test/lib/dataplane-contract.js';
import { SyncService, SYNC_EVENT_BATCH_MS } from '../src/sync/service.js';
import type { SyncConfig } from '../src/config/types.js';

const wall = (): number => performance.timeOrigin + performance.now();

const CONFIG: SyncConfig = { interface: 'lo', instance: 'VI_1', group: '224.0.0.81', port: 8848, ttl: 1, sync_id: 42, auth_key: 'bench-sync-key', unicast_peer: ['127.0.0.1'] };

async function freePort(kind: 'udp' | 'tcp'): Promise<number> {
  if (kind === 'udp') {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const p = s.address().port;
    await new Promise<void>((r) => s.close(() => r()));
    return p;
  }
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const p = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return p;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

/** Connects to 127.0.0.1:port `rate` times a second for `seconds`; posts [clientPort, connectedAtWallMs] pairs. */
const LOADGEN = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const { performance } = require('node:perf_hooks');
const { port, rate, seconds } = workerData;
const out = [];
const t0 = performance.now();
let n = 0;
const total = rate * seconds;
const tick = () => {
  const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
  while (n < due) {
    n++;
    const s = net.connect(port, '127.0.0.1', () => {
      out.push([s.localPort, performance.timeOrigin + performance.now()]);
      setTimeout(() => s.destroy(), 50);
    });
    s.on('error', () => {});
  }
  if (n < total) setTimeout(tick, 1);
  else setTimeout(() => parentPort.postMessage(out), 500);
};
tick();
`;

async function pairOpen(dpA: ConnectionState, dpB: ConnectionState, onApplied: ConstructorParameters<typeof Object>[0], services: readonly ServiceSpec[]) {
  const [pa, pb] = [await freePort('udp'), await freePort('udp')];
  const a = await SyncService.open({
    config: CONFIG, dataPlane: dpA, virtualServers: services,
    sender: { targets: [{ address: '127.0.0.1', port: pb }], bindAddress: '127.0.0.1' },
    receiver: { port: pa, bindAddress: '127.0.0.1', requestTargets: [{ address: '127.0.0.1', port: pb }] },
  });
  await a.setMaster(true);
  const b = await SyncService.open({
    config: CONFIG, dataPlane: dpB, onApplied: onApplied as never, virtualServers: services,
    sender: { targets: [{ address: '127.0.0.1', port: pa }], bindAddress: '127.0.0.1' },
    receiver: { port: pb, bindAddress: '127.0.0.1', requestTargets: [{ address: '127.0.0.1', port: pa }] },
  });
  return { a, b };
}

const fakeDataPlane = { onEvent: () => () => undefined, restore: async () => undefined, snapshot: async () => ({ templates: [], udpFlows: [], conns: [] }) };

async function lagRun(rate: number, seconds: number): Promise<{ p50: number; p99: number; n: number; missing: number }> {
  const echo: Server = createServer((s) => s.pipe(s).on('error', () => undefined));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const rsPort = (echo.address() as { port: number }).port;
  const vsPort = await freePort('tcp');
  const dp = new ProxyDataplane({ eventBatchMs: SYNC_EVENT_BATCH_MS });
  const arrived = new Map<number, number>();
  const spec = contractSpec('PROXY', endpoint('127.0.0.1', vsPort));
  const { a, b } = await pairOpen(dp, fakeDataPlane, (entries: readonly { kind: string; ended: boolean; client: { port: number } }[]) => {
    const now = wall();
    for (const e of entries) if (e.kind === 'conn' && !e.ended && !arrived.has(e.client.port)) arrived.set(e.client.port, now);
  }, [spec]);
  try {
    const id = spec.key;
    await dp.configure([spec]);
    await dp.setPool(id, { dests: [{ key: `127.0.0.1:${rsPort}`, endpoint: endpoint('127.0.0.1', rsPort), weight: 1 }], sorry: null });
    await dp.serve(id);
    await waitFor(() => b.status().snapshots_received >= 1, 3000);
    const w = new Worker(LOADGEN, { eval: true, workerData: { port: vsPort, rate, seconds } });
    const connected = await new Promise<Array<[number, number]>>((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    await w.terminate();
    await waitFor(() => connected.every(([p]) => arrived.has(p)), 2000);
    const lags: number[] = [];
    let missing = 0;
    for (const [port, at] of connected) {
      const got = arrived.get(port);
      if (got === undefined) missing++;
      else lags.push(got - at);
    }
    lags.sort((x, y) => x - y);
    return { p50: pct(lags, 50), p99: pct(lags, 99), n: lags.length, missing };
  } finally {
    await Promise.all([a.close(), b.close()]);
    await dp.close();
    echo.close();
  }
}

async function snapshotRun(entries: number): Promise<{ snapshotMs: number; wallMs: number; got: number }> {
  const vsPort = await freePort('tcp');
  const dp = new ProxyDataplane();
  const spec = contractSpec('PROXY', endpoint('127.0.0.1', vsPort), { persistence: { timeoutMs: 600_000, prefix: 32 } });
  const id = spec.key;
  await dp.configure([spec]);
  await dp.setPool(id, { dests: [{ key: '127.0.0.1:1', endpoint: endpoint('127.0.0.1', 1), weight: 1 }], sorry: null });
  const tpl = Array.from({ length: entries }, (_, i) => ({
    type: 'template' as const, service: id, client: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, family: 4 as const, dest: endpoint('127.0.0.1', 1), expiresInMs: 600_000,
  }));
  await dp.restore(tpl);
  const t0 = wall();
  const { a, b } = await pairOpen(dp, fakeDataPlane, () => undefined, [spec]);
  try {
    await waitFor(() => b.status().snapshots_received >= 1, 10_000);
    const wallMs = wall() - t0;
    const s = b.status();
    return { snapshotMs: s.last_snapshot_ms ?? Number.NaN, wallMs, got: s.table.templates };
  } finally {
    await Promise.all([a.close(), b.close()]);
    await dp.close();
  }
}

export const sync: Benchmark = {
  name: 'sync',
  title: 'Connection sync: replication lag and full-snapshot time',
  description:
    'Master and backup SyncService in one process over loopback UDP (unicast), the master on the real DataPlane worker. ' +
    'Lag: a load-generator thread opens TCP connections through a virtual service at a steady rate; lag = the backup applying the ' +
    'connection\'s sync entry minus the client\'s connect, on one wall clock. Snapshot: 100,000 persistence templates restored into ' +
    'the master\'s data plane; a fresh backup asks for a snapshot; time from its request to the complete snapshot-end. ' +
    'No reference implementation is measured (kernel IPVS sync has no snapshot): the targets are absolute (p99 < 50 ms, snapshot < 1 s).',
  reference: 'target',
  async run(ctx: BenchContext): Promise<BenchmarkResult> {
    const rate = Number(ctx.params.rate ?? 200);
    const seconds = Number(ctx.params.seconds ?? 5);
    const entries = Number(ctx.params.entries ?? 100_000);
    const p50: number[] = [];
    const p99: number[] = [];
    const snap: number[] = [];
    const snapWall: number[] = [];
    const rows: string[] = ['| run | conns | missing | p50 ms | p99 ms | snapshot ms | snapshot wall ms | entries received |', '|---|---|---|---|---|---|---|---|'];
    for (let i = 0; i < ctx.runs; i++) {
      const l = await lagRun(rate, seconds);
      const s = await snapshotRun(entries);
      ctx.log(`run ${i + 1}: lag p50 ${l.p50.toFixed(1)} ms p99 ${l.p99.toFixed(1)} ms (${l.n} conns, ${l.missing} missing); snapshot ${s.snapshotMs} ms (${s.got} entries, wall ${s.wallMs.toFixed(0)} ms)`);
      p50.push(l.p50);
      p99.push(l.p99);
      snap.push(s.got === entries ? s.snapshotMs : Number.NaN);
      snapWall.push(s.wallMs);
      rows.push(`| ${i + 1} | ${l.n} | ${l.missing} | ${l.p50.toFixed(1)} | ${l.p99.toFixed(1)} | ${s.snapshotMs} | ${s.wallMs.toFixed(0)} | ${s.got} |`);
    }
    const target = (v: number[]) => v.map(() => Number.NaN);
    return {
      figures: [
        { figure: `replication lag p50, ${rate} new conns/s`, unit: 'ms', better: 'lower', ours: p50, theirs: target(p50), decimals: 1, theory: `event batch ${SYNC_EVENT_BATCH_MS} ms + send` },
        { figure: `replication lag p99, ${rate} new conns/s`, unit: 'ms', better: 'lower', ours: p99, theirs: target(p99), decimals: 1, theory: 'target < 50 ms' },
        { figure: `${entries.toLocaleString('en')}-entry snapshot to a fresh backup`, unit: 'ms', better: 'lower', ours: snap, theirs: target(snap), theory: 'target < 1000 ms' },
        { figure: 'same, wall time incl. both services opening', unit: 'ms', better: 'lower', ours: snapWall, theirs: target(snapWall) },
      ],
      notes: [
        'Parameters: `--param sync.rate=200 --param sync.seconds=5 --param sync.entries=100000`. The "target" column of the reference is empty on purpose (absolute targets in the theory column).',
        'Loopback, one process: the backup shares the master\'s main thread, so the lag is an upper bound of what two directors see.',
      ],
      details: rows.join('\n'),
    };
  },
};
