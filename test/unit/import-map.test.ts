// The mappers' individual rules, on small in-memory inputs.
import test from 'ava';
import { posix } from 'node:path';
import type { Fields } from '../../src/config/schema-types.js';
import { commandLine, Draft, Messages, needsShell, pending } from '../../src/import/draft.js';
import { importConfig } from '../../src/import/index.js';
import { expandAddressRange } from '../../src/import/keepalived-map.js';
import { splitCommand } from '../../src/util/exec.js';
import type { ImportFs, KNode } from '../../src/import/types.js';

function run(text: string, from?: 'keepalived' | 'ldirectord') {
  const fs: ImportFs = { read: (p) => (p === '/x/in.conf' ? text : undefined), list: () => undefined, display: (p) => posix.basename(p) };
  return importConfig('/x/in.conf', fs, { ...(from ? { from } : {}), defaultConfigId: 'h', env: {} });
}
const node = (keyword: string, args: string[], raw = [keyword, ...args].join(' ')): KNode => ({ keyword, args, raw, loc: { file: 'f', line: 7 } });

test('a pending key is emitted once the schema has it and accepts the value, reported otherwise', (t) => {
  const rule = pending<Draft>('use_vmac', () => ['vrrp.51', true], 'not yet');
  const without = new Draft({}, { file: 'f', line: 1 }, 'i');
  const m1 = new Messages();
  rule(node('use_vmac', ['vrrp.51']), without, m1);
  t.false(without.has('use_vmac'));
  t.deepEqual(m1.list.map((m) => `${m.loc.line} ${m.kind}: ${m.text}`), ['7 unsupported: use_vmac: not yet; not imported']);
  // A schema where use_vmac is a boolean takes the second candidate; one with a string the first.
  const bool: Fields = { use_vmac: { type: { kind: 'boolean' }, doc: '', keepalived: 'use_vmac' } };
  const str: Fields = { use_vmac: { type: { kind: 'string', minLength: 1 }, doc: '', keepalived: 'use_vmac' } };
  for (const [fields, want] of [[bool, true], [str, 'vrrp.51']] as const) {
    const d = new Draft(fields, { file: 'f', line: 1 }, 'i');
    const m = new Messages();
    rule(node('use_vmac', ['vrrp.51']), d, m);
    t.is(d.get('use_vmac'), want);
    t.deepEqual(m.list, []);
  }
});

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
