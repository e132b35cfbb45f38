// NftablesDataplane's bookkeeping with a scripted transport and scripted director facts: one
// transaction per change, coalescing, a refused transaction changes nothing, validation before
// anything is sent, the first transaction removes stale tables, close() removes ours.
import test from 'ava';
import { NftablesDataplane } from '../../src/lvs/dataplane/nftables/index.js';
import type { NftTransport, NftOutput } from '../../src/lvs/dataplane/nftables/transport.js';
import { Batcher, batchedFacts, devicesFromDump, routesFromBatch, type DirectorFacts } from '../../src/lvs/dataplane/nftables/facts.js';
import type { MapEntry, PacketBytes } from '../../src/lvs/dataplane/nftables/counters.js';
import { KeepaliveError } from '../../src/util/errors.js';
import { pool, svcSpec } from '../lib/nft-lab.js';
import { roundMaglev } from '../lib/nft-scenarios.js';

class FakeTransport implements NftTransport {
  readonly name = 'fake';
  scripts: string[] = [];
  fail: RegExp | null = null;
  counterValues = new Map<string, PacketBytes>();
  gate: Promise<void> | null = null;
  async run(commands: string, opts: { json?: boolean } = {}): Promise<NftOutput> {
    if (opts.json) return { output: '{"nftables": []}', ms: 0 };
    if (this.gate) await this.gate;
    if (this.fail?.test(commands)) throw new KeepaliveError('E_NETLINK', 'nftables refused the transaction: Error: Could not process rule: No such file or directory');
    this.scripts.push(commands);
    return { output: '', ms: 0 };
  }
  async counters(): Promise<Map<string, PacketBytes>> {
    return this.counterValues;
  }
  async elements(): Promise<MapEntry[]> {
    return [];
  }
  close(): void {}
}

/** No host conntrack in unit tests. */
const quiet = { conntrack: async () => ({ counts: new Map(), entries: 0 }), conntrackDelete: async () => undefined };

function facts(over: Partial<DirectorFacts> = {}): DirectorFacts {
  return {
    devicesWithAddress: async () => ['eth0'],
    route: async (a) => (a.startsWith('10.77.') ? { device: 'eth0', onLink: true, local: false } : { device: 'eth0', onLink: false, gateway: '10.77.0.1', local: false }),
    forwarding: async () => true,
    ...over,
  };
}

const dr = svcSpec({ kind: 'DR' });
const nat = svcSpec({ kind: 'NAT', ports: [[8080, 8080]] });

test('one transaction per call; the first one removes stale tables; close() deletes ours', async (t) => {
  const tr = new FakeTransport();
  const dp = new NftablesDataplane({ transport: tr, facts: facts(), maglev: roundMaglev, ...quiet });
  await dp.configure([dr]);
  t.is(tr.scripts.length, 1);
  t.true(tr.scripts[0]!.startsWith('add table netdev keepalive_ts\ndelete table netdev keepalive_ts\nadd table inet keepalive_ts\ndelete table inet keepalive_ts\n'));
  await dp.setPool(dr.key, pool([['10.77.0.21', 80, 1]]));
  await dp.serve(dr.key);
  t.is(tr.scripts.length, 3);
  t.regex(tr.scripts[2]!, /add chain netdev keepalive_ts g_in_eth0_\w+ \{ type filter hook ingress device "eth0" priority 0; policy accept; \}/);
  await dp.setPool(dr.key, pool([['10.77.0.21', 80, 1]]));
  t.is(tr.scripts.length, 3, 'no change, no transaction');
  await dp.close();
  t.is(tr.scripts.at(-1), 'delete table netdev keepalive_ts\ndelete table inet keepalive_ts\n');
  await t.throwsAsync(dp.stats(), { code: 'E_CLOSED' });
});

test('configure with the services committed already (equal copies: a reload that changed none here) sends no transaction; a changed one does, and a failed one is tried again', async (t) => {
  const tr = new FakeTransport();
  const dp = new NftablesDataplane({ transport: tr, facts: facts(), maglev: roundMaglev, ...quiet });
  await dp.configure([dr, nat]);
  await dp.setPool(dr.key, pool([['10.77.0.21', 80, 1]]));
  const n = tr.scripts.length;
  await dp.configure([structuredClone(dr), structuredClone(nat)]);
  t.is(tr.scripts.length, n, 'no change, no transaction');
  tr.fail = /./;
  const more = svcSpec({ kind: 'NAT', ports: [[9090, 9090]] });
  await t.throwsAsync(dp.configure([dr, nat, more]), { code: 'E_NETLINK' });
  tr.fail = null;
  // The refused configure is not taken for done: the same call again commits it.
  await dp.configure([dr, nat, more]);
  t.is(tr.scripts.length, n + 1);
  await dp.configure([dr]);
  t.is(tr.scripts.length, n + 2, 'a removed service is a change');
  await dp.close();
});

test('changes arriving while a transaction runs are coalesced into the next one', async (t) => {
  const tr = new FakeTransport();
  const dp = new NftablesDataplane({ transport: tr, facts: facts(), maglev: roundMaglev, ...quiet });
  await dp.configure([dr]);
  await dp.setPool(dr.key, pool([['10.77.0.21', 80, 1], ['10.77.0.22', 80, 1]]));
  let open!: () => void;
  tr.gate = new Promise((r) => (open = r));
  const first = dp.setPool(dr.key, pool([['10.77.0.21', 80, 2], ['10.77.0.22', 80, 1]]));
  await new Promise((r) => setTimeout(r, 10));
  const burst = [3, 4, 5, 6].map((w) => dp.setPool(dr.key, pool([['10.77.0.21', 80, w], ['10.77.0.22', 80, 1]])));
  const before = tr.scripts.length;
  open();
  tr.gate = null;
  await Promise.all([first, ...burst]);
  t.is(tr.scripts.length - before, 2, 'the first change, then one transaction for the four that queued behind it');
  t.regex(tr.scripts.at(-1)!, /jhash ip saddr . th sport mod 7 seed/, 'the last one wins (weights 6:1 in the flow hash of the full-table path)');
  const st = await dp.stats();
  t.is(st.extra.nft_transactions, 4);
  t.is(st.extra.nft_changes, 7);
});

test('a refused transaction rejects the calls in it and changes nothing', async (t) => {
  const tr = new FakeTransport();
  const dp = new NftablesDataplane({ transport: tr, facts: facts(), maglev: roundMaglev, ...quiet });
  await dp.configure([dr]);
  await dp.setPool(dr.key, pool([['10.77.0.21', 80, 1]]));
  await dp.serve(dr.key);
  tr.fail = /10\.77\.0\.22/;
  await t.throwsAsync(dp.setPool(dr.key, pool([['10.77.0.22', 80, 1]])), { code: 'E_NETLINK' });
  tr.fail = null;
  const st = await dp.stats();
  t.deepEqual(st.services[0]!.dests.map((d) => d.endpoint.address), ['10.77.0.21'], 'the previous pool is still the state');
  t.is(st.extra.nft_transaction_failures, 1);
  // The next change is planned against what the kernel really has.
  await dp.setPool(dr.key, pool([['10.77.0.21', 80, 1], ['10.77.0.23', 80, 1]]));
  t.regex(tr.scripts.at(-1)!, /0x[0-9a-f]+ : 10\.77\.0\.23/);
  t.notRegex(tr.scripts.at(-1)!, /10\.77\.0\.22/);
});

test('bad input is refused before anything is sent: DR not on-link, DR port change, unknown service, kinds, ops with NAT, IP forwarding off', async (t) => {
  const tr = new FakeTransport();
  const dp = new NftablesDataplane({ transport: tr, facts: facts(), maglev: roundMaglev, ...quiet });
  await dp.configure([dr]);
  const n = tr.scripts.length;
  const e1 = await t.throwsAsync(dp.setPool(dr.key, pool([['192.0.2.9', 80, 1]])));
  t.is((e1 as KeepaliveError).code, 'E_CONFIG_INVALID');
  t.regex(e1!.message, /DR real server 192\.0\.2\.9 is not on-link \(reached via 10\.77\.0\.1 on eth0\)/);
  const e2 = await t.throwsAsync(dp.setPool(dr.key, pool([['10.77.0.21', 8080, 1]])));
  t.regex(e2!.message, /DR cannot change the port/);
  await t.throwsAsync(dp.serve('tcp/10.9.9.9:80' as never), { code: 'E_CONFIG_INVALID' });
  await t.throwsAsync(dp.configure([{ ...dr, kind: 'PROXY' }]), { code: 'E_CONFIG_INVALID', message: /does not forward lb_kind PROXY/ });
  await t.throwsAsync(dp.configure([{ ...nat, ops: true } as never]), { code: 'E_CONFIG_INVALID', message: /one-packet scheduling/ });
  const off = new NftablesDataplane({ transport: tr, facts: facts({ forwarding: async () => false }), maglev: roundMaglev, ...quiet });
  await t.throwsAsync(off.configure([nat]), { code: 'E_DATAPLANE_UNAVAILABLE', message: /net\.ipv4\.ip_forward is 0/ });
  t.is(tr.scripts.length, n, 'nothing was sent');
  const noVip = new NftablesDataplane({ transport: new FakeTransport(), facts: facts({ devicesWithAddress: async () => [] }), maglev: roundMaglev, ...quiet });
  await noVip.configure([dr]);
  await t.throwsAsync(noVip.serve(dr.key), { code: 'E_SOCKET', message: /no interface holds 10\.77\.0\.50 yet/ });
});

test('a DR address on no interface (or only on lo: BGP anycast) takes its traffic on the ingress the daemon names when it serves', async (t) => {
  let peers: string[] = [];
  for (const held of [[], ['lo']]) {
    const tr = new FakeTransport();
    const dp = new NftablesDataplane({ transport: tr, facts: facts({ devicesWithAddress: async () => held }), ingress: () => peers, maglev: roundMaglev, ...quiet });
    await dp.configure([dr]);
    await dp.setPool(dr.key, pool([['10.77.0.21', 80, 1]]));
    peers = [];
    await t.throwsAsync(dp.serve(dr.key), { code: 'E_SOCKET', message: /no interface holds 10\.77\.0\.50 yet/ });
    // The function is asked again at the next attempt (the BGP peers' interfaces are known by then).
    peers = ['eth1'];
    await dp.serve(dr.key);
    t.regex(tr.scripts.at(-1)!, /add chain netdev keepalive_ts g_in_eth1_\w+ \{ type filter hook ingress device "eth1" priority 0; policy accept; \}/);
    t.notRegex(tr.scripts.join('\n'), /device "lo"/);
    await dp.close();
  }
});

test('overlapping pools of one service: the last one handed over wins, even when its route look-ups finish first', async (t) => {
  let calls = 0;
  const slowFirst = facts({
    route: async () => {
      // The first look-up (of the one-server pool handed over first) is the slow one.
      if (calls++ === 0) await new Promise((r) => setTimeout(r, 50));
      return { device: 'eth0', onLink: true, local: false };
    },
  });
  const tr = new FakeTransport();
  const dp = new NftablesDataplane({ transport: tr, facts: slowFirst, maglev: roundMaglev, ...quiet });
  await dp.configure([dr]);
  const one = dp.setPool(dr.key, pool([['10.77.0.21', 80, 1]]));
  const both = dp.setPool(dr.key, pool([['10.77.0.21', 80, 1], ['10.77.0.22', 80, 1]]));
  await Promise.all([one, both]);
  const st = await dp.stats();
  t.deepEqual(st.services.find((x) => x.key === dr.key)!.dests.map((d) => d.key).sort(), ['10.77.0.21:80', '10.77.0.22:80']);
  await dp.close();
});

test('stats: ipvsadm counters from the named counters, monotonic across pool changes; DR OutPkts 0; service removal drains', async (t) => {
  const tr = new FakeTransport();
  let now = 1_000_000;
  const dp = new NftablesDataplane({ transport: tr, facts: facts(), maglev: roundMaglev, now: () => now, ...quiet });
  await dp.configure([dr]);
  await dp.setPool(dr.key, pool([['10.77.0.21', 80, 1], ['10.77.0.22', 80, 1]]));
  await dp.serve(dr.key);
  const names = [...tr.scripts.join('\n').matchAll(/add counter netdev keepalive_ts (s\w+_[ci][0-9a-f]{8})/g)].map((m) => m[1]!);
  for (const [i, name] of names.entries()) tr.counterValues.set(`netdev ${name}`, { packets: 10 * (i + 1), bytes: 1000 * (i + 1) });
  let s = (await dp.stats()).services[0]!;
  const total = s.conns;
  t.true(total > 0);
  t.is(s.out_pkts, 0);
  t.is(s.out_bytes, 0);
  t.is(s.dests.length, 2);
  t.is(s.active_conns, null, 'unknown until the connection table is read');
  // r2 leaves: it is no longer listed, but the service totals keep its counts.
  await dp.setPool(dr.key, pool([['10.77.0.21', 80, 1]]));
  s = (await dp.stats()).services[0]!;
  t.is(s.dests.length, 1);
  t.is(s.conns, total);
  // Removed from the config while serving: drains for drainMs, then its objects go.
  await dp.configure([]);
  t.is((await dp.stats()).services.length, 0);
  t.false(tr.scripts.at(-1)!.includes('delete table'), 'still draining');
  now += dr.drainMs + 1;
  await new Promise((r) => setTimeout(r, dr.drainMs + 50));
  await dp.stats();
  t.is(tr.scripts.at(-1), 'delete table netdev keepalive_ts\ndelete table inet keepalive_ts\n');
});

test('NAT replicated by conntrackd: an unserved service keeps its connections and its VIP:port input guard (they live on at the peer); a removed one has them ended', async (t) => {
  // Without conntrackReplicated: unserve ends the connections (conntrack delete by mark) and lifts the guard for the cut window.
  for (const replicated of [false, true]) {
    const deleted: number[][] = [];
    const tr = new FakeTransport();
    const dp = new NftablesDataplane({ transport: tr, facts: facts(), maglev: roundMaglev, ...quiet, conntrackDelete: async (marks) => void deleted.push([...marks]), ...(replicated ? { conntrackReplicated: true } : {}) });
    const drain = { ...nat, drainMs: 0 };
    await dp.configure([drain]);
    await dp.setPool(drain.key, pool([['10.77.0.21', 8080, 1]]));
    await dp.serve(drain.key);
    t.regex(tr.scripts.join('\n'), /g_vipin_chain ip daddr \. tcp dport \{ 10\.77\.0\.50 \. 8080 \}/);
    if (replicated) t.regex(tr.scripts.join('\n'), /midstream drop/, 'conntrackReplicated implies the mid-stream drop');
    const before = tr.scripts.length;
    await dp.unserve(drain.key, 0);
    const unserveScript = tr.scripts.slice(before).join('\n');
    if (replicated) {
      t.deepEqual(deleted, [], 'no conntrack deletion: conntrackd would replicate it to the new master');
      t.notRegex(unserveScript, /g_vipin/, 'the input guard stays');
      // Served again (the VIP came back), then removed from the configuration: its connections end.
      await dp.serve(drain.key);
      await dp.configure([]);
      t.is(deleted.length, 1, 'a removed service\'s connections are ended');
    } else {
      t.is(deleted.length, 1, 'without replication, the drained service\'s connections end');
      t.regex(unserveScript, /g_vipin/, 'and the guard is lifted (cut window)');
    }
    await dp.close();
  }
});

// ------------------------------------------------------------------------------------------------
// Director facts: batched look-ups (a process per question stalled the event loop for tens of
// seconds with 1,000 DR services: fork + exec is synchronous work on the main thread).

test('Batcher: every question asked before the batch starts is answered by one run (distinct keys); a question asked during a run waits for the next one', async (t) => {
  const runs: string[][] = [];
  let release!: () => void;
  let gate: Promise<void> | null = null;
  const b = new Batcher<string, number>(async (keys) => {
    runs.push(keys);
    if (gate) await gate;
    return new Map(keys.filter((k) => k !== 'none').map((k) => [k, k.length]));
  }, (k) => new Error(`no answer for ${k}`));
  const answers = await Promise.all(Array.from({ length: 1000 }, (_, i) => b.ask(`k${i % 10}`)));
  t.deepEqual(runs, [Array.from({ length: 10 }, (_, i) => `k${i}`)]);
  t.true(answers.every((a) => a === 2));
  await t.throwsAsync(b.ask('none'), { message: 'no answer for none' });
  gate = new Promise((r) => (release = r));
  const first = b.ask('x');
  await new Promise((r) => setImmediate(r));
  const second = b.ask('x'); // asked after the first run started: must not reuse its (older) answer
  release();
  gate = null;
  await Promise.all([first, second]);
  t.deepEqual(runs.slice(2), [['x'], ['x']]);
  t.is(b.batches, 4);
});

test('facts parsers: devicesFromDump by address (IPv6 compressed), routesFromBatch by dst (an unreachable address is an error, not a shifted answer)', (t) => {
  const dump = JSON.stringify([
    { ifname: 'lo', addr_info: [{ local: '127.0.0.1' }, { local: '10.77.0.50' }] },
    { ifname: 'eth0', addr_info: [{ local: '10.77.0.50' }, { local: 'fd00::50' }] },
    { ifname: 'eth1', addr_info: [] },
  ]);
  const d = devicesFromDump(dump, ['10.77.0.50', 'fd00:0:0::50', '10.9.9.9']);
  t.deepEqual([...d], [['10.77.0.50', ['lo', 'eth0']], ['fd00:0:0::50', ['eth0']], ['10.9.9.9', []]]);
  const out = [
    '[{"dst":"10.77.0.21","dev":"eth0","prefsrc":"10.77.0.11","flags":[],"uid":0,"cache":[]}]',
    '[{"type":"local","dst":"10.77.0.11","dev":"lo","prefsrc":"10.77.0.11","flags":[],"uid":0,"cache":["local"]}]',
    '[{"dst":"8.8.8.8","gateway":"10.77.0.1","dev":"eth0","flags":[],"uid":0,"cache":[]}]',
  ].join('\n');
  const r = routesFromBatch(out, ['10.99.0.1', '10.77.0.21', '10.77.0.11', '8.8.8.8']);
  t.true(r.get('10.99.0.1') instanceof Error);
  t.deepEqual(r.get('10.77.0.21'), { device: 'eth0', onLink: true, local: false });
  t.deepEqual(r.get('10.77.0.11'), { device: 'lo', onLink: false, local: true });
  t.deepEqual(r.get('8.8.8.8'), { device: 'eth0', onLink: false, local: false, gateway: '10.77.0.1' });
});

test('1,000 DR services configured, pooled and served at once: a handful of look-up batches and transactions, not one per service', async (t) => {
  const N = 1000;
  const asked = { addresses: 0, routes: 0 };
  const f = batchedFacts(
    async (list) => {
      asked.addresses += list.length;
      return new Map(list.map((a) => [a, ['eth0']]));
    },
    async (list) => {
      asked.routes += list.length;
      return new Map(list.map((a) => [a, { device: 'eth0', onLink: true, local: false }]));
    },
    async () => true,
  );
  const tr = new FakeTransport();
  const dp = new NftablesDataplane({ transport: tr, facts: f, maglev: roundMaglev, ...quiet });
  const specs = Array.from({ length: N }, (_, i) => svcSpec({ kind: 'DR', ports: [[20000 + i, 20000 + i]] }));
  await dp.configure(specs);
  // Real servers on 250 addresses: one route question each.
  await Promise.all(specs.map((s, i) => dp.setPool(s.key, pool([[`10.77.1.${i % 250}`, 20000 + i, 1]]))));
  await Promise.all(specs.map((s) => dp.serve(s.key)));
  const b = f.batches();
  t.true(b.routes <= 2, `route batches: ${b.routes}`);
  t.true(b.addresses <= 2, `address batches: ${b.addresses}`);
  t.is(asked.routes, 250, 'each real server address asked once');
  t.true(asked.addresses <= 2, 'every service has the same VIP: asked once per batch');
  t.true(tr.scripts.length <= 6, `transactions: ${tr.scripts.length}`);
  const st = await dp.stats();
  t.is(st.services.filter((s) => s.serving).length, N);
  await dp.close();
});
