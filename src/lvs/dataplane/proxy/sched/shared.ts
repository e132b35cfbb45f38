/**
 * rr and wrr when several proxy workers serve one service (each with its own SO_REUSEPORT
 * socket): the workers share one cursor, an Int32 in a SharedArrayBuffer moved with Atomics, so
 * that the service's connections as a whole follow the rr / wrr sequence, as one IPVS table
 * would (per-worker cursors would each start at the first server and only even out in the long
 * run). For a steady pool the sequence is the one of RoundRobinScheduler / WeightedRoundRobin-
 * Scheduler; after a pool change the cursor goes on where it is instead of restarting at the head.
 */

import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import { DestChangeDetector, isAvailable } from './common.js';
import { WeightedRoundRobinScheduler } from './wrr.js';

/** The next position of the shared cursor (wraps at 2^32). */
function next(cursor: Int32Array, slot: number): number {
  return Atomics.add(cursor, slot, 1) >>> 0;
}

export class SharedRoundRobinScheduler implements Scheduler {
  readonly name = 'rr';

  constructor(private readonly cursor: Int32Array, private readonly slot: number) {}

  pick<D extends RealServerRef>(dests: readonly D[], _ctx?: ScheduleContext): D | null {
    // Counting over the available servers only keeps the split even when some are skipped.
    let n = 0;
    for (const d of dests) if (isAvailable(d)) n++;
    if (n === 0) return null;
    let k = next(this.cursor, this.slot) % n;
    for (const d of dests) {
      if (!isAvailable(d)) continue;
      if (k-- === 0) return d;
    }
    return null;
  }
}

export class SharedWeightedRoundRobinScheduler implements Scheduler {
  readonly name = 'wrr';
  private readonly changes = new DestChangeDetector();
  /** One full wrr cycle for the current list, as destination indexes. */
  private cycle: number[] = [];

  constructor(private readonly cursor: Int32Array, private readonly slot: number) {}

  update(dests: readonly RealServerRef[]): void {
    if (!this.changes.changed(dests)) return;
    // The cycle of the single-table scheduler, over one period (sum of weights / their GCD).
    const plain = dests.map((d) => ({ ...d, overloaded: false }));
    const w = new WeightedRoundRobinScheduler();
    const index = new Map(plain.map((d, i) => [d, i]));
    const positive = plain.filter((d) => d.weight > 0);
    const g = positive.reduce((a, d) => gcd(a, d.weight), 0) || 1;
    const period = positive.reduce((s, d) => s + d.weight, 0) / g;
    this.cycle = [];
    for (let k = 0; k < period; k++) {
      const d = w.pick(plain);
      if (!d) break;
      this.cycle.push(index.get(d)!);
    }
  }

  pick<D extends RealServerRef>(dests: readonly D[], _ctx?: ScheduleContext): D | null {
    this.update(dests);
    const len = this.cycle.length;
    if (len === 0) return null;
    const start = next(this.cursor, this.slot) % len;
    // An overloaded server gives its turn to the next one in the cycle.
    for (let k = 0; k < len; k++) {
      const d = dests[this.cycle[(start + k) % len]!]!;
      if (!d.overloaded) return d;
    }
    return null;
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Cursor slots in the shared buffer; a service uses the slot its key hashes to. */
export const SHARED_CURSOR_SLOTS = 4096;

/** The slot of a service key (FNV-1a): two services on one slot still rotate evenly, just not in lock step. */
export function cursorSlot(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % SHARED_CURSOR_SLOTS;
}
