import test from 'ava';
import { defaultHashSeed } from '../../src/lvs/hash.js';
import { MaglevHashingScheduler } from '../../src/lvs/dataplane/proxy/sched/mh.js';
import { MAGLEV_EMPTY, maglevSizeProblem, maglevTable } from '../../src/lvs/maglev.js';

const dests = (n: number, weight = 1) => Array.from({ length: n }, (_, i) => ({ key: `10.0.0.${i + 1}:80`, weight }));

function shares(table: Int32Array, n: number): number[] {
  const out = new Array<number>(n).fill(0);
  for (const i of table) out[i]!++;
  return out;
}

test('every slot is owned, shares follow the weights, the same input gives the same table', (t) => {
  const ds = [{ key: 'a', weight: 1 }, { key: 'b', weight: 3 }];
  const a = maglevTable(ds, 4099);
  t.deepEqual(maglevTable(ds, 4099), a);
  t.false(a.includes(MAGLEV_EMPTY));
  const [sa, sb] = shares(a, 2);
  t.true(Math.abs(sb! / sa! - 3) < 0.05, `${sa}:${sb}`);
});

test('the seed changes the permutation; removing one of five destinations moves few slots', (t) => {
  const five = dests(5);
  const s0 = maglevTable(five, 4099, 0);
  const s1 = maglevTable(five, 4099, 12345);
  let differ = 0;
  for (let i = 0; i < s0.length; i++) if (s0[i] !== s1[i]) differ++;
  t.true(differ > s0.length / 2, `${differ} slots differ`);
  // dest 4 leaves: only its own slots (about 1/5) plus a few more change owner
  const four = maglevTable(five.slice(0, 4), 4099, 0);
  let moved = 0;
  for (let i = 0; i < s0.length; i++) if (s0[i] !== 4 && s0[i] !== four[i]) moved++;
  t.true(moved / s0.length < 0.05, `moved ${moved}`);
});

test('no positive weight: every slot is empty; sizes must be prime and in range', (t) => {
  t.true(maglevTable(dests(3, 0), 251).every((x) => x === MAGLEV_EMPTY));
  t.true(maglevTable([], 251).every((x) => x === MAGLEV_EMPTY));
  t.is(maglevSizeProblem(65537), null);
  t.truthy(maglevSizeProblem(65536));
  t.truthy(maglevSizeProblem(262147));
  t.throws(() => maglevTable(dests(3), 1000), { instanceOf: RangeError });
  t.throws(() => maglevTable(dests(4), 3), { instanceOf: RangeError });
});

test('the default hash seed is a u32 derived from the service key only', (t) => {
  const s = defaultHashSeed('tcp/10.0.0.50:80');
  t.is(s, defaultHashSeed('tcp/10.0.0.50:80'));
  t.not(s, defaultHashSeed('tcp/10.0.0.50:81'));
  t.true(Number.isInteger(s) && s >= 0 && s <= 0xffffffff);
});

test('the proxy\'s mh scheduler uses the service seed and table size (hash_seed / mh_table_size are not ignored)', (t) => {
  const dests = [1, 2, 3, 4].map((i) => ({ id: `10.0.0.${i}:80`, address: `10.0.0.${i}`, port: 80, weight: 1, activeConns: 0, inactConns: 0 }));
  const picks = (opts: { seed?: number; tableSize?: number }) => {
    const s = new MaglevHashingScheduler(opts);
    return Array.from({ length: 64 }, (_, i) => s.pick(dests, { clientAddress: `192.0.2.${i}`, family: 4 })!.id);
  };
  const base = picks({ seed: 1 });
  t.deepEqual(picks({ seed: 1 }), base, 'same seed, same answers');
  t.notDeepEqual(picks({ seed: 2 }), base, 'another seed moves clients');
  t.notDeepEqual(picks({ seed: 1, tableSize: 251 }), base, 'another table size too');
  t.throws(() => new MaglevHashingScheduler({ tableSize: 250 }), { instanceOf: RangeError });
});
