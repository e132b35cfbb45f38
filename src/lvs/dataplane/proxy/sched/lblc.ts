/**
 * Locality-based least connection (ip_vs_lblc.c): remember which server a "locality" was
 * sent to and keep sending it there while that server is available and not overloaded
 * (see localityOverloaded); otherwise choose by weighted least connection and remember
 * the new choice. Entries idle for `expirationMs` are forgotten.
 *
 * Adaptation for a proxy: the locality is the client address, not the destination
 * address (see clientKey in common.ts), so lblc acts as a load-aware sticky scheduler.
 */

import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import {
  clientKey,
  connOverhead,
  type ExpiringTable,
  isAvailable,
  type LocalityOptions,
  localityOverloaded,
  makeLocalityTable,
  pickWeightedLeast,
} from './common.js';

interface LblcEntry {
  destId: string;
  lastUse: number;
}

export class LocalityLeastConnectionScheduler implements Scheduler {
  readonly name = 'lblc';
  private readonly table: ExpiringTable<LblcEntry>;

  constructor(private readonly options: LocalityOptions) {
    this.table = makeLocalityTable<LblcEntry>(options);
  }

  /** Number of cached client entries (for status output). */
  get entries(): number {
    return this.table.size;
  }

  pick<D extends RealServerRef>(dests: readonly D[], ctx: ScheduleContext): D | null {
    const now = this.options.now();
    const key = clientKey(ctx.clientAddress, ctx.family);
    const en = this.table.get(key, now);
    if (en) {
      en.lastUse = now;
      const cached = dests.find((d) => d.id === en.destId);
      // The kernel checks weight > 0 and its own load test here; we also honour the IPVS
      // overload flag, which every other path excludes too.
      if (cached && isAvailable(cached) && !localityOverloaded(cached, dests)) return cached;
    }
    const dest = pickWeightedLeast(dests, connOverhead);
    if (!dest) return null;
    if (en) en.destId = dest.id;
    else this.table.set(key, { destId: dest.id, lastUse: now });
    return dest;
  }
}
