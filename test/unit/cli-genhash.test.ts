import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planGenhash } from '../../src/cli/genhash.js';
import { createChecker } from '../../src/lvs/check/index.js';
import { isKeepaliveError } from '../../src/util/errors.js';
import { ipv6Test } from '../lib/gated-test.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

/** The CLI, asynchronously (the test's own HTTP server must keep serving meanwhile). */
function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (err += d));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

/** md5sum(1) of a file: the independent reference. */
function md5sum(file: string): string {
  const r = spawnSync('md5sum', [file], { encoding: 'utf8' });
  return r.stdout.split(/\s+/)[0]!;
}

interface Served { server: Server; port: number; hosts: (string | undefined)[] }

/** Serves `file` at /page (chunked, in small pieces), 404 elsewhere; records Host headers. */
async function serve(file: string, host = '127.0.0.1'): Promise<Served> {
  const hosts: (string | undefined)[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    hosts.push(req.headers.host);
    if (req.url !== '/page') { res.writeHead(404); res.end('not here'); return; }
    res.writeHead(200, { 'Content-Type': 'text/html' }); // no Content-Length: chunked
    createReadStream(file, { highWaterMark: 7 }).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject); // e.g. no ::1: a failed test, not a crashed file
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port, hosts };
}

function page(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kt-genhash-'));
  const f = join(dir, 'index.html');
  writeFileSync(f, '<html><body>\n' + 'the page the director checks\n'.repeat(50) + '</body></html>\n');
  return f;
}

test('genhash prints the md5sum of the page body (chunked transfer), and HTTP_GET accepts that digest', async (t) => {
  const file = page();
  const s = await serve(file);
  t.teardown(() => s.server.close());
  const r = await cli(['genhash', '-s', '127.0.0.1', '-p', String(s.port), '-u', '/page']);
  t.is(r.code, 0, r.err);
  t.is(r.out, `${md5sum(file)}\n`);
  t.is(s.hosts[0], `127.0.0.1:${s.port}`); // the Host an HTTP_GET check without virtualhost sends
  const check = createChecker({
    type: 'HTTP_GET', connect_timeout: 5, retry: 1, delay_before_retry: 1, delay_loop: 60, warmup: 0,
    connect_ip: '127.0.0.1', connect_port: s.port, path: '/page', status_code: [200], digest: r.out.trim(),
  });
  const res = await check.run(new AbortController().signal);
  t.true(res.ok, res.detail);
});

ipv6Test('genhash --url with a whole URL and --server ADDR:PORT over IPv6, --virtualhost sets Host, -v reports on stderr', async (t) => {
  const file = page();
  const s = await serve(file, '::1');
  t.teardown(() => s.server.close());
  const r = await cli(['genhash', '--url', 'http://www.example.com/page', '--server', `[::1]:${s.port}`, '--virtualhost', 'www.example.com', '-v']);
  t.is(r.code, 0, r.err);
  t.is(r.out, `${md5sum(file)}\n`);
  t.is(s.hosts[0], 'www.example.com');
  t.regex(r.err, /HTTP\/1\.1 200/);
  t.regex(r.err, /body: \d+ bytes/);
});

test('genhash of a 404 still prints the digest and warns that HTTP_GET would refuse the status', async (t) => {
  const file = page();
  const s = await serve(file);
  t.teardown(() => s.server.close());
  const r = await cli(['genhash', '-s', '127.0.0.1', '-p', String(s.port), '-u', '/nope']);
  t.is(r.code, 0);
  t.regex(r.err, /status 404: HTTP_GET accepts 200-299/);
  const ref = join(mkdtempSync(join(tmpdir(), 'kt-genhash-')), 'x');
  writeFileSync(ref, 'not here');
  t.is(r.out.trim(), md5sum(ref));
});

test('genhash fails with exit 1 when nothing listens, or options are wrong', async (t) => {
  const s = await serve(page());
  const port = s.port;
  await new Promise<void>((r) => s.server.close(() => r()));
  const refused = await cli(['genhash', '-s', '127.0.0.1', '-p', String(port), '-u', '/page']);
  t.is(refused.code, 1);
  t.regex(refused.err, /ECONNREFUSED/);
  const noServer = await cli(['genhash', '-u', '/page']);
  t.is(noServer.code, 1);
  t.regex(noServer.err, /--server is required/);
});

test('planGenhash: keepalived flags, URLs, defaults and refusals', (t) => {
  t.like(planGenhash({ server: '10.0.0.21', port: '8080', url: '/x', useSsl: true }), { tls: true, host: '10.0.0.21', port: 8080, path: '/x', timeoutS: 5 });
  t.like(planGenhash({ url: 'https://10.0.0.21/a?b=1' }), { tls: true, host: '10.0.0.21', port: 443, path: '/a?b=1' });
  t.like(planGenhash({ url: 'http://[2001:db8::1]:81/' }), { tls: false, host: '2001:db8::1', port: 81, path: '/' });
  const named = planGenhash({ url: 'http://www.example.com/' });
  t.is(named.virtualhost, 'www.example.com');
  t.regex(named.notes[0]!, /virtualhost = "www\.example\.com"/);
  t.like(planGenhash({ server: '10.0.0.21:8443', url: '/', useSsl: true, virtualhost: 'v.example', useSni: true }), { port: 8443, sni: 'v.example' });
  for (const bad of [{}, { url: 'index.html', server: '10.0.0.1' }, { url: '/', server: 'host.example' }, { url: '/', server: '10.0.0.1', port: '0' }, { url: '/', server: '10.0.0.1', timeout: '-1' }, { url: '/', server: '10.0.0.1', useSni: true }]) {
    t.true(isKeepaliveError((() => { try { planGenhash(bad); } catch (e) { return e; } return undefined; })(), 'E_USAGE'), JSON.stringify(bad));
  }
});
