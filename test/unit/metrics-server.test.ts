import test, { type ExecutionContext } from 'ava';
import { request, type IncomingHttpHeaders } from 'node:http';
import { createConnection } from 'node:net';
import type { StatusReport } from '../../src/daemon/status.js';
import { createMetricsRegistry, startMetricsServer, type MetricsServer, type MetricsSnapshot } from '../../src/metrics/index.js';
import { isKeepaliveError } from '../../src/util/errors.js';

function status(state: string): StatusReport {
  return {
    router_id: 'lb1',
    pid: 1,
    version: '0.1.0',
    config_file: '/etc/keepalive-ts/keepalive.toml',
    uptime_s: 1,
    vrrp: [
      {
        name: 'VI_1', interface: 'eth0', vrid: 51, version: 3, family: 4, state, priority: 100, effective_priority: 100, master: null,
        vips: ['10.0.0.50/24'], owned_vips: [], transitions: 1, adverts_sent: 5, adverts_received: 0, drops: {}, vips_restored: 0,
      },
    ],
    vrrp_socket_drops: {},
    virtual_servers: [],
  };
}

interface Served {
  server: MetricsServer;
  port: number;
  snap: { current: MetricsSnapshot | Error };
  errors: Error[];
}

async function serve(t: ExecutionContext, opts: { requestTimeoutMs?: number } = {}): Promise<Served> {
  const snap: { current: MetricsSnapshot | Error } = { current: { status: status('MASTER') } };
  const errors: Error[] = [];
  const registry = createMetricsRegistry(() => {
    if (snap.current instanceof Error) throw snap.current;
    return snap.current;
  });
  const server = await startMetricsServer({ listen: { host: '127.0.0.1', port: 0 }, registry, onError: (e) => errors.push(e), ...opts });
  t.teardown(() => server.close());
  t.is(server.address.host, '127.0.0.1');
  t.true(server.address.port > 0);
  return { server, port: server.address.port, snap, errors };
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function http(port: number, method: string, path: string, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Raw TCP exchange: sends `data`, collects what comes back until the server closes (or timeout). */
function raw(port: number, data: string, timeoutMs = 10_000): Promise<{ text: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const s = createConnection({ host: '127.0.0.1', port });
    let text = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`server did not close within ${timeoutMs} ms; got: ${text}`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(data));
    s.on('data', (d: string) => (text += d));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closedAfterMs: Date.now() - started });
    });
  });
}

test('GET /metrics answers the exposition with the registry content type', async (t) => {
  const { port, snap } = await serve(t);
  const r = await http(port, 'GET', '/metrics');
  t.is(r.status, 200);
  t.is(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  t.is(Number(r.headers['content-length']), Buffer.byteLength(r.body));
  t.regex(r.body, /^keepalive_ts_vrrp_state\{vrrp_instance="VI_1",interface="eth0",vrid="51",state="MASTER"\} 1$/m);
  t.regex(r.body, /^keepalive_ts_vrrp_adverts_sent_total\{vrrp_instance="VI_1",interface="eth0",vrid="51"\} 5$/m);
  t.regex(r.body, /^keepalive_ts_process_cpu_seconds_total /m);

  // Scrape-time values: the next scrape sees the new state.
  snap.current = { status: status('BACKUP') };
  const r2 = await http(port, 'GET', '/metrics?debug=1');
  t.is(r2.status, 200);
  t.regex(r2.body, /^keepalive_ts_vrrp_state\{vrrp_instance="VI_1",interface="eth0",vrid="51",state="BACKUP"\} 1$/m);
  t.regex(r2.body, /^keepalive_ts_vrrp_state\{vrrp_instance="VI_1",interface="eth0",vrid="51",state="MASTER"\} 0$/m);
});

test('HEAD /metrics: headers, no body', async (t) => {
  const { port } = await serve(t);
  const r = await http(port, 'HEAD', '/metrics');
  t.is(r.status, 200);
  t.is(r.body, '');
  t.true(Number(r.headers['content-length']) > 0);
});

test('with a status source: GET / is the self-contained status page, /status.json the report', async (t) => {
  let calls = 0;
  const registry = createMetricsRegistry(() => ({ status: status('MASTER') }), { defaultMetrics: false });
  const server = await startMetricsServer({ listen: { host: '127.0.0.1', port: 0 }, registry, status: async () => { calls++; return status('BACKUP'); }, pageRefreshS: 7 });
  t.teardown(() => server.close());
  const port = server.address.port;
  const page = await http(port, 'GET', '/?refresh=1');
  t.is(page.status, 200);
  t.is(page.headers['content-type'], 'text/html; charset=utf-8');
  t.regex(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'unsafe-inline'.*connect-src 'self'/);
  t.regex(page.body, /^<!doctype html>/);
  t.regex(page.body, /var DEFAULT_REFRESH_S = 7;/);
  t.regex(page.body, /fetch\('status\.json'/);
  // No external assets: nothing loaded from elsewhere.
  t.notRegex(page.body, /<(script|link|img)[^>]+(src|href)=/i);
  t.notRegex(page.body, /https?:\/\//);
  t.is(calls, 0);
  const json = await http(port, 'GET', '/status.json');
  t.is(json.status, 200);
  t.is(json.headers['content-type'], 'application/json; charset=utf-8');
  t.is(json.headers['cache-control'], 'no-store');
  t.deepEqual(JSON.parse(json.body), status('BACKUP'));
  t.is(calls, 1);
  const head = await http(port, 'HEAD', '/status.json');
  t.is(head.status, 200);
  t.is(head.body, '');
  t.is((await http(port, 'POST', '/', 'x')).status, 405);
  t.is((await http(port, 'GET', '/index.html')).status, 404);
  t.is((await http(port, 'GET', '/metrics')).status, 200);
});

test('a failing status source answers 500 on /status.json and reports the error', async (t) => {
  const errors: Error[] = [];
  const registry = createMetricsRegistry(() => ({ status: status('MASTER') }), { defaultMetrics: false });
  const server = await startMetricsServer({ listen: { host: '127.0.0.1', port: 0 }, registry, status: () => { throw new Error('daemon busy'); }, onError: (e) => errors.push(e) });
  t.teardown(() => server.close());
  const r = await http(server.address.port, 'GET', '/status.json');
  t.is(r.status, 500);
  t.regex(r.body, /building the status report failed: daemon busy/);
  t.is(errors[0]?.message, 'daemon busy');
});

test('other paths are 404, other methods 405 with Allow', async (t) => {
  const { port } = await serve(t);
  for (const path of ['/', '/metricsx', '/metrics/', '/favicon.ico', '/../metrics']) {
    t.is((await http(port, 'GET', path)).status, 404, path);
  }
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    const r = await http(port, method, '/metrics', method === 'POST' ? 'x=1' : undefined);
    t.is(r.status, 405, method);
    t.is(r.headers.allow, 'GET, HEAD');
  }
});

test('a failing source answers 500 and reports the error; the next scrape works', async (t) => {
  const { port, snap, errors } = await serve(t);
  snap.current = new Error('status unavailable');
  const r = await http(port, 'GET', '/metrics');
  t.is(r.status, 500);
  t.regex(r.body, /status unavailable/);
  t.is(errors.length, 1);
  t.is(errors[0]?.message, 'status unavailable');
  snap.current = { status: status('FAULT') };
  const ok = await http(port, 'GET', '/metrics');
  t.is(ok.status, 200);
  t.regex(ok.body, /state="FAULT"\} 1$/m);
});

test('request bodies are not waited for: a POST announcing a large body gets 405 at once and the connection closes', async (t) => {
  const { port } = await serve(t);
  const r = await raw(port, 'POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\npartial');
  t.regex(r.text, /^HTTP\/1\.1 405 /);
  t.regex(r.text, /connection: close/i);
  t.true(r.closedAfterMs < 3000, `closed after ${r.closedAfterMs} ms`);
});

test('a client that never finishes its headers is cut off by the header timeout', async (t) => {
  const { port } = await serve(t, { requestTimeoutMs: 300 });
  const r = await raw(port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n', 10_000);
  t.regex(r.text, /^(HTTP\/1\.1 408 |$)/);
  t.true(r.closedAfterMs < 5000, `closed after ${r.closedAfterMs} ms`);
});

test('oversized headers are refused with 431, garbage with 400', async (t) => {
  const { port } = await serve(t);
  const big = await raw(port, `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  t.regex(big.text, /^HTTP\/1\.1 431 /);
  const garbage = await raw(port, 'NOT HTTP AT ALL\r\n\r\n');
  t.regex(garbage.text, /^HTTP\/1\.1 400 /);
});

test('close() is idempotent and drops keep-alive connections', async (t) => {
  const { server, port } = await serve(t);
  // A keep-alive connection left open by the client must not hold close() up.
  const open = createConnection({ host: '127.0.0.1', port });
  open.on('error', () => undefined);
  await new Promise<void>((resolve) => {
    open.once('data', () => resolve());
    open.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  const closed = new Promise<void>((resolve) => open.once('close', () => resolve()));
  await Promise.all([server.close(), server.close()]);
  await server.close();
  await closed;
  await t.throwsAsync(http(port, 'GET', '/metrics'), { code: 'ECONNREFUSED' });
});

test('an address in use is reported as E_SOCKET', async (t) => {
  const { port } = await serve(t);
  const registry = createMetricsRegistry(() => ({ status: status('MASTER') }), { defaultMetrics: false });
  const err = await t.throwsAsync(startMetricsServer({ listen: { host: '127.0.0.1', port }, registry }));
  t.true(isKeepaliveError(err, 'E_SOCKET'), String(err));
  t.regex(err?.message ?? '', new RegExp(`127\\.0\\.0\\.1:${port}`));
});

test('40 slow-trickling connections from one host do not starve scrapes from another (per-source limit, header timeout)', async (t) => {
  const { port } = await serve(t);
  // The attacker: 40 connections from 127.0.0.2, one header byte every 200 ms, reopened when cut off.
  let stop = false;
  let attackerConns = 0;
  const line = 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200);
  const trickle = () => {
    if (stop) return;
    attackerConns++;
    const s = createConnection({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
    let i = 0;
    const timer = setInterval(() => { if (i < line.length && !s.destroyed) s.write(line[i++]!); }, 200);
    s.on('error', () => undefined);
    s.on('close', () => { clearInterval(timer); setTimeout(trickle, 20); });
  };
  for (let i = 0; i < 40; i++) trickle();
  t.teardown(() => { stop = true; });
  await new Promise((r) => setTimeout(r, 1_000));
  // The scraper: 30 scrapes from 127.0.0.3.
  let ok = 0;
  const failures: string[] = [];
  for (let i = 0; i < 30; i++) {
    const r = await new Promise<string>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/metrics', agent: false, localAddress: '127.0.0.3', timeout: 2_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      req.end();
    });
    if (r === '200') ok++;
    else failures.push(r);
    await new Promise((res) => setTimeout(res, 100));
  }
  stop = true;
  t.log(`scrapes ok ${ok}/30; attacker opened ${attackerConns} connections; failures ${JSON.stringify(failures)}`);
  t.is(ok, 30);
});
