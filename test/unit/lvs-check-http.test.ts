import test from 'ava';
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { HttpGetCheck, SslGetCheck } from '../../src/config/types.js';
import { createChecker } from '../../src/lvs/check/index.js';
import type { CheckResult } from '../../src/lvs/check/types.js';
import { makeSelfSignedCert, type TlsCert } from '../lib/tls-cert.js';
import { ipv6Test } from '../lib/gated-test.js';

const md5 = (s: string | Buffer): string => createHash('md5').update(s).digest('hex');

function httpCheck(address: string, port: number, extra: Partial<HttpGetCheck> = {}): HttpGetCheck {
  return {
    type: 'HTTP_GET', connect_timeout: 5, retry: 1, delay_before_retry: 1, delay_loop: 60, warmup: 0,
    connect_ip: address, connect_port: port, path: '/', status_code: [200], ...extra,
  };
}

function sslCheck(address: string, port: number, extra: Partial<SslGetCheck> = {}): SslGetCheck {
  return {
    type: 'SSL_GET', connect_timeout: 5, retry: 1, delay_before_retry: 1, delay_loop: 60, warmup: 0,
    connect_ip: address, connect_port: port, path: '/', status_code: [200], verify: false, ...extra,
  };
}

interface Seen { path: string; host: string | undefined; remote: string | undefined; servername?: string | false | null }

/** Routes: /status/NNN answers NNN "status NNN"; /big answers 2 MiB; /chunked answers in pieces; else 200 "hello world". */
function handler(seen: Seen[]) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    seen.push({
      path: req.url ?? '', host: req.headers.host, remote: req.socket.remoteAddress,
      servername: (req.socket as TLSSocket).servername,
    });
    const m = /^\/status\/(\d{3})$/.exec(req.url ?? '');
    if (m) { res.writeHead(Number(m[1])); res.end(`status ${m[1]}`); return; }
    if (req.url === '/big') { res.writeHead(200); res.end(Buffer.alloc(2 * 1024 * 1024, 'a')); return; }
    if (req.url === '/chunked') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('part one, ');
      setTimeout(() => res.end('part two'), 10);
      return;
    }
    if (req.url === '/headers-only') { res.writeHead(200); res.write('start of a body that never ends'); return; }
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('hello world');
  };
}

async function startHttp(host: string): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createHttpServer(handler(seen));
  await listenOn(server, host);
  return { server, port: (server.address() as AddressInfo).port, seen };
}

/** listen() on an ephemeral port; a bind error fails the test instead of crashing the file. */
function listenOn(server: Server, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function stop(server: { closeAllConnections?: () => void; close(cb?: () => void): unknown }): void {
  server.closeAllConnections?.();
  server.close();
}

const run = (cfg: HttpGetCheck | SslGetCheck, opts = {}): Promise<CheckResult> => createChecker(cfg, undefined, opts).run(new AbortController().signal);

test('HTTP_GET: 200 on / is ok; the request carries the path and Host = address:port', async (t) => {
  const { server, port, seen } = await startHttp('127.0.0.1');
  t.teardown(() => stop(server));
  const r = await run(httpCheck('127.0.0.1', port, { path: '/health?x=1' }));
  t.true(r.ok, r.detail);
  t.is(seen.length, 1);
  t.is(seen[0]!.path, '/health?x=1');
  t.is(seen[0]!.host, `127.0.0.1:${port}`);
});

test('HTTP_GET: virtualhost is the Host header, without a port', async (t) => {
  const { server, port, seen } = await startHttp('127.0.0.1');
  t.teardown(() => stop(server));
  const r = await run(httpCheck('127.0.0.1', port, { virtualhost: 'www.example.com' }));
  t.true(r.ok, r.detail);
  t.is(seen[0]!.host, 'www.example.com');
});

ipv6Test('HTTP_GET over IPv6: Host is [addr]:port', async (t) => {
  const { server, port, seen } = await startHttp('::1');
  t.teardown(() => stop(server));
  const r = await run(httpCheck('::1', port));
  t.true(r.ok, r.detail);
  t.is(seen[0]!.host, `[::1]:${port}`);
});

test('HTTP_GET: a status not in status_code fails; one in the list passes', async (t) => {
  const { server, port } = await startHttp('127.0.0.1');
  t.teardown(() => stop(server));
  const bad = await run(httpCheck('127.0.0.1', port, { path: '/status/503' }));
  t.false(bad.ok);
  t.regex(bad.detail, /status 503 not in \[200\]/);
  const listed = await run(httpCheck('127.0.0.1', port, { path: '/status/204', status_code: [200, 204] }));
  t.true(listed.ok, listed.detail);
  const redirect = await run(httpCheck('127.0.0.1', port, { path: '/status/302', status_code: [200, 204] }));
  t.false(redirect.ok);
});

test('HTTP_GET: digest is the MD5 of the body (match, uppercase match, mismatch)', async (t) => {
  const { server, port } = await startHttp('127.0.0.1');
  t.teardown(() => stop(server));
  t.true((await run(httpCheck('127.0.0.1', port, { digest: md5('hello world') }))).ok);
  t.true((await run(httpCheck('127.0.0.1', port, { digest: md5('hello world').toUpperCase() }))).ok);
  const bad = await run(httpCheck('127.0.0.1', port, { digest: md5('hello world!') }));
  t.false(bad.ok);
  t.regex(bad.detail, new RegExp(`digest ${md5('hello world')} != ${md5('hello world!')}`));
});

test('HTTP_GET: digest of a chunked body covers the de-chunked bytes', async (t) => {
  const { server, port } = await startHttp('127.0.0.1');
  t.teardown(() => stop(server));
  const r = await run(httpCheck('127.0.0.1', port, { path: '/chunked', digest: md5('part one, part two') }));
  t.true(r.ok, r.detail);
});

test('HTTP_GET: digest with a non-2xx status listed in status_code is checked on that body', async (t) => {
  const { server, port } = await startHttp('127.0.0.1');
  t.teardown(() => stop(server));
  t.true((await run(httpCheck('127.0.0.1', port, { path: '/status/503', status_code: [503], digest: md5('status 503') }))).ok);
  t.false((await run(httpCheck('127.0.0.1', port, { path: '/status/503', status_code: [503], digest: md5('other') }))).ok);
});

test('HTTP_GET: regex must match the body', async (t) => {
  const { server, port } = await startHttp('127.0.0.1');
  t.teardown(() => stop(server));
  t.true((await run(httpCheck('127.0.0.1', port, { regex: 'wor.d$' }))).ok);
  const bad = await run(httpCheck('127.0.0.1', port, { regex: '^world' }));
  t.false(bad.ok);
  t.regex(bad.detail, /does not match/);
  // digest and regex together: both must hold.
  t.false((await run(httpCheck('127.0.0.1', port, { regex: 'hello', digest: md5('nope') }))).ok);
  t.true((await run(httpCheck('127.0.0.1', port, { regex: 'hello', digest: md5('hello world') }))).ok);
});

test('HTTP_GET: a body larger than maxBodyBytes fails a digest; regex sees the first bytes', async (t) => {
  const { server, port } = await startHttp('127.0.0.1');
  t.teardown(() => stop(server));
  const big = Buffer.alloc(2 * 1024 * 1024, 'a');
  const digestDefault = await run(httpCheck('127.0.0.1', port, { path: '/big', digest: md5(big) }));
  t.false(digestDefault.ok);
  t.regex(digestDefault.detail, /body larger than 1048576 bytes/);
  const fits = await run(httpCheck('127.0.0.1', port, { path: '/big', digest: md5(big) }), { maxBodyBytes: 3 * 1024 * 1024 });
  t.true(fits.ok, fits.detail);
  t.true((await run(httpCheck('127.0.0.1', port, { path: '/big', regex: '^a{100}' }), { maxBodyBytes: 4096 })).ok);
});

test('HTTP_GET: a closed port fails with the refusal', async (t) => {
  const { server, port } = await startHttp('127.0.0.1');
  await new Promise<void>((r) => server.close(() => r()));
  const r = await run(httpCheck('127.0.0.1', port, { connect_timeout: 30 }));
  t.false(r.ok);
  t.regex(r.detail, /ECONNREFUSED/);
});

test('HTTP_GET: a server that accepts and never answers fails after connect_timeout', async (t) => {
  const sockets: Socket[] = [];
  let ended = 0;
  const server = createNetServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.on('end', () => { ended++; });
    s.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close(); });
  const port = (server.address() as AddressInfo).port;
  const r = await run(httpCheck('127.0.0.1', port, { connect_timeout: 0.3 }));
  t.false(r.ok);
  t.is(r.detail, 'timeout after 300 ms');
  // The checker closed its connection (the FIN arrives within a loop turn or two; a loaded machine gets 2 s).
  for (const end = Date.now() + 2_000; ended === 0 && Date.now() < end;) await new Promise((r2) => setTimeout(r2, 10));
  t.is(sockets.length, 1);
  t.is(ended, 1);
});

test('HTTP_GET: headers then a body that never ends: the whole exchange is bounded by connect_timeout', async (t) => {
  const { server, port } = await startHttp('127.0.0.1');
  t.teardown(() => stop(server));
  // Status alone does not need the body: ok as soon as the headers are in (a timeout long enough
  // for a loaded machine: the body never ends, so only the headers can make this pass).
  const headersOnly = await run(httpCheck('127.0.0.1', port, { path: '/headers-only', connect_timeout: 10 }));
  t.true(headersOnly.ok, headersOnly.detail);
  // A regex needs the whole body, which never completes.
  const r = await run(httpCheck('127.0.0.1', port, { path: '/headers-only', regex: 'never', connect_timeout: 0.3 }));
  t.false(r.ok);
  t.is(r.detail, 'timeout after 300 ms');
});

test('HTTP_GET: bind_to sets the source address', async (t) => {
  const { server, port, seen } = await startHttp('127.0.0.1');
  t.teardown(() => stop(server));
  const r = await run(httpCheck('127.0.0.1', port, { bind_to: '127.0.0.1' }));
  t.true(r.ok, r.detail);
  t.is(seen[0]!.remote, '127.0.0.1');
});

test('HTTP_GET: abort during the exchange gives "aborted"', async (t) => {
  const server = createNetServer((s) => { s.on('error', () => {}); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const ac = new AbortController();
  const p = createChecker(httpCheck('127.0.0.1', (server.address() as AddressInfo).port, { connect_timeout: 60 })).run(ac.signal);
  setTimeout(() => ac.abort(), 50);
  t.deepEqual(await p, { ok: false, detail: 'aborted' });
});

// ---------------------------------------------------------------------------------------------
// SSL_GET

let cert: TlsCert;
test.before(async () => { cert = await makeSelfSignedCert('rs.test'); });
test.after.always(async () => { await cert?.cleanup(); });

async function startHttps(host: string): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createHttpsServer({ key: cert.key, cert: cert.cert }, handler(seen));
  await listenOn(server, host);
  return { server, port: (server.address() as AddressInfo).port, seen };
}

test('SSL_GET: TLS with SNI = sni, certificate not verified by default', async (t) => {
  const { server, port, seen } = await startHttps('127.0.0.1');
  t.teardown(() => stop(server));
  const checker = createChecker(sslCheck('127.0.0.1', port, { sni: 'rs.test', virtualhost: 'www.example.com', digest: md5('hello world') }));
  t.is(checker.type, 'SSL_GET');
  const r = await checker.run(new AbortController().signal);
  t.true(r.ok, r.detail);
  t.regex(r.detail, /^https:/);
  t.is(seen[0]!.servername, 'rs.test');
  t.is(seen[0]!.host, 'www.example.com');
});

test('SSL_GET: no sni = no SNI, even with a virtualhost', async (t) => {
  const { server, port, seen } = await startHttps('127.0.0.1');
  t.teardown(() => stop(server));
  const r = await run(sslCheck('127.0.0.1', port, { virtualhost: 'www.example.com' }));
  t.true(r.ok, r.detail);
  t.false(Boolean(seen[0]!.servername));
});

test('SSL_GET: verify = true rejects the self-signed certificate, accepts it with the CA given', async (t) => {
  const { server, port, seen } = await startHttps('127.0.0.1');
  t.teardown(() => stop(server));
  const rejected = await run(sslCheck('127.0.0.1', port, { sni: 'rs.test', verify: true }));
  t.false(rejected.ok);
  t.regex(rejected.detail, /SELF_SIGNED|self[- ]signed/i);
  t.is(seen.length, 0);
  const trusted = await run(sslCheck('127.0.0.1', port, { sni: 'rs.test', verify: true }), { tlsCa: cert.cert });
  t.true(trusted.ok, trusted.detail);
  // Trusted CA but the name checked (sni) is not in the certificate.
  const wrongName = await run(sslCheck('127.0.0.1', port, { sni: 'other.test', verify: true }), { tlsCa: cert.cert });
  t.false(wrongName.ok);
  t.regex(wrongName.detail, /ERR_TLS_CERT_ALTNAME_INVALID|altname/i);
});

ipv6Test('SSL_GET: status and regex apply as for HTTP_GET, over IPv6 too', async (t) => {
  const { server, port } = await startHttps('::1');
  t.teardown(() => stop(server));
  t.false((await run(sslCheck('::1', port, { path: '/status/500' }))).ok);
  t.true((await run(sslCheck('::1', port, { regex: '^hello' }))).ok);
  t.false((await run(sslCheck('::1', port, { regex: '^bye' }))).ok);
});

test('SSL_GET against a plain HTTP server fails; HTTP_GET against TLS fails', async (t) => {
  const plain = await startHttp('127.0.0.1');
  const tls = await startHttps('127.0.0.1');
  t.teardown(() => { stop(plain.server); stop(tls.server); });
  const a = await run(sslCheck('127.0.0.1', plain.port, { connect_timeout: 2 }));
  t.false(a.ok);
  const b = await run(httpCheck('127.0.0.1', tls.port, { connect_timeout: 2 }));
  t.false(b.ok);
  t.notRegex(b.detail, /status 200/);
});

test('SSL_GET: a TLS handshake that never completes fails after connect_timeout', async (t) => {
  const sockets: Socket[] = [];
  const server = createNetServer((s) => { sockets.push(s); s.on('error', () => {}); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close(); });
  const r = await run(sslCheck('127.0.0.1', (server.address() as AddressInfo).port, { connect_timeout: 0.3 }));
  t.false(r.ok);
  t.is(r.detail, 'timeout after 300 ms');
});
