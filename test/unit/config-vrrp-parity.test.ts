// Config keys for keepalived's use_vmac, virtual_routes/rules, static_*, track_process and alert
// mails: defaults and normalized forms, every invalid case reported at its file:line, reload plans.
import test from 'ava';
import { hostname, userInfo } from 'node:os';
import { parseConfig, planReload } from '../../src/config/index.js';
import { assertInvalidAt, instance, type InvalidCase } from '../fixtures/config/helpers.js';

const VS = `[[virtual_server]]
address = "10.0.0.50"
port = 80
[[virtual_server.real_server]]
address = "10.0.0.21"
`;
const PROCESS = (extra = ''): string => `[[vrrp_track_process]]
name = "haproxy"
process = "haproxy"
${extra}
`;

test('defaults: no VMAC, no routes, no tracked process, no mail; keepalived smtp_alert defaults (real servers on, the rest off)', (t) => {
  const cfg = parseConfig(instance() + VS, 'd.toml');
  const vi = cfg.vrrp_instance[0]!;
  t.like(vi, { use_vmac: false, vmac_xmit_base: false, vmac_ifname: null, virtual_routes: [], virtual_rules: [], track_process: [], smtp_alert: false });
  t.deepEqual(vi.virtual_routes_parsed, []);
  t.like(cfg.global, {
    notification_email: [],
    smtp_connect_timeout: 30,
    smtp_helo_name: hostname(),
    no_email_faults: false,
    smtp: null,
    static_ipaddress: [],
    static_routes_parsed: [],
  });
  t.is(cfg.global.notification_email_from, `${userInfo().username}@${hostname()}`);
  t.is(cfg.global.smtp_alert, undefined);
  t.false(cfg.virtual_server[0]!.smtp_alert);
  t.true(cfg.virtual_server[0]!.real_server[0]!.smtp_alert, 'keepalived: a real server alerts unless told otherwise');
  t.deepEqual(cfg.vrrp_track_process, []);
});

test('smtp_alert resolves as keepalived: own value, then smtp_alert_vrrp / smtp_alert_checker, then smtp_alert', (t) => {
  const g = (lines: string) => `[global]\n${lines}\n`;
  const group = '[[vrrp_sync_group]]\nname = "G"\ngroup = ["VI_1"]\n';
  let cfg = parseConfig(g('smtp_alert = true') + instance() + group + VS, 'a.toml');
  t.true(cfg.vrrp_instance[0]!.smtp_alert);
  t.true(cfg.vrrp_sync_group[0]!.smtp_alert);
  t.true(cfg.virtual_server[0]!.smtp_alert);
  cfg = parseConfig(g('smtp_alert = true\nsmtp_alert_vrrp = false\nsmtp_alert_checker = false') + instance() + group + VS, 'b.toml');
  t.false(cfg.vrrp_instance[0]!.smtp_alert);
  t.false(cfg.vrrp_sync_group[0]!.smtp_alert);
  t.false(cfg.virtual_server[0]!.smtp_alert);
  t.false(cfg.virtual_server[0]!.real_server[0]!.smtp_alert);
  cfg = parseConfig(g('smtp_alert = false') + instance('smtp_alert = true') + VS.replace('port = 80', 'port = 80\nsmtp_alert = true') + 'smtp_alert = false\n', 'c.toml');
  t.true(cfg.vrrp_instance[0]!.smtp_alert);
  t.true(cfg.virtual_server[0]!.smtp_alert);
  t.false(cfg.virtual_server[0]!.real_server[0]!.smtp_alert);
});

test('smtp_server: host, host:port, [v6]:port, DNS names; port 25 by default', (t) => {
  const parse = (s: string) => parseConfig(`[global]\nsmtp_server = "${s}"\n`, 's.toml').global.smtp;
  t.deepEqual(parse('10.0.0.25'), { host: '10.0.0.25', port: 25 });
  t.deepEqual(parse('10.0.0.25:2525'), { host: '10.0.0.25', port: 2525 });
  t.deepEqual(parse('[fd00::25]:587'), { host: 'fd00::25', port: 587 });
  t.deepEqual(parse('fd00::25'), { host: 'fd00::25', port: 25 });
  t.deepEqual(parse('mail.example.com'), { host: 'mail.example.com', port: 25 });
  t.deepEqual(parse('mail.example.com:26'), { host: 'mail.example.com', port: 26 });
});

test('use_vmac names: vrrp.VRID (IPv4), vrrp6.VRID (IPv6), or the given name', (t) => {
  const v6 = instance('version = 3\nuse_vmac = true', 'VI_6').replace('["10.0.0.50/24"]', '["fd00::50"]');
  const cfg = parseConfig(instance('use_vmac = true') + v6 + instance('use_vmac = "vm7"\nvmac_xmit_base = true', 'VI_7').replace('virtual_router_id = 51', 'virtual_router_id = 7'), 'v.toml');
  t.deepEqual(cfg.vrrp_instance.map((v) => v.vmac_ifname), ['vrrp.51', 'vrrp6.51', 'vm7']);
  t.true(cfg.vrrp_instance[2]!.vmac_xmit_base);
});

test('virtual_routes / virtual_rules / static_* parse into structured values', (t) => {
  const cfg = parseConfig(`[global]
static_ipaddress = ["192.168.1.1/24 dev eth0 scope link label eth0:1"]
static_routes = ["10.9.0.0/16 via 10.0.0.1 table 100 metric 5", "inet6 default via fd00::1 dev eth0"]
static_rules = ["from 192.168.1.0/24 table 100 preference 100"]
${instance('virtual_routes = ["src 10.0.0.50 to 10.1.0.0/24 dev eth1 scope link", "blackhole 10.2.0.0/16"]\nvirtual_rules = ["to 10.3.0.0/16 lookup 7 priority 7", "fwmark 0x10/0xff table 8 preference 8"]')}`, 'r.toml');
  const vi = cfg.vrrp_instance[0]!;
  t.like(vi.virtual_routes_parsed[0], { family: 4, type: 'unicast', dst: { address: '10.1.0.0', prefix: 24 }, src: '10.0.0.50', dev: 'eth1', scope: 253, table: 254, protocol: 18, mode: 'prepend' });
  t.like(vi.virtual_routes_parsed[1], { type: 'blackhole', dst: { address: '10.2.0.0', prefix: 16 } });
  t.like(vi.virtual_rules_parsed[0], { to: { address: '10.3.0.0', prefix: 16 }, action: 'table', table: 7, preference: 7 });
  t.like(vi.virtual_rules_parsed[1], { fwmark: 16, fwmask: 255, table: 8 });
  t.like(cfg.global.static_ipaddress_parsed[0], { address: '192.168.1.1', prefix: 24, dev: 'eth0', scope: 253, label: 'eth0:1' });
  t.like(cfg.global.static_routes_parsed[0], { table: 100, metric: 5, via: '10.0.0.1' });
  t.like(cfg.global.static_routes_parsed[1], { family: 6, dst: { address: '::', prefix: 0 }, via: 'fd00::1' });
  t.like(cfg.global.static_rules_parsed[0], { from: { address: '192.168.1.0', prefix: 24 }, table: 100, preference: 100 });
});

test('vrrp_track_process: process name or [name, params...], weights flow to track_process, quorum_max 0 forces quorum 0', (t) => {
  const cfg = parseConfig(`${PROCESS('weight = -30\nfork_delay = 0.5')}[[vrrp_track_process]]
name = "worker"
process = ["/usr/bin/python3", "-m", "worker"]
param_match = "partial"
quorum = 2
quorum_max = 4
delay = 2
[[vrrp_track_process]]
name = "nothing"
process = "forbidden"
quorum_max = 0
${instance('track_process = ["haproxy", { name = "worker", weight = 10 }, "nothing"]')}`, 'p.toml');
  t.like(cfg.vrrp_track_process[0], { process: ['haproxy'], weight: -30, quorum: 1, fork_delay: 0.5, terminate_delay: 0, full_command: false });
  t.like(cfg.vrrp_track_process[1], { process: ['/usr/bin/python3', '-m', 'worker'], param_match: 'partial', quorum: 2, quorum_max: 4, fork_delay: 2, terminate_delay: 2 });
  t.like(cfg.vrrp_track_process[2], { quorum: 0, quorum_max: 0 });
  t.deepEqual(cfg.vrrp_instance[0]!.track_process, [{ name: 'haproxy', weight: -30 }, { name: 'worker', weight: 10 }, { name: 'nothing', weight: 0 }]);
});


const cases: InvalidCase[] = [
  { name: 'vmac_xmit_base without use_vmac', text: instance('vmac_xmit_base = true # <--'), path: 'vrrp_instance[0].vmac_xmit_base', message: /needs use_vmac/ },
  { name: 'VMAC name too long', text: instance('use_vmac = "a-very-long-vmac-name" # <--'), path: 'vrrp_instance[0].use_vmac', message: /1\.\.15 characters/ },
  { name: 'VMAC name with a slash', text: instance('use_vmac = "vm/1" # <--'), path: 'vrrp_instance[0].use_vmac', message: /must be true or an interface name/ },
  {
    name: 'two instances on one VMAC name',
    text: instance('use_vmac = "vm1"') + instance('use_vmac = "vm1" # <--', 'VI_2').replace('virtual_router_id = 51', 'virtual_router_id = 52'),
    path: 'vrrp_instance[1].use_vmac',
    message: /macvlan "vm1" is already used by vrrp_instance\[0\] "VI_1"/,
  },
  { name: 'VMAC named like an instance interface', text: instance('use_vmac = "eth0" # <--'), path: 'vrrp_instance[0].use_vmac', message: /is an instance interface/ },
  { name: 'route without a destination', text: instance('virtual_routes = ["via 10.0.0.1"] # <--'), path: 'vrrp_instance[0].virtual_routes[0]', message: /needs a destination .*in "via 10\.0\.0\.1"/ },
  { name: 'route word keepalive-ts refuses', text: instance('virtual_routes = ["10.1.0.0/16 via 10.0.0.1 mtu 1400"] # <--'), path: 'vrrp_instance[0].virtual_routes[0]', message: /"mtu" is not supported in routes/ },
  { name: 'route mixing families', text: instance('virtual_routes = ["10.1.0.0/16 via fd00::1"] # <--'), path: 'vrrp_instance[0].virtual_routes[0]', message: /IPv6 but the line is IPv4/ },
  { name: 'blackhole with a gateway', text: instance('virtual_routes = ["blackhole 10.1.0.0/16 via 10.0.0.1"] # <--'), path: 'vrrp_instance[0].virtual_routes[0]', message: /a blackhole route takes no via or dev/ },
  { name: 'unicast route with neither via nor dev', text: instance('virtual_routes = ["10.1.0.0/16 table 5"] # <--'), path: 'vrrp_instance[0].virtual_routes[0]', message: /needs "via ADDR" or "dev NAME"/ },
  {
    name: 'bad route on its own line of a multi-line array',
    text: instance('virtual_routes = [\n  "10.1.0.0/16 via 10.0.0.1",\n  "10.2.0.0/33 via 10.0.0.1", # <--\n]'),
    path: 'vrrp_instance[0].virtual_routes[1]',
    message: /bad destination "10\.2\.0\.0\/33"/,
  },
  { name: 'rule with two actions', text: instance('virtual_rules = ["from 10.0.0.0/8 table 5 blackhole"] # <--'), path: 'vrrp_instance[0].virtual_rules[0]', message: /one action/ },
  { name: 'rule with a bad fwmark', text: instance('virtual_rules = ["fwmark x table 5"] # <--'), path: 'vrrp_instance[0].virtual_rules[0]', message: /fwmark must be N or N\/MASK/ },
  { name: 'goto without preference', text: instance('virtual_rules = ["from 10.0.0.0/8 goto 100"] # <--'), path: 'vrrp_instance[0].virtual_rules[0]', message: /goto needs a preference lower than its target/ },
  { name: 'static address without dev', text: '[global]\nstatic_ipaddress = ["192.168.1.1/24"] # <--\n', path: 'global.static_ipaddress[0]', message: /needs "dev NAME"/ },
  { name: 'static route with an unknown word', text: '[global]\nstatic_routes = ["10.1.0.0/16 via 10.0.0.1 frobnicate"] # <--\n', path: 'global.static_routes[0]', message: /unexpected "frobnicate"/ },
  { name: 'static rule with an unsupported word', text: '[global]\nstatic_rules = ["from 10.0.0.0/8 uidrange 1-2 table 5"] # <--\n', path: 'global.static_rules[0]', message: /"uidrange" is not supported in rules/ },
  { name: 'unknown vrrp_track_process', text: PROCESS() + instance('track_process = ["haproxi"] # <--'), path: 'vrrp_instance[0].track_process[0]', message: /unknown vrrp_track_process "haproxi"; did you mean "haproxy"\?/ },
  { name: 'quorum_max below quorum', text: PROCESS('quorum = 3\nquorum_max = 2 # <--'), path: 'vrrp_track_process[0].quorum_max', message: /must be >= quorum \(3\), got 2/ },
  { name: 'process without a name', text: '[[vrrp_track_process]] # <--\nname = "x"\n', path: 'vrrp_track_process[0].process', message: /^is required$/ },
  { name: 'empty process list', text: '[[vrrp_track_process]]\nname = "x"\nprocess = [] # <--\n', path: 'vrrp_track_process[0].process', message: /must not be empty/ },
  { name: 'unknown param_match', text: PROCESS('param_match = "fuzzy" # <--'), path: 'vrrp_track_process[0].param_match', message: /must be one of exact, partial, initial/ },
  { name: 'duplicate vrrp_track_process', text: PROCESS() + PROCESS().replace('name = "haproxy"', 'name = "haproxy" # <--'), path: 'vrrp_track_process[1].name', message: /duplicate name "haproxy"/ },
  { name: 'bad notification_email', text: '[global]\nnotification_email = ["ops@example.com", "not an address"] # <--\n', path: 'global.notification_email[1]', message: /e-mail address/ },
  { name: 'bad smtp_server', text: '[global]\nsmtp_server = "mail server:25" # <--\n', path: 'global.smtp_server', message: /"host", "host:port" or "\[ipv6\]:port"/ },
  { name: 'smtp_connect_timeout 0', text: '[global]\nsmtp_connect_timeout = 0 # <--\n', path: 'global.smtp_connect_timeout', message: /must be >= 0\.001, got 0/ },
  { name: 'smtp_alert not a boolean', text: instance('smtp_alert = "yes" # <--'), path: 'vrrp_instance[0].smtp_alert', message: /must be a boolean, got string/ },
];

for (const c of cases) test(`invalid: ${c.name}`, (t) => assertInvalidAt(t, c));

test('reload plan: routes, rules, tracked processes and statics are diffed entry by entry; use_vmac restarts the instance', (t) => {
  const base = `[global]\nstatic_routes = ["10.9.0.0/16 via 10.0.0.1"]\n${PROCESS()}${instance('virtual_routes = ["10.1.0.0/16 via 10.0.0.1", "blackhole 10.2.0.0/16"]\ntrack_process = ["haproxy"]')}`;
  const a = parseConfig(base, 'a.toml');
  t.deepEqual(planReload(a, parseConfig(base, 'a.toml')).summary, []);
  const b = parseConfig(
    base
      .replace('"blackhole 10.2.0.0/16"', '"blackhole 10.3.0.0/16"')
      .replace('static_routes = ["10.9.0.0/16 via 10.0.0.1"]', 'static_routes = ["10.9.0.0/16 via 10.0.0.2"]\nsmtp_server = "10.0.0.25"')
      .replace('process = "haproxy"', 'process = "haproxy"\nweight = -20')
      .replace('track_process = ["haproxy"]', 'track_process = ["haproxy"]\nvirtual_rules = ["from 10.0.0.50 table 5 preference 5"]'),
    'b.toml',
  );
  const plan = planReload(a, b);
  const k = plan.vrrp.kept[0]!.changes;
  t.deepEqual(k.routesAdded.map((r) => r.text), ['blackhole 10.3.0.0/16']);
  t.deepEqual(k.routesRemoved.map((r) => r.text), ['blackhole 10.2.0.0/16']);
  t.deepEqual(k.rulesAdded.map((r) => r.text), ['from 10.0.0.50 table 5 preference 5']);
  t.deepEqual(k.trackProcess.reweighted, [{ name: 'haproxy', from: 0, to: -20 }]);
  t.false(k.restartInstance);
  t.deepEqual(plan.statics.routesAdded.map((r) => r.via), ['10.0.0.2']);
  t.deepEqual(plan.statics.routesRemoved.map((r) => r.via), ['10.0.0.1']);
  t.deepEqual(plan.trackProcesses.changed.map((c) => Object.keys(c.settings)), [['weight']]);
  t.deepEqual(plan.global.changed, ['smtp_server']);
  t.deepEqual(plan.global.needsRestart, []);
  t.true(plan.summary.includes('vrrp_instance VI_1: +virtual_routes blackhole 10.3.0.0/16'), plan.summary.join('\n'));
  t.true(plan.summary.includes('+static_routes 10.9.0.0/16 via 10.0.0.2'), plan.summary.join('\n'));

  const vmac = planReload(a, parseConfig(base.replace('track_process = ["haproxy"]', 'track_process = ["haproxy"]\nuse_vmac = true'), 'c.toml'));
  t.true(vmac.vrrp.kept[0]!.changes.restartInstance);
  t.regex(vmac.vrrp.kept[0]!.changes.restartReasons.join(), /use_vmac/);
});
