// Director failures seen from the router (issue 13): a crash (kill -9 of keepalive-ts and its BIRD
// with the link down) is detected by BFD; a graceful stop withdraws before it drains; a tracked
// link that goes down withdraws and comes back announced.
// The crash and the graceful stop run twice: with the user-space proxy (PROXY), and with the kernel
// data plane in DR with mh (same Maglev table size and seed on every director), where 60 long-lived
// sessions spread over the three directors all keep going, to the same real server, across both.
import { createLab, netnsTest, waitFor, sleep } from '../lib/netns.js';
import type { Director } from '../lib/daemon.js';
import { httpBatch } from '../lib/clients.js';
import { killGroup } from '../lib/procs.js';
import { nextHops, startBgpSet, startLongSessions, VIP4, VIP6, type BgpKind, type BgpLab, type LongSessions } from '../lib/bgp.js';
import type { LabHost, LabProcess } from '../lib/netns.js';
import { join } from 'node:path';
import { Chromium, type Page } from '../lib/chromium.js';

async function setUp(t: Parameters<Parameters<typeof netnsTest>[1]>[0], directors: number, more: Partial<Parameters<typeof startBgpSet>[1]> = {}): Promise<{ bl: BgpLab; ds: Director[] }> {
  return startBgpSet(await createLab(t), { directors, reals: 2, ...more });
}

/** BGP rows of the status page as drawn now. */
async function bgpPage(page: Page): Promise<{ peers: string[][]; prefixes: string[][] }> {
  return page.evaluate(`(() => ({
    peers: [...document.querySelectorAll('tr[data-peer]')].map((tr) => [tr.dataset.peer, tr.dataset.state]),
    prefixes: [...document.querySelectorAll('tr[data-prefix]')].map((tr) => [tr.dataset.prefix, tr.dataset.announced, tr.querySelector('td.reason').textContent]),
  }))()`);
}

/** `ip -ts monitor route` on the router; finds the first line about `vip` after `afterMs` and returns its time. */
function monitorRoutes(router: LabHost): { proc: LabProcess; changeAt(vip: string, afterMs: number): number | undefined } {
  const proc = router.spawn(['ip', '-ts', 'monitor', 'route']);
  return {
    proc,
    changeAt(vip, afterMs) {
      for (const line of proc.output().split('\n')) {
        const m = /^\[([0-9T:.-]+)\]\s*(.*)$/.exec(line);
        if (!m || !m[2]!.includes(vip)) continue;
        const at = Date.parse(`${m[1]}Z`);
        if (at >= afterMs) return at;
      }
      return undefined;
    },
  };
}

/**
 * The pretty log's "HH:MM:SS.mmm" of the last line matching `re`, as epoch ms of today (UTC). (The
 * last: a check that timed out under load before the stop may have unserved and re-served once.)
 */
function logTime(output: string, re: RegExp): number | undefined {
  const line = output.split('\n').filter((l) => re.test(l)).at(-1);
  const m = line ? /(\d{2}):(\d{2}):(\d{2})\.(\d{3})/.exec(line) : null;
  if (!m) return undefined;
  const d = new Date();
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]));
}

const SESSIONS = 60;

/** The long sessions all ended unbroken, each on the real server it started with (the echo names it). */
async function sessionsKept(t: Parameters<Parameters<typeof netnsTest>[1]>[0], sessions: LongSessions, label: string): Promise<void> {
  const res = await sessions.result();
  t.is(res.length, SESSIONS, sessions.proc.output().slice(-2000));
  const broken = res.filter((f) => !f.ok);
  t.log(`${label}: ${SESSIONS - broken.length}/${SESSIONS} long sessions unbroken on their real server; per director before: ${sessions.perDirector.join(' / ')}; servers ${JSON.stringify(res.reduce<Record<string, number>>((a, f) => ({ ...a, [f.server]: (a[f.server] ?? 0) + 1 }), {}))}`);
  t.deepEqual(broken.map((f) => `${f.localPort}: ${f.reason}`), [], `${label}: broken sessions`);
}

/** DR: SESSIONS long sessions spread over every director (each forwards some), running for `ms`. */
async function longSessions(t: Parameters<Parameters<typeof netnsTest>[1]>[0], bl: BgpLab, ds: Director[], ms: number): Promise<LongSessions> {
  const sessions = await startLongSessions(bl, ds, SESSIONS, ms);
  t.is(sessions.perDirector.reduce((a, b) => a + b, 0), SESSIONS, `sessions counted per director: ${sessions.perDirector.join(' / ')}`);
  t.true(sessions.perDirector.every((n) => n > 0), `every director forwards sessions: ${sessions.perDirector.join(' / ')}`);
  return sessions;
}

for (const kind of ['PROXY', 'DR'] as const satisfies readonly BgpKind[]) {
netnsTest(`${kind}: kill -9 of a director (keepalive-ts and its BIRD) with its link down: BFD makes the router drop its next hop within 1 s; the others keep serving${kind === 'DR' ? '; with mh, the dead director\'s sessions continue on the others to the same real server (0 broken)' : ''}`, async (t) => {
  const { bl, ds } = await setUp(t, 3, { kind });
  const [d1] = bl.directors;
  const sessions = kind === 'DR' ? await longSessions(t, bl, ds, 6_000) : undefined;
  const mon = monitorRoutes(bl.router);
  await sleep(300);
  // Link first, then the kill: no TCP close or BGP Cease can get out, only BFD can tell.
  const t0 = Date.now();
  await d1!.linkDown();
  killGroup(ds[0]!.proc.pid, 'SIGKILL');
  const others = bl.directors.slice(1).map((d) => d.ipv4!).sort().join();
  await waitFor(async () => (await nextHops(bl.router, VIP4)).join() === others, 5_000, 'the router drops d1', 10);
  const at = mon.changeAt(VIP4, t0 - 5);
  t.truthy(at, mon.proc.output());
  const took = at! - t0;
  t.log(`router changed its route ${took} ms after link down + kill -9 (BFD 100 ms x 3)`);
  t.true(took >= 150 && took < 1000, `${took} ms`);
  // Both of d1's BIRD sessions are gone at the router, by BFD.
  await waitFor(async () => (await nextHops(bl.router, VIP6)).length === 2, 5_000, 'IPv6 next hop dropped too');
  // keepalive-ts and its BIRD are both gone (no BIRD left announcing for a dead keepalive-ts).
  await ds[0]!.proc.exited;
  const runtime = join(bl.lab.tmpDir, 'bird-d1');
  await waitFor(async () => !(await d1!.exec(['ps', '-eo', 'args'])).stdout.includes(runtime), 2_000, "d1's BIRD gone with it");
  const r = await httpBatch(bl.client, VIP4, 80, 40);
  t.deepEqual(r.errors, {}, 'new connections all land on the living directors');
  if (sessions) await sessionsKept(t, sessions, 'crash');
});

netnsTest(`${kind}: graceful stop: the router has dropped the director before it stops accepting; ${kind === 'DR' ? '0 failed requests, 0 broken sessions' : 'no connection refused'}`, async (t) => {
  const { bl, ds } = await setUp(t, 3, { kind });
  const sessions = kind === 'DR' ? await longSessions(t, bl, ds, 5_000) : undefined;
  const mon = monitorRoutes(bl.router);
  await sleep(300);
  const load = httpBatch(bl.client, VIP4, 80, 300, { pauseMs: 5 });
  await sleep(700);
  const t0 = Date.now();
  process.kill(ds[0]!.proc.pid, 'SIGTERM');
  const result = await load;
  const exit = await ds[0]!.proc.exited;
  t.is(exit.code, 0);
  const out = ds[0]!.proc.output();
  const routerAt = mon.changeAt(VIP4, t0 - 5);
  const withdrawnAt = logTime(out, /BGP announcements withdrawn/);
  const drainAt = logTime(out, /stopped serving tcp\/10\.99\.0\.10:80; draining/);
  t.truthy(routerAt, mon.proc.output());
  t.truthy(withdrawnAt, out);
  t.truthy(drainAt, out);
  t.log(`router route change ${routerAt! - t0} ms after SIGTERM; d1 stopped accepting ${drainAt! - t0} ms after SIGTERM`);
  t.true(routerAt! < drainAt!, 'the router moved the address away before the director stopped accepting');
  t.true(withdrawnAt! <= drainAt!);
  t.is(Object.values(result.bodies).reduce((a, b) => a + b, 0) + Object.values(result.errors).reduce((a, b) => a + b, 0), 300);
  t.log(`errors: ${JSON.stringify(result.errors)} of 300 requests`);
  if (kind === 'DR') {
    // Every director sends a flow to the same real server: the flows the router moves away from the
    // stopping director, in flight or not, keep going.
    t.deepEqual(result.errors, {}, 'no failed request');
    await sessionsKept(t, sessions!, 'graceful stop');
  } else {
    // Refused/timed-out connections would mean SYNs reached a director that no longer accepted.
    // A reset can only hit a connection in flight at the instant the router moved its flow to
    // another director, which the user-space proxy cannot take over (DR + mh can).
    const bad = Object.keys(result.errors).filter((e) => e !== 'ECONNRESET');
    t.deepEqual(bad, [], JSON.stringify(result.errors));
    t.true((result.errors.ECONNRESET ?? 0) <= 3, JSON.stringify(result.errors));
  }
  t.is((await nextHops(bl.router, VIP4)).length, 2);
});
}

netnsTest('a tracked link that goes down withdraws (status and status page say why); back up, the director announces again', async (t) => {
  // d2 tracks an interface of its own (one end of a veth pair inside its namespace: it loses
  // carrier when the other end goes down) instead of the peer's interface (track_interface).
  const { bl, ds } = await setUp(t, 2, {
    metricsListen: '127.0.0.1:9650',
    bgpExtra: (d) => (d.name === 'd2' ? 'track_interface = ["kt0"]' : ''),
    prepare: async (b) => void (await b.directors[1]!.exec(['sh', '-ec', 'ip link add kt0 type veth peer name kt1\nip link set kt0 up\nip link set kt1 up'])),
  });
  const d1 = bl.directors[0]!;
  // The status page, in d1's own namespace (its link is about to go down).
  const browser = await Chromium.launch({ userDataDir: join(bl.lab.tmpDir, 'chromium'), netns: d1.ns });
  t.teardown(() => browser.close());
  const page = await browser.open('http://127.0.0.1:9650/?refresh=1');
  await waitFor(async () => (await bgpPage(page)).prefixes.length === 2, 20_000, 'the page shows the prefixes', 200);
  await waitFor(async () => (await bgpPage(page)).peers.every((p) => p[1] === 'Established'), 20_000, 'the page shows the sessions', 200);
  t.deepEqual((await bgpPage(page)).prefixes.map((p) => p.slice(0, 2)), [[`${VIP4}/32`, 'true'], [`${VIP6}/128`, 'true']]);
  const table = async () => (await d1.exec(['ip', 'route', 'show', 'table', '100'])).stdout.trim();
  t.regex(await table(), /^10\.99\.0\.10 dev lo proto 200 scope link/);
  t.deepEqual((await ds[0]!.status()).bgp!.tracked_interfaces, [{ name: 'eth0', up: true }]);
  await d1.linkDown();
  await waitFor(async () => (await table()) === '', 5_000, 'd1 deleted its announcement route');
  const s = (await ds[0]!.status()).bgp!;
  t.deepEqual(s.tracked_interfaces, [{ name: 'eth0', up: false }]);
  t.true(s.prefixes.every((p) => !p.announced && p.reason === 'withdrawn: no link on eth0'));
  t.is(s.withdrawals.link, 2);
  await waitFor(async () => (await bgpPage(page)).prefixes.every((p) => p[1] === 'false' && p[2] === 'no link on eth0'), 10_000, 'the page shows the withdrawal and why', 200);
  // (Serving is not touched by the link loss itself, unit-tested in announce-desired; here the health
  // checks cross the same link, so the quorum goes too a moment later. The reason stays the link.)
  await d1.linkUp();
  await waitFor(async () => (await nextHops(bl.router, VIP4)).length === 2, 20_000, 'd1 re-announced after the link came back');
  await waitFor(async () => (await nextHops(bl.router, VIP6)).length === 2, 20_000, 'd1 re-announced IPv6');
  t.true((await ds[0]!.status()).bgp!.prefixes.every((p) => p.announced));

  // track_interface = ["kt0"] on d2: its own interface, not eth0, withdraws it.
  const d2 = bl.directors[1]!;
  t.deepEqual((await ds[1]!.status()).bgp!.tracked_interfaces, [{ name: 'kt0', up: true }]);
  await d2.exec(['ip', 'link', 'set', 'kt1', 'down']);
  await waitFor(async () => (await nextHops(bl.router, VIP4)).join() === d1.ipv4, 10_000, 'the router drops d2');
  t.true((await ds[1]!.status()).bgp!.prefixes.every((p) => !p.announced && p.reason === 'withdrawn: no link on kt0'));
  await d2.exec(['ip', 'link', 'set', 'kt1', 'up']);
  await waitFor(async () => (await nextHops(bl.router, VIP4)).length === 2, 10_000, 'd2 announces again');
});
