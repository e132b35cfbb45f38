/**
 * The nftables object model and the transaction planner. Pure: no I/O.
 *
 * A desired ruleset is a set of named objects (chains with their rules, maps and sets with their
 * declaration and, for static ones, their elements, named counters) per table family. The
 * planner turns (previous model, next model) into the text of ONE nft command buffer that moves
 * the kernel from the first to the second atomically (libnftables sends it as one netlink batch):
 * only what changed is touched — a chain whose rules changed is flushed and refilled, a static
 * map gets its changed elements deleted/added, dynamic maps (connection and persistence tables)
 * are never flushed, so a pool change or a reload keeps every established flow.
 *
 * Ordering inside the batch (the kernel checks references at each step):
 *   add table -> add counters, maps, sets (with elements) -> add chains -> refill changed chains
 *   -> element changes of kept static maps -> flush removed chains -> delete removed maps/sets
 *   -> delete removed chains -> delete removed counters -> delete tables left empty.
 * A map or set whose declaration changes gets a new name (callers put a hash of the declaration
 * in the name), so "changed declaration" never happens here: it is an add plus a delete.
 */

export type NftFamily = 'netdev' | 'inet';

/**
 * The main table name per family that this daemon owns. Large configurations spread their
 * services over shard tables `keepalive_ts_1`, `keepalive_ts_2`… (ruleset.ts shardTable: the
 * kernel finds sets and maps by name with a linear walk of the table's list, so one table with
 * tens of thousands of them makes a batch quadratic in their number).
 */
export const TABLE = 'keepalive_ts';

/** Name of shard table `shard` (0: the main table). */
export function shardTable(shard: number): string {
  return shard === 0 ? TABLE : `${TABLE}_${shard}`;
}

/** Whether `name` is one of our tables (the main one or a shard). */
export function isOurTable(name: string): boolean {
  return name === TABLE || /^keepalive_ts_[1-9][0-9]*$/.test(name);
}

interface ObjBase {
  readonly family: NftFamily;
  /** The table (default TABLE, the main one). */
  readonly table?: string;
  readonly name: string;
}

export interface ChainObj extends ObjBase {
  readonly type: 'chain';
  /** Base-chain spec without braces, e.g. `type filter hook ingress device "eth0" priority 0; policy accept;`; '' for a regular chain. */
  readonly base: string;
  readonly rules: readonly string[];
}

/**
 * A static map's elements: either key text -> value text, or a lookup table where element i
 * maps the number i to values[i] (a Maglev table), rendered as `i : 0x…`.
 */
export type Elements = ReadonlyMap<string, string> | Uint32Array;

export interface MapObj extends ObjBase {
  readonly type: 'map' | 'set';
  /** Declaration body, e.g. `type mark : verdict;` (the planner wraps it in braces). */
  readonly decl: string;
  /** Static elements (sets: values are ''); undefined for a dynamic map/set the kernel fills. */
  readonly elements?: Elements;
}

export interface CounterObj extends ObjBase {
  readonly type: 'counter';
}

export type NftObj = ChainObj | MapObj | CounterObj;

/**
 * A desired ruleset: its objects in groups (one per service, one for the shared objects). A group
 * whose array is the very same as in the previous model is unchanged and costs the planner
 * nothing, so a change to one of many services is planned in time proportional to that service.
 */
export type Model = ReadonlyMap<string, readonly NftObj[]>;

export function objKey(o: Pick<NftObj, 'family' | 'name' | 'table'>): string {
  return o.table && o.table !== TABLE ? `${o.family} ${o.table} ${o.name}` : `${o.family} ${o.name}`;
}

/** A one-group model (tests, tools); throws on a duplicate object. */
export function modelOf(objs: Iterable<NftObj>): Map<string, readonly NftObj[]> {
  const list = [...objs];
  const seen = new Set<string>();
  for (const o of list) {
    const k = objKey(o);
    if (seen.has(k)) throw new Error(`duplicate nftables object ${k}`);
    seen.add(k);
  }
  return new Map([['', list]]);
}

/** Every object of a model. */
export function allObjects(m: Model): NftObj[] {
  return [...m.values()].flat();
}

/** Elements per `add element` command: keeps each command line moderate for huge maps. */
const ELEMENT_CHUNK = 4096;

/** "family table" of an object (or of a family's main table). */
export function tableRef(o: NftFamily | Pick<NftObj, 'family' | 'table'>): string {
  return typeof o === 'string' ? `${o} ${TABLE}` : `${o.family} ${o.table ?? TABLE}`;
}

function elementEntries(e: Elements): Array<[string, string]> {
  if (e instanceof Uint32Array) return Array.from(e, (v, i) => [String(i), hexMark(v)]);
  return [...e.entries()];
}

/** 0x-prefixed 8-digit hex, the way nft prints marks. */
export function hexMark(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}

function renderElements(o: MapObj, entries: Array<[string, string]>, out: string[]): void {
  for (let i = 0; i < entries.length; i += ELEMENT_CHUNK) {
    const part = entries.slice(i, i + ELEMENT_CHUNK).map(([k, v]) => (o.type === 'set' ? k : `${k} : ${v}`));
    out.push(`add element ${tableRef(o)} ${o.name} { ${part.join(', ')} }`);
  }
}

function renderDeleteElements(o: MapObj, keys: string[], out: string[]): void {
  for (let i = 0; i < keys.length; i += ELEMENT_CHUNK) {
    out.push(`delete element ${tableRef(o)} ${o.name} { ${keys.slice(i, i + ELEMENT_CHUNK).join(', ')} }`);
  }
}

function sameRules(a: ChainObj, b: ChainObj): boolean {
  return a.base === b.base && a.rules.length === b.rules.length && a.rules.every((r, i) => r === b.rules[i]);
}

/** Key/value changes between two element collections: keys to delete, entries to add. */
export function elementDiff(prev: Elements, next: Elements): { del: string[]; add: Array<[string, string]> } {
  const del: string[] = [];
  const add: Array<[string, string]> = [];
  if (prev instanceof Uint32Array && next instanceof Uint32Array && prev.length === next.length) {
    for (let i = 0; i < next.length; i++) {
      if (prev[i] !== next[i]) {
        del.push(String(i));
        add.push([String(i), hexMark(next[i]!)]);
      }
    }
    return { del, add };
  }
  const p = new Map(elementEntries(prev));
  const n = new Map(elementEntries(next));
  for (const [k, v] of p) {
    const nv = n.get(k);
    if (nv === undefined || nv !== v) del.push(k);
  }
  for (const [k, v] of n) if (p.get(k) !== v) add.push([k, v]);
  return { del, add };
}

export interface Plan {
  /** The nft command buffer; '' when nothing changes. */
  readonly script: string;
  readonly stats: { added: number; changed: number; removed: number; elements: number };
}

/** Every table ("family table") a model has objects in. */
export function tablesOf(m: Model): Set<string> {
  const t = new Set<string>();
  for (const objs of m.values()) for (const o of objs) t.add(tableRef(o));
  return t;
}

/**
 * The transaction from `prev` (null: the kernel has none of our tables) to `next`.
 * `resetTables` (start-up) first removes whatever table of ours is there (a previous daemon's,
 * killed with -9) in the same batch: `add table` + `delete table` works whether or not it exists.
 * Each entry is a family (its main table) or a "family table" reference (a shard table).
 */
export function planTransaction(prev: Model | null, next: Model, opts: { resetTables?: readonly string[] } = {}): Plan {
  const before: Model = prev ?? new Map();
  const out: string[] = [];
  const stats = { added: 0, changed: 0, removed: 0, elements: 0 };
  const prevTables = tablesOf(before);
  const nextTables = tablesOf(next);
  const resetRefs = [...new Set((opts.resetTables ?? []).map((r) => (r.includes(' ') ? r : tableRef(r as NftFamily))))];
  const reset = new Set(resetRefs);
  for (const t of resetRefs) out.push(`add table ${t}`, `delete table ${t}`);
  for (const t of nextTables) if (!prevTables.has(t) || reset.has(t)) out.push(`add table ${t}`);

  // Only groups whose object list changed are looked at.
  const nextObjs: NftObj[] = [];
  const prevByKey = new Map<string, NftObj>();
  for (const [g, objs] of next) {
    const p = before.get(g);
    if (p === objs && reset.size === 0) continue;
    nextObjs.push(...objs);
    if (p) for (const o of p) prevByKey.set(objKey(o), o);
  }
  for (const [g, objs] of before) if (!next.has(g)) for (const o of objs) prevByKey.set(objKey(o), o);
  const nextKeys = new Set<string>();
  const had = (o: NftObj): NftObj | undefined => {
    const k = objKey(o);
    nextKeys.add(k);
    return reset.has(tableRef(o)) ? undefined : prevByKey.get(k);
  };
  const prevOf = new Map<NftObj, NftObj | undefined>();
  for (const o of nextObjs) prevOf.set(o, had(o));

  // 1. New counters, maps and sets.
  for (const o of nextObjs) {
    if (prevOf.get(o)) continue;
    if (o.type === 'counter') {
      out.push(`add counter ${tableRef(o)} ${o.name}`);
      stats.added++;
    } else if (o.type === 'map' || o.type === 'set') {
      out.push(`add ${o.type} ${tableRef(o)} ${o.name} { ${o.decl} }`);
      stats.added++;
    }
  }
  // 2. New chains (empty), so that rules and verdict maps may refer to any of them.
  for (const o of nextObjs) {
    if (o.type !== 'chain' || prevOf.get(o)) continue;
    out.push(o.base ? `add chain ${tableRef(o)} ${o.name} { ${o.base} }` : `add chain ${tableRef(o)} ${o.name}`);
    stats.added++;
  }
  // 3. Elements of new static maps (they may name chains or counters added just above).
  for (const o of nextObjs) {
    if ((o.type !== 'map' && o.type !== 'set') || prevOf.get(o) || !o.elements) continue;
    const entries = elementEntries(o.elements);
    stats.elements += entries.length;
    renderElements(o, entries, out);
  }
  // 4. Rules of new chains and of chains whose rules changed.
  for (const o of nextObjs) {
    if (o.type !== 'chain') continue;
    const p = prevOf.get(o);
    if (p && p.type === 'chain') {
      if (p === o || sameRules(p, o)) continue;
      if (p.base !== o.base) throw new Error(`base chain ${objKey(o)} changed its hook; give it a new name`);
      out.push(`flush chain ${tableRef(o)} ${o.name}`);
      stats.changed++;
    }
    for (const r of o.rules) out.push(`add rule ${tableRef(o)} ${o.name} ${r}`);
  }
  // 5. Element changes of kept static maps.
  for (const o of nextObjs) {
    if (o.type !== 'map' && o.type !== 'set') continue;
    const p = prevOf.get(o);
    if (!p || p === o || (p.type !== 'map' && p.type !== 'set')) continue;
    if (p.decl !== o.decl) throw new Error(`${objKey(o)} changed its declaration; give it a new name`);
    if (!o.elements || !p.elements) continue;
    const { del, add } = elementDiff(p.elements, o.elements);
    if (del.length === 0 && add.length === 0) continue;
    stats.changed++;
    const size = o.elements instanceof Uint32Array ? o.elements.length : o.elements.size;
    if (del.length + add.length > size) {
      // Most of it changed: cheaper to refill.
      out.push(`flush ${o.type} ${tableRef(o)} ${o.name}`);
      const entries = elementEntries(o.elements);
      stats.elements += entries.length;
      renderElements(o, entries, out);
    } else {
      stats.elements += del.length + add.length;
      renderDeleteElements(o, del, out);
      renderElements(o, add, out);
    }
  }
  // 6. Removals (a table that disappears entirely goes with one `delete table`).
  const removed = [...prevByKey.entries()].filter(([k, o]) => !nextKeys.has(k) && nextTables.has(tableRef(o)) && !reset.has(tableRef(o))).map(([, o]) => o);
  for (const o of removed) if (o.type === 'chain') out.push(`flush chain ${tableRef(o)} ${o.name}`);
  for (const o of removed) if (o.type === 'map' || o.type === 'set') out.push(`delete ${o.type} ${tableRef(o)} ${o.name}`);
  for (const o of removed) if (o.type === 'chain') out.push(`delete chain ${tableRef(o)} ${o.name}`);
  for (const o of removed) if (o.type === 'counter') out.push(`delete counter ${tableRef(o)} ${o.name}`);
  stats.removed += removed.length;
  for (const t of prevTables) {
    if (!nextTables.has(t) && !reset.has(t)) {
      out.push(`delete table ${t}`);
      for (const objs of before.values()) stats.removed += objs.filter((o) => tableRef(o) === t).length;
    }
  }
  return { script: out.length ? `${out.join('\n')}\n` : '', stats };
}

/** The whole model as one `nft -f` script that creates it from nothing (golden files, docs). */
export function renderModel(m: Model): string {
  return planTransaction(null, m).script;
}
