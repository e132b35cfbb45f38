import test from 'ava';
import { formatIssue, parseConfig } from '../../src/config/index.js';
import { assertInvalidAt, instance, issuesOf, type InvalidCase } from '../fixtures/config/helpers.js';


const VS = `[[virtual_server]]
address = "10.0.0.50"
port = 80
`;
const RS = (extra = '', address = '10.0.0.21'): string => `[[virtual_server.real_server]]
address = "${address}"
${extra}
`;
const SYNC = (extra: string): string => `[sync]
interface = "eth0"
instance = "VI_1"
${extra}
`;

const cases: InvalidCase[] = [
  { name: 'priority out of range', text: instance('priority = 300 # <--'), path: 'vrrp_instance[0].priority', message: /^must be 1\.\.255, got 300$/ },
  { name: 'VRID 0', text: instance().replace('virtual_router_id = 51', 'virtual_router_id = 0 # <--'), path: 'vrrp_instance[0].virtual_router_id', message: /must be 1\.\.255, got 0/ },
  {
    name: 'duplicate VRID on the same interface and family',
    text: instance() + instance('', 'VI_2').replace('virtual_router_id = 51', 'virtual_router_id = 51 # <--').replace('10.0.0.50/24', '10.0.0.60/24'),
    path: 'vrrp_instance[1].virtual_router_id',
    message: /VRID 51 is already used on eth0 \(IPv4\) by vrrp_instance\[0\] "VI_1"/,
  },
  { name: 'bad CIDR prefix', text: instance().replace('["10.0.0.50/24"]', '["10.0.0.50/33"] # <--'), path: 'vrrp_instance[0].virtual_ipaddress[0]', message: /must be an IPv4 or IPv6 address with an optional \/prefix, got "10\.0\.0\.50\/33"/ },
  {
    name: 'mixed-family VIPs, reported on the offending element line',
    text: instance('version = 3').replace('["10.0.0.50/24"]', '[\n  "10.0.0.50/24",\n  "fd00::50", # <--\n]'),
    path: 'vrrp_instance[0].virtual_ipaddress[1]',
    message: /IPv6 VIP in an instance whose first VIP is IPv4/,
  },
  { name: 'v2 advert_int 0.5', text: instance('version = 2\nadvert_int = 0.5 # <--'), path: 'vrrp_instance[0].advert_int', message: /whole number of seconds 1\.\.255 with version = 2, got 0\.5/ },
  { name: 'v3 advert_int 41', text: instance('version = 3\nadvert_int = 41 # <--'), path: 'vrrp_instance[0].advert_int', message: /0\.01\.\.40\.95 seconds .* version = 3, got 41/ },
  { name: 'v3 advert_int below centisecond resolution', text: instance('version = 3\nadvert_int = 0.015 # <--'), path: 'vrrp_instance[0].advert_int', message: /steps of 0\.01/ },
  { name: 'unknown lb_algo', text: `${VS}lb_algo = "wlcc" # <--\n`, path: 'virtual_server[0].lb_algo', message: /must be one of rr, wrr, .*; got "wlcc"; did you mean "wlc"\?/ },
  { name: 'lb_kind DR explains user-space NAT', text: `${VS}lb_kind = "DR" # <--\n`, path: 'virtual_server[0].lb_kind', message: /DR and TUN need kernel IPVS; keepalive-ts proxies in user space/ },
  { name: 'negative weight', text: VS + RS('weight = -1 # <--'), path: 'virtual_server[0].real_server[0].weight', message: /must be >= 0, got -1/ },
  { name: 'fractional weight', text: VS + RS('weight = 1.5 # <--'), path: 'virtual_server[0].real_server[0].weight', message: /must be a whole number, got 1\.5/ },
  { name: 'unknown key with did-you-mean', text: instance('prioirty = 100 # <--'), path: 'vrrp_instance[0].prioirty', message: /unknown key "prioirty"; did you mean "priority"\?/ },
  { name: 'unknown top-level section', text: '[globl] # <--\nrouter_id = "x"\n', path: 'globl', message: /unknown key "globl"; did you mean "global"\?/ },
  {
    name: 'unknown track_script',
    text: `[[vrrp_script]]\nname = "chk_web"\nscript = "true"\n${instance('track_script = ["chk_wbe"] # <--')}`,
    path: 'vrrp_instance[0].track_script[0]',
    message: /unknown vrrp_script "chk_wbe"; did you mean "chk_web"\?/,
  },
  { name: 'sync.instance unknown', text: instance() + SYNC('auth_key = "k"').replace('instance = "VI_1"', 'instance = "VI_9" # <--'), path: 'sync.instance', message: /unknown vrrp_instance "VI_9"/ },
  { name: 'IPv6 VIP with version 2', text: instance('version = 2').replace('["10.0.0.50/24"]', '["fd00::50/64"] # <--'), path: 'vrrp_instance[0].virtual_ipaddress[0]', message: /IPv6 VIPs need version = 3/ },
  { name: 'authentication with version 3', text: instance('version = 3\nauthentication = { type = "PASS", password = "x" } # <--'), path: 'vrrp_instance[0].authentication', message: /only valid with version = 2/ },
  { name: 'password too long', text: instance('authentication = { type = "PASS", password = "123456789" } # <--'), path: 'vrrp_instance[0].authentication.password', message: /must be 1\.\.8 characters long, got 9/ },
  { name: 'unsupported authentication type', text: instance('authentication = { type = "AH", password = "x" } # <--'), path: 'vrrp_instance[0].authentication.type', message: /must be one of PASS; got "AH"/ },
  { name: 'unknown check type (single table)', text: VS + RS('check = { type = "HTTP_GTE" } # <--'), path: 'virtual_server[0].real_server[0].check[0].type', message: /must be one of TCP_CHECK, .*; got "HTTP_GTE"; did you mean "HTTP_GET"\?/ },
  {
    name: 'unknown check type (array element on its own line)',
    text: VS + RS('check = [\n  { type = "TCP_CHECK" },\n  { type = "PING" }, # <--\n]'),
    path: 'virtual_server[0].real_server[0].check[1].type',
    message: /got "PING"/,
  },
  { name: 'key not valid for the check type', text: VS + RS('check = { type = "TCP_CHECK", path = "/" } # <--'), path: 'virtual_server[0].real_server[0].check[0].path', message: /key "path" is not valid for type = "TCP_CHECK"/ },
  { name: 'required check key missing', text: VS + RS('check = { type = "MISC_CHECK" } # <--'), path: 'virtual_server[0].real_server[0].check[0].misc_path', message: /^is required$/ },
  { name: 'status_code out of range inside an array', text: VS + RS('check = { type = "HTTP_GET", status_code = [200, 700] } # <--'), path: 'virtual_server[0].real_server[0].check[0].status_code[1]', message: /must be 100\.\.599, got 700/ },
  { name: 'wrong type', text: instance('priority = "high" # <--'), path: 'vrrp_instance[0].priority', message: /must be an integer 1\.\.255, got string/ },
  { name: 'table where an array of tables is expected', text: '[vrrp_instance] # <--\nname = "VI_1"\n', path: 'vrrp_instance', message: /must be an array of tables, got table/ },
  { name: 'syntax error carries its line', text: instance('priority = # <--'), path: '', message: /^syntax error: / },
  { name: 'redefined key is reported with its line', text: instance('priority = 100\npriority = 101 # <--'), path: '', message: /^syntax error: Cannot redefine existing key/ },
  {
    name: 'duplicate instance names',
    text: instance() + instance('', 'VI_1').replace('virtual_router_id = 51', 'virtual_router_id = 52').replace('name = "VI_1"\ninterface', 'name = "VI_1" # <--\ninterface'),
    path: 'vrrp_instance[1].name',
    message: /duplicate name "VI_1" \(also vrrp_instance\[0\]\)/,
  },
  { name: 'missing required key is reported at its table header', text: instance().replace('[[vrrp_instance]]', '[[vrrp_instance]] # <--').replace('interface = "eth0"\n', ''), path: 'vrrp_instance[0].interface', message: /^is required$/ },
  { name: 'sync without an auth key', text: instance() + SYNC('').replace('[sync]', '[sync] # <--'), path: 'sync', message: /one of auth_key or auth_key_file is required/ },
  { name: 'sync with both auth_key and auth_key_file', text: instance() + SYNC('auth_key = "k"\nauth_key_file = "/etc/k" # <--'), path: 'sync.auth_key_file', message: /mutually exclusive/ },
  { name: 'port 0', text: VS.replace('port = 80', 'port = 0 # <--'), path: 'virtual_server[0].port', message: /must be 1\.\.65535, got 0/ },
  { name: 'duplicate virtual server', text: `${VS}${VS.replace('[[virtual_server]]', '[[virtual_server]] # <--')}`, path: 'virtual_server[1]', message: /duplicate virtual server 10\.0\.0\.50:80\/TCP/ },
  { name: 'duplicate real server', text: VS + RS() + RS().replace(']]', ']] # <--'), path: 'virtual_server[0].real_server[1]', message: /duplicate real server 10\.0\.0\.21:80/ },
  { name: 'sync group member unknown', text: `${instance()}[[vrrp_sync_group]]\nname = "G"\ngroup = ["VI_1", "VI_X"] # <--\n`, path: 'vrrp_sync_group[0].group[1]', message: /unknown vrrp_instance "VI_X"/ },
  {
    name: 'instance in two sync groups',
    text: `${instance()}[[vrrp_sync_group]]\nname = "G1"\ngroup = ["VI_1"]\n[[vrrp_sync_group]]\nname = "G2"\ngroup = ["VI_1"] # <--\n`,
    path: 'vrrp_sync_group[1].group[0]',
    message: /"VI_1" is already in vrrp_sync_group "G1"/,
  },
  { name: 'non-contiguous persistence_granularity', text: `${VS}persistence_granularity = "255.0.255.0" # <--\n`, path: 'virtual_server[0].persistence_granularity', message: /contiguous IPv4 netmask/ },
  { name: 'depool_threshold above 1', text: `${VS}depool_threshold = 1.5 # <--\n`, path: 'virtual_server[0].depool_threshold', message: /must be 0\.\.1, got 1\.5/ },
  { name: 'bad metrics_listen', text: '[global]\nmetrics_listen = "localhost" # <--\n', path: 'global.metrics_listen', message: /host:port/ },
  { name: 'non-multicast VRRP group', text: '[global]\nvrrp_mcast_group4 = "10.0.0.1" # <--\n', path: 'global.vrrp_mcast_group4', message: /IPv4 multicast address/ },
  { name: 'ops needs UDP', text: `${VS}ops = true # <--\n`, path: 'virtual_server[0].ops', message: /needs protocol = "UDP"/ },
  { name: 'track_script weight out of range', text: `[[vrrp_script]]\nname = "c"\nscript = "true"\nweight = 254 # <--\n`, path: 'vrrp_script[0].weight', message: /must be -253\.\.253, got 254/ },
];

for (const c of cases) test(`invalid: ${c.name}`, (t) => assertInvalidAt(t, c));

test('the same VRID is fine on another interface or address family', (t) => {
  const v6 = instance('version = 3', 'VI_6').replace('["10.0.0.50/24"]', '["fd00::50"]');
  const otherIf = instance('', 'VI_E1').replace('"eth0"', '"eth1"');
  t.notThrows(() => parseConfig(instance() + v6 + otherIf, 'ok.toml'));
});

test('a config with several errors reports all of them, in file order, in the message too', (t) => {
  const text = `[global]
vrrp_version = 4
${instance('priority = 0\nadvert_int = "fast"\nnopreempt = "yes"')}
${VS}lb_algo = "fifo"
${RS('weight = -3\ncheck = { type = "TCP_CHECK", misc_path = "x" }')}
${SYNC('')}`;
  const issues = issuesOf(text, 'many.toml');
  t.deepEqual(issues.map((i) => i.path), [
    'global.vrrp_version',
    'vrrp_instance[0].priority',
    'vrrp_instance[0].advert_int',
    'vrrp_instance[0].nopreempt',
    'virtual_server[0].lb_algo',
    'virtual_server[0].real_server[0].weight',
    'virtual_server[0].real_server[0].check[0].misc_path',
    'sync',
  ]);
  const err = t.throws(() => parseConfig(text, 'many.toml'));
  t.is((err as { code?: string }).code, 'E_CONFIG_INVALID');
  t.is(err?.message, issues.map(formatIssue).join('\n'));
  t.regex(err!.message, /^many\.toml:2 global\.vrrp_version: must be 2\.\.3, got 4$/m);
});
