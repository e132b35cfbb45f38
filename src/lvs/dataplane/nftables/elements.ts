/**
 * Connection-sync view of the kernel's dynamic tables (DR connection tables, persistence tables
 * of every kind). Pure: no I/O.
 *
 *  - decodeElements: the packed records of the addon's raw NFT_MSG_GETSETELEM dump
 *    (libnftables.setElements) as key/data bytes with timeout and time left;
 *  - connEntryOf / templateOf: one element as what connection sync carries (client, virtual,
 *    destination id, time left), by the key layout of ruleset.ts (connKey, persistKey);
 *  - diffTables: what changed between two dumps of a table (new / changed entries, gone ones),
 *    the events a MASTER sends its peer;
 *  - connElementText / templateElementText: a synced entry as an `add element` line, what a
 *    newly promoted director writes into its own tables before it serves (restore).
 *
 * Key layouts (nftables concatenations: every field padded to 4 bytes, network byte order):
 *   IPv4 single port   saddr(4) . sport(2+2)
 *   IPv4 port set      saddr(4) . sport(2+2) . dport(2+2)
 *   IPv4 fwmark        saddr(4) . sport(2+2) . daddr(4) . dport(2+2)
 *   persistence        the masked client address (4 or 16)
 * IPv6 connection keys hold only the low bits of the client address (ruleset.ts connKey): they
 * cannot be turned back into a client address, so IPv6 DR connections are not synced (counted as
 * unsyncable); IPv6 persistence templates are.
 * Data (the destination id, a mark) is a host-endian u32, as the kernel keeps registers.
 */
import { endianness } from 'node:os';
import type { Endpoint } from '../../../util/endpoint.js';
import { formatIp, parseIp } from '../../../util/inet.js';
import type { ServiceSpec } from '../contract.js';
import { hexMark } from './model.js';

export interface RawElement {
  readonly key: Buffer;
  /** The map value (null for a set). */
  readonly data: Buffer | null;
  /** The element's own timeout (ms), 0 when it has none. */
  readonly timeoutMs: number;
  /** Time left before it expires (ms); 0 when it has no timeout. */
  readonly expiresMs: number;
}

/** Decodes the addon's packed dump; throws RangeError on a truncated record. */
export function decodeElements(buf: Buffer): RawElement[] {
  const out: RawElement[] = [];
  let o = 0;
  while (o < buf.length) {
    if (o + 12 > buf.length) throw new RangeError(`set element dump truncated at ${o}`);
    const klen = buf[o]!;
    const dlen = buf[o + 1]!;
    const timeoutMs = buf.readUInt32BE(o + 4);
    const expiresMs = buf.readUInt32BE(o + 8);
    const end = o + 12 + klen + dlen;
    if (end > buf.length) throw new RangeError(`set element dump truncated at ${o}`);
    out.push({
      key: buf.subarray(o + 12, o + 12 + klen),
      data: dlen ? buf.subarray(o + 12 + klen, end) : null,
      timeoutMs,
      expiresMs,
    });
    o = end;
  }
  return out;
}

const LE = endianness() === 'LE';

/** A mark value as the kernel stores it in a map's data. */
export function markOf(data: Buffer | null): number | null {
  if (!data || data.length < 4) return null;
  return LE ? data.readUInt32LE(0) : data.readUInt32BE(0);
}

/** Test helper and dump synthesis: a mark as map data bytes. */
export function markBytes(mark: number): Buffer {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(mark >>> 0, 0);
  else b.writeUInt32BE(mark >>> 0, 0);
  return b;
}

export type ConnKeyLayout = 'v4' | 'v4ports' | 'v4fwmark' | 'v6';

/** The key layout of a service's DR connection table (mirrors ruleset.ts connKey). */
export function connKeyLayout(spec: ServiceSpec): ConnKeyLayout {
  const m = spec.match;
  if (m.family === 6) return 'v6';
  if (m.kind === 'fwmark') return 'v4fwmark';
  return m.ports.length === 1 && m.ports[0]!.from === m.ports[0]!.to ? 'v4' : 'v4ports';
}

/** One connection-table element as sync sees it: who, to what, pinned to which destination id. */
export interface ConnKeyFields {
  readonly client: Endpoint;
  readonly virtual: Endpoint;
}

/** The client and virtual endpoints of a connection key; null for a layout that cannot be read back (IPv6) or a bad length. */
export function connFieldsOf(spec: ServiceSpec, key: Buffer): ConnKeyFields | null {
  const layout = connKeyLayout(spec);
  const m = spec.match;
  const v4 = (off: number) => formatIp(key.subarray(off, off + 4));
  switch (layout) {
    case 'v4':
      if (key.length !== 8 || m.kind !== 'addr') return null;
      return { client: { address: v4(0), family: 4, port: key.readUInt16BE(4) }, virtual: { address: m.address, family: 4, port: m.ports[0]!.from } };
    case 'v4ports':
      if (key.length !== 12 || m.kind !== 'addr') return null;
      return { client: { address: v4(0), family: 4, port: key.readUInt16BE(4) }, virtual: { address: m.address, family: 4, port: key.readUInt16BE(8) } };
    case 'v4fwmark':
      if (key.length !== 16) return null;
      return { client: { address: v4(0), family: 4, port: key.readUInt16BE(4) }, virtual: { address: v4(8), family: 4, port: key.readUInt16BE(12) } };
    case 'v6':
      return null;
  }
}

/** The key text of a connection element for `add element` (null: a layout we cannot write). */
export function connKeyText(spec: ServiceSpec, f: ConnKeyFields): string | null {
  switch (connKeyLayout(spec)) {
    case 'v4':
      return `${f.client.address} . ${f.client.port}`;
    case 'v4ports':
      return `${f.client.address} . ${f.client.port} . ${f.virtual.port}`;
    case 'v4fwmark':
      return `${f.client.address} . ${f.client.port} . ${f.virtual.address} . ${f.virtual.port}`;
    case 'v6':
      return null;
  }
}

/** A persistence key (the masked client address) as text; null on a bad length. */
export function persistClientOf(spec: ServiceSpec, key: Buffer): string | null {
  const len = spec.match.family === 4 ? 4 : 16;
  if (key.length !== len) return null;
  return formatIp(key);
}

/** `timeout T expires E` of an element, in whole milliseconds (nft accepts "ms"). */
function lifetimeText(timeoutMs: number, expiresMs: number): string {
  const t = Math.max(1000, Math.round(timeoutMs));
  const e = Math.max(1, Math.min(t, Math.round(expiresMs)));
  return `timeout ${t}ms expires ${e}ms`;
}

/** One `key timeout … expires … : id` element of a connection table. */
export function connElementText(spec: ServiceSpec, f: ConnKeyFields, id: number, timeoutMs: number, expiresMs: number): string | null {
  const key = connKeyText(spec, f);
  return key === null ? null : `${key} ${lifetimeText(timeoutMs, expiresMs)} : ${hexMark(id)}`;
}

/** One element of a persistence table; null for an address of the wrong family. */
export function templateElementText(spec: ServiceSpec, client: string, id: number, timeoutMs: number, expiresMs: number): string | null {
  if (!parseIp(client, spec.match.family)) return null;
  return `${client} ${lifetimeText(timeoutMs, expiresMs)} : ${hexMark(id)}`;
}

/** What a table held at one dump: key (hex) -> value and lifetime. */
export interface TableEntry {
  readonly key: Buffer;
  readonly id: number;
  readonly timeoutMs: number;
  /** Absolute expiry (ms, the caller's clock). */
  readonly expiresAt: number;
}

export type TableDump = ReadonlyMap<string, TableEntry>;

/** Indexes a dump by key; `now` turns time left into absolute expiries. Elements without data are skipped. */
export function indexDump(elements: readonly RawElement[], now: number): Map<string, TableEntry> {
  const out = new Map<string, TableEntry>();
  for (const e of elements) {
    const id = markOf(e.data);
    if (id === null) continue;
    out.set(e.key.toString('hex'), { key: e.key, id, timeoutMs: e.timeoutMs, expiresAt: now + e.expiresMs });
  }
  return out;
}

export interface TableDiff {
  /** New keys, and keys whose destination or timeout changed (e.g. first packet -> established). */
  readonly upserts: TableEntry[];
  /** Keys no longer in the table. */
  readonly gone: TableEntry[];
}

/**
 * The changes from `prev` to `next`. An entry whose only change is its expiry (traffic refreshed
 * it) is not a change: the peer's copy is refreshed by the periodic resend instead.
 */
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
