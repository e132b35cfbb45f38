/**
 * accept = false (RFC 5798 Accept_Mode off, keepalived no_accept): a MASTER that is not the address
 * owner must not accept packets addressed to its VIPs, apart from what keeps the VIPs working
 * (ARP, IPv6 neighbour discovery, VRRP). Enforced with a small nftables table of our own
 * (inet keepalive_ts_accept) whose VIP sets follow MASTER; removed on stop. accept = true answers.
 */
import { createLab, netnsTest, waitFor } from '../lib/netns.js';
import { startDirector, hasVip } from '../lib/daemon.js';
import { ping } from '../lib/servers.js';
import { sleep } from '../lib/procs.js';

const NFT = '/usr/sbin/nft';

const config = (vip4: string, vip6: string, accept: boolean) => `[global]
router_id = "a"
metrics_listen = ""

[[vrrp_instance]]
name = "VI_4"
interface = "eth0"
virtual_router_id = 51
priority = 150
version = 3
advert_int = 1
virtual_ipaddress = ["${vip4}/24"]
accept = ${accept}

[[vrrp_instance]]
name = "VI_6"
interface = "eth0"
virtual_router_id = 52
priority = 150
version = 3
advert_int = 1
virtual_ipaddress = ["${vip6}/64"]
accept = ${accept}
`;

for (const accept of [false, true]) {
  netnsTest(`accept = ${accept}: the MASTER ${accept ? 'answers' : 'does not answer'} pings to its VIPs (IPv4 and IPv6); neighbours still resolve them`, async (t) => {
    const lab = await createLab(t);
    const a = await lab.addHost('a');
    const c = await lab.addHost('c');
    const vip4 = lab.addr4(100);
    const vip6 = lab.addr6(100);
    const d = await startDirector(lab, a, config(vip4, vip6, accept));
    await waitFor(async () => (await d.status()).vrrp.every((v) => v.state === 'MASTER'), 10_000, 'both instances MASTER', 100);
    await waitFor(async () => (await hasVip(a, vip4)) && (await hasVip(a, vip6)), 5_000, 'VIPs on a', 100);
    await sleep(300);

    const p4 = await ping(c, vip4, 3);
    const p6 = await ping(c, vip6, 3);
    t.is(p4.received > 0, accept, `IPv4 ping to the VIP: ${p4.output}`);
    t.is(p6.received > 0, accept, `IPv6 ping to the VIP: ${p6.output}`);
    t.true((await ping(c, a.ipv4!, 1)).ok, 'the director\'s own address still answers');
    // The VIPs stay resolvable (ARP / neighbour discovery is not filtered).
    const neigh = (await c.exec(['ip', 'neigh', 'show'])).stdout;
    for (const vip of [vip4, vip6]) t.regex(neigh, new RegExp(`^${vip.replace(/[.:]/g, '\\$&')} dev eth0 lladdr ${a.mac}`, 'm'), `${vip} resolved:\n${neigh}`);

    const tables = async () => (await a.exec([NFT, 'list', 'tables'])).stdout;
    t.is((await tables()).includes('keepalive_ts_accept'), !accept);
    process.kill(d.proc.pid, 'SIGTERM');
    await Promise.race([d.proc.exited, sleep(15_000)]);
    t.false((await tables()).includes('keepalive_ts_accept'), 'the table is gone after stop');
  });
}
