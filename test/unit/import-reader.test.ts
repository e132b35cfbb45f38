// The keepalived.conf reader (tokenizer + statement tree), over an in-memory file tree.
import test from 'ava';
import { posix } from 'node:path';
import { decomment, expandBraces, readKeepalived, splitWords } from '../../src/import/keepalived-reader.js';
import { detectFormat } from '../../src/import/index.js';
import { tomlString, tomlValue, writeToml } from '../../src/import/toml-writer.js';
import type { ImportFs, KNode } from '../../src/import/types.js';

function memFs(files: Record<string, string>): ImportFs {
  return {
    read: (p) => files[p],
    list: (dir) => {
      const prefix = dir.endsWith('/') ? dir : `${dir}/`;
      const names = new Set<string>();
      for (const f of Object.keys(files)) if (f.startsWith(prefix)) names.add(f.slice(prefix.length).split('/')[0]!);
      return names.size > 0 ? [...names] : undefined;
    },
    display: (p) => posix.relative('/etc/keepalived', p),
  };
}

const opts = { configId: 'lb1', configIdGiven: true, env: { SITE: 'paris' } };
const read = (files: Record<string, string>, o = opts) => readKeepalived('/etc/keepalived/keepalived.conf', memFs(files), o);
/** keyword args... [block] as compact text. */
const show = (nodes: readonly KNode[]): string =>
  nodes.map((n) => `${[n.keyword, ...n.args].join(' ')}@${n.loc.line}${n.block ? `{${show(n.block)}}` : ''}`).join(';');

test('comments (# and !) end a line outside quotes; \\# escapes; a trailing \\ continues', (t) => {
  t.deepEqual(decomment('  priority 100 # the backup'), { text: 'priority 100', continued: false });
  t.deepEqual(decomment('script "echo #1 ! x" ! note'), { text: 'script "echo #1 ! x"', continued: false });
  t.deepEqual(decomment('label a\\#b'), { text: 'label a#b', continued: false });
  t.deepEqual(decomment('$X=a \\'), { text: '$X=a', continued: true });
});

test('words: quotes group (and are removed), braces are tokens even when attached', (t) => {
  t.deepEqual(splitWords('notify_master "/bin/n.sh  MASTER" root'), [{ word: 'notify_master' }, { word: '/bin/n.sh  MASTER' }, { word: 'root' }]);
  t.deepEqual(splitWords('global_defs{'), [{ word: 'global_defs' }, { brace: '{' }]);
  t.deepEqual(splitWords("script \"bash -c '</dev/tcp/127.0.0.1/80'\""), [{ word: 'script' }, { word: "bash -c '</dev/tcp/127.0.0.1/80'" }]);
});

test('blocks: on the keyword line, on the next line, on one line; every statement has its line', (t) => {
  const r = read({
    '/etc/keepalived/keepalived.conf': [
      'vrrp_instance VI_1 {',
      '  track_script { chk_a }',
      '  virtual_ipaddress',
      '  {',
      '    10.0.0.50/24 dev eth0',
      '  }',
      '}',
    ].join('\n'),
  });
  t.deepEqual(r.messages, []);
  t.is(show(r.nodes), 'vrrp_instance VI_1@1{track_script@2{chk_a@2};virtual_ipaddress@3{10.0.0.50/24 dev eth0@5}}');
});

test('unbalanced braces are reported with their line', (t) => {
  const extra = read({ '/etc/keepalived/keepalived.conf': 'global_defs {\n router_id a\n}\n}\n' });
  t.deepEqual(extra.messages.map((m) => [m.loc.line, m.text]), [[4, "extra '}' ignored"]]);
  const open = read({ '/etc/keepalived/keepalived.conf': 'global_defs {\n router_id a\n' });
  t.deepEqual(open.messages.map((m) => [m.loc.line, m.text]), [[1, "'{' opened here is never closed"]]);
});

test('include: globs relative to the including file, sorted, braces expanded; nested includes keep their own file:line', (t) => {
  const r = read({
    '/etc/keepalived/keepalived.conf': 'global_defs {\n router_id a\n}\ninclude conf.d/*.conf\ninclude extra/{x,y}.inc\n',
    '/etc/keepalived/conf.d/20-b.conf': 'vrrp_script b {\n script /bin/true\n}\n',
    '/etc/keepalived/conf.d/10-a.conf': 'include ../scripts/common\n',
    '/etc/keepalived/conf.d/README': 'not included\n',
    '/etc/keepalived/scripts/common': '\n\nvrrp_script common {\n script /bin/true\n}\n',
    '/etc/keepalived/extra/y.inc': 'vrrp_script y {\n script /bin/true\n}\n',
  });
  t.deepEqual(r.messages, []); // {x,y}: x.inc does not exist, y.inc does: a match, no message
  t.deepEqual(r.nodes.map((n) => `${[n.keyword, ...n.args].join(' ')} ${n.loc.file}:${n.loc.line}`), [
    'global_defs keepalived.conf:1',
    'vrrp_script common scripts/common:3',
    'vrrp_script b conf.d/20-b.conf:1',
    'vrrp_script y extra/y.inc:1',
  ]);
  t.deepEqual(r.files, ['keepalived.conf', 'conf.d/10-a.conf', 'scripts/common', 'conf.d/20-b.conf', 'extra/y.inc']);
});

test('include of nothing, and an include loop, are reported', (t) => {
  const r = read({
    '/etc/keepalived/keepalived.conf': 'include missing/*.conf\ninclude self.conf\n',
    '/etc/keepalived/self.conf': 'include self.conf\n',
  });
  t.deepEqual(r.messages.map((m) => `${m.loc.file}:${m.loc.line} ${m.kind}`), ['keepalived.conf:1 error', 'self.conf:1 error']);
  t.regex(r.messages[0]!.text, /no file matches/);
  t.regex(r.messages[1]!.text, /loops back/);
});

test('@ID lines count for the config id only; @^ID for every other id', (t) => {
  const conf = 'global_defs {\n@lb1 router_id one\n@lb2 router_id two\n@^lb1 smtp_server 10.0.0.1\n}\n';
  t.is(show(read({ '/etc/keepalived/keepalived.conf': conf }).nodes), 'global_defs@1{router_id one@2}');
  const other = read({ '/etc/keepalived/keepalived.conf': conf }, { ...opts, configId: 'lb2', configIdGiven: false });
  t.is(show(other.nodes), 'global_defs@1{router_id two@3;smtp_server 10.0.0.1@4}');
  // Without --config-id the first conditional line says which id was used.
  t.is(other.messages.length, 1);
  t.regex(other.messages[0]!.text, /config id "lb2"/);
});

test('$NAME definitions: $X and ${X}, recursive, predefined, multi-line with definitions inside', (t) => {
  const conf = [
    '$PRIO=150',
    '$BASE=10.0.${NET}',
    '$NET=7',
    '$INST= \\',
    'vrrp_instance VI_${N} { \\',
    '  priority $PRIO \\',
    '  virtual_ipaddress { \\',
    '    ${BASE}.${N}/24 \\',
    '  } \\',
    '}',
    '$N=1',
    '$INST',
    '$N=2',
    '$INST',
    'global_defs {',
    '  router_id ${_ENV SITE}-${_INSTANCE}',
    '  notification_email_from "lb${_HASH}1" lb${_HASH}2',
    '  smtp_helo_name $UNDEFINED',
    '}',
  ].join('\n');
  const r = read({ '/etc/keepalived/keepalived.conf': conf });
  t.deepEqual(r.messages, []);
  t.is(show(r.nodes), [
    'vrrp_instance VI_1@12{priority 150@12;virtual_ipaddress@12{10.0.7.1/24@12}}',
    'vrrp_instance VI_2@14{priority 150@14;virtual_ipaddress@14{10.0.7.2/24@14}}',
    'global_defs@15{router_id paris-lb1@16;notification_email_from lb#1 lb@17;smtp_helo_name $UNDEFINED@18}',
  ].join(';'));
});

test('~SEQ, ~SEQx and ~LST repeat the rest of the line', (t) => {
  const conf = 'vrrp_instance V {\n virtual_ipaddress {\n~SEQ(N, 1, 3) 10.0.0.${N}\n~SEQx(H, 10, 10, 30) fd00::${H}\n~LST(A, 7, 9) 10.0.1.$A\n }\n}\n';
  const r = read({ '/etc/keepalived/keepalived.conf': conf });
  t.deepEqual(r.messages, []);
  t.deepEqual(r.nodes[0]!.block![0]!.block!.map((n) => n.keyword), ['10.0.0.1', '10.0.0.2', '10.0.0.3', 'fd00::a', 'fd00::14', 'fd00::1e', '10.0.1.7', '10.0.1.9']);
});

test('a self-referencing definition stops with an error instead of looping', (t) => {
  const r = read({ '/etc/keepalived/keepalived.conf': '$A=x $A\n$A\n' });
  t.is(r.messages.length, 1);
  t.regex(r.messages[0]!.text, /nested deeper/);
});

test('brace expansion is csh style, nested', (t) => {
  t.deepEqual(expandBraces('/a/{x,y{1,2}}.conf'), ['/a/x.conf', '/a/y1.conf', '/a/y2.conf']);
  t.deepEqual(expandBraces('/a/b'), ['/a/b']);
});

test('format detection: ldirectord key=value vs keepalived blocks', (t) => {
  t.is(detectFormat('# ldirectord\nchecktimeout=3\nvirtual=10.0.0.1:80\n'), 'ldirectord');
  t.is(detectFormat('! Configuration\nglobal_defs {\n}\n'), 'keepalived');
  t.is(detectFormat('virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n'), 'ldirectord');
  t.is(detectFormat('include /etc/keepalived/conf.d/*.conf\n'), 'keepalived');
});

test('TOML writer: escapes strings, writes inline tables and origins per line', (t) => {
  t.is(tomlString('a "b" \\ c\n\u0001'), '"a \\"b\\" \\\\ c\\n\\u0001"');
  t.is(tomlValue([1, 'x', { name: 'eth0', weight: -2 }, true, 0.5]), '[1, "x", { name = "eth0", weight = -2 }, true, 0.5]');
  const out = writeToml(['head'], [{ name: 'a.b', array: true, comments: ['from f:3'], loc: { file: 'f', line: 3 }, entries: [{ key: 'k', value: 1, loc: { file: 'f', line: 4 } }] }]);
  t.is(out.text, '# head\n\n[[a.b]]\n# from f:3\nk = 1\n');
  t.deepEqual(out.origins.get(3), { file: 'f', line: 3 });
  t.deepEqual(out.origins.get(5), { file: 'f', line: 4 });
});
