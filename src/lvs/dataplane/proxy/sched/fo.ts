/**
 * Weighted failover (ip_vs_fo.c): always the available destination with the highest
 * weight; the first one in the list wins a tie. Lower-weight servers are standbys that
 * only receive traffic when every higher-weight one is quiescent, removed or overloaded.
 */

import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import { isAvailable } from './common.js';

export class WeightedFailoverScheduler implements Scheduler {
  readonly name = 'fo';

  pick<D extends RealServerRef>(dests: readonly D[], _ctx?: ScheduleContext): D | null {
    let best: D | null = null;
    for (const d of dests) {
      if (isAvailable(d) && (best === null || d.weight > best.weight)) best = d;
    }
    return best;
  }
}
