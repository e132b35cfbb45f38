/**
 * The proxy's TCP byte path, native relay (native/relay_engine.c via tcp-relay.ts) and node:net
 * (tcp.ts) side by side: each behaviour runs against both, so the fallback and the default agree.
 * Loopback only; every test has its own ProxyDataplane and virtual address (127.0.9.x).
 */
import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import { ProxyDataplane } from '../../src/lvs/dataplane/proxy/index.js';
import type { ServiceSpec, ServiceStats } from '../../src/lvs/dataplane/contract.js';
import { addrMatch, endpoint, endpointText, serviceKey, type Endpoint } from '../../src/util/endpoint.js';
import { contractSpec } from '../lib/dataplane-contract.js';
import { freeTcpPort } from '../lib/http-client.js';
import { loopbackServer as listen } from '../lib/loopback-server.js';

let nextVip = 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function proxy(t: ExecutionContext, nativeRelay: boolean, dests: readonly Endpoint[]): Promise<{ dp: ProxyDataplane; vip: Endpoint; stats: () => Promise<ServiceStats> }> {
  const address = `127.0.9.${nextVip++}`;
  const vip = endpoint(address, await freeTcpPort(address));
  const base = contractSpec('PROXY', vip);
  const match = addrMatch('tcp', address, vip.port);
  const spec: ServiceSpec = { ...base, match, key: serviceKey(match), scheduler: 'rr', proxy: { proxyProtocol: '', connectTimeoutMs: 2000 } };
  const dp = new ProxyDataplane({ autoRestart: false, nativeRelay });
  t.teardown(() => dp.close());
  await dp.configure([spec]);
  await dp.setPool(spec.key, { dests: dests.map((e) => ({ key: endpointText(e), endpoint: e, weight: 1 })), sorry: null });
  await dp.serve(spec.key);
  return { dp, vip, stats: async () => (await dp.stats()).services.find((s) => s.key === spec.key)! };
}

async function until(t: ExecutionContext, what: string, ok: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) t.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Connects, writes `send`, half-closes, and collects everything until the proxy closes. */
function exchange(vip: Endpoint, send: Buffer, opts: { pauseMs?: number } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: vip.address, port: vip.port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    c.on('error', reject);
    c.on('connect', () => {
      c.end(send);
      if (opts.pauseMs) {
        c.pause();
        setTimeout(() => c.resume(), opts.pauseMs);
      }
    });
    c.on('data', (d) => chunks.push(d));
    c.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

for (const nativeRelay of [true, false]) {
  const name = nativeRelay ? 'native relay' : 'node:net relay';

  test(`[${name}] stats say which relay moves the bytes`, async (t) => {
    const rs = await listen(t, (c) => c.end());
    const { stats } = await proxy(t, nativeRelay, [rs]);
    t.is((await stats()).relay, nativeRelay ? 'native' : 'node');
  });

  test(`[${name}] half-close: the client's FIN reaches the real server, its answer still comes back; counters follow (active, inactive after FIN, bytes)`, async (t) => {
    const reply = Buffer.from('thanks');
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => { release = r; });
    const rs = await listen(t, (c) => {
      let n = 0;
      c.on('data', (d) => { n += d.length; });
      c.on('end', () => void released.then(() => c.end(Buffer.concat([reply, Buffer.from(` ${n}`)]))));
    });
    const { vip, stats } = await proxy(t, nativeRelay, [rs]);
    const payload = Buffer.alloc(300_000, 7);
    const got = exchange(vip, payload);
    // The client has sent FIN; the real server has not answered yet: one inactive connection.
    await until(t, 'the half-closed connection to count as inactive', async () => { const s = await stats(); return s.inact_conns === 1 && s.active_conns === 0; });
    release();
    t.is((await got).toString(), `thanks ${payload.length}`);
    await until(t, 'the connection to leave the table', async () => { const s = await stats(); return s.conns === 1 && s.inact_conns === 0 && s.active_conns === 0; });
    const s = await stats();
    t.is(s.in_bytes, payload.length);
    t.is(s.out_bytes, reply.length + ` ${payload.length}`.length);
    t.is(s.dests[0]!.in_bytes, payload.length);
  });

  test(`[${name}] bulk with a slow reader: every byte arrives in order, out_bytes counts them`, async (t) => {
    const size = 8 * 1024 * 1024;
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4) body.writeUInt32LE(i, i);
    const rs = await listen(t, (c) => { c.on('data', () => undefined); c.end(body); });
    const { vip, stats } = await proxy(t, nativeRelay, [rs]);
    const got = await exchange(vip, Buffer.from('GET'), { pauseMs: 300 });
    t.is(got.length, size);
    t.true(got.equals(body));
    await until(t, 'the counters', async () => (await stats()).out_bytes === size);
    t.is((await stats()).in_bytes, 3);
  });

  test(`[${name}] the real server answers and closes first: the client gets the FIN while it may still send, and what it sends still arrives`, async (t) => {
    // The FIN of the side that finishes first is passed on as a half-close (the native relay does
    // it at the end of the next loop turn, or with the close when the other FIN came meanwhile).
    let serverGot = '';
    let serverDone: () => void = () => undefined;
    const done = new Promise<void>((r) => { serverDone = r; });
    const rs = await listen(t, (c) => {
      c.end('answer');
      c.on('data', (d) => { serverGot += d.toString(); });
      c.on('end', () => serverDone());
    });
    const { vip, stats } = await proxy(t, nativeRelay, [rs]);
    const c = net.connect({ host: vip.address, port: vip.port, allowHalfOpen: true });
    c.on('error', () => undefined);
    let got = '';
    c.on('data', (d) => { got += d.toString(); });
    await new Promise<void>((r) => c.once('end', () => r()));
    t.is(got, 'answer');
    // Half-closed by the real server: counted inactive, the client's direction still open.
    await until(t, 'the half-closed connection to count as inactive', async () => (await stats()).inact_conns === 1);
    c.end('late words');
    await done;
    t.is(serverGot, 'late words');
    await until(t, 'the connection to leave the table', async () => { const s = await stats(); return s.conns === 1 && s.inact_conns === 0 && s.active_conns === 0 && s.in_bytes === 10; });
  });

  test(`[${name}] a real server that speaks first: its greeting arrives before the client sends anything`, async (t) => {
    // The greeting is queued on the real-server side when the connect completes: the engine must
    // read it without waiting for another readiness event (edge-triggered epoll gives none).
    const rs = await listen(t, (c) => { c.write('220 hello\r\n'); c.on('data', (d) => c.end(`got ${d.length}`)); });
    const { vip } = await proxy(t, nativeRelay, [rs]);
    const c = net.connect({ host: vip.address, port: vip.port, allowHalfOpen: true });
    c.on('error', () => undefined);
    const first = await new Promise<string>((r) => c.once('data', (d) => r(d.toString())));
    t.is(first, '220 hello\r\n');
    const rest: Buffer[] = [];
    c.on('data', (d) => rest.push(d));
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.end('abc');
    await closed;
    t.is(Buffer.concat(rest).toString(), 'got 3');
  });

  test(`[${name}] a large upload with the FIN right behind it: every byte and the FIN reach the real server`, async (t) => {
    // 3 MiB is more than one turn's reads (8 x 64 KiB): the rest must be read on later turns
    // without new bytes arriving, and the FIN queued behind the data must still be seen.
    const size = 3 * 1024 * 1024;
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4) body.writeUInt32LE(i * 7, i);
    let received = Buffer.alloc(0);
    const rs = await listen(t, (c) => {
      const chunks: Buffer[] = [];
      c.on('data', (d) => chunks.push(d));
      c.on('end', () => { received = Buffer.concat(chunks); c.end(`ok ${received.length}`); });
    });
    const { vip, stats } = await proxy(t, nativeRelay, [rs]);
    t.is((await exchange(vip, body)).toString(), `ok ${size}`);
    t.true(received.equals(body));
    await until(t, 'the counters', async () => { const s = await stats(); return s.in_bytes === size && s.active_conns === 0 && s.inact_conns === 0; });
  });

  test(`[${name}] many short connections in a burst (one request, answer, close): each gets its answer`, async (t) => {
    const rs = await listen(t, (c) => c.once('data', (d) => c.end(`re:${d.toString()}`)));
    const { vip, stats } = await proxy(t, nativeRelay, [rs]);
    const n = 200;
    const got = await Promise.all(Array.from({ length: n }, (_, i) => exchange(vip, Buffer.from(`q${i}`))));
    got.forEach((g, i) => t.is(g.toString(), `re:q${i}`));
    await until(t, 'every connection to leave the table', async () => { const s = await stats(); return s.conns === n && s.active_conns === 0 && s.inact_conns === 0; });
  });

  test(`[${name}] a real server refusing connects: the next one serves, connect_errors counts`, async (t) => {
    const deadPort = await freeTcpPort('127.0.0.1');
    const dead = endpoint('127.0.0.1', deadPort);
    const rs = await listen(t, (c) => c.end('ok'));
    const { vip, stats } = await proxy(t, nativeRelay, [dead, rs]);
    for (let i = 0; i < 4; i++) t.is((await exchange(vip, Buffer.alloc(0))).toString(), 'ok');
    const s = await stats();
    t.true(s.dests.find((d) => d.key === endpointText(dead))!.connect_errors > 0);
    t.is(s.dests.find((d) => d.key === endpointText(rs))!.conns, 4);
  });

  test(`[${name}] an idle established connection is closed after the tcp timeout`, async (t) => {
    const rs = await listen(t, (c) => c.on('data', (d) => c.write(d)));
    const { dp, vip } = await proxy(t, nativeRelay, [rs]);
    await dp.setLimits({ maxConns: 0, lowWater: 0, tcpTimeoutMs: 400 });
    // A connection this process is too late to use (its loop stalled past the timeout between the
    // connect and the write, under load) idles out before the echo: counted, and tried again.
    let attempts = 0;
    for (;;) {
      attempts++;
      const c = net.connect(vip.port, vip.address);
      c.on('error', () => undefined);
      const closed = new Promise<'closed'>((r) => c.once('close', () => r('closed')));
      await new Promise<void>((r) => c.once('connect', () => r()));
      // t0 is taken before the last byte goes out: the relay's last activity is after it, so the
      // close comes at least the timeout (less the engine's timer granularity) after t0 even when
      // this process's loop is late (a t0 taken at the echo's arrival can be ~100 ms late under load).
      const t0 = Date.now();
      c.write('x');
      const first = await Promise.race([new Promise<'data'>((r) => c.once('data', () => r('data'))), closed]);
      if (first === 'closed') {
        t.log(`attempt ${attempts}: idled out before the echo (this process was late by ${Date.now() - t0} ms)`);
        t.true(attempts < 5, 'every attempt idled out before its echo');
        if (attempts >= 5) return;
        continue;
      }
      await closed;
      t.log(`closed after ${Date.now() - t0} ms idle`);
      t.true(Date.now() - t0 >= 300);
      break;
    }
    await until(t, 'idle_closed', async () => (await dp.stats()).extra.conn_idle_closed === attempts);
  });
}
