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
}

export interface RealServerStatus {
  address: string;
  /** 0 = the packet's own port (fwmark / port-set services). */
  port: number;
  weight: number;
  up: boolean;
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
  /** Health from the checks ('unknown' before the first result). */
  health?: 'up' | 'down' | 'unknown';
  /** When the health last changed (ISO 8601); absent before the first check result. */
  last_change?: string;
  /** The checker's message at that change, e.g. "HTTP_GET[0]: status 503" (why it went down or up). */
  reason?: string;
}

/** The sorry server: not a member of the pool, listed apart with its own counters. */
export interface SorryServerStatus extends Omit<RealServerStatus, 'weight' | 'up' | 'health' | 'last_change' | 'reason'> {
  /** No real server can take a connection, so new ones go here. */
  in_use: boolean;
}

export interface VirtualServerStatus {
  /** The canonical service key: "tcp/10.0.0.50:80", "udp/[fd00::50]:53", "fwmark/1". */
  key: string;
  /** ipvsadm's spelling: "TCP  10.0.0.50:80", "FWM  1". */
  service: string;
  protocol: string;
  /** Address services: the address, the ports ("80", "21,10000-20000") and, for one port, port. */
  address?: string;
  ports?: string;
  port?: number;
  /** fwmark services. */
  fwmark?: number;
  family: 4 | 6;
  /** lb_kind, and ipvsadm's Forward column for it (Route, Masq, FullNat, Proxy). */
  kind: string;
  forward: string;
  lb_algo: string;
  /** What actually schedules (flags, approximations). */
  scheduler_in_effect: string;
  serving: boolean;
  /** The pool is down and the sorry server (if any) takes new connections. */
  sorry: boolean;
  /** Whether the weight of the real servers up reaches the quorum (keepalived's quorum_up/quorum_down state). */
  quorum_up?: boolean;
  conns: number;
  in_pkts: number | null;
  out_pkts: number | null;
  in_bytes: number;
  out_bytes: number;
  active_conns: number | null;
  inact_conns: number | null;
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
  snapshots_received: number;
  snapshots_incomplete: number;
  /** From asking for a snapshot to its complete end, last time. */
  last_snapshot_ms: number | null;
  promotions: number;
  demotions: number;
  /** Entries (templates + UDP flows) handed to the data plane on promotions. */
  restored: number;
  /** Entries received while MASTER (another director also MASTER), ignored. */
  ignored_as_master: number;
  errors: number;
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
}
