/**
 * HTTP_GET checks on the native schedule (the check engine's thread runs delay_loop, retries and
 * delay_before_retry; the event loop only hears of attempts that change something): a real server
 * whose nginx is stopped is marked down within delay_loop + the retries, comes back within
 * delay_loop of its nginx starting again, and the counters the metrics show (check_failures_total,
 * check_duration_seconds, read from the engine by polling) still move while nothing is handed over.
 */
import { createLab, netnsTest, waitFor, sleep } from '../lib/netns.js';
import { startDirector, directorToml } from '../lib/daemon.js';
import { startNginx, httpGet } from '../lib/servers.js';
import { assertWithinBound } from '../lib/timing.js';

const DELAY_LOOP = 1;
const CONNECT_TIMEOUT = 1;
const RETRY = 1;
const DELAY_BEFORE_RETRY = 0.5;
/** Refused at once, so delay_loop + the retries; connect_timeout per attempt for a loaded machine, + 0.5 s. */
const DOWN_BOUND_MS = (DELAY_LOOP + CONNECT_TIMEOUT * (RETRY + 1) + DELAY_BEFORE_RETRY * RETRY) * 1000 + 500;
/** The next attempt after delay_loop passes. */
const UP_BOUND_MS = (DELAY_LOOP + CONNECT_TIMEOUT) * 1000 + 500;

netnsTest('HTTP_GET on the native schedule: down and up detected within their bounds; metrics counters keep moving', async (t) => {
  const lab = await createLab(t);
  const [a, r1, r2, c] = await Promise.all([lab.addHost('a'), lab.addHost('r1'), lab.addHost('r2'), lab.addHost('c')]);
  const vip = lab.addr4(100);
  await startNginx(r1, { port: 80, body: 'r1', tmpDir: lab.tmpDir, ipv6: false });
  let nginx2 = await startNginx(r2, { port: 80, body: 'r2', tmpDir: lab.tmpDir, ipv6: false });
  const rs = (addr: string) => `
[[virtual_server.real_server]]
address = "${addr}"
port = 80
check = { type = "HTTP_GET", path = "/", status_code = 200, connect_timeout = ${CONNECT_TIMEOUT}, retry = ${RETRY}, delay_before_retry = ${DELAY_BEFORE_RETRY} }
`;
  const service = `[[virtual_server]]
address = "${vip}"
port = 80
lb_kind = "PROXY"
lb_algo = "rr"
delay_loop = ${DELAY_LOOP}
${rs(r1.ipv4!)}${rs(r2.ipv4!)}`;
  const toml = directorToml({ routerId: 'a', priority: 150, vips: [`${vip}/24`], extra: service }).replace('metrics_listen = ""', `metrics_listen = "${a.ipv4}:9650"`);
  const d = await startDirector(lab, a, toml);
  const upOf = async () => (await d.status()).virtual_servers[0]!.real_servers.map((r) => r.up);
  await waitFor(async () => (await upOf()).every(Boolean), 10_000, 'both real servers up');

  const metric = async (name: string, addr: string): Promise<number | undefined> => {
    const page = (await httpGet(c, a.ipv4!, 9650, '/metrics', 3_000)).body;
    const line = page.split('\n').find((l) => l.startsWith(`keepalive_ts_${name}{`) && l.includes(`real_server="${addr}:80"`));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  const dur1 = await metric('check_duration_seconds', r1.ipv4!);
  t.true(dur1 !== undefined && dur1 >= 0 && dur1 < CONNECT_TIMEOUT, `check_duration_seconds of r1: ${dur1}`);
  t.is(await metric('check_failures_total', r2.ipv4!), 0, 'no failure of r2 yet');

  // r2's nginx stops: refused -> one retry after delay_before_retry -> down.
  await nginx2.kill('SIGKILL');
  const stoppedAt = Date.now();
  await waitFor(async () => !(await upOf())[1], DOWN_BOUND_MS + 5_000, 'r2 down', 50);
  assertWithinBound(t, Date.now() - stoppedAt, DOWN_BOUND_MS, 'r2 marked down after its nginx stopped');
  t.true((await upOf())[0], 'r1 stays up');
  const st = (await d.status()).virtual_servers[0]!.real_servers[1]!;
  t.regex(st.reason ?? '', /HTTP_GET\[0\]: .*ECONNREFUSED/);
  // While down for the same reason nothing is handed to the event loop, yet the failures counter moves.
  const f0 = (await metric('check_failures_total', r2.ipv4!)) ?? 0;
  t.true(f0 >= RETRY + 1, `check_failures_total of r2 after going down: ${f0}`);
  await sleep(2_500);
  const f1 = (await metric('check_failures_total', r2.ipv4!)) ?? 0;
  t.true(f1 >= f0 + 1, `failures keep counting while r2 stays down (${f0} -> ${f1})`);

  // r2's nginx is back: up again on the next attempt.
  nginx2 = await startNginx(r2, { port: 80, body: 'r2', tmpDir: lab.tmpDir, ipv6: false });
  const startedAt = Date.now();
  await waitFor(async () => (await upOf())[1], UP_BOUND_MS + 5_000, 'r2 up again', 50);
  assertWithinBound(t, Date.now() - startedAt, UP_BOUND_MS, 'r2 up again after its nginx started');

  // Steady success: the duration gauge of r1 is refreshed (the engine's last attempt), failures stay.
  const r1f = await metric('check_failures_total', r1.ipv4!);
  t.is(r1f, 0, 'r1 never failed');
  const res = await httpGet(c, vip, 80, '/', 3_000);
  t.true(res.body === 'r1' || res.body === 'r2', `the VIP serves (${res.body})`);
});
