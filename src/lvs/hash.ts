/**
 * Pure 32-bit hash and integer helpers shared by the hashing schedulers (the proxy's sh/dh/mh),
 * the Maglev table (maglev.ts) and the per-service hash seed. No I/O.
 */

/** murmur3 fmix32 finaliser: full avalanche of a 32-bit value. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Keyed 32-bit hash of a 32-bit value. Stands in for the kernel's hsiphash in ip_vs_mh.c;
 * the values differ from the kernel's, which is fine since no table is shared with it.
 */
export function keyedHash32(value: number, key: number): number {
  return fmix32((fmix32((value ^ key) >>> 0) + key) >>> 0);
}

/** Keyed 32-bit hash of a string (FNV-1a over UTF-16 code units, then fmix32). */
export function keyedHashString(s: string, key: number): number {
  let h = (0x811c9dc5 ^ key) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h >>> 0);
}

export function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** GCD of the positive weights; 0 when there is none (callers decide what that means). */
export function gcdOfPositive(weights: Iterable<number>): number {
  let g = 0;
  for (const w of weights) if (w > 0) g = g > 0 ? gcd(w, g) : w;
  return g;
}

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let f = 2; f * f <= n; f++) if (n % f === 0) return false;
  return true;
}

/** Key of the default per-service hash seed (any constant; changing it moves every client). */
const SEED_KEY = 0x6b61_7473; // "kats"

/**
 * The default hash seed of a service: derived from its canonical key (e.g. "tcp/10.0.0.50:80"),
 * so every director with the same config computes the same seed, hence the same real server for a
 * client, without anyone configuring it. A u32.
 */
export function defaultHashSeed(serviceKey: string): number {
  return keyedHashString(serviceKey, SEED_KEY);
}
