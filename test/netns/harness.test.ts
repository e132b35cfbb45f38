// Proves the network-namespace lab harness that the VRRP/keepalived/LVS integration tests
// build on: connectivity (v4, v6, multicast), cable pulls, isolation of parallel labs, and
// that nothing outlives a lab.
import test from 'ava';
import { existsSync } from 'node:fs';
import { createLab, netnsTest, sweepStaleLabs, waitFor } from '../lib/netns.js';
import { pidAlive, run, startProcess } from '../lib/procs.js';
import { httpGet, ping, startNginx, startTcpdump } from '../lib/servers.js';

async function netnsNames(): Promise<string[]> {
  const out = (await run(['ip', 'netns', 'list'])).stdout;
  return out.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean);
}

netnsTest('two hosts reach each other over IPv4, IPv6 and link-local multicast', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const b = await lab.addHost('b', { ipv4: '10.77.0.50/24', ipv6: 'fd77::50/64' });

  t.is(a.ipv4, '10.77.0.11');
  t.is(a.ipv6, 'fd77::b');
  t.is(b.ipv4, '10.77.0.50');
  t.regex(a.mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  t.not(a.mac, b.mac);
  t.true(a.ifindex > 1);
  t.true((await a.addresses()).some((x) => x.startsWith('fe80:')), 'link-local address kept');

  for (const [from, to] of [
    [a, b.ipv4!],
    [b, a.ipv4!],
    [a, b.ipv6!],
    [b, a.ipv6!],
  ] as const) {
    const r = await ping(from, to, 2);
    t.true(r.ok, `${from.name} -> ${to}: ${r.output}`);
  }

  // All-nodes multicast must cross the bridge (snooping off): b's link-local answers.
  const bLinkLocal = (await b.addresses()).find((x) => x.startsWith('fe80:'));
  const mc = await a.exec(['ping', '-6', '-n', '-c', '2', '-i', '0.2', '-W', '1', 'ff02::1%eth0'], { allowFail: true });
  t.true(mc.stdout.includes(`from ${bLinkLocal}`), mc.stdout);

  // The capture helper sees traffic that arrives after it reports "listening".
  const cap = await startTcpdump(b, 'icmp');
  t.true((await ping(a, b.ipv4!, 1)).ok);
  await waitFor(() => /ICMP echo request/.test(cap.text()), 5_000, 'tcpdump to show the echo request');
  await cap.stop();
  t.regex(cap.text(), new RegExp(`${a.ipv4!.replace(/\./g, '\\.')} > ${b.ipv4!.replace(/\./g, '\\.')}: ICMP echo request`));
});

netnsTest('a host whose switch port is down is unreachable until linkUp', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const b = await lab.addHost('b');
  t.true((await ping(a, b.ipv4!, 1)).ok);

  await b.linkDown();
  // The host side loses carrier, as with a pulled cable.
  await waitFor(async () => (await b.exec(['ip', 'link', 'show', 'eth0'])).stdout.includes('NO-CARRIER'), 5_000, 'eth0 NO-CARRIER');
  const down4 = await ping(a, b.ipv4!, 2);
  t.false(down4.ok, down4.output);
  t.is(down4.received, 0);
  t.false((await ping(a, b.ipv6!, 1)).ok);

  await b.linkUp();
  await waitFor(async () => (await ping(a, b.ipv4!, 1)).ok, 10_000, 'IPv4 reachability after linkUp');
  await waitFor(async () => (await ping(a, b.ipv6!, 1)).ok, 10_000, 'IPv6 reachability after linkUp');
  t.pass();
});

netnsTest('close() removes namespaces, temp dir and every process (even one ignoring SIGTERM)', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  await lab.addHost('b');
  const mine = (await netnsNames()).filter((n) => n.startsWith(`${lab.id}-`));
  t.deepEqual(mine.sort(), [`${lab.id}-a`, `${lab.id}-b`, lab.switchNs].sort());
  t.true(existsSync(lab.tmpDir));

  // A forked grandchild must die with its group; a TERM-ignoring process needs the SIGKILL.
  const forker = a.spawn(['sh', '-c', 'sleep 300 & echo child=$!; wait']);
  const stubborn = a.spawn(['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 1; done']);
  const child = Number((await forker.waitForOutput(/child=(\d+)/, 5_000))[1]);
  await stubborn.waitForOutput(/ready/, 5_000);
  t.true(pidAlive(child));

  await lab.close();
  await lab.close(); // idempotent

  t.false(pidAlive(forker.pid));
  t.false(pidAlive(child));
  t.false(pidAlive(stubborn.pid));
  t.notDeepEqual((await stubborn.exited).signal, null);
  t.deepEqual((await netnsNames()).filter((n) => n.startsWith(`${lab.id}-`)), []);
  t.false(existsSync(lab.tmpDir));
  await t.throwsAsync(lab.addHost('c'), { message: /closed/ });
});

netnsTest('two labs with the same addresses run in parallel without interfering', async (t) => {
  const [lab1, lab2] = await Promise.all([createLab(t), createLab(t)]);
  t.not(lab1.id, lab2.id);
  // Identical host names and addresses: only namespace isolation keeps them apart.
  const [c1, s1, c2, s2] = await Promise.all([lab1.addHost('client'), lab1.addHost('server'), lab2.addHost('client'), lab2.addHost('server')]);
  t.is(s1.ipv4, s2.ipv4);

  await Promise.all([startNginx(s1, { port: 8080, body: 'from-lab1', tmpDir: lab1.tmpDir }), startNginx(s2, { port: 8080, body: 'from-lab2', tmpDir: lab2.tmpDir })]);
  t.deepEqual(await httpGet(c1, s1.ipv4!, 8080), { status: 200, body: 'from-lab1' });
  t.deepEqual(await httpGet(c2, s2.ipv4!, 8080), { status: 200, body: 'from-lab2' });
  t.deepEqual(await httpGet(c2, s2.ipv6!, 8080), { status: 200, body: 'from-lab2' });

  // Pulling a cable in one lab leaves the other alone.
  await s1.linkDown();
  await t.throwsAsync(httpGet(c1, s1.ipv4!, 8080, '/', 1_500));
  t.deepEqual(await httpGet(c2, s2.ipv4!, 8080), { status: 200, body: 'from-lab2' });
});

netnsTest('stale labs of dead processes are swept', async (t) => {
  // A namespace named as if created by a process that has since exited.
  const dead = startProcess(['true']);
  await dead.exited;
  const ns = `kt-${dead.pid}-1-sw`;
  await run(['ip', 'netns', 'add', ns]);
  t.teardown(() => run(['ip', 'netns', 'del', ns], { allowFail: true }).then(() => {}));
  t.true((await netnsNames()).includes(ns));
  await sweepStaleLabs();
  t.false((await netnsNames()).includes(ns));
});

test('waitFor reports what it was waiting for', async (t) => {
  await t.throwsAsync(waitFor(() => false, 50, 'the impossible', 10), { message: 'timed out waiting for the impossible' });
  let n = 0;
  await waitFor(() => ++n >= 3, 1_000, 'three polls', 1);
  t.is(n, 3);
});
