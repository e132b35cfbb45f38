// The cut window of the kernel data plane against a takeover (docs/hitless.md "The cut window and
// a takeover"): the pure steps (cut.ts), then NftablesDataplane.claim with a scripted transport —
// a claim puts the VIP:port input guard back (one transaction, before the VIP add), a drain in
// progress then ends without a window, the next unserve cuts again, and a claim with nothing to
// change sends nothing.
import test from 'ava';
import { claimedBy, claimSet, claimStep, cutAfterDrain, CUT_WINDOW_MS } from '../../src/lvs/dataplane/nftables/cut.js';
import { NftablesDataplane } from '../../src/lvs/dataplane/nftables/index.js';
import type { NftTransport, NftOutput } from '../../src/lvs/dataplane/nftables/transport.js';
import type { DirectorFacts } from '../../src/lvs/dataplane/nftables/facts.js';
import type { MapEntry, PacketBytes } from '../../src/lvs/dataplane/nftables/counters.js';
import { pool, svcSpec } from '../lib/nft-lab.js';
import { roundMaglev } from '../lib/nft-scenarios.js';

test('claimSet / claimedBy: canonical addresses; a fwmark service has none', (t) => {
  const set = claimSet(['10.77.0.50', 'FD77:0::50']);
  t.true(claimedBy(svcSpec({ kind: 'DR' }).match, set));
  t.true(claimedBy(svcSpec({ kind: 'DR', family: 6 }).match, set), 'fd77::50 spelled differently');
  t.false(claimedBy(svcSpec({ kind: 'DR', address: '10.77.0.51' }).match, set));
  t.false(claimedBy(svcSpec({ kind: 'DR', fwmark: 7 }).match, set));
});

test('claimStep: a cut window ends, a drain is marked; nothing for a served or already claimed service', (t) => {
  t.deepEqual(claimStep({ phase: 'idle', cutUntil: 5 }), { claimed: true, cutUntil: undefined });
  t.deepEqual(claimStep({ phase: 'draining' }), { claimed: true, cutUntil: undefined });
  t.is(claimStep({ phase: 'idle' }), null, 'idle without a window (a fresh backup\'s first takeover): nothing');
  t.is(claimStep({ phase: 'serving' }), null);
  t.is(claimStep({ phase: 'draining', claimed: true }), null);
  t.deepEqual(claimStep({ phase: 'idle', claimed: true, cutUntil: 5 }), { claimed: true, cutUntil: undefined });
});

test('cutAfterDrain: a window of CUT_WINDOW_MS, none when the connections live on at the peer or the address is claimed', (t) => {
  t.is(cutAfterDrain({ phase: 'draining' }, 1000, false), 1000 + CUT_WINDOW_MS);
  t.is(cutAfterDrain({ phase: 'draining' }, 1000, true), undefined);
  t.is(cutAfterDrain({ phase: 'draining', claimed: true }, 1000, false), undefined);
});

class FakeTransport implements NftTransport {
  readonly name = 'fake';
  scripts: string[] = [];
  async run(commands: string, opts: { json?: boolean } = {}): Promise<NftOutput> {
    if (opts.json) return { output: '{"nftables": []}', ms: 0 };
    this.scripts.push(commands);
    return { output: '', ms: 0 };
  }
  async counters(): Promise<Map<string, PacketBytes>> {
    return new Map();
  }
  async elements(): Promise<MapEntry[]> {
    return [];
  }
  close(): void {}
}

const facts: DirectorFacts = {
  devicesWithAddress: async () => ['eth0'],
  route: async () => ({ device: 'eth0', onLink: true, local: false }),
  forwarding: async () => true,
};
const quiet = { conntrack: async () => ({ counts: new Map(), entries: 0 }), conntrackDelete: async () => undefined };
const GUARD = /g_vipin_chain ip daddr \. tcp dport \{ 10\.77\.0\.50 \. 80 \}/;
/** The guard goes: its chain changes, or the inet table goes with it (a DR service alone needs nothing else there). */
const LIFTED = /g_vipin|delete table inet keepalive_ts/;

test('claim: the guard of a cut service is back in one transaction; a claim with nothing to change, or of another address, sends nothing', async (t) => {
  for (const kind of ['DR', 'NAT'] as const) {
    const tr = new FakeTransport();
    const dp = new NftablesDataplane({ transport: tr, facts, maglev: roundMaglev, ...quiet });
    const spec = svcSpec({ kind, drainMs: 0 });
    await dp.configure([spec]);
    await dp.setPool(spec.key, pool([['10.77.0.21', 80, 1]]));
    await dp.serve(spec.key);
    t.regex(tr.scripts.join('\n'), GUARD, `${kind}: guarded while served`);
    let n = tr.scripts.length;
    await dp.unserve(spec.key, 0);
    const cut = tr.scripts.slice(n).join('\n');
    t.regex(cut, LIFTED, `${kind}: the unserve lifts the guard (cut window)`);
    t.notRegex(cut, GUARD);
    n = tr.scripts.length;
    await dp.claim(['10.77.0.51']);
    t.is(tr.scripts.length, n, `${kind}: another address: no transaction`);
    await dp.claim(['10.77.0.50']);
    t.is(tr.scripts.length, n + 1, `${kind}: one transaction`);
    t.regex(tr.scripts.at(-1)!, GUARD, `${kind}: the claim puts the guard back`);
    await dp.claim(['10.77.0.50']);
    t.is(tr.scripts.length, n + 1, `${kind}: claimed already: no transaction`);
    // Served, then unserved again (the address went away again): the cut window is back.
    await dp.serve(spec.key);
    n = tr.scripts.length;
    await dp.unserve(spec.key, 0);
    t.notRegex(tr.scripts.slice(n).join('\n'), GUARD, `${kind}: the next unserve cuts again`);
    t.regex(tr.scripts.slice(n).join('\n'), LIFTED);
    await dp.close();
  }
});

test('claim during a drain: the drain ends without a cut window; unclaimed, it ends with one', async (t) => {
  for (const claimed of [false, true]) {
    const tr = new FakeTransport();
    let now = 1_000_000;
    const dp = new NftablesDataplane({ transport: tr, facts, maglev: roundMaglev, now: () => now, ...quiet });
    const spec = svcSpec({ kind: 'DR', drainMs: 30 });
    await dp.configure([spec]);
    await dp.setPool(spec.key, pool([['10.77.0.21', 80, 1]]));
    await dp.serve(spec.key);
    await dp.unserve(spec.key, 30);
    const n = tr.scripts.length;
    if (claimed) await dp.claim(['10.77.0.50']);
    t.is(tr.scripts.length, n, 'the guard is in place during a drain: a claim changes no rule');
    now += 31;
    await new Promise((r) => setTimeout(r, 80));
    await dp.stats();
    const after = tr.scripts.slice(n).join('\n');
    t.true(tr.scripts.length > n, 'the drain\'s end is a transaction (the forwarding goes)');
    if (claimed) t.notRegex(after, LIFTED, 'claimed: the guard stays');
    else t.regex(after, LIFTED, 'unclaimed: the guard is lifted (cut window)');
    await dp.close();
  }
});
