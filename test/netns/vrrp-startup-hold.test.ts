// The start-up hold (src/vrrp/state.ts, src/daemon/daemon.ts): the VRRP engine starts before the
// data plane and the health checks, and a director that comes back must not take over from the
// live master before its own services are ready.
//
// Lab: client cl, real server r1 (nginx), directors da (priority 150) and db (priority 100), one
// PROXY virtual server on the VIP with `alpha = true` (real servers start down) and a MISC_CHECK
// that takes ~4 s: a starting director has no real server up for its first ~4 s.
//   1. db starts alone: it becomes MASTER on its down timer while its hold is still on (a lone
//      director takes over as before), and serves once its check passes.
//   2. da (higher priority, preempting) starts while db serves: while da's hold is on, da stays
//      BACKUP and db keeps the VIP; da takes over only after its hold was released (its check
//      passed), and a client polling the VIP all along sees no failed request.
// Without the hold, da preempts one Master_Down_Interval (~0.36 s) after it starts, with no real
// server up yet: the requests to the VIP fail and the order of da's log lines is wrong.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLab, netnsTest, waitFor } from '../lib/netns.js';
import { startDirector, directorToml, type Director } from '../lib/daemon.js';
import { httpGet, startNginx } from '../lib/servers.js';

const VIP = '10.86.0.50';
const CHECK_SECONDS = 4;

netnsTest('start-up hold: a returning higher-priority director does not preempt before its services are ready; a lone one still becomes MASTER', async (t) => {
  const lab = await createLab(t);
  const [cl, r1, da, db] = await Promise.all([
    lab.addHost('cl', { ipv4: '10.86.0.100/24' }), lab.addHost('r1', { ipv4: '10.86.0.21/24' }),
    lab.addHost('da', { ipv4: '10.86.0.11/24' }), lab.addHost('db', { ipv4: '10.86.0.12/24' }),
  ]);
  await startNginx(r1, { port: 80, body: 'r1', tmpDir: lab.tmpDir, ipv6: false });
  const check = join(lab.tmpDir, 'slow-check.sh');
  writeFileSync(check, `#!/bin/sh\nsleep ${CHECK_SECONDS}\nexit 0\n`);
  chmodSync(check, 0o755);
  const services = `[[virtual_server]]
address = "${VIP}"
port = 80
protocol = "TCP"
lb_kind = "PROXY"
lb_algo = "rr"
alpha = true
warmup = 0
delay_loop = 30
drain_timeout = 0

[[virtual_server.real_server]]
address = "10.86.0.21"
port = 80
check = { type = "MISC_CHECK", misc_path = "${check}", misc_timeout = ${CHECK_SECONDS * 3}, retry = 0 }
`;
  const toml = (id: string, priority: number) => directorToml({ routerId: id, priority, advertInt: 0.1, vips: [`${VIP}/24`], garpDelay: 0, extra: services });
  // Serving the VIP with its real server up (alpha: down until the first check passed).
  const serving = async (d: Director) => (await d.status()).virtual_servers.every((v) => v.serving && v.real_servers.every((r) => r.up));

  // 1. A lone director: MASTER on its down timer while still held (its check has not passed yet).
  const b = await startDirector(lab, db, toml('db', 100));
  await waitFor(async () => (await b.instance()).state === 'MASTER', 10_000, 'db MASTER');
  const bAtMaster = await b.instance();
  t.true(bAtMaster.startup_hold, 'db became MASTER alone while its start-up hold was still on');
  t.false(await serving(b), 'db has no real server up before its first check passed (alpha)');
  await waitFor(async () => !(await b.instance()).startup_hold && (await serving(b)), 20_000, 'db hold released and serving');
  t.is((await httpGet(cl, VIP, 80, '/', 3_000)).body.trim(), 'r1');

  // 2. The higher-priority director starts while db serves.
  const failures: string[] = [];
  let ok = 0;
  let polling = true;
  const poller = (async () => {
    while (polling) {
      try {
        const r = await httpGet(cl, VIP, 80, '/', 2_000);
        if (r.body.trim() === 'r1') ok++;
        else failures.push(`status ${r.status} body ${JSON.stringify(r.body)}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const started = Date.now();
  t.teardown(() => { polling = false; });
  const a = await startDirector(lab, da, toml('da', 150));
  // While da is held: it is BACKUP (it hears db) and db keeps the VIP.
  const heldStates: string[] = [];
  await waitFor(async () => {
    const [ia, ib] = await Promise.all([a.instance(), b.instance()]);
    if (ia.startup_hold) heldStates.push(`${ia.state}/${ib.state}`);
    return !ia.startup_hold;
  }, 20_000, 'da hold released');
  const releasedAfter = Date.now() - started;
  t.log(`da held for ~${releasedAfter} ms after its start; states seen while held (da/db): ${[...new Set(heldStates)].join(', ')}`);
  t.true(heldStates.length > 0, 'da was seen under the hold');
  t.deepEqual([...new Set(heldStates)], ['BACKUP/MASTER'], 'while da was held: da BACKUP, db MASTER');
  t.true(releasedAfter >= (CHECK_SECONDS - 1) * 1000, 'the hold lasted until the slow first check passed');
  await waitFor(async () => (await a.instance()).state === 'MASTER' && (await serving(a)), 10_000, 'da MASTER and serving');
  await waitFor(async () => (await b.instance()).state === 'BACKUP', 5_000, 'db BACKUP');
  await new Promise((r) => setTimeout(r, 500));
  polling = false;
  await poller;

  // da's own log: the hold was released before it became MASTER.
  const out = a.proc.output();
  const released = out.indexOf('start-up hold released');
  const master = out.indexOf('BACKUP -> MASTER');
  t.true(released >= 0 && master >= 0 && released < master, 'da: "start-up hold released" before "BACKUP -> MASTER"');
  t.log(`client requests through the VIP: ${ok} answered, ${failures.length} failed${failures.length ? ` (${[...new Set(failures)].slice(0, 3).join('; ')})` : ''}`);
  t.true(ok >= 5, 'the client polled all along');
  t.deepEqual(failures, [], 'no request to the VIP failed across da\'s start and takeover');
});
