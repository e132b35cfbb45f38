import { fileURLToPath } from 'node:url';
import { createLab, netnsTest } from '../lib/netns.js';

const fixture = fileURLToPath(new URL('./fixtures/net-raw6.js', import.meta.url));
const errorsFixture = fileURLToPath(new URL('./fixtures/net-native-errors.js', import.meta.url));

netnsTest('raw6 socket: VRRP-protocol datagram to ff02::12 arrives with hop limit 255 and a link-local source', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const b = await lab.addHost('b');
  const recv = b.spawn(['node', fixture, 'recv', 'eth0']);
  // A listener on the sender too: with IPV6_MULTICAST_LOOP off it must not hear itself.
  const self = a.spawn(['node', fixture, 'recv', 'eth0']);
  await recv.waitForOutput(/^ready$/m, 10_000);
  await self.waitForOutput(/^ready$/m, 10_000);

  const payload = '31010001000a0000fd770000000000000000000000000100';
  const sent = JSON.parse((await a.exec(['node', fixture, 'send', 'eth0', payload])).stdout) as { sent: number; src: string };
  t.is(sent.sent, payload.length / 2);
  t.regex(sent.src, /^fe80::/);

  const [line] = await recv.waitForOutput(/^\{.*\}$/m, 5_000);
  const msg = JSON.parse(line) as { payload: string; src: string; dst: string; hopLimit: number; ifindex: number };
  t.deepEqual(msg, { payload, src: sent.src, dst: 'ff02::12', hopLimit: 255, ifindex: b.ifindex });
  // b has received it, so a loopback copy (delivered before the frame even leaves) would be here.
  t.false(/^\{/m.test(self.output()), `sender heard its own datagram: ${self.output()}`);
  await self.kill('SIGTERM');
  // The fixture only closes its socket on SIGTERM: a clean exit means close() released the poll.
  t.deepEqual(await self.exited, { code: 0, signal: null }, self.output());

  // The hop limit is the one the packet really carried, not a constant: send one with 7 from a
  // plain kernel raw socket (python) and expect 7.
  const py = [
    'import socket, sys',
    's = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)',
    's.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 7)',
    `s.sendto(bytes.fromhex('${payload}'), ('ff02::12', 0, 0, ${a.ifindex}))`,
  ].join('\n');
  await a.exec(['python3', '-c', py]);
  await recv.waitForOutput(/"hopLimit":7,/, 5_000);
  const lines = recv.output().split('\n').filter((l) => l.startsWith('{'));
  t.is(lines.length, 2, lines.join('\n'));
  t.is((JSON.parse(lines[1]!) as { src: string }).src, sent.src);

  await recv.kill('SIGTERM');
  t.deepEqual(await recv.exited, { code: 0, signal: null }, recv.output());
});

netnsTest('native sockets report errno-coded errors and refuse use after close', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const res = await a.exec(['node', errorsFixture, 'eth0']);
  t.deepEqual(JSON.parse(res.stdout), {
    packetBadIfindex: ['E_SOCKET', 'ENODEV'],
    raw6BadIfindex: ['E_SOCKET', 'ENODEV'],
    raw6BadGroup: 'ERR_INVALID_ARG_TYPE',
    packetShortFrame: 'ERR_OUT_OF_RANGE',
    packetAfterClose: 'E_CLOSED',
    raw6AfterClose: 'E_CLOSED',
    raw6SendUnreachable: ['E_SOCKET', 'ENETUNREACH'],
  });
});
