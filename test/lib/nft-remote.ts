// A Dataplane whose implementation (NftablesDataplane) runs in another network namespace: the
// test process cannot enter a namespace, so it drives test/netns/fixtures/nft-driver.ts over a
// Unix socket in the lab's tmpDir.
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConnectionEvent, ConnectionSnapshot, Dataplane, DataplaneStats, LbKind, PoolSpec, RestoreEntry, ServiceSpec } from '../../src/lvs/dataplane/contract.js';
import type { ServiceKey } from '../../src/util/endpoint.js';
import { askJson } from './json-socket.js';
import type { Lab, LabHost, LabProcess } from './lab-core.js';

const DRIVER = join(dirname(fileURLToPath(import.meta.url)), '../netns/fixtures/nft-driver.js');
const AGENT = join(dirname(fileURLToPath(import.meta.url)), '../netns/fixtures/http-agent.js');

export interface RemoteHttpStream {
  get(): Promise<string>;
  close(): Promise<void>;
}

/** HTTP clients running in a lab host (test/netns/fixtures/http-agent.ts), by source address. */
export interface RemoteHttp {
  get(host: string, port: number, local: string): Promise<string>;
  open(host: string, port: number, local: string): Promise<RemoteHttpStream>;
}

export async function startHttpAgent(lab: Lab, host: LabHost): Promise<RemoteHttp> {
  const socket = join(lab.tmpDir, `http-agent-${host.name}-${Date.now()}.sock`);
  const proc = host.spawn([process.execPath, AGENT, socket]);
  await proc.waitForOutput(/ready/, 10_000);
  return {
    get: (h, p, local) => askJson<string>(socket, 'get', [h, p, local]),
    open: async (h, p, local) => {
      const id = await askJson<number>(socket, 'open', [h, p, local]);
      return { get: () => askJson<string>(socket, 'sget', [id]), close: () => askJson<void>(socket, 'sclose', [id]) };
    },
  };
}

export interface RemoteOptions {
  transport?: 'libnftables' | 'nft';
  limits?: Record<string, number>;
  ingress?: string[];
}

export class RemoteNftDataplane implements Dataplane {
  readonly name = 'nftables';
  readonly kinds: readonly LbKind[] = ['DR', 'NAT', 'FULLNAT'];
  /** Milliseconds the last call took inside the driver (without the round trip). */
  lastMs = 0;

  constructor(readonly proc: LabProcess, private readonly socket: string) {}

  call<T>(op: string, ...args: unknown[]): Promise<T> {
    return askJson<T>(this.socket, op, args, () => this.proc.output().slice(-2000), (ms) => (this.lastMs = ms));
  }

  configure(services: readonly ServiceSpec[]): Promise<void> {
    return this.call('configure', services);
  }
  setPool(key: ServiceKey, pool: PoolSpec): Promise<void> {
    return this.call('setPool', key, pool);
  }
  serve(key: ServiceKey): Promise<void> {
    return this.call('serve', key);
  }
  unserve(key: ServiceKey, drainMs: number): Promise<void> {
    return this.call('unserve', key, drainMs);
  }
  stats(): Promise<DataplaneStats> {
    return this.call('stats');
  }
  close(): Promise<void> {
    return this.call('close');
  }
  snapshot(): Promise<ConnectionSnapshot> {
    return this.call('snapshot');
  }
  restore(entries: readonly RestoreEntry[]): Promise<void> {
    return this.call('restore', entries);
  }
  /** The connection events the data plane emits during `ms`. */
  events(ms: number): Promise<ConnectionEvent[]> {
    return this.call('events', ms);
  }
}

/** Starts the driver in `host` (the director) and returns the remote data plane. */
export async function startNftDriver(lab: Lab, host: LabHost, opts: RemoteOptions = {}): Promise<RemoteNftDataplane> {
  const socket = join(lab.tmpDir, `nft-driver-${host.name}-${Date.now()}.sock`);
  const proc = host.spawn([process.execPath, DRIVER, JSON.stringify({ socket, ...opts })]);
  await proc.waitForOutput(/ready/, 10_000);
  return new RemoteNftDataplane(proc, socket);
}
