/**
 * Least connection (ip_vs_lc.c): the available destination with the smallest connection
 * overhead (activeconns * 256 + inactconns); weights only matter as 0 = quiescent.
 * Ties go to the earlier destination in the list.
 */

import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import { connOverhead, isAvailable } from './common.js';

export class LeastConnectionScheduler implements Scheduler {
  readonly name = 'lc';

  pick<D extends RealServerRef>(dests: readonly D[], _ctx?: ScheduleContext): D | null {
    let least: D | null = null;
    let loh = 0;
    for (const d of dests) {
      if (!isAvailable(d)) continue;
      const doh = connOverhead(d);
      if (least === null || doh < loh) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
}
