// The golden rulesets and the planner's transactions, loaded into a real kernel (nft -f in a lab
// namespace): every golden file loads and lists back; every transition between two scenarios
// (the planner's incremental transaction) is accepted and leaves exactly the target ruleset.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createLab, netnsTest } from '../lib/netns.js';
import { buildModel, DEFAULT_LIMITS } from '../../src/lvs/dataplane/nftables/ruleset.js';
import { planTransaction, renderModel } from '../../src/lvs/dataplane/nftables/model.js';
import { roundMaglev, SCENARIOS } from '../lib/nft-scenarios.js';

const GOLDEN = fileURLToPath(new URL('../../../test/fixtures/nft/', import.meta.url));
const NFT = '/usr/sbin/nft';

netnsTest('golden rulesets load into the kernel, and the planner moves between any two of them in one accepted transaction', async (t) => {
  const lab = await createLab(t);
  const h = await lab.addHost('da');
  await h.exec(['ip', 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1p']);
  const nft = (script: string) => h.exec([NFT, '-f', '-'], { input: script });
  const listed = async () => (await h.exec([NFT, 'list', 'ruleset'])).stdout;
  // Objects in a listing, order-free (nft lists in creation order, which a transition changes).
  const objects = async () => {
    const blocks: string[] = [];
    for (const line of (await listed()).split('\n')) {
      if (line === '}') continue; // end of a table
      if (/^(table|\t(chain|map|set|counter) )/.test(line)) blocks.push(line);
      else if (blocks.length) blocks[blocks.length - 1] += `\n${line}`;
    }
    return blocks.map((b) => b.trim()).sort();
  };
  const names = Object.keys(SCENARIOS);
  for (const name of names) {
    await nft(readFileSync(`${GOLDEN}${name}.nft`, 'utf8'));
    t.true((await listed()).includes('keepalive_ts'), name);
    await nft('add table netdev keepalive_ts\ndelete table netdev keepalive_ts\nadd table inet keepalive_ts\ndelete table inet keepalive_ts\n');
  }
  const model = (n: string) => buildModel({ services: SCENARIOS[n]!, limits: DEFAULT_LIMITS, maglev: roundMaglev }).model;
  // Reference listing of each scenario when created from nothing.
  const reference = new Map<string, string[]>();
  for (const n of names) {
    await nft(renderModel(model(n)));
    reference.set(n, await objects());
    await nft(planTransaction(model(n), new Map()).script);
    t.is((await listed()).trim(), '', `${n}: removing everything leaves nothing`);
  }
  let transitions = 0;
  for (const a of names) {
    for (const b of names) {
      if (a === b) continue;
      await nft(renderModel(model(a)));
      await nft(planTransaction(model(a), model(b)).script);
      t.deepEqual(await objects(), reference.get(b)!, `${a} -> ${b}`);
      await nft(planTransaction(model(b), new Map()).script);
      transitions++;
    }
  }
  t.log(`${names.length} golden rulesets, ${transitions} transitions applied in the kernel`);
});
