import test from 'ava';
import { missingCaps, parseCapEff, privilegeProblem } from '../../src/util/caps.js';

const status = (eff: string) => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${eff}\nCapBnd:\t000001ffffffffff\n`;

test('full root capabilities pass', (t) => {
  t.is(privilegeProblem(status('000001ffffffffff')), null);
});

test('each missing capability is named', (t) => {
  t.deepEqual(missingCaps(parseCapEff(status('0000000000000000'))!), ['CAP_NET_ADMIN', 'CAP_NET_RAW']);
  const onlyAdmin = privilegeProblem(status((1n << 12n).toString(16).padStart(16, '0')))!;
  t.regex(onlyAdmin, /missing CAP_NET_RAW:/);
  t.notRegex(onlyAdmin, /missing CAP_NET_ADMIN/);
  const onlyRaw = privilegeProblem(status((1n << 13n).toString(16).padStart(16, '0')))!;
  t.regex(onlyRaw, /missing CAP_NET_ADMIN:/);
});

test('unreadable status is reported', (t) => {
  t.regex(privilegeProblem('garbage')!, /cannot read effective capabilities/);
});
