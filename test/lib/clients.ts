// Traffic generators that run inside a lab host (a Node process in the host's namespace).
import type { LabHost } from './lab-core.js';

export interface BatchResult {
  /** Response body -> count. */
  bodies: Record<string, number>;
  /** Failed requests by error text. */
  errors: Record<string, number>;
}

/**
 * `count` sequential HTTP GETs from `host` to address:port, each on a new connection, optionally
 * from a given source address (to look like distinct clients) and with a pause between requests.
 */
export async function httpBatch(host: LabHost, address: string, port: number, count: number, opts: { localAddress?: string; pauseMs?: number; timeoutMs?: number } = {}): Promise<BatchResult> {
  const script = `
const http = require('node:http');
const [host, port, count, local, pause, timeout] = process.argv.slice(1);
const bodies = {}, errors = {};
const one = () => new Promise((resolve) => {
  const req = http.get({ host, port: Number(port), path: '/', agent: false, timeout: Number(timeout), ...(local ? { localAddress: local } : {}) }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (body += d));
    res.on('end', () => { bodies[body] = (bodies[body] || 0) + 1; resolve(); });
    res.on('error', (e) => { errors[e.message] = (errors[e.message] || 0) + 1; resolve(); });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => { errors[e.code || e.message] = (errors[e.code || e.message] || 0) + 1; resolve(); });
});
(async () => {
  for (let i = 0; i < Number(count); i++) {
    await one();
    if (Number(pause) > 0) await new Promise((r) => setTimeout(r, Number(pause)));
  }
  process.stdout.write(JSON.stringify({ bodies, errors }));
})();
`;
  const timeoutMs = opts.timeoutMs ?? 3_000;
  const r = await host.exec([process.execPath, '-e', script, address, String(port), String(count), opts.localAddress ?? '', String(opts.pauseMs ?? 0), String(timeoutMs)], {
    timeoutMs: count * (timeoutMs + (opts.pauseMs ?? 0)) + 10_000,
  });
  return JSON.parse(r.stdout) as BatchResult;
}

/** One request of a load: when it started and ended (epoch ms, this machine's clock), and what came back. */
export interface LoadRecord {
  start: number;
  end: number;
  /** Response body (the real server's name with startNginx). */
  body?: string;
  /** Error code or message when the request failed. */
  error?: string;
}

export interface HttpLoad {
  /** Stops starting requests, waits for those in flight, closes held connections; the log, in start order. */
  stop(): Promise<LoadRecord[]>;
}

/**
 * A steady load of new connections from `host`: every `intervalMs` a new connection carrying one
 * HTTP GET, each logged with its start and end time, so a test can tell which requests started
 * after a command took effect. With `hold`, each connection stays open (idle keep-alive) after its
 * response until stop(): long-lived connections as lc/wlc count them. `count`: start no more than
 * that many (held ones stay open).
 */
export async function httpLoad(host: LabHost, address: string, port: number, opts: { intervalMs: number; hold?: boolean; timeoutMs?: number; count?: number }): Promise<HttpLoad> {
  const script = `
const http = require('node:http');
const [host, port, interval, hold, timeout, count] = process.argv.slice(1);
const held = [];
let inflight = 0, stopping = false, started = 0;
const log = (r) => process.stdout.write(JSON.stringify(r) + '\\n');
function one() {
  if (count !== '' && started >= Number(count)) return;
  started++;
  const start = Date.now();
  inflight++;
  let done = false;
  const finish = (r) => { if (done) return; done = true; inflight--; log({ start, end: Date.now(), ...r }); };
  const agent = hold === '1' ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
  if (agent) held.push(agent);
  const req = http.get({ host, port: Number(port), path: '/', agent, timeout: Number(timeout) }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (body += d));
    res.on('end', () => finish({ body }));
    res.on('error', (e) => finish({ error: e.message }));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => finish({ error: e.code || e.message }));
}
const timer = setInterval(() => { if (!stopping) one(); }, Number(interval));
one();
process.stdout.write('LOAD STARTED\\n');
process.on('SIGTERM', () => {
  stopping = true;
  clearInterval(timer);
  const wait = setInterval(() => {
    if (inflight > 0) return;
    clearInterval(wait);
    for (const a of held) a.destroy();
    process.stdout.write('LOAD DONE\\n');
    process.exit(0);
  }, 20);
});
`;
  const proc = host.spawn([process.execPath, '-e', script, address, String(port), String(opts.intervalMs), opts.hold ? '1' : '0', String(opts.timeoutMs ?? 3_000), opts.count === undefined ? '' : String(opts.count)]);
  await proc.waitForOutput(/LOAD STARTED/, 10_000);
  return {
    async stop() {
      await proc.kill('SIGTERM');
      return proc.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LoadRecord).sort((a, b) => a.start - b.start);
    },
  };
}

export interface Transfer {
  /** Resolves when the transfer ends: the bytes received, how long it took, or the error. */
  result: Promise<{ bytes: number; ms: number; error?: string }>;
}

/** A long GET (e.g. startNginx's /big) from `host`; resolves once the response headers arrived. */
export async function startTransfer(host: LabHost, address: string, port: number, path: string): Promise<Transfer> {
  const script = `
const http = require('node:http');
const [host, port, path] = process.argv.slice(1);
const t0 = Date.now();
let bytes = 0;
http.get({ host, port: Number(port), path, agent: false }, (res) => {
  process.stdout.write('TRANSFER STARTED ' + res.statusCode + '\\n');
  res.on('data', (d) => (bytes += d.length));
  res.on('end', () => { process.stdout.write('TRANSFER ' + JSON.stringify({ bytes, ms: Date.now() - t0 }) + '\\n'); process.exit(0); });
  res.on('error', (e) => { process.stdout.write('TRANSFER ' + JSON.stringify({ bytes, ms: Date.now() - t0, error: e.message }) + '\\n'); process.exit(0); });
}).on('error', (e) => { process.stdout.write('TRANSFER ' + JSON.stringify({ bytes, ms: Date.now() - t0, error: e.code || e.message }) + '\\n'); process.exit(0); });
`;
  const proc = host.spawn([process.execPath, '-e', script, address, String(port), path]);
  await proc.waitForOutput(/TRANSFER STARTED 200|TRANSFER \{/, 10_000);
  return {
    result: proc.exited.then(() => {
      const m = /TRANSFER (\{.*\})/.exec(proc.output());
      return m ? (JSON.parse(m[1]!) as { bytes: number; ms: number; error?: string }) : { bytes: 0, ms: 0, error: `no result:\n${proc.output()}` };
    }),
  };
}
