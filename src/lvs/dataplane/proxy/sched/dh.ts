/**
 * Destination hashing (ip_vs_dh.c): a 256-bucket table maps the hash of the packet's
 * destination address to a server (one bucket per destination per round, weights ignored
 * except 0 = unavailable). It was made for transparent caches, where many destination
 * addresses pass through one virtual service.
 *
 * Adaptation: in a user-space proxy every connection's destination is the virtual service
 * address, so dh degenerates to "all traffic of a virtual service goes to one server"
 * (whichever owns the VIP's bucket), and to nothing when that server is unavailable, like
 * the kernel with a single destination address. We still hash the VIP (from the pick
 * context, or the `virtualAddress` option) so the mapping is consistent and identical on
 * both directors. Useful only as a sticky active/standby by address.
 */

import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import { addressFold, DestChangeDetector, hash32, isAvailable, NO_DEST } from './common.js';

const DH_TAB_BITS = 8;
const DH_TAB_SIZE = 1 << DH_TAB_BITS;

export interface DestinationHashingOptions {
  /** The virtual service address to hash when the pick context carries none. */
  readonly virtualAddress?: string;
}

export class DestinationHashingScheduler implements Scheduler {
  readonly name = 'dh';
  private readonly changes = new DestChangeDetector();
  private readonly buckets = new Int32Array(DH_TAB_SIZE).fill(NO_DEST);

  constructor(private readonly options: DestinationHashingOptions = {}) {}

  update(dests: readonly RealServerRef[]): void {
    if (!this.changes.changed(dests)) return;
    // ip_vs_dh_reassign(): destinations in turn, one bucket each.
    for (let i = 0; i < DH_TAB_SIZE; i++) this.buckets[i] = dests.length ? i % dests.length : NO_DEST;
  }

  pick<D extends RealServerRef>(dests: readonly D[], ctx: ScheduleContext): D | null {
    this.update(dests);
    const vip = ctx.virtualAddress ?? this.options.virtualAddress;
    if (vip === undefined) {
      throw new TypeError('dh scheduler needs the virtual address (pick context or virtualAddress option)');
    }
    const idx = this.buckets[hash32(addressFold(vip, ctx.family), DH_TAB_BITS)]!;
    if (idx === NO_DEST) return null;
    const d = dests[idx]!;
    return isAvailable(d) ? d : null;
  }
}
