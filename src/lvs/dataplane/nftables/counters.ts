/**
 * Reading the kernel's state back. Pure parsers: `nft -j list counters table …` JSON into
 * packet/byte figures by counter name (the CLI transport; libnftables reads counters through the
 * addon), `nft -j list map/set …` JSON into map entries and per-destination flow counts.
 */

export interface PacketBytes {
  packets: number;
  bytes: number;
}

type Json = Record<string, unknown>;

function items(docs: readonly unknown[]): Json[] {
  const out: Json[] = [];
  for (const d of docs) {
    const list = (d as { nftables?: unknown } | null)?.nftables;
    if (Array.isArray(list)) for (const x of list) if (x && typeof x === 'object') out.push(x as Json);
  }
  return out;
}

/** Named counters from `list counters table …` output: name -> figures (per family, "inet s…_c…"). */
export function parseCounters(docs: readonly unknown[]): Map<string, PacketBytes> {
  const out = new Map<string, PacketBytes>();
  for (const it of items(docs)) {
    const c = it.counter as Json | undefined;
    if (!c || typeof c.name !== 'string') continue;
    out.set(`${String(c.family)} ${c.name}`, { packets: Number(c.packets ?? 0), bytes: Number(c.bytes ?? 0) });
  }
  return out;
}

export interface MapEntry {
  /**
   * The key: as nft prints it in JSON (a string, a number, or a `concat` list), or, read through
   * the addon, its bytes as a hex string (`raw`).
   */
  readonly key: unknown;
  readonly raw?: boolean;
  /** Canonical text of the key (for matching entries of two maps). */
  readonly keyText: string;
  /** The value (maps only): a mark as a number. */
  readonly value: number | null;
  /** Seconds until the entry expires, when it has a timeout. */
  readonly expiresS: number | null;
}

/** Elements of one map or set from `list map|set …` output. */
export function parseMapEntries(docs: readonly unknown[]): MapEntry[] {
  const out: MapEntry[] = [];
  for (const it of items(docs)) {
    const m = (it.map ?? it.set) as Json | undefined;
    if (!m || !Array.isArray(m.elem)) continue;
    for (const e of m.elem as unknown[]) {
      // Map elements are [key, value]; set elements are the key alone. A key with a timeout is
      // wrapped: { elem: { val, expires, timeout } }.
      const [k, v] = Array.isArray(e) ? (e as [unknown, unknown]) : [e, null];
      let key = k;
      let expiresS: number | null = null;
      const wrapped = (k as { elem?: Json } | null)?.elem;
      if (wrapped && typeof wrapped === 'object') {
        key = wrapped.val;
        if (typeof wrapped.expires === 'number') expiresS = wrapped.expires;
      }
      out.push({ key, keyText: JSON.stringify(key), value: typeof v === 'number' ? v >>> 0 : v === null ? null : Number(v) >>> 0, expiresS });
    }
  }
  return out;
}

export interface ActiveCounts {
  active: number;
  inactive: number;
}

/** Entries from the addon's raw set dump ([key hex, data, expires ms, timeout ms]). */
export function rawEntries(rows: ReadonlyArray<readonly [string, number | null, number, number]>): MapEntry[] {
  return rows.map(([key, data, expires]) => ({ key, raw: true, keyText: key, value: data === null ? null : data >>> 0, expiresS: expires / 1000 }));
}

/**
 * DR: per destination id, flows in the connection table; those also in the closing set (they
 * have seen FIN or RST) are inactive, like IPVS's InActConn.
 */
export function countFlows(conn: readonly MapEntry[], closing: readonly MapEntry[]): Map<number, ActiveCounts> {
  const closed = new Set(closing.map((e) => e.keyText));
  const out = new Map<number, ActiveCounts>();
  for (const e of conn) {
    if (e.value === null) continue;
    const c = out.get(e.value) ?? { active: 0, inactive: 0 };
    if (closed.has(e.keyText)) c.inactive++;
    else c.active++;
    out.set(e.value, c);
  }
  return out;
}

