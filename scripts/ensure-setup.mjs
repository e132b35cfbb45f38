#!/usr/bin/env node
// The set-up step of `npm test`, `npm run demo` and `npm run bench` (their pre-scripts) and of
// .ci/run (`--system-only`). Plain Node with no dependencies, so it works on a fresh clone:
//   1. Node >= 20.
//   2. System packages: scripts/system-packages.txt is the one list of the Debian packages the
//      tests, the demo and the benchmarks need (the native addon's build tools included). Missing
//      ones are installed with apt-get when running as root on Debian or Ubuntu: non-interactively,
//      without recommends, and with a temporary /usr/sbin/policy-rc.d so that no distro service
//      (nginx, keepalived, haproxy, prometheus…) is started. Otherwise this step stops, before
//      anything else happens, with the list of missing packages and the command that installs them.
//      KEEPALIVE_TS_SKIP_SYSTEM_CHECK=1 skips this step (another distribution with the equivalent
//      packages installed by hand).
//   3. `npm ci` when node_modules is missing or older than package-lock.json.
//   4. `npm run build` (native addon + TypeScript), unless KEEPALIVE_TS_SKIP_BUILD=1.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const PACKAGE_LIST = join(ROOT, 'scripts/system-packages.txt');
const POLICY_RC_D = '/usr/sbin/policy-rc.d';
const MIN_NODE_MAJOR = 20;

// ---------------------------------------------------------------------------------------------
// Pure parts (unit-tested in test/unit/ensure-setup.test.ts)

/**
 * The package names in the list: one per line, `#` starts a comment, blank lines are ignored.
 * Throws naming file:line for anything that is not a single Debian package name.
 */
export function parsePackageList(text, file = 'system-packages.txt') {
  const names = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const body = lines[i].replace(/#.*/, '').trim();
    if (body === '') continue;
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(body)) {
      throw new Error(`${file}:${i + 1}: expected one Debian package name (lowercase letters, digits, + - .) per line, got "${body}"`);
    }
    if (!names.includes(body)) names.push(body);
  }
  return names;
}

/** Names whose status is "installed" in `dpkg-query -W -f '${Package}\t${db:Status-Status}\n'` output. */
export function installedFromDpkgQuery(output) {
  const installed = new Set();
  for (const line of output.split('\n')) {
    const [name, status] = line.split('\t');
    if (name && status?.trim() === 'installed') installed.add(name.replace(/:.*/, ''));
  }
  return installed;
}

/** ID and ID_LIKE of /etc/os-release, lowercase. */
export function parseOsRelease(text) {
  const get = (key) => {
    const m = new RegExp(`^${key}=(.*)$`, 'm').exec(text);
    return m ? m[1].trim().replace(/^["']|["']$/g, '').toLowerCase() : '';
  };
  return { id: get('ID'), idLike: get('ID_LIKE').split(/\s+/).filter(Boolean) };
}

export function isDebianLike(os) {
  return [os.id, ...os.idLike].some((x) => x === 'debian' || x === 'ubuntu');
}

/**
 * What the system-package step does. `installed` is null when dpkg-query is not available.
 * Returns { action: 'ok' }, { action: 'install', missing } or { action: 'stop', message }.
 */
export function planSystemPackages({ packages, installed, os, isRoot, hasApt }) {
  if (!isDebianLike(os) || installed === null) {
    const what = os.id ? `${os.id}${os.idLike.length ? ` (like ${os.idLike.join(', ')})` : ''}` : 'an unknown system (no /etc/os-release)';
    return {
      action: 'stop',
      message: [
        `keepalive-ts set-up: this is ${what}, not Debian or Ubuntu, so the system packages cannot be checked.`,
        `The tests, the demo and the benchmarks need the equivalents of these Debian packages:`,
        `  ${packages.join(' ')}`,
        `Install them with your package manager, then run again with KEEPALIVE_TS_SKIP_SYSTEM_CHECK=1.`,
      ].join('\n'),
    };
  }
  const missing = packages.filter((p) => !installed.has(p));
  if (missing.length === 0) return { action: 'ok' };
  const cmd = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (isRoot && hasApt) return { action: 'install', missing };
  return {
    action: 'stop',
    message: [
      `keepalive-ts set-up: ${missing.length} system package${missing.length === 1 ? ' is' : 's are'} missing: ${missing.join(' ')}`,
      isRoot
        ? `apt-get is not available here; install them with the system's package manager.`
        : `Install ${missing.length === 1 ? 'it' : 'them'} as root (run as root, this step does it itself):`,
      ...(hasApt ? [`  sudo ${cmd}`] : []),
    ].join('\n'),
  };
}

// ---------------------------------------------------------------------------------------------
// Shell

const log = (msg) => console.error(`[setup] ${msg}`);

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

function installedPackages(packages) {
  if (!which('dpkg-query')) return null;
  // Exit status 1 when some name is unknown to dpkg (never installed): the others are still listed.
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Package}\t${db:Status-Status}\n', ...packages], { encoding: 'utf8' });
  return installedFromDpkgQuery(r.stdout ?? '');
}

function readOs() {
  try {
    return parseOsRelease(readFileSync('/etc/os-release', 'utf8'));
  } catch {
    return { id: '', idLike: [] };
  }
}

function aptInstall(missing) {
  // policy-rc.d exit 101 = "action forbidden": the packages' maintainer scripts do not start their
  // services. Only when no policy is in place already, and removed afterwards.
  let createdPolicy = false;
  if (!existsSync(POLICY_RC_D)) {
    writeFileSync(POLICY_RC_D, '#!/bin/sh\n# keepalive-ts set-up: no service starts while packages install\nexit 101\n', { mode: 0o755 });
    createdPolicy = true;
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    log('apt-get update');
    execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
    log(`apt-get install ${missing.join(' ')}`);
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold', ...missing], { stdio: 'inherit', env });
  } finally {
    if (createdPolicy) unlinkSync(POLICY_RC_D);
  }
}

function ensureSystemPackages() {
  if (process.env.KEEPALIVE_TS_SKIP_SYSTEM_CHECK === '1') {
    log('system packages not checked (KEEPALIVE_TS_SKIP_SYSTEM_CHECK=1)');
    return;
  }
  const packages = parsePackageList(readFileSync(PACKAGE_LIST, 'utf8'), 'scripts/system-packages.txt');
  const facts = { packages, os: readOs(), isRoot: process.getuid?.() === 0, hasApt: which('apt-get') };
  const plan = planSystemPackages({ ...facts, installed: installedPackages(packages) });
  if (plan.action === 'stop') {
    console.error(plan.message);
    process.exit(1);
  }
  if (plan.action === 'ok') {
    log(`system packages: all ${packages.length} installed`);
    return;
  }
  const started = Date.now();
  log(`installing ${plan.missing.length} missing system package(s): ${plan.missing.join(' ')}`);
  aptInstall(plan.missing);
  const still = packages.filter((p) => !installedPackages(packages)?.has(p));
  if (still.length > 0) {
    console.error(`keepalive-ts set-up: apt-get finished but these packages are still not installed: ${still.join(' ')}`);
    process.exit(1);
  }
  log(`system packages installed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

function ensureNode() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < MIN_NODE_MAJOR) {
    console.error(`keepalive-ts set-up: Node ${MIN_NODE_MAJOR} or newer is needed, this is ${process.version}.`);
    process.exit(1);
  }
}

function ensureDependenciesAndBuild() {
  const run = (cmd, args) => execFileSync(cmd, args, { cwd: ROOT, stdio: 'inherit' });
  const mtime = (p) => (existsSync(join(ROOT, p)) ? statSync(join(ROOT, p)).mtimeMs : 0);
  const took = (t0) => `${((Date.now() - t0) / 1000).toFixed(0)} s`;
  if (!existsSync(join(ROOT, 'node_modules/.package-lock.json')) || mtime('package-lock.json') > mtime('node_modules/.package-lock.json')) {
    log('installing dependencies (npm ci)');
    const t0 = Date.now();
    run('npm', ['ci', '--no-audit', '--no-fund']);
    log(`npm ci took ${took(t0)}`);
  }
  if (process.env.KEEPALIVE_TS_SKIP_BUILD !== '1') {
    log('building (npm run build)');
    const t0 = Date.now();
    run('npm', ['run', 'build', '--silent']);
    log(`build took ${took(t0)}`);
  }
}

function main(argv) {
  ensureNode();
  ensureSystemPackages();
  if (argv.includes('--system-only')) return;
  ensureDependenciesAndBuild();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    // execFileSync already showed the command's own output; say which step failed.
    console.error(`keepalive-ts set-up failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    process.exit(1);
  }
}
