/**
 * The config key audit: every key of the schema (src/config/schema.ts, through schemaRows) names
 * the test that fails if the key were ignored — the daemon would accept it and do nothing. Two
 * keys slipped through that way once (enable_script_security, script_user for some scripts); a
 * key added to the schema without an entry here fails this test.
 *
 * An entry is one or more proofs { file, test } (`test`: the test's title, or an unambiguous part
 * of it, as written in that file), a `section` (a table or array of tables whose keys are audited
 * one by one), or `untestable` with the reason. The files and titles are checked to exist, so a
 * renamed test breaks the audit instead of leaving a dangling claim.
 */
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { schemaRows } from '../../src/config/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

interface Proof { file: string; test: string }
type Entry = Proof | Proof[] | { section: string } | { untestable: string };

// Test files, short.
const U = (f: string) => `test/unit/${f}.test.ts`;
const N = (f: string) => `test/netns/${f}.test.ts`;
const p = (file: string, title: string): Proof => ({ file, test: title });

const VRRP_W = U('vrrp-manager-wiring');
const LVS_W = U('lvs-manager-wiring');
const ADVERTS = p(VRRP_W, 'priority, advert_int, version, virtual_ipaddress and mcast_src_ip shape the adverts');
const PARAMS = p(VRRP_W, 'vrrpParams and expectation carry the election and receive keys');
const TIMING = p(VRRP_W, 'announcerTiming: garp_master_* per instance');
const NOTIFY = p(VRRP_W, 'notify_master / notify_backup / notify_fault / notify_stop / notify run');
const SCRIPT = p(VRRP_W, 'vrrp_script: script, user, interval, weight, fall and rise move the priority');
const GROUP = p(VRRP_W, 'vrrp_sync_group: group members follow each other; group notify and track_script');
const GROUP_TRACK = p(VRRP_W, 'vrrp_sync_group track_script: the script changes the priority of every member');
const SPEC = p(LVS_W, 'serviceSpec and poolParams carry every service key');
const VS_DEFAULTS = p(LVS_W, 'virtual_server defaults of the checks');
const SCRIPTS_NS = p(N('script-security'), 'every script kind runs as script_user');
const LIMITS = p(U('fdlimit'), 'limitsFromConfig: maxconn, reserved_fds and lvs_timeouts reach the data plane settings');
const SYNC_W = p(U('sync-wiring'), 'group, port, ttl, sync_id and interface shape the multicast sockets');
// Keys other helpers added (alerts, routes, VMAC, track_process, the data-plane contract, SMTP_CHECK):
// the tests those helpers wrote for them.
const MAIL = p(N('vrrp-smtp-alert'), 'smtp_alert: mails with keepalived subjects reach a real SMTP server on MASTER, BACKUP and stop');
const MAIL_RS = p(N('vrrp-smtp-alert'), 'smtp_alert on real and virtual servers: DOWN / UP mails');
const MAIL_RESOLVE = p(U('config-vrrp-parity'), 'smtp_alert resolves as keepalived');
const ROUTES = p(N('vrrp-routes'), 'virtual_routes / virtual_rules are in while MASTER only; static_* from start to stop');
const TRACK_PROCESS = p(N('vrrp-track-process'), 'track_process: the tracked process dies, priority drops by its weight');
const PROCESS_UNIT = (title: string) => p(U('vrrp-track-process'), title);
const BIRD_CONF = p(U('announce-bird-config'), 'defaults: one IPv4 peer with BFD 100 ms x 3');
const BIRD_CONF_KEYS = p(U('announce-bird-config'), 'every [bgp] key that reaches BIRD changes the text');
const BGP_ECMP = p(N('bgp-ecmp'), 'three directors announce while healthy');
const SERVICE_KEYS = p(U('config-valid'), 'service keys, matches and endpoints are made once at load (address, port set, fwmark)');
const VS_GROUP = [
  p(U('config-valid'), 'virtual_server_group: members canonical at load (ranges expanded)'),
  p(U('lvs-manager-group'), 'a group: one runner per real server, one evaluation, the same pool to every member'),
  p(N('lvs-group'), 'group, lb_kind DR: two VIPs of one group forward to the same real servers'),
  p(N('lvs-group'), 'group, lb_kind NAT: two ports of one VIP share one pool and its health'),
];

export const AUDIT: Record<string, Entry> = {
  global: { section: 'its keys below' },
  'global.router_id': p(N('daemon-lock'), 'control_socket and pid_file from the config are used'),
  'global.control_socket': p(N('daemon-lock'), 'control_socket and pid_file from the config are used'),
  'global.metrics_listen': p(N('prometheus'), 'a real Prometheus server scrapes both directors'),
  'global.pid_file': p(N('daemon-lock'), 'control_socket and pid_file from the config are used'),
  'global.vrrp_mcast_group4': p(VRRP_W, 'unicast_peer and unicast_src_ip: adverts go to each peer'),
  'global.vrrp_mcast_group6': p(VRRP_W, 'vrrp_mcast_group6 is the group of IPv6 instances'),
  'global.vrrp_version': p(U('config-valid'), 'inherited defaults come from global and the enclosing servers'),
  'global.vrrp_garp_master_delay': TIMING,
  'global.vrrp_garp_master_repeat': TIMING,
  'global.vrrp_garp_master_refresh': TIMING,
  'global.vrrp_garp_master_refresh_repeat': TIMING,
  'global.vrrp_garp_interval': [TIMING, p(VRRP_W, 'the announcer of a reloaded instance gets the new [global] pacing'), p(U('net-announcer'), 'vrrp_garp_interval / vrrp_gna_interval pace each family')],
  'global.vrrp_gna_interval': [TIMING, p(U('net-announcer'), 'vrrp_garp_interval / vrrp_gna_interval pace each family')],
  'global.vrrp_startup_delay': p(VRRP_W, 'vrrp_startup_delay holds the instances in INIT'),
  'global.v3_checksum_as_v2': p(VRRP_W, 'v3_checksum_as_v2 (instance and global)'),
  'global.vrrp_check_unicast_src': PARAMS,
  'global.vrrp_rt_priority': p(N('vrrp-native-sender'), 'global.vrrp_rt_priority runs the sender thread (only it) SCHED_RR'),
  'global.vrrp_rlimit_rttime': p(N('vrrp-native-sender'), 'global.vrrp_rt_priority runs the sender thread (only it) SCHED_RR'),
  'global.drain_timeout': [p(U('config-valid'), 'inherited defaults come from global and the enclosing servers'), SPEC],
  'global.enable_script_security': p(N('script-security'), 'enable_script_security refuses world-writable scripts'),
  'global.maxconn': [LIMITS, p(U('lvs-dataplane-limits'), 'at maxConns the listener pauses')],
  'global.proxy_workers': [p(U('lvs-dataplane-workers'), 'proxy_workers: 0 means one per CPU; the configured count reaches the proxy through the DataplaneSet')],
  'global.reserved_fds': [LIMITS, p(N('fd-exhaustion'), '1,200 idle connections under ulimit -n 1024')],
  'global.lvs_timeouts': { section: 'tcp, tcpfin, udp' },
  'global.lvs_timeouts.tcp': [LIMITS, p(U('lvs-dataplane-limits'), 'lvs_timeouts tcp: an idle connection is closed')],
  'global.lvs_timeouts.tcpfin': [LIMITS, p(U('lvs-dataplane-limits'), 'lvs_timeouts tcpfin: a half-closed connection')],
  'global.lvs_timeouts.udp': [LIMITS, p(U('lvs-dataplane-limits'), 'lvs_timeouts udp: an idle flow ends')],
  'global.script_user': SCRIPTS_NS,
  'global.notification_email': MAIL,
  'global.notification_email_from': MAIL,
  'global.smtp_server': MAIL,
  'global.smtp_helo_name': MAIL,
  'global.smtp_connect_timeout': p(N('vrrp-smtp-alert'), 'smtp_alert: an SMTP server that never answers delays no VRRP transition'),
  'global.smtp_alert': [MAIL, MAIL_RESOLVE],
  'global.smtp_alert_vrrp': MAIL_RESOLVE,
  'global.smtp_alert_checker': MAIL_RESOLVE,
  'global.no_email_faults': p(U('alert-mail'), 'no_email_faults: no mail for FAULT'),
  'global.static_ipaddress': ROUTES,
  'global.static_routes': ROUTES,
  'global.static_rules': ROUTES,

  vrrp_track_process: { section: '[[vrrp_track_process]]' },
  'vrrp_track_process[].name': TRACK_PROCESS,
  'vrrp_track_process[].process': [TRACK_PROCESS, PROCESS_UNIT('a bare name matches /proc/PID/comm exactly')],
  'vrrp_track_process[].param_match': PROCESS_UNIT('param_match partial / initial'),
  'vrrp_track_process[].weight': [TRACK_PROCESS, PROCESS_UNIT('a tracked process feeds the priority like a script')],
  'vrrp_track_process[].reverse': PROCESS_UNIT('a tracked process feeds the priority like a script: weight on failure, reverse'),
  'vrrp_track_process[].quorum': PROCESS_UNIT('quorum and quorum_max'),
  'vrrp_track_process[].quorum_max': PROCESS_UNIT('quorum and quorum_max'),
  'vrrp_track_process[].delay': PROCESS_UNIT('transitions: first result at once, later ones after fork_delay / terminate_delay'),
  'vrrp_track_process[].fork_delay': [PROCESS_UNIT('transitions: first result at once, later ones after fork_delay / terminate_delay'), p(N('vrrp-track-process'), 'track_process fork_delay holds a gained quorum back')],
  'vrrp_track_process[].terminate_delay': [PROCESS_UNIT('transitions: first result at once, later ones after fork_delay / terminate_delay'), p(N('vrrp-track-process'), 'terminate_delay a lost one')],
  'vrrp_track_process[].full_command': PROCESS_UNIT('full_command compares argv[0]'),

  vrrp_script: { section: '[[vrrp_script]]' },
  'vrrp_script[].name': SCRIPT,
  'vrrp_script[].script': SCRIPT,
  'vrrp_script[].interval': SCRIPT,
  'vrrp_script[].timeout': p(VRRP_W, 'vrrp_script: init_fail starts failed; timeout is passed to the run'),
  'vrrp_script[].weight': SCRIPT,
  'vrrp_script[].rise': SCRIPT,
  'vrrp_script[].fall': SCRIPT,
  'vrrp_script[].user': SCRIPT,
  'vrrp_script[].init_fail': p(VRRP_W, 'vrrp_script: init_fail starts failed; timeout is passed to the run'),

  vrrp_instance: { section: '[[vrrp_instance]]' },
  'vrrp_instance[].name': [NOTIFY, GROUP],
  'vrrp_instance[].state': PARAMS,
  'vrrp_instance[].interface': [p(VRRP_W, 'track_interface and dont_track_primary'), p(N('vrrp-pair'), 'v3 IPv4 pair elects one master')],
  'vrrp_instance[].virtual_router_id': ADVERTS,
  'vrrp_instance[].priority': [ADVERTS, p(N('vrrp-pair'), 'v3 IPv4 pair elects one master')],
  'vrrp_instance[].advert_int': ADVERTS,
  'vrrp_instance[].version': [ADVERTS, p(N('vrrp-pair'), 'v2 PASS pair elects one master')],
  'vrrp_instance[].virtual_ipaddress': [ADVERTS, p(N('vrrp-pair'), 'v3 IPv6 pair elects one master')],
  'vrrp_instance[].virtual_ipaddress_excluded': p(VRRP_W, 'virtual_ipaddress_excluded goes on the interface'),
  'vrrp_instance[].authentication': p(VRRP_W, 'authentication (v2 PASS) is carried in the adverts'),
  'vrrp_instance[].authentication.type': p(VRRP_W, 'authentication (v2 PASS) is carried in the adverts'),
  'vrrp_instance[].authentication.password': [p(VRRP_W, 'authentication (v2 PASS) is carried in the adverts'), p(N('vrrp-hostile'), 'hostile VRRP traffic moves no state')],
  'vrrp_instance[].nopreempt': [PARAMS, p(N('vrrp-pair'), 'nopreempt: a returning higher-priority director stays BACKUP')],
  'vrrp_instance[].preempt_delay': PARAMS,
  'vrrp_instance[].unicast_src_ip': p(VRRP_W, 'unicast_peer and unicast_src_ip: adverts go to each peer'),
  'vrrp_instance[].unicast_peer': [p(VRRP_W, 'unicast_peer and unicast_src_ip: adverts go to each peer'), p(N('vrrp-unicast-source'), 'unicast pair with check_unicast_src')],
  'vrrp_instance[].unicast_peer[].address': p(N('vrrp-unicast-source'), 'min_ttl/max_ttl bound the TTL of its adverts'),
  'vrrp_instance[].unicast_peer[].min_ttl': [PARAMS, p(N('vrrp-unicast-source'), 'min_ttl/max_ttl bound the TTL of its adverts')],
  'vrrp_instance[].unicast_peer[].max_ttl': PARAMS,
  'vrrp_instance[].check_unicast_src': [PARAMS, p(N('vrrp-unicast-source'), 'a priority-254 advert from a host that is not a unicast_peer')],
  'vrrp_instance[].mcast_src_ip': ADVERTS,
  'vrrp_instance[].track_interface': p(VRRP_W, 'track_interface and dont_track_primary'),
  'vrrp_instance[].track_interface[].name': p(VRRP_W, 'track_interface and dont_track_primary'),
  'vrrp_instance[].track_interface[].weight': p(VRRP_W, 'track_interface with a weight lowers the priority instead of FAULT'),
  'vrrp_instance[].track_script': SCRIPT,
  'vrrp_instance[].track_script[].name': SCRIPT,
  'vrrp_instance[].track_script[].weight': p(VRRP_W, 'vrrp_script: init_fail starts failed; timeout is passed to the run'),
  'vrrp_instance[].garp_master_delay': [TIMING, p(N('vrrp-garp'), 'IPv4: a silent client learns the new master')],
  'vrrp_instance[].garp_master_repeat': [TIMING, p(N('vrrp-garp'), 'IPv4: a silent client learns the new master')],
  'vrrp_instance[].garp_master_refresh': TIMING,
  'vrrp_instance[].garp_master_refresh_repeat': TIMING,
  'vrrp_instance[].lower_prio_no_advert': PARAMS,
  'vrrp_instance[].higher_prio_send_advert': PARAMS,
  'vrrp_instance[].accept': [p(N('vrrp-accept'), 'the MASTER ${accept ? '), p(VRRP_W, 'accept = true (default) or the address owner: no accept filter')],
  'vrrp_instance[].skip_check_adv_addr': PARAMS,
  'vrrp_instance[].v3_checksum_as_v2': p(VRRP_W, 'v3_checksum_as_v2 (instance and global)'),
  'vrrp_instance[].dont_track_primary': p(VRRP_W, 'track_interface and dont_track_primary'),
  'vrrp_instance[].notify_master': [NOTIFY, SCRIPTS_NS],
  'vrrp_instance[].notify_backup': NOTIFY,
  'vrrp_instance[].notify_fault': NOTIFY,
  'vrrp_instance[].notify_stop': NOTIFY,
  'vrrp_instance[].notify': [NOTIFY, p(N('vrrp-tracking'), 'notify scripts get keepalived arguments')],
  'vrrp_instance[].use_vmac': p(N('vrrp-vmac'), 'use_vmac interoperates with keepalived use_vmac'),
  'vrrp_instance[].vmac_xmit_base': p(N('vrrp-vmac'), 'use_vmac with vmac_xmit_base interoperates'),
  'vrrp_instance[].virtual_routes': ROUTES,
  'vrrp_instance[].virtual_rules': ROUTES,
  'vrrp_instance[].track_process': TRACK_PROCESS,
  'vrrp_instance[].track_process[].name': TRACK_PROCESS,
  'vrrp_instance[].track_process[].weight': TRACK_PROCESS,
  'vrrp_instance[].smtp_alert': [MAIL, MAIL_RESOLVE],

  vrrp_sync_group: { section: '[[vrrp_sync_group]]' },
  'vrrp_sync_group[].name': GROUP,
  'vrrp_sync_group[].group': [GROUP, p(N('vrrp-tracking'), 'vrrp_sync_group: one member in FAULT takes the whole group')],
  'vrrp_sync_group[].notify_master': GROUP,
  'vrrp_sync_group[].notify_backup': GROUP,
  'vrrp_sync_group[].notify_fault': GROUP,
  'vrrp_sync_group[].notify_stop': GROUP,
  'vrrp_sync_group[].notify': GROUP,
  'vrrp_sync_group[].track_script': GROUP_TRACK,
  'vrrp_sync_group[].track_script[].name': GROUP_TRACK,
  'vrrp_sync_group[].track_script[].weight': GROUP_TRACK,
  'vrrp_sync_group[].smtp_alert': MAIL_RESOLVE,

  virtual_server_group: { section: '[[virtual_server_group]]' },
  'virtual_server_group[].name': VS_GROUP,
  'virtual_server_group[].members': [...VS_GROUP, p(N('lvs-group'), 'a reload adds and removes a member without restarting the checks')],
  virtual_server: { section: '[[virtual_server]]' },
  'virtual_server[].group': VS_GROUP,
  'virtual_server[].address': [SPEC, p(N('lvs-service'), 'rr splits evenly through the VIP')],
  'virtual_server[].port': p(N('lvs-service'), 'rr splits evenly through the VIP'),
  'virtual_server[].protocol': [SPEC, p(N('sync-failover'), 'persistent clients and a UDP flow keep their real server')],
  'virtual_server[].lb_algo': [SPEC, p(N('lvs-service'), 'wrr follows weights 1:3')],
  'virtual_server[].lb_kind': [p(U('config-valid'), 'lb_kind defaults to NAT (keepalived); the data-plane spec carries what the config says'), p(U('dataplane-set'), 'the built-in registration: the proxy forwards PROXY, nftables DR, NAT and FULLNAT'), p(N('lvs-kernel'), 'daemon, lb_kind DR: MASTER forwards in the kernel'), p(N('lvs-kernel'), 'daemon, lb_kind NAT: the classic LVS-NAT pair')],
  'virtual_server[].ports': SERVICE_KEYS,
  'virtual_server[].fwmark': SERVICE_KEYS,
  'virtual_server[].ip_family': SERVICE_KEYS,
  'virtual_server[].sched_flags': [p(U('config-valid'), 'lb_kind defaults to NAT (keepalived); the data-plane spec carries what the config says'), p(U('config-diff'), 'lb_kind and scheduler flags are settings of a kept service')],
  'virtual_server[].mh_table_size': p(U('lvs-maglev'), "the proxy\\'s mh scheduler uses the service seed and table size"),
  'virtual_server[].hash_seed': p(U('lvs-maglev'), "the proxy\\'s mh scheduler uses the service seed and table size"),
  'virtual_server[].smtp_alert': MAIL_RS,
  'virtual_server[].persistence_timeout': [SPEC, p(N('sync-failover'), 'persistent clients and a UDP flow keep their real server')],
  'virtual_server[].persistence_granularity': [SPEC, p(U('lvs-persistence'), 'granularity groups a client network onto one server')],
  'virtual_server[].delay_loop': VS_DEFAULTS,
  'virtual_server[].quorum': [SPEC, p(N('lvs-service'), 'quorum 2 with a sorry server')],
  'virtual_server[].hysteresis': [SPEC, p(U('lvs-pool'), 'quorum with hysteresis')],
  'virtual_server[].quorum_up': p(LVS_W, 'quorum_up / quorum_down / notify_up / notify_down run through the script runner'),
  'virtual_server[].quorum_down': p(LVS_W, 'quorum_up / quorum_down / notify_up / notify_down run through the script runner'),
  'virtual_server[].alpha': [SPEC, p(U('lvs-pool'), 'alpha: servers start down until their first successful check')],
  'virtual_server[].omega': [SPEC, p(U('lvs-pool'), 'stopPool: with omega')],
  'virtual_server[].inhibit_on_failure': p(U('config-valid'), 'inherited defaults come from global and the enclosing servers'),
  'virtual_server[].sorry_server': [SPEC, p(N('lvs-service'), 'quorum 2 with a sorry server')],
  'virtual_server[].sorry_server.address': SPEC,
  'virtual_server[].sorry_server.port': SPEC,
  'virtual_server[].sorry_server_inhibit': [SPEC, p(U('lvs-pool'), 'sorry_server_inhibit keeps the sorry server at weight 0')],
  'virtual_server[].virtualhost': VS_DEFAULTS,
  'virtual_server[].ha_suspend': p(LVS_W, 'ha_suspend: checks run only while this director holds the virtual address'),
  'virtual_server[].ops': [SPEC, p(U('lvs-dataplane-udp'), 'UDP one-packet scheduling')],
  'virtual_server[].retry': VS_DEFAULTS,
  'virtual_server[].delay_before_retry': VS_DEFAULTS,
  'virtual_server[].connect_timeout': [VS_DEFAULTS, SPEC],
  'virtual_server[].warmup': VS_DEFAULTS,
  'virtual_server[].maxconn_per_source': [SPEC, p(U('lvs-dataplane-limits'), 'maxConnsPerSource: one address is capped')],
  'virtual_server[].slow_start': [p(U('lvs-manager-override'), 'slow start: a recovered server ramps on a timer of its own; an un-drained one too; none at start-up'), p(U('lvs-pool'), 'slow start: a recovered server ramps from 1 to its weight over slowStartMs, the others scaled alike')],
  'virtual_server[].depool_threshold': [SPEC, p(U('lvs-pool'), 'depool threshold: failing servers beyond the threshold stay pooled')],
  'virtual_server[].proxy_protocol': [SPEC, p(U('lvs-dataplane'), 'PROXY protocol v1 and v2 headers reach the real server')],
  'virtual_server[].drain_timeout': [SPEC, p(N('graceful-stop'), 'a second SIGTERM during the graceful stop shortens the drain')],
  'virtual_server[].announce': [
    p(N('bgp-ecmp'), 'three directors announce while healthy'),
    p(N('bgp-ecmp'), 'announce = "master": only the VRRP MASTER announces'),
    p(N('bgp-reload'), 'reload adds and removes a peer and announcements'),
    p(U('config-bgp'), 'announce defaults'),
  ],
  'virtual_server[].real_server': { section: '[[virtual_server.real_server]]' },
  'virtual_server[].real_server[].address': p(N('lvs-service'), 'rr splits evenly through the VIP'),
  'virtual_server[].real_server[].port': p(N('lvs-service'), 'rr splits evenly through the VIP'),
  'virtual_server[].real_server[].weight': p(N('lvs-service'), 'wrr follows weights 1:3'),
  'virtual_server[].real_server[].inhibit_on_failure': p(N('lvs-service'), 'inhibit_on_failure keeps a dead server listed at weight 0'),
  'virtual_server[].real_server[].notify_up': [p(LVS_W, 'quorum_up / quorum_down / notify_up / notify_down run'), SCRIPTS_NS],
  'virtual_server[].real_server[].notify_down': [p(LVS_W, 'quorum_up / quorum_down / notify_up / notify_down run'), SCRIPTS_NS],
  'virtual_server[].real_server[].uthreshold': [p(LVS_W, 'uthreshold / lthreshold reach the data plane pool'), p(U('lvs-dataplane-limits'), 'uthreshold / lthreshold: a server at its upper threshold')],
  'virtual_server[].real_server[].lthreshold': [p(LVS_W, 'uthreshold / lthreshold reach the data plane pool'), p(U('lvs-dataplane-limits'), 'uthreshold / lthreshold: a server at its upper threshold')],
  'virtual_server[].real_server[].check': p(N('lvs-service'), 'a killed real server leaves the pool'),
  'virtual_server[].real_server[].smtp_alert': MAIL_RS,
  'virtual_server[].real_server[].check[].helo_name': p(U('lvs-check-smtp'), 'a well-behaved server passes and sees HELO helo_name then QUIT'),
  'virtual_server[].real_server[].check[].type': p(U('lvs-health'), 'default factory: a real TCP_CHECK brings the server up'),
  'virtual_server[].real_server[].check[].connect_timeout': p(U('lvs-check-tcp'), 'a connect that never completes fails after connect_timeout'),
  'virtual_server[].real_server[].check[].retry': p(U('lvs-health'), 'retry: exactly `retry` retries spaced by delay_before_retry'),
  'virtual_server[].real_server[].check[].delay_before_retry': p(U('lvs-health'), 'retry: exactly `retry` retries spaced by delay_before_retry'),
  'virtual_server[].real_server[].check[].delay_loop': p(U('lvs-health'), 'then every delay_loop'),
  'virtual_server[].real_server[].check[].warmup': p(U('lvs-health'), 'warmup: the first attempt waits random() x warmup'),
  'virtual_server[].real_server[].check[].connect_ip': [p(U('lvs-check-tcp'), 'connects to a listening IPv4 port'), p(U('config-valid'), 'inherited defaults come from global')],
  'virtual_server[].real_server[].check[].connect_port': [p(U('lvs-check-tcp'), 'connects to a listening IPv4 port'), p(U('config-valid'), 'inherited defaults come from global')],
  'virtual_server[].real_server[].check[].bind_to': p(U('lvs-check-tcp'), 'bind_to sets the source address'),
  'virtual_server[].real_server[].check[].path': p(U('lvs-check-http'), 'HTTP_GET: 200 on / is ok; the request carries the path'),
  'virtual_server[].real_server[].check[].status_code': p(U('lvs-check-http'), 'HTTP_GET: a status not in status_code fails'),
  'virtual_server[].real_server[].check[].digest': p(U('lvs-check-http'), 'HTTP_GET: digest is the MD5 of the body'),
  'virtual_server[].real_server[].check[].regex': p(U('lvs-check-http'), 'HTTP_GET: regex must match the body'),
  'virtual_server[].real_server[].check[].virtualhost': p(U('lvs-check-http'), 'HTTP_GET: virtualhost is the Host header'),
  'virtual_server[].real_server[].check[].sni': p(U('lvs-check-http'), 'SSL_GET: TLS with SNI = sni'),
  'virtual_server[].real_server[].check[].verify': p(U('lvs-check-http'), 'SSL_GET: verify = true rejects the self-signed certificate'),
  'virtual_server[].real_server[].check[].misc_path': [p(U('lvs-check-misc'), 'misc_path is split keepalived-style'), SCRIPTS_NS],
  'virtual_server[].real_server[].check[].misc_timeout': p(U('lvs-check-misc'), 'a script running past misc_timeout is killed and fails'),
  'virtual_server[].real_server[].check[].misc_dynamic': p(U('lvs-check-misc'), 'misc_dynamic: 0 ok with weight unchanged'),
  'virtual_server[].real_server[].check[].user': p(U('lvs-check-misc'), 'user: the command runs as that user'),
  'virtual_server[].real_server[].check[].payload': p(U('lvs-check-udp'), 'require_reply: an echo server answers -> ok; the payload is sent as text'),
  'virtual_server[].real_server[].check[].require_reply': p(U('lvs-check-udp'), 'without require_reply: a silent open port is ok'),
  'virtual_server[].real_server[].check[].query_type': p(U('lvs-check-dns'), 'NOERROR with an answer is ok; the query is RD, class IN, of the configured type'),
  'virtual_server[].real_server[].check[].name': p(U('lvs-check-dns'), 'NOERROR with an answer is ok; the query is RD, class IN, of the configured type'),
  'virtual_server[].real_server[].check[].file': p(U('lvs-check-file'), 'weight 0: 0 is ok, non-zero fails, a missing file counts as 0'),
  'virtual_server[].real_server[].check[].weight': p(U('lvs-check-file'), 'weight != 0: ok with weightOffset = value x weight'),

  bgp: { section: '[bgp]' },
  'bgp.local_as': [BIRD_CONF, BGP_ECMP],
  'bgp.router_id': BIRD_CONF_KEYS,
  'bgp.med': p(N('bgp-bird'), 'MED and AS-path prepend make a backup director'),
  'bgp.as_path_prepend': p(N('bgp-bird'), 'MED and AS-path prepend make a backup director'),
  'bgp.bfd_interval': [BIRD_CONF_KEYS, p(N('bgp-failure'), 'BFD makes the router drop its next hop within 1 s')],
  'bgp.bfd_multiplier': [BIRD_CONF_KEYS, p(N('bgp-failure'), 'BFD makes the router drop its next hop within 1 s')],
  'bgp.track_interface': p(N('bgp-failure'), 'a tracked link that goes down withdraws'),
  'bgp.kernel_table': [BIRD_CONF_KEYS, p(N('bgp-bird'), 'MED and AS-path prepend make a backup director')],
  'bgp.kernel_protocol': [BIRD_CONF_KEYS, p(N('bgp-bird'), 'MED and AS-path prepend make a backup director')],
  'bgp.runtime_dir': p(N('bgp-bird'), 'BIRD killed alone is restarted and re-announces'),
  'bgp.peer': { section: '[[bgp.peer]]' },
  'bgp.peer[].address': BGP_ECMP,
  'bgp.peer[].remote_as': [BIRD_CONF, BGP_ECMP],
  'bgp.peer[].bfd': [p(U('announce-bird-config'), 'per peer: bfd off, hold time, password'), p(N('bgp-failure'), 'BFD makes the router drop its next hop within 1 s')],
  'bgp.peer[].hold_time': [p(U('announce-bird-config'), 'per peer: bfd off, hold time, password'), p(U('config-bgp'), 'reload: peers added and removed by address')],
  'bgp.peer[].password': [p(U('announce-bird-config'), 'per peer: bfd off, hold time, password'), p(N('bgp-bird'), 'check runs the generated config through the real bird')],

  sync: { section: '[sync]' },
  'sync.interface': SYNC_W,
  'sync.instance': p(N('sync-failover'), 'persistent clients and a UDP flow keep their real server when the master crashes'),
  'sync.group': SYNC_W,
  'sync.port': SYNC_W,
  'sync.ttl': SYNC_W,
  'sync.sync_id': [SYNC_W, p(U('sync-wiring'), 'unicast_peer replaces the group; sync_id defaults to the instance VRID')],
  'sync.auth_key': [p(U('sync-auth'), 'auth_key is used as UTF-8 bytes'), p(U('sync-auth'), 'a key shorter than 16 bytes is refused')],
  'sync.auth_key_file': [p(U('sync-auth'), 'auth_key_file content is trimmed'), p(U('cli'), 'check reports sync key problems')],
  'sync.unicast_peer': p(U('sync-wiring'), 'unicast_peer replaces the group'),
  'sync.conntrackd': [p(N('hitless-nat'), 'NAT with conntrackd: connections and persistent clients survive crash'), p(U('hitless-sync'), '[sync.conntrackd]: destination defaults to the one unicast peer')],
  'sync.conntrackd.destination_address': [p(U('hitless-sync'), '[sync.conntrackd]: destination defaults to the one unicast peer'), p(U('hitless-sync'), '[sync.conntrackd] keys reach conntrackd.conf and the guard')],
  'sync.conntrackd.address': p(U('hitless-sync'), '[sync.conntrackd] keys reach conntrackd.conf and the guard'),
  'sync.conntrackd.port': p(U('hitless-sync'), '[sync.conntrackd] keys reach conntrackd.conf and the guard'),
  'sync.conntrackd.protocols': p(U('hitless-sync'), '[sync.conntrackd] keys reach conntrackd.conf and the guard'),
  'sync.conntrackd.binary': p(U('hitless-sync'), '[sync.conntrackd] binary: a missing executable is refused'),
};

const proofs = (e: Entry): Proof[] => (Array.isArray(e) ? e : 'file' in e ? [e] : []);

test('every schema key has an entry in the audit, and every entry is a schema key', (t) => {
  const keys = schemaRows().map((r) => r.path);
  const missing = keys.filter((k) => !Object.hasOwn(AUDIT, k));
  const stale = Object.keys(AUDIT).filter((k) => !keys.includes(k));
  t.deepEqual(missing, [], 'schema keys without a test proving their effect (add one, and an entry here)');
  t.deepEqual(stale, [], 'audit entries for keys the schema no longer has');
});

test('every proof names an existing test, and only sections and listed reasons have none', (t) => {
  for (const [key, entry] of Object.entries(AUDIT)) {
    const list = proofs(entry);
    if (list.length === 0) {
      t.true('section' in entry || ('untestable' in entry && entry.untestable.length > 20), `${key}: a section or an untestable key with its reason`);
      continue;
    }
    for (const { file, test: title } of list) {
      const path = join(ROOT, file);
      t.true(existsSync(path), `${key}: ${file} exists`);
      if (existsSync(path)) t.true(readFileSync(path, 'utf8').includes(title), `${key}: ${file} has a test "${title}"`);
    }
  }
});

test('the untestable keys are few and say why', (t) => {
  const untestable = Object.entries(AUDIT).filter(([, e]) => 'untestable' in e);
  t.log(untestable.map(([k, e]) => `${k}: ${(e as { untestable: string }).untestable}`).join('\n'));
  t.true(untestable.length <= 3);
});
