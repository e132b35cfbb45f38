/**
 * The data-plane contract suite (test/lib/dataplane-contract.ts) against the user-space proxy on
 * loopback: Node HTTP real servers on 127.0.0.x, one virtual address per test on 127.0.5.x,
 * clients on 127.0.7.x.
 */
import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import net from 'node:net';
import { ProxyDataplane } from '../../src/lvs/dataplane/proxy/index.js';
import { endpoint } from '../../src/util/endpoint.js';
import { dataplaneContract, type ContractEnv, type ContractFixture, type ContractServer } from '../lib/dataplane-contract.js';
import { freeTcpPort, httpOnce, httpStream } from '../lib/http-client.js';

let nextVip = 1;
/** The suite runs twice (one worker, two workers): each run has its own virtual addresses. */
const vipNet = process.env.CONTRACT_VIP_NET ?? '127.0.5';


async function startServer(t: ExecutionContext, name: string, address: string): Promise<ContractServer> {
  const srv = http.createServer((_req, res) => res.end(name));
  srv.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => srv.listen(0, address, () => r()));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  );
  return { name, endpoint: endpoint(address, (srv.address() as net.AddressInfo).port) };
}

const env: ContractEnv = {
  name: 'proxy',
  kind: 'PROXY',
  seesReplies: true,
  async fixture(t, count): Promise<ContractFixture> {
    const n = nextVip++;
    const vipAddress = `${vipNet}.${n}`;
    const vip = endpoint(vipAddress, await freeTcpPort(vipAddress));
    const servers: ContractServer[] = [];
    for (let i = 0; i < count; i++) servers.push(await startServer(t, `rs${i + 1}`, `127.0.0.${2 + i}`));
    const sorry = await startServer(t, 'sorry', '127.0.0.9');
    return {
      vip,
      servers,
      sorry,
      client: (i) => {
        const localAddress = `127.0.7.${i + 1}`;
        return {
          get: (v) => httpOnce({ host: v.address, port: v.port, localAddress }),
          open: (v) => httpStream({ host: v.address, port: v.port, localAddress }),
        };
      },
    };
  },
};

/** Declares the suite for one way of building the proxy (also used with two workers). */
export function runProxyContract(factory: () => ProxyDataplane, name = 'proxy'): void {
  dataplaneContract(test, factory, { ...env, name });
}

// Imported by the two-worker file: only the importing file declares its own run.
if (process.env.CONTRACT_VIP_NET === undefined) runProxyContract(() => new ProxyDataplane({ autoRestart: false }));
