/**
 * The data-plane contract: what the virtual-server manager asks of whatever forwards packets.
 *
 * Two implementations live beside this file, one folder each:
 *   proxy/     the user-space TCP/UDP proxy in a worker thread (lb_kind "PROXY")
 *   nftables/  kernel forwarding through one nftables table per daemon (lb_kind "DR", "NAT", "FULLNAT")
 * and one contract test suite (test/lib/dataplane-contract.ts) runs against both: the proxy on
 * loopback (test/unit/dataplane-contract-proxy.test.ts), nftables in a namespace lab.
 * DataplaneSet (index.ts) is what the manager talks to: it routes each service to the
 * implementation of its kind, creating implementations only when a service needs them.
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
 * Errors are KeepaliveError with a code: E_CONFIG_INVALID (a spec or pool the implementation
 * cannot take, an unknown service key), E_SOCKET (the system refused, e.g. EADDRNOTAVAIL while the
 * VIP is not yet in place), E_CLOSED (after close()), E_DATAPLANE_UNAVAILABLE (no implementation
 * for a service's lb_kind). lifecycle.ts does the bookkeeping and these checks once.
 *
 * An implementation that keeps a connection table may also provide ConnectionState (below), which
 * connection sync uses: templates and flows move to the peer director and back on failover.
 */
import type { Endpoint, IpFamily, L4Protocol, ServiceKey, ServiceMatch } from '../../util/endpoint.js';
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
  /** Real-server connect timeout; after it the next real server is tried. */
  readonly connectTimeoutMs: number;
  /** UDP flow idle timeout. Default 300000 (the IPVS udp timeout). */
  readonly udpFlowTimeoutMs?: number;
  /**
   * UDP: a flow whose real server left the pool is re-scheduled on its next datagram
   * (net.ipv4.vs.expire_nodest_conn-like). Default true.
   */
  readonly expireNodestConn?: boolean;
  /** Most live TCP connections / UDP flows per client address (0 or absent = unlimited). */
  readonly maxConnsPerSource?: number;
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
  /** UDP one-packet scheduling: every datagram is scheduled on its own (ops). */
  readonly ops: boolean;
  /** PROXY kind only. */
  readonly proxy?: ProxyOptions;
}

/** One destination of a pool. `key` is endpointText(endpoint); weight 0 = quiescent (no new connections). */
export interface Destination {
  readonly key: string;
  readonly endpoint: Endpoint;
  readonly weight: number;
  /**
   * keepalived uthreshold / lthreshold (IPVS u_threshold / l_threshold): at uthreshold connections
   * the destination gets no new ones until below lthreshold (0 or absent: 3/4 of uthreshold).
   * Absent or 0 = no limit.
   */
  readonly uthreshold?: number;
  readonly lthreshold?: number;
}

export interface PoolSpec {
  readonly dests: readonly Destination[];
  /** Used while no destination has weight > 0. */
  readonly sorry: Endpoint | null;
}

/**
 * Monotonic counters, as ipvsadm --stats shows them. Packets are null where the implementation
 * never sees packets: the proxy's TCP services (it reads a byte stream from the kernel); its UDP
 * services count datagrams.
 */
export interface Counters {
  conns: number;
  in_pkts: number | null;
  out_pkts: number | null;
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
  /**
   * The proxy's TCP services: what moves their bytes, the native relay engine (native/relay_engine.c)
   * or node:net sockets. Absent elsewhere.
   */
  relay?: 'native' | 'node';
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

// ------------------------------------------------------------------------------------------------
// Connection state (optional facet): what connection sync moves between directors.

/** One connection: client -> virtual address:port -> destination. */
export interface ConnRef {
  readonly service: ServiceKey;
  readonly protocol: L4Protocol;
  readonly client: Endpoint;
  /** The address:port the client sent to (for fwmark / port-set services, the packet's own). */
  readonly virtual: Endpoint;
  readonly dest: Endpoint;
}

/** A persistence template: the client network keeps its destination until it expires. */
export interface TemplateEntry {
  readonly type: 'template';
  readonly service: ServiceKey;
  readonly family: IpFamily;
  /** The client address masked by persistence_granularity, canonical text. */
  readonly client: string;
  readonly dest: Endpoint;
  /** Remaining lifetime (relative: the directors' clocks are not synchronised). */
  readonly expiresInMs: number;
}

/** A UDP flow: the client address:port keeps its destination while datagrams flow. */
export interface UdpFlowEntry extends ConnRef {
  readonly type: 'udp_flow';
  /** Idle time left before the flow ends. */
  readonly expiresInMs: number;
}

/**
 * A live connection. The proxy lists its TCP connections for the peer's counts (it cannot move
 * them: it terminates TCP); the kernel path (nftables DR) moves them: the new master writes them
 * into its connection tables, so established flows keep their real server.
 */
export interface ConnEntry extends ConnRef {
  readonly type: 'conn';
  /** Time left before the entry expires without traffic; absent: the sync default (IPVS 900 s). */
  readonly expiresInMs?: number;
}

/**
 * What a newly promoted director adopts from the synced table before it serves. `conn` entries
 * are only taken by implementations that can pin a connection (nftables DR); others skip them.
 */
export type RestoreEntry = TemplateEntry | UdpFlowEntry | ConnEntry;

export interface ConnectionSnapshot {
  readonly templates: TemplateEntry[];
  readonly udpFlows: UdpFlowEntry[];
  readonly conns: ConnEntry[];
}

/**
 * Changes of the table, delivered in batches. Connections to the sorry server are not reported
 * (they are not synced: the sorry server is a fallback, not a member).
 */
export type ConnectionEvent = (
  | (ConnRef & { readonly type: 'conn_new'; readonly expiresInMs?: number })
  | (ConnRef & { readonly type: 'conn_end'; readonly inBytes: number; readonly outBytes: number })
  | TemplateEntry
  | (ConnRef & { readonly type: 'udp_flow_new'; readonly timeoutMs: number })
  | (ConnRef & { readonly type: 'udp_flow_expired' })
) & {
  /**
   * When the implementation observed the change (src/util/clock.ts monotonicMs, comparable across
   * worker threads): the proxy when it happened, the kernel path the table dump that first showed
   * it. Connection sync measures its lag from here. Absent: when the event was delivered.
   */
  readonly observedAt?: number;
};

export interface ConnectionState {
  /**
   * Adopt synced templates and flows. Called before serve() on promotion; an implementation
   * must apply them before it forwards anything serve() asks for after this call.
   */
  restore(entries: readonly RestoreEntry[]): Promise<void>;
  /** The whole live table (for a peer's full sync). */
  snapshot(): Promise<ConnectionSnapshot>;
  /** Subscribe to batched changes; returns the unsubscribe function. */
  onEvent(cb: (events: readonly ConnectionEvent[]) => void): () => void;
}

export function hasConnectionState(d: object): d is ConnectionState {
  const x = d as Partial<ConnectionState>;
  return typeof x.restore === 'function' && typeof x.snapshot === 'function' && typeof x.onEvent === 'function';
}

// ------------------------------------------------------------------------------------------------
// Address claim (optional facet): a takeover about to make addresses local.

export interface AddressClaim {
  /**
   * This director is about to make `addresses` local as their new owner (VRRP MASTER, called
   * before the VIPs go up). From the moment this resolves, a packet of an established connection
   * to a service on them that reaches this director before serve() has landed must be held (dropped,
   * so the client resends it), never answered with a reset — whatever a recent unserve left
   * behind (nftables: a drain's cut window). Resolves at once when there is nothing to change.
   */
  claim(addresses: readonly string[]): Promise<void>;
  /**
   * Whether claim(addresses) would have anything to do now (not resolve at once): the VIPs of a
   * takeover may then not go up before it (the advert sender thread leaves them to the loop).
   * Synchronous and cheap: asked whenever a BACKUP's takeover plan is handed over. An
   * implementation without it counts as always pending.
   */
  claimPending?(addresses: readonly string[]): boolean;
}

export function hasAddressClaim(d: object): d is AddressClaim {
  return typeof (d as Partial<AddressClaim>).claim === 'function';
}
