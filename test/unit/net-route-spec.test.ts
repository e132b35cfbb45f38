import test from 'ava';
import { parseAddressSpec, parseRouteSpec, parseRuleSpec, routeKey, ruleKey, RTPROT_KEEPALIVED } from '../../src/net/route-spec.js';

const route = (s: string) => {
  const r = parseRouteSpec(s);
  if (!r.ok) throw new Error(r.error);
  return r.value;
};
const routeError = (s: string) => {
  const r = parseRouteSpec(s);
  if (r.ok) throw new Error(`accepted: ${s}`);
  return r.error;
};
const rule = (s: string) => {
  const r = parseRuleSpec(s);
  if (!r.ok) throw new Error(r.error);
  return r.value;
};

test('keepalived.conf(5) virtual_routes examples parse', (t) => {
  t.like(route('src 192.168.100.1 to 192.168.109.0/24 via 192.168.200.254 dev eth1'), {
    family: 4, type: 'unicast', src: '192.168.100.1', dst: { address: '192.168.109.0', prefix: 24 }, via: '192.168.200.254', dev: 'eth1',
  });
  t.like(route('192.168.110.0/24 via 192.168.200.254 dev eth1'), { via: '192.168.200.254', dev: 'eth1' });
  t.like(route('192.168.111.0/24 dev eth2 no_track'), { dev: 'eth2' });
  t.like(route('192.168.112.0/24 via 192.168.100.254'), { via: '192.168.100.254' });
  t.like(route('blackhole 192.168.114.0/24'), { type: 'blackhole', dst: { prefix: 24 } });
  t.like(route('0.0.0.0/0 gw 192.168.0.1 table 100'), { dst: { address: '0.0.0.0', prefix: 0 }, via: '192.168.0.1', table: 100 });
  // keepalived's "or" (multipath) is refused by name, not misread.
  t.regex(routeError('192.168.113.0/24 via 192.168.200.254 or 192.168.100.254 dev eth1'), /"or" is not supported in routes/);
});

test('route defaults follow keepalived: main table, scope universe, proto keepalived, prepend', (t) => {
  const r = route('10.0.0.0/8 via 10.1.1.1');
  t.like(r, { table: 254, scope: 0, protocol: RTPROT_KEEPALIVED, mode: 'prepend', onlink: false });
  t.is(r.metric, undefined);
  t.like(route('10.0.0.0/8 via 10.1.1.1 table main'), { table: 254 });
  t.like(route('10.0.0.0/8 via 10.1.1.1 table local'), { table: 255 });
  t.like(route('10.0.0.0/8 via 10.1.1.1 table 70000 metric 3 scope link protocol static tos 0x10 onlink append'), {
    table: 70000, metric: 3, scope: 253, protocol: 4, tos: 16, onlink: true, mode: 'append',
  });
  t.like(route('10.0.0.0/8 via 10.1.1.1 proto bird add'), { protocol: 12, mode: 'add' });
  t.like(route('unreachable 10.0.0.0/8'), { type: 'unreachable' });
  t.like(route('to prohibit 10.0.0.0/8'), { type: 'prohibit' });
  t.like(route('throw 10.0.0.0/8 table 5'), { type: 'throw', table: 5 });
});

test('routes: families, default, IPv6', (t) => {
  t.like(route('default via 10.0.0.1'), { family: 4, dst: { address: '0.0.0.0', prefix: 0 } });
  t.like(route('inet6 default via fe80::1 dev eth0'), { family: 6, dst: { address: '::', prefix: 0 }, via: 'fe80::1' });
  t.like(route('2001:DB8::/32 via 2001:db8::1 from 2001:db8:1::/48'), { family: 6, dst: { address: '2001:db8::', prefix: 32 }, from: { prefix: 48 } });
  t.like(route('10.0.0.0/8 via inet 10.1.1.1'), { via: '10.1.1.1' });
  t.regex(routeError('inet6 10.0.0.0/8 via 10.1.1.1'), /IPv4 but the line is IPv6/);
  t.regex(routeError('10.0.0.0/8 via 10.1.1.1 src fd00::1'), /one line, one address family/);
});

test('route errors name the word', (t) => {
  t.regex(routeError(''), /needs a destination/);
  t.regex(routeError('10.0.0.0/8 via'), /"via" needs a value/);
  t.regex(routeError('10.0.0.0/8 via 10.1.1.1 metric -1'), /metric must be a number/);
  t.regex(routeError('10.0.0.0/8 via 10.1.1.1 scope galaxy'), /scope must be one of global, universe, site, link, host, nowhere/);
  t.regex(routeError('10.0.0.0/8 10.1.0.0/16'), /the destination is already 10\.0\.0\.0\/8/);
  t.regex(routeError('10.0.0.0/8 dev eth0 nexthop via 10.1.1.1'), /"nexthop" is not supported/);
  t.regex(routeError('10.0.0.0/8 onlink dev eth0'), /onlink needs "via ADDR"/);
  t.regex(routeError('blackhole 10.0.0.0/8 dev eth0'), /takes no via or dev/);
});

test('rules: keepalived.conf(5) static_rules examples within the supported words', (t) => {
  t.like(rule('from 192.168.2.0/24 table 1'), { family: 4, from: { address: '192.168.2.0', prefix: 24 }, action: 'table', table: 1, invert: false, protocol: RTPROT_KEEPALIVED });
  t.like(rule('to 192.168.2.0/24 table 1 no_track'), { to: { prefix: 24 }, table: 1 });
  t.like(rule('from 192.168.28.0/24 to 192.168.29.0/26 table 50 iif p33p1 oif wlan0 tos 22 fwmark 24/12 preference 39'), {
    iif: 'p33p1', oif: 'wlan0', tos: 22, fwmark: 24, fwmask: 12, preference: 39, table: 50,
  });
  t.like(rule('from all fwmark 5 lookup main priority 10'), { fwmark: 5, table: 254, preference: 10 });
  t.like(rule('not from 10.0.0.0/8 prohibit order 9'), { invert: true, action: 'prohibit', preference: 9 });
  t.like(rule('inet6 from all goto 200 preference 100'), { family: 6, action: 'goto', goto: 200 });
  t.like(rule('from 10.0.0.1'), { action: 'table', table: 254 }, 'no action looks up main, as ip rule');
  const bad = parseRuleSpec('from 10.0.0.0/8 realms 3 table 5');
  t.false(bad.ok);
  t.regex(bad.ok ? '' : bad.error, /"realms" is not supported in rules/);
});

test('addresses: dev required, scope, label, brd, flags', (t) => {
  const a = parseAddressSpec('192.168.1.1/24 brd 192.168.1.255 dev eth0 scope link label eth0:vip -nodad noprefixroute');
  t.true(a.ok);
  t.like(a.ok ? a.value : {}, { family: 4, address: '192.168.1.1', prefix: 24, broadcast: '192.168.1.255', dev: 'eth0', scope: 253, label: 'eth0:vip', nodad: true, noprefixroute: true });
  const v6 = parseAddressSpec('fd00::1/64 dev eth0');
  t.like(v6.ok ? v6.value : {}, { family: 6, address: 'fd00::1', prefix: 64, scope: 0, nodad: false });
  const host = parseAddressSpec('10.0.0.1 dev eth0');
  t.like(host.ok ? host.value : {}, { prefix: 32 });
  for (const [text, re] of [
    ['192.168.1.1/24', /needs "dev NAME"/],
    ['dev eth0', /starts with ADDR/],
    ['192.168.1.1/24 dev eth0 label other:1', /start with the device name eth0/],
    ['fd00::1/64 dev eth0 brd fd00::ff', /brd is IPv4 only/],
    ['192.168.1.1/24 dev eth0 peer 192.168.1.2', /"peer" is not supported in static_ipaddress/],
  ] as const) {
    const r = parseAddressSpec(text);
    t.false(r.ok, text);
    t.regex(r.ok ? '' : r.error, re, text);
  }
});

test('keys tell apart what the kernel tells apart, and ignore spelling', (t) => {
  t.is(routeKey(route('10.0.0.0/8 via 10.1.1.1')), routeKey(route('to 10.0.0.0/8 gw 10.1.1.1 table main')));
  t.not(routeKey(route('10.0.0.0/8 via 10.1.1.1')), routeKey(route('10.0.0.0/8 via 10.1.1.1 table 5')));
  t.not(routeKey(route('10.0.0.0/8 via 10.1.1.1')), routeKey(route('10.0.0.0/8 via 10.1.1.1 metric 5')));
  t.is(ruleKey(rule('from 10.0.0.0/8 table 5 preference 5')), ruleKey(rule('from 10.0.0.0/8 lookup 5 priority 5')));
  t.not(ruleKey(rule('from 10.0.0.0/8 table 5 preference 5')), ruleKey(rule('from 10.0.0.0/8 table 5 preference 6')));
});

test('a refusal says whether the word is one keepalived accepts (unsupported) or the line is wrong', (t) => {
  const flag = (r: { ok: boolean; unsupported?: true }) => (r.ok ? 'ok' : r.unsupported === true ? 'unsupported' : 'error');
  t.is(flag(parseRouteSpec('192.168.113.0/24 via 192.168.100.252 or 192.168.100.253')), 'unsupported');
  t.is(flag(parseRouteSpec('10.0.0.0/8 dev eth0 mtu 1400')), 'unsupported');
  t.is(flag(parseRouteSpec('10.0.0.0/8 via 10.1.1.1 track_group G')), 'unsupported');
  t.is(flag(parseRuleSpec('from 10.0.0.0/8 table 5 uidrange 1-2')), 'unsupported');
  t.is(flag(parseAddressSpec('10.0.0.1/24 dev eth0 peer 10.0.0.2')), 'unsupported');
  t.is(flag(parseRuleSpec('to 192.168.100./24 table 1')), 'error');
  t.is(flag(parseRouteSpec('10.0.0.0/8 frobnicate')), 'error');
  t.is(flag(parseAddressSpec('10.0.0.1/24')), 'error');
  t.is(flag(parseRouteSpec('10.0.0.0/8 dev eth0')), 'ok');
});
