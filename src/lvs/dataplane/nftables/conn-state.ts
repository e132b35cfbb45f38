/**
 * Connection state of the kernel data plane as the contract's ConnectionState sees it. Pure:
 * nft map entries (as counters.ts parses them) to persistence templates and flows, and synced
 * entries back to `add element` commands with their remaining lifetime.
 *
 *  - Persistence templates: every service's persistence map (client network -> server id).
 *  - DR flows: the connection table (flow key -> server id). TCP flows are listed as connections,
 *    UDP flows as UDP flows with their remaining idle time. IPv6 flow keys hold only the low bits
 *    of the client address (ruleset.ts connKey), so IPv6 flows are not listed.
 *  - NAT flows live in conntrack, not in our tables (conntrackd syncs them; issue 12).
 */
import { endpoint, type Endpoint, type IpFamily } from '../../../util/endpoint.js';
import { formatIp, parseIp } from '../../../util/inet.js';
import type { ConnRef, ServiceSpec, TemplateEntry } from '../contract.js';
import type { MapEntry } from './counters.js';
import { hex } from './sched.js';

/** A flow of a DR connection table: a connection reference and its idle time left. */
export type FlowLike = ConnRef & { readonly expiresInMs: number };

/**
 * The fields of a key read raw from the kernel (hex of its bytes): an address of the family, then
 * 16-bit ports, every field padded to 4 bytes (nftables registers).
 */
function rawFields(hex: string, family: IpFamily, layout: ReadonlyArray<'addr' | 'port'>): Array<string | number> | null {
  const b = Buffer.from(hex, 'hex');
  const out: Array<string | number> = [];
  let at = 0;
  for (const f of layout) {
    if (f === 'addr') {
      const n = family === 4 ? 4 : 16;
      if (at + n > b.length) return null;
      out.push(formatIp(b.subarray(at, at + n)));
      at += n;
    } else {
      if (at + 2 > b.length) return null;
      out.push(b.readUInt16BE(at));
      at += 4;
    }
  }
  return out;
}

/** Persistence map entries -> templates (entries whose id is no destination any more are left out). */
export function templatesOf(spec: ServiceSpec, entries: readonly MapEntry[], destOf: (id: number) => Endpoint | undefined): TemplateEntry[] {
  const out: TemplateEntry[] = [];
  for (const e of entries) {
    const client = e.raw ? rawFields(String(e.key), spec.match.family, ['addr'])?.[0] : e.key;
    if (typeof client !== 'string' || e.value === null) continue;
    const dest = destOf(e.value);
    if (!dest) continue;
    out.push({ type: 'template', service: spec.key, family: spec.match.family, client, dest, expiresInMs: Math.round((e.expiresS ?? 0) * 1000) });
  }
  return out;
}

/**
 * DR connection-table entries -> flows. The key's layout follows connKey(): IPv4 [saddr, sport]
 * (single port), [saddr, sport, dport] (port set), [saddr, sport, daddr, dport] (fwmark).
 * fwmark flows carry no protocol in their key: they are reported as TCP when the closing set
 * (TCP only) knows them or the service is TCP-only, else as UDP.
 */
export function flowsOf(spec: ServiceSpec, entries: readonly MapEntry[], destOf: (id: number) => Endpoint | undefined): FlowLike[] {
  if (spec.match.family !== 4) return [];
  const m = spec.match;
  const out: FlowLike[] = [];
  const layout: Array<'addr' | 'port'> = m.kind === 'fwmark' ? ['addr', 'port', 'addr', 'port'] : m.ports.length === 1 && m.ports[0]!.from === m.ports[0]!.to ? ['addr', 'port'] : ['addr', 'port', 'port'];
  for (const e of entries) {
    const parts = e.raw ? rawFields(String(e.key), 4, layout) : (e.key as { concat?: unknown[] } | null)?.concat;
    if (!Array.isArray(parts) || e.value === null) continue;
    const dest = destOf(e.value);
    if (!dest) continue;
    const [saddr, sport] = parts as [string, number];
    let daddr: string;
    let dport: number;
    if (m.kind === 'fwmark') [daddr, dport] = [parts[2] as string, parts[3] as number];
    else if (parts.length === 3) [daddr, dport] = [m.address, parts[2] as number];
    else [daddr, dport] = [m.address, m.ports[0]!.from];
    try {
      out.push({
        service: spec.key,
        protocol: m.kind === 'addr' ? m.protocol : 'tcp',
        client: endpoint(saddr, sport),
        virtual: endpoint(daddr, dport),
        dest,
        expiresInMs: Math.round((e.expiresS ?? 0) * 1000),
      });
    } catch {
      // A key the kernel printed in a form we do not know: skip it.
    }
  }
  return out;
}

/** The raw hex of a key as the kernel stores it (see rawFields), for comparing with a raw dump. */
export function rawKey(family: IpFamily, fields: ReadonlyArray<string | number>): string {
  const parts: Buffer[] = [];
  for (const f of fields) {
    if (typeof f === 'string') {
      const a = endpoint(f, 0);
      parts.push(Buffer.from(formatIpBytes(a.address, family)));
    } else {
      const b = Buffer.alloc(4);
      b.writeUInt16BE(f, 0);
      parts.push(b);
    }
  }
  return Buffer.concat(parts).toString('hex');
}

function formatIpBytes(address: string, family: IpFamily): Uint8Array {
  const bytes = parseIp(address, family);
  if (!bytes) throw new RangeError(`not an IPv${family} address: ${address}`);
  return bytes;
}

/** The fields of a DR connection-table key for a flow (connKey()'s layout, IPv4). */
export function flowKeyFields(spec: ServiceSpec, client: Endpoint, virtual: Endpoint): Array<string | number> {
  const m = spec.match;
  if (m.kind === 'fwmark') return [client.address, client.port, virtual.address, virtual.port];
  if (m.ports.length === 1 && m.ports[0]!.from === m.ports[0]!.to) return [client.address, client.port];
  return [client.address, client.port, virtual.port];
}

function ms(v: number): string {
  return `${Math.max(1, Math.round(v))}ms`;
}

/** `add element` lines putting templates back into a persistence map (remaining lifetime as expiry). */
export function restoreTemplates(family: 'netdev' | 'inet', table: string, map: string, timeoutMs: number, items: ReadonlyArray<{ client: string; id: number; expiresInMs: number }>): string[] {
  if (items.length === 0) return [];
  const els = items.map((i) => `${i.client} timeout ${ms(timeoutMs)} expires ${ms(Math.min(i.expiresInMs, timeoutMs))} : ${hex(i.id)}`);
  return [`add element ${family} ${table} ${map} { ${els.join(', ')} }`];
}

/** `add element` lines putting DR flows back into a connection table. */
export function restoreFlows(table: string, map: string, spec: ServiceSpec, timeoutMs: number, items: ReadonlyArray<{ client: Endpoint; virtual: Endpoint; id: number; expiresInMs: number }>): string[] {
  if (items.length === 0 || spec.match.family !== 4) return [];
  const key = (i: { client: Endpoint; virtual: Endpoint }) => flowKeyFields(spec, i.client, i.virtual).join(' . ');
  const els = items.map((i) => `${key(i)} timeout ${ms(timeoutMs)} expires ${ms(Math.min(i.expiresInMs, timeoutMs))} : ${hex(i.id)}`);
  return [`add element netdev ${table} ${map} { ${els.join(', ')} }`];
}
