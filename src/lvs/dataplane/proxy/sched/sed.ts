/**
 * Shortest expected delay (ip_vs_sed.c): minimise (activeconns + 1) / weight, the expected
 * delay for the new connection if the server serves its connections at a rate proportional
 * to its weight. Inactive connections are ignored.
 */

import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import { pickWeightedLeast } from './common.js';

/** ip_vs_sed_dest_overhead(): the new connection counts too, hence the + 1. */
export function sedOverhead(d: RealServerRef): number {
  return d.activeConns + 1;
}

export class ShortestExpectedDelayScheduler implements Scheduler {
  readonly name = 'sed';

  pick<D extends RealServerRef>(dests: readonly D[], _ctx?: ScheduleContext): D | null {
    return pickWeightedLeast(dests, sedOverhead);
  }
}
