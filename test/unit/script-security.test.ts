import test from 'ava';
import { resolveScriptUser, scriptProblems, vetScript, ScriptRunner, type ScriptFs } from '../../src/util/script.js';
import { scriptsOf } from '../../src/config/host-checks.js';
import { commandAs, resolveUser, SETPRIV } from '../../src/util/exec.js';
import { parseConfig } from '../../src/config/index.js';

const passwd = [
  'root:x:0:0:root:/root:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
  'svc:x:1000:1000::/home/svc:/bin/sh',
  '',
].join('\n');
const group = ['root:x:0:', 'svc:x:1000:', 'lb:x:1234:svc,other', 'adm:x:4:svc', ''].join('\n');
const withDefault = { passwd: `${passwd}keepalived_script:x:999:999::/var/lib/ka:/usr/sbin/nologin\n`, group };
const ROOT = { uid: 0, gid: 0, groups: [0] };

test('resolveUser: supplementary groups from /etc/group, name and home', (t) => {
  t.deepEqual(resolveUser('svc', { passwd, group }), { uid: 1000, gid: 1000, groups: [1000, 1234, 4], name: 'svc', home: '/home/svc' });
  t.deepEqual(resolveUser('svc:lb', { passwd, group }), { uid: 1000, gid: 1234, groups: [1000, 1234, 4], name: 'svc', home: '/home/svc' });
  t.deepEqual(resolveUser('4242', { passwd, group }), { uid: 4242, gid: 4242, groups: [4242] });
});

test('one resolution for every script: own user, else script_user, else keepalived_script, else the daemon (refused with security)', (t) => {
  const files = { passwd, group };
  const ok = (r: ReturnType<typeof resolveScriptUser>) => (r.ok ? [r.source, r.runAs.uid] : ['refused', r.reason]);
  t.deepEqual(ok(resolveScriptUser('svc', { script_user: 'nobody', enable_script_security: true }, files, ROOT)), ['script', 1000]);
  t.deepEqual(ok(resolveScriptUser(undefined, { script_user: 'nobody', enable_script_security: true }, files, ROOT)), ['global', 65534]);
  t.deepEqual(ok(resolveScriptUser(undefined, { enable_script_security: true }, withDefault, ROOT)), ['default', 999]);
  t.deepEqual(ok(resolveScriptUser(undefined, { enable_script_security: false }, withDefault, ROOT)), ['default', 999]);
  t.deepEqual(ok(resolveScriptUser(undefined, { enable_script_security: false }, files, ROOT)), ['self', 0]);
  const refused = resolveScriptUser(undefined, { enable_script_security: true }, files, ROOT);
  t.false(refused.ok);
  t.regex(refused.ok ? '' : refused.reason, /keepalived_script does not exist/);
  const unknown = resolveScriptUser(undefined, { script_user: 'ghost', enable_script_security: false }, files, ROOT);
  t.regex(unknown.ok ? '' : unknown.reason, /global\.script_user "ghost": unknown user/);
});

test('commandAs goes through setpriv with the groups, and sets HOME/USER; LD_PRELOAD never reaches a script', (t) => {
  const runAs = resolveUser('svc', { passwd, group });
  const r = commandAs(['/bin/x', 'a'], runAs, { HOME: '/root', LD_PRELOAD: '/evil.so', PATH: '/bin' }, ROOT);
  t.deepEqual(r.argv, [SETPRIV, '--reuid=1000', '--regid=1000', '--groups=1000,1234,4', '--', '/bin/x', 'a']);
  t.is(r.env.HOME, '/home/svc');
  t.is(r.env.USER, 'svc');
  t.is(r.env.LD_PRELOAD, undefined);
  const same = commandAs(['/bin/x'], { uid: 0, gid: 0, groups: [0], name: 'root', home: '/root' }, { LD_PRELOAD: 'x' }, ROOT);
  t.deepEqual(same.argv, ['/bin/x'], 'no user switch needed');
  t.is(same.env.LD_PRELOAD, undefined);
  const numeric = commandAs(['/bin/x'], { uid: 4242, gid: 4242, groups: [] }, {}, ROOT);
  t.true(numeric.argv.includes('--clear-groups'));
});

interface FakeNode { mode: number; uid: number; gid: number; kind: 'dir' | 'file' | 'link'; target?: string }

/** A tiny file tree: path -> node (symlinks resolve through `target`). */
function fakeFs(nodes: Record<string, FakeNode>): ScriptFs {
  const get = (p: string) => {
    const n = nodes[p];
    if (!n) throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
    return n;
  };
  const st = (n: FakeNode) => ({ mode: n.mode, uid: n.uid, gid: n.gid, isDirectory: () => n.kind === 'dir', isFile: () => n.kind === 'file', isSymbolicLink: () => n.kind === 'link' });
  const real = (p: string): string => {
    const parts = p.split('/').filter(Boolean);
    let cur = '';
    for (const part of parts) {
      cur = `${cur}/${part}`;
      const n = get(cur);
      if (n.kind === 'link') cur = real(n.target!);
    }
    return cur || '/';
  };
  return {
    // lstat resolves every component but the last, as the kernel does.
    lstat: (p) => {
      if (p === '/') return st(get('/'));
      const i = p.lastIndexOf('/');
      const parent = i === 0 ? '/' : real(p.slice(0, i));
      return st(get(`${parent === '/' ? '' : parent}${p.slice(i)}`));
    },
    stat: (p) => st(get(real(p))),
    realpath: (p) => real(p),
  };
}

const D = (mode = 0o755, uid = 0, gid = 0): FakeNode => ({ kind: 'dir', mode, uid, gid });
const F = (mode = 0o755, uid = 0, gid = 0): FakeNode => ({ kind: 'file', mode, uid, gid });
const base = { '/': D(), '/etc': D(), '/etc/ka': D(), '/tmp': D(0o1777), '/usr': D(), '/usr/bin': D(), '/usr/bin/true': F(), '/bin': { kind: 'link', mode: 0o777, uid: 0, gid: 0, target: '/usr/bin' } as FakeNode };

test('vetScript: keepalived\'s rule for scripts running as root', async (t) => {
  const cases: [string, Record<string, FakeNode>, string | null][] = [
    ['secure root-owned script', { '/etc/ka/s.sh': F() }, null],
    ['script owned by another user', { '/etc/ka/s.sh': F(0o755, 65534) }, 'owned by uid 65534'],
    ['world-writable script', { '/etc/ka/s.sh': F(0o757) }, 'writable by everyone'],
    ['group-writable, non-root group', { '/etc/ka/s.sh': F(0o775, 0, 50) }, 'writable by group 50'],
    ['group-writable, root group (allowed)', { '/etc/ka/s.sh': F(0o775, 0, 0) }, null],
    ['world-writable parent directory', { '/etc/ka': D(0o777), '/etc/ka/s.sh': F() }, '/etc/ka is writable by everyone'],
    ['parent directory owned by a user', { '/etc/ka': D(0o755, 1000), '/etc/ka/s.sh': F() }, '/etc/ka is owned by uid 1000'],
  ];
  for (const [what, extra, problem] of cases) {
    const fs = fakeFs({ ...base, ...extra });
    const secure = vetScript('/etc/ka/s.sh arg', ROOT, true, fs);
    const lax = vetScript('/etc/ka/s.sh arg', ROOT, false, fs);
    if (problem === null) {
      t.deepEqual(secure.refused, [], what);
      t.deepEqual(lax.warnings, [], what);
    } else {
      t.regex(secure.refused.join(), new RegExp(problem), `${what}: refused with enable_script_security`);
      t.deepEqual(lax.refused, [], `${what}: runs without enable_script_security`);
      t.regex(lax.warnings.join(), new RegExp(problem), `${what}: warned without enable_script_security`);
    }
  }
  // A sticky world-writable directory (/tmp) is fine, as in keepalived; the file in it is not if it is someone else's.
  t.deepEqual((vetScript('/tmp/s.sh', ROOT, true, fakeFs({ ...base, '/tmp/s.sh': F() }))).refused, []);
  t.regex((vetScript('/tmp/s.sh', ROOT, true, fakeFs({ ...base, '/tmp/s.sh': F(0o755, 1000) }))).refused.join(), /owned by uid 1000/);
});

test('vetScript: the same insecure file run as a non-root user is not refused (it gains nothing)', async (t) => {
  const fs = fakeFs({ ...base, '/tmp/s.sh': F(0o777, 65534, 65534) });
  const nobody = { uid: 65534, gid: 65534, groups: [65534] };
  const v = vetScript('/tmp/s.sh', nobody, true, fs);
  t.deepEqual(v.refused, []);
  t.false(v.privileged);
  // ... unless the file is set-uid root.
  const suid = vetScript('/tmp/s.sh', nobody, true, fakeFs({ ...base, '/tmp': D(0o777), '/tmp/s.sh': F(0o4755) }));
  t.true(suid.privileged);
  t.regex(suid.refused.join(), /\/tmp is writable by everyone/);
});

test('vetScript: symlinks are followed and both paths walked; PATH search; missing and non-executable scripts are refused', async (t) => {
  const fs = fakeFs({ ...base, '/etc/ka/link': { kind: 'link', mode: 0o777, uid: 0, gid: 0, target: '/tmp/evil' }, '/tmp/evil': F(0o755, 1000) });
  t.regex((vetScript('/etc/ka/link', ROOT, true, fs)).refused.join(), /\/tmp\/evil is owned by uid 1000/);
  const bare = vetScript('true', ROOT, true, fakeFs(base), '/usr/local/bin:/usr/bin');
  t.is(bare.program, '/usr/bin/true');
  t.deepEqual(bare.refused, []);
  t.deepEqual((vetScript('/bin/true', ROOT, true, fakeFs(base))).refused, [], 'a root-owned symlinked directory (merged /usr) is accepted');
  t.regex((vetScript('nosuch', ROOT, true, fakeFs(base), '/usr/bin')).refused.join(), /not found in PATH/);
  t.regex((vetScript('/etc/ka/none.sh', ROOT, true, fakeFs(base))).refused.join(), /cannot be accessed: ENOENT/);
  const noexec = vetScript('/etc/ka/s.sh', { uid: 1000, gid: 1000, groups: [1000] }, false, fakeFs({ ...base, '/etc/ka/s.sh': F(0o750) }));
  t.regex(noexec.refused.join(), /not executable by uid 1000/);
});

const TOML = `
[global]
enable_script_security = true
script_user = "root"
[[vrrp_script]]
name = "chk"
script = "/etc/ka/bad.sh"
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
virtual_ipaddress = ["10.0.0.1"]
track_script = ["chk"]
notify_master = "/etc/ka/good.sh master"
[[virtual_server]]
address = "10.0.0.1"
port = 80
quorum_up = "/etc/ka/good.sh up"
[[virtual_server.real_server]]
address = "10.0.0.2"
notify_down = "/etc/ka/bad.sh down"
check = { type = "MISC_CHECK", misc_path = "/etc/ka/bad.sh", user = "nobody" }
`;

test('scriptsOf gives every script kind its user (own, else script_user); scriptProblems refuses per the resolved user', (t) => {
  const cfg = parseConfig(TOML, 'k.toml');
  t.deepEqual(scriptsOf(cfg).map((r) => [r.path.join('.'), r.user]), [
    ['vrrp_script.0.script', 'root'],
    ['vrrp_instance.0.notify_master', 'root'],
    ['virtual_server.0.quorum_up', 'root'],
    ['virtual_server.0.real_server.0.notify_down', 'root'],
    ['virtual_server.0.real_server.0.check.0.misc_path', 'nobody'],
  ]);
  const fs = fakeFs({ ...base, '/etc/ka/good.sh': F(), '/etc/ka/bad.sh': F(0o777, 65534) });
  const policy = { enable_script_security: true, script_user: 'root' };
  const verdicts = scriptsOf(cfg).map((r) => [r.path.join('.'), scriptProblems(r.command, r.user, policy, { passwd, group }, fs, ROOT).errors.length > 0]);
  t.deepEqual(verdicts, [
    ['vrrp_script.0.script', true],
    ['vrrp_instance.0.notify_master', false],
    ['virtual_server.0.quorum_up', false],
    ['virtual_server.0.real_server.0.notify_down', true],
    ['virtual_server.0.real_server.0.check.0.misc_path', false],
  ], 'the MISC_CHECK runs as nobody: not refused');
});

test('ScriptRunner: a refused script never executes, and the refusal is reported once', async (t) => {
  const ran: string[] = [];
  const refusals: string[] = [];
  const fs = fakeFs({ ...base, '/etc/ka/bad.sh': F(0o777, 65534) });
  const runner = new ScriptRunner({
    policy: () => ({ enable_script_security: true, script_user: 'root' }),
    fs,
    userFiles: () => ({ passwd, group }),
    onRefused: (c, r) => refusals.push(`${c}: ${r}`),
    run: async (line) => { ran.push(line); return { code: 0, signal: null, timedOut: false }; },
  });
  for (let i = 0; i < 3; i++) t.truthy((await runner.run('/etc/ka/bad.sh', [], 1000, undefined)).refused);
  t.deepEqual(ran, []);
  t.is(refusals.length, 1);
});
