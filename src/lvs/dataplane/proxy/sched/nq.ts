/**
 * Never queue (ip_vs_nq.c): if an available server is idle (no active connections) it
 * gets the connection straight away, whatever its weight (the first idle one in list
 * order); otherwise shortest expected delay.
 */

import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import { isAvailable, pickWeightedLeast } from './common.js';
import { sedOverhead } from './sed.js';

export class NeverQueueScheduler implements Scheduler {
  readonly name = 'nq';

  pick<D extends RealServerRef>(dests: readonly D[], _ctx?: ScheduleContext): D | null {
    const idle = dests.find((d) => isAvailable(d) && d.activeConns === 0);
    return idle ?? pickWeightedLeast(dests, sedOverhead);
  }
}
