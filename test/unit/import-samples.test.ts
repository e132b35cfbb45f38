// keepalived's own example configs (its doc/samples, kept beside the repository in
// ../shared/keepalived-samples, never copied in): each imports to a config `check` accepts, or
// says with file:line what it could not import; and every statement whose keyword keepalive-ts
// does not support gets a message on exactly its line.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/index.js';
import { diskFs } from '../../src/import/fs.js';
import { importConfig } from '../../src/import/index.js';
import { ruleTables } from '../../src/import/keepalived-map.js';
import { readKeepalived } from '../../src/import/keepalived-reader.js';
import { formatMessage, type KNode } from '../../src/import/types.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
// Beside the clone (CI), or beside the directory of worktrees (the development machine).
const SAMPLES = [join(ROOT, '../shared/keepalived-samples'), join(ROOT, '../../shared/keepalived-samples')].find((d) => existsSync(d));

const opts = { defaultConfigId: 'testhost', env: {} };

/** Samples that cannot pass `check` as written, and why (each must then carry an error message). */
const NOT_OK: Readonly<Record<string, RegExp>> = {
  // Its vrrp_script lines exist only for config ids "high" and "low" (keepalived fails the same way).
  'keepalived.conf.conditional_conf': /vrrp_script\[0\]\.script: is required/,
};

const CHECKERS = new Set(['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'MISC_CHECK', 'UDP_CHECK', 'DNS_CHECK', 'FILE_CHECK', 'SMTP_CHECK', 'PING_CHECK']);

/** The rule table a statement inside block `parent` is looked up in. */
function tableOf(parent: string | undefined): string | undefined {
  if (parent === undefined) return 'top level';
  if (CHECKERS.has(parent)) return 'checkers (common)';
  return ['global_defs', 'vrrp_script', 'vrrp_instance', 'vrrp_sync_group', 'virtual_server', 'real_server'].includes(parent) ? parent : undefined;
}

/** Statements (file line, keyword) whose rule is "unsupported". */
function unsupportedStatements(nodes: readonly KNode[], parent?: string): { line: number; keyword: string }[] {
  const tables = ruleTables();
  const out: { line: number; keyword: string }[] = [];
  for (const n of nodes) {
    const table = tableOf(parent);
    const rule = table ? tables[table]![n.keyword] : undefined;
    if (rule?.unsupported !== undefined) out.push({ line: n.loc.line, keyword: n.keyword });
    if (n.block) out.push(...unsupportedStatements(n.block, n.keyword));
  }
  return out;
}

test('the keepalived samples are there (../shared/keepalived-samples beside the repository)', (t) => {
  t.truthy(SAMPLES, 'keepalived-samples not found beside the repository');
  t.true(readdirSync(SAMPLES!).filter((f) => f.startsWith('keepalived.conf')).length >= 20);
});

const files = SAMPLES ? readdirSync(SAMPLES).filter((f) => f.startsWith('keepalived.conf')).sort() : [];
const summary: string[] = [];

for (const f of files) {
  test(`sample ${f}: imports to a config check accepts, or names what it cannot import`, (t) => {
    const path = join(SAMPLES!, f);
    const r = importConfig(path, diskFs(path), opts);
    for (const m of r.messages) {
      t.is(m.loc.file, f, formatMessage(m));
      t.true(m.loc.line >= 1 && m.loc.line <= readFileSync(path, 'utf8').split('\n').length, formatMessage(m));
    }
    const want = NOT_OK[f];
    if (want) {
      t.false(r.ok);
      t.true(r.messages.some((m) => m.kind === 'error' && want.test(m.text)), r.messages.map(formatMessage).join('\n'));
    } else {
      t.true(r.ok, r.messages.map(formatMessage).join('\n'));
      t.notThrows(() => parseConfig(r.toml, f));
    }
    // Every statement with an unsupported keyword is named on its own line.
    const tree = readKeepalived(path, diskFs(path), { configId: 'testhost', configIdGiven: true, env: {} }).nodes;
    for (const u of unsupportedStatements(tree)) {
      t.true(r.messages.some((m) => m.loc.line === u.line && m.text.startsWith(u.keyword)), `${f}:${u.line}: ${u.keyword} has no message`);
    }
    const counts = ['unsupported', 'changed', 'ignored', 'error'].map((k) => `${r.messages.filter((m) => m.kind === k).length} ${k}`).join(', ');
    summary.push(`${f}: ${r.ok ? 'check OK' : 'check fails'}; ${counts}`);
    t.log(r.messages.map(formatMessage).join('\n') || '(no messages)');
  });
}

test('conditional_conf imports for each of its config ids (keepalived -i high / -i low)', (t) => {
  const path = join(SAMPLES!, 'keepalived.conf.conditional_conf');
  for (const id of ['high', 'low']) {
    const r = importConfig(path, diskFs(path), { ...opts, configId: id });
    t.true(r.ok, r.messages.map(formatMessage).join('\n'));
    t.regex(r.toml, new RegExp(`script = "/etc/keepalived/scripts/check_${id}_VI_0.sh"`));
    t.regex(r.toml, id === 'high' ? /priority = 170/ : /priority = 85/);
  }
});

test('routes and rules samples: the lines keepalive-ts refuses are left out at their line, every other line imports', (t) => {
  const routes = join(SAMPLES!, 'keepalived.conf.vrrp.routes');
  const r = importConfig(routes, diskFs(routes), opts);
  t.true(r.ok, r.messages.map(formatMessage).join('\n'));
  const c = parseConfig(r.toml, 'routes');
  t.is(c.global.static_routes.length, 5);
  t.deepEqual(c.vrrp_instance[0]!.virtual_routes, [
    'src 192.168.100.1 192.168.109.0/24 via 192.168.200.254 dev eth1', '192.168.110.0/24 via 192.168.200.254 dev eth1', '192.168.111.0/24 dev eth2',
    '192.168.112.0/24 via 192.168.100.254', 'blackhole 192.168.113.1/32', '0.0.0.0/0 gw 192.168.0.1 table 100',
  ]);
  t.true(r.messages.some((m) => m.loc.line === 30 && m.kind === 'unsupported' && /"or" is not supported in routes/.test(m.text)), r.messages.map(formatMessage).join('\n'));
  // Its rules twin has two lines with a broken address ("192.168.100./24"): keepalived refuses
  // them too, so they are errors of the input, and the rest imports.
  const rules = join(SAMPLES!, 'keepalived.conf.vrrp.rules');
  const q = importConfig(rules, diskFs(rules), opts);
  t.true(q.ok, q.messages.map(formatMessage).join('\n'));
  const cq = parseConfig(q.toml, 'rules');
  t.deepEqual(cq.global.static_rules, ['from 192.168.100.0/24 table 1']);
  t.deepEqual(cq.vrrp_instance[0]!.virtual_rules, ['from 192.168.200.0/24 table 2']);
  t.deepEqual(q.messages.filter((m) => m.kind === 'error').map((m) => m.loc.line), [11, 26]);
});

test('virtual_server_group sample: one group, one virtual server, one pool for its 13 services (ranges and fwmarks included)', (t) => {
  const path = join(SAMPLES!, 'keepalived.conf.virtual_server_group');
  const r = importConfig(path, diskFs(path), opts);
  t.true(r.ok, r.messages.map(formatMessage).join('\n'));
  const c = parseConfig(r.toml, 'vsg');
  t.deepEqual(c.virtual_server_group.map((g) => g.name), ['VSG_1']);
  t.is(c.virtual_server.length, 1);
  const [vs] = c.virtual_server;
  t.like(vs, { key: 'tcp/group:VSG_1', lb_kind: 'NAT', persistence_timeout: 50 });
  t.deepEqual(vs!.members.map((m) => m.key), [
    'tcp/10.0.0.1:8080', 'tcp/10.0.0.2:80', 'tcp/192.168.200.1:1358',
    ...[3, 4, 5, 6, 7, 8, 9, 10].map((i) => `tcp/192.168.200.${i}:80`), 'fwmark/1', 'fwmark/2',
  ]);
  t.deepEqual(vs!.real_server.map((rs) => rs.check.length), [1, 1], 'the checks once per real server, not once per member');
});

test('the CLI: TOML on stdout, file:line messages on stderr, exit 0 when check passes and 1 when not', (t) => {
  const ok = spawnSync(process.execPath, [CLI, 'import', join(SAMPLES!, 'keepalived.conf.SSL_GET')], { encoding: 'utf8' });
  t.is(ok.status, 0, ok.stderr);
  t.notThrows(() => parseConfig(ok.stdout, 'stdout'));
  t.regex(ok.stderr, /keepalived\.conf\.SSL_GET:19: unsupported: authentication auth_type AH/);
  const bad = spawnSync(process.execPath, [CLI, 'import', join(SAMPLES!, 'keepalived.conf.conditional_conf')], { encoding: 'utf8' });
  t.is(bad.status, 1);
  t.regex(bad.stderr, /keepalived\.conf\.conditional_conf:\d+: error: the imported config fails check: vrrp_script\[0\]\.script: is required/);
  const good = spawnSync(process.execPath, [CLI, 'import', '--config-id', 'high', join(SAMPLES!, 'keepalived.conf.conditional_conf')], { encoding: 'utf8' });
  t.is(good.status, 0, good.stderr);
  const forced = spawnSync(process.execPath, [CLI, 'import', '--from', 'ldirectord', join(SAMPLES!, 'keepalived.conf.sample')], { encoding: 'utf8' });
  t.is(forced.status, 0); // nothing importable: an empty config, every line reported
  t.regex(forced.stderr, /keepalived\.conf\.sample:\d+: error: /);
});

test.after.always('summary', (t) => {
  t.log(summary.join('\n'));
});
