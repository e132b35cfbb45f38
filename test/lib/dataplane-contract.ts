/**
 * The data-plane contract suite: behaviours every Dataplane implementation must have
 * (src/lvs/dataplane/contract.ts), written once and run against each implementation:
 *   - the proxy on loopback:          test/unit/dataplane-contract-proxy.test.ts
 *   - nftables in a namespace lab:    test/netns/dataplane-contract-nftables.test.ts
 *
 * Everything that touches the network goes through the environment (ContractEnv): it starts the
 * real servers of one test, gives the virtual address:port to serve, and makes requests from
 * clients with distinct source addresses. Real servers speak HTTP/1.1 with keep-alive and answer
 * every request with their own name; a "stream" is one keep-alive connection on which requests
 * can be repeated, which is how established connections are observed.
 *
 * Behaviours specific to one implementation (the proxy's PROXY protocol and retry-next, its
 * worker restarts; nftables table ownership) stay in that implementation's own test files.
 */
import type { ExecutionContext } from 'ava';
import type { Endpoint, ServiceKey } from '../../src/util/endpoint.js';
import { addrMatch, endpointText, endpointsEqual, serviceKey } from '../../src/util/endpoint.js';
import { defaultHashSeed } from '../../src/lvs/hash.js';
import { MAGLEV_DEFAULT_TABLE_SIZE } from '../../src/lvs/maglev.js';
import type { Dataplane, LbKind, PoolSpec, ServiceSpec, ServiceStats } from '../../src/lvs/dataplane/contract.js';
import type { SchedulerName } from '../../src/lvs/scheduler-names.js';

/** A real server of one test: answers every HTTP request with `name`. */
export interface ContractServer {
  readonly name: string;
  readonly endpoint: Endpoint;
}

/** One keep-alive connection through the virtual service. */
export interface ContractStream {
  /** One request on this connection: the answering server's name. Rejects when the connection is gone or silent. */
  get(): Promise<string>;
  close(): Promise<void>;
}

export interface ContractClient {
  /** One request on a new connection: the answering server's name. Rejects on refusal, reset, silence. */
  get(vip: Endpoint): Promise<string>;
  /** A new keep-alive connection (resolves once connected). */
  open(vip: Endpoint): Promise<ContractStream>;
}

/** What one test gets from the environment. */
export interface ContractFixture {
  /** The address:port to serve, distinct per fixture (tests of one file run concurrently). */
  readonly vip: Endpoint;
  /** The real servers asked for, in order. */
  readonly servers: readonly ContractServer[];
  /** One more server, to be the sorry server. */
  readonly sorry: ContractServer;
  /** Client number i (0..7): each has its own source address. */
  client(i: number): ContractClient;
}

export interface ContractEnv {
  /** Shown in test titles, e.g. "proxy" or "nftables DR". */
  readonly name: string;
  /** The lb_kind the services are configured with. */
  readonly kind: LbKind;
  /** Whether the data plane sees reply traffic (false for DR: replies go straight to the client). */
  readonly seesReplies: boolean;
  /** Starts `servers` real servers (plus a sorry server) for one test; torn down with `t`. */
  fixture(t: ExecutionContext, servers: number): Promise<ContractFixture>;
}

/** How tests are declared: ava's `test`, or a wrapper such as netnsTest. */
export type ContractTest = (title: string, fn: (t: ExecutionContext) => Promise<void>) => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function count(xs: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

/** The spec the suite configures: one TCP address:port, everything else at keepalive-ts's defaults. */
export function contractSpec(kind: LbKind, vip: Endpoint, over: Partial<ServiceSpec> = {}): ServiceSpec {
  const match = addrMatch('tcp', vip.address, vip.port);
  const key = serviceKey(match);
  return {
    key,
    match,
    kind,
    scheduler: 'rr',
    hash: { seed: defaultHashSeed(key), tableSize: MAGLEV_DEFAULT_TABLE_SIZE, port: false, fallback: false },
    persistence: null,
    drainMs: 0,
    ops: false,
    ...(kind === 'PROXY' ? { proxy: { proxyProtocol: '', connectTimeoutMs: 3000 } } : {}),
    ...over,
  };
}

export function pool(servers: readonly ContractServer[], weights: readonly number[] = [], sorry: ContractServer | null = null): PoolSpec {
  return {
    dests: servers.map((s, i) => ({ key: endpointText(s.endpoint), endpoint: s.endpoint, weight: weights[i] ?? 1 })),
    sorry: sorry?.endpoint ?? null,
  };
}

async function serviceStats(dp: Dataplane, key: ServiceKey): Promise<ServiceStats> {
  const s = (await dp.stats()).services.find((x) => x.key === key);
  if (!s) throw new Error(`no stats for ${key}`);
  return s;
}

/** Polls until `ok` holds (counters are updated asynchronously); returns the last stats either way. */
async function statsWhen(dp: Dataplane, key: ServiceKey, ok: (s: ServiceStats) => boolean, ms = 3000): Promise<ServiceStats> {
  const end = Date.now() + ms;
  let s = await serviceStats(dp, key);
  while (!ok(s) && Date.now() < end) {
    await sleep(25);
    s = await serviceStats(dp, key);
  }
  return s;
}

/** The outcome of a new connection: the server's name, or "failed" (refused, reset, silent). */
async function outcome(c: ContractClient, vip: Endpoint): Promise<string> {
  return c.get(vip).catch(() => 'failed');
}

/**
 * Registers the suite. `factory` makes a fresh data plane per test (closed at teardown).
 */
export function dataplaneContract(test: ContractTest, factory: () => Dataplane, env: ContractEnv): void {
  const title = (s: string) => `[${env.name}] ${s}`;

  type Over = Partial<ServiceSpec> | ((fx: ContractFixture) => Partial<ServiceSpec>);

  async function setup(t: ExecutionContext, servers: number, over: Over = {}) {
    const fx = await env.fixture(t, servers);
    const dp = factory();
    t.teardown(() => dp.close());
    const spec = contractSpec(env.kind, fx.vip, typeof over === 'function' ? over(fx) : over);
    await dp.configure([spec]);
    return { fx, dp, spec, key: spec.key };
  }

  async function served(t: ExecutionContext, servers: number, over: Over = {}, weights: number[] = []) {
    const s = await setup(t, servers, over);
    await s.dp.setPool(s.key, pool(s.fx.servers, weights));
    await s.dp.serve(s.key);
    return s;
  }

  test(title('configure/setPool/serve/unserve: unknown keys and foreign kinds are refused with codes; stats list the service'), async (t) => {
    const { fx, dp, key, spec } = await setup(t, 1);
    const unknown = 'tcp/192.0.2.99:1' as ServiceKey;
    for (const call of [() => dp.setPool(unknown, pool(fx.servers)), () => dp.serve(unknown), () => dp.unserve(unknown, 0)]) {
      const err = await t.throwsAsync(call());
      t.is((err as { code?: string }).code, 'E_CONFIG_INVALID');
    }
    const foreign = (['DR', 'NAT', 'FULLNAT', 'PROXY'] as const).find((k) => !dp.kinds.includes(k))!;
    const wrong = await t.throwsAsync(dp.configure([{ ...spec, kind: foreign }]));
    t.is((wrong as { code?: string }).code, 'E_CONFIG_INVALID');
    // a refused configure changed nothing
    let st = await serviceStats(dp, key);
    t.like(st, { key, kind: env.kind, serving: false });
    await dp.setPool(key, pool(fx.servers));
    await dp.serve(key);
    st = await serviceStats(dp, key);
    t.true(st.serving);
    t.deepEqual(st.dests.map((d) => [d.endpoint, d.weight, d.sorry]), [[fx.servers[0]!.endpoint, 1, false]]);
    t.is(typeof st.scheduler_in_effect, 'string');
    t.regex(st.scheduler_in_effect, /rr/);
    await dp.unserve(key, 0);
    t.false((await serviceStats(dp, key)).serving);
    await dp.configure([]);
    t.is((await dp.stats()).services.length, 0);
  });

  test(title('close is idempotent; every call after it rejects with E_CLOSED'), async (t) => {
    const { dp, key } = await setup(t, 1);
    await dp.close();
    await dp.close();
    for (const call of [() => dp.stats(), () => dp.serve(key), () => dp.configure([])]) {
      const err = await t.throwsAsync(call());
      t.is((err as { code?: string }).code, 'E_CLOSED');
    }
  });

  test(title('rr splits new connections 1:1'), async (t) => {
    const { fx } = await served(t, 2);
    const c = fx.client(0);
    const answers: string[] = [];
    for (let i = 0; i < 20; i++) answers.push(await c.get(fx.vip));
    t.deepEqual(count(answers), { [fx.servers[0]!.name]: 10, [fx.servers[1]!.name]: 10 });
  });

  test(title('wrr follows weights 1:3'), async (t) => {
    const { fx } = await served(t, 2, { scheduler: 'wrr' }, [1, 3]);
    const answers: string[] = [];
    for (let i = 0; i < 80; i++) answers.push(await fx.client(i % 8).get(fx.vip));
    const n = count(answers);
    const heavy = (n[fx.servers[1]!.name] ?? 0) / answers.length;
    t.log(n);
    // exact 60/80 for a deterministic wrr; a random weighted pick stays well inside these bounds (~4 sigma)
    t.true(heavy >= 0.6 && heavy <= 0.9, `share of the weight-3 server: ${heavy}`);
    t.is((n[fx.servers[0]!.name] ?? 0) + (n[fx.servers[1]!.name] ?? 0), 80);
  });

  for (const scheduler of ['sh', 'mh'] as const satisfies readonly SchedulerName[]) {
    test(title(`${scheduler} keeps each client on one server`), async (t) => {
      const { fx } = await served(t, 3, { scheduler });
      const seen = new Map<number, string[]>();
      for (let round = 0; round < 4; round++) {
        for (let i = 0; i < 8; i++) seen.set(i, [...(seen.get(i) ?? []), await fx.client(i).get(fx.vip)]);
      }
      for (const [i, names] of seen) t.is(new Set(names).size, 1, `client ${i} went to ${names.join(',')}`);
      t.true(new Set([...seen.values()].map((n) => n[0])).size >= 2, 'clients are spread over more than one server');
    });
  }

  test(title('persistence keeps a client on its server across connections (rr underneath)'), async (t) => {
    const { fx } = await served(t, 2, (f) => ({ persistence: { timeoutMs: 60_000, prefix: f.vip.family === 4 ? 32 : 128 } }));
    for (let i = 0; i < 4; i++) {
      const names: string[] = [];
      for (let k = 0; k < 4; k++) names.push(await fx.client(i).get(fx.vip));
      t.is(new Set(names).size, 1, `client ${i} went to ${names.join(',')}`);
    }
  });

  test(title('weight 0: no new connection to the server, its established connection continues'), async (t) => {
    const { fx, dp, key } = await served(t, 2);
    const stream = await fx.client(0).open(fx.vip);
    t.teardown(() => stream.close());
    const pinned = await stream.get();
    const quiesced = fx.servers.find((s) => s.name === pinned)!;
    const other = fx.servers.find((s) => s.name !== pinned)!;
    await dp.setPool(key, pool(fx.servers, fx.servers.map((s) => (s === quiesced ? 0 : 1))));
    for (let i = 0; i < 6; i++) t.is(await fx.client(i).get(fx.vip), other.name);
    t.is(await stream.get(), pinned, 'the established connection still reaches its server');
    const st = await serviceStats(dp, key);
    t.is(st.dests.find((d) => endpointsEqual(d.endpoint, quiesced.endpoint))!.weight, 0);
  });

  test(title('a destination removed from the pool keeps its established connection; new ones go elsewhere'), async (t) => {
    const { fx, dp, key } = await served(t, 2);
    const stream = await fx.client(0).open(fx.vip);
    t.teardown(() => stream.close());
    const pinned = await stream.get();
    const rest = fx.servers.filter((s) => s.name !== pinned);
    await dp.setPool(key, pool(rest));
    for (let i = 0; i < 6; i++) t.is(await fx.client(i).get(fx.vip), rest[0]!.name);
    t.is(await stream.get(), pinned);
  });

  test(title('the sorry server takes over when the pool is empty or all weights are 0, and hands back'), async (t) => {
    const { fx, dp, key } = await served(t, 1);
    const real = fx.servers[0]!;
    await dp.setPool(key, pool([], [], fx.sorry));
    t.is(await fx.client(0).get(fx.vip), fx.sorry.name);
    t.true((await serviceStats(dp, key)).sorry);
    await dp.setPool(key, pool([real], [0], fx.sorry));
    t.is(await fx.client(1).get(fx.vip), fx.sorry.name);
    await dp.setPool(key, pool([real], [1], fx.sorry));
    t.is(await fx.client(2).get(fx.vip), real.name);
    const st = await serviceStats(dp, key);
    t.false(st.sorry);
    t.true(st.dests.some((d) => d.sorry), 'the sorry server is listed, marked sorry');
  });

  test(title('unserve drains: new connections fail at once, the established one continues, then is cut after drainMs'), async (t) => {
    const { fx, dp, key } = await served(t, 1);
    const stream = await fx.client(0).open(fx.vip);
    t.teardown(() => stream.close());
    const name = fx.servers[0]!.name;
    t.is(await stream.get(), name);
    const started = Date.now();
    const drained = dp.unserve(key, 1500);
    await sleep(100);
    t.is(await outcome(fx.client(1), fx.vip), 'failed');
    t.false((await serviceStats(dp, key)).serving);
    t.is(await stream.get(), name, 'established connection served during the drain');
    await drained;
    t.true(Date.now() - started < 1500 + 3000, 'unserve resolves by the end of the drain');
    await sleep(Math.max(0, 1500 - (Date.now() - started)) + 300);
    t.is(await stream.get().catch(() => 'cut'), 'cut', 'cut once the drain time is over');
    // and it can serve again
    await dp.serve(key);
    t.is(await fx.client(2).get(fx.vip), name);
  });

  test(title('configure keeps a service and its established connection when its settings change'), async (t) => {
    const { fx, dp, key, spec } = await served(t, 2);
    const stream = await fx.client(0).open(fx.vip);
    t.teardown(() => stream.close());
    const pinned = await stream.get();
    await dp.configure([{ ...spec, scheduler: 'wrr', drainMs: 2000 }]);
    t.is(await stream.get(), pinned);
    const st = await serviceStats(dp, key);
    t.true(st.serving, 'still served');
    t.regex(st.scheduler_in_effect, /wrr/);
    t.is(st.dests.length, 2, 'the pool is kept');
    t.not(await outcome(fx.client(1), fx.vip), 'failed');
  });

  test(title('stats: counters agree with the traffic and never go down'), async (t) => {
    const { fx, dp, key } = await served(t, 2);
    for (let i = 0; i < 10; i++) await fx.client(i % 8).get(fx.vip);
    const a = await statsWhen(dp, key, (s) => s.conns === 10 && (!env.seesReplies || s.out_bytes > 0) && s.in_bytes > 0);
    t.is(a.conns, 10);
    t.is(a.dests.reduce((n, d) => n + d.conns, 0), 10, 'per-destination connections add up');
    t.true(a.in_bytes > 0);
    if (env.seesReplies) t.true(a.out_bytes > 0);
    t.true(a.in_pkts === null || a.in_pkts > 0);
    for (let i = 0; i < 6; i++) await fx.client(i).get(fx.vip);
    const b = await statsWhen(dp, key, (s) => s.conns === 16);
    t.is(b.conns, 16);
    for (const k of ['in_bytes', 'out_bytes', 'in_pkts', 'out_pkts'] as const) {
      const x = a[k];
      const y = b[k];
      if (x !== null && y !== null) t.true(y >= x, `${k} ${x} -> ${y}`);
    }
    t.true(b.in_bytes > a.in_bytes);
  });
}
