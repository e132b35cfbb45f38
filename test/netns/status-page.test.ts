import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, netnsTest, waitFor } from '../lib/netns.js';
import { startDirector, directorToml } from '../lib/daemon.js';
import { startNginx, httpGet } from '../lib/servers.js';
import { httpBatch } from '../lib/clients.js';
import { Chromium, type Page } from '../lib/chromium.js';

const VIP = '10.77.0.50';
const REFRESH_S = 1;

/** Where screenshots go: kept after the test (a CI artefact), printed in the test log. */
function artifactPath(name: string): string {
  const dir = process.env.KEEPALIVE_TS_ARTIFACTS ?? join(tmpdir(), 'keepalive-ts-artifacts');
  mkdirSync(dir, { recursive: true });
  return join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.png`);
}

interface Row { rs: string; health: string; weight: string; conns: string; when: string; reason: string }

/** The real-server rows of the page as drawn now, and how many reports it has drawn. */
async function pageState(page: Page): Promise<{ refreshes: number; error: string | null; instance: string | null; rows: Row[] }> {
  return page.evaluate(`(() => !document.body ? { refreshes: 0, error: 'no body yet', instance: null, rows: [] } : ({
    refreshes: Number(document.body.dataset.refreshes || 0),
    error: document.body.dataset.error || null,
    instance: (document.querySelector('tr[data-instance="VI_1"]') || { dataset: {} }).dataset.state || null,
    rows: [...document.querySelectorAll('tr[data-rs]')].map((tr) => ({
      rs: tr.dataset.rs, health: tr.dataset.health,
      weight: tr.children[2].textContent, conns: tr.children[5].textContent,
      when: tr.querySelector('td.when').textContent, reason: tr.querySelector('td.reason').textContent,
    })),
  }))()`);
}

netnsTest('status page: headless Chromium renders instances and real servers, and shows a real server going down within one refresh', async (t) => {
  const lab = await createLab(t);
  const [dh, r1, r2, browserHost, client] = await Promise.all([
    lab.addHost('da', { ipv4: '10.77.0.11/24' }), lab.addHost('r1', { ipv4: '10.77.0.21/24' }), lab.addHost('r2', { ipv4: '10.77.0.22/24' }),
    lab.addHost('web', { ipv4: '10.77.0.90/24' }), lab.addHost('cl', { ipv4: '10.77.0.100/24' }),
  ]);
  await startNginx(r1, { port: 80, body: 'r1', tmpDir: lab.tmpDir });
  const n2 = await startNginx(r2, { port: 80, body: 'r2', tmpDir: lab.tmpDir });
  const rs = (addr: string) => `
[[virtual_server.real_server]]
address = "${addr}"
port = 80
weight = 2
check = { type = "TCP_CHECK", connect_timeout = 1, retry = 0 }
`;
  const toml = directorToml({
    routerId: 'lb-page', priority: 150, vips: [`${VIP}/24`],
    extra: `[[virtual_server]]\naddress = "${VIP}"\nport = 80\nlb_kind = "PROXY"\nprotocol = "TCP"\nlb_algo = "wlc"\ndelay_loop = 1\ndrain_timeout = 1\n${rs('10.77.0.21')}${rs('10.77.0.22')}`,
  }).replace('metrics_listen = ""', 'metrics_listen = "10.77.0.11:9650"');
  const d = await startDirector(lab, dh, toml);
  await waitFor(async () => {
    const s = await d.status();
    return s.vrrp[0]?.state === 'MASTER' && s.virtual_servers[0]?.serving === true && s.virtual_servers[0].real_servers.every((r) => r.health === 'up');
  }, 15_000, 'MASTER, serving, both real servers up');
  const traffic = await httpBatch(client, VIP, 80, 10);
  t.deepEqual(traffic.errors, {});

  // /status.json is the control socket's report.
  const json = JSON.parse((await httpGet(browserHost, '10.77.0.11', 9650, '/status.json')).body) as { router_id: string; virtual_servers: unknown[] };
  t.is(json.router_id, 'lb-page');
  t.is(json.virtual_servers.length, 1);

  const browser = await Chromium.launch({ userDataDir: join(lab.tmpDir, 'chromium'), netns: browserHost.ns });
  t.teardown(() => browser.close());
  const page = await browser.open(`http://10.77.0.11:9650/?refresh=${REFRESH_S}`);
  await waitFor(async () => (await pageState(page)).refreshes >= 2, 20_000, 'the page drew two reports', 200);
  const before = await pageState(page);
  t.is(before.error, null);
  t.is(before.instance, 'MASTER');
  t.deepEqual(before.rows.map((r) => [r.rs, r.health, r.weight]), [['10.77.0.21:80', 'up', '2'], ['10.77.0.22:80', 'up', '2']]);
  t.is(before.rows.reduce((n, r) => n + Number(r.conns.replace(/,/g, '')), 0), 10, 'the connections the client made');
  for (const r of before.rows) t.regex(r.reason, /^TCP_CHECK\[0\]: /);
  t.is(await page.evaluate<string>('document.querySelector("tr[data-instance] td:nth-child(8)").textContent'), `${VIP}/24`);
  const shotUp = artifactPath('status-page-up');
  await page.screenshot(shotUp);
  t.log(`screenshot (both real servers up): ${shotUp}`);

  // r2 fails. Once the daemon knows, the page must show it by the next report it draws (a fetch
  // already under way may still carry the old report, hence at most two more).
  await n2.kill('SIGKILL');
  let knownAt = 0;
  await waitFor(async () => {
    const rs2 = (await d.status()).virtual_servers[0]!.real_servers[1]!;
    if (rs2.health !== 'down') return false;
    knownAt = (await pageState(page)).refreshes;
    return true;
  }, 15_000, 'the daemon sees r2 down', 100);
  const t0 = Date.now();
  let shownAt = 0;
  await waitFor(async () => {
    const s = await pageState(page);
    shownAt = s.refreshes;
    return s.rows[1]?.health === 'down';
  }, 3 * REFRESH_S * 1000 + 5_000, 'the page shows r2 down', 50);
  t.log(`daemon knew at page report #${knownAt}; shown by report #${shownAt}, ${Date.now() - t0} ms later`);
  t.true(shownAt - knownAt <= 2, `shown ${shownAt - knownAt} reports after the daemon knew`);
  const after = await pageState(page);
  t.deepEqual(after.rows.map((r) => [r.rs, r.health]), [['10.77.0.21:80', 'up'], ['10.77.0.22:80', 'down']]);
  t.regex(after.rows[1]!.reason, /^TCP_CHECK\[0\]: .*(refused|ECONNREFUSED)/i, 'why it is down: the checker\'s message');
  t.regex(after.rows[1]!.when, /\d+ s ago/);
  t.is(await page.evaluate<string>('document.querySelector("tr[data-rs=\\"10.77.0.22:80\\"] .badge").textContent'), 'DOWN');
  const shotDown = artifactPath('status-page-rs-down');
  await page.screenshot(shotDown);
  t.log(`screenshot (10.77.0.22:80 down): ${shotDown}`);

  // The daemon logged it at warn, with the reason.
  t.regex(d.proc.output(), /WARN.*real server 10\.77\.0\.22:80 of tcp\/10\.77\.0\.50:80 is down: TCP_CHECK\[0\]/);
});

netnsTest('status page: a virtual_server_group is one table (its real servers once) with its members and their connections', async (t) => {
  const lab = await createLab(t);
  const [dh, r1, browserHost, client] = await Promise.all([
    lab.addHost('da', { ipv4: '10.77.0.11/24' }), lab.addHost('r1', { ipv4: '10.77.0.21/24' }),
    lab.addHost('web', { ipv4: '10.77.0.90/24' }), lab.addHost('cl', { ipv4: '10.77.0.100/24' }),
  ]);
  await startNginx(r1, { port: 80, body: 'r1', tmpDir: lab.tmpDir });
  const toml = directorToml({
    routerId: 'lb-page', priority: 150, vips: [`${VIP}/24`],
    extra: `[[virtual_server_group]]\nname = "web"\nmembers = ["${VIP}:80", "${VIP}:8080"]\n[[virtual_server]]\ngroup = "web"\nlb_kind = "PROXY"\ndelay_loop = 1\n` +
      '[[virtual_server.real_server]]\naddress = "10.77.0.21"\nport = 80\ncheck = { type = "TCP_CHECK", connect_timeout = 1, retry = 0 }\n',
  }).replace('metrics_listen = ""', 'metrics_listen = "10.77.0.11:9650"');
  const d = await startDirector(lab, dh, toml);
  await waitFor(async () => {
    const vs = (await d.status()).virtual_servers[0];
    return vs?.members?.every((m) => m.serving) === true && vs.real_servers[0]!.health === 'up';
  }, 15_000, 'both members serving, r1 up');
  t.deepEqual((await httpBatch(client, VIP, 80, 3)).bodies, { r1: 3 });
  t.deepEqual((await httpBatch(client, VIP, 8080, 2)).bodies, { r1: 2 });
  await waitFor(async () => (await d.status()).virtual_servers[0]!.conns === 5, 5_000, 'counters polled');

  const browser = await Chromium.launch({ userDataDir: join(lab.tmpDir, 'chromium'), netns: browserHost.ns });
  t.teardown(() => browser.close());
  const page = await browser.open(`http://10.77.0.11:9650/?refresh=${REFRESH_S}`);
  await waitFor(async () => (await pageState(page)).refreshes >= 2, 20_000, 'the page drew two reports', 200);
  const s = await pageState(page);
  t.deepEqual(s.rows.map((r) => [r.rs, r.health, r.conns]), [['10.77.0.21:80', 'up', '5']], 'one real-server list for the group, its connections summed');
  t.is(await page.evaluate<string>('document.querySelector("[data-members]").textContent'),
    `group web: TCP ${VIP}:80, 3 connections · TCP ${VIP}:8080, 2 connections`);
  t.regex(await page.evaluate<string>('document.querySelector("table.svc th.title").textContent'), /^TCP {2}group:web /);
});
