/**
 * Data plane TCP proxy on loopback: scheduling split, persistence, quiescing, retry on a dead
 * real server, sorry server, drain, PROXY protocol seen by a real server, byte counters and
 * events. Real servers are Node servers on distinct 127.x addresses; every test has its own
 * DataPlane (own worker) and its own virtual address.
 */

import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import net from 'node:net';
import { stuckListener } from '../lib/stuck-listener.js';
import { DataPlane, type DataPlaneEvent, type ServiceSpec, type ServiceStats } from '../../src/lvs/dataplane/index.js';

interface Rs {
  address: string;
  port: number;
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
        id: `${address}:${port}`,
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

/** A port that was free on `address` a moment ago. */
function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
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
): Promise<{ dp: DataPlane; id: string; port: number }> {
  const port = await freePort(vip);
  const id = `tcp/${vip}:${port}`;
  const dp = new DataPlane({ autoRestart: false });
  t.teardown(() => dp.close());
  await dp.configure([{ id, protocol: 'tcp', address: vip, port, lbAlgo: 'rr', ...extra }]);
  return { dp, id, port };
}

const pool = (rss: Rs[], weights: number[] = []) =>
  rss.map((r, i) => ({ id: r.id, address: r.address, port: r.port, weight: weights[i] ?? 1 }));

async function svcStats(dp: DataPlane, id: string): Promise<ServiceStats> {
  const s = (await dp.stats()).services.find((x) => x.id === id);
  if (!s) throw new Error(`no stats for ${id}`);
  return s;
}

/** Poll stats until `ok` holds (connection teardown is asynchronous in the worker). */
async function statsWhen(dp: DataPlane, id: string, ok: (s: ServiceStats) => boolean): Promise<ServiceStats> {
  let s = await svcStats(dp, id);
  for (let i = 0; i < 100 && !ok(s); i++) {
    await sleep(20);
    s = await svcStats(dp, id);
  }
  return s;
}

function count(xs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

test('rr splits exactly across three real servers on distinct addresses', async (t) => {
  const rss = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.4'].map(httpRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const vip = '127.0.1.1';
  const { dp, id, port } = await setup(t, vip);
  await dp.setPool(id, pool(rss), null);
  await dp.serve(id);
  const answers: string[] = [];
  for (let i = 0; i < 30; i++) answers.push(await httpGet(vip, port));
  t.deepEqual(answers.slice(0, 6), ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.2', '127.0.0.3', '127.0.0.4']);
  t.deepEqual(count(answers), { '127.0.0.2': 10, '127.0.0.3': 10, '127.0.0.4': 10 });
  const s = await statsWhen(dp, id, (x) => x.active_conns + x.inact_conns === 0);
  t.is(s.conns, 30);
  t.true(s.serving);
  t.deepEqual(
    s.real_servers.map((r) => [r.address, r.conns, r.active_conns, r.inact_conns]),
    [
      ['127.0.0.2', 10, 0, 0],
      ['127.0.0.3', 10, 0, 0],
      ['127.0.0.4', 10, 0, 0],
    ],
  );
});

test('wrr follows the weights', async (t) => {
  const rss = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.4'].map(httpRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const vip = '127.0.1.2';
  const { dp, id, port } = await setup(t, vip, { lbAlgo: 'wrr' });
  await dp.setPool(id, pool(rss, [3, 2, 1]), null);
  await dp.serve(id);
  const answers: string[] = [];
  for (let i = 0; i < 60; i++) answers.push(await httpGet(vip, port));
  t.deepEqual(count(answers), { '127.0.0.2': 30, '127.0.0.3': 20, '127.0.0.4': 10 });
});

test('persistence keeps each client address on one server', async (t) => {
  const rss = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.4'].map(httpRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const vip = '127.0.1.3';
  const { dp, id, port } = await setup(t, vip, { persistence: { timeoutMs: 60_000 } });
  await dp.setPool(id, pool(rss), null);
  await dp.serve(id);
  const a: string[] = [];
  const b: string[] = [];
  for (let i = 0; i < 6; i++) {
    a.push(await httpGet(vip, port, '127.0.0.50'));
    b.push(await httpGet(vip, port, '127.0.0.51'));
  }
  t.is(new Set(a).size, 1, `client .50 went to ${a.join(',')}`);
  t.is(new Set(b).size, 1, `client .51 went to ${b.join(',')}`);
  t.not(a[0], b[0]); // the second client went through rr: the next server
});

test('weight 0: no new connections, an existing long-lived one keeps working', async (t) => {
  const rss = await Promise.all(['127.0.0.2', '127.0.0.3'].map(echoRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const vip = '127.0.1.4';
  const { dp, id, port } = await setup(t, vip);
  await dp.setPool(id, pool(rss), null);
  await dp.serve(id);
  const long = await connect(vip, port);
  t.teardown(() => long.destroy());
  t.is(await exchange(long, 'hello'), '127.0.0.2:hello');
  await dp.setPool(id, pool(rss, [0, 1]), null);
  for (let i = 0; i < 5; i++) {
    const s = await connect(vip, port);
    t.is(await exchange(s, 'x'), '127.0.0.3:x');
    s.end();
    await closed(s);
  }
  t.is(await exchange(long, 'still'), '127.0.0.2:still');
  const st = await statsWhen(dp, id, (x) => x.real_servers[1]!.active_conns + x.real_servers[1]!.inact_conns === 0);
  t.deepEqual(
    st.real_servers.map((r) => [r.address, r.weight, r.up, r.active_conns, r.conns]),
    [
      ['127.0.0.2', 0, false, 1, 1],
      ['127.0.0.3', 1, true, 0, 5],
    ],
  );
  // removed from the pool altogether: the open connection still continues (IPVS semantics)
  await dp.setPool(id, pool([rss[1]!]), null);
  t.is(await exchange(long, 'again'), '127.0.0.2:again');
  const st2 = await svcStats(dp, id);
  const gone = st2.real_servers.find((r) => r.address === '127.0.0.2')!;
  t.false(gone.in_pool);
  t.is(gone.active_conns, 1);
  long.end();
  await closed(long);
  const st3 = await statsWhen(dp, id, (x) => !x.real_servers.some((r) => r.address === '127.0.0.2'));
  t.deepEqual(
    st3.real_servers.map((r) => r.address),
    ['127.0.0.3'],
  );
});

test('a real server whose port is closed costs no client connection (retry next)', async (t) => {
  const rss = await Promise.all(['127.0.0.3', '127.0.0.4'].map(httpRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const deadPort = await freePort('127.0.0.2');
  const dead = { id: `127.0.0.2:${deadPort}`, address: '127.0.0.2', port: deadPort, weight: 1 };
  const vip = '127.0.1.5';
  const { dp, id, port } = await setup(t, vip);
  await dp.setPool(id, [dead, ...pool(rss)], null);
  await dp.serve(id);
  const answers: string[] = [];
  for (let i = 0; i < 6; i++) answers.push(await httpGet(vip, port));
  t.false(answers.includes('127.0.0.2'));
  t.is(answers.length, 6);
  const s = await statsWhen(dp, id, (x) => x.active_conns + x.inact_conns === 0);
  const d = s.real_servers.find((r) => r.address === '127.0.0.2')!;
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
  const { dp, id, port } = await setup(t, vip, { connectTimeoutMs: 300 });
  await dp.setPool(id, [{ id: 'hung', address: '127.0.0.2', port: hungPort, weight: 1 }, ...pool(rss)], null);
  await dp.serve(id);
  const t0 = Date.now();
  t.is(await httpGet(vip, port), '127.0.0.3');
  t.true(Date.now() - t0 >= 250, 'the first attempt waited for the connect timeout');
  const s = await svcStats(dp, id);
  t.is(s.real_servers.find((r) => r.id === 'hung')!.connect_errors, 1);
  t.is(s.real_servers.find((r) => r.id === 'hung')!.inact_conns, 0);
});

test('unserve with drain: a connection still waiting for its real-server connect is drained, not reset', async (t) => {
  // The graceful-stop race: a client accepted just before unserve whose real-server connect has
  // not completed yet (long on a loaded machine) is an open connection like any other.
  const hungPort = await stuckListener(t, '127.0.0.2');
  const rss = await Promise.all(['127.0.0.3'].map(httpRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const vip = '127.0.1.14';
  const { dp, id, port } = await setup(t, vip, { connectTimeoutMs: 500 });
  await dp.setPool(id, [{ id: 'hung', address: '127.0.0.2', port: hungPort, weight: 1 }, ...pool(rss)], null);
  await dp.serve(id);
  const answer = httpGet(vip, port).then((body) => body, (err: NodeJS.ErrnoException) => `error ${err.code ?? err.message}`);
  await statsWhen(dp, id, () => true); // the worker has seen the request: rr sends it to the hung server first
  await sleep(100);
  const draining = dp.unserve(id, 5_000);
  t.is(await answer, '127.0.0.3', 'after the connect timeout on the hung server, the next one answers');
  await draining;
});

test('no real server left: the sorry server answers; without one the client is closed', async (t) => {
  const sorry = await httpRs('127.0.0.9');
  t.teardown(() => sorry.close());
  const deadPort = await freePort('127.0.0.2');
  const dead = { id: `127.0.0.2:${deadPort}`, address: '127.0.0.2', port: deadPort, weight: 1 };
  const vip = '127.0.1.7';
  const { dp, id, port } = await setup(t, vip);
  await dp.setPool(id, [dead], { address: sorry.address, port: sorry.port });
  await dp.serve(id);
  t.is(await httpGet(vip, port), '127.0.0.9');
  // empty pool: sorry server too
  await dp.setPool(id, [], { address: sorry.address, port: sorry.port });
  t.is(await httpGet(vip, port), '127.0.0.9');
  let s = await svcStats(dp, id);
  t.true(s.sorry);
  t.is(s.real_servers.find((r) => r.sorry)!.conns, 2);
  // no sorry server: the connection is closed without an answer
  await dp.setPool(id, [dead], null);
  t.is(await outcome(vip, port), 'closed');
  await dp.setPool(id, [], null);
  t.is(await outcome(vip, port), 'closed');
  s = await svcStats(dp, id);
  t.is(s.dropped, 2);
  t.false(s.sorry);
});

test('unserve with drain: new connections refused at once, open ones may finish', async (t) => {
  const rss = await Promise.all(['127.0.0.2'].map(echoRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const vip = '127.0.1.8';
  const { dp, id, port } = await setup(t, vip);
  await dp.setPool(id, pool(rss), null);
  await dp.serve(id);
  const open = await connect(vip, port);
  t.is(await exchange(open, 'a'), '127.0.0.2:a');
  const started = Date.now();
  const draining = dp.unserve(id, 5000);
  await sleep(50);
  const err = await connect(vip, port).then(
    (s) => {
      s.destroy();
      return null;
    },
    (e: NodeJS.ErrnoException) => e.code,
  );
  t.is(err, 'ECONNREFUSED');
  t.false((await svcStats(dp, id)).serving);
  t.is(await exchange(open, 'b'), '127.0.0.2:b');
  open.end();
  await closed(open);
  await draining;
  t.true(Date.now() - started < 4000, 'unserve resolved when the last connection ended');

  // serve again; a connection that outlives the drain window is destroyed
  await dp.serve(id);
  const stuck = await connect(vip, port);
  t.is(await exchange(stuck, 'c'), '127.0.0.2:c');
  const t0 = Date.now();
  const gone = closed(stuck);
  await dp.unserve(id, 300);
  const waited = Date.now() - t0;
  t.true(waited >= 250, `unserve returned after ${waited} ms`);
  await gone;
  t.true(stuck.destroyed);
  const s = await statsWhen(dp, id, (x) => x.active_conns + x.inact_conns === 0);
  t.is(s.active_conns + s.inact_conns, 0);
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
    const { dp, id, port } = await setup(t, vip, { proxyProtocol: version });
    await dp.setPool(id, [{ id: 'rs', address: '127.0.0.2', port: rp, weight: 1 }], null);
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

test('stats count connections and exact bytes; half-close is forwarded', async (t) => {
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
  await dp.setPool(id, pool([rs]), null);
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
  const s = await statsWhen(dp, id, (x) => x.active_conns + x.inact_conns === 0);
  t.is(s.conns, 3);
  t.is(s.in_bytes, 1 + 1000 + 123_456);
  t.is(s.out_bytes, 3 * 10);
  t.is(s.real_servers[0]!.in_bytes, 124_457);
  t.is(s.real_servers[0]!.out_bytes, 30);

  // live connection: counters include its bytes so far
  const live = await connect(vip, port);
  live.write('x'.repeat(10));
  const ls = await statsWhen(dp, id, (x) => x.in_bytes === 124_467);
  t.is(ls.in_bytes, 124_467);
  t.is(ls.active_conns, 1);
  live.destroy();
});

test('events: new/ended connections and persistence templates, batched', async (t) => {
  const rss = await Promise.all(['127.0.0.2', '127.0.0.3'].map(httpRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const vip = '127.0.1.12';
  const { dp, id, port } = await setup(t, vip, { persistence: { timeoutMs: 30_000, prefix4: 24 } });
  await dp.setPool(id, pool(rss), null);
  const batches: (readonly DataPlaneEvent[])[] = [];
  dp.onEvent((evs) => batches.push(evs));
  await dp.serve(id);
  await dp.stats(); // the subscription message is processed before traffic
  for (let i = 0; i < 3; i++) t.is(await httpGet(vip, port, '127.0.0.60'), '127.0.0.2');
  // Batches come every 100 ms: wait for the third conn_end (polled; a loaded machine is slower).
  for (let i = 0; i < 100 && batches.flat().filter((e) => e.type === 'conn_end').length < 3; i++) await sleep(50);
  await sleep(150); // anything still pending would arrive within one more batch interval
  const evs = batches.flat();
  const news = evs.filter((e) => e.type === 'conn_new');
  const ends = evs.filter((e) => e.type === 'conn_end');
  const tpl = evs.filter((e) => e.type === 'template');
  t.is(news.length, 3);
  t.is(ends.length, 3);
  t.true(news.every((e) => e.type === 'conn_new' && e.client === '127.0.0.60' && e.service === id && e.destId === rss[0]!.id));
  t.true(tpl.length >= 1 && tpl.length <= 3);
  t.like(tpl[0], { vs: id, client: '127.0.0.0', family: 4, destId: rss[0]!.id, expiresInMs: 30_000 });
  // Batched: fewer batches than events (timing decides how the three requests spread over batches).
  t.log(`${evs.length} events in ${batches.length} batches`);
  t.true(batches.length < evs.length, `${batches.length} batches for ${evs.length} events`);
});

test('restore: a synced template sends its client to the template server', async (t) => {
  const rss = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.4'].map(httpRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const vip = '127.0.1.13';
  const { dp, id, port } = await setup(t, vip, { persistence: { timeoutMs: 60_000 } });
  await dp.setPool(id, pool(rss), null);
  await dp.serve(id);
  await dp.restore([{ type: 'template', vs: id, client: '127.0.0.61', family: 4, destId: rss[2]!.id, expiresInMs: 30_000 }]);
  for (let i = 0; i < 3; i++) t.is(await httpGet(vip, port, '127.0.0.61'), '127.0.0.4');
  // another client is scheduled normally (rr starts at the first server)
  t.is(await httpGet(vip, port, '127.0.0.62'), '127.0.0.2');
});

test('serve rejects with E_SOCKET/EADDRNOTAVAIL when the VIP is not local; configure keeps services', async (t) => {
  const dp = new DataPlane({ autoRestart: false });
  t.teardown(() => dp.close());
  const id = 'tcp/192.0.2.1:80';
  await dp.configure([{ id, protocol: 'tcp', address: '192.0.2.1', port: 80, lbAlgo: 'wlc' }]);
  const err = await t.throwsAsync(dp.serve(id));
  t.is((err as { code?: string }).code, 'E_SOCKET');
  t.is(((err as Error).cause as NodeJS.ErrnoException).code, 'EADDRNOTAVAIL');
  const unknown = await t.throwsAsync(dp.serve('tcp/127.0.0.1:1'));
  t.is((unknown as { code?: string }).code, 'E_CONFIG_INVALID');
  t.is((await dp.stats()).services.length, 1);
  await dp.configure([]);
  t.is((await dp.stats()).services.length, 0);
  await dp.close();
  await dp.close();
  const after = await t.throwsAsync(dp.stats());
  t.is((after as { code?: string }).code, 'E_CLOSED');
});

test('configure: an existing service keeps its connections, a removed one drains', async (t) => {
  const rss = await Promise.all(['127.0.0.2'].map(echoRs));
  t.teardown(() => Promise.all(rss.map((r) => r.close())));
  const vip = '127.0.1.14';
  const { dp, id, port } = await setup(t, vip);
  await dp.setPool(id, pool(rss), null);
  await dp.serve(id);
  const c = await connect(vip, port);
  t.is(await exchange(c, 'a'), '127.0.0.2:a');
  // same service with another algorithm: untouched
  await dp.configure([{ id, protocol: 'tcp', address: vip, port, lbAlgo: 'lc', drainMs: 2000 }]);
  t.is(await exchange(c, 'b'), '127.0.0.2:b');
  t.is((await svcStats(dp, id)).lb_algo, 'lc');
  // removed: listener gone at once, the open connection keeps working during the drain
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
