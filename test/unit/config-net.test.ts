import test from 'ava';
import { parseCidr, parseIp, parseListen } from '../../src/config/index.js';
import { granularityPrefix } from '../../src/config/net.js';
import { didYouMean, editDistance } from '../../src/config/suggest.js';

test('parseCidr defaults to a host prefix and rejects out-of-range or malformed prefixes', (t) => {
  t.deepEqual(parseCidr('10.0.0.1'), { address: '10.0.0.1', family: 4, prefix: 32 });
  t.deepEqual(parseCidr('2001:DB8:0:0::1/64'), { address: '2001:db8::1', family: 6, prefix: 64 });
  for (const bad of ['10.0.0.1/33', '10.0.0.1/', '10.0.0.1/a', 'fd00::1/129', '10.0.0.256', '10.0.0.1/24/1', '']) {
    t.is(parseCidr(bad), undefined, bad);
  }
});

test('parseIp canonicalizes IPv6 so equal addresses compare equal', (t) => {
  t.is(parseIp('FD00:0000::0001')?.address, 'fd00::1');
  t.is(parseIp('host.example'), undefined);
});

test('parseListen accepts host:port and [v6]:port only', (t) => {
  t.deepEqual(parseListen('127.0.0.1:9650'), { host: '127.0.0.1', port: 9650 });
  t.deepEqual(parseListen('[::1]:9650'), { host: '::1', port: 9650 });
  for (const bad of ['127.0.0.1', '::1:9650', '[nothost]:1', 'a:0', 'a:65536']) t.is(parseListen(bad), undefined, bad);
});

test('granularityPrefix reads contiguous IPv4 masks and IPv6 prefix lengths', (t) => {
  t.is(granularityPrefix('255.255.255.255', 4), 32);
  t.is(granularityPrefix('255.255.255.0', 4), 24);
  t.is(granularityPrefix('0.0.0.0', 4), 0);
  t.is(granularityPrefix('255.0.255.0', 4), undefined);
  t.is(granularityPrefix('64', 6), 64);
  t.is(granularityPrefix('129', 6), undefined);
});

test('did-you-mean suggests only plausible typos', (t) => {
  t.is(editDistance('kitten', 'sitting'), 3);
  t.is(didYouMean('prioirty', ['priority', 'state']), 'priority');
  t.is(didYouMean('zzzz', ['priority', 'state']), undefined);
});
