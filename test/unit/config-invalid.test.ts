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
const VSG = (members: string): string => `[[virtual_server_group]]
name = "web"
members = [
  ${members}
]
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
  { name: 'lb_kind TUN is refused with the reason', text: `${VS}lb_kind = "TUN" # <--\n`, path: 'virtual_server[0].lb_kind', message: /"TUN" is not supported: IP-in-IP needs the ipip tunnel driver, which this kernel does not have \(CONFIG_NET_IPIP is not set\); use "DR"/ },
  { name: 'lvs_method is lb_kind: its value is checked', text: `${VS}lvs_method = "MASQ" # <--\n`, path: 'virtual_server[0].lvs_method', message: /must be one of DR, NAT, FULLNAT, PROXY; got "MASQ"/ },
  { name: 'lb_algo and lvs_sched both set', text: `${VS}lb_algo = "rr"\nlvs_sched = "wrr" # <--\n`, path: 'virtual_server[0].lvs_sched', message: /"lb_algo" and "lvs_sched" are the same setting; keep one/ },
  { name: 'proxy_protocol needs lb_kind PROXY', text: `${VS}lb_kind = "NAT"\nproxy_protocol = "v2" # <--\n`, path: 'virtual_server[0].proxy_protocol', message: /needs lb_kind = "PROXY": only the proxy terminates the client's TCP connection/ },
  { name: 'proxy_protocol with the default lb_kind (NAT)', text: `${VS}proxy_protocol = "v1" # <--\n`, path: 'virtual_server[0].proxy_protocol', message: /needs lb_kind = "PROXY"/ },
  { name: 'DR cannot change the port', text: `${VS}lb_kind = "DR"\n${RS('port = 8080 # <--')}`, path: 'virtual_server[0].real_server[0].port', message: /lb_kind "DR" cannot change the port .* set port = 80 or omit it/ },
  { name: 'DR sorry server on another port', text: `${VS}lb_kind = "DR"\nsorry_server = { address = "10.0.0.30", port = 8080 } # <--\n`, path: 'virtual_server[0].sorry_server.port', message: /lb_kind "DR" cannot change the port/ },
  { name: 'DR port set: a real server port is refused', text: `[[virtual_server]]\naddress = "10.0.0.50"\nports = [21, "10000-20000"]\nlb_kind = "DR"\n${RS('port = 21 # <--\ncheck = { type = "TCP_CHECK", connect_port = 21 }')}`, path: 'virtual_server[0].real_server[0].port', message: /keeps the packet's own port .* omit port/ },
  { name: 'fwmark with an address', text: `[[virtual_server]]\nfwmark = 1\naddress = "10.0.0.50" # <--\n`, path: 'virtual_server[0].address', message: /a fwmark service matches packets by their mark, not by address/ },
  { name: 'fwmark out of range', text: `[[virtual_server]]\nfwmark = 0 # <--\n`, path: 'virtual_server[0].fwmark', message: /must be 1\.\.4294967295, got 0/ },
  { name: 'neither address nor fwmark', text: `[[virtual_server]] # <--\nport = 80\n`, path: 'virtual_server[0].address', message: /is required \(or fwmark/ },
  { name: 'address without port or ports', text: `[[virtual_server]] # <--\naddress = "10.0.0.50"\n`, path: 'virtual_server[0].port', message: /is required \(or ports/ },
  { name: 'port and ports', text: `${VS}ports = [81] # <--\n`, path: 'virtual_server[0].ports', message: /port and ports are exclusive/ },
  { name: 'bad port range', text: `[[virtual_server]]\naddress = "10.0.0.50"\nports = [21, "20000-10000"] # <--\n`, path: 'virtual_server[0].ports[1]', message: /a range "FROM-TO" with FROM <= TO, got "20000-10000"/ },
  { name: 'overlapping ports', text: `[[virtual_server]]\naddress = "10.0.0.50"\nports = ["10000-20000", 15000] # <--\n`, path: 'virtual_server[0].ports[1]', message: /overlaps ports\[0\]/ },
  { name: 'PROXY cannot serve a port set', text: `[[virtual_server]]\naddress = "10.0.0.50"\nports = [21, "10000-20000"]\nlb_kind = "PROXY" # <--\n`, path: 'virtual_server[0].lb_kind', message: /lb_kind "PROXY" cannot serve a port set: the proxy listens on one address:port/ },
  { name: 'PROXY cannot serve a fwmark service', text: `[[virtual_server]]\nfwmark = 1\nlb_kind = "PROXY" # <--\n`, path: 'virtual_server[0].lb_kind', message: /cannot serve a fwmark service/ },
  { name: 'services overlapping on one address', text: `${VS}[[virtual_server]] # <--\naddress = "10.0.0.50"\nports = ["1-1024"]\n`, path: 'virtual_server[1]', message: /tcp\/10\.0\.0\.50:1-1024 overlaps tcp\/10\.0\.0\.50:80 \(virtual_server\[0\]\)/ },
  { name: 'fwmark real server check without a port', text: `[[virtual_server]]\nfwmark = 1\n${RS('check = { type = "TCP_CHECK" } # <--')}`, path: 'virtual_server[0].real_server[0].check[0]', message: /connect_port is required: the real server has no port of its own/ },
  { name: 'fwmark real servers of mixed families', text: `[[virtual_server]]\nfwmark = 1\n${RS()}[[virtual_server.real_server]]\naddress = "fd00::22" # <--\n`, path: 'virtual_server[0].real_server[1].address', message: /must be IPv4 like the virtual server/ },
  { name: 'ip_family contradicting the address', text: `${VS}ip_family = "inet6" # <--\n`, path: 'virtual_server[0].ip_family', message: /contradicts address 10\.0\.0\.50 \(IPv4\)/ },
  { name: 'real server of the other family', text: `${VS}${RS('', 'fd00::21').replace('"fd00::21"', '"fd00::21" # <--')}`, path: 'virtual_server[0].real_server[0].address', message: /must be IPv4 like the virtual server/ },
  { name: 'mh_table_size not prime', text: `${VS}lb_algo = "mh"\nmh_table_size = 65536 # <--\n`, path: 'virtual_server[0].mh_table_size', message: /must be a prime/ },
  { name: 'mh_table_size too large', text: `${VS}mh_table_size = 262147 # <--\n`, path: 'virtual_server[0].mh_table_size', message: /must be 2\.\.131071, got 262147/ },
  { name: 'sched flag of another scheduler', text: `${VS}lb_algo = "sh"\nsched_flags = ["mh-port"] # <--\n`, path: 'virtual_server[0].sched_flags[0]', message: /"mh-port" applies to lb_algo "mh" only \(this service uses "sh"\)/ },
  { name: 'flag-1 with a non-hashing scheduler', text: `${VS}sched_flags = ["flag-1"] # <--\n`, path: 'virtual_server[0].sched_flags[0]', message: /"flag-1" applies to lb_algo "sh" or "mh" only/ },
  { name: 'unknown sched flag', text: `${VS}lb_algo = "sh"\nsched_flags = ["sh-prot"] # <--\n`, path: 'virtual_server[0].sched_flags[0]', message: /got "sh-prot"; did you mean "sh-port"\?/ },
  { name: 'hash_seed out of range', text: `${VS}hash_seed = -1 # <--\n`, path: 'virtual_server[0].hash_seed', message: /must be 0\.\.4294967295, got -1/ },
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
  { name: 'sync.instance unknown', text: instance() + SYNC('auth_key = "k-0123456789abcdef"').replace('instance = "VI_1"', 'instance = "VI_9" # <--'), path: 'sync.instance', message: /unknown vrrp_instance "VI_9"/ },
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
  { name: 'sync with both auth_key and auth_key_file', text: instance() + SYNC('auth_key = "k-0123456789abcdef"\nauth_key_file = "/etc/k" # <--'), path: 'sync.auth_key_file', message: /mutually exclusive/ },
  { name: 'port 0', text: VS.replace('port = 80', 'port = 0 # <--'), path: 'virtual_server[0].port', message: /must be 1\.\.65535, got 0/ },
  { name: 'duplicate virtual server', text: `${VS}${VS.replace('[[virtual_server]]', '[[virtual_server]] # <--')}`, path: 'virtual_server[1]', message: /duplicate virtual server tcp\/10\.0\.0\.50:80 \(also virtual_server\[0\]\)/ },
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
  { name: 'slow_start with a weight-blind scheduler', text: `${VS}lb_algo = "lc"\nslow_start = 10 # <--\n`, path: 'virtual_server[0].slow_start', message: /lb_algo "lc" ignores/ },
  { name: 'negative slow_start', text: `${VS}slow_start = -1 # <--\n`, path: 'virtual_server[0].slow_start', message: /must be >= 0/ },
  { name: 'track_script weight out of range', text: `[[vrrp_script]]\nname = "c"\nscript = "true"\nweight = 254 # <--\n`, path: 'vrrp_script[0].weight', message: /must be -253\.\.253, got 254/ },
  // virtual_server_group
  { name: 'group member without a port', text: `${VSG('"10.0.0.50:80",\n  "10.0.0.51", # <--')}`, path: 'virtual_server_group[0].members[1]', message: /"10\.0\.0\.51" needs a port, e\.g\. "10\.0\.0\.51:80" \(a service for all ports is a firewall mark: "fwmark:N"\)/ },
  { name: 'group range end before its start', text: VSG('"10.0.0.60-50:80", # <--'), path: 'virtual_server_group[0].members[0]', message: /10\.0\.0\.60-50: the end of the range is before its start/ },
  { name: 'group range too large', text: VSG('"10.0.0.0/16:80", # <--'), path: 'virtual_server_group[0].members[0]', message: /10\.0\.0\.0\/16 stands for 65536 addresses; at most 256 per entry/ },
  { name: 'group network with host bits', text: VSG('"10.0.0.9/29:80", # <--'), path: 'virtual_server_group[0].members[0]', message: /10\.0\.0\.9\/29 has host bits set \(the network is 10\.0\.0\.8\/29\)/ },
  { name: 'unbracketed IPv6 group member', text: VSG('"fd00::1-9", # <--'), path: 'virtual_server_group[0].members[0]', message: /put IPv6 addresses in brackets: "\[fd00::1-9\]:PORT"/ },
  { name: 'group mixing address families', text: VSG('"10.0.0.50:80",\n  "fwmark6:1", # <--'), path: 'virtual_server_group[0].members[1]', message: /IPv6 member in a group whose first member is IPv4/ },
  { name: 'address twice in a group (inside a range)', text: VSG('"10.0.0.50-52:80",\n  "10.0.0.51:80", # <--'), path: 'virtual_server_group[0].members[1]', message: /10\.0\.0\.51:80 is already a member \(members\[0\] "10\.0\.0\.50-52:80"\)/ },
  { name: 'group name that cannot be a key', text: VSG('"10.0.0.50:80",').replace('name = "web"', 'name = "web farm" # <--'), path: 'virtual_server_group[0].name', message: /must be letters, digits, "_", "\." or "-"/ },
  { name: 'unknown group', text: `${VSG('"10.0.0.50:80",')}[[virtual_server]]\ngroup = "wbe" # <--\n`, path: 'virtual_server[0].group', message: /unknown virtual_server_group "wbe"; did you mean "web"\?/ },
  { name: 'group and address', text: `${VSG('"10.0.0.50:80",')}[[virtual_server]]\ngroup = "web"\naddress = "10.0.0.50" # <--\n`, path: 'virtual_server[0].address', message: /serves the members of virtual_server_group "web"; remove address \(or group\)/ },
  { name: 'group served twice with one protocol', text: `${VSG('"10.0.0.50:80",')}[[virtual_server]]\ngroup = "web"\n[[virtual_server]] # <--\ngroup = "web"\n`, path: 'virtual_server[1]', message: /virtual_server_group "web" is already served with protocol TCP by virtual_server\[0\]/ },
  { name: 'group member also a virtual server of its own', text: `${VS}${VSG('"10.0.0.50-51:80",')}[[virtual_server]] # <--\ngroup = "web"\n`, path: 'virtual_server[1]', message: /tcp\/10\.0\.0\.50:80 \(a member of group "web"\) is also served by virtual_server\[0\]/ },
  { name: 'PROXY cannot serve a group fwmark', text: `${VSG('"10.0.0.50:80",\n  "fwmark:3",')}[[virtual_server]]\ngroup = "web"\nlb_kind = "PROXY" # <--\n`, path: 'virtual_server[0].lb_kind', message: /cannot serve the group's firewall mark \(fwmark\/3\)/ },
  { name: 'DR real server port with members on several ports', text: `${VSG('"10.0.0.50:80",\n  "10.0.0.51:443",')}[[virtual_server]]\ngroup = "web"\nlb_kind = "DR"\n${RS('port = 80 # <--\ncheck = { type = "TCP_CHECK", connect_port = 80 }')}`, path: 'virtual_server[0].real_server[0].port', message: /group's members do not share one; omit port/ },
  { name: 'group real server of the other family', text: `${VSG('"10.0.0.50:80",')}[[virtual_server]]\ngroup = "web"\n${RS('', 'fd00::21').replace('"fd00::21"', '"fd00::21" # <--')}`, path: 'virtual_server[0].real_server[0].address', message: /must be IPv4 like the virtual server's group "web"/ },
  { name: 'ip_family contradicting the group', text: `${VSG('"10.0.0.50:80",')}[[virtual_server]]\ngroup = "web"\nip_family = "inet6" # <--\n`, path: 'virtual_server[0].ip_family', message: /contradicts the members of virtual_server_group "web" \(IPv4\)/ },
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

test('overlapping virtual servers: each names the first earlier one it collides with, with narrow and wide port ranges mixed', (t) => {
  const vs = (ports: string, protocol = 'TCP') => `[[virtual_server]]\naddress = "10.0.0.50"\nprotocol = "${protocol}"\nports = [${ports}]\nlb_kind = "DR"\n`;
  const text = [
    vs('80'), // 0
    vs('"1000-2000"'), // 1: wide
    vs('443'), // 2
    vs('80', 'UDP'), // 3: other protocol, no overlap
    vs('1500'), // 4: inside the wide range of 1
    vs('"79-81"'), // 5: narrow, overlaps 0
    vs('"400-3000"'), // 6: wide, overlaps 1 (first earlier: 1, before 2 and 4)
    vs('80'), // 7: the same key as 0: a duplicate
    vs('9999'), // 8: fine
  ].join('\n');
  const issues = issuesOf(text, 'overlap.toml');
  t.deepEqual(issues.map((i) => `${i.path}: ${i.message}`), [
    'virtual_server[4]: tcp/10.0.0.50:1500 overlaps tcp/10.0.0.50:1000-2000 (virtual_server[1]): a packet may match only one service',
    'virtual_server[5]: tcp/10.0.0.50:79-81 overlaps tcp/10.0.0.50:80 (virtual_server[0]): a packet may match only one service',
    'virtual_server[6]: tcp/10.0.0.50:400-3000 overlaps tcp/10.0.0.50:1000-2000 (virtual_server[1]): a packet may match only one service',
    'virtual_server[7]: duplicate virtual server tcp/10.0.0.50:80 (also virtual_server[0])',
  ]);
});
