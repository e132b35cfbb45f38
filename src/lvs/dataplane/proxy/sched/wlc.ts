/**
 * Weighted least connection (ip_vs_wlc.c): minimise overhead / weight, where overhead is
 * activeconns * 256 + inactconns, compared by cross-multiplication as the kernel does.
 */

import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import { connOverhead, pickWeightedLeast } from './common.js';

export class WeightedLeastConnectionScheduler implements Scheduler {
  readonly name = 'wlc';

  pick<D extends RealServerRef>(dests: readonly D[], _ctx?: ScheduleContext): D | null {
    return pickWeightedLeast(dests, connOverhead);
  }
}
