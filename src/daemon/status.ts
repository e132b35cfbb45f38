import type { LagSummary } from '../sync/lag.js';
import type { ConntrackdStatus } from '../sync/conntrackd.js';
/** The shape `status` returns over the control socket (and `status --json` prints). */
export interface VrrpInstanceStatus {
  name: string;
  interface: string;
  vrid: number;
  version: number;
  family: 4 | 6;
  state: string;
  priority: number;
  effective_priority: number;
  master: string | null;
  vips: string[];
  owned_vips: string[];
  transitions: number;
  adverts_sent: number;
  adverts_received: number;
  drops: Record<string, number>;
  /** VIPs put back after someone else deleted them while MASTER. */
  vips_restored: number;
  /**
   * The start-up hold is on: the daemon's data plane, first health checks or connection sync are
   * not ready yet, so this instance takes nothing over from a live master (a lone one still does).
   */
  startup_hold?: boolean;
  /**
   * With the advert sender thread (IPv4): the largest lateness (µs) of an advert it sent since the
   * instance started (against its absolute deadline), and of that how late the thread woke up.
   */
  sender_max_late_us?: number;
  sender_max_wake_late_us?: number;
}

/** ipvsadm --rate's figures, per second (the kernel estimator's 2 s EWMA, src/lvs/counters.ts). */
export interface RateStatus {
  cps: number;
  /** Null where the data plane never sees packets (the proxy's TCP services). */
  in_pps: number | null;
  out_pps: number | null;
  in_bps: number;
  out_bps: number;
}

/** An operator's runtime override (keepalive-ts weight / drain / disable) on this director. */
export interface OverrideStatus {
  action: 'weight' | 'drain' | 'disable';
  /** The weight set by `keepalive-ts weight`. */
  weight?: number;
  /** When it was set (ISO 8601). */
  since: string;
}

export interface RealServerStatus extends TrafficStatus {
  address: string;
  /** 0 = the packet's own port (fwmark / port-set services). */
  port: number;
  /** The weight in the data plane now (ipvsadm's Weight column): 0 while down, drained or disabled; ramped during slow start. */
  weight: number;
  /** `weight` in the config. */
  configured_weight?: number;
  /** The weight it settles at: the override's, else MISC_CHECK's dynamic one, else the configured one; 0 while out of service. */
  effective_weight?: number;
  /** The runtime override, null without one. */
  override?: OverrideStatus | null;
  /** Slow start in progress: since/until (ISO 8601) and how far (0..1); null otherwise. */
  slow_start?: { since: string; until: string; progress: number } | null;
  /** Passes its health checks. */
  up: boolean;
  /** Health from the checks ('unknown' before the first result). */
  health?: 'up' | 'down' | 'unknown';
  /** When the health last changed (ISO 8601); absent before the first check result. */
  last_change?: string;
  /** The checker's message at that change, e.g. "HTTP_GET[0]: status 503" (why it went down or up). */
  reason?: string;
}

/** The sorry server: not a member of the pool, listed apart with its own counters. */
export interface SorryServerStatus extends Omit<RealServerStatus, 'weight' | 'up' | 'health' | 'last_change' | 'reason' | 'configured_weight' | 'effective_weight' | 'override' | 'slow_start'> {
  /** No real server can take a connection, so new ones go here. */
  in_use: boolean;
}

/** The traffic figures of a service or a destination (ipvsadm's columns, --stats and --rate). */
export interface TrafficStatus {
  /** Established connections (IPVS ActiveConn); null where the data plane cannot tell. */
  active_conns: number | null;
  /** Other connections (IPVS InActConn); null where the data plane cannot tell. */
  inact_conns: number | null;
  conns: number;
  /** Packets; null where the data plane never sees packets (the proxy's TCP services). */
  in_pkts: number | null;
  out_pkts: number | null;
  in_bytes: number;
  out_bytes: number;
  rates?: RateStatus;
}

/** A real server's (or the sorry server's) figures in one member of a group. */
export interface MemberDestStatus extends TrafficStatus {
  address: string;
  port: number;
}

/**
 * One service of a group virtual server, with its own figures (the group's are their sums). Real
 * servers are listed in the group's order; their weight and health are the group's.
 */
export interface MemberStatus extends TrafficStatus {
  /** Its canonical service key: "tcp/10.0.0.50:80", "fwmark/1". */
  key: string;
  /** ipvsadm's spelling: "TCP  10.0.0.50:80", "FWM  1". */
  service: string;
  address?: string;
  ports?: string;
  port?: number;
  fwmark?: number;
  /** Served here (this director holds its address). */
  serving: boolean;
  real_servers: MemberDestStatus[];
  sorry_server: (MemberDestStatus & { in_use: boolean }) | null;
}

export interface VirtualServerStatus extends TrafficStatus {
  /** The canonical service key: "tcp/10.0.0.50:80", "udp/[fd00::50]:53", "fwmark/1"; "tcp/group:NAME" for a group. */
  key: string;
  /** ipvsadm's spelling: "TCP  10.0.0.50:80", "FWM  1"; "TCP  group:NAME" for a group. */
  service: string;
  protocol: string;
  /** Address services: the address, the ports ("80", "21,10000-20000") and, for one port, port. */
  address?: string;
  ports?: string;
  port?: number;
  /** fwmark services. */
  fwmark?: number;
  /** The virtual_server_group served: its members are listed in `members`, the figures here are their sums. */
  group?: string;
  members?: MemberStatus[];
  family: 4 | 6;
  /** lb_kind, and ipvsadm's Forward column for it (Route, Masq, FullNat, Proxy). */
  kind: string;
  forward: string;
  lb_algo: string;
  /** What actually schedules (flags, approximations). */
  scheduler_in_effect: string;
  /** lb_kind PROXY, TCP: what relays the bytes, the native engine or node:net (see ProxyDataplaneOptions.nativeRelay). */
  relay?: 'native' | 'node';
  /** sched_flags as configured (ipvsadm shows them after the scheduler). */
  sched_flags?: string[];
  /** persistence_timeout in seconds (0 = off) and its granularity as ipvsadm shows it ("255.255.255.0", "64"). */
  persistence_timeout?: number;
  persistence_granularity?: string;
  /** One-packet scheduling. */
  ops?: boolean;
  /** slow_start seconds (0 = off). */
  slow_start?: number;
  /** Served here (a group: some member is). */
  serving: boolean;
  /** The pool is down and the sorry server (if any) takes new connections. */
  sorry: boolean;
  /** Whether the weight of the real servers up reaches the quorum (keepalived's quorum_up/quorum_down state; what announce = "healthy" follows). */
  quorum_up?: boolean;
  real_servers: RealServerStatus[];
  sorry_server: SorryServerStatus | null;
}

/** Connection sync (present when the config has a [sync] section). */
export interface SyncStatusReport {
  /** Follows the VRRP state of `instance`: the master sends, the backup keeps the table. */
  role: 'master' | 'backup';
  instance: string;
  /** The synced table kept as backup (what a promotion restores). */
  table: { templates: number; udp_flows: number; conns: number };
  sent: { messages: number; entries: number; bytes: number; send_errors: number; queue_drops: number; snapshots: number; snapshot_requests: number };
  /** `dropped` by reason: forged (bad_hmac), replayed, malformed... (src/sync/drop.ts). */
  received: { messages: number; entries: number; bytes: number; dropped: Record<string, number>; snapshot_requests_sent: number };
  /**
   * Measured replication lag of the entries this director wrote as BACKUP (observed on the master ->
   * written into the sync table; docs/sync-protocol.md "Lag"): p50/p99/max over the last `window`
   * entries (at most 4096), the last one, entries measured / written without a measurement (a
   * version-1 peer, no echo yet) since start, and the transit estimate of the last message.
   */
  lag: LagSummary & { transit_ms: number | null };
  /** Lag-acks sent (as backup) and received (as master), and the round trip they measure (the slowest peer's median). */
  echo: { acks_sent: number; acks_received: number; rtt_ms: number | null };
  snapshots_received: number;
  snapshots_incomplete: number;
  /** From asking for a snapshot to its complete end, last time. */
  last_snapshot_ms: number | null;
  /** When the last full resync completed (ms since the epoch); null before the first. */
  last_snapshot_at: number | null;
  promotions: number;
  demotions: number;
  /** Entries (templates + UDP flows) handed to the data plane on promotions. */
  restored: number;
  /** Entries received while MASTER (another director also MASTER), ignored. */
  ignored_as_master: number;
  errors: number;
  /** conntrackd replication of NAT/FULLNAT connections ([sync.conntrackd]). */
  conntrackd?: ConntrackdStatus;
}

/** One configured BGP neighbour, as this director's BIRD sees it. */
export interface BgpSessionStatus {
  peer: string;
  remote_as: number;
  /** BIRD protocol name (kt_peer_<address>). */
  protocol: string;
  /** BGP state: Established, Idle, Connect, Active, OpenSent, OpenConfirm; Down when disabled or BIRD is not running. */
  state: string;
  established: boolean;
  /** Last state change (ISO 8601), null when unknown. */
  since: string | null;
  /** Seconds since the session was established; null when it is not. */
  uptime_s: number | null;
  /** BIRD's info column, e.g. "Active Socket: No route to host". */
  info: string;
  last_error: string | null;
  /** BFD session state (Up, Down, Init, AdminDown); null when BFD is off for this peer or has no session yet. */
  bfd: string | null;
  /** Prefixes BIRD announces to this peer now; null while the session is down. */
  exported: number | null;
}

/** One address this director may announce. */
export interface BgpPrefixStatus {
  prefix: string;
  mode: 'healthy' | 'master';
  announced: boolean;
  /** "announced: quorum on tcp/10.99.0.10:80", "withdrawn: no quorum on ...". */
  reason: string;
  /** When `announced` last changed (or the daemon started), ISO 8601. */
  since: string;
  last_withdrawal: { reason: string; at: string } | null;
}

export interface BgpStatusReport {
  local_as: number;
  router_id: string | null;
  bird: { running: boolean; pid: number | null; version: string; restarts: number; last_error: string | null; config_file: string; control_socket: string };
  /** Interfaces whose loss of link withdraws everything. */
  tracked_interfaces: Array<{ name: string; up: boolean }>;
  sessions: BgpSessionStatus[];
  prefixes: BgpPrefixStatus[];
  /** Withdrawals of an announced prefix since start, by kind (stopping, link, quorum, vrrp, not_serving, removed). */
  withdrawals: Record<string, number>;
}

export interface StatusReport {
  router_id: string;
  pid: number;
  version: string;
  config_file: string;
  uptime_s: number;
  vrrp: VrrpInstanceStatus[];
  /** Drops no instance could be blamed for (undecodable, unknown VRID), per socket "eth0/v4". */
  vrrp_socket_drops: Record<string, Record<string, number>>;
  virtual_servers: VirtualServerStatus[];
  sync?: SyncStatusReport;
  /** The data planes' own figures, e.g. nftables_sync_polls, nftables_conn_table_entries. */
  dataplane?: Record<string, number>;
  bgp?: BgpStatusReport;
}
