/**
 * Who runs a script, and which scripts are refused (keepalived's script_user /
 * enable_script_security semantics), on a running director.
 *
 * Every script kind (vrrp_script, notify_master, MISC_CHECK, notify_up/notify_down,
 * quorum_up/quorum_down) appends "<kind> <uid> <groups> <HOME>" to a log. The director runs in a
 * private mount namespace whose /etc/passwd and /etc/group are bind-mounted test files, so the
 * script user (with a supplementary group and its own home) exists only for this test.
 *
 * 1. script_user = "ktscript": every kind runs as ktscript, with its supplementary group and
 *    HOME, including a world-writable MISC_CHECK script owned by nobody (it never runs as uid 0).
 * 2. script_user = "root" with enable_script_security: the world-writable scripts are refused
 *    (never run), the secure ones still run, and `keepalive-ts check` names file:line and key.
 */
import type { ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, netnsTest, waitFor, sleep } from '../lib/netns.js';
import { CLI, startDirector } from '../lib/daemon.js';

const NOBODY = 65534;
const UID = 4321;
const EXTRA_GID = 4322;

interface Tree {
  dir: string;
  log: string;
  fail: string;
  passwd: string;
  group: string;
  home: string;
  notify: string;
  vrrp: string;
  check: string;
}

/** Root-owned 0755 tree with secure scripts, plus a world-writable check script owned by nobody. */
function makeTree(t: ExecutionContext): Tree {
  const dir = mkdtempSync(join(tmpdir(), 'kt-scripts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const out = join(dir, 'out');
  mkdirSync(out, { mode: 0o777 });
  chmodSync(out, 0o777);
  const log = join(out, 'log');
  writeFileSync(log, '');
  chmodSync(log, 0o666);
  const home = join(dir, 'home');
  mkdirSync(home, { mode: 0o755 });
  const line = (kind: string) => `echo "${kind} $(id -u) $(id -G | tr ' ' ',') $HOME" >> ${log}`;
  const notify = join(dir, 'notify.sh');
  writeFileSync(notify, `#!/bin/sh\n${line('$1')}\n`, { mode: 0o755 });
  const vrrp = join(dir, 'vrrp.sh');
  writeFileSync(vrrp, `#!/bin/sh\n${line('vrrp_script')}\nexit 0\n`, { mode: 0o755 });
  const w = join(dir, 'w');
  mkdirSync(w, { mode: 0o755 });
  const check = join(w, 'check.sh');
  writeFileSync(check, `#!/bin/sh\n${line('${1:-misc}')}\ntest ! -e ${join(out, 'fail')}\n`);
  chmodSync(check, 0o777);
  chownSync(check, NOBODY, NOBODY);
  const passwd = join(dir, 'passwd');
  writeFileSync(passwd, [
    'root:x:0:0:root:/root:/bin/sh',
    `nobody:x:${NOBODY}:${NOBODY}:nobody:/nonexistent:/usr/sbin/nologin`,
    `ktscript:x:${UID}:${UID}:test script user:${home}:/usr/sbin/nologin`,
    '',
  ].join('\n'));
  const group = join(dir, 'group');
  writeFileSync(group, ['root:x:0:', `nogroup:x:${NOBODY}:`, `ktscript:x:${UID}:`, `ktextra:x:${EXTRA_GID}:ktscript`, ''].join('\n'));
  return { dir, log, fail: join(out, 'fail'), passwd, group, home, notify, vrrp, check };
}

function config(tr: Tree, scriptUser: string, vipAddr: string, hostAddr: string, rsAddr: string): string {
  return `[global]
router_id = "a"
metrics_listen = ""
enable_script_security = true
script_user = "${scriptUser}"

[[vrrp_script]]
name = "chk"
script = "${tr.vrrp}"
interval = 1

[[vrrp_script]]
name = "chk_insecure"
script = "${tr.check} vrrp"
interval = 1

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 100
version = 3
advert_int = 1
virtual_ipaddress = ["${vipAddr}/24"]
track_script = [{ name = "chk", weight = 10 }, { name = "chk_insecure", weight = 10 }]
notify_master = "${tr.notify} notify_master"

[[virtual_server]]
address = "${hostAddr}"
port = 8080
lb_kind = "PROXY"
delay_loop = 1
alpha = true
quorum = 1
quorum_up = "${tr.notify} quorum_up"
quorum_down = "${tr.notify} quorum_down"

[[virtual_server.real_server]]
address = "${rsAddr}"
port = 80
notify_up = "${tr.notify} rs_up"
notify_down = "${tr.notify} rs_down"
check = { type = "MISC_CHECK", misc_path = "${tr.check}", misc_timeout = 2, retry = 0 }
`;
}

/** Runs the director in a private mount namespace with the test's passwd and group files. */
function wrap(tr: Tree): string[] {
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
    `mount --bind ${tr.passwd} /etc/passwd && mount --bind ${tr.group} /etc/group && exec "$@"`, 'sh'];
}

const lines = (tr: Tree) => readFileSync(tr.log, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));

netnsTest('every script kind runs as script_user with its supplementary groups and HOME; a world-writable script never runs as root', async (t) => {
  const tr = makeTree(t);
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const d = await startDirector(lab, a, config(tr, 'ktscript', lab.addr4(100), a.ipv4!, lab.addr4(12)), { wrap: wrap(tr) });
  const seen = (kind: string) => lines(tr).some((l) => l[0] === kind);
  await waitFor(() => ['vrrp_script', 'notify_master', 'misc', 'rs_up', 'quorum_up'].every(seen), 20_000, 'the scripts of the up path', 200);
  writeFileSync(tr.fail, '');
  await waitFor(() => ['rs_down', 'quorum_down'].every(seen), 20_000, 'the scripts of the down path', 200);
  await d.proc.kill('SIGTERM');
  const all = lines(tr);
  t.log(all.map((l) => l.join(' ')).join('\n'));
  for (const kind of ['vrrp_script', 'notify_master', 'misc', 'vrrp', 'rs_up', 'quorum_up', 'rs_down', 'quorum_down']) {
    const got = all.filter((l) => l[0] === kind);
    t.true(got.length > 0, `${kind} ran`);
    for (const [, uid, groups, home] of got) {
      t.is(uid, String(UID), `${kind} runs as ktscript, not uid ${uid}`);
      t.deepEqual(groups!.split(',').map(Number).sort(), [UID, EXTRA_GID].sort(), `${kind} has ktscript's supplementary groups`);
      t.is(home, tr.home, `${kind} has ktscript's HOME`);
    }
  }
});

netnsTest('enable_script_security refuses world-writable scripts that would run as root; check names file, line and key', async (t) => {
  const tr = makeTree(t);
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const toml = config(tr, 'root', lab.addr4(100), a.ipv4!, lab.addr4(12));
  const d = await startDirector(lab, a, toml, { wrap: wrap(tr) });
  const seen = (kind: string) => lines(tr).some((l) => l[0] === kind);
  // The secure scripts run (as root, allowed: every path component is root-owned, not writable).
  await waitFor(() => ['vrrp_script', 'notify_master'].every(seen), 20_000, 'the secure scripts', 200);
  await sleep(3_000);
  const all = lines(tr);
  t.log(all.map((l) => l.join(' ')).join('\n'));
  t.false(all.some((l) => l[0] === 'misc' || l[0] === 'vrrp'), 'the world-writable script never ran');
  t.true(all.filter((l) => l[0] === 'vrrp_script').every((l) => l[1] === '0'));
  t.regex(d.proc.output(), /refus/i);

  const r = spawnSync(process.execPath, [CLI, 'check', '--config', d.configPath], { encoding: 'utf8' });
  t.is(r.status, 1, r.stdout + r.stderr);
  const tomlLines = toml.split('\n');
  const lineOf = (needle: string) => tomlLines.findIndex((l) => l.includes(needle)) + 1;
  t.regex(r.stderr, new RegExp(`keepalive\\.toml:${lineOf('misc_path')} virtual_server\\[0\\]\\.real_server\\[0\\]\\.check\\[0\\]\\.misc_path: script refused .*owned by uid 65534`));
  t.regex(r.stderr, new RegExp(`keepalive\\.toml:${lineOf(`"${tr.check} vrrp"`)} vrrp_script\\[1\\]\\.script: script refused .*owned by uid 65534`));
});
