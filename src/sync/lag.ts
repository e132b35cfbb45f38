/**
 * Measured replication lag of connection sync (docs/sync-protocol.md, "Lag"). Pure bookkeeping, no
 * I/O; times are milliseconds of the caller's monotonic clock (src/util/clock.ts) unless named _us.
 *
 * lag of an entry = observed on the master -> written into the backup's sync table, in three parts
 * measured where each clock lives (the directors' wall clocks are never compared):
 *   age      observed -> sent, on the master's clock, carried per entry in the v2 message;
 *   transit  sent -> received: half the round trip the master measures with lag-acks (the backup
 *            echoes an update's sequence number with how long it held it), carried in each message;
 *   local    received -> written, on the backup's clock.
 *
 *  - SentLog (master): when each recent update message was sent, by sequence number; an echo takes
 *    its entry out, so a replayed lag-ack finds nothing.
 *  - PeerRtt (master): round trips per peer (median of the last few), transit = half the largest.
 *  - LagWindow (backup): the lags of the last entries written, with p50/p99/last/max.
 */

/** Update messages remembered for echoes. At 30 messages/s, about 30 s. */
export const SENT_LOG_SIZE = 1024;
/** Entries whose lag the window keeps (p50/p99 are over these). */
export const LAG_WINDOW = 4096;
/** A peer whose last echo is older than this no longer counts for transit. */
export const PEER_STALE_MS = 30_000;
/** Round-trip samples per peer; the median of them is the peer's round trip. */
const RTT_SAMPLES = 9;

export class SentLog {
  readonly #sent = new Map<bigint, number>();
  constructor(readonly capacity = SENT_LOG_SIZE) {}

  get size(): number {
    return this.#sent.size;
  }

  /** Message `seq` left at `at`. The oldest record goes when the log is full. */
  record(seq: bigint, at: number): void {
    this.#sent.set(seq, at);
    if (this.#sent.size > this.capacity) this.#sent.delete(this.#sent.keys().next().value as bigint);
  }

  /** When `seq` was sent, removing it (one echo per message); undefined if unknown or already echoed. */
  take(seq: bigint): number | undefined {
    const at = this.#sent.get(seq);
    if (at !== undefined) this.#sent.delete(seq);
    return at;
  }
}

interface PeerSamples {
  samples: number[];
  lastAt: number;
  last: number;
}

export class PeerRtt {
  readonly #peers = new Map<string, PeerSamples>();
  /** Echoes taken. */
  samples = 0;

  /** One round trip (ms, hold time already subtracted) measured with `peer` at `now`. Negative values count as 0. */
  add(peer: string, rttMs: number, now: number): void {
    if (!Number.isFinite(rttMs)) return;
    const v = Math.max(0, rttMs);
    let p = this.#peers.get(peer);
    if (!p) {
      p = { samples: [], lastAt: now, last: v };
      this.#peers.set(peer, p);
    }
    p.samples.push(v);
    if (p.samples.length > RTT_SAMPLES) p.samples.shift();
    p.lastAt = now;
    p.last = v;
    this.samples++;
  }

  /** The round trip (median of recent samples) of the slowest peer heard from lately; null when none. */
  rttMs(now: number): number | null {
    let worst: number | null = null;
    for (const [k, p] of this.#peers) {
      if (now - p.lastAt > PEER_STALE_MS) {
        this.#peers.delete(k);
        continue;
      }
      const m = median(p.samples);
      if (worst === null || m > worst) worst = m;
    }
    return worst;
  }

  /** One-way transit estimate in us (half the round trip; null when no peer has echoed lately). */
  transitUs(now: number): number | null {
    const r = this.rttMs(now);
    return r === null ? null : (r * 1000) / 2;
  }
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The lag of one entry (ms) from its parts; null when any part is unknown. */
export function entryLagMs(ageUs: number | null | undefined, transitUs: number | null | undefined, localMs: number): number | null {
  if (ageUs === null || ageUs === undefined || transitUs === null || transitUs === undefined || !Number.isFinite(localMs)) return null;
  return ageUs / 1000 + transitUs / 1000 + Math.max(0, localMs);
}

export interface LagSummary {
  /** Over the entries in the window; null while it is empty. */
  p50_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  /** The last entry written. */
  last_ms: number | null;
  /** Entries in the window (at most LAG_WINDOW). */
  window: number;
  /** Entries written with a measured lag, since start. */
  measured: number;
  /** Entries written without one (a version-1 peer, no echo yet), since start. */
  unmeasured: number;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export class LagWindow {
  readonly #ring: Float64Array;
  #next = 0;
  #filled = 0;
  #last: number | null = null;
  measured = 0;
  unmeasured = 0;

  constructor(readonly capacity = LAG_WINDOW) {
    this.#ring = new Float64Array(capacity);
  }

  add(lagMs: number | null): void {
    if (lagMs === null || !Number.isFinite(lagMs)) {
      this.unmeasured++;
      return;
    }
    this.#ring[this.#next] = lagMs;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#filled < this.capacity) this.#filled++;
    this.#last = lagMs;
    this.measured++;
  }

  summary(): LagSummary {
    const n = this.#filled;
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    if (n === 0) return { p50_ms: null, p99_ms: null, max_ms: null, last_ms: null, window: 0, measured: this.measured, unmeasured: this.unmeasured };
    const s = this.#ring.slice(0, n).sort();
    return {
      p50_ms: r3(percentile(s, 50)),
      p99_ms: r3(percentile(s, 99)),
      max_ms: r3(s[n - 1]!),
      last_ms: r3(this.#last!),
      window: n,
      measured: this.measured,
      unmeasured: this.unmeasured,
    };
  }
}
