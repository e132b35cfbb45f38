// Gratuitous ARP / unsolicited NA proof: after a crash failover, a *silent* client's neighbour
// entry for the VIP moves to the new master's MAC, because the new master announces the VIP
// (garp_master_repeat frames at once, the same again garp_master_delay seconds later).
//
// Silence is proven, not assumed: tcpdump in the client captures everything sent from the
// client's MAC during the failover and must stay empty. Before that window starts, the
// neighbour chatter caused by the client's one ping has to die down: the master answered the
// ping through a STALE entry for the client, so ~5 s later (delay_first_probe_time) it sends a
// unicast probe that the client answers. With IPv6 this ripples on: a probes from its link-local,
// so the client's answer goes through a fresh entry for a's link-local, which the client probes
// 5 s later from *its* link-local, and a in turn re-probes that one (~15 s in all). We wait until
// no host has an entry in DELAY, PROBE or INCOMPLETE (the states that send), i.e. until those
// exchanges are over; from then on nobody has a reason to talk to the client.
import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, sleep, waitFor, type LabHost } from '../lib/netns.js';
import { startDirector, directorToml, hasVip, type Director } from '../lib/daemon.js';
import { ping, startTcpdump } from '../lib/servers.js';
import { bursts, captureTimes, neighEntry, packetLines, unsettledNeighbours } from '../lib/interop.js';
import { LOAD_SLACK_MS } from '../lib/timing.js';

const GARP_REPEAT = 5;
const GARP_DELAY_S = 1;

async function waitState(d: Director, state: string, ms: number): Promise<void> {
  await waitFor(async () => (await d.instance()).state === state, ms, `${d.host.name} ${state}`, 20);
}

/** Runs a shell snippet inside a host (sysctls of its namespace). */
async function sh(host: LabHost, script: string): Promise<string> {
  return (await host.exec(['sh', '-ec', script])).stdout.trim();
}

async function announceFailover(t: ExecutionContext, family: 4 | 6): Promise<void> {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const b = await lab.addHost('b');
  const c = await lab.addHost('c');
  const vip = family === 4 ? '10.77.0.50' : 'fd77::50';
  const cidr = family === 4 ? `${vip}/24` : `${vip}/64`;

  // The client must not emit anything on its own during the capture window. IPv6 hosts keep
  // sending router solicitations (router_solicitations = -1 retries forever, with backoff):
  // turn them off. Nothing here concerns ARP/ND handling; arp_accept stays at its default.
  await sh(c, 'for i in all default eth0; do echo 0 > /proc/sys/net/ipv6/conf/$i/router_solicitations; done');
  const arpAccept = await sh(c, 'cat /proc/sys/net/ipv4/conf/eth0/arp_accept');
  t.log(`client arp_accept = ${arpAccept} (untouched)`);

  const toml = (priority: number) => directorToml({
    routerId: `r${priority}`, priority, version: 3, vips: [cidr], advertInt: 1, garpDelay: GARP_DELAY_S, garpRepeat: GARP_REPEAT,
  });
  const da = await startDirector(lab, a, toml(150));
  const db = await startDirector(lab, b, toml(100));
  await waitState(da, 'MASTER', 10_000);
  await waitState(db, 'BACKUP', 3_000);
  await waitFor(() => hasVip(a, vip), 3_000, 'VIP on a');
  t.false(await hasVip(b, vip), 'b does not hold the VIP');

  // The client learns the VIP's MAC from exactly one ping, then stays quiet.
  const p = await ping(c, vip, 1);
  t.true(p.ok, `client reaches the VIP on a:\n${p.output}`);
  const learned = await neighEntry(c, vip);
  t.is(learned?.lladdr, a.mac, `client's neighbour entry for ${vip} is a's MAC (${JSON.stringify(learned)})`);
  // Neighbour follow-ups of that ping (see the header) must be over before the silence window:
  // no entry on any host may still be in DELAY/PROBE/INCOMPLETE, since each of those sends.
  let pending: string[] = [];
  await waitFor(async () => {
    pending = (await Promise.all([a, b, c].map(async (h) => (await unsettledNeighbours(h)).map((e) => `${h.name}: ${e}`)))).flat();
    return pending.length === 0;
  }, 30_000, 'neighbour entries of a, b and c to settle after the ping', 100).catch((err: Error) => {
    throw new Error(`${err.message}; still pending: ${pending.join('; ')}`);
  });
  await sleep(300);

  const silence = await startTcpdump(c, `ether src ${c.mac}`, { args: ['-tt', '-e'] });
  const annFilter = family === 4 ? `arp and ether src ${b.mac}` : `icmp6 and ip6[40] == 136 and ether src ${b.mac}`;
  const announcements = await startTcpdump(c, annFilter, { args: ['-tt'] });

  // Crash a: no priority-0 advert, no chance to withdraw anything.
  const killedAt = Date.now();
  await Promise.all([da.proc.kill('SIGKILL'), a.linkDown()]);
  await waitState(db, 'MASTER', 10_000);
  t.log(`b MASTER ${Date.now() - killedAt} ms after the crash`);

  // The client's entry must move to b's MAC with nothing sent by the client.
  await waitFor(async () => (await neighEntry(c, vip))?.lladdr === b.mac, 5_000, `client's entry for ${vip} to move to b's MAC ${b.mac}`, 20);
  const moved = await neighEntry(c, vip);
  t.log(`client neighbour entry after failover: ${JSON.stringify(moved)}`);

  // Count the announcements: first burst, then the delayed one GARP_DELAY_S later.
  const shape = family === 4 ? new RegExp(`ARP, Request who-has ${vip.replace(/\./g, '\\.')} \\(ff:ff:ff:ff:ff:ff\\) tell ${vip.replace(/\./g, '\\.')},`) : new RegExp(`neighbor advertisement, tgt is ${vip}\\b`);
  await waitFor(() => captureTimes(announcements.text(), shape).length > 0, 3_000, 'the first announcement in the client capture', 20);
  const first = captureTimes(announcements.text(), shape)[0]!;
  // Wait for both bursts (the second is due GARP_DELAY_S after the first; a loaded machine may be
  // late), then one more GARP_DELAY_S for anything extra, and count everything.
  await waitFor(() => captureTimes(announcements.text(), shape).length >= 2 * GARP_REPEAT, GARP_DELAY_S * 1000 + LOAD_SLACK_MS + 1_000, 'both bursts', 50)
    .catch(() => undefined); // counted below, with the capture in the message
  await sleep(GARP_DELAY_S * 1000 + 300);
  t.log(`first announcement ${((first * 1000) - killedAt).toFixed(0)} ms after the crash`);
  const times = captureTimes(announcements.text(), shape);
  const groups = bursts(times, 0.5);
  t.log(`announcements for ${vip} from b: ${times.length} in bursts of ${groups.map((g) => g.length).join(' + ')}; second burst ${groups[1] ? ((groups[1][0]! - groups[0]![0]!) * 1000).toFixed(0) : '-'} ms after the first`);
  t.is(groups[0]?.length, GARP_REPEAT, `first burst: garp_master_repeat = ${GARP_REPEAT} announcements`);
  t.is(times.length, 2 * GARP_REPEAT, `total after ${GARP_DELAY_S + 1} s: two bursts of ${GARP_REPEAT}`);
  t.is(groups.length, 2, 'exactly two bursts');
  const other = packetLines(announcements.text()).filter((l) => !shape.test(l));
  t.deepEqual(other, [], `nothing but announcements for ${vip} matched ${annFilter}`);
  // Proof of silence: the client sent nothing at all during the failover window.
  await silence.stop();
  await announcements.stop();
  t.deepEqual(packetLines(silence.text()), [], `client ${c.mac} sent nothing during the failover`);
  t.is(moved?.lladdr, b.mac);
}

netnsTest('IPv4: a silent client learns the new master\'s MAC from gratuitous ARP (2 bursts of garp_master_repeat)', (t) => announceFailover(t, 4));
netnsTest('IPv6: a silent client learns the new master\'s MAC from unsolicited NA (2 bursts of garp_master_repeat)', (t) => announceFailover(t, 6));
