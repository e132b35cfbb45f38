// Split brain and its healing: VRRP between the directors is dropped with nftables inside the
// backup's namespace (both directions), both become MASTER; when the partition heals exactly one
// MASTER must remain within about one advert interval, the loser must drop the VIP, and the
// client's neighbour entry for the VIP must point at the winner again.
//
// The client's entry is the hard part: during the split the loser's gratuitous ARPs were the last
// the client saw. keepalived fixes it with higher_prio_send_advert (the yielding master sends one
// last advert at its own, lower, priority) plus garp_lower_prio_repeat (a MASTER that receives a
// lower-priority advert re-sends gratuitous ARPs; default = garp_master_repeat). Both directors
// here set higher_prio_send_advert, so whichever side hears the other first, the winner does
// receive a lower-priority advert after the heal.
import { createLab, netnsTest, waitFor, sleep } from '../lib/netns.js';
import { startDirector, directorToml, hasVip, type Director } from '../lib/daemon.js';
import { ping, startTcpdump } from '../lib/servers.js';
import { dropVrrp, healVrrp, neighMac, vipEvents } from '../lib/reliability.js';
import { assertWithinBound } from '../lib/timing.js';
import { startAddrMonitor } from '../lib/interop.js';

const VIP = '10.77.0.50';
const ADVERT_S = 1;

netnsTest('partition -> two MASTERs; heal -> one MASTER within one advert interval, loser drops the VIP, client re-pointed to the winner', async (t) => {
  const lab = await createLab(t);
  const [cl, a, b] = await Promise.all([
    lab.addHost('cl', { ipv4: '10.77.0.100/24' }),
    lab.addHost('da', { ipv4: '10.77.0.11/24' }),
    lab.addHost('db', { ipv4: '10.77.0.12/24' }),
  ]);
  const toml = (id: string, prio: number) => directorToml({
    routerId: id, priority: prio, vips: [`${VIP}/24`], advertInt: ADVERT_S, garpDelay: 1, garpRepeat: 5, extraInstance: 'higher_prio_send_advert = true',
  });
  const db: Director = await startDirector(lab, b, toml('db', 100));
  const da: Director = await startDirector(lab, a, toml('da', 150));
  await waitFor(async () => (await da.instance()).state === 'MASTER', 8_000, 'da MASTER');
  await waitFor(async () => (await db.instance()).state === 'BACKUP', 3_000, 'db BACKUP');
  t.true((await ping(cl, VIP, 2)).ok, 'client reaches the VIP');
  t.is((await neighMac(cl, VIP)).mac, a.mac, 'client resolves the VIP to da');

  // Partition.
  await dropVrrp(b);
  await waitFor(async () => (await db.instance()).state === 'MASTER', 6_000, 'db MASTER during the partition', 20);
  t.is((await da.instance()).state, 'MASTER', 'da stays MASTER (it hears nothing from db)');
  t.true(await hasVip(a, VIP));
  t.true(await hasVip(b, VIP), 'both hold the VIP during the split');
  // db's gratuitous ARPs (two bursts, garp_master_delay 1 s) re-point the client at db.
  await waitFor(async () => (await neighMac(cl, VIP)).mac === b.mac, 3_000, 'client pointed at db by its GARPs', 50);
  await sleep(2_500); // past db's second GARP burst and the client's neighbour locktime

  // Heal.
  const mon = await startAddrMonitor(b);
  const arp = await startTcpdump(cl, 'arp or ip proto 112', { args: ['-tt', '-e'] });
  const rxBefore = (await da.instance()).adverts_received;
  await sleep(200);
  const healedAt = Date.now();
  await healVrrp(b);
  await waitFor(async () => !(await hasVip(b, VIP)), 5_000, 'db drops the VIP after the heal', 20);
  await waitFor(async () => (await db.instance()).state === 'BACKUP', 3_000, 'db BACKUP', 20);
  // The monitor may print the removal a little after `ip addr` stopped showing the VIP.
  await waitFor(() => vipEvents(mon.output(), VIP, true).length > 0, 5_000, 'ip monitor to print the removal', 20).catch(() => undefined);
  const removed = vipEvents(mon.output(), VIP, true)[0];
  t.truthy(removed, `VIP removal seen by ip monitor on db:\n${mon.output()}`);
  const tookMs = removed! - healedAt;
  // da's next advert is due within one advert interval; db yields to it on receipt.
  assertWithinBound(t, tookMs, ADVERT_S * 1000, 'heal -> db (loser) removed its VIP');
  t.is((await da.instance()).state, 'MASTER');
  t.true(await hasVip(a, VIP), 'winner keeps the VIP');

  // Re-announcement: the client's entry for the VIP must be da's MAC again, without waiting for
  // the client's own ARP cache to expire (tens of seconds of blackhole otherwise).
  let fixedAfter: number | undefined;
  await waitFor(async () => (await neighMac(cl, VIP)).mac === a.mac, 3_000, 'client neighbour entry re-pointed at da', 50).then(
    () => (fixedAfter = Date.now() - healedAt),
    () => undefined,
  );
  await sleep(300);
  await arp.stop();
  const fromA = arp.text().split('\n').filter((l) => l.includes(a.mac) && /Request who-has 10\.77\.0\.50 tell 10\.77\.0\.50|Reply 10\.77\.0\.50 is-at/.test(l));
  const n = await neighMac(cl, VIP);
  const vrrpAfterHeal = arp.text().split('\n').filter((l) => /VRRP/.test(l) && Number(l.split(' ')[0]) * 1000 >= healedAt);
  const lowerPrio = vrrpAfterHeal.filter((l) => l.includes('prio 100'));
  t.log(`da received ${(await da.instance()).adverts_received - rxBefore} adverts after the heal; lower-priority (db, prio 100) adverts on the wire after the heal:\n${lowerPrio.join('\n')}`);
  t.true(lowerPrio.length >= 1, 'db sent an advert at its own priority when it yielded (higher_prio_send_advert)');
  t.log(`after heal: client neighbour entry for ${VIP} = ${n.mac} (${n.state}); da=${a.mac}, db=${b.mac}; gratuitous ARPs from da after the heal: ${fromA.length}; ` +
    `fixed after ${fixedAfter ?? 'never (3 s)'} ms; da drops ${JSON.stringify((await da.instance()).drops)}`);
  t.is(n.mac, a.mac, 'the winner re-announced the VIP (gratuitous ARP) after the split: keepalived garp_lower_prio_repeat behaviour');
  t.true((await ping(cl, VIP, 2)).ok, 'client reaches the VIP after the heal');
});
