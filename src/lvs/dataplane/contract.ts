/**
 * The data-plane contract: what the virtual-server manager asks of whatever forwards packets.
 *
 * Two implementations live beside this file, one folder each:
 *   proxy/     the user-space TCP/UDP proxy in a worker thread (lb_kind "PROXY")
 *   nftables/  kernel forwarding through one nftables table per daemon (lb_kind "DR", "NAT", "FULLNAT")
 * and one contract test suite (test/unit/dataplane-contract.test.ts) runs against both.
 *
 * The manager never waits on a data plane from the VRRP event loop's critical path: every call is
 * asynchronous, and an implementation does its slow work (a worker thread, an nft transaction on
 * the libuv thread pool) off the main thread.
 *
 * Life cycle (undici-style: one small contract, a shared lifecycle base in lifecycle.ts):
 *   configure(all services)  -> the full desired set; services not listed any more drain and go
 *   setPool(key, pool)       -> the destinations of one service (any time, served or not)
 *   serve(key) / unserve(key, drainMs)
 *                            -> forwarding on/off for one service: on while this director owns
 *                               the address (VRRP MASTER, or announced by BGP), off otherwise
 *   stats()                  -> monotonic counters, like ipvsadm --stats
 *   close()                  -> everything off, kernel state removed; idempotent
 * Errors are KeepaliveError with a code (E_DATAPLANE_*, E_SOCKET, E_CLOSED...).
 */
import type { Endpoint, ServiceKey, ServiceMatch } from '../../util/endpoint.js';
import type { SchedulerName } from '../scheduler-names.js';

/** keepalived's lb_kind, plus FULLNAT and our user-space PROXY. */
export type LbKind = 'DR' | 'NAT' | 'FULLNAT' | 'PROXY';

/** ipvsadm's Forward column for each kind. */
export const FORWARD_NAMES: Readonly<Record<LbKind, string>> = {
  DR: 'Route',
  NAT: 'Masq',
  FULLNAT: 'FullNat',
  PROXY: 'Proxy',
};

/** Hash parameters shared by every director of a service, so they compute the same real server. */
export interface HashSpec {
  /** jhash seed (explicit: the kernel otherwise picks a random one per rule load). */
  readonly seed: number;
  /** Maglev lookup table size (a prime; mh only). */
  readonly tableSize: number;
  /** sh/mh: hash the source port too (sh-port / mh-port). */
  readonly port: boolean;
  /** sh/mh: skip weight-0/overloaded servers instead of failing (sh-fallback / mh-fallback). */
  readonly fallback: boolean;
}

export interface PersistenceSpec {
  readonly timeoutMs: number;
  /** Client address prefix length that shares a template (persistence_granularity). */
  readonly prefix: number;
}

/** Options only the proxy uses. */
export interface ProxyOptions {
  readonly proxyProtocol: '' | 'v1' | 'v2';
  readonly connectTimeoutMs: number;
  readonly udpFlowTimeoutMs?: number;
  /** UDP one-packet scheduling. */
  readonly ops: boolean;
}

/** One virtual service, as the data plane needs it; built once from the config. */
export interface ServiceSpec {
  readonly key: ServiceKey;
  readonly match: ServiceMatch;
  readonly kind: LbKind;
  readonly scheduler: SchedulerName;
  readonly hash: HashSpec;
  readonly persistence: PersistenceSpec | null;
  /** How long open connections may continue when the service is removed by configure(). */
  readonly drainMs: number;
  /** PROXY kind only. */
  readonly proxy?: ProxyOptions;
}

/** One destination of a pool. `key` is endpointText(endpoint); weight 0 = quiescent (no new connections). */
export interface Destination {
  readonly key: string;
  readonly endpoint: Endpoint;
  readonly weight: number;
}

export interface PoolSpec {
  readonly dests: readonly Destination[];
  /** Used while no destination has weight > 0. */
  readonly sorry: Endpoint | null;
}

/** Monotonic counters, as ipvsadm --stats shows them. */
export interface Counters {
  conns: number;
  in_pkts: number;
  out_pkts: number;
  in_bytes: number;
  out_bytes: number;
}

export interface DestStats extends Counters {
  key: string;
  endpoint: Endpoint;
  /** Weight in effect in the data plane now (after slow start / runtime overrides). */
  weight: number;
  sorry: boolean;
  /** Established connections (IPVS ActiveConn); null where the kernel path cannot tell. */
  active_conns: number | null;
  /** Other connections, e.g. TIME_WAIT/FIN (IPVS InActConn); null where unknown. */
  inact_conns: number | null;
  /** Connect failures retried on another server (proxy only; 0 elsewhere). */
  connect_errors: number;
}

export interface ServiceStats extends Counters {
  key: ServiceKey;
  kind: LbKind;
  serving: boolean;
  draining: boolean;
  /** The sorry server is in use. */
  sorry: boolean;
  /** What actually schedules, e.g. "wlc" or "wlc~wrr (re-weighted every 1 s)": status shows it. */
  scheduler_in_effect: string;
  active_conns: number | null;
  inact_conns: number | null;
  /** Clients refused because nothing could take them. */
  dropped: number;
  dests: DestStats[];
}

export interface DataplaneStats {
  services: ServiceStats[];
  /** Implementation-specific health figures (malformed messages, nft transactions, map fill...). */
  extra: Record<string, number>;
}

export interface Dataplane {
  /** "proxy" or "nftables". */
  readonly name: string;
  /** The lb_kinds this implementation forwards. */
  readonly kinds: readonly LbKind[];
  configure(services: readonly ServiceSpec[]): Promise<void>;
  setPool(key: ServiceKey, pool: PoolSpec): Promise<void>;
  serve(key: ServiceKey): Promise<void>;
  unserve(key: ServiceKey, drainMs: number): Promise<void>;
  stats(): Promise<DataplaneStats>;
  close(): Promise<void>;
}
