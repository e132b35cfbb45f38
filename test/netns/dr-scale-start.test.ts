// Start-up of a director with 1,000 DR virtual servers (nftables data plane): the control socket
// answers and VRRP adverts keep their interval while the services are set up and served. (It once
// spawned one `ip` process per real server and per served service on the main thread: status did
// not answer for 13-17 s, the first advert came 23 s after spawn, then an 8 s gap between two.)
// Generous bounds (2 shared cores, other labs beside): no figure here is a benchmark, see
// `npm run bench -- --only scale --param scale.kind=DR` for those.
import { createLab, netnsTest, sleep } from '../lib/netns.js';
import { controlRequest } from '../../src/cli/control-client.js';
import { directorToml, startDirector } from '../lib/daemon.js';
import { startTcpdump } from '../lib/servers.js';
import { advertTimes } from '../lib/reliability.js';
import type { StatusReport } from '../../src/daemon/status.js';

const N = 1000;
const VIP = '10.77.0.50';

netnsTest(`${N} DR virtual servers: status answers and adverts keep their 1 s interval while every service is set up and served`, async (t) => {
  const lab = await createLab(t);
  const [r1, a] = await Promise.all([lab.addHost('r1', { ipv4: '10.77.0.21/24' }), lab.addHost('da', { ipv4: '10.77.0.11/24' })]);
  // One real server each, no checker (up from the start): the pools go to the data plane at once.
  const vs = Array.from({ length: N }, (_, i) =>
    `[[virtual_server]]\naddress = "${VIP}"\nport = ${20000 + i}\nlb_kind = "DR"\nprotocol = "TCP"\nlb_algo = "rr"\n\n[[virtual_server.real_server]]\naddress = "10.77.0.21"\nport = ${20000 + i}\n`).join('\n');
  const toml = directorToml({ routerId: 'da', priority: 255, vips: [`${VIP}/24`], advertInt: 1, extra: vs }).replace('priority = 255\n', 'priority = 255\nstate = "MASTER"\n');
  const cap = await startTcpdump(r1, 'ip proto 112', { args: ['-tt'] });
  const t0 = Date.now();
  const d = await startDirector(lab, a, toml, { args: ['--log-level', 'info', '--log-format', 'json'], startTimeoutMs: 60_000 });
  const socketMs = Date.now() - t0;
  // Probe status back to back until every service is served (and 3 s more).
  const probes: number[] = [];
  let servedAt: number | undefined;
  while (Date.now() - t0 < 90_000 && (servedAt === undefined || Date.now() - servedAt < 3_000)) {
    const p0 = Date.now();
    const r = await controlRequest(d.socket, 'status', {}, 60_000);
    probes.push(Date.now() - p0);
    if (!r.ok) throw new Error(r.error.message);
    const st = r.result as StatusReport;
    if (servedAt === undefined && st.virtual_servers.length === N && st.virtual_servers.every((v) => v.serving)) servedAt = Date.now();
    await sleep(200);
  }
  await sleep(1_200);
  await cap.stop();
  const adverts = advertTimes(cap.text()).get(`${a.ipv4!}/51`) ?? [];
  const gaps = adverts.slice(1).map((x, i) => x - adverts[i]!);
  t.log(`socket ${socketMs} ms; every service served ${servedAt === undefined ? 'never' : `${servedAt - t0} ms`}; status probes ${probes.length}, largest ${Math.max(...probes)} ms; adverts ${adverts.length}, first ${adverts.length ? (adverts[0]! - t0).toFixed(0) : '-'} ms, largest gap ${gaps.length ? Math.max(...gaps).toFixed(0) : '-'} ms`);
  t.truthy(servedAt, `every one of the ${N} services served within 90 s`);
  t.true(Math.max(...probes) < 5_000, `status answered within 5 s every time while the services were set up (largest ${Math.max(...probes)} ms)`);
  t.true(adverts.length >= 3, 'adverts seen');
  t.true(adverts[0]! - t0 < 20_000, `first advert ${adverts[0]! - t0} ms after spawn`);
  // A gap of 3 × advert_int would make a backup take over (Master_Down_Interval).
  t.true(Math.max(...gaps) < 2_500, `largest gap between two adverts ${Math.max(...gaps).toFixed(0)} ms (advert_int 1 s)`);
});
