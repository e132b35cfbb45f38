/**
 * Adverts a MASTER must not act on, sent from an attacker host x on the segment with crafted IP
 * headers (raw socket, IP_HDRINCL):
 *
 * 1. unicast_peer = [b]: a priority-254 v3 advert from an unrelated host "behind a router" (x's own
 *    address, TTL 63) is dropped (unknown_unicast_source) and the MASTER stays MASTER (keepalived's
 *    check_unicast_src, on by default here); one spoofed from b's address with TTL 63 while b is
 *    configured with min_ttl = 250 is dropped too (ttl_out_of_range). Positive control: the same
 *    advert from b's address with TTL 255 does demote the MASTER, so the drops are not vacuous.
 * 2. A v3 advert with interval 0 from the master is dropped (zero_interval): the BACKUP keeps
 *    waiting for the real master instead of becoming MASTER in the same millisecond.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab, netnsTest, waitFor, sleep, type Lab, type LabHost } from '../lib/netns.js';
import { startDirector } from '../lib/daemon.js';
import { encodeAdvert } from '../../src/vrrp/packet.js';
import { checksumWith, pseudoHeader } from '../../src/vrrp/checksum.js';
import { parseIp } from '../../src/util/inet.js';
import type { SenderSpec, WirePacket } from './fixtures/vrrp-sender.js';

const SENDER = fileURLToPath(new URL('./fixtures/vrrp-sender.js', import.meta.url));

async function send(lab: Lab, x: LabHost, name: string, packets: WirePacket[], repeat = 1): Promise<void> {
  const path = join(lab.tmpDir, `${name}.json`);
  const spec: SenderSpec = { ifname: 'eth0', ifindex: x.ifindex, src: x.ipv4!, ratePps: 20, maxMs: 20_000, repeat, packets };
  await writeFile(path, JSON.stringify(spec));
  await x.exec(['node', SENDER, path], { timeoutMs: 30_000 });
}

function advert(o: { src: string; dst: string; priority: number; vip: string; intervalCs?: number }): string {
  const intervalCs = o.intervalCs ?? 100;
  const payload = encodeAdvert({ version: 3, vrid: 51, priority: o.priority, advertIntCs: intervalCs === 0 ? 100 : intervalCs, addresses: [o.vip] }, { family: 4, src: o.src, dst: o.dst });
  if (intervalCs === 0) {
    // encodeAdvert refuses interval 0 (as it should); patch it in and fix the v3 checksum.
    payload.writeUInt16BE(0, 4);
    payload.writeUInt16BE(0, 6);
    payload.writeUInt16BE(checksumWith(pseudoHeader(4, parseIp(o.src, 4)!, parseIp(o.dst, 4)!, payload.length), payload), 6);
  }
  return payload.toString('hex');
}

const instance = (vip: string, priority: number, extra: string) => `[global]
router_id = "a"
metrics_listen = ""

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = ${priority}
version = 3
advert_int = 1
virtual_ipaddress = ["${vip}/24"]
${extra}
`;

netnsTest('unicast: a priority-254 advert from a host that is not a unicast_peer (TTL 63) does not demote the MASTER', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const b = await lab.addHost('b');
  const x = await lab.addHost('x');
  const vip = lab.addr4(100);
  const d = await startDirector(lab, a, instance(vip, 150, `unicast_peer = ["${b.ipv4}"]`));
  await waitFor(async () => (await d.instance()).state === 'MASTER', 10_000, 'a MASTER', 100);

  // From x itself, TTL 63: an unrelated host behind a router.
  await send(lab, x, 'stranger', [{ src: x.ipv4!, dst: a.ipv4!, ttl: 63, hex: advert({ src: x.ipv4!, dst: a.ipv4!, priority: 254, vip }) }], 10);
  await sleep(1_500);
  const s = await d.instance();
  t.is(s.state, 'MASTER', 'a stranger\'s advert did not demote the MASTER');
  t.true((s.drops.unknown_unicast_source ?? 0) >= 10, JSON.stringify(s.drops));

  // Positive control: the same advert from the peer's address is obeyed (no TTL bounds configured).
  await send(lab, x, 'peer', [{ src: b.ipv4!, dst: a.ipv4!, ttl: 63, hex: advert({ src: b.ipv4!, dst: a.ipv4!, priority: 254, vip }) }], 3);
  await waitFor(async () => (await d.instance()).state === 'BACKUP', 5_000, 'the peer\'s higher priority to demote a', 100);
});

netnsTest('unicast: a peer\'s min_ttl/max_ttl bound the TTL of its adverts', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const b = await lab.addHost('b');
  const x = await lab.addHost('x');
  const vip = lab.addr4(100);
  const d = await startDirector(lab, a, instance(vip, 150, `unicast_peer = [{ address = "${b.ipv4}", min_ttl = 250 }]`));
  await waitFor(async () => (await d.instance()).state === 'MASTER', 10_000, 'a MASTER', 100);
  // Spoofed from the peer's address, TTL 63 while the peer is configured with min_ttl 250.
  await send(lab, x, 'far-peer', [{ src: b.ipv4!, dst: a.ipv4!, ttl: 63, hex: advert({ src: b.ipv4!, dst: a.ipv4!, priority: 254, vip }) }], 10);
  await sleep(1_500);
  const s = await d.instance();
  t.is(s.state, 'MASTER', 'an advert with a TTL outside the peer\'s bounds did not demote the MASTER');
  t.true((s.drops.ttl_out_of_range ?? 0) >= 10, JSON.stringify(s.drops));
  // Within the bounds it is obeyed.
  await send(lab, x, 'near-peer', [{ src: b.ipv4!, dst: a.ipv4!, ttl: 255, hex: advert({ src: b.ipv4!, dst: a.ipv4!, priority: 254, vip }) }], 3);
  await waitFor(async () => (await d.instance()).state === 'BACKUP', 5_000, 'the peer within its TTL bounds to demote a', 100);
});

netnsTest('a v3 advert with interval 0 is dropped and counted; the BACKUP does not become MASTER at once', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const x = await lab.addHost('x');
  const vip = lab.addr4(100);
  const group = '224.0.0.18';
  const d = await startDirector(lab, a, instance(vip, 100, ''));
  // x plays a priority-200 master: adverts every second keep a in BACKUP.
  const good = advert({ src: x.ipv4!, dst: group, priority: 200, vip });
  const master = send(lab, x, 'master', [{ src: x.ipv4!, dst: group, ttl: 255, hex: good }], 12);
  await waitFor(async () => (await d.instance()).state === 'BACKUP' && (await d.instance()).master === x.ipv4, 10_000, 'a BACKUP of x', 100);
  // One advert with interval 0 from the same master.
  await send(lab, x, 'zero', [{ src: x.ipv4!, dst: group, ttl: 255, hex: advert({ src: x.ipv4!, dst: group, priority: 200, vip, intervalCs: 0 }) }]);
  await sleep(500);
  const s = await d.instance();
  t.is(s.state, 'BACKUP', 'still BACKUP right after the interval-0 advert');
  t.is(s.drops.zero_interval, 1, JSON.stringify(s.drops));
  await master;
});

netnsTest('unicast pair with check_unicast_src: real peers elect one master and fail over', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const b = await lab.addHost('b');
  const vip = lab.addr4(100);
  const da = await startDirector(lab, a, instance(vip, 150, `unicast_peer = ["${b.ipv4}"]`));
  const db = await startDirector(lab, b, instance(vip, 100, `unicast_peer = ["${a.ipv4}"]`).replace('router_id = "a"', 'router_id = "b"'));
  await waitFor(async () => (await da.instance()).state === 'MASTER' && (await db.instance()).state === 'BACKUP', 10_000, 'a MASTER, b BACKUP', 100);
  await sleep(2_000);
  const sb = await db.instance();
  t.is(sb.drops.unknown_unicast_source ?? 0, 0, 'the real peer\'s adverts pass the source check');
  t.true(sb.adverts_received > 0);
  await da.proc.kill('SIGKILL');
  await waitFor(async () => (await db.instance()).state === 'MASTER', 10_000, 'b to take over', 100);
});
