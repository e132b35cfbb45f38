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
  port: number;
  weight: number;
  up: boolean;
  active_conns: number;
  inact_conns: number;
  conns: number;
  in_bytes: number;
  out_bytes: number;
  /** The sorry server's row (listed after the real servers when one is configured). */
  sorry?: boolean;
  /** Health from the checks ('unknown' before the first result); absent on the sorry server's row. */
  health?: 'up' | 'down' | 'unknown';
  /** When the health last changed (ISO 8601); absent before the first check result. */
  last_change?: string;
  /** The checker's message at that change, e.g. "HTTP_GET[0]: status 503" (why it went down or up). */
  reason?: string;
}

export interface VirtualServerStatus {
  address: string;
  port: number;
  protocol: string;
  lb_algo: string;
  serving: boolean;
  sorry: boolean;
  /** Whether the weight of the real servers up reaches the quorum (keepalived's quorum_up/quorum_down state). */
  quorum_up?: boolean;
  conns: number;
  in_bytes: number;
  out_bytes: number;
  real_servers: RealServerStatus[];
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
