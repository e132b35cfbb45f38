/**
 * Messages between the DataPlane facade (main thread) and its worker thread.
 *
 * Versionless: both ends are always built from the same tree. Requests carry a `seq`; the
 * worker answers each valid request with exactly one `reply` of the same seq. Every message
 * the worker receives is validated first (`parseRequest`): a malformed one is ignored and
 * counted (reported as `malformed` in stats), it never throws inside the worker.
 *
 * main → worker: configure | setPool | serve | unserve | stats | restore | events | snapshot | limits | shutdown
 * worker → main: reply | events
 */

import { isIP } from 'node:net';
import { isSchedulerName, type SchedulerName } from '../sched/index.js';
import type { IpFamily } from '../types.js';

export type L4Protocol = 'tcp' | 'udp';

/** One virtual service as the data plane needs it. `id` is `${protocol}/${address}:${port}`. */
export interface ServiceSpec {
  readonly id: string;
  readonly protocol: L4Protocol;
  readonly address: string;
  readonly port: number;
  readonly lbAlgo: SchedulerName;
  /** sh/mh flags (sh-fallback, sh-port, mh-fallback, mh-port) and the mh table size. */
  readonly schedulerOptions?: { readonly fallback?: boolean; readonly port?: boolean; readonly tableSize?: number };
  /** Persistent service (persistence_timeout > 0); null/absent = not persistent. */
  readonly persistence?: { readonly timeoutMs: number; readonly prefix4?: number; readonly prefix6?: number } | null;
  /** PROXY protocol header sent to real servers (TCP only). */
  readonly proxyProtocol?: '' | 'v1' | 'v2';
  /** Real-server connect timeout; after it the next real server is tried. Default 3000. */
  readonly connectTimeoutMs?: number;
  /** UDP flow idle timeout. Default 300000 (IPVS udp timeout). */
  readonly udpFlowTimeoutMs?: number;
  /** UDP one-packet scheduling: every datagram is scheduled on its own; no flow is counted. */
  readonly ops?: boolean;
  /**
   * UDP: a flow whose real server was removed from the pool is re-scheduled on its next
   * datagram (net.ipv4.vs.expire_nodest_conn-like). Default true. A weight-0 (quiescent)
   * server keeps its flows either way. False: such flows keep going to the removed server
   * until idle.
   */
  readonly expireNodestConn?: boolean;
  /** How long open connections may continue when the service is removed by configure(). Default 0. */
  readonly drainMs?: number;
  /** Most live TCP connections / UDP flows per client address (0 or absent = unlimited). */
  readonly maxConnsPerSource?: number;
}

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

export interface DestinationSpec {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  /** Connections (active + inactive) at which the server stops getting new ones (0 = no limit). */
  readonly uthreshold?: number;
  /** Below this it gets new ones again (0 = 3/4 of uthreshold). */
  readonly lthreshold?: number;
}

export interface SorrySpec {
  readonly address: string;
  readonly port: number;
}

/** A persistence template, as PersistenceTable.entries() exports it. */
export interface TemplateEntry {
  readonly type: 'template';
  readonly vs: string;
  readonly client: string;
  readonly family: IpFamily;
  readonly destId: string;
  readonly expiresInMs: number;
}

/** A UDP flow learned from the peer: the client address:port keeps its real server. */
export interface UdpFlowEntry {
  readonly type: 'udp_flow';
  readonly service: string;
  readonly client: string;
  readonly clientPort: number;
  readonly destId: string;
  readonly expiresInMs: number;
}

export type RestoreEntry = TemplateEntry | UdpFlowEntry;

/** A live proxied TCP connection, as listed by the `snapshot` request. */
export interface ConnEntry {
  readonly type: 'conn';
  readonly protocol: 'tcp';
  readonly service: string;
  readonly client: string;
  readonly clientPort: number;
  readonly destId: string;
}

/** The whole connection table (answer to `snapshot`): what a joining peer director needs. */
export interface DataPlaneSnapshot {
  readonly templates: TemplateEntry[];
  /** Live UDP flows; expiresInMs = idle timeout minus the time since the flow's last datagram. */
  readonly udpFlows: UdpFlowEntry[];
  readonly conns: ConnEntry[];
}

export type DataPlaneEvent =
  | {
      readonly type: 'conn_new';
      readonly protocol: 'tcp';
      readonly service: string;
      readonly client: string;
      readonly clientPort: number;
      readonly destId: string;
    }
  | {
      readonly type: 'conn_end';
      readonly protocol: 'tcp';
      readonly service: string;
      readonly client: string;
      readonly clientPort: number;
      readonly destId: string;
      readonly inBytes: number;
      readonly outBytes: number;
    }
  | TemplateEntry
  | {
      readonly type: 'udp_flow_new';
      readonly service: string;
      readonly client: string;
      readonly clientPort: number;
      readonly destId: string;
      readonly timeoutMs: number;
    }
  | {
      readonly type: 'udp_flow_expired';
      readonly service: string;
      readonly client: string;
      readonly clientPort: number;
      readonly destId: string;
    };

export interface RealServerStats {
  id: string;
  address: string;
  port: number;
  weight: number;
  /** In the current pool with weight > 0. */
  up: boolean;
  /** In the current pool (at any weight). */
  in_pool: boolean;
  sorry: boolean;
  active_conns: number;
  inact_conns: number;
  conns: number;
  in_bytes: number;
  out_bytes: number;
  /** Failed connect attempts (refused / timeout) that were retried on another server. */
  connect_errors: number;
}

export interface ServiceStats {
  id: string;
  address: string;
  port: number;
  protocol: string;
  lb_algo: string;
  serving: boolean;
  draining: boolean;
  /** No real server can take a new connection and a sorry server is configured. */
  sorry: boolean;
  conns: number;
  active_conns: number;
  inact_conns: number;
  in_bytes: number;
  out_bytes: number;
  /** Clients closed because no real server (nor sorry server) could be reached. */
  dropped: number;
  /** Clients (TCP) or flows (UDP) refused: the global budget was used up, or their address was at maxConnsPerSource. */
  refused: number;
  /** Of those, refused by maxConnsPerSource. */
  refused_per_source: number;
  /** TCP connections closed by the idle timeouts (tcpTimeoutMs / tcpFinTimeoutMs). */
  idle_closed: number;
  real_servers: RealServerStats[];
}

export interface DataPlaneStats {
  services: ServiceStats[];
  /** Malformed messages the worker ignored. */
  malformed: number;
  /** Events dropped because a batch overflowed. */
  events_dropped: number;
  /** The connection budget and its use. */
  limits: { max_conns: number; low_water: number; in_use: number; paused: boolean; pauses: number; refused: number };
}

export type Request =
  | { readonly t: 'configure'; readonly seq: number; readonly services: readonly ServiceSpec[] }
  | {
      readonly t: 'setPool';
      readonly seq: number;
      readonly id: string;
      readonly dests: readonly DestinationSpec[];
      readonly sorry: SorrySpec | null;
    }
  | { readonly t: 'serve'; readonly seq: number; readonly id: string }
  | { readonly t: 'unserve'; readonly seq: number; readonly id: string; readonly drainMs: number }
  | { readonly t: 'stats'; readonly seq: number }
  | { readonly t: 'restore'; readonly seq: number; readonly entries: readonly RestoreEntry[] }
  | { readonly t: 'events'; readonly seq: number; readonly enabled: boolean; readonly batchMs?: number }
  | { readonly t: 'snapshot'; readonly seq: number }
  | { readonly t: 'limits'; readonly seq: number; readonly limits: ConnectionLimits }
  | { readonly t: 'shutdown'; readonly seq: number };

export interface WireError {
  readonly code: string;
  readonly message: string;
  /** errno code of the underlying system error (EADDRNOTAVAIL, EADDRINUSE, ...). */
  readonly errno?: string;
}

export type WorkerMessage =
  | { readonly t: 'reply'; readonly seq: number; readonly ok: true; readonly result?: unknown }
  | { readonly t: 'reply'; readonly seq: number; readonly ok: false; readonly error: WireError }
  | { readonly t: 'events'; readonly events: readonly DataPlaneEvent[] };

// ---------------------------------------------------------------- validation

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown, max = 256): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;
const isAddr = (v: unknown): v is string => typeof v === 'string' && isIP(v) !== 0;
const isNonNegInt = (v: unknown, max = 2 ** 31 - 1): v is number =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
const optional = (v: unknown, check: (v: unknown) => boolean): boolean => v === undefined || check(v);
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';

/** The canonical service id. */
export function serviceId(protocol: L4Protocol, address: string, port: number): string {
  return `${protocol}/${address}:${port}`;
}

export function isServiceSpec(v: unknown): v is ServiceSpec {
  if (!isObj(v)) return false;
  if (v.protocol !== 'tcp' && v.protocol !== 'udp') return false;
  if (!isAddr(v.address) || !isPort(v.port) || !isStr(v.id)) return false;
  if (!isStr(v.lbAlgo, 16) || !isSchedulerName(v.lbAlgo)) return false;
  const so = v.schedulerOptions;
  if (
    so !== undefined &&
    !(
      isObj(so) &&
      optional(so.fallback, isBool) &&
      optional(so.port, isBool) &&
      optional(so.tableSize, (x) => isNonNegInt(x, 1 << 20))
    )
  )
    return false;
  const p = v.persistence;
  if (
    p !== undefined &&
    p !== null &&
    !(
      isObj(p) &&
      isNonNegInt(p.timeoutMs) &&
      (p.timeoutMs as number) > 0 &&
      optional(p.prefix4, (x) => isNonNegInt(x, 32)) &&
      optional(p.prefix6, (x) => isNonNegInt(x, 128))
    )
  )
    return false;
  if (!optional(v.proxyProtocol, (x) => x === '' || x === 'v1' || x === 'v2')) return false;
  if (!optional(v.connectTimeoutMs, (x) => isNonNegInt(x) && (x as number) > 0)) return false;
  if (!optional(v.udpFlowTimeoutMs, (x) => isNonNegInt(x) && (x as number) > 0)) return false;
  if (!optional(v.ops, isBool) || !optional(v.expireNodestConn, isBool)) return false;
  if (!optional(v.drainMs, (x) => isNonNegInt(x))) return false;
  if (!optional(v.maxConnsPerSource, (x) => isNonNegInt(x))) return false;
  return true;
}

function isDest(v: unknown): v is DestinationSpec {
  return isObj(v) && isStr(v.id) && isAddr(v.address) && isPort(v.port) && isNonNegInt(v.weight) &&
    optional(v.uthreshold, (x) => isNonNegInt(x)) && optional(v.lthreshold, (x) => isNonNegInt(x));
}

function isSorry(v: unknown): v is SorrySpec | null {
  return v === null || (isObj(v) && isAddr(v.address) && isPort(v.port));
}

function isRestoreEntry(v: unknown): v is RestoreEntry {
  if (!isObj(v) || !(typeof v.expiresInMs === 'number' && Number.isFinite(v.expiresInMs))) return false;
  if (v.type === 'template') {
    return isStr(v.vs) && isAddr(v.client) && (v.family === 4 || v.family === 6) && isStr(v.destId);
  }
  if (v.type === 'udp_flow') {
    return isStr(v.service) && isAddr(v.client) && isPort(v.clientPort) && isStr(v.destId);
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
        if (new Set(s.map((x: ServiceSpec) => x.id)).size !== s.length) return null;
        return v as unknown as Request;
      }
      case 'setPool':
        if (!isStr(v.id) || !Array.isArray(v.dests) || v.dests.length > MAX_LIST || !v.dests.every(isDest)) return null;
        if (new Set(v.dests.map((d: DestinationSpec) => d.id)).size !== v.dests.length) return null;
        return isSorry(v.sorry) ? (v as unknown as Request) : null;
      case 'serve':
        return isStr(v.id) ? (v as unknown as Request) : null;
      case 'unserve':
        return isStr(v.id) && isNonNegInt(v.drainMs) ? (v as unknown as Request) : null;
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
