// The pure parts of scripts/ensure-setup.mjs (the set-up step before npm test / demo / bench and in
// .ci/run): the package list's format, dpkg-query's answer, and what the step decides to do.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

interface Os { id: string; idLike: string[] }
type Plan = { action: 'ok' } | { action: 'install'; missing: string[] } | { action: 'stop'; message: string };
interface SetupModule {
  PACKAGE_LIST: string;
  parsePackageList(text: string, file?: string): string[];
  installedFromDpkgQuery(output: string): Set<string>;
  parseOsRelease(text: string): Os;
  planSystemPackages(facts: { packages: string[]; installed: Set<string> | null; os: Os; isRoot: boolean; hasApt: boolean }): Plan;
}

const setup = (await import(pathToFileURL(join(ROOT, 'scripts/ensure-setup.mjs')).href)) as SetupModule;
const DEBIAN: Os = { id: 'debian', idLike: [] };

test('the package list parses: one name per line, comments and blank lines ignored', (t) => {
  t.deepEqual(setup.parsePackageList('# header\n\npython3   # node-gyp\n  g++\nnginx-light # x # y\npython3\n'), ['python3', 'g++', 'nginx-light']);
  t.throws(() => setup.parsePackageList('make\nbird2 frr\n', 'list.txt'), { message: /list\.txt:2: expected one Debian package name .*"bird2 frr"/ });
  t.throws(() => setup.parsePackageList('Nginx\n'), { message: /:1: / });
  t.throws(() => setup.parsePackageList('nginx; rm -rf /\n'), { message: /:1: / });
});

test('scripts/system-packages.txt is valid and lists the build tools and the tools the tests run', (t) => {
  const names = setup.parsePackageList(readFileSync(setup.PACKAGE_LIST, 'utf8'), 'scripts/system-packages.txt');
  for (const p of ['python3', 'make', 'g++', 'iproute2', 'openssl', 'netbase', 'nginx-light', 'keepalived', 'tcpdump', 'prometheus', 'iputils-ping', 'wrk', 'haproxy', 'nftables', 'libnftables1', 'conntrack', 'conntrackd', 'bird2', 'frr', 'chromium', 'python3-aiosmtpd', 'time']) {
    t.true(names.includes(p), `${p} missing from scripts/system-packages.txt`);
  }
});

test('dpkg-query output: only "installed" counts (config-files, not-installed do not); arch suffixes dropped', (t) => {
  const out = 'make\tinstalled\ng++\tnot-installed\nnginx-light\tconfig-files\nlibfoo:amd64\tinstalled\npython3\thalf-configured\n';
  t.deepEqual([...setup.installedFromDpkgQuery(out)].sort(), ['libfoo', 'make']);
});

test('os-release: ID and ID_LIKE, quotes removed', (t) => {
  t.deepEqual(setup.parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'), { id: 'debian', idLike: [] });
  t.deepEqual(setup.parseOsRelease('ID="linuxmint"\nID_LIKE="ubuntu debian"\n'), { id: 'linuxmint', idLike: ['ubuntu', 'debian'] });
});

test('plan: nothing missing -> ok; missing as root on Debian/Ubuntu -> install exactly those', (t) => {
  const packages = ['make', 'g++', 'openssl'];
  t.deepEqual(setup.planSystemPackages({ packages, installed: new Set(packages), os: DEBIAN, isRoot: false, hasApt: true }), { action: 'ok' });
  t.deepEqual(setup.planSystemPackages({ packages, installed: new Set(['make']), os: DEBIAN, isRoot: true, hasApt: true }), { action: 'install', missing: ['g++', 'openssl'] });
  t.deepEqual(setup.planSystemPackages({ packages, installed: new Set(['make']), os: { id: 'pop', idLike: ['ubuntu', 'debian'] }, isRoot: true, hasApt: true }), { action: 'install', missing: ['g++', 'openssl'] });
});

test('plan: missing without root -> stop with exactly the missing packages and the command', (t) => {
  const plan = setup.planSystemPackages({ packages: ['make', 'g++', 'openssl'], installed: new Set(['make']), os: DEBIAN, isRoot: false, hasApt: true });
  t.is(plan.action, 'stop');
  const msg = (plan as { message: string }).message;
  t.regex(msg, /2 system packages are missing: g\+\+ openssl$/m);
  t.regex(msg, /^ {2}sudo apt-get install -y --no-install-recommends g\+\+ openssl$/m);
  t.notRegex(msg, /\bmake\b/);
});

test('plan: not Debian/Ubuntu (or no dpkg) -> stop naming the Debian packages and the override', (t) => {
  for (const facts of [
    { os: { id: 'fedora', idLike: [] }, installed: null },
    { os: { id: '', idLike: [] }, installed: null },
    { os: DEBIAN, installed: null },
  ]) {
    const plan = setup.planSystemPackages({ packages: ['make', 'openssl'], isRoot: true, hasApt: false, ...facts });
    t.is(plan.action, 'stop');
    t.regex((plan as { message: string }).message, /not Debian or Ubuntu[\s\S]*make openssl[\s\S]*KEEPALIVE_TS_SKIP_SYSTEM_CHECK=1/);
  }
});
