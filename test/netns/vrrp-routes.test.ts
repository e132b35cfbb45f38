// virtual_routes / virtual_rules follow MASTER; static_ipaddress / static_routes / static_rules
// stay from start to stop. Two keepalive-ts directors (a at 150, b at 100) with the same lines; the
// kernel's own view (`ip route show table all`, `ip rule`) is the judge:
//   1. a is MASTER: a has the virtual routes and rules, b has none; both have the static ones;
//   2. a stops (SIGTERM): b takes over and gains them; a took its virtual and static ones away;
//   3. a returns and preempts: a has them again, b (BACKUP) lost them;
//   4. reload of a with one route changed: the new one appears, the old one vanishes, the others
//      are untouched.
import type { ExecutionContext } from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { createLab, netnsTest, waitFor, type LabHost } from '../lib/netns.js';
import { startDirector, directorToml, type Director } from '../lib/daemon.js';
import { controlRequest } from '../../src/cli/control-client.js';

const VIP = '10.77.0.50';

const ROUTES = [
  '10.200.0.0/16 via 10.77.0.1',
  'blackhole 10.201.0.0/16',
  `src ${VIP} to 10.202.0.0/24 dev eth0 metric 7`,
  'default via 10.77.0.1 table 100',
];
const RULES = [`from ${VIP} table 100 preference 1000`, 'to 10.203.0.0/16 lookup 100 priority 1001'];

/** What `ip route` prints for each virtual route (proto keepalived, as keepalived's own routes). */
const ROUTE_LINES = [
  /^10\.200\.0\.0\/16 via 10\.77\.0\.1 dev eth0 proto keepalived/m,
  /^blackhole 10\.201\.0\.0\/16 proto keepalived/m,
  /^10\.202\.0\.0\/24 dev eth0 proto keepalived src 10\.77\.0\.50 metric 7/m,
  /^default via 10\.77\.0\.1 dev eth0 table 100 proto keepalived/m,
];
const RULE_LINES = [/^1000:\s+from 10\.77\.0\.50 lookup 100 proto keepalived/m, /^1001:\s+from all to 10\.203\.0\.0\/16 lookup 100 proto keepalived/m];
const STATIC_LINES = [/^10\.210\.0\.0\/16 via 10\.77\.0\.1 dev eth0 proto keepalived/m, /^2000:\s+from all fwmark 0x7 lookup 200 proto keepalived/m];

function toml(routerId: string, priority: number, routes = ROUTES): string {
  const list = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
  const statics = 'static_ipaddress = ["192.168.99.1/24 dev eth0 label eth0:st"]\nstatic_routes = ["10.210.0.0/16 via 10.77.0.1"]\nstatic_rules = ["fwmark 7 table 200 preference 2000"]';
  return directorToml({
    routerId, priority, vips: [`${VIP}/24`], version: 3, advertInt: 1,
    extraInstance: `virtual_routes = ${list(routes)}\nvirtual_rules = ${list(RULES)}`,
  }).replace('metrics_listen = ""', `metrics_listen = ""\n${statics}`);
}

async function kernelView(h: LabHost): Promise<string> {
  const routes = (await h.exec(['ip', 'route', 'show', 'table', 'all'])).stdout;
  const rules = (await h.exec(['ip', 'rule'])).stdout;
  const addrs = (await h.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0'])).stdout;
  return `${routes}${rules}${addrs}`;
}

const has = (view: string, res: RegExp[]) => res.every((re) => re.test(view));
const hasNone = (view: string, res: RegExp[]) => res.every((re) => !re.test(view));

async function expectVirtual(t: ExecutionContext, h: LabHost, present: boolean, phase: string): Promise<void> {
  const all = [...ROUTE_LINES, ...RULE_LINES];
  await waitFor(async () => {
    const v = await kernelView(h);
    return present ? has(v, all) : hasNone(v, all);
  }, 5_000, `${phase}: virtual routes and rules ${present ? 'on' : 'off'} ${h.name}`, 50).catch(() => undefined);
  const v = await kernelView(h);
  if (present) t.true(has(v, all), `${phase}: ${h.name} has every virtual route and rule:\n${v}`);
  else t.true(hasNone(v, all), `${phase}: ${h.name} has no virtual route or rule:\n${v}`);
}

async function state(d: Director): Promise<string> {
  return (await d.instance()).state;
}

netnsTest('virtual_routes / virtual_rules are in while MASTER only; static_* from start to stop; reload applies the difference', async (t) => {
  const lab = await createLab(t);
  const ha = await lab.addHost('a');
  const hb = await lab.addHost('b');

  // 1. a is MASTER.
  let a = await startDirector(lab, ha, toml('a', 150));
  await waitFor(async () => (await state(a)) === 'MASTER', 10_000, 'a MASTER', 50);
  const b = await startDirector(lab, hb, toml('b', 100));
  await waitFor(async () => (await state(b)) === 'BACKUP', 10_000, 'b BACKUP', 50);
  await expectVirtual(t, ha, true, 'a MASTER');
  await expectVirtual(t, hb, false, 'b BACKUP');
  for (const h of [ha, hb]) {
    const v = await kernelView(h);
    t.true(has(v, STATIC_LINES) && /192\.168\.99\.1\/24 .*eth0:st/.test(v), `static entries on ${h.name}:\n${v}`);
  }

  // 2. a stops: b gains the virtual routes, a's are gone, and so are a's static ones.
  await a.proc.kill('SIGTERM');
  t.is((await a.proc.exited).code, 0);
  await waitFor(async () => (await state(b)) === 'MASTER', 10_000, 'b MASTER', 50);
  await expectVirtual(t, hb, true, 'b MASTER');
  await expectVirtual(t, ha, false, 'a stopped');
  const stopped = await kernelView(ha);
  t.true(hasNone(stopped, STATIC_LINES) && !stopped.includes('192.168.99.1'), `a's static entries are gone after stop:\n${stopped}`);

  // 3. a returns and preempts.
  a = await startDirector(lab, ha, toml('a', 150));
  await waitFor(async () => (await state(a)) === 'MASTER', 10_000, 'a MASTER again', 50);
  await waitFor(async () => (await state(b)) === 'BACKUP', 5_000, 'b BACKUP again', 50);
  await expectVirtual(t, ha, true, 'a MASTER again');
  await expectVirtual(t, hb, false, 'b BACKUP again');

  // 4. Reload a: one route replaced, the rest kept.
  const text = await readFile(a.configPath, 'utf8');
  await writeFile(a.configPath, text.replace('blackhole 10.201.0.0/16', 'unreachable 10.204.0.0/16'));
  const reply = await controlRequest(a.socket, 'reload', {}, 10_000);
  t.true(reply.ok, JSON.stringify(reply));
  t.log(`reload summary: ${JSON.stringify(reply.ok ? reply.result : reply.error)}`);
  await waitFor(async () => /^unreachable 10\.204\.0\.0\/16 proto keepalived/m.test(await kernelView(ha)), 5_000, 'new route in', 50);
  const after = await kernelView(ha);
  t.false(/10\.201\.0\.0\/16/.test(after), `the replaced route is gone:\n${after}`);
  t.true(has(after, [ROUTE_LINES[0]!, ROUTE_LINES[2]!, ROUTE_LINES[3]!, ...RULE_LINES]), `the other routes and rules stay:\n${after}`);
});
