/**
 * Round robin (ip_vs_rr.c): cycle through the destinations in list order, skipping the
 * unavailable ones (weight 0 or overloaded).
 */

import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import { isAvailable } from './common.js';

export class RoundRobinScheduler implements Scheduler {
  readonly name = 'rr';
  /** The last destination picked and where it was; null = the list head (start). */
  private lastId: string | null = null;
  private lastIndex = -1;

  pick<D extends RealServerRef>(dests: readonly D[], _ctx?: ScheduleContext): D | null {
    const n = dests.length;
    if (n === 0) return null;
    const start = this.resumeIndex(dests);
    for (let k = 0; k < n; k++) {
      const idx = (start + k) % n;
      const d = dests[idx]!;
      if (isAvailable(d)) {
        this.lastId = d.id;
        this.lastIndex = idx;
        return d;
      }
    }
    return null;
  }

  /**
   * Where to continue: right after the last pick. If that destination has been removed,
   * continue at the position it held, i.e. with its successor, which is what the kernel's
   * ip_vs_rr_del_dest achieves by moving the cursor to the previous list element.
   */
  private resumeIndex(dests: readonly RealServerRef[]): number {
    if (this.lastId === null) return 0;
    const i =
      dests[this.lastIndex]?.id === this.lastId
        ? this.lastIndex
        : dests.findIndex((d) => d.id === this.lastId);
    return i >= 0 ? i + 1 : Math.min(this.lastIndex, dests.length);
  }
}
