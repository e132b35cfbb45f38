import test from 'ava';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describeConfig, formatIssue, loadConfigFile, parseConfig, schemaRows } from '../../src/config/index.js';
import { isKeepaliveError } from '../../src/util/errors.js';
import { defaultHashSeed } from '../../src/lvs/hash.js';
import { serviceSpec } from '../../src/lvs/manager.js';
import { instance } from '../fixtures/config/helpers.js';

// Tests run from dist/test/unit; conf/ stays at the repo root.
const confPath = (name: string): string => fileURLToPath(new URL(`../../../conf/${name}`, import.meta.url));

test('conf/keepalive.toml loads cleanly', async (t) => {
  const cfg = await loadConfigFile(confPath('keepalive.toml'));
  t.is(cfg.vrrp_instance[0]!.name, 'VI_1');
  t.is(cfg.virtual_server[0]!.real_server.length, 2);
  t.is(cfg.sync?.auth_key_file, '/etc/keepalive-ts/sync.key');
});

test('the director pair loads and differs only where a pair must', async (t) => {
  const a = await loadConfigFile(confPath('director-a.toml'));
  const b = await loadConfigFile(confPath('director-b.toml'));
  t.is(a.vrrp_instance[0]!.priority, 150);
  t.is(b.vrrp_instance[0]!.priority, 100);
  for (const cfg of [a, b]) {
    const vi = cfg.vrrp_instance[0]!;
    t.is(vi.interface, 'eth0');
    t.is(vi.virtual_router_id, 51);
    t.is(vi.version, 3);
    t.is(vi.advert_int_cs, 100);
    t.deepEqual(vi.virtual_ipaddress_parsed, [{ address: '10.77.0.50', prefix: 24, family: 4 }]);
    const vs = cfg.virtual_server[0]!;
    t.like(vs, { address: '10.77.0.50', port: 80, protocol: 'TCP', lb_kind: 'DR', lb_algo: 'wlc', persistence_timeout: 300 });
    t.deepEqual(vs.sorry_server, { address: '10.77.0.30', port: 80 });
    t.deepEqual(vs.real_server.map((rs) => `${rs.address}:${rs.port}`), ['10.77.0.21:80', '10.77.0.22:80']);
    for (const rs of vs.real_server) t.like(rs.check[0], { type: 'HTTP_GET', delay_loop: 2, connect_timeout: 1, status_code: [200] });
    t.like(cfg.sync, { interface: 'eth0', instance: 'VI_1', group: '224.0.0.81', port: 8848 });
  }
  t.is(a.global.control_socket, '/run/keepalive-ts/director-a.sock');
  t.is(b.global.control_socket, '/run/keepalive-ts/director-b.sock');
  t.deepEqual(a.global.metrics, { host: '10.77.0.11', port: 9650 });
  t.deepEqual(b.global.metrics, { host: '10.77.0.12', port: 9650 });
  t.is(a.sync?.auth_key, b.sync?.auth_key);
});

test('defaults follow keepalived and are filled everywhere', (t) => {
  const cfg = parseConfig(
    `${instance()}
[[virtual_server]]
address = "10.0.0.50"
port = 443
[[virtual_server.real_server]]
address = "10.0.0.21"
check = { type = "TCP_CHECK" }
[sync]
interface = "eth0"
instance = "VI_1"
auth_key = "k-0123456789abcdef"
`,
    'd.toml',
  );
  t.like(cfg.global, {
    router_id: hostname(),
    control_socket: '/run/keepalive-ts.sock',
    metrics_listen: '127.0.0.1:9650',
    vrrp_mcast_group4: '224.0.0.18',
    vrrp_mcast_group6: 'ff02::12',
    vrrp_version: 2,
    vrrp_garp_master_delay: 5,
    vrrp_garp_master_repeat: 5,
    vrrp_garp_master_refresh: 0,
    vrrp_garp_master_refresh_repeat: 1,
    drain_timeout: 30,
  });
  t.like(cfg.vrrp_instance[0], {
    state: 'BACKUP',
    priority: 100,
    advert_int: 1,
    version: 2,
    nopreempt: false,
    preempt_delay: 0,
    garp_master_delay: 5,
    garp_master_repeat: 5,
    accept: true,
    family: 4,
  });
  const vs = cfg.virtual_server[0]!;
  t.like(vs, { protocol: 'TCP', lb_algo: 'wlc', lb_kind: 'NAT', delay_loop: 60, quorum: 1, persistence_granularity: '255.255.255.255', persistence_prefix: 32, drain_timeout: 30, depool_threshold: 0, proxy_protocol: '', slow_start: 0 });
  t.like(vs.real_server[0], { port: 443, weight: 1, inhibit_on_failure: false });
  t.deepEqual(vs.real_server[0]!.check, [
    { type: 'TCP_CHECK', connect_timeout: 5, retry: 1, delay_before_retry: 1, delay_loop: 60, warmup: 60, connect_ip: '10.0.0.21', connect_port: 443 },
  ]);
  t.like(cfg.sync, { group: '224.0.0.81', port: 8848, ttl: 1, sync_id: 51 });
});

test('inherited defaults come from global and the enclosing servers', (t) => {
  const cfg = parseConfig(
    `[global]
vrrp_version = 3
vrrp_garp_master_delay = 2
drain_timeout = 5
${instance()}
[[vrrp_script]]
name = "chk"
script = "true"
interval = 3
weight = -20
[[virtual_server]]
address = "fd00::50"
port = 80
delay_loop = 7
connect_timeout = 2
virtualhost = "example.org"
inhibit_on_failure = true
[[virtual_server.real_server]]
address = "fd00::21"
port = 8080
check = [{ type = "HTTP_GET" }, { type = "MISC_CHECK", misc_path = "/bin/true" }]
`,
    'i.toml',
  );
  t.like(cfg.vrrp_instance[0], { version: 3, garp_master_delay: 2 });
  t.is(cfg.vrrp_script[0]!.timeout, 3);
  const vs = cfg.virtual_server[0]!;
  t.like(vs, { family: 6, persistence_granularity: '128', persistence_prefix: 128, drain_timeout: 5 });
  const rs = vs.real_server[0]!;
  t.true(rs.inhibit_on_failure);
  t.like(rs.check[0], { type: 'HTTP_GET', delay_loop: 7, connect_timeout: 2, virtualhost: 'example.org', path: '/', status_code: [200], connect_ip: 'fd00::21', connect_port: 8080 });
  t.like(rs.check[1], { type: 'MISC_CHECK', misc_timeout: 7, misc_dynamic: false });
});

test('track entries are normalized and take the script weight unless overridden', (t) => {
  const cfg = parseConfig(
    `[[vrrp_script]]
name = "a"
script = "true"
weight = -10
[[vrrp_script]]
name = "b"
script = "true"
${instance('track_script = ["a", { name = "b", weight = 7 }]\ntrack_interface = ["eth1", { name = "eth2", weight = -5 }]')}`,
    't.toml',
  );
  const vi = cfg.vrrp_instance[0]!;
  t.deepEqual(vi.track_script, [{ name: 'a', weight: -10 }, { name: 'b', weight: 7 }]);
  t.deepEqual(vi.track_interface, [{ name: 'eth1', weight: 0 }, { name: 'eth2', weight: -5 }]);
});

test('VIPs parse to canonical forms with host-route default prefixes; v3 allows centisecond adverts', (t) => {
  const cfg = parseConfig(instance().replace('["10.0.0.50/24"]', '["FD00:0:0::50", "fd00::51/64"]') + 'version = 3\nadvert_int = 0.25\n', 'v.toml');
  const vi = cfg.vrrp_instance[0]!;
  t.deepEqual(vi.virtual_ipaddress_parsed, [
    { address: 'fd00::50', prefix: 128, family: 6 },
    { address: 'fd00::51', prefix: 64, family: 6 },
  ]);
  t.is(vi.family, 6);
  t.is(vi.advert_int_cs, 25);
});

test('metrics_listen "" disables metrics', (t) => {
  t.is(parseConfig('[global]\nmetrics_listen = ""\n', 'm.toml').global.metrics, null);
});

test('describeConfig summarizes a config on one line', async (t) => {
  const cfg = await loadConfigFile(confPath('director-a.toml'));
  t.is(describeConfig(cfg), 'router_id director-a, 1 vrrp_instance, 0 vrrp_sync_groups, 0 vrrp_scripts, 2 virtual_servers, 4 real_servers, sync on eth0');
});

test('an unreadable file is E_CONFIG_READ', async (t) => {
  const err = await t.throwsAsync(loadConfigFile('/nonexistent/keepalive.toml'));
  t.true(isKeepaliveError(err, 'E_CONFIG_READ'));
});

test('formatIssue matches the documented form', (t) => {
  t.is(formatIssue({ file: 'director-a.toml', line: 14, path: 'vrrp_instance[0].priority', message: 'must be 1..255, got 300' }), 'director-a.toml:14 vrrp_instance[0].priority: must be 1..255, got 300');
  t.is(formatIssue({ file: 'x.toml', line: 2, path: '', message: 'syntax error: boom' }), 'x.toml:2: syntax error: boom');
  t.is(formatIssue({ file: 'x.toml', path: 'sync', message: 'm' }), 'x.toml sync: m');
});

test('every schema key is documented in conf/keepalive.toml', (t) => {
  const example = readFileSync(confPath('keepalive.toml'), 'utf8');
  const rows = schemaRows();
  t.true(rows.length > 100);
  const missing = rows
    .map((r) => r.path.split('.').pop()!.replace(/\[\]$/, ''))
    .filter((key) => !new RegExp(`(^|[\\s{,#.\\[])${key}\\s*[=\\]]|\\b${key}\\b \\(`, 'm').test(example));
  t.deepEqual(missing, []);
});

test('schema rows carry type, default and keepalived spelling', (t) => {
  const rows = new Map(schemaRows().map((r) => [r.path, r]));
  t.like(rows.get('vrrp_instance[].priority'), { type: 'an integer 1..255', default: '100', required: false, keepalived: 'priority' });
  t.like(rows.get('vrrp_instance[].version'), { default: 'global.vrrp_version' });
  t.like(rows.get('virtual_server[].real_server[].check[].path'), { checkTypes: ['HTTP_GET', 'SSL_GET'], default: '"/"' });
  t.like(rows.get('sync.auth_key_file'), { keepalived: null });
});

test('virtual and real server addresses are canonical, so a service matches its VIP however it is spelled', (t) => {
  const base = `
[[vrrp_instance]]
name = "VI_6"
interface = "eth0"
virtual_router_id = 60
version = 3
virtual_ipaddress = ["2001:db8::50/64"]
[[virtual_server]]
address = "2001:DB8:0::50"
port = 80
[[virtual_server.real_server]]
address = "2001:DB8::0021"
port = 80
`;
  const vs = parseConfig(base, 'v6.toml').virtual_server[0]!;
  t.is(vs.address, '2001:db8::50');
  t.is(vs.real_server[0]!.address, '2001:db8::21');
  const err = t.throws(() => parseConfig(`${base}[[virtual_server]]\naddress = "2001:db8::50"\nport = 80\n`, 'v6.toml'));
  t.regex(err!.message, /v6\.toml:\d+ virtual_server\[1\]: duplicate virtual server/);
});

test('service keys, matches and endpoints are made once at load (address, port set, fwmark)', (t) => {
  const cfg = parseConfig(
    `
[[virtual_server]]
address = "2001:DB8::50"
port = 80
lb_kind = "PROXY"
[[virtual_server.real_server]]
address = "2001:db8::0021"

[[virtual_server]]
address = "10.0.0.50"
ports = ["10000-20000", 21]
lb_kind = "DR"
persistence_timeout = 900
[[virtual_server.real_server]]
address = "10.0.0.21"
check = { type = "TCP_CHECK", connect_port = 21 }

[[virtual_server]]
fwmark = 7
lvs_method = "FULLNAT"
lvs_sched = "mh"
sched_flags = ["mh-port", "flag-1"]
mh_table_size = 251
hash_seed = 42
[[virtual_server.real_server]]
address = "10.0.0.22"
port = 8080
check = { type = "MISC_CHECK", misc_path = "/bin/true" }

[[virtual_server]]
fwmark = 8
ip_family = "inet6"
`,
    'k.toml',
  );
  const [web, ftp, fw, fw6] = cfg.virtual_server;
  t.is<string, string>(web!.key, 'tcp/[2001:db8::50]:80');
  t.like(web!.real_server[0], { address: '2001:db8::21', port: 80, endpoint: { address: '2001:db8::21', family: 6, port: 80 } });
  t.is<string, string>(ftp!.key, 'tcp/10.0.0.50:21,10000-20000');
  t.deepEqual(ftp!.members[0]!.match, { kind: 'addr', protocol: 'tcp', address: '10.0.0.50', family: 4, ports: [{ from: 21, to: 21 }, { from: 10000, to: 20000 }] });
  t.like(ftp!.real_server[0], { port: 0, endpoint: { address: '10.0.0.21', family: 4, port: 0 } }, 'no port: the packet\'s own');
  t.like(fw!, { key: 'fwmark/7', lb_kind: 'FULLNAT', lb_algo: 'mh', sched_flags: ['mh-port', 'flag-1'], mh_table_size: 251, hash_seed: 42, family: 4 });
  t.like(fw!.real_server[0]!.endpoint, { address: '10.0.0.22', port: 8080 });
  t.is(fw!.real_server[0]!.check[0]!.connect_port, 8080);
  t.like(fw6!, { key: 'fwmark6/8', family: 6 });
  // the default hash seed is derived from the key: both directors agree without configuring it
  t.is(web!.hash_seed, defaultHashSeed('tcp/[2001:db8::50]:80'));
  t.is(ftp!.hash_seed, defaultHashSeed(ftp!.key));
  // a respelled address gives the same key and seed
  const again = parseConfig('[[virtual_server]]\naddress = "2001:db8:0::50"\nport = 80\n', 'k.toml').virtual_server[0]!;
  t.is(again.key, web!.key);
  t.is(again.hash_seed, web!.hash_seed);
});

test('virtual_server_group: members canonical at load (ranges expanded), one key per member, the group key, the protocol from the virtual server', (t) => {
  const cfg = parseConfig(
    `
[[virtual_server_group]]
name = "web"
members = ["10.0.0.50:80", "10.0.0.60-62:443", "10.0.0.8/31:8080", "10.0.0.250-10.0.1.1:80", "fwmark:1"]

[[virtual_server_group]]
name = "v6"
members = ["[2001:DB8::0050]:53", "[2001:db8::60-61]:53", "fwmark6:2"]

[[virtual_server]]
group = "web"
lb_kind = "DR"
lb_algo = "sh"
persistence_timeout = 300
[[virtual_server.real_server]]
address = "10.0.0.21"
check = { type = "TCP_CHECK", connect_port = 80 }

[[virtual_server]]
group = "v6"
protocol = "UDP"
[[virtual_server.real_server]]
address = "2001:db8::21"
port = 53
`,
    'g.toml',
  );
  const [web, v6] = cfg.virtual_server;
  t.is<string, string>(web!.key, 'tcp/group:web');
  t.is(web!.group, 'web');
  t.deepEqual(web!.members.map((m) => m.key), [
    'tcp/10.0.0.50:80', 'tcp/10.0.0.60:443', 'tcp/10.0.0.61:443', 'tcp/10.0.0.62:443', 'tcp/10.0.0.8:8080', 'tcp/10.0.0.9:8080',
    'tcp/10.0.0.250:80', 'tcp/10.0.0.251:80', 'tcp/10.0.0.252:80', 'tcp/10.0.0.253:80', 'tcp/10.0.0.254:80', 'tcp/10.0.0.255:80', 'tcp/10.0.1.0:80', 'tcp/10.0.1.1:80',
    'fwmark/1',
  ]);
  t.deepEqual(web!.members[1]!.match, { kind: 'addr', protocol: 'tcp', address: '10.0.0.60', family: 4, ports: [{ from: 443, to: 443 }] });
  t.like(web!, { family: 4, address: undefined, port: undefined });
  t.like(web!.real_server[0]!.endpoint, { address: '10.0.0.21', port: 0 }, 'DR, members on several ports: the packet keeps its port');
  t.is(web!.hash_seed, defaultHashSeed('tcp/group:web'), 'one seed for the group, derived from its key');
  t.is<string, string>(v6!.key, 'udp/group:v6');
  t.deepEqual(v6!.members.map((m) => m.key), ['udp/[2001:db8::50]:53', 'udp/[2001:db8::60]:53', 'udp/[2001:db8::61]:53', 'fwmark6/2']);
  t.is(v6!.family, 6);
  t.like(cfg.virtual_server_group[0], { name: 'web', family: 4 });
  t.deepEqual(cfg.virtual_server_group[0]!.members_parsed[1], { kind: 'addr', addresses: ['10.0.0.60', '10.0.0.61', '10.0.0.62'], family: 4, port: 443 });
  // every member is a data-plane service of its own, with the settings of the virtual server
  const specs = web!.members.map((m) => serviceSpec(web!, m));
  t.deepEqual(specs.map((x) => x.key), web!.members.map((m) => m.key));
  for (const x of specs) t.like(x, { kind: 'DR', scheduler: 'sh', hash: { seed: web!.hash_seed }, persistence: { timeoutMs: 300_000 } });
  // one group may serve TCP and UDP (keepalived: one virtual server per protocol)
  const both = parseConfig('[[virtual_server_group]]\nname = "dns"\nmembers = ["10.0.0.53:53"]\n[[virtual_server]]\ngroup = "dns"\n[[virtual_server]]\ngroup = "dns"\nprotocol = "UDP"\n', 'g.toml');
  t.deepEqual(both.virtual_server.map((v) => v.members[0]!.key), ['tcp/10.0.0.53:53', 'udp/10.0.0.53:53']);
});

test('lb_kind defaults to NAT (keepalived); the data-plane spec carries what the config says', (t) => {
  const [vs] = parseConfig('[[virtual_server]]\naddress = "10.0.0.50"\nport = 80\nlb_algo = "sh"\nsched_flags = ["sh-fallback"]\n', 'k.toml').virtual_server;
  t.is(vs!.lb_kind, 'NAT');
  t.is(vs!.mh_table_size, 65537);
  t.deepEqual(vs!.sched_flags, ['sh-fallback']);
  const spec = serviceSpec(vs!);
  t.like(spec, { key: 'tcp/10.0.0.50:80', kind: 'NAT', scheduler: 'sh', hash: { seed: vs!.hash_seed, tableSize: 65537, port: false, fallback: true }, persistence: null });
  t.is(spec.proxy, undefined, 'no proxy options on a kernel kind');
  const [fw] = parseConfig('[[virtual_server]]\nfwmark = 1\nlb_algo = "mh"\nsched_flags = ["flag-2"]\nmh_table_size = 251\nhash_seed = 9\n', 'k.toml').virtual_server;
  t.like(serviceSpec(fw!), { key: 'fwmark/1', hash: { seed: 9, tableSize: 251, port: true, fallback: false } });
  const [px] = parseConfig('[[virtual_server]]\naddress = "10.0.0.50"\nport = 80\nlb_kind = "PROXY"\nproxy_protocol = "v2"\nconnect_timeout = 2\n', 'k.toml').virtual_server;
  t.deepEqual(serviceSpec(px!).proxy, { proxyProtocol: 'v2', connectTimeoutMs: 2000 });
});

test('keepalived\'s fwmark sample translates: fwmark service, real servers without a port, checks with connect_port', (t) => {
  const cfg = parseConfig(
    `
[[virtual_server]]
fwmark = 1
delay_loop = 6
lb_algo = "rr"
lb_kind = "NAT"
persistence_timeout = 900
protocol = "TCP"
[[virtual_server.real_server]]
address = "192.168.201.100"
weight = 1
check = { type = "TCP_CHECK", connect_port = 80, connect_timeout = 3 }
[[virtual_server.real_server]]
address = "192.168.201.101"
weight = 1
check = { type = "TCP_CHECK", connect_port = 80, connect_timeout = 3 }
`,
    'fwmark.toml',
  );
  const vs = cfg.virtual_server[0]!;
  t.is<string, string>(vs.key, 'fwmark/1');
  t.deepEqual(vs.real_server.map((r) => [r.endpoint.address, r.endpoint.port, r.check[0]!.connect_port]), [['192.168.201.100', 0, 80], ['192.168.201.101', 0, 80]]);
});
