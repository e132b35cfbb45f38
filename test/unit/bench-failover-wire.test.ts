// The failover bench's wire timeline parser (bench/failover.ts parseWire): tcpdump -e -tt -n lines of
// ARP and ICMP -> gratuitous ARPs for the VIP, echo requests to it, its echo replies.
import test from 'ava';
import { parseWire } from '../../bench/failover.js';

const VIP = '10.77.0.50';

test('parseWire: GARP (request and reply forms), echo request to the VIP, echo reply from it; anything else is other', (t) => {
  const out = [
    '1700000000.000100 02:00:00:00:00:0b > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.77.0.50 (ff:ff:ff:ff:ff:ff) tell 10.77.0.50, length 28',
    '1700000000.000200 02:00:00:00:00:0b > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Reply 10.77.0.50 is-at 02:00:00:00:00:0b, length 28',
    '1700000000.001000 02:00:00:00:00:0c > 02:00:00:00:00:0b, ethertype IPv4 (0x0800), length 98: 10.77.0.3 > 10.77.0.50: ICMP echo request, id 7, seq 9, length 64',
    '1700000000.001050 02:00:00:00:00:0b > 02:00:00:00:00:0c, ethertype IPv4 (0x0800), length 98: 10.77.0.50 > 10.77.0.3: ICMP echo reply, id 7, seq 9, length 64',
    '1700000000.002000 02:00:00:00:00:0b > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.77.0.3 tell 10.77.0.2, length 28',
    'tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes',
  ].join('\n');
  const f = parseWire(out, VIP);
  t.deepEqual(f.map((x) => x.what), ['garp', 'garp', 'request', 'reply', 'other']);
  t.is(f[0]!.src, '02:00:00:00:00:0b');
  t.is(f[2]!.dst, '02:00:00:00:00:0b');
  t.true(Math.abs(f[3]!.t - f[2]!.t - 0.05) < 1e-3, 'ms');
  t.true(Math.abs(f[0]!.t - 1_700_000_000_000.1) < 1e-3);
});
