/**
 * `keepalive-ts genhash`: keepalived's genhash. Sends exactly the GET an HTTP_GET / SSL_GET check
 * sends (src/lvs/check/http.ts httpGet: same Host header rule, same de-chunking, same body limit)
 * and prints the MD5 of the body, the value the check's `digest` key expects.
 *
 * keepalived's flags are accepted: -s/--server ADDR, -p/--port PORT, -u/--url PATH, -S/--use-ssl,
 * -V/--use-virtualhost HOST, -I/--use-sni (SNI = the virtualhost), -t/--timeout SECS,
 * -v/--verbose. --url may also be a whole URL (http[s]://host[:port]/path), and --server may
 * carry the port ("10.0.0.21:8080", "[2001:db8::21]:8080").
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { bodyDigest, httpGet, httpUrl, type HttpGetSpec } from '../lvs/check/http.js';
import { parseEndpointText } from '../util/endpoint.js';
import { KeepaliveError } from '../util/errors.js';

export interface GenhashOptions {
  url?: string;
  server?: string;
  port?: string;
  useSsl?: boolean;
  virtualhost?: string;
  useSni?: boolean;
  timeout?: string;
  verbose?: boolean;
}

/** The request to send; `host` is the address to connect to (a name only when the URL gives one). */
export interface GenhashPlan {
  tls: boolean;
  host: string;
  port: number;
  path: string;
  virtualhost?: string;
  sni?: string;
  timeoutS: number;
  /** Notes for the operator (stderr). */
  notes: string[];
}

const usage = (msg: string): KeepaliveError => new KeepaliveError('E_USAGE', `genhash: ${msg}`);

function parsePort(text: string, what: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) throw usage(`${what} must be a port 1..65535, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** Options -> plan, pure. Throws E_USAGE with the reason. */
export function planGenhash(o: GenhashOptions): GenhashPlan {
  if (o.url === undefined) throw usage('--url is required (a path like /index.html, or http[s]://host[:port]/path)');
  const notes: string[] = [];
  let tls = o.useSsl === true;
  let host: string | undefined;
  let port: number | undefined;
  let path: string;
  let urlHostName: string | undefined;
  if (/^https?:\/\//i.test(o.url)) {
    let u: URL;
    try {
      u = new URL(o.url);
    } catch {
      throw usage(`--url ${JSON.stringify(o.url)} is not a valid URL`);
    }
    tls = tls || u.protocol === 'https:';
    const h = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    host = h;
    if (isIP(h) === 0) urlHostName = h;
    port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
    path = `${u.pathname}${u.search}`;
  } else {
    if (!o.url.startsWith('/')) throw usage(`--url must be a path starting with "/" or a http[s]:// URL, got ${JSON.stringify(o.url)}`);
    path = o.url;
  }
  if (o.server !== undefined) {
    const withPort = parseEndpointText(o.server);
    const bare = withPort ? undefined : parseEndpointText(o.server, true);
    const ep = withPort ?? bare;
    if (!ep) throw usage(`--server must be an IP address, optionally with :port, got ${JSON.stringify(o.server)}`);
    host = ep.address;
    if (withPort) port = ep.port;
  }
  if (o.port !== undefined) port = parsePort(o.port, '--port');
  if (host === undefined) throw usage('--server is required when --url is a path');
  port ??= tls ? 443 : 80;
  const virtualhost = o.virtualhost ?? urlHostName;
  if (o.virtualhost === undefined && urlHostName !== undefined) {
    notes.push(`Host: ${urlHostName} (from the URL); the check sends the same only with virtualhost = "${urlHostName}"`);
  }
  if (o.useSni && virtualhost === undefined) throw usage('--use-sni needs a virtualhost (-V) to send as SNI');
  const timeoutS = o.timeout === undefined ? 5 : Number(o.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw usage(`--timeout must be a positive number of seconds, got ${JSON.stringify(o.timeout)}`);
  return {
    tls,
    host,
    port,
    path,
    ...(virtualhost !== undefined ? { virtualhost } : {}),
    ...(o.useSni && virtualhost !== undefined ? { sni: virtualhost } : {}),
    timeoutS,
    notes,
  };
}

export interface GenhashOutput {
  digest: string;
  status: number;
  /** For --verbose. */
  report: string[];
  /** Warnings worth printing even without --verbose. */
  warnings: string[];
}

/** Runs the request of `plan`; rejects with E_GENHASH on any failure. */
export async function runGenhash(plan: GenhashPlan): Promise<GenhashOutput> {
  let address = plan.host;
  if (isIP(address) === 0) {
    try {
      address = (await lookup(address)).address;
    } catch (err) {
      throw new KeepaliveError('E_GENHASH', `cannot resolve ${plan.host}: ${(err as Error).message}`);
    }
  }
  const family = isIP(address) === 6 ? 6 : 4;
  const spec: HttpGetSpec = {
    tls: plan.tls,
    target: { address, port: plan.port, family },
    path: plan.path,
    ...(plan.virtualhost !== undefined ? { virtualhost: plan.virtualhost } : {}),
    ...(plan.tls ? { sni: plan.sni ?? '', verify: false } : {}),
  };
  const r = await httpGet(spec, AbortSignal.timeout(Math.max(1, Math.round(plan.timeoutS * 1000))), () => true);
  if ('error' in r) throw new KeepaliveError('E_GENHASH', r.error);
  if (r.truncated || r.body === null) throw new KeepaliveError('E_GENHASH', `${httpUrl(spec)}: body larger than the ${1024 * 1024} bytes a check reads; a digest check of it always fails`);
  const report = [
    `GET ${httpUrl(spec)}${plan.virtualhost !== undefined ? ` (Host: ${plan.virtualhost})` : ''}`,
    `HTTP/${r.httpVersion} ${r.status}`,
    ...pairs(r.rawHeaders),
    `body: ${r.body.length} bytes`,
  ];
  const warnings = [...plan.notes];
  if (r.status < 200 || r.status > 299) warnings.push(`status ${r.status}: HTTP_GET accepts 200-299 unless its status_code lists ${r.status}`);
  return { digest: bodyDigest(r.body), status: r.status, report, warnings };
}

function pairs(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push(`${raw[i]}: ${raw[i + 1]}`);
  return out;
}
