/**
 * Messages between the proxy facade (main thread, index.ts) and its worker thread.
 *
 * Versionless: both ends are always built from the same tree. The payloads are the contract's own
 * types (ServiceSpec, PoolSpec, RestoreEntry, ServiceStats, ConnectionEvent), so nothing is
 * translated on the way. Requests carry a `seq`; the worker answers each valid request with
 * exactly one `reply` of the same seq. Every message the worker receives is validated first
 * (`parseRequest`): a malformed one is ignored and counted (reported as `malformed` in stats), it
 * never throws inside the worker.
 *
 * main → worker: configure | update | setPool | serve | unserve | stats | restore | events | snapshot | limits | shutdown
 * worker → main: reply | events
 */

import { canonicalAddress, singlePort, type Endpoint, type ServiceKey } from '../../../util/endpoint.js';
import { isSchedulerName } from '../../scheduler-names.js';
import type { ConnectionEvent, ConnectionSnapshot, Destination, PoolSpec, RestoreEntry, ServiceSpec, ServiceStats } from '../contract.js';
import type { RelaySpliceStats } from '../../../net/native.js';

/**
 * Worker-wide settings: the connection budget (see Admission in conntable.ts; maxConns 0 =
 * unlimited) and the idle timeouts of every service (keepalived's lvs_timeouts).
 */
export interface ConnectionLimits {
  readonly maxConns: number;
  /** Paused listeners resume once the connections in use fall to this. */
  readonly lowWater: number;
  /** TCP: an established connection with no byte either way for this long is closed (IPVS tcp, default 900 s). */
  readonly tcpTimeoutMs?: number;
  /** TCP: once either side has sent FIN, closed after this long idle (IPVS tcpfin, default 120 s). */
  readonly tcpFinTimeoutMs?: number;
  /** UDP: a flow idle for this long ends, unless its service sets udpFlowTimeoutMs (IPVS udp, default 300 s). */
  readonly udpTimeoutMs?: number;
}

/** The connection budget and what the limits refused (all services together). */
export interface LimitStats {
  max_conns: number;
  low_water: number;
  in_use: number;
  paused: boolean;
  /** Times the listeners were paused at the cap. */
  pauses: number;
  /** Clients (TCP) or flows (UDP) refused: the budget was used up. */
  refused: number;
  /** Refused because their address was at maxConnsPerSource. */
  refused_per_source: number;
  /** TCP connections closed by the idle timeouts (tcp / tcpfin). */
  idle_closed: number;
}

/** The worker's answer to `stats`. */
export interface ProxyStats {
  services: ServiceStats[];
  /** Malformed messages the worker ignored. */
  malformed: number;
  /** Events dropped because a batch overflowed. */
  events_dropped: number;
  limits: LimitStats;
  /** The native relay's zero-copy path (RelayEngine.spliceStats; zeros without the native relay). */
  splice: RelaySpliceStats;
}

export type Request =
  | { readonly t: 'configure'; readonly seq: number; readonly services: readonly ServiceSpec[] }
  /** A delta of configure: `services` added or changed, `removed` keys gone (to drain); the others untouched. */
  | { readonly t: 'update'; readonly seq: number; readonly services: readonly ServiceSpec[]; readonly removed: readonly ServiceKey[] }
  | { readonly t: 'setPool'; readonly seq: number; readonly key: ServiceKey; readonly pool: PoolSpec }
  | { readonly t: 'serve'; readonly seq: number; readonly key: ServiceKey }
  | { readonly t: 'unserve'; readonly seq: number; readonly key: ServiceKey; readonly drainMs: number }
  | { readonly t: 'stats'; readonly seq: number }
  | { readonly t: 'restore'; readonly seq: number; readonly entries: readonly RestoreEntry[] }
  | { readonly t: 'events'; readonly seq: number; readonly enabled: boolean; readonly batchMs?: number }
  | { readonly t: 'snapshot'; readonly seq: number }
  | { readonly t: 'limits'; readonly seq: number; readonly limits: ConnectionLimits }
  | { readonly t: 'shutdown'; readonly seq: number };

export type { ConnectionSnapshot };

export interface WireError {
  readonly code: string;
  readonly message: string;
  /** errno code of the underlying system error (EADDRNOTAVAIL, EADDRINUSE, ...). */
  readonly errno?: string;
}

export type WorkerMessage =
  | { readonly t: 'reply'; readonly seq: number; readonly ok: true; readonly result?: unknown }
  | { readonly t: 'reply'; readonly seq: number; readonly ok: false; readonly error: WireError }
  | { readonly t: 'events'; readonly events: readonly ConnectionEvent[] };

// ---------------------------------------------------------------- validation

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown, max = 256): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
const isNonNegInt = (v: unknown, max = 2 ** 31 - 1): v is number =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
const optional = (v: unknown, check: (v: unknown) => boolean): boolean => v === undefined || check(v);
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';

/** An endpoint with a canonical address of the stated family; `minPort` 0 allows "no port". */
export function isEndpoint(v: unknown, minPort = 1): v is Endpoint {
  if (!isObj(v) || typeof v.address !== 'string' || !isNonNegInt(v.port, 65535) || (v.port as number) < minPort) return false;
  const a = canonicalAddress(v.address);
  return a !== null && a.address === v.address && a.family === v.family;
}

/** A service spec the proxy can serve: kind PROXY on one address and one port. */
export function isServiceSpec(v: unknown): v is ServiceSpec {
  if (!isObj(v) || !isStr(v.key) || v.kind !== 'PROXY') return false;
  const m = v.match;
  if (!isObj(m) || m.kind !== 'addr' || (m.protocol !== 'tcp' && m.protocol !== 'udp') || !Array.isArray(m.ports)) return false;
  const ports = m.ports as unknown[];
  if (ports.length !== 1 || !isObj(ports[0]) || !isNonNegInt(ports[0].from, 65535) || ports[0].from === 0 || ports[0].to !== ports[0].from) return false;
  if (!isEndpoint({ address: m.address, family: m.family, port: ports[0].from })) return false;
  if (!isStr(v.scheduler, 16) || !isSchedulerName(v.scheduler)) return false;
  const h = v.hash;
  if (!isObj(h) || !isNonNegInt(h.seed, 0xffffffff) || !isNonNegInt(h.tableSize, 1 << 20) || !isBool(h.port) || !isBool(h.fallback)) return false;
  const p = v.persistence;
  if (p !== null && !(isObj(p) && isNonNegInt(p.timeoutMs) && (p.timeoutMs as number) > 0 && isNonNegInt(p.prefix, m.family === 6 ? 128 : 32))) return false;
  if (!isNonNegInt(v.drainMs) || !isBool(v.ops)) return false;
  const x = v.proxy;
  if (
    x !== undefined &&
    !(
      isObj(x) &&
      (x.proxyProtocol === '' || x.proxyProtocol === 'v1' || x.proxyProtocol === 'v2') &&
      isNonNegInt(x.connectTimeoutMs) &&
      (x.connectTimeoutMs as number) > 0 &&
      optional(x.udpFlowTimeoutMs, (t) => isNonNegInt(t) && (t as number) > 0) &&
      optional(x.expireNodestConn, isBool) &&
      optional(x.maxConnsPerSource, (n) => isNonNegInt(n))
    )
  )
    return false;
  return singlePort(m as unknown as ServiceSpec['match']) !== undefined;
}

function isDest(v: unknown): v is Destination {
  return isObj(v) && isStr(v.key) && isEndpoint(v.endpoint) && isNonNegInt(v.weight) &&
    optional(v.uthreshold, (x) => isNonNegInt(x)) && optional(v.lthreshold, (x) => isNonNegInt(x));
}

function isPool(v: unknown): v is PoolSpec {
  if (!isObj(v) || !Array.isArray(v.dests) || v.dests.length > MAX_LIST || !v.dests.every(isDest)) return false;
  if (new Set(v.dests.map((d: Destination) => d.key)).size !== v.dests.length) return false;
  return v.sorry === null || isEndpoint(v.sorry);
}

export function isRestoreEntry(v: unknown): v is RestoreEntry {
  if (!isObj(v) || !(typeof v.expiresInMs === 'number' && Number.isFinite(v.expiresInMs)) || !isStr(v.service)) return false;
  if (v.type === 'template') {
    return typeof v.client === 'string' && canonicalAddress(v.client)?.family === v.family && isEndpoint(v.dest, 0);
  }
  if (v.type === 'udp_flow') {
    return v.protocol === 'udp' && isEndpoint(v.client) && isEndpoint(v.virtual, 0) && isEndpoint(v.dest, 0);
  }
  return false;
}

const MAX_LIST = 1 << 20;

/** The request if `v` is a well-formed one, else null. Never throws. */
export function parseRequest(v: unknown): Request | null {
  try {
    if (!isObj(v) || !isNonNegInt(v.seq, Number.MAX_SAFE_INTEGER)) return null;
    switch (v.t) {
      case 'configure': {
        const s = v.services;
        if (!Array.isArray(s) || s.length > MAX_LIST || !s.every(isServiceSpec)) return null;
        if (new Set(s.map((x: ServiceSpec) => x.key)).size !== s.length) return null;
        return v as unknown as Request;
      }
      case 'update': {
        const s = v.services;
        const r = v.removed;
        if (!Array.isArray(s) || s.length > MAX_LIST || !s.every(isServiceSpec)) return null;
        if (!Array.isArray(r) || r.length > MAX_LIST || !r.every((k) => isStr(k))) return null;
        const keys = new Set([...s.map((x: ServiceSpec) => x.key), ...(r as string[])]);
        if (keys.size !== s.length + r.length) return null;
        return v as unknown as Request;
      }
      case 'setPool':
        return isStr(v.key) && isPool(v.pool) ? (v as unknown as Request) : null;
      case 'serve':
        return isStr(v.key) ? (v as unknown as Request) : null;
      case 'unserve':
        return isStr(v.key) && isNonNegInt(v.drainMs) ? (v as unknown as Request) : null;
      case 'restore':
        return Array.isArray(v.entries) && v.entries.length <= MAX_LIST && v.entries.every(isRestoreEntry)
          ? (v as unknown as Request)
          : null;
      case 'events':
        return isBool(v.enabled) && optional(v.batchMs, (x) => isNonNegInt(x, 10_000)) ? (v as unknown as Request) : null;
      case 'limits': {
        const l = v.limits;
        const ms = (x: unknown) => isNonNegInt(x) && (x as number) > 0;
        return isObj(l) && isNonNegInt(l.maxConns) && isNonNegInt(l.lowWater) && optional(l.tcpTimeoutMs, ms) && optional(l.tcpFinTimeoutMs, ms) && optional(l.udpTimeoutMs, ms)
          ? (v as unknown as Request)
          : null;
      }
      case 'stats':
      case 'snapshot':
      case 'shutdown':
        return v as unknown as Request;
      default:
        return null;
    }
  } catch {
    return null;
  }
}
