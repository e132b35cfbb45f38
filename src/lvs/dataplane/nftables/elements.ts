/**
 * Change detection for connection sync of the DR connection tables. Pure: no I/O.
 *
 * The kernel reports nothing per packet, so the data plane dumps a connection table (one raw
 * NFT_MSG_GETSETELEM through the addon: rows of [key hex, id, ms left, own timeout ms]) every
 * syncPollMs and compares it with the previous dump: a new key, a key pinned to another
 * destination, or a key whose own timeout changed (the first packet's short timeout replaced by
 * the established one, or by the closing one after FIN/RST) is an upsert; a key gone from the
 * table is gone. A key whose expiry only moved (traffic refreshed it) is no change: the master's
 * periodic resend keeps the peer's copy alive. conn-state.ts turns keys into endpoints.
 */

/** One row of the addon's dump: key bytes as hex, data (a mark) or null, ms left, own timeout ms (0: the set's). */
export type ElementRow = readonly [string, number | null, number, number];

export interface TableEntry {
  readonly key: string;
  readonly id: number;
  readonly timeoutMs: number;
  /** Absolute expiry (ms, the caller's clock). */
  readonly expiresAt: number;
}

export type TableDump = ReadonlyMap<string, TableEntry>;

/** Indexes a dump by key; `now` turns time left into absolute expiries. Rows without data are skipped. */
export function indexRows(rows: readonly ElementRow[], now: number): Map<string, TableEntry> {
  const out = new Map<string, TableEntry>();
  for (const [key, data, left, timeout] of rows) {
    if (data === null) continue;
    out.set(key, { key, id: data >>> 0, timeoutMs: timeout, expiresAt: now + left });
  }
  return out;
}

export interface TableDiff {
  readonly upserts: TableEntry[];
  readonly gone: TableEntry[];
}

export function diffTables(prev: TableDump, next: TableDump): TableDiff {
  const upserts: TableEntry[] = [];
  const gone: TableEntry[] = [];
  for (const [k, n] of next) {
    const p = prev.get(k);
    if (!p || p.id !== n.id || p.timeoutMs !== n.timeoutMs) upserts.push(n);
  }
  for (const [k, p] of prev) if (!next.has(k)) gone.push(p);
  return { upserts, gone };
}
