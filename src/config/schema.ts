import { hostname, userInfo } from 'node:os';
import { MAGLEV_DEFAULT_TABLE_SIZE, MAGLEV_MAX_TABLE_SIZE } from '../lvs/maglev.js';
import { SCHEDULER_NAMES } from '../lvs/scheduler-names.js';
import type { FieldSpec, Fields, ValueSpec } from './schema-types.js';

/*
 * The one list of every config key: type, default, constraint, doc line and keepalived spelling.
 * The validator, the generated docs (schemaRows) and the example-config test all read it, so they
 * cannot drift apart. Cross-key rules (VRID uniqueness, references, version-dependent ranges) live
 * in semantic.ts.
 */

const str = (extra: Omit<Extract<ValueSpec, { kind: 'string' }>, 'kind'> = {}): ValueSpec => ({ kind: 'string', ...extra });
const int = (min?: number, max?: number): ValueSpec => ({ kind: 'integer', min, max });
const num = (min?: number, max?: number): ValueSpec => ({ kind: 'number', min, max });
const BOOL: ValueSpec = { kind: 'boolean' };
const NAME = str({ minLength: 1 });
const PORT = int(1, 65535);
const IP = str({ format: 'ip' });
const SECONDS = num(0);
const POSITIVE_SECONDS = num(0.001);
const TRACK_WEIGHT = int(-253, 253);
const AS_NUMBER = int(1, 4294967295);
const arrayOf = (of: ValueSpec, minItems?: number): ValueSpec => ({ kind: 'array', of, minItems });
const tables = (fields: Fields, scope?: 'virtual_server' | 'real_server'): ValueSpec => ({
  kind: 'array',
  of: { kind: 'table', fields, scope },
});

/** The shortest sync key accepted (HMAC-SHA256 keys shorter than this are guessable offline). */
export const MIN_SYNC_KEY_BYTES = 16;

export const LB_ALGOS = SCHEDULER_NAMES;
/** keepalived's lb_kind values we forward (FULLNAT and PROXY are ours); see lvs/dataplane/contract.ts. */
export const LB_KINDS = ['DR', 'NAT', 'FULLNAT', 'PROXY'] as const;
/** keepalived's scheduler flags (ipvsadm -b): flag-1 is *-fallback, flag-2 is *-port for sh and mh. */
export const SCHED_FLAGS = ['sh-port', 'sh-fallback', 'mh-port', 'mh-fallback', 'flag-1', 'flag-2'] as const;
export const ANNOUNCE_MODES = ['healthy', 'master', 'never'] as const;
export const CHECK_TYPES = ['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'MISC_CHECK', 'UDP_CHECK', 'DNS_CHECK', 'FILE_CHECK', 'SMTP_CHECK', 'PING_CHECK'] as const;
export const DNS_QUERY_TYPES = ['A', 'NS', 'CNAME', 'SOA', 'MX', 'TXT', 'AAAA', 'RRSIG', 'DNSKEY'] as const;

/**
 * keepalived's per-check-type defaults (check_http.c, check_dns.c, check_misc.c), used when neither
 * the check nor its virtual_server sets the key; semantic.ts applies them.
 */
export const CHECK_TYPE_DEFAULTS: Readonly<Record<(typeof CHECK_TYPES)[number], { retry: number; delay_before_retry: number | 'delay_loop' }>> = {
  TCP_CHECK: { retry: 1, delay_before_retry: 1 },
  HTTP_GET: { retry: 1, delay_before_retry: 3 },
  SSL_GET: { retry: 1, delay_before_retry: 3 },
  MISC_CHECK: { retry: 0, delay_before_retry: 1 },
  UDP_CHECK: { retry: 1, delay_before_retry: 1 },
  DNS_CHECK: { retry: 3, delay_before_retry: 'delay_loop' },
  FILE_CHECK: { retry: 1, delay_before_retry: 1 },
  SMTP_CHECK: { retry: 1, delay_before_retry: 1 },
  PING_CHECK: { retry: 1, delay_before_retry: 1 },
};

/** keepalived's SMTP_DEFAULT_HELO. */
export const SMTP_DEFAULT_HELO = 'smtpchecker.keepalived.org';

function field(type: ValueSpec, doc: string, keepalived: string | null, extra: Omit<FieldSpec, 'type' | 'doc' | 'keepalived'> = {}): FieldSpec {
  return { type, doc, keepalived, ...extra };
}

const NOTIFY_DOC = (what: string): string => `script or command run when ${what}`;

/** `track_script = ["chk", { name = "chk2", weight = -20 }]`; likewise track_interface. */
const trackList = (what: string): ValueSpec =>
  arrayOf({
    kind: 'oneOf',
    options: [
      NAME,
      {
        kind: 'table',
        fields: {
          name: field(NAME, `${what} name`, null, { required: true }),
          weight: field(TRACK_WEIGHT, 'priority change while failing (0 = go to FAULT)', 'weight'),
        },
      },
    ],
  });

/** E-mail alerts (keepalived global_defs notification_email ... smtp_alert_checker). */
const SMTP_GLOBAL_FIELDS = {
  notification_email: field(arrayOf(str({ format: 'email' })), 'recipients of alert mails ("a@b" or "Name <a@b>"); none = no mail', 'notification_email', { default: [] }),
  notification_email_from: field(str({ format: 'email' }), 'From: address of alert mails', 'notification_email_from', {
    defaultFn: () => `${safeUser()}@${hostname()}`,
    defaultText: '"USER@HOSTNAME" (the daemon user)',
  }),
  smtp_server: field(str({ format: 'hostport' }), 'SMTP relay alerts are sent through, "host" or "host:port" (port 25 by default); unset = no mail', 'smtp_server <HOST> [<PORT>]'),
  smtp_helo_name: field(NAME, 'name sent in HELO', 'smtp_helo_name', { defaultFn: () => hostname(), defaultText: 'the hostname' }),
  smtp_connect_timeout: field(POSITIVE_SECONDS, 'seconds to connect to the SMTP server and for each of its replies', 'smtp_connect_timeout', { default: 30 }),
  smtp_alert: field(BOOL, 'default of every smtp_alert (instances, sync groups, virtual and real servers)', 'smtp_alert', {
    defaultText: 'unset: instances, sync groups and virtual servers false, real servers true (as keepalived)',
  }),
  smtp_alert_vrrp: field(BOOL, 'default of vrrp_instance / vrrp_sync_group smtp_alert', 'smtp_alert_vrrp', { defaultText: 'global.smtp_alert' }),
  smtp_alert_checker: field(BOOL, 'default of virtual_server / real_server smtp_alert', 'smtp_alert_checker', { defaultText: 'global.smtp_alert' }),
  no_email_faults: field(BOOL, 'send no alert mail for FAULT states', 'no_email_faults', { default: false }),
} satisfies Fields;

/** userInfo() throws for a uid with no passwd entry (containers); fall back to the uid. */
function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'keepalive-ts');
  }
}

export const GLOBAL_FIELDS = {
  router_id: field(NAME, 'identifies this director in logs and notifications', 'router_id', {
    defaultFn: () => hostname(),
    defaultText: 'the hostname',
  }),
  control_socket: field(NAME, 'Unix socket for the keepalive-ts CLI (status, reload)', null, { default: '/run/keepalive-ts.sock' }),
  metrics_listen: field(str({ format: 'listen' }), 'Prometheus /metrics listen address; "" disables the endpoint', null, {
    default: '127.0.0.1:9650',
  }),
  pid_file: field(NAME, 'pid file written at startup', 'pid_file', { default: '/run/keepalive-ts.pid' }),
  vrrp_mcast_group4: field(str({ format: 'multicast4' }), 'IPv4 multicast group for VRRP adverts', 'vrrp_mcast_group4', {
    default: '224.0.0.18',
  }),
  vrrp_mcast_group6: field(str({ format: 'multicast6' }), 'IPv6 multicast group for VRRP adverts', 'vrrp_mcast_group6', {
    default: 'ff02::12',
  }),
  vrrp_version: field(int(2, 3), 'default VRRP version of instances', 'vrrp_version', { default: 2 }),
  vrrp_garp_master_delay: field(int(0), 'seconds after becoming MASTER before the second burst of gratuitous ARPs/NAs', 'vrrp_garp_master_delay', { default: 5 }),
  vrrp_garp_master_repeat: field(int(1), 'gratuitous ARPs/NAs sent per burst on becoming MASTER', 'vrrp_garp_master_repeat', { default: 5 }),
  vrrp_garp_master_refresh: field(int(0), 'seconds between periodic gratuitous ARP refreshes while MASTER (0 = off)', 'vrrp_garp_master_refresh', { default: 0 }),
  vrrp_garp_master_refresh_repeat: field(int(1), 'gratuitous ARPs per refresh', 'vrrp_garp_master_refresh_repeat', { default: 1 }),
  vrrp_garp_interval: field(SECONDS, 'seconds between gratuitous ARPs on one interface (0 = back to back)', 'vrrp_garp_interval', { default: 0 }),
  vrrp_gna_interval: field(SECONDS, 'seconds between unsolicited neighbour adverts on one interface (0 = back to back)', 'vrrp_gna_interval', { default: 0 }),
  vrrp_startup_delay: field(SECONDS, 'seconds to wait after startup before VRRP instances start', 'vrrp_startup_delay', { default: 0 }),
  v3_checksum_as_v2: field(BOOL, 'compute VRRPv3 IPv4 checksums without the pseudo-header (old keepalived peers)', 'vrrp_v3_checksum_as_v2', { default: false }),
  vrrp_check_unicast_src: field(BOOL, 'default of vrrp_instance.check_unicast_src (on here; keepalived defaults to off)', 'vrrp_check_unicast_src', { default: true }),
  vrrp_rt_priority: field(int(0, 99),
    'real-time priority (SCHED_RR) of the VRRP advert sender thread: the thread that sends MASTER adverts and takes over when a down timer expires, and nothing else (the event loop, checks and data plane stay SCHED_OTHER); so a busy CPU does not delay adverts. 0 = SCHED_OTHER. Needs CAP_SYS_NICE (root has it) or RLIMIT_RTPRIO; when refused the thread stays SCHED_OTHER and a warning is logged. keepalived applies it to its whole VRRP process and defaults to off',
    'vrrp_rt_priority', { default: 1 }),
  vrrp_rlimit_rttime: field(int(0),
    'with vrrp_rt_priority: microseconds of CPU the real-time sender thread may use without blocking (RLIMIT_RTTIME): SIGXCPU (logged) at half, the kernel kills the daemon at the whole, so a runaway real-time thread cannot hold a CPU; 0 = leave the limit alone',
    'vrrp_rlimit_rttime', { default: 10000 }),
  drain_timeout: field(SECONDS, 'seconds existing connections may finish on stop or demotion before they are closed', null, { default: 30 }),
  proxy_workers: field(int(0, 256), 'worker threads of the user-space proxy (lb_kind PROXY); 0 = one per CPU', null, { default: 0 }),
  enable_script_security: field(BOOL, 'refuse scripts that would run as root while a non-root user could modify them (file or any parent directory), and scripts with no user to run as', 'enable_script_security', { default: false }),
  maxconn: field(int(0), 'most proxied TCP connections and UDP flows at once, all virtual servers together; at the cap listeners pause until below 90 % (0 = computed at start: (descriptor limit - reserved_fds) / 2; a larger value is lowered to that)', null, { default: 0 }),
  reserved_fds: field(int(32), 'descriptors kept out of the connection budget for the control socket, metrics, health checks, scripts, VRRP and sync', null, { default: 256 }),
  lvs_timeouts: field(
    {
      kind: 'table',
      fields: {
        tcp: field(POSITIVE_SECONDS, 'an established TCP connection idle (no byte either way) this long is closed', 'tcp', { default: 900 }),
        tcpfin: field(POSITIVE_SECONDS, 'a TCP connection idle this long after either side sent FIN is closed', 'tcpfin', { default: 120 }),
        udp: field(POSITIVE_SECONDS, 'a UDP flow idle this long ends', 'udp', { default: 300 }),
      },
    },
    'idle timeouts of proxied connections, in seconds (IPVS defaults)',
    'lvs_timeouts tcp <T> tcpfin <T> udp <T>',
    { default: {} },
  ),
  script_user: field(NAME, 'user (and optional ":group") every script runs as when not set per script (with its supplementary groups and HOME)', 'script_user', {
    defaultText: 'keepalived_script if that user exists, else the user keepalive-ts runs as (refused with enable_script_security)',
  }),
  ...SMTP_GLOBAL_FIELDS,
  // keepalived's top-level static_ipaddress / static_routes / static_rules blocks.
  static_ipaddress: field(arrayOf(str({ minLength: 1 })), 'addresses added at start and removed at stop, "ADDR[/PREFIX] dev NAME [scope S] [label L] [brd B]"', 'static_ipaddress', { default: [] }),
  static_routes: field(arrayOf(str({ minLength: 1 })), 'routes added at start and removed at stop; `ip route` syntax as keepalived (see Routes and rules)', 'static_routes', { default: [] }),
  static_rules: field(arrayOf(str({ minLength: 1 })), 'policy rules added at start and removed at stop; `ip rule` syntax as keepalived (see Routes and rules)', 'static_rules', { default: [] }),
} satisfies Fields;

const NOTIFY_FIELDS = {
  notify_master: field(NAME, NOTIFY_DOC('entering MASTER'), 'notify_master'),
  notify_backup: field(NAME, NOTIFY_DOC('entering BACKUP'), 'notify_backup'),
  notify_fault: field(NAME, NOTIFY_DOC('entering FAULT'), 'notify_fault'),
  notify_stop: field(NAME, NOTIFY_DOC('stopping'), 'notify_stop'),
  notify: field(NAME, 'script run on every state change with "INSTANCE|GROUP name state priority" arguments', 'notify'),
} satisfies Fields;

/** Instance keys of keepalived's use_vmac, virtual_routes/rules, track_process and smtp_alert. */
const VRRP_PARITY_FIELDS = {
  use_vmac: field(
    { kind: 'oneOf', options: [BOOL, str({ minLength: 1, maxLength: 15 })] },
    'run on a private-mode macvlan with the virtual MAC 00:00:5e:00:01:VRID (IPv6 00:00:5e:00:02:VRID); true names it vrrp.VRID (vrrp6.VRID), a string names it',
    'use_vmac [<VMAC_INTERFACE>]',
    { default: false },
  ),
  vmac_xmit_base: field(BOOL, 'with use_vmac: send and receive adverts on the base interface instead of the macvlan', 'vmac_xmit_base', { default: false }),
  virtual_routes: field(arrayOf(str({ minLength: 1 })), 'routes added while MASTER, removed otherwise; `ip route` syntax as keepalived (see Routes and rules)', 'virtual_routes', { default: [] }),
  virtual_rules: field(arrayOf(str({ minLength: 1 })), 'policy rules added while MASTER, removed otherwise; `ip rule` syntax as keepalived (see Routes and rules)', 'virtual_rules', { default: [] }),
  track_process: field(trackList('vrrp_track_process'), 'vrrp_track_process entries whose quorum lowers priority or forces FAULT', 'track_process', { default: [] }),
  smtp_alert: field(BOOL, 'send an alert mail on every state change', 'smtp_alert', { defaultText: 'global.smtp_alert_vrrp, else global.smtp_alert, else false' }),
} satisfies Fields;

export const VRRP_INSTANCE_FIELDS = {
  name: field(NAME, 'unique instance name', 'vrrp_instance <NAME>', { required: true }),
  state: field(str({ enum: ['MASTER', 'BACKUP'] }), 'initial state hint; the election decides the real state', 'state', { default: 'BACKUP' }),
  interface: field(NAME, 'interface adverts are sent on and VIPs are added to', 'interface', { required: true }),
  virtual_router_id: field(int(1, 255), 'VRID shared by both directors, unique per interface and family', 'virtual_router_id', { required: true }),
  priority: field(int(1, 255), 'election priority, higher wins (255 = address owner)', 'priority', { default: 100 }),
  advert_int: field(num(0.01, 255), 'advert interval in seconds: whole 1..255 for v2, 0.01..40.95 for v3', 'advert_int', { default: 1 }),
  version: field(int(2, 3), 'VRRP version 2 (RFC 3768, IPv4) or 3 (RFC 5798)', 'version', {
    defaultFrom: { scope: 'global', key: 'vrrp_version' },
    defaultText: 'global.vrrp_version',
  }),
  virtual_ipaddress: field(arrayOf(str({ format: 'cidr' }), 1), 'VIPs as "addr[/prefix]" (default /32 or /128), all of one family', 'virtual_ipaddress', { required: true }),
  virtual_ipaddress_excluded: field(arrayOf(str({ format: 'cidr' })), 'addresses moved with the VIPs but not carried in adverts', 'virtual_ipaddress_excluded', { default: [] }),
  authentication: field(
    {
      kind: 'table',
      fields: {
        type: field(str({ enum: ['PASS'] }), 'authentication type (only simple password)', 'auth_type', { required: true }),
        password: field(str({ minLength: 1, maxLength: 8 }), 'password carried in clear in every advert', 'auth_pass', { required: true }),
      },
    },
    'VRRPv2 simple password authentication (not allowed with version 3)',
    'authentication { auth_type auth_pass }',
  ),
  nopreempt: field(BOOL, 'do not take over from a lower priority MASTER', 'nopreempt', { default: false }),
  preempt_delay: field(num(0, 1000), 'seconds after startup before this instance preempts', 'preempt_delay', { default: 0 }),
  unicast_src_ip: field(IP, 'source address for unicast adverts', 'unicast_src_ip', { defaultText: 'the interface primary address' }),
  unicast_peer: field(
    arrayOf({
      kind: 'oneOf',
      options: [
        IP,
        {
          kind: 'table',
          fields: {
            address: field(IP, 'peer address', 'unicast_peer { <IPADDR> }', { required: true }),
            min_ttl: field(int(0, 255), 'lowest TTL / hop limit accepted on adverts from this peer', 'min_ttl', { default: 0 }),
            max_ttl: field(int(0, 255), 'highest TTL / hop limit accepted on adverts from this peer', 'max_ttl', { default: 255 }),
          },
        },
      ],
    }),
    'send adverts by unicast to these peers instead of multicast: addresses or { address, min_ttl, max_ttl }',
    'unicast_peer',
    { default: [] },
  ),
  check_unicast_src: field(BOOL, 'unicast mode: drop adverts whose source is not a unicast_peer', 'check_unicast_src', {
    defaultFrom: { scope: 'global', key: 'vrrp_check_unicast_src' },
    defaultText: 'global.vrrp_check_unicast_src',
  }),
  mcast_src_ip: field(IP, 'source address for multicast adverts', 'mcast_src_ip', { defaultText: 'the interface primary address' }),
  track_interface: field(trackList('interface'), 'interfaces whose link state lowers priority or forces FAULT', 'track_interface', { default: [] }),
  track_script: field(trackList('vrrp_script'), 'vrrp_scripts whose result lowers priority or forces FAULT', 'track_script', { default: [] }),
  garp_master_delay: field(int(0), 'see global.vrrp_garp_master_delay', 'garp_master_delay', {
    defaultFrom: { scope: 'global', key: 'vrrp_garp_master_delay' },
    defaultText: 'global.vrrp_garp_master_delay',
  }),
  garp_master_repeat: field(int(1), 'see global.vrrp_garp_master_repeat', 'garp_master_repeat', {
    defaultFrom: { scope: 'global', key: 'vrrp_garp_master_repeat' },
    defaultText: 'global.vrrp_garp_master_repeat',
  }),
  garp_master_refresh: field(int(0), 'see global.vrrp_garp_master_refresh', 'garp_master_refresh', {
    defaultFrom: { scope: 'global', key: 'vrrp_garp_master_refresh' },
    defaultText: 'global.vrrp_garp_master_refresh',
  }),
  garp_master_refresh_repeat: field(int(1), 'see global.vrrp_garp_master_refresh_repeat', 'garp_master_refresh_repeat', {
    defaultFrom: { scope: 'global', key: 'vrrp_garp_master_refresh_repeat' },
    defaultText: 'global.vrrp_garp_master_refresh_repeat',
  }),
  lower_prio_no_advert: field(BOOL, 'do not answer a lower priority advert while MASTER', 'lower_prio_no_advert', { default: false }),
  higher_prio_send_advert: field(BOOL, 'send an advert before yielding to a higher priority one', 'higher_prio_send_advert', { default: false }),
  accept: field(BOOL, 'accept mode: a MASTER accepts packets addressed to its VIPs; false: a non-owner MASTER drops them (except VRRP, ARP and neighbour discovery) with the nftables table inet keepalive_ts_accept (keepalived: no_accept)', 'accept', { default: true }),
  skip_check_adv_addr: field(BOOL, 'skip checking advert addresses when the sender is the current MASTER', 'skip_check_adv_addr', { default: false }),
  v3_checksum_as_v2: field(BOOL, 'see global.v3_checksum_as_v2', 'vrrp_v3_checksum_as_v2', {
    defaultFrom: { scope: 'global', key: 'v3_checksum_as_v2' },
    defaultText: 'global.v3_checksum_as_v2',
  }),
  dont_track_primary: field(BOOL, 'ignore link faults of the instance interface itself', 'dont_track_primary', { default: false }),
  ...NOTIFY_FIELDS,
  ...VRRP_PARITY_FIELDS,
} satisfies Fields;

export const VRRP_SYNC_GROUP_FIELDS = {
  name: field(NAME, 'unique group name', 'vrrp_sync_group <NAME>', { required: true }),
  group: field(arrayOf(NAME, 1), 'vrrp_instance names that change state together', 'group', { required: true }),
  ...NOTIFY_FIELDS,
  track_script: field(trackList('vrrp_script'), 'vrrp_scripts tracked by every member', 'track_script', { default: [] }),
  smtp_alert: field(BOOL, 'send an alert mail when the group changes state', 'smtp_alert', { defaultText: 'global.smtp_alert_vrrp, else global.smtp_alert, else false' }),
} satisfies Fields;

export const VRRP_SCRIPT_FIELDS = {
  name: field(NAME, 'unique script name, referenced by track_script', 'vrrp_script <NAME>', { required: true }),
  script: field(NAME, 'command run every interval; exit 0 = OK', 'script', { required: true }),
  interval: field(POSITIVE_SECONDS, 'seconds between runs', 'interval', { default: 1 }),
  timeout: field(POSITIVE_SECONDS, 'seconds before a run counts as failed', 'timeout', {
    defaultFrom: { scope: 'self', key: 'interval' },
    defaultText: 'interval',
  }),
  weight: field(TRACK_WEIGHT, 'priority change while failing (0 = FAULT), overridable per track_script', 'weight', { default: 0 }),
  rise: field(int(1), 'successes needed to become OK', 'rise', { default: 1 }),
  fall: field(int(1), 'failures needed to become failed', 'fall', { default: 1 }),
  user: field(NAME, 'user[:group] the script runs as', 'user', { defaultText: 'global.script_user' }),
  init_fail: field(BOOL, 'start in the failed state until the first success', 'init_fail', { default: false }),
} satisfies Fields;

export const PARAM_MATCH = ['exact', 'partial', 'initial'] as const;

export const VRRP_TRACK_PROCESS_FIELDS = {
  name: field(NAME, 'unique name, referenced by vrrp_instance.track_process', 'vrrp_track_process <NAME>', { required: true }),
  process: field(
    { kind: 'oneOf', options: [NAME, arrayOf(str(), 1)] },
    'process name (as in /proc/PID/comm, or the full command line with full_command), or [name, param, ...] to match parameters too',
    'process <NAME> [<PARAM> ...]',
    { required: true },
  ),
  param_match: field(str({ enum: PARAM_MATCH }), 'how parameters match: all exactly, the given ones as a prefix (partial), or the last one as a prefix (initial); set without parameters = the process must have none', 'param_match', {
    defaultText: '"exact" when parameters are given, else unset (parameters not checked)',
  }),
  weight: field(TRACK_WEIGHT, 'priority change while the quorum is not met (0 = FAULT), overridable per track_process', 'weight', { default: 0 }),
  reverse: field(BOOL, 'invert the weight: it applies while the quorum IS met', 'weight <N> reverse', { default: false }),
  quorum: field(int(1), 'minimum number of matching processes for success', 'quorum', { default: 1 }),
  quorum_max: field(int(0), 'maximum number of matching processes for success (0 = fail while any runs; quorum becomes 0)', 'quorum_max', { defaultText: 'unlimited' }),
  delay: field(SECONDS, 'default of fork_delay and terminate_delay', 'delay', { default: 0 }),
  fork_delay: field(SECONDS, 'seconds the quorum must hold before it counts as gained', 'fork_delay', {
    defaultFrom: { scope: 'self', key: 'delay' },
    defaultText: 'delay',
  }),
  terminate_delay: field(SECONDS, 'seconds the quorum must be missing before it counts as lost', 'terminate_delay', {
    defaultFrom: { scope: 'self', key: 'delay' },
    defaultText: 'delay',
  }),
  full_command: field(BOOL, 'match the whole command line (/proc/PID/cmdline) instead of the process name', 'full_command', { default: false }),
} satisfies Fields;

const HTTP_FIELDS = {
  path: field(str({ minLength: 1 }), 'URL path requested', 'url { path }', { default: '/' }),
  status_code: field(
    { kind: 'array', of: { kind: 'oneOf', options: [int(100, 599), str({ format: 'status_range' })] }, single: true },
    'accepted HTTP status codes and "NNN-MMM" ranges (keepalived default: any 2xx; keepalive-ts 0.1 accepted only 200)',
    'url { status_code }',
    { default: ['200-299'], defaultText: '["200-299"]' },
  ),
  digest: field(str({ format: 'md5' }), 'MD5 of the expected body', 'url { digest }'),
  regex: field(str({ format: 'regex' }), 'regular expression the body must match', 'url { regex }'),
  virtualhost: field(NAME, 'Host header', 'virtualhost', {
    defaultFrom: { scope: 'virtual_server', key: 'virtualhost' },
    defaultText: 'virtual_server.virtualhost',
  }),
} satisfies Fields;

export const CHECK_COMMON_FIELDS = {
  connect_timeout: field(POSITIVE_SECONDS, 'seconds to connect / get an answer', 'connect_timeout', {
    defaultFrom: { scope: 'virtual_server', key: 'connect_timeout' },
    defaultText: 'virtual_server.connect_timeout',
  }),
  retry: field(int(0), 'failed checks retried before the server is marked down', 'retry', {
    defaultFrom: { scope: 'virtual_server', key: 'retry' },
    defaultText: 'virtual_server.retry, else as keepalived: 3 for DNS_CHECK, 0 for MISC_CHECK, 1 otherwise',
  }),
  delay_before_retry: field(SECONDS, 'seconds between retries', 'delay_before_retry', {
    defaultFrom: { scope: 'virtual_server', key: 'delay_before_retry' },
    defaultText: 'virtual_server.delay_before_retry, else as keepalived: 3 for HTTP_GET/SSL_GET, delay_loop for DNS_CHECK, 1 otherwise',
  }),
  delay_loop: field(POSITIVE_SECONDS, 'seconds between checks', 'delay_loop', {
    defaultFrom: { scope: 'virtual_server', key: 'delay_loop' },
    defaultText: 'virtual_server.delay_loop',
  }),
  warmup: field(SECONDS, 'maximum random delay before the first check (0 = check at once)', 'warmup', {
    defaultFrom: { scope: 'virtual_server', key: 'warmup' },
    defaultText: 'virtual_server.warmup, else delay_loop (keepalived; keepalive-ts 0.1 used 0)',
  }),
  connect_ip: field(IP, 'address checked', 'connect_ip', {
    defaultFrom: { scope: 'real_server', key: 'address' },
    defaultText: 'real_server.address',
  }),
  connect_port: field(PORT, 'port checked', 'connect_port', {
    defaultFrom: { scope: 'real_server', key: 'port' },
    defaultText: 'real_server.port',
  }),
  bind_to: field(IP, 'source address of the check', 'bindto'),
} satisfies Fields;

export const CHECK_VARIANT_FIELDS = {
  TCP_CHECK: {},
  HTTP_GET: HTTP_FIELDS,
  SSL_GET: {
    ...HTTP_FIELDS,
    sni: field(NAME, 'TLS server name', 'enable_sni'),
    verify: field(BOOL, 'verify the server certificate', null, { default: false }),
  },
  MISC_CHECK: {
    misc_path: field(NAME, 'command whose exit status is the result', 'misc_path', { required: true }),
    misc_timeout: field(POSITIVE_SECONDS, 'seconds before the command is killed', 'misc_timeout', {
      defaultFrom: { scope: 'self', key: 'delay_loop' },
      defaultText: 'delay_loop',
    }),
    misc_dynamic: field(BOOL, 'exit status 2..255 sets the weight to status-2', 'misc_dynamic', { default: false }),
    user: field(NAME, 'user[:group] the command runs as', 'user', { defaultText: 'global.script_user' }),
  },
  UDP_CHECK: {
    payload: field(str(), 'datagram sent', 'payload', { default: '' }),
    require_reply: field(BOOL, 'a reply is required (otherwise only ICMP errors fail)', 'require_reply', { default: false }),
  },
  DNS_CHECK: {
    query_type: field(str({ enum: DNS_QUERY_TYPES }), 'record type queried (keepalived default SOA; keepalive-ts 0.1 used A)', 'type', { default: 'SOA' }),
    name: field(NAME, 'name queried ("." = the root zone; keepalived default, keepalive-ts 0.1 required a name)', 'name', { default: '.' }),
  },
  FILE_CHECK: {
    file: field(NAME, 'file whose first number is the status (0 = OK)', 'track_file', { required: true }),
    weight: field(int(-254, 254), 'multiplier of the file value (0 = non-zero means down)', 'weight', { default: 0 }),
  },
  SMTP_CHECK: {
    helo_name: field(NAME, 'name sent in HELO after the 220 greeting; the server must answer 250', 'helo_name', { default: SMTP_DEFAULT_HELO }),
  },
  PING_CHECK: {},
} satisfies Readonly<Record<(typeof CHECK_TYPES)[number], Fields>>;

export const REAL_SERVER_FIELDS = {
  address: field(IP, 'real server address', 'real_server <IPADDR>', { required: true }),
  port: field(PORT, 'real server port; in fwmark / port-set services omit it to keep the packet\'s own port (lb_kind DR: must be the virtual port or omitted)', 'real_server <IPADDR> <PORT>', {
    defaultFrom: { scope: 'virtual_server', key: 'port' },
    defaultText: 'virtual_server.port (none in fwmark / port-set services)',
  }),
  weight: field(int(0), 'scheduling weight (0 = no new connections)', 'weight', { default: 1 }),
  inhibit_on_failure: field(BOOL, 'keep a failed server with weight 0 instead of removing it', 'inhibit_on_failure', {
    defaultFrom: { scope: 'virtual_server', key: 'inhibit_on_failure' },
    defaultText: 'virtual_server.inhibit_on_failure',
  }),
  notify_up: field(NAME, NOTIFY_DOC('the server comes up'), 'notify_up'),
  notify_down: field(NAME, NOTIFY_DOC('the server goes down'), 'notify_down'),
  smtp_alert: field(BOOL, 'send an alert mail when the server goes up or down', 'smtp_alert', { defaultText: 'global.smtp_alert_checker, else global.smtp_alert, else true (as keepalived)' }),
  uthreshold: field(int(0), 'maximum connections (0 = unlimited)', 'uthreshold', { default: 0 }),
  lthreshold: field(int(0), 'connections below which an overloaded server is used again', 'lthreshold', { default: 0 }),
  check: field(
    {
      kind: 'array',
      single: true,
      of: { kind: 'tagged', tag: 'type', common: CHECK_COMMON_FIELDS, variants: CHECK_VARIANT_FIELDS },
    },
    'health check(s): one table or an array, each with type = ' + CHECK_TYPES.join(' | '),
    'TCP_CHECK / HTTP_GET / ... { }',
    { default: [] },
  ),
} satisfies Fields;

export const VIRTUAL_SERVER_GROUP_FIELDS = {
  name: field(NAME, 'unique group name (letters, digits, "_", ".", "-"), referenced by virtual_server.group', 'virtual_server_group <NAME>', { required: true }),
  members: field(
    arrayOf(str({ minLength: 1 }), 1),
    'the services that share one pool, all of one address family: "ADDR:PORT", "[V6]:PORT", address ranges on a port as keepalived writes them ("10.0.0.1-10:80" = the last byte 1..10, "10.0.0.250-10.0.1.10:80", "10.0.0.8/29:80", "[fd00::1-a]:80"; at most 256 addresses each) and firewall marks ("fwmark:N" IPv4, "fwmark6:N" IPv6)',
    '<IPADDR> <PORT> / <IPADDR RANGE> <PORT> / fwmark <INT> [inet|inet6]',
    { required: true },
  ),
} satisfies Fields;

export const VIRTUAL_SERVER_FIELDS = {
  group: field(NAME, 'name of a [[virtual_server_group]]: every member is served with this table\'s settings and ONE pool (one set of checks per real server, one quorum, one sorry server), instead of address / port / ports / fwmark', 'virtual_server group <NAME>'),
  address: field(IP, 'virtual address (normally a VIP); required unless fwmark or group is set', 'virtual_server <IPADDR>'),
  port: field(PORT, 'virtual port; required with address unless ports is set', 'virtual_server <IPADDR> <PORT>'),
  ports: field(
    arrayOf({ kind: 'oneOf', options: [PORT, str({ minLength: 1 })] }, 1),
    'several ports and ranges on one address instead of port, e.g. [21, "10000-20000"] (passive FTP with persistence); kernel lb_kinds only',
    null,
  ),
  fwmark: field(int(1, 0xffffffff), 'match packets by firewall mark (set by your iptables/nft rules) instead of address and port; kernel lb_kinds only', 'virtual_server fwmark <INT>'),
  ip_family: field(str({ enum: ['inet', 'inet6'] }), 'address family of a fwmark service (of a group: must be the family of its members)', 'ip_family', {
    defaultText: 'the family of address or of the group, else of the sorry and real servers (IPv4 when there are none)',
  }),
  protocol: field(str({ enum: ['TCP', 'UDP'] }), 'transport protocol', 'protocol', { default: 'TCP' }),
  lb_algo: field(str({ enum: LB_ALGOS }), 'scheduler', 'lb_algo', { default: 'wlc', aliases: ['lvs_sched'] }),
  lb_kind: field(
    str({
      enum: LB_KINDS,
      refused: {
        TUN: 'IP-in-IP needs the ipip tunnel driver, which this kernel does not have (CONFIG_NET_IPIP is not set); use "DR" (direct routing: same result when the real servers are on the director\'s LAN)',
      },
    }),
    'forwarding: "DR" (direct routing: MAC rewrite, real servers hold the VIP on lo), "NAT" (DNAT, real servers route replies back through the director), "FULLNAT" (DNAT + SNAT to the director), "PROXY" (the user-space proxy)',
    'lb_kind',
    { default: 'NAT', aliases: ['lvs_method'] },
  ),
  sched_flags: field(
    arrayOf(str({ enum: SCHED_FLAGS })),
    'scheduler flags: sh-port / sh-fallback for lb_algo sh, mh-port / mh-fallback for mh (flag-1 = *-fallback, flag-2 = *-port)',
    'sh-port / sh-fallback / mh-port / mh-fallback / flag-1 / flag-2',
    { default: [] },
  ),
  mh_table_size: field(int(2, MAGLEV_MAX_TABLE_SIZE), 'Maglev (lb_algo mh) lookup table size, a prime; over 100 slots per real server keep the imbalance near 1 %', null, {
    default: MAGLEV_DEFAULT_TABLE_SIZE,
  }),
  hash_seed: field(int(0, 0xffffffff), 'seed of the sh / dh / mh hashes; both directors must agree so that a client gets the same real server after a failover', null, {
    defaultText: 'derived from the service itself (the same on every director)',
  }),
  persistence_timeout: field(int(0), 'seconds a client sticks to its real server (0 = off)', 'persistence_timeout', { default: 0 }),
  persistence_granularity: field(NAME, 'client netmask for persistence (IPv4 dotted mask, IPv6 prefix length)', 'persistence_granularity', {
    defaultText: '"255.255.255.255" (IPv4) or "128" (IPv6)',
  }),
  delay_loop: field(POSITIVE_SECONDS, 'default seconds between checks', 'delay_loop', { default: 60 }),
  quorum: field(int(1), 'minimum total weight of live servers for the service to be up', 'quorum', { default: 1 }),
  hysteresis: field(int(0), 'weight margin around quorum before changing state', 'hysteresis', { default: 0 }),
  quorum_up: field(NAME, NOTIFY_DOC('quorum is gained'), 'quorum_up'),
  quorum_down: field(NAME, NOTIFY_DOC('quorum is lost'), 'quorum_down'),
  smtp_alert: field(BOOL, 'send an alert mail when quorum is gained or lost', 'smtp_alert', { defaultText: 'global.smtp_alert_checker, else global.smtp_alert, else false' }),
  alpha: field(BOOL, 'start real servers as down until their first check passes', 'alpha', { default: false }),
  omega: field(BOOL, 'run notify_down scripts when the virtual server is removed', 'omega', { default: false }),
  inhibit_on_failure: field(BOOL, 'default for real_server.inhibit_on_failure', 'inhibit_on_failure', { default: false }),
  sorry_server: field(
    {
      kind: 'table',
      fields: {
        address: field(IP, 'sorry server address', 'sorry_server <IPADDR>', { required: true }),
        port: field(PORT, 'sorry server port', 'sorry_server <IPADDR> <PORT>', {
          defaultFrom: { scope: 'virtual_server', key: 'port' },
          defaultText: 'virtual_server.port',
        }),
      },
    },
    'server used while no real server is up',
    'sorry_server',
  ),
  sorry_server_inhibit: field(BOOL, 'keep the sorry server with weight 0 while real servers are up', 'sorry_server_inhibit', { default: false }),
  virtualhost: field(NAME, 'default Host header for HTTP_GET / SSL_GET checks', 'virtualhost'),
  ha_suspend: field(BOOL, 'suspend checks while the VIP is not on this director', 'ha_suspend', { default: false }),
  ops: field(BOOL, 'one-packet scheduling (UDP only): schedule every datagram separately', 'ops', { default: false }),
  retry: field(int(0), 'default check retry count', 'retry', { defaultText: 'per check type (see check.retry)' }),
  delay_before_retry: field(SECONDS, 'default seconds between check retries', 'delay_before_retry', { defaultText: 'per check type (see check.delay_before_retry)' }),
  connect_timeout: field(POSITIVE_SECONDS, 'default check connect timeout in seconds; with lb_kind PROXY also the real-server connect timeout before the next server is tried', 'connect_timeout', { default: 5 }),
  warmup: field(SECONDS, 'default maximum random delay before a first check', 'warmup', { defaultText: "each check's delay_loop" }),
  maxconn_per_source: field(int(0), 'lb_kind PROXY: most connections (UDP: flows) one client address may hold at once on this service (0 = unlimited)', null, { default: 0 }),
  depool_threshold: field(num(0, 1), 'fraction of real servers kept pooled even when failing (PyBal; 0 = off)', null, { default: 0 }),
  proxy_protocol: field(str({ enum: ['', 'v1', 'v2'] }), 'send a PROXY protocol header to real servers ("" = off); lb_kind PROXY only', null, { default: '' }),
  slow_start: field(
    SECONDS,
    'seconds over which a real server that comes (back) into service (recovered, added by a reload, enabled or un-drained) ramps from weight 1 to its weight, so lc-like schedulers do not send it every new connection (HAProxy slowstart); 0 = off; not with the weight-blind lb_algo rr, lc, dh',
    null,
    { default: 0 },
  ),
  drain_timeout: field(SECONDS, 'seconds connections to a removed real server may drain', null, {
    defaultFrom: { scope: 'global', key: 'drain_timeout' },
    defaultText: 'global.drain_timeout',
  }),
  announce: field(str({ enum: ANNOUNCE_MODES }), 'BGP announcement of the address ([bgp]): "healthy" while the service has quorum, "master" while the VRRP instance holding the address is MASTER, "never"', null, {
    defaultText: '"master" if a vrrp_instance holds the address, else "healthy" ("never" without [bgp])',
  }),
  real_server: field(tables(REAL_SERVER_FIELDS, 'real_server'), 'real servers ([[virtual_server.real_server]])', 'real_server', { default: [] }),
} satisfies Fields;

export const SYNC_FIELDS = {
  interface: field(NAME, 'interface sync messages are sent on', 'lvs_sync_daemon <INTERFACE>', { required: true }),
  instance: field(NAME, 'vrrp_instance whose MASTER sends and BACKUP receives', 'lvs_sync_daemon <INTERFACE> <VRRP_INSTANCE>', { required: true }),
  group: field(str({ format: 'multicast' }), 'multicast group', 'lvs_sync_daemon ... group', { default: '224.0.0.81' }),
  port: field(PORT, 'UDP port', 'lvs_sync_daemon ... port', { default: 8848 }),
  ttl: field(int(1, 255), 'multicast TTL', 'lvs_sync_daemon ... ttl', { default: 1 }),
  sync_id: field(int(0, 255), 'sync id; both directors must agree', 'lvs_sync_daemon ... id', { defaultText: 'virtual_router_id of sync.instance' }),
  auth_key: field(str({ minLength: MIN_SYNC_KEY_BYTES }), `shared key authenticating sync messages, at least ${MIN_SYNC_KEY_BYTES} bytes (prefer auth_key_file)`, null, {
    hint: `a sync key needs at least ${MIN_SYNC_KEY_BYTES} bytes; e.g. openssl rand -hex 32`,
  }),
  auth_key_file: field(NAME, `file holding the shared sync key (at least ${MIN_SYNC_KEY_BYTES} bytes; owned by root or the daemon's user, no access for others)`, null),
  unicast_peer: field(arrayOf(IP), 'send sync messages by unicast to these peers instead of the group', null, { default: [] }),
  conntrackd: field(
    {
      kind: 'table',
      fields: {
        destination_address: field(str({ format: 'ipv4' }), "the peer director's address on sync.interface (conntrackd UDP IPv4_Destination_Address); the only source the guard table accepts on `port`", 'conntrackd.conf Sync { UDP { IPv4_Destination_Address } }', {
          defaultText: 'the one sync.unicast_peer',
        }),
        address: field(str({ format: 'ipv4' }), "this director's address on sync.interface (conntrackd UDP IPv4_address)", 'conntrackd.conf Sync { UDP { IPv4_address } }', { defaultText: 'the first IPv4 address of sync.interface' }),
        port: field(PORT, 'UDP port of the conntrackd FTFW replication (both directors)', 'conntrackd.conf Sync { UDP { Port } }', { default: 3780 }),
        protocols: field(arrayOf(str({ enum: ['tcp', 'udp'] }), 1), 'layer-4 protocols whose connections are replicated', 'conntrackd.conf General { Filter { Protocol Accept } }', { default: ['tcp', 'udp'] }),
        binary: field(NAME, 'conntrackd executable (Debian package conntrackd)', null, { default: '/usr/sbin/conntrackd' }),
      },
    },
    'replicate the kernel conntrack table (NAT/FULLNAT connections) with conntrackd in FTFW mode, run and driven by keepalive-ts on a dedicated sync link; see docs/hitless.md',
    'conntrackd + primary-backup.sh notify script',
  ),
} satisfies Fields;

export const BGP_PEER_FIELDS = {
  address: field(IP, 'address of the BGP neighbour (a router on a directly connected network); its family selects the channel (IPv4 or IPv6 VIPs)', null, { required: true }),
  remote_as: field(AS_NUMBER, 'AS number of the neighbour', null, { required: true }),
  bfd: field(BOOL, 'run BFD with the neighbour (see bgp.bfd_interval / bfd_multiplier) so a crash is seen in milliseconds, not after hold_time', null, { default: true }),
  hold_time: field(int(3, 65535), 'BGP hold time in seconds (keepalives every third of it)', null, { default: 9 }),
  password: field(str({ minLength: 1, maxLength: 80 }), 'TCP MD5 signature key (RFC 2385) shared with the neighbour', null),
} satisfies Fields;

export const BGP_FIELDS = {
  local_as: field(AS_NUMBER, 'AS number of this director (every director of a service uses the same one, so the router can multipath them)', null, { required: true }),
  router_id: field(str({ format: 'ipv4' }), 'BGP router id (an IPv4 address)', null, { defaultText: "BIRD's choice: the lowest IPv4 address of an interface" }),
  med: field(int(0, 4294967295), 'MULTI_EXIT_DISC sent with every announcement (lower is preferred: 0 on the primary, 100 on a backup, as PyBal does; the router multipaths only equal MEDs)', null, { defaultText: 'none sent' }),
  as_path_prepend: field(int(0, 8), 'extra copies of local_as prepended to the AS path (a longer path makes a backup director)', null, { default: 0 }),
  bfd_interval: field(num(0.01, 60), 'seconds between BFD packets, sent and required', null, { default: 0.1 }),
  bfd_multiplier: field(int(1, 255), 'BFD packets missed before the session is down (detection time = interval x multiplier)', null, { default: 3 }),
  track_interface: field(arrayOf(NAME), 'interfaces whose loss of link withdraws every announcement', null, {
    defaultText: 'the interfaces the peers are reached through (looked up at start)',
  }),
  kernel_table: field(int(1, 2147483647), 'kernel routing table holding the announced host routes (BIRD learns them from there)', null, {
    default: 100,
    hint: 'not 252..255 (compat, default, main, local)',
  }),
  kernel_protocol: field(int(5, 255), 'route protocol number of the announced host routes (BIRD learns only this number)', null, {
    default: 200,
    hint: '0..4 are the kernel\'s own, 12 is BIRD\'s, 18 keepalive-ts\'s routes',
  }),
  runtime_dir: field(NAME, "directory for the generated bird.conf, BIRD's control socket and pid file (never the system bird's)", null, { default: '/run/keepalive-ts/bird' }),
  peer: field(arrayOf({ kind: 'table', fields: BGP_PEER_FIELDS }, 1), 'BGP neighbours ([[bgp.peer]])', null, { required: true }),
} satisfies Fields;

export const CONFIG_FIELDS = {
  global: field({ kind: 'table', fields: GLOBAL_FIELDS, scope: 'global' }, 'daemon-wide settings and defaults', 'global_defs', { default: {} }),
  vrrp_script: field(tables(VRRP_SCRIPT_FIELDS), 'tracking scripts ([[vrrp_script]])', 'vrrp_script', { default: [] }),
  vrrp_track_process: field(tables(VRRP_TRACK_PROCESS_FIELDS), 'tracked processes ([[vrrp_track_process]])', 'vrrp_track_process', { default: [] }),
  vrrp_instance: field(tables(VRRP_INSTANCE_FIELDS), 'VRRP instances ([[vrrp_instance]])', 'vrrp_instance', { default: [] }),
  vrrp_sync_group: field(tables(VRRP_SYNC_GROUP_FIELDS), 'instances that fail over together ([[vrrp_sync_group]])', 'vrrp_sync_group', { default: [] }),
  virtual_server_group: field(tables(VIRTUAL_SERVER_GROUP_FIELDS), 'addresses, ports and firewall marks served as one virtual server ([[virtual_server_group]])', 'virtual_server_group', { default: [] }),
  virtual_server: field(tables(VIRTUAL_SERVER_FIELDS, 'virtual_server'), 'L4 virtual servers ([[virtual_server]])', 'virtual_server', { default: [] }),
  sync: field({ kind: 'table', fields: SYNC_FIELDS }, 'connection synchronisation between the directors', 'lvs_sync_daemon'),
  bgp: field({ kind: 'table', fields: BGP_FIELDS }, 'announce the virtual servers\' addresses by BGP through BIRD (ECMP across directors)', null),
} satisfies Fields;
