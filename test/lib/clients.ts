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
