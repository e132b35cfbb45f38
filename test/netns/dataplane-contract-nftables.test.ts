// The data-plane contract suite (test/lib/dataplane-contract.ts) against NftablesDataplane in a
// namespace lab, for DR and for NAT: each test gets its own lab (one director namespace, so one
// nftables table per test), its own real servers and a client with eight source addresses. The
// data plane runs in the director (test/netns/fixtures/nft-driver.ts), the clients in the
// client namespace (test/netns/fixtures/http-agent.ts). Tests run one after the other: the suite's
// factory takes the data plane of the fixture just made.
import test from 'ava';
import { endpoint } from '../../src/util/endpoint.js';
import { dataplaneContract, type ContractEnv, type ContractTest } from '../lib/dataplane-contract.js';
import { createLab, netnsAvailable } from '../lib/netns.js';
import { kernelFarm, VIP } from '../lib/nft-lab.js';
import { startHttpAgent, startNftDriver, type RemoteNftDataplane } from '../lib/nft-remote.js';

const serial: ContractTest = (title, fn) => {
  const avail = netnsAvailable();
  if (avail.ok) test.serial(title, fn);
  else if (process.env.KEEPALIVE_TS_REQUIRE_NETNS === '1') test(title, (t) => t.fail(`network namespaces required but unavailable: ${avail.reason}`));
  else test.skip(`${title} [skipped: ${avail.reason}]`, () => {});
};

for (const kind of ['DR', 'NAT'] as const) {
  let current: RemoteNftDataplane | undefined;
  const env: ContractEnv = {
    name: `nftables ${kind}`,
    kind,
    seesReplies: kind !== 'DR',
    async fixture(t, count) {
      const lab = await createLab(t);
      const farm = await kernelFarm(lab, kind, count);
      const sources = Array.from({ length: 8 }, (_, i) => `10.77.0.${201 + i}`);
      await farm.client.exec(['sh', '-ec', sources.map((a) => `ip addr add ${a}/24 dev eth0`).join('\n')]);
      const agent = await startHttpAgent(lab, farm.client);
      current = await startNftDriver(lab, farm.director);
      return {
        vip: endpoint(VIP, 80),
        servers: farm.servers.map((s) => ({ name: s.name, endpoint: endpoint(s.address, 80) })),
        sorry: { name: farm.sorry.name, endpoint: endpoint(farm.sorry.address, 80) },
        client: (i) => ({
          get: (v) => agent.get(v.address, v.port, sources[i]!),
          open: (v) => agent.open(v.address, v.port, sources[i]!),
        }),
      };
    },
  };
  dataplaneContract(serial, () => current!, env);
}
