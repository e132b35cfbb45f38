/**
 * keepalived statement tree -> keepalive-ts config tables, pure.
 *
 * Each keepalived keyword is one entry of a rule table below: the keepalive-ts key it becomes
 * (with its converter), `unsupported(reason)` or `ignored(reason)`. docs/import.md lists the
 * unsupported ones with their reasons. Route, rule and static address lines are checked with the
 * parser the config loader uses (src/net/route-spec.ts), so a line keepalive-ts refuses is dropped
 * with a note and the rest still imports.
 */
import {
  GLOBAL_FIELDS,
  LB_ALGOS,
  PARAM_MATCH,
  REAL_SERVER_FIELDS,
  SYNC_FIELDS,
  VIRTUAL_SERVER_FIELDS,
  VIRTUAL_SERVER_GROUP_FIELDS,
  VRRP_INSTANCE_FIELDS,
  VRRP_SCRIPT_FIELDS,
  VRRP_SYNC_GROUP_FIELDS,
  VRRP_TRACK_PROCESS_FIELDS,
} from '../config/schema.js';
import { parseStatusRange } from '../config/schema-types.js';
import { parseCidr } from '../config/net.js';
import { parseAddressSpec, parseRouteSpec, parseRuleSpec, type Parsed } from '../net/route-spec.js';
import { canonicalAddress, endpointText, parseAddressRange, parseGroupMember } from '../util/endpoint.js';
import { formatIp, parseIp } from '../util/inet.js';
import {
  applyRules, bool, command, Draft, escapedArgs, ignored, int, ip, many, Messages, noop, oneOf, script, seconds, text, to, unsupported, userSpec, word,
  type Rule,
} from './draft.js';
import { accepts, checkFieldsOf, hasKey } from './schema-fit.js';
import type { TomlTable, TomlValue } from './toml-writer.js';
import type { KNode, Loc } from './types.js';

/** Where the sync key file is assumed to be (keepalived's IPVS sync has no key). */
export const SYNC_KEY_FILE = '/etc/keepalive-ts/sync.key';

const NO_PROCESS_TUNING = "keepalived process tuning; keepalive-ts is one Node.js process";
const NO_SNMP = 'no SNMP in keepalive-ts (it exports Prometheus metrics, global.metrics_listen)';
const NO_DBUS = 'no D-Bus interface in keepalive-ts (use the control socket: keepalive-ts status --json)';
const NO_FIFO = 'no notify FIFOs in keepalive-ts; use notify scripts';
const NO_FIREWALL = 'keepalive-ts installs no iptables/nftables rules for VRRP (accept mode is not enforced by a firewall)';
const NO_KERNEL_IPVS = 'keepalive-ts does not drive kernel IPVS';
const NO_VMAC_PREFIX = 'keepalive-ts names a VMAC vrrp.VRID (vrrp6.VRID for IPv6) unless the instance names it (use_vmac NAME)';
/** keepalived's default_interface when none is given (DFLT_INT). */
const KEEPALIVED_DEFAULT_INTERFACE = 'eth0';
const NO_FWMARK = 'no fwmark services in this keepalive-ts (the data-plane contract adds them)';

/** Everything mapping shares: messages and what earlier statements defined. */
interface Ctx {
  m: Messages;
  /** track_file NAME { file ... } blocks, for FILE_CHECK track_file NAME. */
  trackFiles: Map<string, { file?: string; weight?: number; loc: Loc }>;
  vsGroups: Map<string, KNode>;
  /** The [[virtual_server_group]] tables made so far (once per group, however many virtual servers use it). */
  vsGroupDrafts: Map<string, Draft>;
  /** global_defs defaults that keepalive-ts only has per instance. */
  instanceDefaults: Map<string, { value: TomlValue; loc: Loc }>;
  /** vrrp_min_garp seen: garp repeat 1, no second burst, unless set explicitly. */
  minGarp?: Loc;
  /** global_defs default_interface: where static addresses without dev go. */
  defaultInterface?: { name: string; loc: Loc; used: boolean };
  /** vrrp_track_process NAME -> its `weight N reverse` (read before the instances refer to it). */
  processReverse: Map<string, boolean>;
  sync?: Draft;
  syncHasInstance: boolean;
}

// ============================================================================ global_defs

type G = Draft;

function lvsSyncDaemon(n: KNode, _d: G, m: Messages, ctx: Ctx): void {
  if (n.args.length === 0) {
    m.add(n.loc, 'error', 'lvs_sync_daemon: interface missing; not imported');
    return;
  }
  const s = new Draft(SYNC_FIELDS, n.loc, 'lvs_sync_daemon');
  s.set('interface', n.args[0]!, n.loc);
  const rest = n.args.slice(1);
  for (let i = 0; i < rest.length; i++) {
    const k = rest[i]!;
    const v = rest[i + 1];
    if (k === 'inst' && v !== undefined) { s.set('instance', v, n.loc); i++; continue; }
    if (k === 'id' && v !== undefined) { s.set('sync_id', Number(v), n.loc); i++; continue; }
    if (k === 'port' && v !== undefined) { s.set('port', Number(v), n.loc); i++; continue; }
    if (k === 'ttl' && v !== undefined) { s.set('ttl', Number(v), n.loc); i++; continue; }
    if (k === 'group' && v !== undefined) { s.set('group', v, n.loc); i++; continue; }
    if (k === 'maxlen' && v !== undefined) { m.add(n.loc, 'ignored', 'lvs_sync_daemon maxlen: keepalive-ts sizes its sync messages itself'); i++; continue; }
    if (i === 0 && !['inst', 'id', 'port', 'ttl', 'group', 'maxlen'].includes(k)) { s.set('instance', k, n.loc); continue; }
    m.add(n.loc, 'error', `lvs_sync_daemon: unknown option "${k}"`);
  }
  ctx.sync = s;
  ctx.syncHasInstance = s.has('instance');
}

/** `smtp_server HOST [PORT]` -> "HOST", "HOST:PORT" or "[V6]:PORT". */
function smtpServer(n: KNode, m: Messages): TomlValue | undefined {
  if (n.args.length === 0) {
    m.add(n.loc, 'error', 'smtp_server: address missing; not imported');
    return undefined;
  }
  const host = n.args[0]!;
  const port = n.args[1];
  if (port === undefined) return host;
  if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    m.add(n.loc, 'error', `smtp_server: port "${port}" is not 1..65535; not imported`);
    return undefined;
  }
  const a = canonicalAddress(host);
  return a ? endpointText({ address: a.address, port: Number(port) }) : `${host}:${port}`;
}

/**
 * notification_email { } (every word of the block is one recipient, as keepalived reads it) and
 * notification_email_from: addresses the schema refuses (keepalived hands anything to the relay,
 * e.g. a bare local user name) are left out with a note.
 */
function emailRules(): Record<string, Rule<G>> {
  const fullAddress = (key: string, w: string): boolean => accepts(GLOBAL_FIELDS, key, key === 'notification_email' ? [w] : w);
  return {
    notification_email: (n, d, m) => {
      if (n.block === undefined) {
        m.add(n.loc, 'error', 'notification_email: expected a { } block of addresses; not imported');
        return;
      }
      const list: string[] = [];
      for (const c of n.block) {
        for (const w of [c.keyword, ...c.args]) {
          if (!fullAddress('notification_email', w)) {
            m.add(c.loc, 'unsupported', `notification_email ${JSON.stringify(w)}: keepalive-ts sends to full addresses only (user@domain or "Name <user@domain>"); address not imported`);
          } else if (!list.includes(w)) list.push(w);
        }
      }
      if (n.block.length === 0) m.add(n.loc, 'error', 'notification_email: no address in the block; not imported');
      if (list.length > 0) d.set('notification_email', list, n.loc);
    },
    notification_email_from: (n, d, m) => {
      const v = text(n, m);
      if (v === undefined) return;
      if (typeof v === 'string' && fullAddress('notification_email_from', v)) d.set('notification_email_from', v, n.loc);
      else m.add(n.loc, 'unsupported', `notification_email_from ${JSON.stringify(v)}: not an address user@domain (or "Name <user@domain>"); not imported, mails come from USER@HOSTNAME (keepalived's default too)`);
    },
    smtp_server: to('smtp_server', smtpServer),
    smtp_helo_name: to('smtp_helo_name', word),
    smtp_connect_timeout: to('smtp_connect_timeout', seconds()),
    smtp_alert: to('smtp_alert', bool),
    smtp_alert_vrrp: to('smtp_alert_vrrp', bool),
    smtp_alert_checker: to('smtp_alert_checker', bool),
    no_email_faults: to('no_email_faults', bool),
    no_checker_emails: ignored('keepalive-ts mails when a real server goes up or down, never for one checker of it: what no_checker_emails asks for'),
  };
}

function globalRules(ctx: Ctx): Record<string, Rule<G>> {
  const instanceDefault = (key: string): Rule<G> => (n, _d, m) => {
    const v = bool(n, m);
    if (v !== undefined) ctx.instanceDefaults.set(key, { value: v, loc: n.loc });
  };
  return {
    router_id: to('router_id', text),
    vrrp_mcast_group4: to('vrrp_mcast_group4', ip),
    vrrp_mcast_group6: to('vrrp_mcast_group6', ip),
    vrrp_version: to('vrrp_version', int(2, 3)),
    // keepalived raises its whole VRRP process; here the sender thread (adverts, takeover) only.
    vrrp_rt_priority: to('vrrp_rt_priority', int(1, 99)),
    vrrp_rlimit_rttime: to('vrrp_rlimit_rttime', int(1)),
    vrrp_rlimit_rtime: to('vrrp_rlimit_rttime', int(1)),
    vrrp_garp_master_delay: to('vrrp_garp_master_delay', int(0)),
    vrrp_garp_master_repeat: to('vrrp_garp_master_repeat', int(1)),
    vrrp_garp_master_refresh: to('vrrp_garp_master_refresh', int(0)),
    vrrp_garp_master_refresh_repeat: to('vrrp_garp_master_refresh_repeat', int(1)),
    vrrp_garp_interval: to('vrrp_garp_interval', seconds()),
    vrrp_gna_interval: to('vrrp_gna_interval', seconds()),
    vrrp_startup_delay: to('vrrp_startup_delay', seconds()),
    vrrp_delay_after_boot: unsupported('no delay after boot in keepalive-ts; use vrrp_startup_delay'),
    v3_checksum_as_v2: to('v3_checksum_as_v2', bool),
    vrrp_v3_checksum_as_v2: to('v3_checksum_as_v2', bool),
    enable_script_security: to('enable_script_security', bool),
    script_user: (n, d, m) => {
      const u = userSpec(n, m);
      if (u !== undefined) d.set('script_user', u, n.loc);
    },
    vrrp_min_garp: (n, _d, m) => {
      if (bool(n, m) === true) ctx.minGarp = n.loc;
    },
    vrrp_skip_check_adv_addr: instanceDefault('skip_check_adv_addr'),
    vrrp_lower_prio_no_advert: instanceDefault('lower_prio_no_advert'),
    vrrp_higher_prio_send_advert: instanceDefault('higher_prio_send_advert'),
    vrrp_strict: unsupported('strict RFC mode is not enforced by keepalive-ts (no authentication/unicast/accept checks); instances keep their own settings'),
    lvs_sync_daemon: (n, d, m) => lvsSyncDaemon(n, d, m, ctx),
    ...emailRules(),
    // runtime knobs with no meaning here
    ...many(['process_names', 'process_name', 'vrrp_process_name', 'checker_process_name', 'bfd_process_name', 'vrrp_priority', 'checker_priority', 'bfd_priority',
      'vrrp_no_swap', 'checker_no_swap', 'bfd_no_swap', 'vrrp_cpu_affinity', 'checker_cpu_affinity', 'bfd_cpu_affinity', 'checker_rt_priority',
      'bfd_rt_priority', 'checker_rlimit_rttime', 'checker_rlimit_rtime', 'bfd_rlimit_rtime', 'bfd_rlimit_rttime', 'max_auto_priority', 'min_auto_priority_delay', 'child_wait_time',
      'vrrp_netlink_cmd_rcv_bufs', 'vrrp_netlink_cmd_rcv_bufs_force', 'vrrp_netlink_monitor_rcv_bufs', 'vrrp_netlink_monitor_rcv_bufs_force', 'lvs_netlink_cmd_rcv_bufs',
      'lvs_netlink_cmd_rcv_bufs_force', 'lvs_netlink_monitor_rcv_bufs', 'lvs_netlink_monitor_rcv_bufs_force', 'process_monitor_rcv_bufs', 'process_monitor_rcv_bufs_force',
      'vrrp_rx_bufs_policy', 'vrrp_rx_bufs_multiplier', 'umask', 'tmp_config_directory', 'config_save_dir', 'use_symlink_paths', 'set_supplementary_groups',
      'data_use_instance', 'state_file_location', 'stats_file_location', 'json_file_location', 'json_version', 'iproute_usr_dir', 'iproute_etc_dir', 'random_seed',
      'reload_check_config', 'reload_time_file', 'reload_repeat', 'reload_file', 'include_check', 'log_unknown_vrids', 'checker_log_all_failures',
      'fifo_write_vrrp_states_on_reload', 'vrrp_notify_priority_changes'], ignored(NO_PROCESS_TUNING)),
    ...many(['snmp_socket', 'enable_snmp_vrrp', 'enable_snmp_checker', 'enable_snmp_rfc', 'enable_snmp_rfcv2', 'enable_snmp_rfcv3', 'enable_snmp_keepalived', 'enable_traps',
      'snmp_vs_stats_update_interval', 'snmp_rs_stats_update_interval'], ignored(NO_SNMP)),
    ...many(['enable_dbus', 'dbus_service_name', 'dbus_no_interface_name'], ignored(NO_DBUS)),
    ...many(['notify_fifo', 'notify_fifo_script', 'vrrp_notify_fifo', 'vrrp_notify_fifo_script', 'lvs_notify_fifo', 'lvs_notify_fifo_script'], unsupported(NO_FIFO)),
    ...many(['vrrp_iptables', 'vrrp_ipsets', 'nftables', 'nftables_priority', 'nftables_counters', 'nftables_ifindex', 'nftables_ipvs', 'nftables_ipvs_priority',
      'nftables_ipvs_start_fwmark', 'disable_local_igmp'], unsupported(NO_FIREWALL)),
    ...many(['lvs_timeouts', 'lvs_flush', 'lvs_flush_on_stop'], ignored(NO_KERNEL_IPVS)),
    startup_script: unsupported('no startup/shutdown scripts in keepalive-ts; run them from the service manager (ExecStartPre/ExecStopPost)'),
    startup_script_timeout: ignored('see startup_script'),
    shutdown_script: unsupported('no startup/shutdown scripts in keepalive-ts; run them from the service manager (ExecStartPre/ExecStopPost)'),
    shutdown_script_timeout: ignored('see shutdown_script'),
    vrrp_garp_lower_prio_repeat: unsupported('no gratuitous ARP burst on receiving a lower priority advert in keepalive-ts'),
    vrrp_garp_lower_prio_delay: unsupported('no gratuitous ARP burst on receiving a lower priority advert in keepalive-ts'),
    vrrp_garp_extra_if: unsupported('no periodic gratuitous ARPs on other interfaces in keepalive-ts'),
    vrrp_down_timer_adverts: unsupported('the master down timer is always 3 advert intervals plus skew (RFC) in keepalive-ts'),
    vrrp_check_unicast_src: unsupported('keepalive-ts does not check that unicast adverts come from a configured peer'),
    default_interface: (n, _d, m) => {
      const v = word(n, m);
      if (typeof v === 'string') ctx.defaultInterface = { name: v, loc: n.loc, used: false };
    },
    dynamic_interfaces: unsupported('keepalive-ts needs the configured interfaces to exist at startup'),
    linkbeat_use_polling: ignored('keepalive-ts follows link state through netlink'),
    vmac_prefix: unsupported(NO_VMAC_PREFIX),
    vmac_addr_prefix: unsupported(NO_VMAC_PREFIX),
    net_namespace: unsupported('run keepalive-ts inside the namespace instead (ip netns exec NAME keepalive-ts run ...)'),
    net_namespace_ipvs: unsupported(NO_KERNEL_IPVS),
    namespace_with_ipsets: ignored(NO_FIREWALL),
    instance: ignored('one keepalive-ts per config file; name its control socket and pid file instead'),
    use_pid_dir: ignored('keepalive-ts writes global.pid_file'),
  };
}

// ============================================================================ vrrp_script

function vrrpScriptRules(): Record<string, Rule<Draft>> {
  return {
    script: to('script', command),
    interval: to('interval', seconds(0.001)),
    timeout: to('timeout', seconds(0.001)),
    weight: (n, d, m) => {
      const w = int(-253, 253)(n, m);
      if (w === undefined) return;
      if (n.args[1] === 'reverse') {
        m.add(n.loc, 'unsupported', 'weight ... reverse: keepalive-ts has no reversed tracking; not imported');
        return;
      }
      d.set('weight', w, n.loc);
    },
    rise: to('rise', int(1)),
    fall: to('fall', int(1)),
    user: (n, d, m) => {
      const u = userSpec(n, m);
      if (u !== undefined) d.set('user', u, n.loc);
    },
    init_fail: (n, d, m) => {
      const v = bool(n, m);
      if (v !== undefined) d.set('init_fail', v, n.loc);
    },
  };
}

// ============================================================================ tracking lists

/**
 * `name [weight W [reverse|noreverse]]` children -> ["name", { name, weight }]. keepalive-ts has no
 * reversed tracking per entry: `reverse` is refused, except for track_process when the
 * vrrp_track_process itself is reversed (`reverseOf` tells; keepalive-ts takes it from there).
 */
function trackList(kind: string, reverseOf: (name: string) => boolean = () => false): (n: KNode, m: Messages) => TomlValue[] | undefined {
  return (n, m) => {
    const out: TomlValue[] = [];
    for (const c of n.block ?? []) {
      const [w, weight, rev] = c.args;
      if (w === undefined) {
        out.push(c.keyword);
        continue;
      }
      if (w !== 'weight' || weight === undefined || !/^[+-]?\d+$/.test(weight)) {
        m.add(c.loc, 'error', `${kind} ${c.keyword}: expected "weight N", got "${c.args.join(' ')}"; entry not imported`);
        continue;
      }
      if (rev !== undefined && rev !== 'reverse' && rev !== 'noreverse') {
        m.add(c.loc, 'error', `${kind} ${c.keyword}: unknown weight option "${rev}" (reverse or noreverse); entry not imported`);
        continue;
      }
      if (rev !== undefined && (rev === 'reverse') !== reverseOf(c.keyword)) {
        m.add(c.loc, 'unsupported', kind === 'track_process'
          ? `${kind} ${c.keyword} weight ${weight} ${rev}: keepalive-ts takes reverse from the vrrp_track_process (weight N reverse there), not per instance; entry not imported`
          : `${kind} ${c.keyword} weight ${weight} reverse: keepalive-ts has no reversed tracking; entry not imported`);
        continue;
      }
      out.push({ name: c.keyword, weight: Number(weight) });
    }
    if (n.block === undefined) {
      m.add(n.loc, 'error', `${n.keyword}: expected a { } block; not imported`);
      return undefined;
    }
    return out;
  };
}

function trackRule(key: string, kind: string, reverseOf?: (name: string) => boolean): Rule<Draft> {
  const conv = trackList(kind, reverseOf);
  return (n, d, m) => {
    const v = conv(n, m);
    if (v !== undefined && (v as TomlValue[]).length > 0) d.set(key, v, n.loc);
  };
}

// ============================================================================ vrrp_instance

function vipList(inst: Draft, n: KNode, m: Messages, excluded: boolean): string[] {
  const out: string[] = [];
  const ifname = inst.get('interface');
  for (const c of n.block ?? []) {
    const cidr = parseCidr(c.keyword);
    if (!cidr) {
      m.add(c.loc, 'error', `${n.keyword}: "${c.keyword}" is not an address[/prefix]; not imported`);
      continue;
    }
    const text = c.keyword.includes('/') ? `${cidr.address}/${cidr.prefix}` : cidr.address;
    let skip = false;
    for (let i = 0; i < c.args.length; i++) {
      const o = c.args[i]!;
      const v = c.args[i + 1];
      if (o === 'dev' && v !== undefined) {
        i++;
        if (ifname !== undefined && v !== ifname) {
          m.add(c.loc, 'unsupported', `${c.keyword} dev ${v}: keepalive-ts adds VIPs to the instance interface only; address not imported`);
          skip = true;
        }
      } else if (['label', 'scope', 'brd', 'broadcast', 'peer', 'preferred_lft', 'track_group'].includes(o) && v !== undefined) {
        i++;
        m.add(c.loc, 'ignored', `${c.keyword} ${o} ${v}: keepalive-ts adds the address with its prefix only`);
      } else if (['home', '-nodad', 'nodad', 'mngtmpaddr', 'noprefixroute', 'autojoin'].includes(o)) {
        m.add(c.loc, 'ignored', `${c.keyword} ${o}: keepalive-ts adds the address with its prefix only`);
      } else if (o === 'no_track') {
        m.add(c.loc, 'changed', `${c.keyword} no_track: keepalive-ts restores a deleted VIP while MASTER`);
      } else if (o === 'use_vmac') {
        m.add(c.loc, 'unsupported', `${c.keyword} use_vmac: per-address virtual MACs are not supported`);
      } else {
        m.add(c.loc, 'error', `${c.keyword}: unknown address option "${o}"`);
      }
    }
    if (skip) continue;
    if (out.includes(text)) {
      m.add(c.loc, 'changed', `${c.keyword}: listed twice in ${excluded ? 'virtual_ipaddress_excluded' : 'virtual_ipaddress'}; imported once`);
      continue;
    }
    out.push(text);
  }
  return out;
}

/**
 * virtual_routes / virtual_rules / static_routes / static_rules / static_ipaddress: each line is
 * kept verbatim when the config's own parser takes it; a line it refuses is left out with its
 * reason ("unsupported" for a word keepalived knows and keepalive-ts does not, "error" for a line
 * keepalived would refuse too), and the others still import.
 */
function specLines(key: string, parse: (text: string) => Parsed<unknown>, ctx: Ctx): Rule<Draft> {
  return (n, d, m) => {
    if (n.block === undefined) {
      m.add(n.loc, 'error', `${n.keyword}: expected a { } block; not imported`);
      return;
    }
    const out: string[] = [];
    for (const c of n.block) {
      let line = [c.keyword, ...c.args].join(' ');
      if (key === 'static_ipaddress' && !c.args.includes('dev')) {
        // keepalived puts a static address without dev on default_interface (eth0 unless set).
        const dflt = ctx.defaultInterface;
        if (dflt) dflt.used = true;
        const dev = dflt?.name ?? KEEPALIVED_DEFAULT_INTERFACE;
        line = `${line} dev ${dev}`;
        m.add(c.loc, 'changed', `static_ipaddress ${c.keyword}: no dev; keepalived puts it on ${dflt ? `default_interface ${dev}` : `its default interface ${dev}`}, so the import writes "dev ${dev}"`);
      }
      const r = parse(line);
      if (r.ok) out.push(line);
      else m.add(c.loc, r.unsupported ? 'unsupported' : 'error', `${n.keyword} "${line}": ${r.error}; not imported`);
    }
    if (out.length > 0) d.set(key, out, n.loc);
  };
}

/** keepalived `use_vmac [[name] NAME] [MAC] [netlink_notify_msg] [group G]` -> use_vmac = "NAME" or true. */
function useVmac(n: KNode, d: Draft, m: Messages): void {
  let name: string | undefined;
  for (let i = 0; i < n.args.length; i++) {
    const a = n.args[i]!;
    if (a.includes(':')) {
      m.add(n.loc, 'unsupported', `use_vmac ${a}: a MAC address of your own is not supported; the macvlan gets the RFC virtual MAC 00:00:5e:00:01:VRID (00:00:5e:00:02:VRID for IPv6)`);
    } else if (a === 'netlink_notify_msg') {
      m.add(n.loc, 'unsupported', 'use_vmac netlink_notify_msg: no extra netlink notification is sent for the macvlan');
    } else if (a === 'group') {
      m.add(n.loc, 'unsupported', `use_vmac group ${n.args[i + 1] ?? ''}: no interface group is set on the macvlan`);
      i++;
    } else {
      if (a === 'name') i++;
      const v = n.args[i];
      if (v === undefined) continue;
      if (name !== undefined) m.add(n.loc, 'error', `use_vmac: interface name given twice ("${name}", "${v}"); the first is used`);
      else name = v;
    }
  }
  d.set('use_vmac', name ?? true, n.loc);
}

function instanceRules(ctx: Ctx): Record<string, Rule<Draft>> {
  const garp = (key: string, min: number): Rule<Draft> => to(key, int(min));
  return {
    state: to('state', oneOf(['MASTER', 'BACKUP'])),
    interface: to('interface', word),
    virtual_router_id: to('virtual_router_id', int(1, 255)),
    priority: to('priority', int(1, 255)),
    advert_int: to('advert_int', seconds(0.001)),
    version: to('version', int(2, 3)),
    nopreempt: (n, d) => d.set('nopreempt', true, n.loc),
    no_preempt: (n, d) => d.set('nopreempt', true, n.loc),
    preempt: noop(),
    preempt_delay: to('preempt_delay', seconds()),
    unicast_src_ip: to('unicast_src_ip', ip),
    mcast_src_ip: to('mcast_src_ip', ip),
    unicast_peer: (n, d, m) => {
      const peers: string[] = [];
      for (const c of n.block ?? []) {
        const a = canonicalAddress(c.keyword.replace(/\/\d+$/, ''));
        if (!a) {
          m.add(c.loc, 'error', `unicast_peer: "${c.keyword}" is not an IP address; not imported`);
          continue;
        }
        if (c.keyword.includes('/')) m.add(c.loc, 'changed', `unicast_peer ${c.keyword}: an address is expected; the prefix is dropped`);
        if (c.args.length > 0) m.add(c.loc, 'unsupported', `unicast_peer ${c.keyword} ${c.args.join(' ')}: TTL limits per peer are not supported; the peer is imported without them`);
        peers.push(a.address);
      }
      if (peers.length > 0) d.set('unicast_peer', peers, n.loc);
    },
    virtual_ipaddress: (n, d, m) => d.set('virtual_ipaddress', vipList(d, n, m, false), n.loc),
    virtual_ipaddress_excluded: (n, d, m) => {
      const list = vipList(d, n, m, true);
      if (list.length > 0) d.set('virtual_ipaddress_excluded', list, n.loc);
    },
    authentication: (n, d, m) => {
      let type: string | undefined;
      let pass: string | undefined;
      for (const c of n.block ?? []) {
        if (c.keyword === 'auth_type') type = c.args[0];
        else if (c.keyword === 'auth_pass') pass = c.args.join(' ');
        else m.add(c.loc, 'error', `unknown keyword "${c.keyword}" in authentication`);
      }
      if (type === 'AH') {
        m.add(n.loc, 'unsupported', 'authentication auth_type AH: IPsec AH is not supported (only PASS); peers using AH will not accept our adverts; not imported');
        return;
      }
      if (type !== 'PASS' || pass === undefined) {
        m.add(n.loc, 'error', 'authentication: needs auth_type PASS and auth_pass; not imported');
        return;
      }
      if (pass.length > 8) {
        m.add(n.loc, 'changed', `auth_pass is ${pass.length} characters; keepalived uses the first 8 ("${pass.slice(0, 8)}"), so does the import`);
        pass = pass.slice(0, 8);
      }
      d.set('authentication', { type: 'PASS', password: pass }, n.loc);
    },
    auth_hmac: unsupported('keepalived\'s HMAC advert authentication is not supported'),
    track_interface: trackRule('track_interface', 'track_interface'),
    track_script: trackRule('track_script', 'track_script'),
    track_process: trackRule('track_process', 'track_process', (name) => ctx.processReverse.get(name) ?? false),
    track_file: unsupported('VRRP track_file is not supported (FILE_CHECK covers real servers); use a vrrp_script that reads the file'),
    track_bfd: unsupported('no BFD in keepalive-ts'),
    garp_master_delay: garp('garp_master_delay', 0),
    garp_master_repeat: garp('garp_master_repeat', 1),
    garp_master_refresh: garp('garp_master_refresh', 0),
    garp_master_refresh_repeat: garp('garp_master_refresh_repeat', 1),
    garp_lower_prio_delay: unsupported('no gratuitous ARP burst on receiving a lower priority advert in keepalive-ts'),
    garp_lower_prio_repeat: unsupported('no gratuitous ARP burst on receiving a lower priority advert in keepalive-ts'),
    garp_extra_if: unsupported('no periodic gratuitous ARPs on other interfaces in keepalive-ts'),
    lower_prio_no_advert: to('lower_prio_no_advert', bool),
    higher_prio_send_advert: to('higher_prio_send_advert', bool),
    accept: (n, d) => d.set('accept', true, n.loc),
    no_accept: (n, d) => d.set('accept', false, n.loc),
    skip_check_adv_addr: to('skip_check_adv_addr', bool),
    v3_checksum_as_v2: to('v3_checksum_as_v2', bool),
    vrrp_v3_checksum_as_v2: to('v3_checksum_as_v2', bool),
    dont_track_primary: (n, d) => d.set('dont_track_primary', true, n.loc),
    notify_master: script('notify_master'),
    notify_backup: script('notify_backup'),
    notify_fault: script('notify_fault'),
    notify_stop: script('notify_stop'),
    notify: script('notify'),
    notify_master_rx_lower_pri: unsupported('no notify on receiving a lower priority advert in keepalive-ts'),
    notify_deleted: unsupported('no notify for an instance deleted by a reload in keepalive-ts'),
    notify_priority_changes: unsupported(NO_FIFO),
    smtp_alert: to('smtp_alert', bool),
    use_vmac: useVmac,
    // keepalived takes no value: the keyword alone sets it.
    vmac_xmit_base: (n, d) => d.set('vmac_xmit_base', true, n.loc),
    use_vmac_addr: unsupported('per-address virtual MACs are not supported'),
    use_ipvlan: unsupported('no ipvlan interfaces in keepalive-ts'),
    virtual_routes: specLines('virtual_routes', parseRouteSpec, ctx),
    virtual_rules: specLines('virtual_rules', parseRuleSpec, ctx),
    lvs_sync_daemon_interface: (n, d, m) => {
      const ifname = word(n, m);
      if (ifname === undefined) return;
      const s = new Draft(SYNC_FIELDS, n.loc, 'lvs_sync_daemon_interface');
      s.set('interface', ifname, n.loc);
      const name = d.get('name');
      if (typeof name === 'string') s.set('instance', name, n.loc);
      ctx.sync = s;
      ctx.syncHasInstance = true;
    },
    native_ipv6: ignored('the VIPs decide the address family'),
    debug: ignored('keepalive-ts logs through --log-level'),
    strict_mode: unsupported('strict RFC mode is not enforced by keepalive-ts'),
    down_timer_adverts: unsupported('the master down timer is always 3 advert intervals plus skew (RFC) in keepalive-ts'),
    timer_expired_backup: unsupported('no backoff to BACKUP after late timers in keepalive-ts'),
    unicast_ttl: unsupported('keepalive-ts sends adverts with TTL 255 (RFC)'),
    check_unicast_src: unsupported('keepalive-ts does not check that unicast adverts come from a configured peer'),
    unicast_fault_no_peer: unsupported('an instance without unicast peers uses multicast in keepalive-ts'),
    mcast_dst_ip: unsupported('keepalive-ts uses global.vrrp_mcast_group4/6 for every instance'),
    track_src_ip: unsupported('a missing source address does not force FAULT in keepalive-ts'),
    old_unicast_checksum: unsupported('use v3_checksum_as_v2 for old peers'),
    promote_secondaries: unsupported('keepalive-ts does not set promote_secondaries on the interface'),
    kernel_rx_buf_size: ignored(NO_PROCESS_TUNING),
    linkbeat_use_polling: ignored('keepalive-ts follows link state through netlink'),
    vrf: unsupported('no VRF support in keepalive-ts'),
    no_virtual_ipaddress: unsupported('keepalive-ts instances need at least one VIP'),
  };
}

// ============================================================================ vrrp_sync_group

function syncGroupRules(): Record<string, Rule<Draft>> {
  return {
    group: (n, d, m) => {
      const members = (n.block ?? []).flatMap((c) => [c.keyword, ...c.args]);
      if (members.length === 0) m.add(n.loc, 'error', 'group: no vrrp_instance listed');
      else d.set('group', members, n.loc);
    },
    notify_master: script('notify_master'),
    notify_backup: script('notify_backup'),
    notify_fault: script('notify_fault'),
    notify_stop: script('notify_stop'),
    notify: script('notify'),
    notify_deleted: unsupported('no notify for an instance deleted by a reload in keepalive-ts'),
    notify_priority_changes: unsupported(NO_FIFO),
    track_script: trackRule('track_script', 'track_script'),
    track_interface: unsupported('track_interface on a sync group is not supported; put it on each member instance'),
    track_file: unsupported('track_file is not supported; use a vrrp_script that reads the file'),
    track_process: unsupported('track_process on a sync group is not supported; put it on each member instance'),
    track_bfd: unsupported('no BFD in keepalive-ts'),
    smtp_alert: to('smtp_alert', bool),
    global_tracking: ignored('deprecated in keepalived; track on the group instead'),
    sync_group_tracking_weight: unsupported('weighted tracking of sync group members is not supported'),
  };
}

// ============================================================================ virtual_server, real_server, checks

interface VsDraft extends Draft {
  reals: RsDraft[];
  /** lvs_method / lb_kind as written (DR, NAT, TUN). */
  method?: { value: string; loc: Loc };
}
interface RsDraft extends Draft {
  checks: Draft[];
  method?: { value: string; loc: Loc };
  /** Real-server level defaults for its checks (keepalived: RS setting -> checker default). */
  checkDefaults: Map<string, { value: TomlValue; loc: Loc }>;
}


const LB_KIND_WORDS = ['NAT', 'DR', 'TUN'];

function methodRule<D extends Draft & { method?: { value: string; loc: Loc } }>(): Rule<D> {
  return (n, d, m) => {
    const v = oneOf(LB_KIND_WORDS)(n, m);
    if (typeof v !== 'string') return;
    if (v === 'TUN' && n.args.length > 1) m.add(n.loc, 'unsupported', `${n.keyword} TUN ${n.args.slice(1).join(' ')}: tunnel options are not supported`);
    d.method = { value: v, loc: n.loc };
  };
}

/** Common checker keywords (keepalived install_checker_common_keywords). */
function commonCheckRules(): Record<string, Rule<Draft>> {
  return {
    connect_ip: to('connect_ip', ip),
    connect_port: to('connect_port', int(1, 65535)),
    bindto: to('bind_to', ip),
    bind_to: to('bind_to', ip),
    bind_port: unsupported('checks use an ephemeral source port in keepalive-ts'),
    bind_if: unsupported('checks cannot be bound to an interface in keepalive-ts'),
    fwmark: unsupported('checks cannot set a firewall mark in keepalive-ts'),
    connect_timeout: to('connect_timeout', seconds(0.001)),
    retry: to('retry', int(0)),
    nb_get_retry: to('retry', int(0)),
    delay_before_retry: to('delay_before_retry', seconds()),
    warmup: to('warmup', seconds()),
    delay_loop: to('delay_loop', seconds(0.001)),
    alpha: unsupported('alpha per check is not supported; use alpha on the virtual_server'),
    log_all_failures: ignored('every failed attempt is counted in the keepalive_ts_check_failures_total metric'),
  };
}

/** A url { } block of HTTP_GET / SSL_GET -> the keys of one check. */
function urlKeys(n: KNode, m: Messages): Map<string, { value: TomlValue; loc: Loc }> {
  const out = new Map<string, { value: TomlValue; loc: Loc }>();
  for (const c of n.block ?? []) {
    switch (c.keyword) {
      case 'path':
        if (c.args[0] !== undefined) out.set('path', { value: c.args.join(' '), loc: c.loc });
        break;
      case 'digest':
        if (c.args[0] !== undefined && /^[0-9a-fA-F]{32}$/.test(c.args[0])) out.set('digest', { value: c.args[0].toLowerCase(), loc: c.loc });
        else m.add(c.loc, 'error', `digest: "${c.args[0] ?? ''}" is not an MD5 digest (32 hex digits); not imported`);
        break;
      case 'status_code': {
        const codes: TomlValue[] = [];
        for (const a of c.args) {
          if (/^\d{3}$/.test(a) && Number(a) >= 100 && Number(a) <= 599) codes.push(Number(a));
          else if (parseStatusRange(a)) codes.push(a);
          else m.add(c.loc, 'error', `status_code: "${a}" is not a code or range 100..599; not imported`);
        }
        if (codes.length > 0) out.set('status_code', { value: codes, loc: c.loc });
        break;
      }
      case 'virtualhost':
        if (c.args[0] !== undefined) out.set('virtualhost', { value: c.args[0], loc: c.loc });
        break;
      case 'regex': {
        const words = escapedArgs(c);
        if (words.length !== 1) {
          m.add(c.loc, 'error', 'regex: expected one (quoted) pattern; not imported');
          break;
        }
        const re = words[0]!;
        try {
          new RegExp(re);
          out.set('regex', { value: re, loc: c.loc });
        } catch {
          m.add(c.loc, 'unsupported', `regex ${JSON.stringify(re)}: not a JavaScript regular expression (keepalived uses PCRE2); not imported`);
        }
        break;
      }
      case 'regex_no_match':
        m.add(c.loc, 'unsupported', 'regex_no_match: inverted regex matching is not supported; the url is checked without its regex');
        out.set('regex_no_match', { value: true, loc: c.loc });
        break;
      case 'regex_options': case 'regex_stack': case 'regex_min_offset': case 'regex_max_offset':
        m.add(c.loc, 'unsupported', `${c.keyword}: PCRE2 options are not supported; the regex is matched as a JavaScript RegExp over the whole body`);
        break;
      case 'tls_compliant':
        m.add(c.loc, 'ignored', 'tls_compliant: Node.js always sends close_notify');
        break;
      default:
        m.add(c.loc, 'error', `unknown keyword "${c.keyword}" in url`);
    }
  }
  if (out.get('regex_no_match')) {
    out.delete('regex');
    out.delete('regex_no_match');
  }
  return out;
}

function hexPayload(hex: string): Buffer | undefined {
  const clean = hex.replace(/\s+/g, '');
  return /^([0-9a-fA-F]{2})*$/.test(clean) ? Buffer.from(clean, 'hex') : undefined;
}

/** One checker block -> one or more check drafts (HTTP_GET: one per url; SMTP_CHECK: one per host). */
function mapChecker(n: KNode, ctx: Ctx): Draft[] {
  const m = ctx.m;
  const type = n.keyword;
  if (type === 'BFD_CHECK') {
    m.add(n.loc, 'unsupported', 'BFD_CHECK: no BFD in keepalive-ts; check not imported');
    return [];
  }
  const base = new Draft(checkFieldsOf(type), n.loc, type);
  base.set('type', type, n.loc);
  const common = commonCheckRules();
  const urls: KNode[] = [];
  const hosts: KNode[] = [];
  let sniWanted: Loc | undefined;
  const rules: Record<string, Rule<Draft>> = { ...common };
  if (type === 'HTTP_GET' || type === 'SSL_GET') {
    Object.assign(rules, {
      url: (c: KNode) => void urls.push(c),
      http_protocol: (c: KNode) => m.add(c.loc, 'changed', `http_protocol ${c.args[0] ?? ''}: keepalive-ts always sends HTTP/1.1 with "Connection: close"`),
      fast_recovery: ignored<Draft>('keepalive-ts checks each url as its own check, all from the start'),
      virtualhost: to('virtualhost', word),
      ...(type === 'SSL_GET' ? {
        enable_sni: (c: KNode) => { sniWanted = c.loc; },
        sni_name: to('sni', word),
        tls_compliant: ignored<Draft>('Node.js always sends close_notify'),
      } : {}),
    });
  } else if (type === 'MISC_CHECK') {
    for (const k of ['connect_ip', 'connect_port', 'bindto', 'bind_to', 'bind_port', 'bind_if', 'fwmark', 'connect_timeout']) delete rules[k];
    Object.assign(rules, {
      misc_path: to('misc_path', command),
      misc_timeout: to('misc_timeout', seconds(0.001)),
      misc_dynamic: (c: KNode, d: Draft) => d.set('misc_dynamic', true, c.loc),
      user: (c: KNode, d: Draft) => {
        const u = userSpec(c, m);
        if (u !== undefined) d.set('user', u, c.loc);
      },
    });
  } else if (type === 'UDP_CHECK') {
    Object.assign(rules, {
      payload: (c: KNode, d: Draft) => {
        const bytes = hexPayload(c.args.join(''));
        if (!bytes) m.add(c.loc, 'error', `payload: "${c.args.join(' ')}" is not a hex string; not imported`);
        else if (!/^[\x20-\x7e]*$/.test(bytes.toString('latin1'))) m.add(c.loc, 'unsupported', 'payload: only printable ASCII payloads can be imported (keepalive-ts payload is text); not imported');
        else d.set('payload', bytes.toString('latin1'), c.loc);
      },
      require_reply: (c: KNode, d: Draft) => {
        d.set('require_reply', true, c.loc);
        if (c.args.length > 0) m.add(c.loc, 'unsupported', 'require_reply HEX: the reply content is not compared in keepalive-ts (any reply counts)');
      },
      min_reply_length: unsupported<Draft>('reply lengths are not checked in keepalive-ts'),
      max_reply_length: unsupported<Draft>('reply lengths are not checked in keepalive-ts'),
    });
  } else if (type === 'DNS_CHECK') {
    Object.assign(rules, {
      type: to('query_type', oneOf(['A', 'NS', 'CNAME', 'SOA', 'MX', 'TXT', 'AAAA', 'RRSIG', 'DNSKEY'])),
      name: to('name', word),
    });
  } else if (type === 'FILE_CHECK') {
    for (const k of Object.keys(common)) delete rules[k];
    Object.assign(rules, {
      track_file: (c: KNode, d: Draft) => {
        const tf = c.args[0] === undefined ? undefined : ctx.trackFiles.get(c.args[0]);
        if (!tf || tf.file === undefined) {
          m.add(c.loc, 'error', `track_file: no track_file block named "${c.args[0] ?? ''}" with a file; check not imported`);
          return;
        }
        d.set('file', tf.file, c.loc);
        if (tf.weight !== undefined && !d.has('weight')) d.set('weight', tf.weight, tf.loc);
      },
      weight: (c: KNode, d: Draft) => {
        const w = int(-254, 254)(c, m);
        if (w === undefined) return;
        if (c.args[1] === 'reverse') m.add(c.loc, 'unsupported', 'weight ... reverse: not supported; imported without reverse');
        d.set('weight', w, c.loc);
      },
      dynamic: unsupported<Draft>('FILE_CHECK dynamic (adding the value to quorum) is not supported; the value still adds to the weight'),
    });
  } else if (type === 'SMTP_CHECK') {
    Object.assign(rules, {
      helo_name: to('helo_name', text),
      host: (c: KNode) => void hosts.push(c),
    });
  } else if (type !== 'TCP_CHECK' && type !== 'PING_CHECK') {
    m.add(n.loc, 'error', `unknown check type ${type}; not imported`);
    return [];
  }
  applyRules(n.block, rules, base, m, type);

  if (type === 'HTTP_GET' || type === 'SSL_GET') {
    if (urls.length === 0) {
      m.add(n.loc, 'error', `${type} without a url block (keepalived drops such a checker too); not imported`);
      return [];
    }
    if (sniWanted) {
      // keepalived's enable_sni sends the virtualhost as SNI (filled in below once it is known).
      base.comments.push('enable_sni: sni = the virtualhost');
    }
    return urls.map((u) => {
      const d = base.clone(`${type} url`, u.loc);
      for (const [k, v] of urlKeys(u, m)) d.set(k, v.value, v.loc);
      if (!d.has('path')) m.add(u.loc, 'error', 'url without a path; "/" is checked');
      if (sniWanted) d.set('__enable_sni', true, sniWanted);
      return d;
    });
  }
  if (type === 'SMTP_CHECK' && hosts.length > 0) {
    const hasConn = ['connect_ip', 'connect_port', 'bind_to', 'connect_timeout'].some((k) => base.has(k));
    const out: Draft[] = hasConn ? [base] : [];
    hosts.forEach((h) => {
      const d = base.clone('SMTP_CHECK host', h.loc);
      for (const k of ['connect_ip', 'connect_port', 'bind_to']) d.delete(k);
      applyRules(h.block, commonCheckRules(), d, m, 'SMTP_CHECK host');
      out.push(d);
    });
    m.add(n.loc, 'changed', `SMTP_CHECK host { } blocks (deprecated in keepalived): imported as ${out.length} SMTP_CHECK checks, one per address, as keepalived runs them`);
    return out;
  }
  if (type === 'MISC_CHECK' && !base.has('misc_path')) {
    m.add(n.loc, 'error', 'MISC_CHECK without misc_path; not imported');
    return [];
  }
  if (type === 'FILE_CHECK' && !base.has('file')) return [];
  return [base];
}

function realServerRules(ctx: Ctx): Record<string, Rule<RsDraft>> {
  const def = (key: string, conv: (n: KNode, m: Messages) => TomlValue | undefined): Rule<RsDraft> => (n, d, m) => {
    const v = conv(n, m);
    if (v !== undefined) d.checkDefaults.set(key, { value: v, loc: n.loc });
  };
  const checker: Rule<RsDraft> = (n, d) => void d.checks.push(...mapChecker(n, ctx));
  return {
    weight: to('weight', int(0)),
    lvs_method: methodRule<RsDraft>(),
    lb_kind: methodRule<RsDraft>(),
    notify_up: script('notify_up'),
    notify_down: script('notify_down'),
    uthreshold: to('uthreshold', int(0)),
    lthreshold: to('lthreshold', int(0)),
    inhibit_on_failure: to('inhibit_on_failure', bool),
    smtp_alert: to('smtp_alert', bool),
    virtualhost: def('virtualhost', word),
    connect_timeout: def('connect_timeout', seconds(0.001)),
    retry: def('retry', int(0)),
    delay_before_retry: def('delay_before_retry', seconds()),
    warmup: def('warmup', seconds()),
    delay_loop: def('delay_loop', seconds(0.001)),
    alpha: unsupported('alpha per real server is not supported; use alpha on the virtual_server'),
    snmp_name: ignored(NO_SNMP),
    ...many(['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'MISC_CHECK', 'UDP_CHECK', 'DNS_CHECK', 'FILE_CHECK', 'SMTP_CHECK', 'PING_CHECK', 'BFD_CHECK'], checker),
  };
}

function virtualServerRules(ctx: Ctx): Record<string, Rule<VsDraft>> {
  return {
    delay_loop: to('delay_loop', seconds(0.001)),
    lb_algo: lbAlgo(),
    lvs_sched: lbAlgo(),
    lb_kind: methodRule<VsDraft>(),
    lvs_method: methodRule<VsDraft>(),
    persistence_timeout: (n, d, m) => {
      const v = n.args.length === 0 ? 360 : int(0)(n, m);
      if (v !== undefined) d.set('persistence_timeout', v, n.loc);
    },
    persistence_granularity: to('persistence_granularity', word),
    persistence_engine: unsupported('no persistence engines (SIP) in keepalive-ts'),
    protocol: (n, d, m) => {
      const v = oneOf(['TCP', 'UDP', 'SCTP'])(n, m);
      if (v === 'SCTP') m.add(n.loc, 'unsupported', 'protocol SCTP: keepalive-ts balances TCP and UDP only; imported as TCP');
      else if (v !== undefined) d.set('protocol', v, n.loc);
    },
    ha_suspend: (n, d) => d.set('ha_suspend', true, n.loc),
    virtualhost: to('virtualhost', word),
    alpha: (n, d) => d.set('alpha', true, n.loc),
    omega: (n, d) => d.set('omega', true, n.loc),
    quorum: to('quorum', int(1)),
    hysteresis: to('hysteresis', int(0)),
    quorum_up: script('quorum_up'),
    quorum_down: script('quorum_down'),
    sorry_server: (n, d, m) => {
      const a = n.args[0] === undefined ? undefined : canonicalAddress(n.args[0]);
      if (!a) {
        m.add(n.loc, 'error', `sorry_server: "${n.args[0] ?? ''}" is not an IP address; not imported`);
        return;
      }
      const port = n.args[1] === undefined ? undefined : Number(n.args[1]);
      d.set('sorry_server', port === undefined ? { address: a.address } : { address: a.address, port }, n.loc);
    },
    sorry_server_inhibit: (n, d) => d.set('sorry_server_inhibit', true, n.loc),
    sorry_server_lvs_method: (n, _d, m) => {
      if (n.args[0] !== 'NAT') m.add(n.loc, 'unsupported', `sorry_server_lvs_method ${n.args[0] ?? ''}: the sorry server is forwarded like the real servers`);
    },
    connect_timeout: to('connect_timeout', seconds(0.001)),
    retry: to('retry', int(0)),
    delay_before_retry: to('delay_before_retry', seconds()),
    warmup: to('warmup', seconds()),
    inhibit_on_failure: (n, d) => d.set('inhibit_on_failure', true, n.loc),
    ops: (n, d) => d.set('ops', true, n.loc),
    smtp_alert: to('smtp_alert', bool),
    snmp_name: ignored(NO_SNMP),
    ip_family: ignored('the addresses decide the family'),
    ...many(['flag-1', 'flag-2', 'sh-port', 'sh-fallback', 'mh-port', 'mh-fallback'], (n, d) => {
      const flags = (d.get('sched_flags') as TomlValue[] | undefined) ?? [];
      if (!flags.includes(n.keyword)) d.set('sched_flags', [...flags, n.keyword], n.loc);
    }),
    'flag-3': unsupported('flag-3: no scheduler of keepalive-ts reads a third flag (keepalived passes it to the kernel, where none does either)'),
    real_server: (n, d, m) => {
      const rs = realServer(n, ctx);
      if (rs) d.reals.push(rs);
      void m;
    },
  };
}

function lbAlgo(): Rule<VsDraft> {
  return (n, d, m) => {
    const v = word(n, m);
    if (typeof v !== 'string') return;
    if (!(LB_ALGOS as readonly string[]).includes(v)) {
      m.add(n.loc, 'unsupported', `${n.keyword} ${v}: no such scheduler in keepalive-ts (${LB_ALGOS.join(' ')}); the default wlc is used`);
      return;
    }
    d.set('lb_algo', v, n.loc);
  };
}

function realServer(n: KNode, ctx: Ctx): RsDraft | undefined {
  const m = ctx.m;
  const a = n.args[0] === undefined ? undefined : canonicalAddress(n.args[0]);
  if (!a) {
    m.add(n.loc, 'error', `real_server: "${n.args[0] ?? ''}" is not an IP address; not imported`);
    return undefined;
  }
  const rs = Object.assign(new Draft(REAL_SERVER_FIELDS, n.loc, `real_server ${n.args.join(' ')}`), { checks: [] as Draft[], checkDefaults: new Map() }) as RsDraft;
  rs.set('address', a.address, n.loc);
  if (n.args[1] !== undefined) {
    if (!/^\d+$/.test(n.args[1]) || Number(n.args[1]) < 1 || Number(n.args[1]) > 65535) m.add(n.loc, 'error', `real_server: port "${n.args[1]}" is not 1..65535`);
    else rs.set('port', Number(n.args[1]), n.loc);
  }
  applyRules(n.block, realServerRules(ctx), rs, m, 'real_server');
  return rs;
}

// ============================================================================ assembly

const TOP_LEVEL_ONLY_REPORTED: Readonly<Record<string, string>> = {
  bfd_instance: 'no BFD in keepalive-ts',
  garp_group: 'no per-interface gratuitous ARP pacing groups in keepalive-ts (global.vrrp_garp_interval applies everywhere)',
  linkbeat_interfaces: 'keepalive-ts follows link state through netlink',
  interface_up_down_delays: 'no interface state debouncing in keepalive-ts',
  track_group: 'static addresses, routes and rules cannot be tracked in keepalive-ts',
  SSL: 'SSL_GET client certificates / CA files are not supported (SSL_GET verify uses the system CAs)',
  net_namespace: 'run keepalive-ts inside the namespace instead (ip netns exec NAME keepalive-ts run ...)',
  net_namespace_ipvs: NO_KERNEL_IPVS,
  namespace_with_ipsets: NO_FIREWALL,
  instance: 'one keepalive-ts per config file',
  use_pid_dir: 'keepalive-ts writes global.pid_file',
  linkbeat_use_polling: 'keepalive-ts follows link state through netlink',
  child_wait_time: NO_PROCESS_TUNING,
};

/**
 * The keyword tables by block, for docs/import.md and its test (the checker-specific keywords of
 * mapChecker are listed in the docs by hand).
 */
export function ruleTables(): Record<string, Readonly<Record<string, Rule<never>>>> {
  const ctx: Ctx = { m: new Messages(), trackFiles: new Map(), vsGroups: new Map(), vsGroupDrafts: new Map(), instanceDefaults: new Map(), processReverse: new Map(), syncHasInstance: false };
  const top = Object.fromEntries(Object.entries(TOP_LEVEL_ONLY_REPORTED).map(([k, why]) => [k, unsupported<never>(why)]));
  return {
    'top level': top,
    global_defs: globalRules(ctx),
    vrrp_script: vrrpScriptRules(),
    vrrp_instance: instanceRules(ctx),
    vrrp_sync_group: syncGroupRules(),
    virtual_server: virtualServerRules(ctx),
    real_server: realServerRules(ctx),
    'checkers (common)': commonCheckRules(),
  } as Record<string, Readonly<Record<string, Rule<never>>>>;
}

export interface KeepalivedMapResult {
  tables: TomlTable[];
  messages: Messages;
}

function origin(d: Draft): string {
  return `from ${d.loc.file}:${d.loc.line} (${d.what})`;
}

function table(name: string | undefined, d: Draft, array = true, order: readonly string[] = []): TomlTable {
  const keys = [...d.entries.keys()].filter((k) => !k.startsWith('__'));
  const sorted = [...order.filter((k) => keys.includes(k)), ...keys.filter((k) => !order.includes(k))];
  return {
    ...(name === undefined ? {} : { name, array }),
    comments: [origin(d), ...d.comments],
    loc: d.loc,
    entries: sorted.map((k) => d.entries.get(k)!),
  };
}

/**
 * `a.b.c.d-e` / `a::x-y` / `a.b.c.d-a.b.c.e` / CIDR -> addresses (at most `limit`); a CIDR with
 * host bits set stands for its network, as keepalived reads it.
 */
export function expandAddressRange(text: string, limit = 256): string[] | undefined {
  const cidr = /^([^/]+)\/(\d+)$/.exec(text);
  const net = cidr ? parseCidr(text) : null;
  if (cidr && !net) return undefined;
  const r = parseAddressRange(net ? networkText(net.address, net.family, net.prefix) : text, limit);
  return r.ok ? r.value.addresses : undefined;
}

/** ADDR/PREFIX with the host bits cleared. */
function networkText(address: string, family: 4 | 6, prefix: number): string {
  const b = parseIp(address, family)!;
  for (let i = 0; i < b.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    b[i] = b[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return `${formatIp(b)}/${prefix}`;
}

/** The statements of the whole file -> tables in keepalive-ts order, with messages. */
export function mapKeepalived(nodes: readonly KNode[]): KeepalivedMapResult {
  const m = new Messages();
  const ctx: Ctx = { m, trackFiles: new Map(), vsGroups: new Map(), vsGroupDrafts: new Map(), instanceDefaults: new Map(), processReverse: new Map(), syncHasInstance: false };
  const first = nodes[0]?.loc ?? { file: '-', line: 1 };
  const global = new Draft(GLOBAL_FIELDS, first, 'global_defs');
  const scripts: Draft[] = [];
  const instances: Draft[] = [];
  const groups: Draft[] = [];
  const servers: VsDraft[] = [];
  const trackProcesses: Draft[] = [];

  // Pass 1: what other statements refer to, wherever it is written (keepalived resolves
  // references after reading the whole file).
  for (const n of nodes) {
    if (n.keyword === 'global_defs') {
      global.comments.push(`from ${n.loc.file}:${n.loc.line} (global_defs)`);
      applyRules(n.block, globalRules(ctx), global, m, 'global_defs');
    } else if (n.keyword === 'track_file' || n.keyword === 'vrrp_track_file') {
      const tf: { file?: string; weight?: number; loc: Loc } = { loc: n.loc };
      for (const c of n.block ?? []) {
        if (c.keyword === 'file') tf.file = c.args.join(' ');
        else if (c.keyword === 'weight' && /^[+-]?\d+$/.test(c.args[0] ?? '')) tf.weight = Number(c.args[0]);
        else if (c.keyword === 'init_file') m.add(c.loc, 'unsupported', 'init_file: keepalive-ts does not create the file; a missing file counts as 0');
        else m.add(c.loc, 'error', `unknown keyword "${c.keyword}" in track_file`);
      }
      if (n.args[0] !== undefined) ctx.trackFiles.set(n.args[0], tf);
    } else if (n.keyword === 'virtual_server_group') {
      if (n.args[0] !== undefined) ctx.vsGroups.set(n.args[0], n);
    } else if (n.keyword === 'vrrp_track_process' && n.args[0] !== undefined) {
      ctx.processReverse.set(n.args[0], (n.block ?? []).some((c) => c.keyword === 'weight' && c.args[1] === 'reverse'));
    }
  }

  for (const n of nodes) {
    switch (n.keyword) {
      case 'global_defs':
      case 'track_file':
      case 'vrrp_track_file':
      case 'virtual_server_group':
        break;
      case 'vrrp_script': {
        const d = new Draft(VRRP_SCRIPT_FIELDS, n.loc, `vrrp_script ${n.args[0] ?? ''}`);
        if (n.args[0] !== undefined) d.set('name', n.args[0], n.loc);
        applyRules(n.block, vrrpScriptRules(), d, m, 'vrrp_script');
        scripts.push(d);
        break;
      }
      case 'vrrp_track_process': {
        const d = new Draft(VRRP_TRACK_PROCESS_FIELDS, n.loc, `vrrp_track_process ${n.args[0] ?? ''}`);
        if (n.args[0] !== undefined) d.set('name', n.args[0], n.loc);
        applyRules(n.block, trackProcessRules(), d, m, 'vrrp_track_process');
        trackProcesses.push(d);
        break;
      }
      case 'vrrp_instance': {
        const d = new Draft(VRRP_INSTANCE_FIELDS, n.loc, `vrrp_instance ${n.args[0] ?? ''}`);
        if (n.args[0] !== undefined) d.set('name', n.args[0], n.loc);
        // interface first: virtual_ipaddress compares `dev` with it.
        const iface = n.block?.find((c) => c.keyword === 'interface');
        if (iface?.args[0] !== undefined) d.set('interface', iface.args[0], iface.loc);
        applyRules(n.block, instanceRules(ctx), d, m, 'vrrp_instance');
        finishInstance(d, n, ctx);
        instances.push(d);
        break;
      }
      case 'vrrp_sync_group': {
        const d = new Draft(VRRP_SYNC_GROUP_FIELDS, n.loc, `vrrp_sync_group ${n.args[0] ?? ''}`);
        if (n.args[0] !== undefined) d.set('name', n.args[0], n.loc);
        applyRules(n.block, syncGroupRules(), d, m, 'vrrp_sync_group');
        if (!d.has('group')) {
          m.add(n.loc, 'error', `vrrp_sync_group ${n.args[0] ?? ''} has no group { } of instances (keepalived drops it too); not imported`);
          break;
        }
        groups.push(d);
        break;
      }
      case 'virtual_server':
        servers.push(...virtualServers(n, ctx));
        break;
      case 'static_ipaddress':
      case 'static_routes':
      case 'static_rules': {
        // Top-level blocks in keepalived, [global] keys here.
        const parse = n.keyword === 'static_ipaddress' ? parseAddressSpec : n.keyword === 'static_routes' ? parseRouteSpec : parseRuleSpec;
        global.comments.push(`from ${n.loc.file}:${n.loc.line} (${n.keyword})`);
        specLines(n.keyword, parse, ctx)(n, global, m);
        break;
      }
      default: {
        const why = TOP_LEVEL_ONLY_REPORTED[n.keyword];
        if (why !== undefined) m.add(n.loc, 'unsupported', `${n.keyword}: ${why}; not imported`);
        else m.add(n.loc, 'error', `unknown top-level keyword "${n.keyword}" (keepalived ignores it too)`);
      }
    }
  }

  if (ctx.defaultInterface && !ctx.defaultInterface.used) {
    m.add(ctx.defaultInterface.loc, 'ignored', 'default_interface: keepalived uses it for static addresses without dev; there are none');
  }
  if (ctx.minGarp) {
    if (!global.has('vrrp_garp_master_repeat')) global.set('vrrp_garp_master_repeat', 1, ctx.minGarp);
    if (!global.has('vrrp_garp_master_delay')) global.set('vrrp_garp_master_delay', 0, ctx.minGarp);
  }

  const tables: TomlTable[] = [];
  if (global.entries.size > 0) tables.push({ ...table('global', global, false), comments: global.comments.length > 0 ? global.comments : [origin(global)] });
  for (const s of scripts) tables.push(table('vrrp_script', s, true, ['name', 'script']));
  for (const p of trackProcesses) tables.push(table('vrrp_track_process', p, true, ['name', 'process']));
  for (const i of instances) tables.push(table('vrrp_instance', i, true, ['name', 'state', 'interface', 'virtual_router_id', 'priority', 'advert_int', 'version']));
  for (const g of groups) tables.push(table('vrrp_sync_group', g, true, ['name', 'group']));
  for (const g of ctx.vsGroupDrafts.values()) tables.push(table('virtual_server_group', g, true, ['name', 'members']));
  for (const vs of servers) {
    tables.push(table('virtual_server', vs, true, ['group', 'address', 'port', 'fwmark', 'protocol', 'lb_algo', 'lb_kind']));
    for (const rs of vs.reals) {
      tables.push(table('virtual_server.real_server', rs, true, ['address', 'port', 'weight']));
      for (const c of rs.checks) tables.push(table('virtual_server.real_server.check', c, true, ['type', 'path', 'status_code', 'digest']));
    }
  }
  const sync = finishSync(ctx, instances);
  if (sync) tables.push(table('sync', sync, false, ['interface', 'instance']));
  return { tables, messages: m };
}

/** vrrp_track_process { } keywords (keepalived vrrp_tprocess_*_handler). */
function trackProcessRules(): Record<string, Rule<Draft>> {
  return {
    // `process NAME [PARAM ...]`: with parameters keepalived matches the command line, as
    // keepalive-ts does for ["NAME", "PARAM", ...].
    process: (n, d, m) => {
      if (n.args.length === 0) m.add(n.loc, 'error', 'process: name missing; not imported');
      else d.set('process', n.args.length === 1 ? n.args[0]! : [...n.args], n.loc);
    },
    // Without a value keepalived means exact matching.
    param_match: (n, d, m) => {
      const v = n.args.length === 0 ? 'exact' : oneOf(PARAM_MATCH)(n, m);
      if (v !== undefined) d.set('param_match', v, n.loc);
    },
    weight: (n, d, m) => {
      const w = int(-254, 254)(n, m);
      if (w === undefined) return;
      const opt = n.args[1];
      if (opt !== undefined && opt !== 'reverse') {
        m.add(n.loc, 'error', `weight: unknown option "${opt}" (reverse); not imported`);
        return;
      }
      d.set('weight', w, n.loc);
      if (opt === 'reverse') d.set('reverse', true, n.loc);
    },
    quorum: to('quorum', int(1, 65535)),
    quorum_max: to('quorum_max', int(0, 65535)),
    delay: to('delay', seconds()),
    fork_delay: to('fork_delay', seconds()),
    terminate_delay: to('terminate_delay', seconds()),
    full_command: (n, d) => d.set('full_command', true, n.loc),
  };
}

function finishInstance(d: Draft, n: KNode, ctx: Ctx): void {
  for (const [k, v] of ctx.instanceDefaults) if (!d.has(k)) d.set(k, v.value, v.loc);
  const xmitBase = d.entries.get('vmac_xmit_base');
  if (xmitBase && !d.has('use_vmac')) {
    ctx.m.add(xmitBase.loc ?? d.loc, 'ignored', 'vmac_xmit_base without use_vmac: no effect (in keepalived either)');
    d.delete('vmac_xmit_base');
  }
  const peers = d.get('unicast_peer');
  if (d.has('use_vmac') && !d.has('vmac_xmit_base') && Array.isArray(peers) && peers.length > 0) {
    const at = d.entries.get('use_vmac')?.loc ?? d.loc;
    d.set('vmac_xmit_base', true, at);
    ctx.m.add(at, 'changed', 'use_vmac with unicast peers: vmac_xmit_base = true, as keepalived sets it (unicast adverts go out of the base interface)');
  }
  const vips = d.get('virtual_ipaddress');
  if (!Array.isArray(vips) || vips.length === 0) {
    ctx.m.add(n.loc, 'error', `${d.what}: no virtual_ipaddress (keepalive-ts needs at least one VIP)`);
    return;
  }
  const fam = (s: TomlValue): 4 | 6 | undefined => parseCidr(String(s))?.family;
  const family = fam(vips[0]!);
  const other = vips.filter((v) => fam(v) !== family);
  if (other.length > 0) {
    d.set('virtual_ipaddress', vips.filter((v) => fam(v) === family), (d.entries.get('virtual_ipaddress')?.loc ?? d.loc));
    const ex = (d.get('virtual_ipaddress_excluded') as TomlValue[] | undefined) ?? [];
    d.set('virtual_ipaddress_excluded', [...ex, ...other], (d.entries.get('virtual_ipaddress')?.loc ?? d.loc));
    ctx.m.add((d.entries.get('virtual_ipaddress')?.loc ?? d.loc), 'changed', `${other.join(', ')}: another address family than the first VIP; moved to virtual_ipaddress_excluded (as keepalived does)`);
  }
  if (family === 6 && !d.has('version')) d.set('version', 3, n.loc);
}

function finishSync(ctx: Ctx, instances: readonly Draft[]): Draft | undefined {
  const s = ctx.sync;
  if (!s) return undefined;
  if (!ctx.syncHasInstance) {
    if (instances.length === 1 && typeof instances[0]!.get('name') === 'string') {
      s.set('instance', instances[0]!.get('name')!, s.loc);
      ctx.m.add(s.loc, 'changed', `lvs_sync_daemon without an instance: keepalive-ts follows the only vrrp_instance, ${String(instances[0]!.get('name'))} (MASTER sends, BACKUP receives)`);
    } else {
      ctx.m.add(s.loc, 'unsupported', 'lvs_sync_daemon without an instance (both sync daemons always running): keepalive-ts syncs from the MASTER of one vrrp_instance; name it (lvs_sync_daemon IF INSTANCE); not imported');
      return undefined;
    }
  }
  s.set('auth_key_file', SYNC_KEY_FILE, s.loc);
  ctx.m.add(s.loc, 'changed', `connection sync: keepalive-ts uses its own authenticated sync protocol, not the kernel's IPVS sync daemon; both directors must run keepalive-ts and share the key in ${SYNC_KEY_FILE} (create it, e.g. head -c 32 /dev/urandom | base64 > ${SYNC_KEY_FILE})`);
  return s;
}

/** One virtual_server statement -> its drafts (several for a virtual_server_group). */
function virtualServers(n: KNode, ctx: Ctx): VsDraft[] {
  const m = ctx.m;
  const mk = (what: string): VsDraft => Object.assign(new Draft(VIRTUAL_SERVER_FIELDS, n.loc, what), { reals: [] as RsDraft[] }) as VsDraft;
  const tmpl = mk(`virtual_server ${n.args.join(' ')}`);
  applyRules(n.block, virtualServerRules(ctx), tmpl, m, 'virtual_server');
  finishVirtualServer(tmpl, ctx);

  const [a0, a1] = n.args;
  if (a0 === 'fwmark') {
    if (!hasKey(VIRTUAL_SERVER_FIELDS, 'fwmark')) {
      m.add(n.loc, 'unsupported', `virtual_server fwmark ${a1 ?? ''}: ${NO_FWMARK}; virtual server not imported`);
      return [];
    }
    tmpl.set('fwmark', Number(a1), n.loc);
    return [tmpl];
  }
  if (a0 === 'group') {
    const g = a1 === undefined ? undefined : ctx.vsGroups.get(a1);
    if (!g || a1 === undefined) {
      m.add(n.loc, 'error', `virtual_server group ${a1 ?? ''}: no virtual_server_group of that name; not imported`);
      return [];
    }
    const d = ctx.vsGroupDrafts.get(a1) ?? groupDraft(a1, g, ctx);
    ctx.vsGroupDrafts.set(a1, d);
    if (((d.get('members') as TomlValue[] | undefined) ?? []).length === 0) {
      m.add(n.loc, 'error', `virtual_server group ${a1}: virtual_server_group ${a1} has no entry keepalive-ts can serve; not imported`);
      return [];
    }
    tmpl.set('group', a1, n.loc);
    return [tmpl];
  }
  const addr = a0 === undefined ? undefined : canonicalAddress(a0);
  if (!addr) {
    m.add(n.loc, 'error', `virtual_server: "${a0 ?? ''}" is not an address, fwmark N or group NAME; not imported`);
    return [];
  }
  if (a1 === undefined) {
    m.add(n.loc, 'unsupported', `virtual_server ${a0} without a port (a persistent all-ports service) is not supported; virtual server not imported`);
    return [];
  }
  if (!/^\d+$/.test(a1) || Number(a1) < 1 || Number(a1) > 65535) {
    m.add(n.loc, 'error', `virtual_server: port "${a1}" is not 1..65535; not imported`);
    return [];
  }
  tmpl.set('address', addr.address, n.loc);
  tmpl.set('port', Number(a1), n.loc);
  return [tmpl];
}

/**
 * keepalived's virtual_server_group NAME { ADDR|RANGE PORT / fwmark N } -> [[virtual_server_group]]
 * with members "ADDR:PORT", "RANGE:PORT", "[V6]:PORT", "fwmark:N" (each checked as the config
 * loader will); an entry that cannot be a member is reported on its line and left out.
 */
function groupDraft(name: string, g: KNode, ctx: Ctx): Draft {
  const m = ctx.m;
  const d = new Draft(VIRTUAL_SERVER_GROUP_FIELDS, g.loc, `virtual_server_group ${name}`);
  d.set('name', name, g.loc);
  const members: string[] = [];
  let family: 4 | 6 | undefined;
  for (const e of g.block ?? []) {
    let text: string;
    if (e.keyword === 'fwmark') {
      const v6 = e.args[1] === 'inet6';
      text = `${v6 ? 'fwmark6' : 'fwmark'}:${e.args[0] ?? ''}`;
    } else {
      if (e.args[0] === undefined) {
        m.add(e.loc, 'unsupported', `${e.keyword}: an entry without a port (all ports) is not supported in virtual_server_group ${name}; use a firewall mark; entry not imported`);
        continue;
      }
      const v6 = canonicalAddress(e.keyword.split(/[-/]/)[0]!)?.family === 6;
      text = v6 ? `[${e.keyword}]:${e.args[0]}` : `${e.keyword}:${e.args[0]}`;
    }
    const r = parseGroupMember(cidrNetwork(text));
    if (!r.ok) {
      m.add(e.loc, 'unsupported', `${e.keyword}: ${r.error}; entry of virtual_server_group ${name} not imported`);
      continue;
    }
    family ??= r.value.family;
    if (r.value.family !== family) {
      m.add(e.loc, 'unsupported', `${e.keyword}: IPv${r.value.family} in a virtual_server_group whose first entry is IPv${family} (keepalived allows it for tunnelled real servers only); one family per group in keepalive-ts; entry not imported`);
      continue;
    }
    members.push(cidrNetwork(text));
  }
  d.set('members', members, g.loc);
  return d;
}

/** "10.0.0.9/29:80" -> "10.0.0.8/29:80": keepalived reads a network with host bits as its network. */
function cidrNetwork(member: string): string {
  const x = /^(\[?)([^/\]]+)\/(\d+)(\]?:.*)$/.exec(member);
  const net = x ? parseCidr(`${x[2]}/${x[3]}`) : null;
  return x && net ? `${x[1]}${networkText(net.address, net.family, net.prefix)}${x[4]}` : member;
}

/** lb_kind, real-server defaults pushed into checks, SNI. */
function finishVirtualServer(vs: VsDraft, ctx: Ctx): void {
  const m = ctx.m;
  const method = vs.method?.value ?? 'NAT';
  if (vs.method) {
    if (accepts(VIRTUAL_SERVER_FIELDS, 'lb_kind', method)) vs.set('lb_kind', method, vs.method.loc);
    else if (method === 'TUN') m.add(vs.method.loc, 'unsupported', 'lb_kind TUN: IP-in-IP tunnelling is not available (no ipip on this kernel); imported with the default lb_kind NAT (the real servers must route their replies back through the director; DR is the choice when they share its LAN)');
    else m.add(vs.method.loc, 'changed', `lb_kind ${method}: not available in this keepalive-ts; imported with the default lb_kind NAT (the real servers must route their replies back through the director)`);
  }
  for (const rs of vs.reals) {
    if (rs.method && rs.method.value !== method) {
      m.add(rs.method.loc, 'unsupported', `lvs_method ${rs.method.value} on one real server (the virtual server uses ${method}): one forwarding method per virtual server in keepalive-ts; the virtual server's is used`);
    }
    for (const c of rs.checks) {
      for (const [k, v] of rs.checkDefaults) {
        if (k === 'virtualhost') {
          if ((c.get('type') === 'HTTP_GET' || c.get('type') === 'SSL_GET') && !c.has('virtualhost')) c.set('virtualhost', v.value, v.loc);
          continue;
        }
        if (!c.has(k) && hasKey(c.fields, k)) c.set(k, v.value, v.loc);
      }
      if (c.get('__enable_sni') === true) {
        const vh = c.get('virtualhost') ?? vs.get('virtualhost');
        if (c.has('sni')) {
          // sni_name given: it wins.
        } else if (typeof vh === 'string') c.set('sni', vh, (c.entries.get('__enable_sni')?.loc ?? c.loc));
        else m.add((c.entries.get('__enable_sni')?.loc ?? c.loc), 'changed', 'enable_sni without a virtualhost: no SNI is sent');
        c.delete('__enable_sni');
      }
    }
  }
}
