/**
 * Weighted overflow (ip_vs_ovf.c): the highest-weight available destination whose active
 * connections do not exceed its weight; once it has more active connections than its
 * weight, new connections overflow to the next highest weight, and so on. The weight
 * therefore acts as a connection limit. First in list order wins a tie.
 */

import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import { isAvailable } from './common.js';

export class WeightedOverflowScheduler implements Scheduler {
  readonly name = 'ovf';

  pick<D extends RealServerRef>(dests: readonly D[], _ctx?: ScheduleContext): D | null {
    let best: D | null = null;
    for (const d of dests) {
      if (!isAvailable(d) || d.activeConns > d.weight) continue;
      if (best === null || d.weight > best.weight) best = d;
    }
    return best;
  }
}
