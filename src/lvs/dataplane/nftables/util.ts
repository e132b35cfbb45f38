/** Small pure helpers of the nftables data plane. */

export function gcdOf(values: readonly number[]): number {
  let g = 0;
  for (let v of values) {
    let a = g;
    while (v !== 0) [a, v] = [v, a % v];
    g = a;
  }
  return g;
}

/** FNV-1a over UTF-16 code units, then murmur3's fmix32: a stable 32-bit hash of a string. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
