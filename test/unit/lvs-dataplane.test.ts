/**
 * The proxy's own behaviours (TCP), beyond the contract suite (dataplane-contract-proxy.test.ts):
 * retry on a dead real server (refused, connect timeout), sorry server after retries, PROXY
 * protocol seen by a real server, exact byte counters and half-close, connection events and
 * restore (ConnectionState), EADDRNOTAVAIL. Real servers are Node servers on distinct 127.x
 * addresses; every test has its own ProxyDataplane (own worker) and its own virtual address.
 */

import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import net from 'node:net';
import { ProxyDataplane } from '../../src/lvs/dataplane/proxy/index.js';
import type { ConnectionEvent, PoolSpec, ServiceSpec, ServiceStats } from '../../src/lvs/dataplane/contract.js';
import { endpoint, endpointText, type ServiceKey } from '../../src/util/endpoint.js';
import { contractSpec } from '../lib/dataplane-contract.js';
import { freeTcpPort } from '../lib/http-client.js';
import { stuckListener } from '../lib/stuck-listener.js';

interface Rs {
  address: string;
  port: number;
  /** endpointText: the Destination key. */
  id: string;
  close: () => Promise<void>;
}

function listen(server: net.Server, address: string): Promise<Rs> {
  return new Promise((resolve) => {
    server.listen(0, address, () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        address,
        port,
        id: endpointText({ address, port }),
        close: () =>
          new Promise<void>((r) => {
            (server as http.Server).closeAllConnections?.();
            server.close(() => r());
          }),
      });
    });
  });
}

/** HTTP real server answering its own address. */
function httpRs(address: string): Promise<Rs> {
  return listen(http.createServer((_req, res) => res.end(address)), address);
}

/** TCP real server: echoes each chunk prefixed by "<address>:". */
function echoRs(address: string): Promise<Rs> {
  const s = net.createServer((c) => {
    c.on('error', () => {});
    c.on('data', (d) => c.write(`${address}:${d.toString()}`));
    c.on('end', () => c.end());
  });
  return listen(s, address);
}

function httpGet(host: string, port: number, localAddress?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host, port, agent: false, ...(localAddress ? { localAddress } : {}) }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** Connect, resolve with the socket once connected. */
function connect(host: string, port: number, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, ...(localAddress ? { localAddress } : {}) }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Send `msg` and wait for one reply chunk. */
function exchange(s: net.Socket, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    s.once('data', (d) => resolve(d.toString()));
    s.once('error', reject);
    s.write(msg);
  });
}

/** Outcome of a connection that gets no answer: 'closed' (FIN/RST, no data) or the data. */
function outcome(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const s = net.connect({ host, port });
    s.on('data', (d) => (data += d.toString()));
    s.on('error', () => {});
    s.on('close', () => resolve(data === '' ? 'closed' : data));
    s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
  });
}

const closed = (s: net.Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setup(
  t: ExecutionContext,
  vip: string,
  extra: Partial<ServiceSpec> = {},
): Promise<{ dp: ProxyDataplane; id: ServiceKey; port: number }> {
  const port = await freeTcpPort(vip);
  const spec = contractSpec('PROXY', endpoint(vip, port), extra);
  const dp = new ProxyDataplane({ autoRestart: false });
  t.teardown(() => dp.close());
  await dp.configure([spec]);
  return { dp, id: spec.key, port };
}

const dest = (address: string, port: number, weight = 1) => ({ key: endpointText({ address, port }), endpoint: endpoint(address, port), weight });

const pool = (rss: Rs[], weights: number[] = [], sorry: Rs | null = null): PoolSpec => ({
  dests: rss.map((r, i) => dest(r.address, r.port, weights[i] ?? 1)),
  sorry: sorry ? endpoint(sorry.address, sorry.port) : null,
});

async function svcStats(dp: ProxyDataplane, id: ServiceKey): Promise<ServiceStats> {
  const s = (await dp.stats()).services.find((x) => x.key === id);
  if (!s) throw new Error(`no stats for ${id}`);
  return s;
}

/** Poll stats until `ok` holds (connection teardown is asynchronous in the worker). */
async function statsWhen(dp: ProxyDataplane, id: ServiceKey, ok: (s: ServiceStats) => boolean): Promise<ServiceStats> {
  let s = await svcStats(dp, id);
  for (let i = 0; i < 100 && !ok(s); i++) {
    await sleep(20);
    s = await svcStats(dp, id);
  }
  return s;
}

const active = (s: ServiceStats) => (s.active_conns ?? 0) + (s.inact_conns ?? 0);

function count(xs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

const proxyOpts = (o: Partial<NonNullable<ServiceSpec['proxy']>>): Partial<ServiceSpec> => ({ proxy: { proxyProtocol: '', connectTimeoutMs: 3000, ...o } });
const find = (s: ServiceStats, address: string) => s.dests.find((d) => !d.sorry && d.endpoint.address === address);

test('a quiesced and then removed destination keeps its connection counted until it ends, then is forgotten; its counters come back with it', async (t) => {
  const rss = await Promise.all(['127.0.0.2', '127.0.0.3'].map(echoRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const vip = '127.0.1.4';
  const { dp, id, port } = await setup(t, vip);
  await dp.setPool(id, pool(rss));
  await dp.serve(id);
  const long = await connect(vip, port);
  t.teardown(() => long.destroy());
  t.is(await exchange(long, 'hello'), '127.0.0.2:hello');
  await dp.setPool(id, pool(rss, [0, 1]));
  for (let i = 0; i < 5; i++) {
    const s = await connect(vip, port);
    t.is(await exchange(s, 'x'), '127.0.0.3:x');
    s.end();
    await closed(s);
  }
  const st = await statsWhen(dp, id, (x) => (find(x, '127.0.0.3')!.active_conns ?? 0) + (find(x, '127.0.0.3')!.inact_conns ?? 0) === 0);
  t.deepEqual(
    st.dests.map((r) => [r.endpoint.address, r.weight, r.active_conns, r.conns, r.in_pkts]),
    [
      ['127.0.0.2', 0, 1, 1, null],
      ['127.0.0.3', 1, 0, 5, null],
    ],
  );
  // removed from the pool altogether: still listed (weight 0) while its connection lives
  await dp.setPool(id, pool([rss[1]!]));
  t.is(await exchange(long, 'again'), '127.0.0.2:again');
  const gone = find(await svcStats(dp, id), '127.0.0.2')!;
  t.is(gone.weight, 0);
  t.is(gone.active_conns, 1);
  long.end();
  await closed(long);
  const st3 = await statsWhen(dp, id, (x) => !find(x, '127.0.0.2'));
  t.deepEqual(
    st3.dests.map((r) => r.endpoint.address),
    ['127.0.0.3'],
  );
  // back in the pool: its counters carry on from where they were (like nftables' named counters)
  const before = st.dests.find((r) => r.endpoint.address === '127.0.0.2')!;
  await dp.setPool(id, pool(rss));
  const back = find(await svcStats(dp, id), '127.0.0.2')!;
  t.is(back.conns, 1);
  t.true(back.in_bytes >= before.in_bytes + 'again'.length, `in_bytes ${back.in_bytes} kept`);
});

test('a real server whose port is closed costs no client connection (retry next)', async (t) => {
  const rss = await Promise.all(['127.0.0.3', '127.0.0.4'].map(httpRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const deadPort = await freeTcpPort('127.0.0.2');
  const vip = '127.0.1.5';
  const { dp, id, port } = await setup(t, vip);
  await dp.setPool(id, { dests: [dest('127.0.0.2', deadPort), ...pool(rss).dests], sorry: null });
  await dp.serve(id);
  const answers: string[] = [];
  for (let i = 0; i < 6; i++) answers.push(await httpGet(vip, port));
  t.false(answers.includes('127.0.0.2'));
  t.is(answers.length, 6);
  const s = await statsWhen(dp, id, (x) => active(x) === 0);
  const d = find(s, '127.0.0.2')!;
  t.is(d.conns, 0);
  t.true(d.connect_errors >= 2, `connect_errors ${d.connect_errors}`);
  t.is(s.conns, 6);
  t.is(s.dropped, 0);
});

test('a real server that does not answer SYNs: connect timeout, then the next one', async (t) => {
  // A listener in a stopped process with a full accept queue: the kernel drops further SYNs.
  const hungPort = await stuckListener(t, '127.0.0.2');
  const rss = await Promise.all(['127.0.0.3'].map(httpRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const vip = '127.0.1.6';
  const { dp, id, port } = await setup(t, vip, proxyOpts({ connectTimeoutMs: 300 }));
  await dp.setPool(id, { dests: [dest('127.0.0.2', hungPort), ...pool(rss).dests], sorry: null });
  await dp.serve(id);
  const t0 = Date.now();
  t.is(await httpGet(vip, port), '127.0.0.3');
  t.true(Date.now() - t0 >= 250, 'the first attempt waited for the connect timeout');
  const s = await svcStats(dp, id);
  t.is(find(s, '127.0.0.2')!.connect_errors, 1);
  t.is(find(s, '127.0.0.2')!.inact_conns, 0);
});

test('unserve with drain: a connection still waiting for its real-server connect is drained, not reset', async (t) => {
  // The graceful-stop race: a client accepted just before unserve whose real-server connect has
  // not completed yet (long on a loaded machine) is an open connection like any other.
  const hungPort = await stuckListener(t, '127.0.0.2');
  const rss = await Promise.all(['127.0.0.3'].map(httpRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const vip = '127.0.1.14';
  const { dp, id, port } = await setup(t, vip, proxyOpts({ connectTimeoutMs: 500 }));
  await dp.setPool(id, { dests: [dest('127.0.0.2', hungPort), ...pool(rss).dests], sorry: null });
  await dp.serve(id);
  const answer = httpGet(vip, port).then((body) => body, (err: NodeJS.ErrnoException) => `error ${err.code ?? err.message}`);
  await sleep(150); // the worker accepted it; rr sends it to the hung server first
  const draining = dp.unserve(id, 5_000);
  t.is(await answer, '127.0.0.3', 'after the connect timeout on the hung server, the next one answers');
  await draining;
});

test('no real server answers: the sorry server does, after the retries; without one the client is closed', async (t) => {
  const sorry = await httpRs('127.0.0.9');
  t.teardown(() => sorry.close());
  const deadPort = await freeTcpPort('127.0.0.2');
  const dead = dest('127.0.0.2', deadPort);
  const sorryEp = endpoint(sorry.address, sorry.port);
  const vip = '127.0.1.7';
  const { dp, id, port } = await setup(t, vip);
  await dp.setPool(id, { dests: [dead], sorry: sorryEp });
  await dp.serve(id);
  t.is(await httpGet(vip, port), '127.0.0.9');
  // empty pool: sorry server too
  await dp.setPool(id, { dests: [], sorry: sorryEp });
  t.is(await httpGet(vip, port), '127.0.0.9');
  let s = await svcStats(dp, id);
  t.true(s.sorry);
  t.is(s.dests.find((r) => r.sorry)!.conns, 2);
  // no sorry server: the connection is closed without an answer
  await dp.setPool(id, { dests: [dead], sorry: null });
  t.is(await outcome(vip, port), 'closed');
  await dp.setPool(id, { dests: [], sorry: null });
  t.is(await outcome(vip, port), 'closed');
  s = await svcStats(dp, id);
  t.is(s.dropped, 2);
  t.false(s.sorry);
});

test('PROXY protocol v1 and v2 headers reach the real server before any client byte', async (t) => {
  for (const version of ['v1', 'v2'] as const) {
    const seen: Buffer[] = [];
    const got = new Promise<Buffer>((resolve) => {
      const srv = net.createServer((c) => {
        c.on('data', (d) => {
          seen.push(d);
          const all = Buffer.concat(seen);
          if (all.includes('hello')) {
            c.end('ok');
            resolve(all);
          }
        });
      });
      t.teardown(() => srv.close());
      srv.listen(0, '127.0.0.2', () => rsPort.resolve((srv.address() as net.AddressInfo).port));
    });
    const rsPort = deferred<number>();
    const rp = await rsPort.promise;
    const vip = version === 'v1' ? '127.0.1.9' : '127.0.1.10';
    const { dp, id, port } = await setup(t, vip, proxyOpts({ proxyProtocol: version }));
    await dp.setPool(id, { dests: [dest('127.0.0.2', rp)], sorry: null });
    await dp.serve(id);
    const c = await connect(vip, port, '127.0.0.77');
    const cport = c.localPort!;
    c.write('hello');
    const all = await got;
    c.destroy();
    let expected: Buffer;
    if (version === 'v1') {
      expected = Buffer.from(`PROXY TCP4 127.0.0.77 ${vip} ${cport} ${port}\r\nhello`);
    } else {
      expected = Buffer.concat([
        Buffer.from('0d0a0d0a000d0a515549540a', 'hex'),
        Buffer.from([0x21, 0x11, 0x00, 0x0c, 127, 0, 0, 77, 127, 0, 1, 10, cport >> 8, cport & 0xff, port >> 8, port & 0xff]),
        Buffer.from('hello'),
      ]);
    }
    t.deepEqual(all, expected, version);
  }
});

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test('stats count connections and exact bytes (no packets: TCP is a byte stream here); half-close is forwarded', async (t) => {
  // Real server: reads until the client's FIN, then answers with the byte count and closes.
  const srv = net.createServer({ allowHalfOpen: true }, (c) => {
    let n = 0;
    c.on('data', (d) => (n += d.length));
    c.on('end', () => c.end(`got ${String(n).padStart(6, '0')}`));
  });
  const rs = await listen(srv, '127.0.0.2');
  t.teardown(() => rs.close());
  const vip = '127.0.1.11';
  const { dp, id, port } = await setup(t, vip);
  await dp.setPool(id, pool([rs]));
  await dp.serve(id);
  const sizes = [1, 1000, 123_456];
  for (const size of sizes) {
    const reply = await new Promise<string>((resolve, reject) => {
      const c = net.connect({ host: vip, port, allowHalfOpen: true }, () => c.end(Buffer.alloc(size, 0x61)));
      let r = '';
      c.on('data', (d) => (r += d.toString()));
      c.on('end', () => {
        c.end();
        resolve(r);
      });
      c.on('error', reject);
    });
    t.is(reply, `got ${String(size).padStart(6, '0')}`);
  }
  const s = await statsWhen(dp, id, (x) => active(x) === 0);
  t.is(s.conns, 3);
  t.is(s.in_bytes, 1 + 1000 + 123_456);
  t.is(s.out_bytes, 3 * 10);
  t.is(s.in_pkts, null);
  t.is(s.out_pkts, null);
  t.is(s.dests[0]!.in_bytes, 124_457);
  t.is(s.dests[0]!.out_bytes, 30);

  // live connection: counters include its bytes so far
  const live = await connect(vip, port);
  live.write('x'.repeat(10));
  const ls = await statsWhen(dp, id, (x) => x.in_bytes === 124_467);
  t.is(ls.in_bytes, 124_467);
  t.is(ls.active_conns, 1);
  live.destroy();
});

test('events: new/ended connections and persistence templates, batched; none for the sorry server', async (t) => {
  const rss = await Promise.all(['127.0.0.2', '127.0.0.3'].map(httpRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const sorry = await httpRs('127.0.0.9');
  t.teardown(() => sorry.close());
  const vip = '127.0.1.12';
  const { dp, id, port } = await setup(t, vip, { persistence: { timeoutMs: 30_000, prefix: 24 } });
  await dp.setPool(id, pool(rss, [], sorry));
  const batches: (readonly ConnectionEvent[])[] = [];
  dp.onEvent((evs) => batches.push(evs));
  await dp.serve(id);
  await dp.stats(); // the subscription message is processed before traffic
  for (let i = 0; i < 3; i++) t.is(await httpGet(vip, port, '127.0.0.60'), '127.0.0.2');
  await dp.setPool(id, pool([], [], sorry));
  t.is(await httpGet(vip, port, '127.0.0.60'), '127.0.0.9');
  // every connection has ended (and its events are out) once the counters say so; then one more batch interval
  await statsWhen(dp, id, (x) => active(x) === 0);
  for (let i = 0; i < 100 && batches.flat().filter((e) => e.type === 'conn_end').length < 3; i++) await sleep(20);
  await sleep(250);
  const evs = batches.flat();
  const news = evs.filter((e) => e.type === 'conn_new');
  const ends = evs.filter((e) => e.type === 'conn_end');
  const tpl = evs.filter((e) => e.type === 'template');
  t.is(news.length, 3);
  t.is(ends.length, 3);
  const rs0 = endpoint(rss[0]!.address, rss[0]!.port);
  for (const e of news) {
    t.like(e, { type: 'conn_new', service: id, protocol: 'tcp', client: { address: '127.0.0.60', family: 4 }, virtual: endpoint(vip, port), dest: rs0 });
  }
  t.true(tpl.length >= 1 && tpl.length <= 3);
  t.like(tpl[0], { service: id, client: '127.0.0.0', family: 4, dest: rs0, expiresInMs: 30_000 });
  t.true(batches.length < evs.length, `${batches.length} batches for ${evs.length} events`);
  const snap = await dp.snapshot();
  t.deepEqual(snap.templates.map((x) => [x.service, x.client, x.dest]), [[id, '127.0.0.0', rs0]]);
});

test('restore: a synced template sends its client to the template server', async (t) => {
  const rss = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.4'].map(httpRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const vip = '127.0.1.13';
  const { dp, id, port } = await setup(t, vip, { persistence: { timeoutMs: 60_000, prefix: 32 } });
  await dp.setPool(id, pool(rss));
  await dp.serve(id);
  await dp.restore([
    { type: 'template', service: id, client: '127.0.0.61', family: 4, dest: endpoint(rss[2]!.address, rss[2]!.port), expiresInMs: 30_000 },
    // malformed: skipped and counted, the rest applies
    { type: 'template', service: id, client: 'nope', family: 4, dest: endpoint(rss[1]!.address, rss[1]!.port), expiresInMs: 30_000 },
  ]);
  for (let i = 0; i < 3; i++) t.is(await httpGet(vip, port, '127.0.0.61'), '127.0.0.4');
  // another client is scheduled normally (rr starts at the first server)
  t.is(await httpGet(vip, port, '127.0.0.62'), '127.0.0.2');
  t.is((await dp.stats()).extra.restore_dropped, 1);
});

test('serve rejects with E_SOCKET/EADDRNOTAVAIL when the VIP is not local; services the proxy cannot serve are refused', async (t) => {
  const dp = new ProxyDataplane({ autoRestart: false });
  t.teardown(() => dp.close());
  const spec = contractSpec('PROXY', endpoint('192.0.2.1', 80), { scheduler: 'wlc' });
  await dp.configure([spec]);
  const err = await t.throwsAsync(dp.serve(spec.key));
  t.is((err as { code?: string }).code, 'E_SOCKET');
  t.is(((err as Error).cause as NodeJS.ErrnoException).code, 'EADDRNOTAVAIL');
  t.false((await svcStats(dp, spec.key)).serving);
  // a port set, and a destination without a port: refused before they reach the worker
  const set = await t.throwsAsync(dp.configure([{ ...spec, match: { ...spec.match, ports: [{ from: 80, to: 81 }] } as ServiceSpec['match'] }]));
  t.is((set as { code?: string }).code, 'E_CONFIG_INVALID');
  const portless = await t.throwsAsync(dp.setPool(spec.key, { dests: [dest('192.0.2.2', 0)], sorry: null }));
  t.is((portless as { code?: string }).code, 'E_CONFIG_INVALID');
  t.is((await dp.stats()).services.length, 1);
});

test('configure: a removed service stops listening at once, its open connection drains', async (t) => {
  const rss = await Promise.all(['127.0.0.2'].map(echoRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const vip = '127.0.1.14';
  const { dp, id, port } = await setup(t, vip, { drainMs: 2000 });
  await dp.setPool(id, pool(rss));
  await dp.serve(id);
  const c = await connect(vip, port);
  t.is(await exchange(c, 'a'), '127.0.0.2:a');
  await dp.configure([]);
  const refused = await connect(vip, port).then(
    (s) => (s.destroy(), null),
    (e: NodeJS.ErrnoException) => e.code,
  );
  t.is(refused, 'ECONNREFUSED');
  t.is(await exchange(c, 'c'), '127.0.0.2:c');
  c.end();
  await closed(c);
});
