// An FRR router (zebra, bfdd, bgpd 8.4) in front of keepalive-ts directors: the router config
// docs/bgp.md gives for FRR, proven. ECMP over both directors in both families, BFD drops a
// crashed director within a second, a withdrawal is seen at once.
import { createLab, netnsTest, waitFor, sleep } from '../lib/netns.js';
import { httpBatch } from '../lib/clients.js';
import { killGroup } from '../lib/procs.js';
import { nextHops, startBgpSet, VIP4, VIP6 } from '../lib/bgp.js';

netnsTest('FRR router: ECMP over three keepalive-ts directors (IPv4 and IPv6), withdrawal on stop, BFD on crash', async (t) => {
  const { bl, ds, frr } = await startBgpSet(await createLab(t), { directors: 3, reals: 2, router: 'frr' });
  // BGP can be established before its BFD session (FRR brings BFD up beside it): wait for it, so
  // the crash below is detected by BFD, not by the hold timer.
  let bfd = '';
  await waitFor(async () => /10\.78\.0\.11\s+up/.test((bfd = await frr!.vtysh('show bfd peers brief'))), 10_000, 'BFD session to d1 up');
  t.regex(bfd, /10\.78\.0\.11\s+up/);
  const r = await httpBatch(bl.client, VIP4, 80, 30);
  t.deepEqual(r.errors, {});
  const r6 = await httpBatch(bl.client, VIP6, 80, 30);
  t.deepEqual(r6.errors, {});

  // Graceful stop of d3: withdrawn first.
  process.kill(ds[2]!.proc.pid, 'SIGTERM');
  await waitFor(async () => (await nextHops(bl.router, VIP4)).length === 2, 10_000, 'FRR drops d3');
  t.is((await ds[2]!.proc.exited).code, 0);

  // Crash of d1 with its link down: only BFD tells FRR.
  await sleep(300);
  const t0 = Date.now();
  await bl.directors[0]!.linkDown();
  killGroup(ds[0]!.proc.pid, 'SIGKILL');
  await waitFor(async () => (await nextHops(bl.router, VIP4)).join() === bl.directors[1]!.ipv4, 5_000, 'FRR drops d1', 20);
  const took = Date.now() - t0;
  t.log(`FRR dropped the crashed director after ${took} ms (polled every 20 ms; BFD 100 ms x 3)`);
  t.true(took < 1000, `${took} ms`);
  const r2 = await httpBatch(bl.client, VIP4, 80, 20);
  t.deepEqual(r2.errors, {});
});
