import test from 'ava';
import { spawnSync } from 'node:child_process';
import { AcceptFilter, acceptDestroyScript, acceptElementsScript, acceptTableScript, ACCEPT_TABLE } from '../../src/net/accept-filter.js';

test('scripts: the table with VRRP and neighbour discovery passing, drops by VIP set; elements per family', (t) => {
  const table = acceptTableScript();
  t.regex(table, /^add table inet keepalive_ts_accept\ndelete table inet keepalive_ts_accept\n/);
  t.regex(table, /chain in \{\n\s+type filter hook input priority -1; policy accept;\n\s+meta l4proto 112 accept\n\s+icmpv6 type \{ nd-neighbor-solicit, nd-neighbor-advert \} accept\n\s+ip daddr @vips4 counter drop\n\s+ip6 daddr @vips6 counter drop/);
  t.regex(table, /chain out \{\n\s+type filter hook output priority -1; policy accept;\n[\s\S]*ip saddr @vips4 counter drop/);
  t.is(acceptElementsScript('add', ['10.0.0.1', 'fd00::1', '10.0.0.2']), `add element inet ${ACCEPT_TABLE} vips4 { 10.0.0.1, 10.0.0.2 }\nadd element inet ${ACCEPT_TABLE} vips6 { fd00::1 }\n`);
  t.is(acceptElementsScript('delete', []), '');
  t.throws(() => acceptElementsScript('add', ['bogus']));
  t.is(acceptDestroyScript(), `add table inet ${ACCEPT_TABLE}\ndelete table inet ${ACCEPT_TABLE}\n`);
});

test('AcceptFilter: transactions in order, table created once, shared addresses kept until the last instance lets go', async (t) => {
  const scripts: string[] = [];
  const f = new AcceptFilter(async (s) => { scripts.push(s); });
  await Promise.all([f.add('A', ['10.0.0.1', '10.0.0.2']), f.add('B', ['10.0.0.2', 'fd00::1']), f.remove('A')]);
  await f.remove('B');
  await f.remove('B');
  await f.close();
  await f.close();
  t.deepEqual(scripts.map((s) => s.split('\n')[0]), [
    `add table inet ${ACCEPT_TABLE}`,
    `add element inet ${ACCEPT_TABLE} vips4 { 10.0.0.1, 10.0.0.2 }`,
    `add element inet ${ACCEPT_TABLE} vips6 { fd00::1 }`,
    `delete element inet ${ACCEPT_TABLE} vips4 { 10.0.0.1 }`,
    `delete element inet ${ACCEPT_TABLE} vips4 { 10.0.0.2 }`,
    `add table inet ${ACCEPT_TABLE}`,
  ]);
  t.is(scripts.length, 6);
});

const root = process.getuid?.() === 0 && spawnSync('unshare', ['-n', 'true']).status === 0;
(root ? test : test.skip)('nft accepts the scripts (applied in a throwaway network namespace)', (t) => {
  const script = acceptTableScript() + acceptElementsScript('add', ['10.0.0.1', 'fd00::1']) + acceptElementsScript('delete', ['10.0.0.1']);
  // nft 1.0.6 crashes when list commands share a -f batch with changes: separate invocations.
  const r = spawnSync('unshare', ['-n', 'sh', '-c',
    `/usr/sbin/nft -f - && /usr/sbin/nft list table inet ${ACCEPT_TABLE} && echo '${acceptDestroyScript().replace(/\n/g, ';')}' | /usr/sbin/nft -f - && echo TABLES && /usr/sbin/nft list tables`], { input: script, encoding: 'utf8' });
  t.is(r.status, 0, `${r.stderr} ${String(r.error)} ${String(r.signal)}`);
  const [listed, after] = r.stdout.split('TABLES');
  t.regex(listed!, /set vips6 \{\s+type ipv6_addr\s+elements = \{ fd00::1 \}/);
  t.notRegex(listed!, /10\.0\.0\.1/);
  t.notRegex(after!, /keepalive_ts_accept/);
});
