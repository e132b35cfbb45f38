import { fileURLToPath } from 'node:url';
import { createLab, netnsTest, waitFor, type LabHost } from '../lib/netns.js';

const fixture = fileURLToPath(new URL('./fixtures/net-announce.js', import.meta.url));
const OLD_MAC = '02:00:00:00:00:99';

async function neighbourMac(host: LabHost, ip: string): Promise<string | undefined> {
  const out = await host.exec(['ip', '-j', 'neigh', 'show', ip, 'dev', 'eth0']);
  const entries = JSON.parse(out.stdout || '[]') as Array<{ dst: string; lladdr?: string }>;
  return entries.find((e) => e.dst === ip)?.lladdr;
}

netnsTest('gratuitous ARP from the addon reaches the wire and moves a neighbour entry to our MAC', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const b = await lab.addHost('b');
  const vip = lab.addr4(100);

  // Linux only lets a gratuitous ARP update an entry that already exists (arp_accept=0): plant
  // a stale entry pointing elsewhere, as if the VIP had lived on another director.
  await b.exec(['ip', 'neigh', 'replace', vip, 'lladdr', OLD_MAC, 'dev', 'eth0', 'nud', 'stale']);
  t.is(await neighbourMac(b, vip), OLD_MAC);

  const dump = b.spawn(['tcpdump', '-i', 'eth0', '-n', '-e', '-l', 'arp']);
  await dump.waitForOutput(/listening on eth0/, 10_000);

  const res = await a.exec(['node', fixture, 'eth0', '3', vip]);
  t.deepEqual(JSON.parse(res.stdout), { sent: 3, failed: 0 });

  const esc = vip.replace(/\./g, '\\.');
  await dump.waitForOutput(
    new RegExp(`${a.mac} > ff:ff:ff:ff:ff:ff, ethertype ARP.*Request who-has ${esc} \\(ff:ff:ff:ff:ff:ff\\) tell ${esc}`),
    10_000,
  );
  await waitFor(async () => (await neighbourMac(b, vip)) === a.mac, 5_000, `b's neighbour entry for ${vip} to become ${a.mac}`);
  // b never asked: the only ARP frames on the wire are a's three announcements.
  const lines = dump.output().split('\n').filter((l) => l.includes('ethertype ARP'));
  t.is(lines.length, 3, lines.join('\n'));
  t.true(lines.every((l) => l.includes(`${a.mac} > ff:ff:ff:ff:ff:ff`)), lines.join('\n'));
});

netnsTest('unsolicited NA from the addon reaches the wire with a valid checksum and moves a neighbour entry', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const b = await lab.addHost('b');
  const vip = lab.addr6(100);

  await b.exec(['ip', '-6', 'neigh', 'replace', vip, 'lladdr', OLD_MAC, 'dev', 'eth0', 'nud', 'stale']);
  t.is(await neighbourMac(b, vip), OLD_MAC);

  // -vv makes tcpdump verify the ICMPv6 checksum independently of our code.
  const dump = b.spawn(['tcpdump', '-i', 'eth0', '-n', '-e', '-l', '-vv', 'icmp6 and ip6[40] == 136']);
  await dump.waitForOutput(/listening on eth0/, 10_000);

  const res = await a.exec(['node', fixture, 'eth0', '2', vip]);
  t.deepEqual(JSON.parse(res.stdout), { sent: 2, failed: 0 });

  await dump.waitForOutput(new RegExp(`${a.mac} > 33:33:00:00:00:01, ethertype IPv6`), 10_000);
  await dump.waitForOutput(new RegExp(`tgt is ${vip}[,\\s]`), 10_000);
  const out = dump.output();
  t.regex(out, /hlim 255/);
  t.regex(out, new RegExp(`${vip} > ff02::1: \\[icmp6 sum ok\\]`));
  t.regex(out, new RegExp(`neighbor advertisement, length 32, tgt is ${vip}, Flags \\[override\\]`));
  t.regex(out, new RegExp(`destination link-address option \\(2\\), length 8 \\(1\\): ${a.mac}`));
  t.notRegex(out, /bad icmp6 cksum/);

  await waitFor(async () => (await neighbourMac(b, vip)) === a.mac, 5_000, `b's neighbour entry for ${vip} to become ${a.mac}`);
});
