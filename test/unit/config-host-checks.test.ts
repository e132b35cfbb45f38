import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigSource } from '../../src/config/index.js';
import { HOST_CHECKS, formatHostIssue, runHostChecks, scriptsOf, systemHostProbe, type HostProbe } from '../../src/config/host-checks.js';
import { resolveCommand } from '../../src/util/exec.js';

/** A config touching every host-dependent key; line numbers are asserted below. */
const TEXT = `[global]
script_user = "svc"

[[vrrp_script]]
name = "chk"
script = "/opt/chk --fast"
user = "probe:probes"

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 100
virtual_ipaddress = ["10.0.0.50/24"]
track_script = ["chk"]
track_interface = ["eth1", { name = "bond0", weight = -10 }]
notify_master = "/opt/master"
notify = "notify-all --site x"

[[vrrp_sync_group]]
name = "G"
group = ["VI_1"]
notify_backup = "/opt/group-backup"

[[virtual_server]]
address = "10.0.0.50"
port = 80
quorum_up = "/opt/q-up"
quorum_down = "/opt/q-down"

[[virtual_server.real_server]]
address = "10.0.0.21"
port = 80
notify_up = "/opt/rs-up"
notify_down = "/opt/rs-down"
check = { type = "MISC_CHECK", misc_path = "/opt/misc 10.0.0.21", user = "misc" }

[sync]
interface = "eth0"
instance = "VI_1"
auth_key_file = "/etc/k/sync.key"
`;

function fakeProbe(over: Partial<{ badCommands: string[]; badUsers: string[]; interfaces: string[]; keyProblem: string; libnftables: string; forwarding: boolean; gateways: Record<string, string>; birdProblem: string }> = {}): HostProbe & { asked: string[]; routeQuestions: string[][] } {
  const asked: string[] = [];
  const routeQuestions: string[][] = [];
  return {
    asked,
    routeQuestions,
    syncKey: () => over.keyProblem,
    command(word) {
      asked.push(word);
      return over.badCommands?.includes(word) ? { ok: false, error: `${word} does not exist` } : { ok: true, path: word };
    },
    user: (spec) => (over.badUsers?.includes(spec) ? `unknown user "${spec}"` : undefined),
    interfaceExists: (name) => (over.interfaces ?? ['eth0', 'eth1', 'bond0']).includes(name),
    libnftables: () => over.libnftables,
    forwarding: () => over.forwarding ?? true,
    routes: (list) => {
      routeQuestions.push([...list]);
      return new Map(list.map((a) => [a, { device: 'eth0', ...(over.gateways?.[a] ? { gateway: over.gateways[a] } : {}) }]));
    },
    bird: () => over.birdProblem,
  };
}

const source = () => parseConfigSource(TEXT, 'lb.toml');

test('scriptsOf lists every script line with its key path and the user it runs as', (t) => {
  const s = scriptsOf(source().config).map((x) => [x.path.join('.'), x.command, x.user ?? '-']);
  t.deepEqual(s, [
    ['vrrp_script.0.script', '/opt/chk --fast', 'probe:probes'],
    ['vrrp_instance.0.notify_master', '/opt/master', 'svc'],
    ['vrrp_instance.0.notify', 'notify-all --site x', 'svc'],
    ['vrrp_sync_group.0.notify_backup', '/opt/group-backup', 'svc'],
    // Every script kind runs as script_user unless it has its own user (issue 10: these ran as root).
    ['virtual_server.0.quorum_up', '/opt/q-up', 'svc'],
    ['virtual_server.0.quorum_down', '/opt/q-down', 'svc'],
    ['virtual_server.0.real_server.0.notify_up', '/opt/rs-up', 'svc'],
    ['virtual_server.0.real_server.0.notify_down', '/opt/rs-down', 'svc'],
    ['virtual_server.0.real_server.0.check.0.misc_path', '/opt/misc 10.0.0.21', 'misc'],
  ]);
});

test('a host that has everything: no issues; the first word of each script is what is probed', (t) => {
  const probe = fakeProbe();
  t.deepEqual(runHostChecks(source(), { probe }), []);
  t.deepEqual(probe.asked, ['/opt/chk', '/opt/master', 'notify-all', '/opt/group-backup', '/opt/q-up', '/opt/q-down', '/opt/rs-up', '/opt/rs-down', '/opt/misc']);
});

test('each host problem is reported with file:line and key path', (t) => {
  const probe = fakeProbe({
    badCommands: ['/opt/chk', 'notify-all', '/opt/group-backup', '/opt/q-down', '/opt/rs-up', '/opt/misc'],
    badUsers: ['svc', 'probe:probes', 'misc'],
    interfaces: ['eth0'],
    keyProblem: 'cannot read auth_key_file /etc/k/sync.key: ENOENT',
  });
  const lines = runHostChecks(source(), { probe }).map(formatHostIssue);
  t.deepEqual(lines, [
    'lb.toml:2 global.script_user: unknown user "svc" on this host: scripts run as "svc" would not start',
    'lb.toml:6 vrrp_script[0].script: cannot run "/opt/chk --fast": /opt/chk does not exist',
    'lb.toml:7 vrrp_script[0].user: unknown user "probe:probes" on this host: scripts run as "probe:probes" would not start',
    'lb.toml:16 vrrp_instance[0].track_interface[0]: warning: interface "eth1" does not exist on this host',
    'lb.toml:16 vrrp_instance[0].track_interface[1]: warning: interface "bond0" does not exist on this host',
    'lb.toml:18 vrrp_instance[0].notify: cannot run "notify-all --site x": notify-all does not exist',
    'lb.toml:23 vrrp_sync_group[0].notify_backup: cannot run "/opt/group-backup": /opt/group-backup does not exist',
    'lb.toml:29 virtual_server[0].quorum_down: cannot run "/opt/q-down": /opt/q-down does not exist',
    'lb.toml:34 virtual_server[0].real_server[0].notify_up: cannot run "/opt/rs-up": /opt/rs-up does not exist',
    'lb.toml:36 virtual_server[0].real_server[0].check[0].misc_path: cannot run "/opt/misc 10.0.0.21": /opt/misc does not exist',
    'lb.toml:36 virtual_server[0].real_server[0].check[0].user: unknown user "misc" on this host: scripts run as "misc" would not start',
    'lb.toml:41 sync.auth_key_file: cannot read auth_key_file /etc/k/sync.key: ENOENT',
  ]);
});

test('a missing interface is a warning; --strict makes it an error', (t) => {
  const probe = fakeProbe({ interfaces: ['eth1', 'bond0'] });
  const loose = runHostChecks(source(), { probe });
  t.deepEqual(loose.map((i) => [i.path, i.severity]), [['vrrp_instance[0].interface', 'warning'], ['sync.interface', 'warning']]);
  t.is(loose[0]!.line, 11);
  const strict = runHostChecks(source(), { probe, strict: true });
  t.deepEqual(strict.map((i) => i.severity), ['error', 'error']);
});

test('kernel lb_kinds: libnftables missing is an error naming the package; IP forwarding off (NAT) and a routed DR real server are warnings', (t) => {
  const nat = runHostChecks(source(), { probe: fakeProbe({ libnftables: 'libnftables is not available (libnftables.so.1: cannot open shared object file); install the Debian package libnftables1 (pulled in by nftables): apt-get install nftables', forwarding: false }) });
  t.deepEqual(nat.map(formatHostIssue), [
    'lb.toml:25 virtual_server[0].lb_kind: lb_kind NAT forwards through nftables: libnftables is not available (libnftables.so.1: cannot open shared object file); install the Debian package libnftables1 (pulled in by nftables): apt-get install nftables',
    'lb.toml:25 virtual_server[0].lb_kind: warning: lb_kind NAT needs IP forwarding, but net.ipv4.ip_forward is 0 on this host (sysctl -w net.ipv4.ip_forward=1)',
  ]);
  const dr = parseConfigSource(TEXT.replace('port = 80\nquorum_up', 'port = 80\nlb_kind = "DR"\nquorum_up'), 'lb.toml');
  t.deepEqual(runHostChecks(dr, { probe: fakeProbe({ forwarding: false, gateways: { '10.0.0.21': '10.0.0.1' } }) }).map(formatHostIssue), [
    'lb.toml:33 virtual_server[0].real_server[0].address: warning: lb_kind DR needs real servers on-link, but 10.0.0.21 is reached via 10.0.0.1 on eth0 from this host',
  ], 'DR needs no forwarding');
  const proxy = parseConfigSource(TEXT.replace('port = 80\nquorum_up', 'port = 80\nlb_kind = "PROXY"\nquorum_up'), 'lb.toml');
  t.deepEqual(runHostChecks(proxy, { probe: fakeProbe({ libnftables: 'missing', forwarding: false }) }), [], 'PROXY needs none of it');
});

test('DR real servers: one route question for every address, however many virtual servers (no process per real server)', (t) => {
  const vs = Array.from({ length: 1000 }, (_, i) => `[[virtual_server]]\naddress = "10.0.0.10"\nport = ${20000 + i}\nlb_kind = "DR"\n\n[[virtual_server.real_server]]\naddress = "10.0.${1 + (i % 3)}.21"\nport = ${20000 + i}\n`).join('\n');
  const probe = fakeProbe({ gateways: { '10.0.3.21': '10.0.0.1' } });
  const issues = runHostChecks(parseConfigSource(`[global]\nrouter_id = "a"\n\n${vs}`, 'big.toml'), { probe });
  t.deepEqual(probe.routeQuestions, [['10.0.1.21', '10.0.2.21', '10.0.3.21']]);
  t.is(issues.length, 333, 'every real server reached via the gateway is still reported');
});

test('HOST_CHECKS is one list; a check that throws is reported, not fatal', (t) => {
  t.deepEqual(HOST_CHECKS.map((c) => c.name), ['sync key file', 'sync key exposure', 'scripts', 'users', 'script security', 'interfaces', 'kernel data plane', 'BIRD']);
  const boom = { name: 'boom', run: () => { throw new Error('kaput'); } };
  const issues = runHostChecks(source(), { probe: fakeProbe(), checks: [...HOST_CHECKS, boom] });
  t.is(issues.length, 1);
  t.regex(issues[0]!.message, /host check "boom" failed: kaput/);
});

test('resolveCommand finds files as spawn would: paths, PATH lookup, not executable, directories', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-host-'));
  const exe = join(dir, 'ok.sh');
  const plain = join(dir, 'plain.sh');
  writeFileSync(exe, '#!/bin/sh\nexit 0\n');
  chmodSync(exe, 0o755);
  writeFileSync(plain, '#!/bin/sh\nexit 0\n');
  chmodSync(plain, 0o644);
  mkdirSync(join(dir, 'sub'));
  t.deepEqual(resolveCommand(exe), { ok: true, path: exe });
  t.deepEqual(resolveCommand('./ok.sh', {}, dir), { ok: true, path: exe });
  t.deepEqual(resolveCommand('ok.sh', { PATH: `/nonexistent:${dir}` }), { ok: true, path: exe });
  t.deepEqual(resolveCommand('ok.sh', { PATH: '/nonexistent' }), { ok: false, error: '"ok.sh" is not in PATH' });
  t.deepEqual(resolveCommand(join(dir, 'nope')), { ok: false, error: `${join(dir, 'nope')} does not exist` });
  t.deepEqual(resolveCommand(join(dir, 'sub')), { ok: false, error: `${join(dir, 'sub')} is not a regular file` });
  // root may execute a file only when some x bit is set, like everyone else.
  t.deepEqual(resolveCommand(plain), { ok: false, error: `${plain} is not executable` });
  t.deepEqual(resolveCommand('plain.sh', { PATH: dir }), { ok: false, error: `${plain} is not executable` });
  t.true(resolveCommand('sh').ok);
});

test('the system probe: sync key files, users and interfaces of this host', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-host-'));
  const key = join(dir, 'sync.key');
  writeFileSync(key, 'secret-0123456789\n');
  chmodSync(key, 0o600);
  const probe = systemHostProbe();
  const sync = { interface: 'lo', instance: 'VI_1', group: '224.0.0.81', port: 8848, ttl: 1, sync_id: 1, unicast_peer: [] };
  t.is(probe.syncKey({ ...sync, auth_key_file: key }), undefined);
  t.regex(probe.syncKey({ ...sync, auth_key_file: join(dir, 'none') }) ?? '', /cannot read auth_key_file .*none: ENOENT/);
  chmodSync(key, 0o644);
  t.regex(probe.syncKey({ ...sync, auth_key_file: key }) ?? '', /accessible by other users \(mode 0644\)/);
  t.is(probe.user('root'), undefined);
  t.is(probe.user('0:0'), undefined);
  t.is(probe.user('kt-no-such-user-x'), 'unknown user "kt-no-such-user-x"');
  t.is(probe.user('root:kt-no-such-group-x'), 'unknown group "kt-no-such-group-x"');
  t.true(probe.interfaceExists('lo'));
  t.false(probe.interfaceExists('kt-nonexistent0'));
  t.false(probe.interfaceExists('../lo'));
});

test('[bgp]: BIRD missing is an error at the [bgp] line; a missing track_interface a warning', (t) => {
  const text = `[[virtual_server]]
address = "10.99.0.10"
port = 80

[bgp]
local_as = 65001
track_interface = ["eth0", "eth9"]

[[bgp.peer]]
address = "10.78.0.1"
remote_as = 65000
`;
  const src = parseConfigSource(text, 'bgp.toml');
  const problem = '[bgp] needs BIRD 2, and bird is not installed: install the Debian package bird2 (apt-get install bird2)';
  const issues = runHostChecks(src, { probe: fakeProbe({ birdProblem: problem }) });
  t.deepEqual(issues.map(formatHostIssue), [
    `bgp.toml:5 bgp: ${problem}`,
    'bgp.toml:7 bgp.track_interface[1]: warning: interface "eth9" does not exist on this host',
  ]);
  t.deepEqual(runHostChecks(src, { probe: fakeProbe() }).map((i) => i.severity), ['warning']);
  // Without [bgp] the probe is never asked about BIRD.
  t.deepEqual(runHostChecks(parseConfigSource('', 'x.toml'), { probe: { ...fakeProbe(), bird: () => { throw new Error('asked'); } } }), []);
});
