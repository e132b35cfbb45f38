import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLab, netnsTest, waitFor } from '../lib/netns.js';
import { startDirector, directorToml } from '../lib/daemon.js';
import { run } from '../lib/procs.js';

interface Target { labels: { instance: string }; health: string; lastError: string }

netnsTest('a real Prometheus server scrapes both directors of a pair; promtool accepts the exposition', async (t) => {
  const lab = await createLab(t);
  const [a, b, mon] = await Promise.all([
    lab.addHost('da', { ipv4: '10.77.0.11/24' }), lab.addHost('db', { ipv4: '10.77.0.12/24' }), lab.addHost('mon', { ipv4: '10.77.0.90/24' }),
  ]);
  const cfg = (name: string, ip: string, priority: number) =>
    directorToml({ routerId: name, priority, vips: ['10.77.0.50/24'] }).replace('metrics_listen = ""', `metrics_listen = "${ip}:9650"`);
  const da = await startDirector(lab, a, cfg('a', '10.77.0.11', 150));
  const db = await startDirector(lab, b, cfg('b', '10.77.0.12', 100));
  await waitFor(async () => (await da.instance()).state === 'MASTER' && (await db.instance()).state === 'BACKUP', 8_000, 'pair elected');

  const dir = join(lab.tmpDir, 'prometheus');
  await mon.exec(['mkdir', '-p', dir]);
  const promCfg = join(dir, 'prometheus.yml');
  await writeFile(promCfg, `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: keepalive-ts\n    static_configs:\n      - targets: ['10.77.0.11:9650', '10.77.0.12:9650']\n`);
  const prom = mon.spawn(['prometheus', `--config.file=${promCfg}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--web.listen-address=127.0.0.1:9090']);
  await prom.waitForOutput(/Server is ready to receive web requests/, 20_000);

  const api = async (path: string) => JSON.parse((await mon.exec(['node', '-e',
    `fetch('http://127.0.0.1:9090${path}').then(r => r.text()).then(x => process.stdout.write(x))`])).stdout);
  await waitFor(async () => {
    const targets = (await api('/api/v1/targets')).data.activeTargets as Target[];
    return targets.length === 2 && targets.every((x) => x.health === 'up');
  }, 20_000, 'both targets scraped and up', 500);
  // The scraped series say which director is MASTER.
  await waitFor(async () => (await api(`/api/v1/query?query=${encodeURIComponent('keepalive_ts_vrrp_state{state="MASTER"} == 1')}`)).data.result.length === 1, 10_000, 'MASTER series', 500);
  const masters = (await api(`/api/v1/query?query=${encodeURIComponent('keepalive_ts_vrrp_state{state="MASTER"} == 1')}`)).data.result as { metric: { instance: string } }[];
  t.deepEqual(masters.map((m) => m.metric.instance), ['10.77.0.11:9650']);

  // promtool on what each director exposes.
  for (const host of [a, b]) {
    const ip = host === a ? '10.77.0.11' : '10.77.0.12';
    const text = (await host.exec(['node', '-e', `fetch('http://${ip}:9650/metrics').then(r => r.text()).then(x => process.stdout.write(x))`])).stdout;
    const check = await run(['promtool', 'check', 'metrics'], { input: text, allowFail: true });
    t.is(check.code, 0, `${host.name}: ${check.stdout}${check.stderr}`);
  }
});
