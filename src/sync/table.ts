/**
 * The BACKUP director's copy of the MASTER's connection table, built from sync messages:
 * persistence templates, UDP flows and connections, each with an absolute expiry computed
 * from the relative timeout it was sent with (the two directors' clocks are not assumed to
 * agree). Ended entries are removed at once; an entry sent again (template refreshed, flow
 * re-announced) replaces the old one and its expiry.
 *
 * Full snapshots: the entries of a snapshot are applied like updates; when the
 * snapshot-end arrives and every announced entry was received, entries not refreshed since
 * the snapshot began (the peer no longer has them) are swept. An incomplete snapshot (lost
 * datagrams) sweeps nothing: stale entries then simply expire.
 *
 * Pure: no I/O, no timers; the clock is injected. Bounded by `maxEntries` (new entries beyond
 * it are refused and counted), so a buggy peer cannot exhaust memory.
 */

import type { NormalizedEntry, SyncEntry } from './types.js';

/** Lifetimes used when an entry arrives with timeout 0 ("receiver's default", as in IPVS). */
export interface SyncTableDefaults {
  /** Default 300 s (keepalived persistence_timeout default 6 min is larger; IPVS uses the service's). */
  readonly templateMs: number;
  /** Default 300 s (IPVS udp timeout). */
  readonly udpFlowMs: number;
  /** Default 900 s (IPVS tcp ESTABLISHED timeout). */
  readonly connMs: number;
}

export const DEFAULT_TABLE_DEFAULTS: SyncTableDefaults = { templateMs: 300_000, udpFlowMs: 300_000, connMs: 900_000 };

export interface SyncTableOptions {
  /** Milliseconds, monotonic preferred. */
  readonly now: () => number;
  readonly defaults?: Partial<SyncTableDefaults>;
  /** Most entries kept. Default 1,000,000. */
  readonly maxEntries?: number;
}

export interface SyncTableCounters {
  /** Entries inserted. */
  added: number;
  /** Entries replacing an existing one. */
  updated: number;
  /** Entries deleted because the peer said they ended. */
  ended: number;
  /** Entries deleted because their expiry passed. */
  expired: number;
  /** Entries deleted by a complete snapshot (the peer no longer had them). */
  swept: number;
  /** New entries refused because the table was full. */
  overflow: number;
  snapshotsComplete: number;
  /** snapshot-end whose totals did not match what arrived (datagrams lost): nothing swept. */
  snapshotsIncomplete: number;
}

export interface TableRow {
  readonly entry: NormalizedEntry;
  /** Absolute, on the table's clock. */
  readonly expiresAt: number;
}

export interface LiveEntry {
  readonly entry: NormalizedEntry;
  readonly remainingMs: number;
}

export interface TableSizes {
  templates: number;
  udpFlows: number;
  conns: number;
}

interface Row {
  entry: NormalizedEntry;
  expiresAt: number;
  /** Apply generation that last wrote the row. */
  gen: number;
}

/** Identity of an entry: kind, service and client (the real server is the value). */
export function entryKey(e: SyncEntry): string {
  const proto = e.kind === 'udp-flow' ? 'udp' : e.protocol;
  return `${e.kind}|${proto}|${e.fwmark ?? 0}|${e.virtual.address}|${e.virtual.port}|${e.client.address}|${e.client.port}`;
}

export class SyncTable {
  readonly counters: SyncTableCounters = {
    added: 0,
    updated: 0,
    ended: 0,
    expired: 0,
    swept: 0,
    overflow: 0,
    snapshotsComplete: 0,
    snapshotsIncomplete: 0,
  };
  readonly #now: () => number;
  readonly #defaults: SyncTableDefaults;
  readonly #max: number;
  readonly #rows = new Map<string, Row>();
  readonly #sizes: TableSizes = { templates: 0, udpFlows: 0, conns: 0 };
  #gen = 0;
  /** Generation at which the snapshot in progress began, and entries received in it. */
  #snapshot: { gen: number; received: number } | undefined;

  constructor(opts: SyncTableOptions) {
    this.#now = opts.now;
    this.#defaults = { ...DEFAULT_TABLE_DEFAULTS, ...opts.defaults };
    this.#max = opts.maxEntries ?? 1_000_000;
  }

  get size(): number {
    return this.#rows.size;
  }

  sizes(): TableSizes {
    return { ...this.#sizes };
  }

  /** Whether a snapshot is being received (a 'snapshot' message came, its end not yet). */
  get snapshotInProgress(): boolean {
    return this.#snapshot !== undefined;
  }

  /** Entries received in the snapshot in progress (0 when none). */
  get snapshotReceived(): number {
    return this.#snapshot?.received ?? 0;
  }

  /** Forgets a snapshot in progress (its end never came); its entries stay until they expire. */
  abortSnapshot(): void {
    this.#snapshot = undefined;
  }

  /** Applies update entries (or, with `snapshot`, part of a full snapshot). */
  apply(entries: readonly NormalizedEntry[], snapshot = false): void {
    const gen = ++this.#gen;
    if (snapshot) {
      this.#snapshot ??= { gen, received: 0 };
      this.#snapshot.received += entries.length;
    }
    const now = this.#now();
    for (const e of entries) {
      const key = entryKey(e);
      const old = this.#rows.get(key);
      if (e.ended) {
        if (old) {
          this.#delete(key, old);
          this.counters.ended++;
        }
        continue;
      }
      const expiresAt = now + (e.timeoutSec > 0 ? e.timeoutSec * 1000 : this.#defaultMs(e));
      if (old) {
        if (old.entry.kind !== e.kind) throw new Error('unreachable: key includes kind');
        old.entry = e;
        old.expiresAt = expiresAt;
        old.gen = gen;
        this.counters.updated++;
        continue;
      }
      if (this.#rows.size >= this.#max) {
        this.counters.overflow++;
        continue;
      }
      this.#rows.set(key, { entry: e, expiresAt, gen });
      this.#count(e, 1);
      this.counters.added++;
    }
  }

  /**
   * The peer's snapshot-end. When `totals.entries` equals what arrived since the snapshot
   * began, entries not written since then are removed (returns how many); else nothing is.
   */
  endSnapshot(totals: { readonly entries: number }): { complete: boolean; swept: number } {
    const snap = this.#snapshot ?? { gen: this.#gen + 1, received: 0 };
    this.#snapshot = undefined;
    if (snap.received !== totals.entries) {
      this.counters.snapshotsIncomplete++;
      return { complete: false, swept: 0 };
    }
    this.counters.snapshotsComplete++;
    let swept = 0;
    for (const [k, r] of this.#rows) {
      if (r.gen < snap.gen) {
        this.#delete(k, r);
        swept++;
      }
    }
    this.counters.swept += swept;
    return { complete: true, swept };
  }

  /** Removes expired entries; returns how many. */
  sweep(): number {
    const now = this.#now();
    let n = 0;
    for (const [k, r] of this.#rows) {
      if (r.expiresAt <= now) {
        this.#delete(k, r);
        n++;
      }
    }
    this.counters.expired += n;
    return n;
  }

  /** The row of an entry's identity (its kind, service and client), if live. */
  get(key: SyncEntry): TableRow | undefined {
    const r = this.#rows.get(entryKey(key));
    return r && r.expiresAt > this.#now() ? { entry: r.entry, expiresAt: r.expiresAt } : undefined;
  }

  /** Live entries with their remaining lifetime (expired ones are skipped, not removed). */
  *live(): IterableIterator<LiveEntry> {
    const now = this.#now();
    for (const r of this.#rows.values()) {
      const remainingMs = r.expiresAt - now;
      if (remainingMs > 0) yield { entry: r.entry, remainingMs };
    }
  }

  /**
   * Live connections and UDP flows per real server ("addr|port"), as the peer counts them:
   * `active` = TCP connections in ESTABLISHED, `inactive` = other TCP states and UDP.
   */
  connCounts(): Map<string, { active: number; inactive: number }> {
    const now = this.#now();
    const out = new Map<string, { active: number; inactive: number }>();
    for (const r of this.#rows.values()) {
      const e = r.entry;
      if (e.kind === 'template' || r.expiresAt <= now) continue;
      const k = `${e.real.address}|${e.real.port}`;
      let c = out.get(k);
      if (!c) out.set(k, (c = { active: 0, inactive: 0 }));
      if (e.kind === 'conn' && e.protocol === 'tcp' && e.state === 'ESTABLISHED') c.active++;
      else c.inactive++;
    }
    return out;
  }

  /** Forgets everything (a snapshot in progress too). */
  clear(): void {
    this.#rows.clear();
    this.#sizes.templates = this.#sizes.udpFlows = this.#sizes.conns = 0;
    this.#snapshot = undefined;
  }

  #defaultMs(e: NormalizedEntry): number {
    return e.kind === 'template' ? this.#defaults.templateMs : e.kind === 'udp-flow' ? this.#defaults.udpFlowMs : this.#defaults.connMs;
  }

  #delete(key: string, r: Row): void {
    this.#rows.delete(key);
    this.#count(r.entry, -1);
  }

  #count(e: NormalizedEntry, d: number): void {
    if (e.kind === 'template') this.#sizes.templates += d;
    else if (e.kind === 'udp-flow') this.#sizes.udpFlows += d;
    else this.#sizes.conns += d;
  }
}
