/**
 * Weighted round robin, the interleaved variant of ip_vs_wrr.c: passes over the list with a
 * decreasing current weight cw (from the maximum weight down to 1 in steps of the weights'
 * GCD); each pass selects the destinations whose weight >= cw. With weights 4:3:2 a cycle
 * is A A B A B C A B C, so a heavy server's picks are spread out rather than bunched.
 */

import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import { DestChangeDetector, gcdOfPositive } from './common.js';

const HEAD = -1;

export class WeightedRoundRobinScheduler implements Scheduler {
  readonly name = 'wrr';
  private readonly changes = new DestChangeDetector();
  /** Index of the current destination, or HEAD (mark->cl). */
  private cl = HEAD;
  /** Current weight (mark->cw). */
  private cw = 0;
  /** Maximum weight less (di - 1), so the last pass runs with cw = 1 (mark->mw). */
  private mw = 0;
  /** Decreasing interval: GCD of the positive weights (mark->di). */
  private di = 1;

  update(dests: readonly RealServerRef[]): void {
    if (this.changes.changed(dests)) this.destsChanged(dests);
  }

  pick<D extends RealServerRef>(dests: readonly D[], _ctx?: ScheduleContext): D | null {
    this.update(dests);
    if (this.mw === 0) return null;
    const n = dests.length;
    const last = this.cl;
    let stop: number | null = null;
    let lastPass = false;
    let restarted = false;
    let pos = this.cl;
    // Terminates: each wrap lowers cw; after the pass with cw = 1 (at the latest one full
    // extra traversal up to `last`) it gives up, exactly as the kernel loop.
    for (;;) {
      for (pos = pos + 1; pos < n; pos++) {
        const d = dests[pos]!;
        if (!d.overloaded && d.weight >= this.cw) {
          this.cl = pos;
          return d;
        }
        if (pos === stop) {
          this.cl = pos;
          return null;
        }
      }
      pos = HEAD;
      this.cw -= this.di;
      if (this.cw <= 0) {
        this.cw = this.mw;
        // Every destination has been checked with cw = 1: all are overloaded.
        if (lastPass || last === HEAD) {
          this.cl = HEAD;
          return null;
        }
        restarted = true;
      }
      lastPass = this.cw <= this.di;
      // The first cw = 1 traversal only covered destinations after `last`; check the rest.
      if (lastPass && restarted && last !== HEAD) stop = last;
    }
  }

  /** ip_vs_wrr_dest_changed(): restart from the head, keep cw where it is when still valid. */
  private destsChanged(dests: readonly RealServerRef[]): void {
    this.cl = HEAD;
    this.di = gcdOfPositive(dests.map((d) => d.weight)) || 1;
    const maxWeight = dests.reduce((m, d) => Math.max(m, d.weight), 0);
    this.mw = maxWeight - (this.di - 1);
    if (this.cw > this.mw || this.cw === 0) this.cw = this.mw;
    else if (this.di > 1) this.cw = Math.floor(this.cw / this.di) * this.di + 1;
  }
}
