/**
 * Per-destination counter history kept by the virtual-server manager, whatever the data plane
 * (pure: no I/O, the caller passes the time).
 *
 * CounterCarry makes counters monotonic per key (a service, or a service's real server) for as
 * long as the manager knows the key: a data plane may stop reporting a destination that left the
 * pool (the proxy forgets it once its last connection closes) and start it again from 0 when it
 * comes back; the nftables one keeps named counters per real server. Either way `status` shows
 * totals that survive a server going down and coming back: a figure lower than the last one seen
 * is taken as a restart from 0 and added to what was carried, and a key missing from a sample
 * keeps its last totals.
 *
 * RateEstimator computes ipvsadm --rate's figures (CPS, InPPS, OutPPS, InBPS, OutBPS) the way
 * the kernel's IPVS estimator does (net/netfilter/ipvs/ip_vs_est.c): every 2 s the rate over the
 * last interval moves the average by a quarter of the difference (avg += (rate - avg) / 4), a
 * moving average with a time constant of about 8 s. A sample taken sooner than 2 s after the
 * previous one is ignored for the rates; a later one weighs as 1 - (3/4)^(interval / 2 s).
 */
import type { Counters } from './dataplane/contract.js';

const FIELDS = ['conns', 'in_pkts', 'out_pkts', 'in_bytes', 'out_bytes'] as const;
type Field = (typeof FIELDS)[number];

export const ZERO_COUNTERS: Readonly<Counters> = Object.freeze({ conns: 0, in_pkts: 0, out_pkts: 0, in_bytes: 0, out_bytes: 0 });

interface CarryEntry {
  /** Last raw figures seen from the data plane. */
  raw: Counters;
  /** Added to the raw figures: what earlier runs of the counter reached. */
  base: Record<Field, number>;
  totals: Counters;
}

export class CounterCarry {
  readonly #entries = new Map<string, CarryEntry>();

  /**
   * Records the data plane's figures for `key` (undefined: not reported this time) and returns
   * the monotonic totals (the carry's own object: read it, do not change it; a new object whenever
   * they change). Packet fields stay null while the data plane reports null (it never sees packets)
   * and no earlier figure exists.
   */
  observe(key: string, reported: Counters | undefined): Readonly<Counters> {
    const e = this.#entries.get(key);
    if (!reported) return e ? e.totals : ZERO_COUNTERS;
    // Unchanged since the last poll (most services, most of the time): nothing to allocate.
    if (e && reported.conns === e.raw.conns && reported.in_bytes === e.raw.in_bytes && reported.out_bytes === e.raw.out_bytes
      && reported.in_pkts === e.raw.in_pkts && reported.out_pkts === e.raw.out_pkts) return e.totals;
    // Only the counters (a DestStats carries more).
    const raw: Counters = { conns: reported.conns, in_pkts: reported.in_pkts, out_pkts: reported.out_pkts, in_bytes: reported.in_bytes, out_bytes: reported.out_bytes };
    if (!e) {
      const entry: CarryEntry = { raw: { ...raw }, base: { conns: 0, in_pkts: 0, out_pkts: 0, in_bytes: 0, out_bytes: 0 }, totals: { ...raw } };
      this.#entries.set(key, entry);
      return entry.totals;
    }
    const totals: Counters = { ...e.totals };
    for (const f of FIELDS) {
      const now = raw[f];
      const last = e.raw[f];
      if (now === null) {
        // Unknown now: keep what was known (null stays null).
        continue;
      }
      if (last !== null && now < last) e.base[f] += last;
      totals[f] = e.base[f] + now;
    }
    e.raw = raw;
    e.totals = totals;
    return totals;
  }

  /** The totals of `key` without a new observation. */
  get(key: string): Counters | undefined {
    const e = this.#entries.get(key);
    return e ? { ...e.totals } : undefined;
  }

  /** Forgets keys no longer wanted (a real server or service removed by a reload). */
  retain(keep: (key: string) => boolean): void {
    for (const k of [...this.#entries.keys()]) if (!keep(k)) this.#entries.delete(k);
  }
}

/** ipvsadm --rate's columns, per second. Null where the counter is unknown (packets of the proxy's TCP). */
export interface Rates {
  cps: number;
  in_pps: number | null;
  out_pps: number | null;
  in_bps: number;
  out_bps: number;
}

export const ZERO_RATES: Readonly<Rates> = { cps: 0, in_pps: 0, out_pps: 0, in_bps: 0, out_bps: 0 };

/** The kernel estimator's period and weight. */
export const RATE_PERIOD_MS = 2000;
const RATE_WEIGHT = 0.25;

interface RateEntry {
  at: number;
  /** The totals of the last sample used (the caller's object: totals are never changed in place). */
  last: Readonly<Counters>;
  avg: Record<Field, number | null>;
  /** Every average is 0 or null: an unchanged sample leaves it so. */
  still: boolean;
}

const RATE_OF: Record<Field, keyof Rates> = { conns: 'cps', in_pkts: 'in_pps', out_pkts: 'out_pps', in_bytes: 'in_bps', out_bytes: 'out_bps' };

export class RateEstimator {
  readonly #entries = new Map<string, RateEntry>();

  /**
   * Feeds monotonic totals of `key` at time `now` (ms). Returns true when `key` is at rest: the
   * same totals as at its previous sample and every rate 0 (a first sample is not at rest).
   */
  sample(key: string, totals: Readonly<Counters>, now: number): boolean {
    const e = this.#entries.get(key);
    if (!e) {
      this.#entries.set(key, {
        at: now,
        last: totals,
        avg: { conns: 0, in_pkts: totals.in_pkts === null ? null : 0, out_pkts: totals.out_pkts === null ? null : 0, in_bytes: 0, out_bytes: 0 },
        still: true,
      });
      return false;
    }
    const dt = now - e.at;
    const same = totals === e.last || FIELDS.every((f) => totals[f] === e.last[f]);
    if (dt < RATE_PERIOD_MS) return same && e.still;
    // The common case with many idle services: the very same totals as last time (CounterCarry
    // returns its own object until they change) and rates at 0: nothing moves but the time.
    if (same && e.still) {
      e.at = now;
      return true;
    }
    const w = 1 - (1 - RATE_WEIGHT) ** (dt / RATE_PERIOD_MS);
    for (const f of FIELDS) {
      const cur = totals[f];
      const prev = e.last[f];
      if (cur === null || prev === null) {
        e.avg[f] = cur === null ? null : e.avg[f] ?? 0;
        continue;
      }
      const rate = (Math.max(0, cur - prev) * 1000) / dt;
      const avg = e.avg[f] ?? 0;
      const next = avg + (rate - avg) * w;
      // A decayed average far below what rates() shows (whole units) is 0: the entry can go still.
      e.avg[f] = Math.abs(next) < 1e-3 ? 0 : next;
    }
    e.at = now;
    e.last = totals;
    e.still = FIELDS.every((f) => !e.avg[f]);
    return same && e.still;
  }

  /** The estimated rates of `key`, rounded as ipvsadm shows them (whole units per second). */
  rates(key: string): Rates {
    const e = this.#entries.get(key);
    if (!e) return { ...ZERO_RATES };
    const out = { ...ZERO_RATES } as Record<keyof Rates, number | null>;
    for (const f of FIELDS) {
      const v = e.avg[f];
      out[RATE_OF[f]] = v === null ? null : Math.round(v);
    }
    return out as unknown as Rates;
  }

  retain(keep: (key: string) => boolean): void {
    for (const k of [...this.#entries.keys()]) if (!keep(k)) this.#entries.delete(k);
  }
}
