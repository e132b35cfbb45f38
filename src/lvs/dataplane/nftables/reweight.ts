/**
 * The control loop of the connection-count schedulers (lc, wlc, sed, nq, ovf) on the kernel
 * path. Pure: from per-server connection counts and the recent rate of new connections to the
 * weights of the next period's weighted round robin.
 *
 * IPVS picks, for each new connection, the server with the least "load" (lc: 256 x active +
 * inactive; wlc: that divided by the weight; sed/nq: (active + 1) / weight). Between two counts
 * the kernel path cannot see the load change, so it water-fills: it expects E new connections
 * in the next period (the last period's count, at least 1) and shares them so that the loads
 * end level — the least loaded servers get all of them when E is small (exactly IPVS's choice
 * for a burst), and the shares approach the weights when E is large.
 *   ovf: the highest-weight server whose active connections are below its weight (IPVS).
 */
import type { SchedulerName } from '../../scheduler-names.js';

export interface LoadSample {
  readonly id: number;
  readonly weight: number;
  readonly active: number;
  readonly inactive: number;
}

/** Sum of the weights the next period's wrr gets (resolution of the shares). */
const SCALE = 1000;

/**
 * Weights by id for the next period (servers with weight <= 0 are left out); null when the
 * scheduler is not one of the control-loop ones.
 */
export function reweight(scheduler: SchedulerName, servers: readonly LoadSample[], expectedNew: number): Map<number, number> | null {
  const live = servers.filter((s) => s.weight > 0);
  if (live.length === 0) return new Map();
  if (scheduler === 'ovf') {
    let best: LoadSample | undefined;
    for (const s of live) if (s.active < s.weight && (!best || s.weight > best.weight)) best = s;
    return new Map(best ? [[best.id, 1]] : live.map((s) => [s.id, s.weight]));
  }
  // load(s) and the load one more connection adds to s.
  let load: (s: LoadSample) => number;
  let step: (s: LoadSample) => number;
  switch (scheduler) {
    case 'lc':
      load = (s) => 256 * s.active + s.inactive;
      step = () => 256;
      break;
    case 'wlc':
      load = (s) => (256 * s.active + s.inactive) / s.weight;
      step = (s) => 256 / s.weight;
      break;
    case 'sed':
    case 'nq':
      load = (s) => (s.active + 1) / s.weight;
      step = (s) => 1 / s.weight;
      break;
    default:
      return null;
  }
  const E = Math.max(1, expectedNew);
  // Water level L: sum over servers of max(0, (L - load) / step) == E. Raise L through the sorted loads.
  const sorted = live.map((s) => ({ s, load: load(s), step: step(s) })).sort((a, b) => a.load - b.load);
  let level = sorted[0]!.load;
  let inv = 0; // sum of 1/step over servers below the level
  let filled = 0;
  for (let i = 0; i < sorted.length; i++) {
    inv += 1 / sorted[i]!.step;
    const nextLoad = i + 1 < sorted.length ? sorted[i + 1]!.load : Infinity;
    // Filling up to nextLoad would take (nextLoad - level) * inv more connections.
    const need = E - filled;
    if ((nextLoad - level) * inv >= need) {
      level += need / inv;
      break;
    }
    filled += (nextLoad - level) * inv;
    level = nextLoad;
  }
  const shares = sorted.map((x) => ({ id: x.s.id, share: Math.max(0, (level - x.load) / x.step) }));
  const total = shares.reduce((a, x) => a + x.share, 0);
  const out = new Map<number, number>();
  for (const x of shares) {
    const w = Math.round((x.share / total) * SCALE);
    if (w > 0) out.set(x.id, w);
  }
  if (out.size === 0) out.set(sorted[0]!.s.id, 1);
  return out;
}
