/**
 * Maglev hashing (ip_vs_mh.c): the lookup table is built by the shared maglevTable()
 * (src/lvs/maglev.ts, also loaded into nftables by the kernel path); a client hashes to a slot.
 * When a destination is added or removed, most slots keep their owner, so only about 1/N of the
 * clients move.
 *
 * As in the kernel:
 * - the table is built from each destination's last non-zero weight (dest->last_weight),
 *   so quiescing a server (weight 0) does not reshuffle anyone: its clients get no
 *   destination, or with `fallback` (IP_VS_SVC_F_SCHED_MH_FALLBACK) are probed elsewhere;
 * - `port` (IP_VS_SVC_F_SCHED_MH_PORT) adds the client port to the hash.
 *
 * Deviations: the table size defaults to the prime 65537 (the kernel's default is 4093,
 * configurable up to 131071), which gives finer weight resolution and less disruption;
 * and the hash is our keyed murmur-style hash over the destination id and the folded
 * client address instead of the kernel's hsiphash over (addr, port). `seed` (the service's
 * hash_seed) varies the permutations.
 */

import { MAGLEV_DEFAULT_TABLE_SIZE, MAGLEV_EMPTY, maglevSizeProblem, maglevTable } from '../../../maglev.js';
import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import { addressFold, DestChangeDetector, keyedHash32, tableLookup } from './common.js';

export const MH_DEFAULT_TABLE_SIZE = MAGLEV_DEFAULT_TABLE_SIZE;
/** The client-hash key (HASH1 of generate_hash_secret()). */
const HASH1 = 2654435761;

export interface MaglevOptions {
  /** mh-fallback: probe other slots when the hashed server is unavailable. */
  readonly fallback?: boolean;
  /** mh-port: include the client's source port in the hash. */
  readonly port?: boolean;
  /** Lookup table size; must be a prime larger than the number of destinations. */
  readonly tableSize?: number;
  /** Varies the table's permutations (the service's hash_seed). Default 0. */
  readonly seed?: number;
}

export class MaglevHashingScheduler implements Scheduler {
  readonly name = 'mh';
  private readonly size: number;
  private readonly changes = new DestChangeDetector();
  private lookup: Int32Array;
  /** dest->last_weight: the latest non-zero weight (or the weight it was added with). */
  private lastWeight = new Map<string, number>();

  constructor(private readonly options: MaglevOptions = {}) {
    this.size = options.tableSize ?? MH_DEFAULT_TABLE_SIZE;
    const problem = maglevSizeProblem(this.size);
    if (problem) throw new RangeError(`mh table size ${problem}, got ${this.size}`);
    this.lookup = new Int32Array(this.size).fill(MAGLEV_EMPTY);
  }

  update(dests: readonly RealServerRef[]): void {
    if (!this.changes.changed(dests)) return;
    if (dests.length > this.size) throw new RangeError(`mh: more destinations than table slots (${this.size})`);
    const next = new Map<string, number>();
    for (const d of dests) {
      const previous = this.lastWeight.get(d.id);
      next.set(d.id, previous === undefined || d.weight !== 0 ? d.weight : previous);
    }
    this.lastWeight = next;
    this.lookup = maglevTable(dests.map((d) => ({ key: d.id, weight: next.get(d.id)! })), this.size, this.options.seed ?? 0);
  }

  pick<D extends RealServerRef>(dests: readonly D[], ctx: ScheduleContext): D | null {
    this.update(dests);
    const port = this.options.port ? (ctx.clientPort ?? 0) : 0;
    const base = addressFold(ctx.clientAddress, ctx.family) + port;
    const slot = (offset: number): number => keyedHash32((base + offset) >>> 0, HASH1) % this.size;
    return tableLookup(dests, this.lookup, slot(0), this.options.fallback ?? false, slot);
  }
}
