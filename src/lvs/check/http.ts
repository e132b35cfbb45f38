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
 *
 * Plain HTTP (HTTP_GET, and genhash without --ssl) runs on the native check engine
 * (./engine.ts): one HTTP/1.0 GET as keepalived and HAProxy send it (`GET path HTTP/1.0`, Host,
 * User-Agent, Connection: close), the status line and headers parsed there, the body read and
 * de-chunked only when wanted (for the checker: digest / regex, and only for a listed status).
 * SSL_GET goes through node:https with the same request headers.
 */
import { createHash } from 'node:crypto';
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import { createRequire } from 'node:module';
import type { HttpGetCheck, SslGetCheck } from '../../config/types.js';
import { CheckEngine, type CheckIoSpec, type CheckSpecHandle } from '../../net/native.js';
import { CHECK_IO, EngineAttempts, addressBytes, errnoName } from './engine.js';
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

let https: typeof import('node:https') | undefined;
/**
 * node:https's request. The module (and node:http, node:tls with it) is loaded at the first SSL_GET:
 * plain HTTP runs on the check engine, and a daemon that never checks over TLS saves their ~1 MiB
 * of RSS (bench `scale`).
 */
function httpsRequest(opts: RequestOptions, onResponse: (res: IncomingMessage) => void): ClientRequest {
  https ??= createRequire(import.meta.url)('node:https') as typeof import('node:https');
  return https.request(opts, onResponse);
}

/**
 * Sends the GET and reads the answer: the body only when `wantBody(status)` says so. Settles once:
 * with the result, or with `{ error }` (connection problems, abort by `signal`). Never rejects.
 */
export function httpGet(spec: HttpGetSpec, signal: AbortSignal, wantBody: (status: number) => boolean): Promise<HttpGetResult | { error: string; code?: string }> {
  if (!spec.tls) return engineGet(spec, signal, wantBody);
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
      req = httpsRequest(reqOpts, (response) => {
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

/** The request line and headers of HTTP_GET; throws TypeError on a path / Host that would break the request. */
export function httpRequestBytes(path: string, host: string): Buffer {
  if (!/^[\x21-\x7e]+$/.test(path)) throw new TypeError(`path ${JSON.stringify(path)} contains spaces or control characters`);
  if (!/^[\x21-\x7e]+$/.test(host)) throw new TypeError(`Host ${JSON.stringify(host)} contains spaces or control characters`);
  return Buffer.from(`GET ${path} HTTP/1.0\r\nHost: ${host}\r\nUser-Agent: keepalive-ts\r\nConnection: close\r\n\r\n`, 'latin1');
}

/** The engine's spec of a plain GET (no TLS); throws TypeError on a bad address, path or Host. */
function engineSpec(spec: HttpGetSpec, timeout: number, bodyStatuses: Buffer | null, wantHead: boolean): CheckIoSpec {
  return {
    addr: addressBytes(spec.target.address, spec.target.family),
    port: spec.target.port,
    bindAddr: spec.bindTo ? addressBytes(spec.bindTo, spec.target.family) : null,
    request: httpRequestBytes(spec.path, spec.virtualhost ?? formatTarget(spec.target)),
    wantBody: bodyStatuses !== null,
    wantHead,
    maxBody: spec.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    timeoutMs: timeout,
    bodyStatuses,
  };
}

/** Statuses 0..999 as the engine's bit map: bit s set when `want(s)`. */
function statusMap(want: (status: number) => boolean): Buffer {
  const map = Buffer.alloc(128);
  for (let s = 0; s < 1000; s++) if (want(s)) map[s >> 3]! |= 1 << (s & 7);
  return map;
}

/** A failed exchange in words: the errno name, or what went wrong with the answer. */
function ioFailure(code: number): string {
  switch (code) {
    case CHECK_IO.CLOSED_EARLY: return 'connection closed before a complete status line and headers';
    case CHECK_IO.NOT_HTTP: return 'the answer is not HTTP/1.x';
    case CHECK_IO.HEAD_TOO_BIG: return 'header block larger than 16384 bytes';
    case CHECK_IO.BAD_CHUNK: return 'malformed chunked body';
    case CHECK_IO.CLOSED_MID_BODY: return 'connection closed mid-body';
    case CHECK_IO.TIMEOUT:
    case CHECK_IO.ABORTED: return 'no complete answer';
    default: return code > 0 ? errnoName(code) : `error ${code}`;
  }
}

/** The header block the engine handed back -> version, raw header lines, headers as node:http lists them. */
function parseHead(head: Buffer): Pick<HttpGetResult, 'httpVersion' | 'rawHeaders' | 'headers'> {
  const lines = head.toString('latin1').split(/\r?\n/);
  const httpVersion = /^HTTP\/(\d\.\d)/.exec(lines[0] ?? '')?.[1] ?? '1.0';
  const rawHeaders: string[] = [];
  const headers: HttpGetResult['headers'] = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    rawHeaders.push(name, value);
    const key = name.toLowerCase();
    const had = headers[key];
    if (key === 'set-cookie') headers[key] = [...((had as string[] | undefined) ?? []), value];
    else headers[key] = had === undefined ? value : `${had as string}, ${value}`;
  }
  return { httpVersion, rawHeaders, headers };
}

/** httpGet without TLS, on the check engine. */
function engineGet(spec: HttpGetSpec, signal: AbortSignal, wantBody: (status: number) => boolean): Promise<HttpGetResult | { error: string; code?: string }> {
  const url = httpUrl(spec);
  if (signal.aborted) return Promise.resolve({ error: `${url}: no complete answer` });
  const engine = CheckEngine.get();
  let handle: CheckSpecHandle;
  try {
    // The caller's signal bounds the exchange; the engine's own deadline is only a backstop.
    handle = engine.spec(engineSpec(spec, 0x7fffffff, statusMap(wantBody), true));
  } catch (err) {
    return Promise.resolve({ error: `${url}: ${(err as Error).message}` });
  }
  return new Promise((resolve) => {
    let token = 0;
    const onAbort = (): void => engine.abort(token);
    signal.addEventListener('abort', onAbort, { once: true });
    token = engine.start(handle, (code, status, body, head, truncated) => {
      signal.removeEventListener('abort', onAbort);
      if (code !== 0) {
        resolve({ error: `${url}: ${ioFailure(code)}`, ...(code > 0 ? { code: errnoName(code) } : {}) });
        return;
      }
      resolve({ status, ...parseHead(head ?? Buffer.alloc(0)), body: body ?? null, truncated });
    });
  });
}

export function createHttpChecker(cfg: HttpGetCheck | SslGetCheck, target: CheckTarget, opts: CheckerOptions = {}): Checker {
  return cfg.type === 'HTTP_GET' ? createPlainHttpChecker(cfg, target, opts) : createTlsChecker(cfg, target, opts);
}

/** HTTP_GET: every attempt on the engine with a spec built once. */
function createPlainHttpChecker(cfg: HttpGetCheck, target: CheckTarget, opts: CheckerOptions): Checker {
  const ms = timeoutMs(cfg.connect_timeout);
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const regex = cfg.regex !== undefined ? new RegExp(cfg.regex) : undefined;
  const digest = cfg.digest?.toLowerCase();
  const spec: HttpGetSpec = {
    tls: false,
    target,
    path: cfg.path,
    ...(cfg.virtualhost !== undefined ? { virtualhost: cfg.virtualhost } : {}),
    ...(cfg.bind_to !== undefined ? { bindTo: cfg.bind_to } : {}),
    maxBodyBytes: maxBody,
  };
  const url = httpUrl(spec);
  const needBody = digest !== undefined || regex !== undefined;
  let attempts: EngineAttempts | undefined;
  let handle: CheckSpecHandle | undefined;
  let badSpec: CheckResult | undefined;
  try {
    attempts = new EngineAttempts(handle = CheckEngine.get().spec(engineSpec(spec, ms, needBody ? statusMap((s) => cfg.status_code.includes(s)) : null, false)));
  } catch (err) {
    badSpec = Object.freeze({ ok: false, detail: `${url}: ${(err as Error).message}` });
  }
  const timedOut: CheckResult = Object.freeze({ ok: false, detail: `timeout after ${ms} ms` });
  // Every passing attempt of a checker says the same thing: one frozen result per status.
  const passed = new Map<number, CheckResult>();
  const judge = (code: number, status: number, body: Buffer | undefined, _head: Buffer | undefined, truncated: boolean): CheckResult => {
    // Out of descriptors here is no verdict on the server: unknown (types.ts localFailure).
    if (code !== 0) return code === CHECK_IO.TIMEOUT ? timedOut : localFailure(code > 0 ? errnoName(code) : undefined, `${url}: ${ioFailure(code)}`);
    if (!cfg.status_code.includes(status)) {
      return { ok: false, detail: `${url}: status ${status} not in [${statusText(cfg.status_code)}]` };
    }
    if (digest !== undefined) {
      if (truncated) return { ok: false, detail: `${url}: body larger than ${maxBody} bytes, digest not computed` };
      const got = bodyDigest(body ?? Buffer.alloc(0));
      if (got !== digest) return { ok: false, detail: `${url}: digest ${got} != ${digest}` };
    }
    if (regex !== undefined && !regex.test((body ?? Buffer.alloc(0)).toString('utf8'))) {
      return { ok: false, detail: `${url}: body does not match /${regex.source}/` };
    }
    let r = passed.get(status);
    if (!r) passed.set(status, (r = Object.freeze({ ok: true, detail: `${url}: status ${status}` })));
    return r;
  };
  return {
    type: cfg.type,
    run: (signal) => (attempts ? attempts.run(signal, judge) : Promise.resolve(badSpec!)),
    // Without digest / regex the verdict is the status alone: the engine can run the schedule.
    ...(handle && !needBody
      ? { native: { spec: handle, okStatuses: statusMap((s) => cfg.status_code.includes(s)), judge: (code: number, status: number) => judge(code, status, undefined, undefined, false) } }
      : {}),
  };
}

/** SSL_GET: httpGet over node:https, bounded by withDeadline. */
function createTlsChecker(cfg: HttpGetCheck | SslGetCheck, target: CheckTarget, opts: CheckerOptions): Checker {
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
