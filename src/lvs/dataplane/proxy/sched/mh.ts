/**
 * Maglev hashing (ip_vs_mh.c; Eisenbud et al., NSDI'16 section 3.4): every destination has
 * a preference permutation of the lookup table's slots (offset and skip derived from two
 * hashes of its id); destinations take turns claiming their next preferred free slot until
 * the table is full. A client hashes to a slot. When a destination is added or removed,
 * most slots keep their owner, so only about 1/N of the clients move.
 *
 * As in the kernel:
 * - weights become "turns" per round: last_weight / gcd, shifted right so the largest
 *   needs at most MH_TAB_BITS bits (keeps a few huge weights from dominating the build);
 * - the table is built from each destination's last non-zero weight (dest->last_weight),
 *   so quiescing a server (weight 0) does not reshuffle anyone: its clients get no
 *   destination, or with `fallback` (IP_VS_SVC_F_SCHED_MH_FALLBACK) are probed elsewhere;
 * - `port` (IP_VS_SVC_F_SCHED_MH_PORT) adds the client port to the hash.
 *
 * Deviations: the table size defaults to the prime 65537 (the kernel's default is 4093,
 * configurable up to 131071), which gives finer weight resolution and less disruption;
 * and the hash is our keyed murmur-style hash over the destination id and the folded
 * client address instead of the kernel's hsiphash over (addr, port).
 */

import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import {
  addressFold,
  DestChangeDetector,
  gcdOfPositive,
  keyedHash32,
  keyedHashString,
  NO_DEST,
  tableLookup,
} from './common.js';

export const MH_DEFAULT_TABLE_SIZE = 65537;
/** IP_VS_MH_TAB_BITS with the default CONFIG_IP_VS_MH_TAB_INDEX (12 / 2). */
const MH_TAB_BITS = 6;
/** The two hash keys of generate_hash_secret(). */
const HASH1 = 2654435761;
const HASH2 = 2654446892;

export interface MaglevOptions {
  /** mh-fallback: probe other slots when the hashed server is unavailable. */
  readonly fallback?: boolean;
  /** mh-port: include the client's source port in the hash. */
  readonly port?: boolean;
  /** Lookup table size; must be a prime larger than the number of destinations. */
  readonly tableSize?: number;
}

function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let f = 2; f * f <= n; f++) if (n % f === 0) return false;
  return true;
}

/** Position of the highest set bit, 1-based (the kernel's fls()). */
function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

export class MaglevHashingScheduler implements Scheduler {
  readonly name = 'mh';
  private readonly size: number;
  private readonly changes = new DestChangeDetector();
  private readonly lookup: Int32Array;
  /** dest->last_weight: the latest non-zero weight (or the weight it was added with). */
  private lastWeight = new Map<string, number>();

  constructor(private readonly options: MaglevOptions = {}) {
    this.size = options.tableSize ?? MH_DEFAULT_TABLE_SIZE;
    if (!isPrime(this.size)) throw new RangeError(`mh table size must be prime, got ${this.size}`);
    this.lookup = new Int32Array(this.size).fill(NO_DEST);
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
    this.populate(dests.map((d) => next.get(d.id)!), dests);
  }

  pick<D extends RealServerRef>(dests: readonly D[], ctx: ScheduleContext): D | null {
    this.update(dests);
    const port = this.options.port ? (ctx.clientPort ?? 0) : 0;
    const base = addressFold(ctx.clientAddress, ctx.family) + port;
    const slot = (offset: number): number => keyedHash32((base + offset) >>> 0, HASH1) % this.size;
    return tableLookup(dests, this.lookup, slot(0), this.options.fallback ?? false, slot);
  }

  /** ip_vs_mh_permutate() + ip_vs_mh_populate(). */
  private populate(weights: readonly number[], dests: readonly RealServerRef[]): void {
    const M = this.size;
    const g = gcdOfPositive(weights);
    if (g < 1) {
      this.lookup.fill(NO_DEST);
      return;
    }
    const maxWeight = Math.max(...weights);
    const rshift = Math.max(0, fls(Math.floor(maxWeight / g)) - MH_TAB_BITS);
    const n = dests.length;
    const perm = new Array<number>(n);
    const skip = new Array<number>(n);
    const turns = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const id = dests[i]!.id;
      perm[i] = keyedHashString(id, HASH1) % M;
      skip[i] = (keyedHashString(id, HASH2) % (M - 1)) + 1;
      const lw = weights[i]!;
      turns[i] = Math.floor(lw / g) >>> rshift || (lw !== 0 ? 1 : 0);
    }
    const taken = new Uint8Array(M);
    let filled = 0;
    // Round after round, each destination claims `turns` slots, each the next free slot of
    // its permutation (offset, offset+skip, offset+2*skip, ... mod M; M prime makes it a
    // full permutation). g >= 1 guarantees some destination has turns >= 1.
    while (filled < M) {
      for (let i = 0; i < n && filled < M; i++) {
        for (let t = 0; t < turns[i]! && filled < M; t++) {
          let c = perm[i]!;
          while (taken[c]) {
            c += skip[i]!;
            if (c >= M) c -= M;
          }
          perm[i] = c;
          taken[c] = 1;
          this.lookup[c] = i;
          filled++;
        }
      }
    }
  }
}
