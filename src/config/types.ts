import type { Endpoint, GroupMember, VirtualServerKey, VirtualService } from '../util/endpoint.js';
import type { AddressFamily, ListenAddress, ParsedCidr } from './net.js';
import type { AddressSpec, RouteSpec, RuleSpec } from '../net/route-spec.js';
import type {
  CHECK_COMMON_FIELDS,
  CHECK_VARIANT_FIELDS,
  ANNOUNCE_MODES,
  BGP_FIELDS,
  BGP_PEER_FIELDS,
  CHECK_TYPES,
  CONFIG_FIELDS,
  DNS_QUERY_TYPES,
  GLOBAL_FIELDS,
  LB_ALGOS,
  LB_KINDS,
  REAL_SERVER_FIELDS,
  SCHED_FLAGS,
  SYNC_FIELDS,
  VIRTUAL_SERVER_FIELDS,
  VIRTUAL_SERVER_GROUP_FIELDS,
  VRRP_INSTANCE_FIELDS,
  VRRP_SCRIPT_FIELDS,
  VRRP_SYNC_GROUP_FIELDS,
  VRRP_TRACK_PROCESS_FIELDS,
  PARAM_MATCH,
} from './schema.js';

/*
 * The loaded configuration: TOML key names, every default filled in (inherited ones included),
 * plus a few parsed forms (marked "parsed") so engines never re-parse text.
 * Optional properties are the keys without a default.
 */

export type LbAlgo = (typeof LB_ALGOS)[number];
export type LbKind = (typeof LB_KINDS)[number];
export type SchedFlag = (typeof SCHED_FLAGS)[number];
export type CheckType = (typeof CHECK_TYPES)[number];
export type DnsQueryType = (typeof DNS_QUERY_TYPES)[number];
export type AnnounceMode = (typeof ANNOUNCE_MODES)[number];

export interface GlobalConfig {
  router_id: string;
  control_socket: string;
  metrics_listen: string;
  pid_file: string;
  vrrp_mcast_group4: string;
  vrrp_mcast_group6: string;
  vrrp_version: 2 | 3;
  vrrp_garp_master_delay: number;
  vrrp_garp_master_repeat: number;
  vrrp_garp_master_refresh: number;
  vrrp_garp_master_refresh_repeat: number;
  vrrp_garp_interval: number;
  vrrp_gna_interval: number;
  vrrp_startup_delay: number;
  v3_checksum_as_v2: boolean;
  vrrp_check_unicast_src: boolean;
  /** Real-time priority (SCHED_RR) of the VRRP advert sender thread; 0 = SCHED_OTHER. */
  vrrp_rt_priority: number;
  /** RLIMIT_RTTIME (µs, hard; soft = half) set with vrrp_rt_priority; 0 = unchanged. */
  vrrp_rlimit_rttime: number;
  drain_timeout: number;
  /** 0 = one per CPU (availableParallelism). */
  proxy_workers: number;
  enable_script_security: boolean;
  maxconn: number;
  reserved_fds: number;
  /** Seconds. */
  lvs_timeouts: { tcp: number; tcpfin: number; udp: number };
  script_user?: string;
  notification_email: string[];
  notification_email_from: string;
  smtp_server?: string;
  smtp_helo_name: string;
  smtp_connect_timeout: number;
  /** Unset unless given: the per-section defaults differ (see smtp_alert in the reference). */
  smtp_alert?: boolean;
  smtp_alert_vrrp?: boolean;
  smtp_alert_checker?: boolean;
  no_email_faults: boolean;
  static_ipaddress: string[];
  static_routes: string[];
  static_rules: string[];
  /** parsed static_ipaddress / static_routes / static_rules. */
  static_ipaddress_parsed: AddressSpec[];
  static_routes_parsed: RouteSpec[];
  static_rules_parsed: RuleSpec[];
  /** parsed metrics_listen; null when "" (disabled). */
  metrics: ListenAddress | null;
  /** parsed smtp_server (port 25 unless given); null when unset. */
  smtp: ListenAddress | null;
}

/** A track_interface / track_script entry; a bare name is normalized to this form. */
export interface TrackRef {
  name: string;
  /** For track_script, defaults to the vrrp_script's weight; for track_interface, to 0 (FAULT). */
  weight: number;
}

export interface NotifyConfig {
  notify_master?: string;
  notify_backup?: string;
  notify_fault?: string;
  notify_stop?: string;
  notify?: string;
}

export interface VrrpInstanceConfig extends NotifyConfig {
  name: string;
  state: 'MASTER' | 'BACKUP';
  interface: string;
  virtual_router_id: number;
  priority: number;
  /** Seconds (fractional for version 3). */
  advert_int: number;
  version: 2 | 3;
  virtual_ipaddress: string[];
  virtual_ipaddress_excluded: string[];
  authentication?: { type: 'PASS'; password: string };
  nopreempt: boolean;
  preempt_delay: number;
  unicast_src_ip?: string;
  /** Peer addresses (a `{ address, min_ttl, max_ttl }` entry is normalized to its address). */
  unicast_peer: string[];
  check_unicast_src: boolean;
  mcast_src_ip?: string;
  track_interface: TrackRef[];
  track_script: TrackRef[];
  garp_master_delay: number;
  garp_master_repeat: number;
  garp_master_refresh: number;
  garp_master_refresh_repeat: number;
  lower_prio_no_advert: boolean;
  higher_prio_send_advert: boolean;
  accept: boolean;
  skip_check_adv_addr: boolean;
  v3_checksum_as_v2: boolean;
  dont_track_primary: boolean;
  /** false, true (default name) or the macvlan's name. */
  use_vmac: boolean | string;
  vmac_xmit_base: boolean;
  virtual_routes: string[];
  virtual_rules: string[];
  track_process: TrackRef[];
  /** Resolved: own value, else global.smtp_alert_vrrp, else global.smtp_alert, else false. */
  smtp_alert: boolean;
  /** parsed: the macvlan's name when use_vmac is on, else null. */
  vmac_ifname: string | null;
  /** parsed virtual_routes / virtual_rules. */
  virtual_routes_parsed: RouteSpec[];
  virtual_rules_parsed: RuleSpec[];
  /** parsed: address family of the VIPs. */
  family: AddressFamily;
  /** parsed virtual_ipaddress. */
  virtual_ipaddress_parsed: ParsedCidr[];
  /** parsed virtual_ipaddress_excluded. */
  virtual_ipaddress_excluded_parsed: ParsedCidr[];
  /** parsed: advert_int in centiseconds, the unit VRRPv3 carries on the wire. */
  advert_int_cs: number;
  /** parsed: each unicast_peer with its TTL bounds (0..255 when not given). */
  unicast_peer_ttl: { address: string; min_ttl: number; max_ttl: number }[];
}

export interface VrrpSyncGroupConfig extends NotifyConfig {
  name: string;
  group: string[];
  track_script: TrackRef[];
  /** Resolved like vrrp_instance.smtp_alert. */
  smtp_alert: boolean;
}

export type ParamMatch = (typeof PARAM_MATCH)[number];

export interface VrrpTrackProcessConfig {
  name: string;
  /** A bare name is normalized to a one-element array: [name, ...parameters]. */
  process: string[];
  param_match?: ParamMatch;
  weight: number;
  reverse: boolean;
  quorum: number;
  /** Unlimited when unset. */
  quorum_max?: number;
  delay: number;
  fork_delay: number;
  terminate_delay: number;
  full_command: boolean;
}

export interface VrrpScriptConfig {
  name: string;
  script: string;
  interval: number;
  timeout: number;
  weight: number;
  rise: number;
  fall: number;
  user?: string;
  init_fail: boolean;
}

export interface CheckCommon {
  connect_timeout: number;
  retry: number;
  delay_before_retry: number;
  delay_loop: number;
  warmup: number;
  connect_ip: string;
  connect_port: number;
  bind_to?: string;
}

export interface HttpCheckFields {
  path: string;
  /** Every accepted code, ranges expanded and sorted (the file may say "200-299"). */
  status_code: number[];
  digest?: string;
  regex?: string;
  virtualhost?: string;
}

export interface TcpCheck extends CheckCommon {
  type: 'TCP_CHECK';
}
export interface HttpGetCheck extends CheckCommon, HttpCheckFields {
  type: 'HTTP_GET';
}
export interface SslGetCheck extends CheckCommon, HttpCheckFields {
  type: 'SSL_GET';
  sni?: string;
  verify: boolean;
}
export interface MiscCheck extends CheckCommon {
  type: 'MISC_CHECK';
  misc_path: string;
  misc_timeout: number;
  misc_dynamic: boolean;
  user?: string;
}
export interface UdpCheck extends CheckCommon {
  type: 'UDP_CHECK';
  payload: string;
  require_reply: boolean;
}
export interface DnsCheck extends CheckCommon {
  type: 'DNS_CHECK';
  query_type: DnsQueryType;
  name: string;
}
export interface FileCheck extends CheckCommon {
  type: 'FILE_CHECK';
  file: string;
  weight: number;
}
export interface SmtpCheck extends CheckCommon {
  type: 'SMTP_CHECK';
  helo_name: string;
}
export interface PingCheck extends CheckCommon {
  type: 'PING_CHECK';
}

export type CheckConfig = TcpCheck | HttpGetCheck | SslGetCheck | MiscCheck | UdpCheck | DnsCheck | FileCheck | SmtpCheck | PingCheck;

export interface RealServerConfig {
  address: string;
  /** 0 in fwmark / port-set services when omitted: the packet's own destination port. */
  port: number;
  weight: number;
  inhibit_on_failure: boolean;
  notify_up?: string;
  notify_down?: string;
  /** Resolved: own value, else global.smtp_alert_checker, else global.smtp_alert, else true. */
  smtp_alert: boolean;
  uthreshold: number;
  lthreshold: number;
  /** Always an array, even when the file has a single inline table. */
  check: CheckConfig[];
  /** parsed: address and port (canonical). */
  endpoint: Endpoint;
}

export interface VirtualServerGroupConfig {
  name: string;
  members: string[];
  /** parsed members, in file order (a range stays one entry). */
  members_parsed: GroupMember[];
  /** parsed: the one address family of the members. */
  family: AddressFamily;
}

export interface VirtualServerConfig {
  /** The virtual_server_group whose members this virtual server serves (then no address/port/ports/fwmark). */
  group?: string;
  /** Absent for fwmark and group services. */
  address?: string;
  /** Absent for fwmark and port-set services. */
  port?: number;
  ports?: (number | string)[];
  fwmark?: number;
  ip_family?: 'inet' | 'inet6';
  protocol: 'TCP' | 'UDP';
  lb_algo: LbAlgo;
  lb_kind: LbKind;
  sched_flags: SchedFlag[];
  mh_table_size: number;
  /** Filled with the derived default when absent. */
  hash_seed: number;
  persistence_timeout: number;
  persistence_granularity: string;
  delay_loop: number;
  quorum: number;
  hysteresis: number;
  quorum_up?: string;
  quorum_down?: string;
  /** Resolved: own value, else global.smtp_alert_checker, else global.smtp_alert, else false. */
  smtp_alert: boolean;
  alpha: boolean;
  omega: boolean;
  inhibit_on_failure: boolean;
  sorry_server?: { address: string; port: number };
  sorry_server_inhibit: boolean;
  virtualhost?: string;
  ha_suspend: boolean;
  ops: boolean;
  /** Unset: each check uses its type's keepalived default. */
  retry?: number;
  delay_before_retry?: number;
  connect_timeout: number;
  /** Unset: each check's warmup is its delay_loop. */
  warmup?: number;
  maxconn_per_source: number;
  depool_threshold: number;
  proxy_protocol: '' | 'v1' | 'v2';
  /** Seconds of slow start (0 = off). */
  slow_start: number;
  drain_timeout: number;
  /** Resolved: the default ("master" / "healthy" / "never") is filled in by the semantic pass. */
  announce: AnnounceMode;
  real_server: RealServerConfig[];
  /** parsed: address family of the service (of `address`, or ip_family / the servers for fwmark). */
  family: AddressFamily;
  /** parsed persistence_granularity as a prefix length. */
  persistence_prefix: number;
  /**
   * parsed: the services served, each with its match and canonical key: one (address + ports, or
   * the firewall mark), or one per address and mark of the group, ranges expanded.
   */
  members: VirtualService[];
  /** parsed: the identity: the one service's key ("tcp/10.0.0.50:80", "fwmark/1") or "tcp/group:NAME". */
  key: VirtualServerKey;
  /** parsed sorry_server. */
  sorry_endpoint: Endpoint | null;
}

export interface SyncConfig {
  interface: string;
  instance: string;
  group: string;
  port: number;
  ttl: number;
  sync_id: number;
  auth_key?: string;
  auth_key_file?: string;
  unicast_peer: string[];
  /** conntrackd replication of NAT/FULLNAT connections ([sync.conntrackd]); absent: off. */
  conntrackd?: ConntrackdConfig;
}

export interface ConntrackdConfig {
  destination_address: string;
  address?: string;
  port: number;
  protocols: Array<'tcp' | 'udp'>;
  binary: string;
}

export interface BgpPeerConfig {
  /** Canonical address. */
  address: string;
  remote_as: number;
  bfd: boolean;
  hold_time: number;
  password?: string;
  /** parsed: address family of `address` (the channel the peer carries). */
  family: AddressFamily;
}

export interface BgpConfig {
  local_as: number;
  router_id?: string;
  med?: number;
  as_path_prepend: number;
  bfd_interval: number;
  bfd_multiplier: number;
  /** Absent: the interfaces the peers are reached through. */
  track_interface?: string[];
  kernel_table: number;
  kernel_protocol: number;
  runtime_dir: string;
  peer: BgpPeerConfig[];
}

export interface Config {
  /** The file name the config was parsed from (as given to parseConfig). */
  file: string;
  global: GlobalConfig;
  vrrp_script: VrrpScriptConfig[];
  vrrp_instance: VrrpInstanceConfig[];
  vrrp_sync_group: VrrpSyncGroupConfig[];
  virtual_server_group: VirtualServerGroupConfig[];
  virtual_server: VirtualServerConfig[];
  sync?: SyncConfig;
  bgp?: BgpConfig;
  vrrp_track_process: VrrpTrackProcessConfig[];
}

/*
 * Compile-time guard against drift: each interface must have exactly the schema's keys, apart
 * from the listed parsed additions. A key added on one side only fails the build here.
 */
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
type KeysMatch<I, F, Extra extends string = never> = Exact<Exclude<keyof I, Extra>, keyof F>;
type Variant<C extends CheckCommon> = Omit<C, keyof CheckCommon | 'type'>;

export type SchemaTypeGuards = [
  Assert<KeysMatch<Config, typeof CONFIG_FIELDS, 'file'>>,
  Assert<KeysMatch<GlobalConfig, typeof GLOBAL_FIELDS, 'metrics' | 'smtp' | 'static_ipaddress_parsed' | 'static_routes_parsed' | 'static_rules_parsed'>>,
  Assert<KeysMatch<VrrpInstanceConfig, typeof VRRP_INSTANCE_FIELDS, 'family' | 'virtual_ipaddress_parsed' | 'virtual_ipaddress_excluded_parsed' | 'advert_int_cs' | 'unicast_peer_ttl' | 'vmac_ifname' | 'virtual_routes_parsed' | 'virtual_rules_parsed'>>,
  Assert<KeysMatch<VrrpTrackProcessConfig, typeof VRRP_TRACK_PROCESS_FIELDS>>,
  Assert<KeysMatch<VrrpSyncGroupConfig, typeof VRRP_SYNC_GROUP_FIELDS>>,
  Assert<KeysMatch<VrrpScriptConfig, typeof VRRP_SCRIPT_FIELDS>>,
  Assert<KeysMatch<VirtualServerConfig, typeof VIRTUAL_SERVER_FIELDS, 'family' | 'persistence_prefix' | 'members' | 'key' | 'sorry_endpoint'>>,
  Assert<KeysMatch<VirtualServerGroupConfig, typeof VIRTUAL_SERVER_GROUP_FIELDS, 'members_parsed' | 'family'>>,
  Assert<KeysMatch<RealServerConfig, typeof REAL_SERVER_FIELDS, 'endpoint'>>,
  Assert<KeysMatch<SyncConfig, typeof SYNC_FIELDS>>,
  Assert<KeysMatch<BgpConfig, typeof BGP_FIELDS>>,
  Assert<KeysMatch<BgpPeerConfig, typeof BGP_PEER_FIELDS, 'family'>>,
  Assert<KeysMatch<CheckCommon, typeof CHECK_COMMON_FIELDS>>,
  Assert<KeysMatch<Variant<TcpCheck>, (typeof CHECK_VARIANT_FIELDS)['TCP_CHECK']>>,
  Assert<KeysMatch<Variant<HttpGetCheck>, (typeof CHECK_VARIANT_FIELDS)['HTTP_GET']>>,
  Assert<KeysMatch<Variant<SslGetCheck>, (typeof CHECK_VARIANT_FIELDS)['SSL_GET']>>,
  Assert<KeysMatch<Variant<MiscCheck>, (typeof CHECK_VARIANT_FIELDS)['MISC_CHECK']>>,
  Assert<KeysMatch<Variant<UdpCheck>, (typeof CHECK_VARIANT_FIELDS)['UDP_CHECK']>>,
  Assert<KeysMatch<Variant<DnsCheck>, (typeof CHECK_VARIANT_FIELDS)['DNS_CHECK']>>,
  Assert<KeysMatch<Variant<FileCheck>, (typeof CHECK_VARIANT_FIELDS)['FILE_CHECK']>>,
  Assert<KeysMatch<Variant<SmtpCheck>, (typeof CHECK_VARIANT_FIELDS)['SMTP_CHECK']>>,
  Assert<KeysMatch<Variant<PingCheck>, (typeof CHECK_VARIANT_FIELDS)['PING_CHECK']>>,
];
