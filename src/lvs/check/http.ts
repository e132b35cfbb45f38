/**
 * HTTP_GET and SSL_GET (keepalived check_http.c / check_ssl.c): GET `path` (httpGet, which
 * `keepalive-ts genhash` sends too, so its digest is the one this check computes), then
 *
 * - the status must be one of `status_code`;
 * - with `digest`: the MD5 (hex, case-insensitive) of the body must match, as keepalived's
 *   genhash computes it (the bytes after the headers, de-chunked, up to Content-Length);
 * - with `regex`: the body must match (JavaScript RegExp syntax; the body is decoded as
 *   UTF-8; keepalived uses PCRE2 on the raw bytes, which is the same for ASCII patterns).
 *
 * Host header: `virtualhost` when set (without a port), else the target address with the
 * port ("[v6]:port" for IPv6), as keepalived's request template does.
 *
 * SSL_GET: TLS to the target; SNI = `sni` when set, none otherwise (the Host header is never
 * used as SNI implicitly); the certificate is not verified unless `verify = true` (then
 * against Node's CA bundle, or `opts.tlsCa`, and the name checked is `sni`, else the address).
 *
 * Timeout: keepalived arms connect_timeout separately for the connect (+TLS handshake), the
 * request write and every read, i.e. an idle timeout, so a server trickling bytes can hold a
 * check open for ever. Here connect_timeout bounds the WHOLE attempt (connect, handshake,
 * request, headers and the body bytes we need), which is never longer than keepalived's and
 * keeps an attempt from overlapping the next one.
 *
 * The body is only read when digest or regex needs it, and at most `maxBodyBytes` (1 MiB):
 * a larger body fails a digest check ("body larger than ...") and the regex is matched
 * against the first maxBodyBytes.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { HttpGetCheck, SslGetCheck } from '../../config/types.js';
import { formatTarget, localFailure, timeoutMs, withDeadline, type CheckResult, type Checker, type CheckerOptions, type CheckTarget } from './types.js';

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** One GET as HTTP_GET / SSL_GET sends it (genhash sends exactly the same request). */
export interface HttpGetSpec {
  tls: boolean;
  target: CheckTarget;
  path: string;
  /** Host header without a port; default: the target "addr:port" ("[v6]:port"). */
  virtualhost?: string;
  bindTo?: string;
  /** SSL_GET: SNI ('' or undefined = none). */
  sni?: string;
  verify?: boolean;
  tlsCa?: CheckerOptions['tlsCa'];
  maxBodyBytes?: number;
}

/** What came back: the status, the headers, and the body when it was read. */
export interface HttpGetResult {
  status: number;
  headers: IncomingMessage['headers'];
  /** Raw header lines as received (for genhash -v). */
  rawHeaders: string[];
  httpVersion: string;
  /** null when the body was not wanted; de-chunked bytes, at most maxBodyBytes. */
  body: Buffer | null;
  /** The body was cut at maxBodyBytes. */
  truncated: boolean;
}

export function httpUrl(spec: Pick<HttpGetSpec, 'tls' | 'target' | 'path'>): string {
  return `${spec.tls ? 'https' : 'http'}://${formatTarget(spec.target)}${spec.path}`;
}

/**
 * Sends the GET and reads the answer: the body only when `wantBody(status)` says so. Settles once:
 * with the result, or with `{ error }` (connection problems, abort by `signal`). Never rejects.
 */
export function httpGet(spec: HttpGetSpec, signal: AbortSignal, wantBody: (status: number) => boolean): Promise<HttpGetResult | { error: string; code?: string }> {
  const maxBody = spec.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const url = httpUrl(spec);
  const reqOpts: RequestOptions & Record<string, unknown> = {
    host: spec.target.address,
    port: spec.target.port,
    family: spec.target.family,
    path: spec.path,
    method: 'GET',
    agent: false,
    setHost: false,
    headers: { Host: spec.virtualhost ?? formatTarget(spec.target), 'User-Agent': 'keepalive-ts', Connection: 'close' },
    ...(spec.bindTo ? { localAddress: spec.bindTo } : {}),
  };
  if (spec.tls) {
    // '' disables SNI (otherwise Node derives it from the Host header).
    reqOpts.servername = spec.sni ?? '';
    reqOpts.rejectUnauthorized = spec.verify === true;
    if (spec.verify && spec.tlsCa !== undefined) reqOpts.ca = spec.tlsCa;
  }
  return new Promise((resolve) => {
    let settled = false;
    let req: ClientRequest | undefined;
    let res: IncomingMessage | undefined;
    const done = (r: HttpGetResult | { error: string; code?: string }): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      res?.destroy();
      req?.destroy();
      resolve(r);
    };
    const onAbort = (): void => done({ error: `${url}: no complete answer` });
    if (signal.aborted) { onAbort(); return; }
    signal.addEventListener('abort', onAbort, { once: true });
    const result = (response: IncomingMessage, body: Buffer | null, truncated: boolean): HttpGetResult => ({
      status: response.statusCode ?? 0,
      headers: response.headers,
      rawHeaders: response.rawHeaders,
      httpVersion: response.httpVersion,
      body,
      truncated,
    });
    try {
      req = (spec.tls ? httpsRequest : httpRequest)(reqOpts, (response) => {
        res = response;
        if (!wantBody(response.statusCode ?? 0)) {
          done(result(response, null, false));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          if (settled) return;
          const room = maxBody - size;
          if (chunk.length > room) {
            if (room > 0) chunks.push(chunk.subarray(0, room));
            size = maxBody;
            done(result(response, Buffer.concat(chunks, size), true));
            return;
          }
          chunks.push(chunk);
          size += chunk.length;
        });
        response.once('end', () => done(result(response, Buffer.concat(chunks, size), false)));
        response.once('error', (err: NodeJS.ErrnoException) => done({ error: `${url}: ${err.code ?? err.message}` }));
        response.once('aborted', () => done({ error: `${url}: connection closed mid-body` }));
      });
    } catch (err) {
      done({ error: `${url}: ${err instanceof Error ? err.message : String(err)}` });
      return;
    }
    req.once('error', (err: NodeJS.ErrnoException) => done({ error: `${url}: ${err.code ?? err.message}`, ...(err.code ? { code: err.code } : {}) }));
    req.end();
  });
}

/** The MD5 (hex) HTTP_GET / SSL_GET `digest` compares with: the body bytes after the headers, de-chunked. */
export function bodyDigest(body: Buffer): string {
  return createHash('md5').update(body).digest('hex');
}

export function createHttpChecker(cfg: HttpGetCheck | SslGetCheck, target: CheckTarget, opts: CheckerOptions = {}): Checker {
  const ms = timeoutMs(cfg.connect_timeout);
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const regex = cfg.regex !== undefined ? new RegExp(cfg.regex) : undefined;
  const digest = cfg.digest?.toLowerCase();
  const spec: HttpGetSpec = {
    tls: cfg.type === 'SSL_GET',
    target,
    path: cfg.path,
    ...(cfg.virtualhost !== undefined ? { virtualhost: cfg.virtualhost } : {}),
    ...(cfg.bind_to !== undefined ? { bindTo: cfg.bind_to } : {}),
    ...(cfg.type === 'SSL_GET' ? { sni: cfg.sni, verify: cfg.verify, tlsCa: opts.tlsCa } : {}),
    maxBodyBytes: maxBody,
  };
  const url = httpUrl(spec);
  const needBody = digest !== undefined || regex !== undefined;

  function judge(r: HttpGetResult): CheckResult {
    if (!cfg.status_code.includes(r.status)) {
      return { ok: false, detail: `${url}: status ${r.status} not in [${statusText(cfg.status_code)}]` };
    }
    if (digest !== undefined) {
      if (r.truncated) return { ok: false, detail: `${url}: body larger than ${maxBody} bytes, digest not computed` };
      const got = bodyDigest(r.body ?? Buffer.alloc(0));
      if (got !== digest) return { ok: false, detail: `${url}: digest ${got} != ${digest}` };
    }
    if (regex !== undefined && !regex.test((r.body ?? Buffer.alloc(0)).toString('utf8'))) {
      return { ok: false, detail: `${url}: body does not match /${regex.source}/` };
    }
    return { ok: true, detail: `${url}: status ${r.status}` };
  }

  return {
    type: cfg.type,
    run: (signal) => withDeadline(signal, ms, async (sig) => {
      const r = await httpGet(spec, sig, (status) => needBody && cfg.status_code.includes(status));
      // Out of descriptors here is no verdict on the server: unknown (types.ts localFailure).
      return 'error' in r ? localFailure(r.code, r.error) : judge(r);
    }),
  };
}

/** [200, 201, ..., 299, 404] -> "200-299, 404" (status lists are long since the 2xx default). */
export function statusText(codes: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < codes.length; ) {
    let j = i;
    while (j + 1 < codes.length && codes[j + 1] === codes[j]! + 1) j++;
    parts.push(j > i ? `${codes[i]}-${codes[j]}` : `${codes[i]}`);
    i = j + 1;
  }
  return parts.join(', ');
}
