import test from 'ava';
import { fileURLToPath } from 'node:url';
import { describeConfig, loadConfigFile, formatIssue, parseConfig, planReload, isReloadPlanEmpty, type Config } from '../../src/config/index.js';
import { instance, issuesOf, markedLine } from '../fixtures/config/helpers.js';

const BGP = `[bgp]
local_as = 65001

[[bgp.peer]]
address = "10.77.0.1"
remote_as = 65000
`;
const PEER6 = `[[bgp.peer]]
address = "fd77:0::1"
remote_as = 65000
`;
const VS = (address: string, extra = '', port = 80): string => `[[virtual_server]]
address = "${address}"
port = ${port}
${extra}
`;
const parse = (text: string): Config => parseConfig(text, 'test.toml');

test('[bgp] with defaults: peers canonical, bfd on, hold time 9, table 100, protocol 200', (t) => {
  const cfg = parse(BGP + PEER6);
  t.like(cfg.bgp, {
    local_as: 65001,
    as_path_prepend: 0,
    bfd_interval: 0.1,
    bfd_multiplier: 3,
    kernel_table: 100,
    kernel_protocol: 200,
    runtime_dir: '/run/keepalive-ts/bird',
  });
  t.is(cfg.bgp!.router_id, undefined);
  t.is(cfg.bgp!.med, undefined);
  t.is(cfg.bgp!.track_interface, undefined);
  t.deepEqual(cfg.bgp!.peer, [
    { address: '10.77.0.1', remote_as: 65000, bfd: true, hold_time: 9, family: 4 },
    { address: 'fd77::1', remote_as: 65000, bfd: true, hold_time: 9, family: 6 },
  ]);
  t.is(parse('').bgp, undefined);
});

test('conf/bgp-director.toml: an active-active director announcing while healthy', async (t) => {
  const cfg = await loadConfigFile(fileURLToPath(new URL('../../../conf/bgp-director.toml', import.meta.url)));
  t.like(cfg.bgp, { local_as: 65001, router_id: '10.78.0.11' });
  t.deepEqual(cfg.virtual_server.map((v) => [v.address, v.announce]), [['10.99.0.10', 'healthy']]);
  t.true(describeConfig(cfg).endsWith('no sync, bgp AS 65001 with 1 peer'), describeConfig(cfg));
});

test('every [bgp] key is read', (t) => {
  const cfg = parse(`[bgp]
local_as = 4200000001
router_id = "10.77.0.11"
med = 100
as_path_prepend = 2
bfd_interval = 0.05
bfd_multiplier = 5
track_interface = ["eth0", "eth1"]
kernel_table = 4242
kernel_protocol = 201
runtime_dir = "/run/kt-bird"

[[bgp.peer]]
address = "10.77.0.1"
remote_as = 65000
bfd = false
hold_time = 30
password = "s3cret"
`);
  t.deepEqual(cfg.bgp, {
    local_as: 4200000001,
    router_id: '10.77.0.11',
    med: 100,
    as_path_prepend: 2,
    bfd_interval: 0.05,
    bfd_multiplier: 5,
    track_interface: ['eth0', 'eth1'],
    kernel_table: 4242,
    kernel_protocol: 201,
    runtime_dir: '/run/kt-bird',
    peer: [{ address: '10.77.0.1', remote_as: 65000, bfd: false, hold_time: 30, password: 's3cret', family: 4 }],
  });
});

test('announce defaults: "healthy" for addresses no vrrp_instance holds, "master" for held ones, "never" without [bgp]', (t) => {
  const text = instance() + VS('10.0.0.50') + VS('10.0.0.99') + VS('10.0.0.98', 'announce = "never"');
  t.deepEqual(parse(BGP + text).virtual_server.map((v) => v.announce), ['master', 'healthy', 'never']);
  t.deepEqual(parse(text).virtual_server.map((v) => v.announce), ['never', 'never', 'never']);
  t.is(parse(BGP + '[[virtual_server]]\nfwmark = 1\n').virtual_server[0]!.announce, 'never', 'a fwmark service has no address');
  // Excluded VIPs hold addresses too.
  const excl = instance('virtual_ipaddress_excluded = ["10.0.0.99"]');
  t.deepEqual(parse(BGP + excl + VS('10.0.0.99')).virtual_server.map((v) => v.announce), ['master']);
});

interface Case {
  name: string;
  text: string;
  path: string;
  message: RegExp;
}

const cases: Case[] = [
  { name: 'announce without [bgp]', text: VS('10.0.0.99', 'announce = "healthy" # <--'), path: 'virtual_server[0].announce', message: /"healthy" needs a \[bgp\] section/ },
  { name: 'master without an instance', text: BGP + VS('10.0.0.99', 'announce = "master" # <--'), path: 'virtual_server[0].announce', message: /"master" needs a vrrp_instance holding 10\.0\.0\.99/ },
  { name: 'healthy on a VRRP address', text: BGP + instance() + VS('10.0.0.50', 'announce = "healthy" # <--'), path: 'virtual_server[0].announce', message: /held by vrrp_instance "VI_1", so only its MASTER serves it/ },
  { name: 'unknown announce mode', text: BGP + VS('10.0.0.99', 'announce = "always" # <--'), path: 'virtual_server[0].announce', message: /must be one of healthy, master, never; got "always"/ },
  { name: 'IPv6 service without an IPv6 peer', text: BGP + VS('fd00::99').replace('[[virtual_server]]', '[[virtual_server]] # <--'), path: 'virtual_server[0].announce', message: /no \[\[bgp.peer\]\] carries IPv6/ },
  { name: 'fwmark service', text: BGP + '[[virtual_server]]\nfwmark = 1\nannounce = "healthy" # <--\n', path: 'virtual_server[0].announce', message: /a fwmark service has no address to announce/ },
  { name: 'no peer', text: '[bgp] # <--\nlocal_as = 65001\n', path: 'bgp.peer', message: /is required/ },
  { name: 'local_as 0', text: BGP.replace('local_as = 65001', 'local_as = 0 # <--'), path: 'bgp.local_as', message: /must be 1\.\.4294967295, got 0/ },
  { name: 'router_id not IPv4', text: BGP.replace('local_as = 65001', 'local_as = 65001\nrouter_id = "fd00::1" # <--'), path: 'bgp.router_id', message: /must be an IPv4 address/ },
  { name: 'peer address', text: BGP.replace('"10.77.0.1"', '"10.77.0.300" # <--'), path: 'bgp.peer[0].address', message: /must be an IPv4 or IPv6 address/ },
  { name: 'duplicate peer however spelled', text: BGP + PEER6 + PEER6.replace('fd77:0::1', 'fd77::1" # <--').replace('1" # <--"', '1" # <--'), path: 'bgp.peer[2].address', message: /duplicate BGP peer fd77::1 \(also bgp\.peer\[1\]\)/ },
  { name: 'hold time 2', text: BGP.replace('remote_as = 65000', 'remote_as = 65000\nhold_time = 2 # <--'), path: 'bgp.peer[0].hold_time', message: /must be 3\.\.65535/ },
  { name: 'password with a quote', text: BGP.replace('remote_as = 65000', 'remote_as = 65000\npassword = \'a"b\' # <--'), path: 'bgp.peer[0].password', message: /must not contain double quotes/ },
  { name: 'main table', text: BGP.replace('local_as = 65001', 'local_as = 65001\nkernel_table = 254 # <--'), path: 'bgp.kernel_table', message: /must not be 254/ },
  { name: 'BIRD protocol number', text: BGP.replace('local_as = 65001', 'local_as = 65001\nkernel_protocol = 12 # <--'), path: 'bgp.kernel_protocol', message: /must not be 12/ },
  { name: "keepalive-ts's own route protocol", text: BGP.replace('local_as = 65001', 'local_as = 65001\nkernel_protocol = 18 # <--'), path: 'bgp.kernel_protocol', message: /must not be 18/ },
  { name: 'kernel protocol number', text: BGP.replace('local_as = 65001', 'local_as = 65001\nkernel_protocol = 2 # <--'), path: 'bgp.kernel_protocol', message: /must be 5\.\.255, got 2 \(0\.\.4 are the kernel's own/ },
  { name: 'unknown bgp key', text: BGP.replace('local_as = 65001', 'local_as = 65001\nlocal_pref = 200 # <--'), path: 'bgp.local_pref', message: /unknown key "local_pref"/ },
];

for (const c of cases) {
  test(`bad [bgp] config: ${c.name}`, (t) => {
    const issues = issuesOf(c.text);
    const hit = issues.find((i) => i.path === c.path);
    t.truthy(hit, `no issue at ${c.path}: ${issues.map(formatIssue).join('\n')}`);
    t.regex(hit!.message, c.message);
    t.is(hit!.line, markedLine(c.text), formatIssue(hit!));
    t.true(formatIssue(hit!).startsWith(`test.toml:${markedLine(c.text)} ${c.path}:`));
  });
}

// -------------------------------------------------------------------------------------------
// Reload plan

const BASE = `${BGP}${PEER6}
${VS('10.0.0.99')}`;

test('reload: peers added and removed by address, changed peers restart, others untouched', (t) => {
  const next = BASE.replace('address = "10.77.0.1"\nremote_as = 65000', 'address = "10.77.0.2"\nremote_as = 65000')
    .replace('address = "fd77:0::1"\nremote_as = 65000', 'address = "fd77::1"\nremote_as = 65000\nhold_time = 6\npassword = "x"');
  const p = planReload(parse(BASE), parse(next));
  t.deepEqual(p.bgp?.peers.added.map((x) => x.address), ['10.77.0.2']);
  t.deepEqual(p.bgp?.peers.removed.map((x) => x.address), ['10.77.0.1']);
  t.deepEqual(p.bgp?.peers.changed.map((c) => [c.next.address, Object.keys(c.settings)]), [['fd77::1', ['hold_time', 'password']]]);
  t.deepEqual(p.bgp?.needsRestart, []);
  t.deepEqual(p.summary, [
    '-bgp peer 10.77.0.1 (AS 65000)',
    '+bgp peer 10.77.0.2 (AS 65000)',
    'bgp peer fd77::1: hold_time 9 -> 6 (session restarts)',
    'bgp peer fd77::1: password set (session restarts)',
  ]);
  // A peer spelled differently is the same peer.
  t.true(isReloadPlanEmpty(planReload(parse(BASE), parse(BASE.replace('fd77:0::1', 'fd77:0:0::1')))));
});

test('reload: [bgp] settings live, table/protocol/runtime_dir need a restart, the section itself too', (t) => {
  const p = planReload(parse(BASE), parse(BASE.replace('local_as = 65001', 'local_as = 65001\nmed = 100\nkernel_table = 101')));
  t.deepEqual(Object.keys(p.bgp!.settings), ['med', 'kernel_table']);
  t.deepEqual(p.bgp!.needsRestart, ['bgp.kernel_table']);
  t.deepEqual(p.summary, ['bgp: med (unset) -> 100', 'bgp: kernel_table 100 -> 101 (needs a daemon restart)']);
  const noBgp = VS('10.0.0.99');
  t.deepEqual(planReload(parse(noBgp), parse(BASE)).bgp?.needsRestart, ['[bgp] added']);
  t.deepEqual(planReload(parse(BASE), parse(noBgp)).bgp?.needsRestart, ['[bgp] removed']);
  t.is(planReload(parse(noBgp), parse(noBgp)).bgp, null);
});

test('reload: announcements follow the virtual servers (added, removed, announce changed)', (t) => {
  const p = planReload(parse(BASE), parse(BASE.replace('port = 80\n', 'port = 80\nannounce = "never"\n') + VS('10.0.0.98')));
  t.deepEqual(p.virtualServers.added.map((v) => [v.address, v.announce]), [['10.0.0.98', 'healthy']]);
  t.deepEqual(Object.keys(p.virtualServers.kept[0]!.changes.settings), ['announce']);
  t.deepEqual(p.summary, ['+virtual_server tcp/10.0.0.98:80', 'virtual_server tcp/10.0.0.99:80: announce healthy -> never']);
});
