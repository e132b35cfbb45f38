/**
 * The native relay's zero-copy path (splice(2) through pooled pipes, native/relay_engine.c) with
 * large transfers: every byte arrives, in order, with the FIN behind it, in both directions; a
 * reset mid-transfer ends the connection cleanly; the byte counters count spliced bytes; pipes go
 * back to the pool. Each behaviour runs with splicing from the first full read on (threshold 0),
 * with the default threshold, and with splicing off (recv/send only): the three must agree, and
 * the stats say which path moved the bytes. Loopback only (127.0.10.x, one address per test).
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { ProxyDataplane } from '../../src/lvs/dataplane/proxy/index.js';
import type { ServiceSpec, ServiceStats } from '../../src/lvs/dataplane/contract.js';
import { addrMatch, endpoint, endpointText, serviceKey, type Endpoint } from '../../src/util/endpoint.js';
import { contractSpec } from '../lib/dataplane-contract.js';
import { freeTcpPort } from '../lib/http-client.js';
import { loopbackServer as listen } from '../lib/loopback-server.js';

const MiB = 1024 * 1024;
let nextVip = 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Proxy {
  dp: ProxyDataplane;
  vip: Endpoint;
  stats: () => Promise<ServiceStats>;
  extra: () => Promise<Record<string, number>>;
}

async function proxy(t: ExecutionContext, spliceAfterBytes: number | undefined, rs: Endpoint): Promise<Proxy> {
  const address = `127.0.10.${nextVip++}`;
  const vip = endpoint(address, await freeTcpPort(address));
  const base = contractSpec('PROXY', vip);
  const match = addrMatch('tcp', address, vip.port);
  const spec: ServiceSpec = { ...base, match, key: serviceKey(match), scheduler: 'rr', proxy: { proxyProtocol: '', connectTimeoutMs: 2000 } };
  const dp = new ProxyDataplane({ autoRestart: false, nativeRelay: true, ...(spliceAfterBytes !== undefined ? { spliceAfterBytes } : {}) });
  t.teardown(() => dp.close());
  await dp.configure([spec]);
  await dp.setPool(spec.key, { dests: [{ key: endpointText(rs), endpoint: rs, weight: 1 }], sorry: null });
  await dp.serve(spec.key);
  return {
    dp,
    vip,
    stats: async () => (await dp.stats()).services.find((s) => s.key === spec.key)!,
    extra: async () => (await dp.stats()).extra,
  };
}

async function until(t: ExecutionContext, what: string, ok: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) {
      t.fail(`timed out waiting for ${what}`);
      return;
    }
    await sleep(20);
  }
}

/** Writes `data` in pieces (a real stream, not one huge write), then half-closes. */
function sendAll(s: net.Socket, data: Buffer, piece = 256 * 1024): void {
  let off = 0;
  const more = (): void => {
    while (off < data.length) {
      const chunk = data.subarray(off, off + piece);
      off += chunk.length;
      if (!s.write(chunk)) {
        s.once('drain', more);
        return;
      }
    }
    s.end();
  };
  more();
}

/** Everything a socket receives until its peer's FIN ('end'); rejects on an error or a close without FIN. */
function receiveAll(s: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
    s.once('close', () => reject(new Error(`closed without FIN after ${chunks.reduce((n, c) => n + c.length, 0)} bytes`)));
  });
}

function connect(vip: Endpoint): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: vip.address, port: vip.port, allowHalfOpen: true });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

/** A real server that streams `down` and half-closes, and collects what each client sends until its FIN. */
async function streamingServer(t: ExecutionContext, down: Buffer): Promise<{ rs: Endpoint; serverGot: Promise<Buffer>[] }> {
  const serverGot: Promise<Buffer>[] = [];
  const rs = await listen(t, (c) => {
    serverGot.push(receiveAll(c));
    sendAll(c, down);
  });
  return { rs, serverGot };
}

const MODES: Array<[string, number | undefined]> = [
  ['splice from the first full read', 0],
  ['default threshold', undefined],
  ['splice off', -1],
];

for (const [mode, after] of MODES) {
  const splicing = after !== -1;

  test(`[${mode}] 6 MiB each way at once, FIN behind each: byte-exact both ways, counters exact, stats say whether splice moved them`, async (t) => {
    const up = randomBytes(6 * MiB);
    const down = randomBytes(6 * MiB);
    const { rs, serverGot } = await streamingServer(t, down);
    const p = await proxy(t, after, rs);
    const c = await connect(p.vip);
    const clientGot = receiveAll(c);
    sendAll(c, up);
    const [gotDown, gotUp] = await Promise.all([clientGot, (async () => { await until(t, 'the real server connection', async () => serverGot.length === 1); return serverGot[0]!; })()]);
    t.is(gotDown.length, down.length);
    t.true(gotDown.equals(down), 'download byte-exact');
    t.is(gotUp.length, up.length);
    t.true(gotUp.equals(up), 'upload byte-exact');
    c.destroy();
    await until(t, 'the connection to leave the table', async () => { const s = await p.stats(); return s.conns === 1 && s.active_conns === 0 && s.inact_conns === 0; });
    const s = await p.stats();
    t.is(s.in_bytes, up.length);
    t.is(s.out_bytes, down.length);
    const x = await p.extra();
    t.log(`spliced ${x.relay_spliced_bytes} of ${up.length + down.length} bytes, pipes made ${x.relay_pipes_made}, in use ${x.relay_pipes_in_use}`);
    if (splicing) {
      // Past the threshold (256 KiB by default) both directions splice: most bytes went that way.
      t.true(x.relay_spliced_bytes! > (up.length + down.length) / 2, `spliced ${x.relay_spliced_bytes}`);
      // A pipe per direction at most (taken from the pool for each stretch of bytes, given back empty).
      t.true(x.relay_pipes_made! >= 1 && x.relay_pipes_made! <= 2);
      t.is(x.relay_pipes_in_use, 0, 'every pipe back in the pool');
    } else {
      t.is(x.relay_spliced_bytes, 0);
      t.is(x.relay_pipes_made, 0);
    }
    t.is(x.relay_splice_fallbacks, 0);
  });

  test(`[${mode}] upload then FIN, the answer after it (client half-closes first): every byte, then the FIN, each way`, async (t) => {
    const up = randomBytes(5 * MiB);
    const down = randomBytes(3 * MiB + 12345);
    let serverGot: Buffer | undefined;
    const rs = await listen(t, (c) => {
      void receiveAll(c).then((b) => {
        serverGot = b;
        sendAll(c, down); // only after the client's FIN came through, behind all its bytes
      });
    });
    const p = await proxy(t, after, rs);
    const c = await connect(p.vip);
    const got = receiveAll(c);
    sendAll(c, up);
    const gotDown = await got;
    t.truthy(serverGot);
    t.true(serverGot!.equals(up), 'upload byte-exact before its FIN');
    t.true(gotDown.equals(down), 'answer byte-exact before its FIN');
    c.destroy();
    await until(t, 'the counters', async () => { const s = await p.stats(); return s.active_conns === 0 && s.inact_conns === 0 && s.in_bytes === up.length && s.out_bytes === down.length; });
  });

  test(`[${mode}] the real server streams and half-closes first, the client uploads after it got the FIN: both arrive whole`, async (t) => {
    const down = randomBytes(5 * MiB);
    const up = randomBytes(4 * MiB);
    const { rs, serverGot } = await streamingServer(t, down);
    const p = await proxy(t, after, rs);
    const c = await connect(p.vip);
    const gotDown = await receiveAll(c);
    t.true(gotDown.equals(down), 'download byte-exact before its FIN');
    // Half-closed by the real server: the client's direction is still open.
    await until(t, 'the half-closed connection to count as inactive', async () => (await p.stats()).inact_conns === 1);
    sendAll(c, up);
    await until(t, 'the real server connection', async () => serverGot.length === 1);
    t.true((await serverGot[0]!).equals(up), 'upload after the FIN byte-exact');
    await until(t, 'the connection to leave the table', async () => { const s = await p.stats(); return s.active_conns === 0 && s.inact_conns === 0 && s.in_bytes === up.length && s.out_bytes === down.length; });
  });

  test(`[${mode}] a slow reader: bytes wait in the pipe (or buffer) while the client does not read, none are lost`, async (t) => {
    // 16 MiB against a client that stops reading for a while, several times: the destination's
    // socket fills, what was spliced in stays in the pipe until EPOLLOUT; dropping it would
    // shorten or shift the stream.
    const down = randomBytes(16 * MiB);
    const rs = await listen(t, (c) => { c.on('data', () => undefined); sendAll(c, down); });
    const p = await proxy(t, after, rs);
    const c = await connect(p.vip);
    const chunks: Buffer[] = [];
    let n = 0;
    let pauses = 0;
    const done = new Promise<void>((resolve, reject) => {
      c.on('data', (d) => {
        chunks.push(d);
        n += d.length;
        if (n > (pauses + 1) * 3 * MiB && pauses < 4) {
          pauses++;
          c.pause();
          setTimeout(() => c.resume(), 150);
        }
      });
      c.once('end', () => resolve());
      c.once('error', reject);
    });
    c.end('GET');
    await done;
    const got = Buffer.concat(chunks);
    t.is(got.length, down.length);
    t.true(got.equals(down));
    t.true(pauses >= 3);
    await until(t, 'the counters', async () => { const s = await p.stats(); return s.out_bytes === down.length && s.in_bytes === 3 && s.active_conns === 0 && s.inact_conns === 0; });
    if (splicing) t.true((await p.extra()).relay_spliced_bytes! > down.length / 2);
  });

  test(`[${mode}] the real server resets mid-transfer: the client's connection ends too, the table empties, pipes are not leaked`, async (t) => {
    const big = randomBytes(64 * MiB);
    const rs = await listen(t, (c) => {
      // Once the request is here (the proxy has read it: nothing unread on its client side), 64 MiB
      // queued and the reset 20 ms later: bytes are still in the sockets and the pipe.
      c.once('data', () => {
        c.write(big);
        setTimeout(() => c.resetAndDestroy(), 20);
      });
    });
    const p = await proxy(t, after, rs);
    let total = 0;
    for (let i = 0; i < 3; i++) {
      const c = await connect(p.vip);
      let got = 0;
      c.on('data', (d) => { got += d.length; });
      const ended = new Promise<string>((r) => {
        c.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'));
        c.once('end', () => r('end')); // allowHalfOpen: no close follows on its own
        c.once('close', () => r('close'));
      });
      c.write('GET');
      const how = await ended;
      t.log(`client ${i}: ${how} after ${got} bytes`);
      t.true(got < 64 * MiB, 'the reset came mid-transfer');
      total += got;
      c.destroy();
    }
    await until(t, 'every connection to leave the table', async () => { const s = await p.stats(); return s.conns === 3 && s.active_conns === 0 && s.inact_conns === 0; });
    const s = await p.stats();
    t.is(s.in_bytes, 9);
    // What was written to the clients (spliced or sent) before the reset is what they got.
    t.is(s.out_bytes, total);
    const x = await p.extra();
    // A pipe that still held bytes is closed, not pooled; none stays in use for a gone connection.
    t.is(x.relay_pipes_in_use, 0);
    if (!splicing) t.is(x.relay_pipes_made, 0);
  });

  test(`[${mode}] the client resets mid-download: the real server's side is closed, the table empties`, async (t) => {
    const serverClosed: Promise<void>[] = [];
    const rs = await listen(t, (c) => {
      serverClosed.push(new Promise((r) => c.once('close', () => r())));
      c.on('data', () => undefined);
      sendAll(c, randomBytes(32 * MiB)); // more than the sockets and pipes hold: still streaming at the reset
    });
    const p = await proxy(t, after, rs);
    const c = await connect(p.vip);
    c.write('GET');
    let got = 0;
    await new Promise<void>((r) => c.on('data', (d) => { got += d.length; if (got > 2 * MiB) r(); }));
    c.resetAndDestroy();
    await until(t, 'the real server connection', async () => serverClosed.length === 1);
    await serverClosed[0];
    await until(t, 'the connection to leave the table', async () => { const s = await p.stats(); return s.active_conns === 0 && s.inact_conns === 0; });
    t.pass();
  });

  test(`[${mode}] 24 concurrent bulk connections, 2 MiB each way: byte-exact per connection, totals exact, pipes reused`, async (t) => {
    const n = 24;
    const ups = Array.from({ length: n }, () => randomBytes(2 * MiB));
    const downs = Array.from({ length: n }, () => randomBytes(2 * MiB));
    const serverGot = new Map<number, Promise<Buffer>>();
    const rs = await listen(t, (c) => {
      // The client says which one it is in its first 4 bytes.
      const all = receiveAll(c);
      const idx = new Promise<number>((r) => {
        const chunks: Buffer[] = [];
        const onData = (d: Buffer): void => {
          chunks.push(d);
          const b = Buffer.concat(chunks);
          if (b.length >= 4) {
            c.off('data', onData);
            r(b.readUInt32LE(0));
          }
        };
        c.on('data', onData);
      });
      void idx.then((i) => {
        serverGot.set(i, all);
        sendAll(c, downs[i]!);
      });
    });
    const p = await proxy(t, after, rs);
    const results = await Promise.all(ups.map(async (up, i) => {
      const c = await connect(p.vip);
      const got = receiveAll(c);
      const head = Buffer.alloc(4);
      head.writeUInt32LE(i, 0);
      sendAll(c, Buffer.concat([head, up]));
      const d = await got;
      c.destroy();
      return d;
    }));
    results.forEach((d, i) => t.true(d.equals(downs[i]!), `download ${i} byte-exact`));
    await until(t, 'every upload to arrive', async () => serverGot.size === n);
    for (let i = 0; i < n; i++) {
      const b = await serverGot.get(i)!;
      t.true(b.subarray(4).equals(ups[i]!), `upload ${i} byte-exact`);
    }
    await until(t, 'every connection to leave the table', async () => { const s = await p.stats(); return s.conns === n && s.active_conns === 0 && s.inact_conns === 0; });
    const s = await p.stats();
    t.is(s.in_bytes, n * (4 + 2 * MiB));
    t.is(s.out_bytes, n * 2 * MiB);
    const x = await p.extra();
    t.log(`spliced ${x.relay_spliced_bytes}, pipes made ${x.relay_pipes_made}, in use ${x.relay_pipes_in_use}`);
    if (splicing) {
      t.true(x.relay_spliced_bytes! > 0);
      t.true(x.relay_pipes_made! <= 2 * n);
      t.is(x.relay_pipes_in_use, 0, 'every pipe back in the pool');
    } else {
      t.is(x.relay_pipes_made, 0);
    }
  });
}

test('short request/response connections never take a pipe (default threshold)', async (t) => {
  const rs = await listen(t, (c) => c.once('data', (d) => c.end(Buffer.alloc(20_000, d[0]!))));
  const p = await proxy(t, undefined, rs);
  for (let i = 0; i < 20; i++) {
    const c = await connect(p.vip);
    const got = receiveAll(c);
    c.end('x');
    t.is((await got).length, 20_000);
  }
  const x = await p.extra();
  t.is(x.relay_pipes_made, 0);
  t.is(x.relay_spliced_bytes, 0);
});
