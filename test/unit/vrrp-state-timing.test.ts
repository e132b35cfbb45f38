import test from 'ava';
import fc from 'fast-check';
import {
  advertIntervalMs,
  masterDownIntervalMs,
  masterDownIntervalUs,
  skewTimeMs,
  skewTimeUs,
  startupMasterDownUs,
} from '../../src/vrrp/timing.js';

test('v2 skew is (256 - prio)/256 s, floored to whole microseconds like keepalived', (t) => {
  t.is(skewTimeUs(2, 100, 100), 609_375); // exact: 156/256 s
  t.is(skewTimeUs(2, 254, 100), 7_812); // 7812.5 us floored
  t.is(skewTimeUs(2, 255, 100), 3_906); // 3906.25 us floored
  t.is(skewTimeUs(2, 1, 100), 996_093); // 996093.75 us floored
});

test('v2 skew does not depend on the advertisement interval (RFC 3768)', (t) => {
  t.is(skewTimeUs(2, 100, 300), skewTimeUs(2, 100, 100));
});

test('v3 skew scales with Master_Adver_Interval (RFC 5798) and is floored in microseconds', (t) => {
  t.is(skewTimeUs(3, 100, 100), 609_375);
  t.is(skewTimeUs(3, 101, 100), 605_468); // 605468.75
  t.is(skewTimeUs(3, 100, 50), 304_687); // 304687.5
  t.is(skewTimeUs(3, 1, 1), 9_960); // 9960.9375
});

test('Master_Down_Interval = 3 * interval + skew, in us and ms', (t) => {
  t.is(masterDownIntervalUs(2, 100, 100), 3_609_375);
  t.is(masterDownIntervalMs(2, 100, 100), 3609.375);
  t.is(masterDownIntervalUs(3, 100, 50), 1_804_687);
  t.is(masterDownIntervalMs(3, 100, 50), 1804.687);
  t.is(masterDownIntervalUs(3, 100, 100, 5), 5_609_375, 'down_timer_adverts multiplies the interval');
  t.is(advertIntervalMs(100), 1000);
  t.is(skewTimeMs(2, 100, 100), 609.375);
});

test('startup timer for a non-owner with state MASTER is one interval plus the minimum skew', (t) => {
  t.is(startupMasterDownUs(2, 100), 1_003_906);
  t.is(startupMasterDownUs(3, 100), 1_003_906);
  t.is(startupMasterDownUs(3, 10), 100_390);
});

test('property: higher priority always has a strictly shorter skew, and it stays within one interval', (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom<2 | 3>(2, 3),
      fc.integer({ min: 1, max: 4095 }),
      fc.integer({ min: 1, max: 254 }),
      (version, cs, p) => {
        const s = skewTimeUs(version, p, cs);
        // The skew is what lets the highest backup win a takeover race: it must be strictly monotone.
        if (!(s > skewTimeUs(version, p + 1, cs))) return false;
        // And it matches the RFC's real-valued formula to within the flooring.
        const exact = version === 3 ? ((256 - p) * cs * 10_000) / 256 : ((256 - p) * 1_000_000) / 256;
        return s <= exact && exact - s < 1 && Number.isInteger(s);
      },
    ),
  );
  t.pass();
});
