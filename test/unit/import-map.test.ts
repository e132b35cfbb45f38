// The mappers' individual rules, on small in-memory inputs.
import test from 'ava';
import { posix } from 'node:path';
import { parseConfig } from '../../src/config/index.js';
import { commandLine, Messages, needsShell } from '../../src/import/draft.js';
import { importConfig } from '../../src/import/index.js';
import { expandAddressRange } from '../../src/import/keepalived-map.js';
import { splitCommand } from '../../src/util/exec.js';
import type { ImportFs, KNode } from '../../src/import/types.js';

function run(text: string, from?: 'keepalived' | 'ldirectord') {
  const fs: ImportFs = { read: (p) => (p === '/x/in.conf' ? text : undefined), list: () => undefined, display: (p) => posix.basename(p) };
  return importConfig('/x/in.conf', fs, { ...(from ? { from } : {}), defaultConfigId: 'h', env: {} });
}
const node = (keyword: string, args: string[], raw = [keyword, ...args].join(' ')): KNode => ({ keyword, args, raw, loc: { file: 'f', line: 7 } });

test('shell syntax is wrapped in /bin/sh -c so the argv is what the shell would run', (t) => {
  t.false(needsShell('/usr/bin/check --port 80 "a b"'));
  t.true(needsShell('</dev/tcp/127.0.0.1/80'));
  t.true(needsShell("pgrep nginx || exit 1"));
  t.false(needsShell("echo 'a|b'"));
  const m = new Messages();
  const line = commandLine("test -f /run/x && echo 'it''s'", node('script', []), m);
  t.deepEqual(splitCommand(line), ['/bin/sh', '-c', "test -f /run/x && echo 'it''s'"]);
  t.is(m.list[0]!.kind, 'changed');
});

test('address ranges of virtual_server_group entries', (t) => {
  t.deepEqual(expandAddressRange('192.168.200.3-5'), ['192.168.200.3', '192.168.200.4', '192.168.200.5']);
  t.deepEqual(expandAddressRange('10.0.0.254-10.0.1.1'), ['10.0.0.254', '10.0.0.255', '10.0.1.0', '10.0.1.1']);
  t.deepEqual(expandAddressRange('ae00::2-4'), ['ae00::2', 'ae00::3', 'ae00::4']);
  t.deepEqual(expandAddressRange('10.1.1.8/30'), ['10.1.1.8', '10.1.1.9', '10.1.1.10', '10.1.1.11']);
  t.is(expandAddressRange('10.0.0.0/16'), undefined);
  t.is(expandAddressRange('10.0.0.9-3'), undefined);
  t.deepEqual(expandAddressRange('10.0.0.9-9'), ['10.0.0.9'], 'a range of one address');
  t.deepEqual(expandAddressRange('10.1.1.9/30'), ['10.1.1.8', '10.1.1.9', '10.1.1.10', '10.1.1.11'], 'host bits set: its network, as keepalived reads it');
});

test('keepalived virtual_server_group -> one [[virtual_server_group]] (ranges, IPv6, fwmarks) served by each virtual server naming it; one pool per virtual server', (t) => {
  const r = run(`virtual_server_group G {
  10.0.0.1 80
  10.0.0.2-4 80
  10.0.0.9/30 443
  10.0.0.5
  fd00::1 80
}
virtual_server_group V6 {
  fd00::1-3 53
  fwmark 9 inet6
}
virtual_server group G {
  lb_kind DR
  protocol TCP
  real_server 10.1.0.1 {
    TCP_CHECK {
      connect_port 80
    }
  }
}
virtual_server group G {
  lb_kind DR
  protocol UDP
  real_server 10.1.0.1 {
  }
}
virtual_server group V6 {
  protocol UDP
  real_server fd00::21 53 {
  }
}
virtual_server group NOPE {
  real_server 10.1.0.1 80 {
  }
}
`);
  const lines = r.messages.map((m) => `${m.loc.line} ${m.kind}: ${m.text}`);
  t.true(lines.some((l) => /^5 unsupported: 10\.0\.0\.5: an entry without a port/.test(l)), lines.join('\n'));
  t.true(lines.some((l) => /^6 unsupported: fd00::1: IPv6 in a virtual_server_group whose first entry is IPv4/.test(l)), lines.join('\n'));
  t.true(lines.some((l) => /^32 error: virtual_server group NOPE: no virtual_server_group of that name/.test(l)), lines.join('\n'));
  const c = parseConfig(r.toml, 'out.toml');
  t.deepEqual(c.virtual_server_group.map((g) => [g.name, g.members]), [
    ['G', ['10.0.0.1:80', '10.0.0.2-4:80', '10.0.0.8/30:443']],
    ['V6', ['[fd00::1-3]:53', 'fwmark6:9']],
  ], 'once per group, a network with host bits read as its network (keepalived)');
  t.deepEqual(c.virtual_server.map((v) => [v.key, v.members.length, v.real_server.length]), [
    ['tcp/group:G', 8, 1], ['udp/group:G', 8, 1], ['udp/group:V6', 4, 1],
  ], 'one virtual server (one pool, one set of checks) per group and protocol, not one per member');
});

test('keepalived scheduler flags -> sched_flags; flag-3 is reported', (t) => {
  const r = run(`virtual_server 10.0.0.1 80 {
  lb_algo mh
  mh-port
  flag-1
  flag-3
  real_server 10.1.0.1 80 {
  }
}
`);
  const c = parseConfig(r.toml, 'out.toml');
  t.deepEqual(c.virtual_server[0]!.sched_flags, ['mh-port', 'flag-1']);
  t.true(r.messages.some((m) => m.loc.line === 5 && m.kind === 'unsupported' && m.text.startsWith('flag-3')), r.messages.map((m) => m.text).join('\n'));
});

test('keepalived: VIPs of the other family move to excluded; IPv6 gets version 3; dev on another interface is dropped', (t) => {
  const r = run(`vrrp_instance V {
  interface eth0
  virtual_router_id 9
  virtual_ipaddress {
    fd00::1/64
    10.0.0.1/24
    fd00::2/64 dev eth1
  }
}`);
  t.true(r.ok, r.messages.map((m) => m.text).join('\n'));
  t.regex(r.toml, /version = 3/);
  t.regex(r.toml, /virtual_ipaddress = \["fd00::1\/64"\]/);
  t.regex(r.toml, /virtual_ipaddress_excluded = \["10\.0\.0\.1\/24"\]/);
  t.deepEqual(r.messages.map((m) => `${m.loc.line} ${m.kind}`), ['4 changed', '7 unsupported']);
});

test('keepalived: lb_kind TUN is reported and imported as NAT; a real server with another method is reported', (t) => {
  const r = run(`virtual_server 10.0.0.1 80 {
  lb_kind TUN
  real_server 10.0.1.1 80 {
    lvs_method DR
  }
}`);
  t.true(r.ok);
  t.notRegex(r.toml, /^lb_kind/m);
  t.deepEqual(r.messages.map((m) => `${m.loc.line} ${m.kind}`), ['2 unsupported', '4 unsupported']);
  t.regex(r.messages[0]!.text, /IP-in-IP/);
});

test('keepalived: real-server check defaults go into its checks; a url without path is reported; regexes keep their escapes', (t) => {
  const r = run(`virtual_server 10.0.0.1 80 {
  real_server 10.0.1.1 80 {
    retry 4
    virtualhost rs.example
    HTTP_GET {
      url {
        path /a
        regex "^\\\\d+ ok$"
      }
      url {
        digest 00112233445566778899aabbccddeeff
      }
    }
    TCP_CHECK {
      retry 1
    }
  }
}`);
  t.true(r.ok, r.messages.map((m) => m.text).join('\n'));
  t.regex(r.toml, /path = "\/a"\nregex = "\^\\\\d\+ ok\$"\nretry = 4\nvirtualhost = "rs.example"/);
  t.regex(r.toml, /type = "TCP_CHECK"\nretry = 1\n/);
  t.deepEqual(r.messages.map((m) => `${m.loc.line} ${m.kind}: ${m.text}`), ['10 error: url without a path; "/" is checked']);
});

test('keepalived: unknown keywords are errors with a suggestion, and do not stop the import', (t) => {
  const r = run('vrrp_instance V {\n  interface eth0\n  virtual_router_id 9\n  priorty 50\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n');
  t.true(r.ok);
  t.deepEqual(r.messages.map((m) => `${m.loc.line}: ${m.text}`), ['4: unknown keyword "priorty" in vrrp_instance; did you mean "priority"? (keepalived ignores it too)']);
});

test('keepalived: a value the schema refuses makes the import fail, reported against the original line', (t) => {
  const r = run('vrrp_instance V {\n  interface eth0\n  virtual_router_id 9\n  advert_int 0.5\n  version 2\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n');
  t.false(r.ok);
  t.deepEqual(r.messages.map((m) => `${m.loc.line} ${m.kind}`), ['4 error']);
  t.regex(r.messages[0]!.text, /the imported config fails check: vrrp_instance\[0\]\.advert_int: must be a whole number of seconds/);
});

test('ldirectord: gate forces the virtual port, ranges expand, thresholds, checktype off, fallbackcommand, external', (t) => {
  const r = run(`checkinterval=3
virtual=10.0.0.1:80
    real=10.0.1.1->10.0.1.2:8080 gate 5 "<l:10>" "<u:100>"
    checktype=off
virtual=10.0.0.1:81
    real=10.0.1.3:81 masq
    checktype=external
    checkcommand="/usr/local/bin/chk"
    fallbackcommand="/usr/local/bin/fb"
`, 'ldirectord');
  t.true(r.ok, r.messages.map((m) => m.text).join('\n'));
  t.regex(r.toml, /address = "10\.0\.1\.1"\nweight = 0\nlthreshold = 10\nuthreshold = 100/);
  t.regex(r.toml, /address = "10\.0\.1\.2"\nweight = 0/);
  t.regex(r.toml, /misc_path = "\/usr\/local\/bin\/chk 10\.0\.0\.1 81 10\.0\.1\.3 81"\nmisc_timeout = 5/);
  t.regex(r.toml, /quorum_down = "\/usr\/local\/bin\/fb start 10\.0\.0\.1:81 tcp"\nquorum_up = "\/usr\/local\/bin\/fb stop 10\.0\.0\.1:81 tcp"/);
  t.regex(r.toml, /delay_loop = 3\nretry = 0\ndelay_before_retry = 3\nwarmup = 0/);
  const texts = r.messages.map((m) => `${m.loc.line} ${m.kind}: ${m.text}`);
  t.true(texts.some((x) => /^3 changed: real 10\.0\.1\.1:8080 with gate: .* virtual port 80/.test(x)), texts.join('\n'));
  t.true(texts.some((x) => /^4 changed: checktype = off/.test(x)));
});

test('ldirectord: unknown directives and unresolvable names are reported; nothing is guessed', (t) => {
  const r = run('virtual=www.example.com:http\n    real=10.0.1.1:80 masq\nchecktimout=3\n', 'ldirectord');
  t.deepEqual(r.messages.map((m) => `${m.loc.line} ${m.kind}`), ['1 unsupported', '3 error']);
  t.regex(r.messages[1]!.text, /did you mean "checktimeout"/);
});

test('keepalived: an address written with a prefix where an address is expected loses the prefix, with a note', (t) => {
  const r = run('vrrp_instance V {\n  interface eth0\n  virtual_router_id 9\n  unicast_src_ip 10.0.0.11/24\n  unicast_peer {\n    10.0.0.12/24\n  }\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n');
  t.true(r.ok);
  t.regex(r.toml, /unicast_src_ip = "10\.0\.0\.11"\nunicast_peer = \["10\.0\.0\.12"\]/);
  t.deepEqual(r.messages.map((m) => `${m.loc.line} ${m.kind}`), ['4 changed', '6 changed']);
});

const notes = (r: ReturnType<typeof run>) => r.messages.map((m) => `${m.loc.line} ${m.kind}: ${m.text}`);

test('keepalived: e-mail alerts map to the global keys; every word of notification_email is a recipient; bare user names are left out', (t) => {
  const r = run(`global_defs {
  notification_email {
    ops@example.com noc@example.com
    acassen
    "Duty Phone <duty@example.com>"
  }
  notification_email_from lb1@example.com
  smtp_server 192.0.2.25 2525
  smtp_helo_name lb1.example.com
  smtp_connect_timeout 15
  smtp_alert
  smtp_alert_checker off
  no_email_faults
  no_checker_emails
}
vrrp_instance V {
  interface eth0
  virtual_router_id 9
  smtp_alert off
  virtual_ipaddress {
    10.0.0.1
  }
}
virtual_server 10.0.0.1 80 {
  smtp_alert
  real_server 10.0.1.1 80 {
    smtp_alert no
  }
}`);
  t.true(r.ok, notes(r).join('\n'));
  const c = parseConfig(r.toml, 'x');
  t.deepEqual(c.global.notification_email, ['ops@example.com', 'noc@example.com', 'Duty Phone <duty@example.com>']);
  t.like(c.global, { notification_email_from: 'lb1@example.com', smtp_server: '192.0.2.25:2525', smtp_helo_name: 'lb1.example.com', smtp_connect_timeout: 15, smtp_alert: true, smtp_alert_checker: false, no_email_faults: true });
  t.false(c.vrrp_instance[0]!.smtp_alert);
  t.true(c.virtual_server[0]!.smtp_alert);
  t.false(c.virtual_server[0]!.real_server[0]!.smtp_alert);
  t.deepEqual(notes(r), [
    '4 unsupported: notification_email "acassen": keepalive-ts sends to full addresses only (user@domain or "Name <user@domain>"); address not imported',
    '14 ignored: no_checker_emails: keepalive-ts mails when a real server goes up or down, never for one checker of it: what no_checker_emails asks for',
  ]);
  t.regex(run('global_defs {\n  smtp_server fd00::25 25\n}\n').toml, /smtp_server = "\[fd00::25\]:25"/);
  t.regex(run('global_defs {\n  smtp_server mail.example.com\n}\n').toml, /smtp_server = "mail\.example\.com"/);
});

test('keepalived: use_vmac with or without a name; a MAC of its own is reported; vmac_xmit_base follows keepalived', (t) => {
  const inst = (name: string, vrid: number, lines: string) => `vrrp_instance ${name} {\n  interface eth0\n  virtual_router_id ${vrid}\n${lines}  virtual_ipaddress {\n    10.0.0.${vrid}\n  }\n}\n`;
  const r = run(inst('A', 1, '  use_vmac\n') + inst('B', 2, '  use_vmac vmac.b\n') + inst('C', 3, '  use_vmac name vmac.c 02:00:00:00:00:03\n')
    + inst('D', 4, '  vmac_xmit_base\n') + inst('E', 5, '  use_vmac\n  unicast_peer {\n    10.0.0.99\n  }\n'));
  t.true(r.ok, notes(r).join('\n'));
  const c = parseConfig(r.toml, 'x');
  t.deepEqual(c.vrrp_instance.map((i) => [i.vmac_ifname, i.vmac_xmit_base]), [['vrrp.1', false], ['vmac.b', false], ['vmac.c', false], [null, false], ['vrrp.5', true]]);
  const n = notes(r);
  t.true(n.some((x) => /^20 unsupported: use_vmac 02:00:00:00:00:03: a MAC address of your own/.test(x)), n.join('\n'));
  t.true(n.some((x) => /^28 ignored: vmac_xmit_base without use_vmac/.test(x)), n.join('\n'));
  t.true(n.some((x) => /^36 changed: use_vmac with unicast peers: vmac_xmit_base = true/.test(x)), n.join('\n'));
  t.is(n.length, 3, n.join('\n'));
});

test('keepalived: vrrp_track_process becomes [[vrrp_track_process]]; instance track_process keeps weights; reverse only where keepalive-ts has it', (t) => {
  const r = run(`vrrp_track_process nginx {
  process nginx -g "daemon off;"
  param_match
  weight -20 reverse
  quorum 2
  quorum_max 4
  delay 0.5
  terminate_delay 2
}
vrrp_track_process haproxy {
  process haproxy
  full_command
  weight 10
}
vrrp_instance V {
  interface eth0
  virtual_router_id 9
  track_process {
    nginx weight -30 reverse
    haproxy weight 5 reverse
    haproxy
  }
  virtual_ipaddress {
    10.0.0.1
  }
}
vrrp_sync_group G {
  group {
    V
  }
  track_process {
    nginx
  }
}`);
  t.true(r.ok, notes(r).join('\n'));
  const c = parseConfig(r.toml, 'x');
  t.like(c.vrrp_track_process[0], { name: 'nginx', process: ['nginx', '-g', 'daemon off;'], param_match: 'exact', weight: -20, reverse: true, quorum: 2, quorum_max: 4, delay: 0.5, terminate_delay: 2, fork_delay: 0.5 });
  t.like(c.vrrp_track_process[1], { name: 'haproxy', process: ['haproxy'], full_command: true, weight: 10, reverse: false });
  t.deepEqual(c.vrrp_instance[0]!.track_process, [{ name: 'nginx', weight: -30 }, { name: 'haproxy', weight: 10 }]);
  t.deepEqual(notes(r), [
    '20 unsupported: track_process haproxy weight 5 reverse: keepalive-ts takes reverse from the vrrp_track_process (weight N reverse there), not per instance; entry not imported',
    '31 unsupported: track_process: track_process on a sync group is not supported; put it on each member instance',
  ]);
});

test('keepalived: route, rule and static address lines the config parser refuses are left out at their line; the rest imports', (t) => {
  const r = run(`global_defs {
  default_interface bond0
}
static_ipaddress {
  192.0.2.10/24 dev eth1 scope link
  192.0.2.11/24
  192.0.2.12/24 dev eth1 peer 192.0.2.1
}
static_routes {
  10.99.0.0/16 via 10.0.0.254 dev eth0
  10.98.0.0/16 via 10.0.0.254 dev eth0 mtu 1400
}
static_rules {
  from 10.0.0.0/24 table 100
  to 10.1.0./24 table 100
}
vrrp_instance V {
  interface eth0
  virtual_router_id 9
  virtual_ipaddress {
    10.0.0.1/24
  }
  virtual_routes {
    192.168.113.0/24 via 10.0.0.252 or 10.0.0.253
    blackhole 192.168.114.0/24
    0.0.0.0/0 gw 10.0.0.1 table 100
  }
  virtual_rules {
    from 10.0.0.0/24 table 100 priority 100
    from all fwmark 1 table 5 uidrange 1000-2000
  }
}`);
  t.true(r.ok, notes(r).join('\n'));
  const c = parseConfig(r.toml, 'x');
  t.deepEqual(c.global.static_ipaddress, ['192.0.2.10/24 dev eth1 scope link', '192.0.2.11/24 dev bond0']);
  t.deepEqual(c.global.static_routes, ['10.99.0.0/16 via 10.0.0.254 dev eth0']);
  t.deepEqual(c.global.static_rules, ['from 10.0.0.0/24 table 100']);
  t.deepEqual(c.vrrp_instance[0]!.virtual_routes, ['blackhole 192.168.114.0/24', '0.0.0.0/0 gw 10.0.0.1 table 100']);
  t.deepEqual(c.vrrp_instance[0]!.virtual_rules, ['from 10.0.0.0/24 table 100 priority 100']);
  t.deepEqual(notes(r), [
    '6 changed: static_ipaddress 192.0.2.11/24: no dev; keepalived puts it on default_interface bond0, so the import writes "dev bond0"',
    '7 unsupported: static_ipaddress "192.0.2.12/24 dev eth1 peer 192.0.2.1": "peer" is not supported in static_ipaddress by keepalive-ts; not imported',
    '11 unsupported: static_routes "10.98.0.0/16 via 10.0.0.254 dev eth0 mtu 1400": "mtu" is not supported in routes by keepalive-ts; not imported',
    '15 error: static_rules "to 10.1.0./24 table 100": to must be an address with an optional /prefix, got "10.1.0./24"; not imported',
    '24 unsupported: virtual_routes "192.168.113.0/24 via 10.0.0.252 or 10.0.0.253": "or" is not supported in routes by keepalive-ts; not imported',
    '30 unsupported: virtual_rules "from all fwmark 1 table 5 uidrange 1000-2000": "uidrange" is not supported in rules by keepalive-ts; not imported',
  ]);
  // keepalived's own default interface when default_interface is not given.
  t.regex(run('static_ipaddress {\n  192.0.2.11/24\n}\n').toml, /static_ipaddress = \["192\.0\.2\.11\/24 dev eth0"\]/);
});

test('ldirectord: emailalert, emailalertfrom and smtp map to the global e-mail keys; without smtp the local MTA is used', (t) => {
  const r = run(`emailalert="ops@example.com, noc@example.com, root"
emailalertfrom="LVS <lvs@example.com>"
virtual=10.0.0.1:80
    real=10.0.1.1:80 masq
`, 'ldirectord');
  t.true(r.ok, notes(r).join('\n'));
  const c = parseConfig(r.toml, 'x');
  t.deepEqual(c.global.notification_email, ['ops@example.com', 'noc@example.com']);
  t.is(c.global.notification_email_from, 'LVS <lvs@example.com>');
  t.is(c.global.smtp_server, '127.0.0.1');
  t.true(c.virtual_server[0]!.real_server[0]!.smtp_alert);
  const n = notes(r);
  t.true(n.includes('1 unsupported: emailalert "root": keepalive-ts sends to full addresses only (user@domain or "Name <user@domain>"); address not imported'), n.join('\n'));
  t.true(n.some((x) => /^1 changed: emailalert without smtp=: .* smtp_server = "127\.0\.0\.1"/.test(x)), n.join('\n'));
  const relay = run('emailalert=ops@example.com\nsmtp=mail.example.com:587\nvirtual=10.0.0.1:80\n    real=10.0.1.1:80 masq\n', 'ldirectord');
  t.true(relay.ok, notes(relay).join('\n'));
  t.regex(relay.toml, /smtp_server = "mail\.example\.com:587"/);
  t.false(notes(relay).some((x) => /emailalert without smtp/.test(x)));
  const perService = run('virtual=10.0.0.1:80\n    real=10.0.1.1:80 masq\n    smtp=mail.example.com\n', 'ldirectord');
  t.true(notes(perService).includes('3 unsupported: smtp in a virtual section: per-service alert settings are not supported (set them globally); not imported'), notes(perService).join('\n'));
  t.notRegex(perService.toml, /smtp_server/);
});

test('keepalived: vrrp_rt_priority and vrrp_rlimit_rttime (and the old vrrp_rlimit_rtime) map to global; checker_rt_priority is ignored', (t) => {
  const vi = 'vrrp_instance V {\n  interface eth0\n  virtual_router_id 9\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n';
  const r = run(`global_defs {\n  vrrp_rt_priority 40\n  vrrp_rlimit_rttime 20000\n  checker_rt_priority 30\n}\n${vi}`);
  t.true(r.ok, JSON.stringify(r.messages));
  const c = parseConfig(r.toml, 'out.toml');
  t.is(c.global.vrrp_rt_priority, 40);
  t.is(c.global.vrrp_rlimit_rttime, 20000);
  t.true(r.messages.some((m) => m.kind === 'ignored' && m.loc.line === 4), JSON.stringify(r.messages));
  const old = run(`global_defs {\n  vrrp_rlimit_rtime 3000\n}\n${vi}`);
  t.is(parseConfig(old.toml, 'out.toml').global.vrrp_rlimit_rttime, 3000);
  // Without the key: keepalive-ts' default (SCHED_RR 1), not keepalived's (off).
  t.is(parseConfig(run(vi).toml, 'out.toml').global.vrrp_rt_priority, 1);
  // Out of keepalived's range: an error, nothing imported for the key.
  const bad = run(`global_defs {\n  vrrp_rt_priority 120\n}\n${vi}`);
  t.true(bad.messages.some((m) => m.kind === 'error' && /vrrp_rt_priority/.test(m.text)));
});
