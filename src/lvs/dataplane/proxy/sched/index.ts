/**
 * Scheduler registry: `createScheduler(name, options)` returns a fresh instance of one of
 * the IPVS scheduling algorithms. Each virtual service needs its own instance because
 * rr/wrr/sh/dh/mh/lblc/lblcr keep per-service state.
 */

import type { Scheduler } from '../types.js';
import { type LocalityOptions } from './common.js';
import { DestinationHashingScheduler, type DestinationHashingOptions } from './dh.js';
import { WeightedFailoverScheduler } from './fo.js';
import { LocalityLeastConnectionScheduler } from './lblc.js';
import { LocalityLeastConnectionReplicationScheduler } from './lblcr.js';
import { LeastConnectionScheduler } from './lc.js';
import { MaglevHashingScheduler, type MaglevOptions } from './mh.js';
import { NeverQueueScheduler } from './nq.js';
import { WeightedOverflowScheduler } from './ovf.js';
import { RoundRobinScheduler } from './rr.js';
import { ShortestExpectedDelayScheduler } from './sed.js';
import { SourceHashingScheduler, type SourceHashingOptions } from './sh.js';
import { WeightedLeastConnectionScheduler } from './wlc.js';
import { WeightedRoundRobinScheduler } from './wrr.js';

export { SCHEDULER_NAMES, isSchedulerName, type SchedulerName } from '../../../scheduler-names.js';
import type { SchedulerName } from '../../../scheduler-names.js';

/**
 * Options for every scheduler in one bag (config code need not know which applies):
 * `fallback`/`port` for sh and mh (sh-fallback, sh-port, mh-fallback, mh-port),
 * `tableSize` for mh, `virtualAddress` for dh, `now`/`expirationMs` for lblc and lblcr.
 */
export interface SchedulerOptions
  extends SourceHashingOptions,
    MaglevOptions,
    DestinationHashingOptions,
    Partial<LocalityOptions> {}

export function createScheduler(name: SchedulerName, options: SchedulerOptions = {}): Scheduler {
  switch (name) {
    case 'rr':
      return new RoundRobinScheduler();
    case 'wrr':
      return new WeightedRoundRobinScheduler();
    case 'lc':
      return new LeastConnectionScheduler();
    case 'wlc':
      return new WeightedLeastConnectionScheduler();
    case 'sed':
      return new ShortestExpectedDelayScheduler();
    case 'nq':
      return new NeverQueueScheduler();
    case 'sh':
      return new SourceHashingScheduler(options);
    case 'dh':
      return new DestinationHashingScheduler(options);
    case 'mh':
      return new MaglevHashingScheduler(options);
    case 'lblc':
      return new LocalityLeastConnectionScheduler(localityOptions(name, options));
    case 'lblcr':
      return new LocalityLeastConnectionReplicationScheduler(localityOptions(name, options));
    case 'fo':
      return new WeightedFailoverScheduler();
    case 'ovf':
      return new WeightedOverflowScheduler();
  }
}

/** The locality schedulers expire entries, so they must be handed the daemon's clock. */
function localityOptions(name: string, options: SchedulerOptions): LocalityOptions {
  if (!options.now) throw new TypeError(`${name} scheduler needs a clock (options.now)`);
  return { now: options.now, expirationMs: options.expirationMs };
}

export {
  DestinationHashingScheduler,
  LeastConnectionScheduler,
  LocalityLeastConnectionReplicationScheduler,
  LocalityLeastConnectionScheduler,
  MaglevHashingScheduler,
  NeverQueueScheduler,
  RoundRobinScheduler,
  ShortestExpectedDelayScheduler,
  SourceHashingScheduler,
  WeightedFailoverScheduler,
  WeightedLeastConnectionScheduler,
  WeightedOverflowScheduler,
  WeightedRoundRobinScheduler,
};
