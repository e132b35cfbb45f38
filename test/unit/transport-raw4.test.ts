/**
 * RawIpv4Transport must not leak its raw socket when opening fails half way: a bad interface name
 * (SO_BINDTODEVICE fails after the receive socket exists) or a send socket that cannot be opened.
 * Needs CAP_NET_RAW (root); skipped otherwise.
 */
import test from 'ava';
import { readdirSync } from 'node:fs';
import { RawIpv4Transport } from '../../src/vrrp/transport-raw4.js';

const openFds = () => readdirSync('/proc/self/fd').length;
const root = process.getuid?.() === 0;

(root ? test : test.skip)('a failed open closes every socket it had opened (SO_BINDTODEVICE, send socket)', (t) => {
  const before = openFds();
  for (let i = 0; i < 20; i++) {
    t.throws(() => new RawIpv4Transport('nosuchif0', 1, []), { message: /cannot open VRRP IPv4 socket on nosuchif0/ });
    t.throws(() => new RawIpv4Transport('lo', 987_654, []));
  }
  t.is(openFds(), before, 'no descriptor left behind');
  // A good one still opens and closes cleanly.
  const ok = new RawIpv4Transport('lo', 1, []);
  ok.close();
  t.is(openFds(), before);
});
