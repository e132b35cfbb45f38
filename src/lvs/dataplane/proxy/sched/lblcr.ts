/**
 * Locality-based least connection with replication (ip_vs_lblcr.c): each locality maps to
 * a *set* of servers. A connection goes to the least loaded member of the set (weighted
 * least connection); when that member is overloaded (see localityOverloaded) the least
 * loaded server overall is added to the set. When the set has more than one member and
 * has not changed for `expirationMs`, its most loaded member is dropped, so a set grows
 * under load and shrinks back when load falls. Entries idle for `expirationMs` are
 * forgotten.
 *
 * Adaptation for a proxy: the locality is the client address (see clientKey in
 * common.ts). Set members that are no longer in the destination list are pruned (the
 * kernel keeps them but never picks them because they lose IP_VS_DEST_F_AVAILABLE).
 */

import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import {
  clientKey,
  compareProducts,
  connOverhead,
  type ExpiringTable,
  LOCALITY_DEFAULT_EXPIRATION_MS,
  type LocalityOptions,
  localityOverloaded,
  makeLocalityTable,
  pickWeightedLeast,
} from './common.js';

interface LblcrEntry {
  /** Member ids, most recently added first (the kernel's list_add_rcu at the head). */
  set: string[];
  /** When the set last gained a member (set.lastmod). */
  lastMod: number;
  lastUse: number;
}

export class LocalityLeastConnectionReplicationScheduler implements Scheduler {
  readonly name = 'lblcr';
  private readonly table: ExpiringTable<LblcrEntry>;
  private readonly expirationMs: number;

  constructor(private readonly options: LocalityOptions) {
    this.table = makeLocalityTable<LblcrEntry>(options);
    this.expirationMs = options.expirationMs ?? LOCALITY_DEFAULT_EXPIRATION_MS;
  }

  /** The current server set of a client, most recently added first (for tests/status). */
  serverSet(clientAddress: string, family: 4 | 6): readonly string[] {
    return this.table.get(clientKey(clientAddress, family), this.options.now())?.set ?? [];
  }

  pick<D extends RealServerRef>(dests: readonly D[], ctx: ScheduleContext): D | null {
    const now = this.options.now();
    const key = clientKey(ctx.clientAddress, ctx.family);
    const en = this.table.get(key, now);
    if (!en) {
      const dest = pickWeightedLeast(dests, connOverhead);
      if (dest) this.table.set(key, { set: [dest.id], lastMod: now, lastUse: now });
      return dest;
    }
    en.lastUse = now;
    const byId = new Map(dests.map((d) => [d.id, d] as const));
    en.set = en.set.filter((id) => byId.has(id));
    const members = en.set.map((id) => byId.get(id)!);
    // ip_vs_dest_set_min(): the least loaded usable member.
    const min = pickWeightedLeast(members, connOverhead);
    if (members.length > 1 && now - en.lastMod > this.expirationMs) {
      const max = mostLoaded(members);
      if (max) en.set = en.set.filter((id) => id !== max.id);
    }
    if (min && !localityOverloaded(min, dests)) return min;
    const dest = pickWeightedLeast(dests, connOverhead);
    if (!dest) return null;
    if (!en.set.includes(dest.id)) {
      en.set.unshift(dest.id);
      en.lastMod = now;
    }
    return dest;
  }
}

/**
 * ip_vs_dest_set_max(): the member with the largest overhead / weight among those with
 * weight > 0 (overloaded ones included: dropping them is the point). First wins a tie.
 */
function mostLoaded(members: readonly RealServerRef[]): RealServerRef | null {
  let most: RealServerRef | null = null;
  let moh = 0;
  for (const d of members) {
    if (d.weight <= 0) continue;
    const doh = connOverhead(d);
    if (most === null || compareProducts(moh, d.weight, doh, most.weight) < 0) {
      most = d;
      moh = doh;
    }
  }
  return most;
}
