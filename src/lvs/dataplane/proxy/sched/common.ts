/**
 * Helpers shared by the scheduler modules (and persistence): availability and overhead
 * rules, the kernel's weighted "least overhead" comparison, change detection, address
 * parsing/folding and the hash functions used by the hashing schedulers.
 */

import { formatIp, parseIp } from '../../../../util/inet.js';
import type { IpFamily, RealServerRef } from '../types.js';

/** The hash helpers live in src/lvs/hash.ts (shared with the Maglev table and the kernel path). */
export { gcd, gcdOfPositive, keyedHash32, keyedHashString } from '../../../hash.js';

/**
 * A destination may take new connections: weight > 0 and not overloaded. This is the test
 * every IPVS scheduler applies (`!(dest->flags & IP_VS_DEST_F_OVERLOAD) && weight > 0`).
 */
export function isAvailable(d: RealServerRef): boolean {
  return d.weight > 0 && !d.overloaded;
}

/**
 * ip_vs_dest_conn_overhead(): active connections cost 256 times an inactive one, because
 * an inactive (TIME_WAIT etc.) entry costs the server almost nothing.
 */
export function connOverhead(d: RealServerRef): number {
  return d.activeConns * 256 + d.inactConns;
}

/**
 * Sign of (a*b - c*d), exact for integers of any size. The kernel does this in s64;
 * JS doubles are exact only up to 2^53, so larger integer products go through BigInt.
 */
export function compareProducts(a: number, b: number, c: number, d: number): number {
  const left = a * b;
  const right = c * d;
  const exact = Math.abs(left) <= Number.MAX_SAFE_INTEGER && Math.abs(right) <= Number.MAX_SAFE_INTEGER;
  if (exact || !Number.isInteger(left) || !Number.isInteger(right)) return Math.sign(left - right);
  const diff = BigInt(a) * BigInt(b) - BigInt(c) * BigInt(d);
  return diff > 0n ? 1 : diff < 0n ? -1 : 0;
}

/**
 * The weighted least-overhead selection of ip_vs_wlc.c / ip_vs_sed.c / ip_vs_lblc.c:
 * the first eligible destination is the initial candidate, and a later one replaces it only
 * when overhead/weight is strictly smaller, compared by cross-multiplication
 * (loh * dw > doh * lw) so no division is needed. Ties keep the earlier destination.
 */
export function pickWeightedLeast<D extends RealServerRef>(dests: readonly D[], overhead: (d: D) => number): D | null {
  let least: D | null = null;
  let loh = 0;
  for (const d of dests) {
    if (!isAvailable(d)) continue;
    const doh = overhead(d);
    if (least === null || compareProducts(loh, d.weight, doh, least.weight) > 0) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/**
 * Detects changes of the destination list (identity, order or weight), standing in for
 * the kernel's add_dest/del_dest/upd_dest callbacks: stateful schedulers rebuild their
 * tables when it reports a change. Connection counters and the overload flag are not part
 * of it, exactly as the kernel does not rebuild on those.
 */
export class DestChangeDetector {
  private ids: string[] = [];
  private weights: number[] = [];
  private primed = false;

  /** True if `dests` differs from the list seen by the previous call (and remembers it). */
  changed(dests: readonly RealServerRef[]): boolean {
    let same = this.primed && dests.length === this.ids.length;
    for (let i = 0; same && i < dests.length; i++) {
      const d = dests[i]!;
      same = d.id === this.ids[i] && d.weight === this.weights[i];
    }
    if (same) return false;
    this.ids = dests.map((d) => d.id);
    this.weights = dests.map((d) => d.weight);
    this.primed = true;
    return true;
  }
}

/**
 * Parse an IPv4/IPv6 literal into network-order bytes (4 or 16). Throws on anything else. An IPv6
 * zone (fe80::1%eth0) is ignored: it names an interface, not part of the address.
 */
export function parseAddress(address: string, family: IpFamily): Uint8Array {
  const bytes = parseIp(family === 6 ? address.replace(/%.*$/, '') : address, family);
  if (!bytes) throw new TypeError(`not an IPv${family} address: ${address}`);
  return bytes;
}

/** Canonical text for 4 or 16 address bytes (IPv6: RFC 5952 compressed, lower case). */
export const formatAddress = formatIp;

/**
 * The kernel's 32-bit address fold used by sh/dh/mh/lblc/lblcr: the IPv4 address in host
 * order, or for IPv6 the XOR of its four 32-bit words.
 */
export function addressFold(address: string, family: IpFamily): number {
  const b = parseAddress(address, family);
  let fold = 0;
  for (let i = 0; i < b.length; i += 4) {
    fold ^= ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
  }
  return fold >>> 0;
}

/** Linux hash_32(): multiplicative hash by GOLDEN_RATIO_32, keeping the top `bits` bits. */
export function hash32(value: number, bits: number): number {
  return Math.imul(value >>> 0, 0x61c88647) >>> (32 - bits);
}

/** Limits of an ExpiringTable. */
export interface ExpiringTableLimits {
  /** Idle time after which an entry is gone. */
  readonly expirationMs: number;
  /** How often (on the injected clock) a full sweep runs. */
  readonly sweepIntervalMs: number;
  /** Above this many entries, a sweep also drops entries idle for `overflowIdleMs`. */
  readonly maxSize: number;
  readonly overflowIdleMs: number;
}

/**
 * Cache of locality entries (lblc/lblcr) that expire after `expirationMs` without use.
 * The kernel frees them from a periodic timer (ip_vs_lblc_check_expire every
 * CHECK_EXPIRE_INTERVAL, which also trims a table grown past max_size by dropping entries
 * idle for ENTRY_TIMEOUT); a pure module has no timer, so the sweep runs on access once
 * `sweepIntervalMs` has passed on the injected clock, and expired entries are ignored
 * between sweeps.
 */
export class ExpiringTable<E extends { lastUse: number }> {
  private readonly entries = new Map<string, E>();
  private lastSweep: number | null = null;

  constructor(private readonly limits: ExpiringTableLimits) {}

  get size(): number {
    return this.entries.size;
  }

  /** The live entry for `key` (not refreshed), sweeping expired entries when due. */
  get(key: string, now: number): E | undefined {
    if (this.lastSweep === null) this.lastSweep = now;
    if (now - this.lastSweep >= this.limits.sweepIntervalMs) this.sweep(now);
    const e = this.entries.get(key);
    if (e && now - e.lastUse >= this.limits.expirationMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  set(key: string, entry: E): void {
    this.entries.set(key, entry);
  }

  sweep(now: number): void {
    this.lastSweep = now;
    const overflowing = this.entries.size > this.limits.maxSize;
    for (const [k, e] of this.entries) {
      const idle = now - e.lastUse;
      if (idle >= this.limits.expirationMs || (overflowing && idle >= this.limits.overflowIdleMs)) {
        this.entries.delete(k);
      }
    }
  }
}

/** Marks an empty slot of a hashing scheduler's lookup table. */
export const NO_DEST = -1;

/**
 * Lookup in a hashing scheduler's table of destination indices (sh, mh), optionally with
 * the kernel's "fallback" flag: when the slot's destination is unavailable, probe further
 * slots given by `rehash(roffset)` for roffset = ihash, ihash+1, ... (mod table size) until
 * an available destination is found. Without fallback an unavailable destination means
 * no destination, so that a client is never silently moved away from its server.
 */
export function tableLookup<D extends RealServerRef>(
  dests: readonly D[],
  table: Int32Array,
  ihash: number,
  fallback: boolean,
  rehash: (roffset: number) => number,
): D | null {
  const first = table[ihash]!;
  if (first === NO_DEST) return null;
  const d = dests[first]!;
  if (isAvailable(d)) return d;
  if (!fallback) return null;
  for (let offset = 0; offset < table.length; offset++) {
    const idx = table[rehash((offset + ihash) % table.length)]!;
    if (idx === NO_DEST) break;
    const candidate = dests[idx]!;
    if (isAvailable(candidate)) return candidate;
  }
  return null;
}

/** Options of the locality-based schedulers (lblc, lblcr). */
export interface LocalityOptions {
  /** Injected clock, milliseconds. */
  readonly now: () => number;
  /**
   * Idle time after which a client's entry is forgotten (lblc/lblcr_expiration sysctl,
   * default 24 h); for lblcr also how long a server set must stay unchanged before its
   * most loaded member is dropped.
   */
  readonly expirationMs?: number;
}

/** DEFAULT_EXPIRATION of ip_vs_lblc.c / ip_vs_lblcr.c. */
export const LOCALITY_DEFAULT_EXPIRATION_MS = 24 * 60 * 60 * 1000;
/** CHECK_EXPIRE_INTERVAL: how often the kernel's garbage collection runs. */
export const LOCALITY_SWEEP_INTERVAL_MS = 60 * 1000;
/** max_size = IP_VS_LBLC_TAB_SIZE (1 << 10) * 16, and ENTRY_TIMEOUT (6 min). */
const LOCALITY_MAX_ENTRIES = 1024 * 16;
const LOCALITY_OVERFLOW_IDLE_MS = 6 * 60 * 1000;

/**
 * The is_overloaded() of ip_vs_lblc.c/ip_vs_lblcr.c (not the IPVS overload flag): a
 * cached server is abandoned when it has more active connections than its weight while
 * some server is below half its weight.
 */
export function localityOverloaded(d: RealServerRef, dests: readonly RealServerRef[]): boolean {
  return d.activeConns > d.weight && dests.some((o) => o.activeConns * 2 < o.weight);
}

/**
 * The key under which the locality schedulers cache a client. The kernel keys on the
 * packet's destination address (the cache server's "locality"); for a proxy that is
 * always the VIP, so we key on the client address instead: locality of clients, which
 * is what these schedulers give a proxy that is worth having. Canonical form, so two
 * spellings of one IPv6 address share an entry.
 */
export function clientKey(address: string, family: IpFamily): string {
  return family === 4 ? address : formatAddress(parseAddress(address, family));
}

export function makeLocalityTable<E extends { lastUse: number }>(options: LocalityOptions): ExpiringTable<E> {
  return new ExpiringTable<E>({
    expirationMs: options.expirationMs ?? LOCALITY_DEFAULT_EXPIRATION_MS,
    sweepIntervalMs: LOCALITY_SWEEP_INTERVAL_MS,
    maxSize: LOCALITY_MAX_ENTRIES,
    overflowIdleMs: LOCALITY_OVERFLOW_IDLE_MS,
  });
}
