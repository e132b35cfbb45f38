/**
 * The Maglev lookup table (Eisenbud et al., NSDI'16 section 3.4; ip_vs_mh.c), shared by the
 * proxy's mh scheduler and the nftables rule builder (which loads it as a map): every
 * destination has a preference permutation of the table's slots (offset and skip from two keyed
 * hashes of its key); destinations take turns claiming their next preferred free slot until the
 * table is full. When a destination is added or removed most slots keep their owner, so only
 * about 1/N of the clients move. Pure: the same destinations, size and seed give the same table
 * on every director.
 *
 * As in the kernel, weights become "turns" per round: weight / gcd, shifted right so the largest
 * needs at most MH_TAB_BITS bits (a few huge weights do not dominate the build); a destination of
 * weight 0 claims no slot. Callers that want the kernel's "quiescing does not reshuffle" (build
 * from dest->last_weight) pass the last non-zero weight instead of 0.
 */

import { gcdOfPositive, isPrime, keyedHashString } from './hash.js';

/** A prime; Katran and Envoy use it too. More than 100 slots per destination keep imbalance near 1 %. */
export const MAGLEV_DEFAULT_TABLE_SIZE = 65537;
/** Largest table accepted (a prime; a 2^17-entry nftables map still loads in well under a second). */
export const MAGLEV_MAX_TABLE_SIZE = 131071;
/** Marks a slot owned by nobody (no destination has a positive weight). */
export const MAGLEV_EMPTY = -1;

/** IP_VS_MH_TAB_BITS with the default CONFIG_IP_VS_MH_TAB_INDEX (12 / 2). */
const MH_TAB_BITS = 6;
/** The two hash keys of the permutation (generate_hash_secret() in ip_vs_mh.c). */
const HASH1 = 2654435761;
const HASH2 = 2654446892;

export interface MaglevDest {
  /** Stable identity of the destination (its endpoint text); the permutation derives from it. */
  readonly key: string;
  readonly weight: number;
}

/** Position of the highest set bit, 1-based (the kernel's fls()). */
function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

/** Why `size` cannot be a Maglev table size, or null when it can. */
export function maglevSizeProblem(size: number): string | null {
  if (!Number.isInteger(size) || size < 2 || size > MAGLEV_MAX_TABLE_SIZE) return `must be a whole number 2..${MAGLEV_MAX_TABLE_SIZE}`;
  if (!isPrime(size)) return 'must be a prime (the permutation of a slot list is only complete for a prime size)';
  return null;
}

/**
 * The lookup table: slot -> index into `dests` (MAGLEV_EMPTY when no destination has a positive
 * weight). `seed` varies the permutations (0 = the historical table of this project's mh).
 * Throws RangeError for a bad size or more destinations than slots.
 */
export function maglevTable(dests: readonly MaglevDest[], size: number = MAGLEV_DEFAULT_TABLE_SIZE, seed = 0): Int32Array {
  const problem = maglevSizeProblem(size);
  if (problem) throw new RangeError(`Maglev table size ${size} ${problem}`);
  if (dests.length > size) throw new RangeError(`Maglev: more destinations (${dests.length}) than table slots (${size})`);
  const M = size;
  const table = new Int32Array(M).fill(MAGLEV_EMPTY);
  const weights = dests.map((d) => d.weight);
  const g = gcdOfPositive(weights);
  if (g < 1) return table;
  const maxWeight = Math.max(...weights);
  const rshift = Math.max(0, fls(Math.floor(maxWeight / g)) - MH_TAB_BITS);
  const n = dests.length;
  const next = new Array<number>(n);
  const skip = new Array<number>(n);
  const turns = new Array<number>(n);
  const k1 = (HASH1 ^ seed) >>> 0;
  const k2 = (HASH2 ^ seed) >>> 0;
  for (let i = 0; i < n; i++) {
    const key = dests[i]!.key;
    next[i] = keyedHashString(key, k1) % M;
    skip[i] = (keyedHashString(key, k2) % (M - 1)) + 1;
    const w = weights[i]!;
    turns[i] = w > 0 ? Math.floor(w / g) >>> rshift || 1 : 0;
  }
  const taken = new Uint8Array(M);
  let filled = 0;
  // Round after round, each destination claims `turns` slots, each the next free slot of its
  // permutation (offset, offset+skip, offset+2*skip, ... mod M; M prime makes it a full
  // permutation). g >= 1 guarantees some destination has turns >= 1.
  while (filled < M) {
    for (let i = 0; i < n && filled < M; i++) {
      for (let t = 0; t < turns[i]! && filled < M; t++) {
        let c = next[i]!;
        while (taken[c]) {
          c += skip[i]!;
          if (c >= M) c -= M;
        }
        next[i] = c;
        taken[c] = 1;
        table[c] = i;
        filled++;
      }
    }
  }
  return table;
}
