/**
 * HTTP_GET and SSL_GET (keepalived check_http.c / check_ssl.c): GET `path`, then
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
 * HTTP_GET runs on the native check engine (./engine.ts): one HTTP/1.0 GET as keepalived and
 * HAProxy send it (`GET path HTTP/1.0`, Host, User-Agent, Connection: close), the status line and
 * headers parsed there, the body read (and de-chunked) only for digest / regex and only when the
 * status is one of status_code. SSL_GET goes through node:https.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { HttpGetCheck, SslGetCheck } from '../../config/types.js';
import type { CheckIoSpec } from '../../net/native.js';
import { CHECK_IO, EngineAttempts, addressBytes, errnoName } from './engine.js';
import { formatTarget, timeoutMs, withDeadline, type CheckResult, type Checker, type CheckerOptions, type CheckTarget } from './types.js';

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export function createHttpChecker(cfg: HttpGetCheck | SslGetCheck, target: CheckTarget, opts: CheckerOptions = {}): Checker {
  return cfg.type === 'HTTP_GET' ? createPlainHttpChecker(cfg, target, opts) : createNodeHttpChecker(cfg, target, opts);
}

/** The request line and headers HTTP_GET sends; throws TypeError on a path / Host that would break the request. */
export function httpRequestBytes(path: string, host: string): Buffer {
  if (!/^[\x21-\x7e]+$/.test(path)) throw new TypeError(`path ${JSON.stringify(path)} contains spaces or control characters`);
  if (!/^[\x21-\x7e]+$/.test(host)) throw new TypeError(`Host ${JSON.stringify(host)} contains spaces or control characters`);
  return Buffer.from(`GET ${path} HTTP/1.0\r\nHost: ${host}\r\nUser-Agent: keepalive-ts\r\nConnection: close\r\n\r\n`, 'latin1');
}

function createPlainHttpChecker(cfg: HttpGetCheck, target: CheckTarget, opts: CheckerOptions): Checker {
  const ms = timeoutMs(cfg.connect_timeout);
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const regex = cfg.regex !== undefined ? new RegExp(cfg.regex) : undefined;
  const digest = cfg.digest?.toLowerCase();
  const url = `http://${formatTarget(target)}${cfg.path}`;
  const needBody = digest !== undefined || regex !== undefined;
  const statuses = Buffer.alloc(128);
  for (const s of cfg.status_code) if (s >= 0 && s < 1000) statuses[s >> 3]! |= 1 << (s & 7);
  let spec: CheckIoSpec | undefined;
  let badSpec: CheckResult | undefined;
  try {
    spec = {
      addr: addressBytes(target.address, target.family),
      port: target.port,
      bindAddr: cfg.bind_to ? addressBytes(cfg.bind_to, target.family) : null,
      request: httpRequestBytes(cfg.path, cfg.virtualhost ?? formatTarget(target)),
      wantBody: needBody,
      wantHead: false,
      maxBody,
      timeoutMs: ms,
      bodyStatuses: needBody ? statuses : null,
    };
  } catch (err) {
    badSpec = Object.freeze({ ok: false, detail: `${url}: ${(err as Error).message}` });
  }
  const timedOut: CheckResult = Object.freeze({ ok: false, detail: `timeout after ${ms} ms` });
  // Every passing attempt of a checker says the same thing: one frozen result per status.
  const passed = new Map<number, CheckResult>();
  const judge = (code: number, status: number, body: Buffer | undefined, _head: Buffer | undefined, truncated: boolean): CheckResult => {
    if (code !== 0) {
      if (code === CHECK_IO.TIMEOUT) return timedOut;
      return { ok: false, detail: `${url}: ${ioFailure(code)}` };
    }
    if (!cfg.status_code.includes(status)) {
      return { ok: false, detail: `${url}: status ${status} not in [${cfg.status_code.join(', ')}]` };
    }
    if (digest !== undefined) {
      if (truncated) return { ok: false, detail: `${url}: body larger than ${maxBody} bytes, digest not computed` };
      const got = createHash('md5').update(body ?? Buffer.alloc(0)).digest('hex');
      if (got !== digest) return { ok: false, detail: `${url}: digest ${got} != ${digest}` };
    }
    if (regex !== undefined && !regex.test((body ?? Buffer.alloc(0)).toString('utf8'))) {
      return { ok: false, detail: `${url}: body does not match /${regex.source}/` };
    }
    let r = passed.get(status);
    if (!r) passed.set(status, (r = Object.freeze({ ok: true, detail: `${url}: status ${status}` })));
    return r;
  };
  const attempts = new EngineAttempts();
  return {
    type: cfg.type,
    run: (signal) => (spec ? attempts.run(signal, spec, judge) : Promise.resolve(badSpec!)),
  };
}

/** A failed exchange in words: the errno name, or what went wrong with the answer. */
function ioFailure(code: number): string {
  switch (code) {
    case CHECK_IO.CLOSED_EARLY: return 'connection closed before a complete status line and headers';
    case CHECK_IO.NOT_HTTP: return 'the answer is not HTTP/1.x';
    case CHECK_IO.HEAD_TOO_BIG: return 'header block larger than 16384 bytes';
    case CHECK_IO.BAD_CHUNK: return 'malformed chunked body';
    case CHECK_IO.CLOSED_MID_BODY: return 'connection closed mid-body';
    default: return code > 0 ? errnoName(code) : `error ${code}`;
  }
}

function createNodeHttpChecker(cfg: HttpGetCheck | SslGetCheck, target: CheckTarget, opts: CheckerOptions): Checker {
  const ms = timeoutMs(cfg.connect_timeout);
  const tls = cfg.type === 'SSL_GET';
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const regex = cfg.regex !== undefined ? new RegExp(cfg.regex) : undefined;
  const digest = cfg.digest?.toLowerCase();
  const host = cfg.virtualhost ?? formatTarget(target);
  const url = `${tls ? 'https' : 'http'}://${formatTarget(target)}${cfg.path}`;

  const reqOpts: RequestOptions & Record<string, unknown> = {
    host: target.address,
    port: target.port,
    family: target.family,
    path: cfg.path,
    method: 'GET',
    agent: false,
    setHost: false,
    headers: { Host: host, 'User-Agent': 'keepalive-ts', Connection: 'close' },
    ...(cfg.bind_to ? { localAddress: cfg.bind_to } : {}),
  };
  if (cfg.type === 'SSL_GET') {
    // '' disables SNI (otherwise Node derives it from the Host header).
    reqOpts.servername = cfg.sni ?? '';
    reqOpts.rejectUnauthorized = cfg.verify;
    if (cfg.verify && opts.tlsCa !== undefined) reqOpts.ca = opts.tlsCa;
  }

  function judge(res: IncomingMessage, body: Buffer | null, truncated: boolean): CheckResult {
    const status = res.statusCode ?? 0;
    if (!cfg.status_code.includes(status)) {
      return { ok: false, detail: `${url}: status ${status} not in [${cfg.status_code.join(', ')}]` };
    }
    if (digest !== undefined) {
      if (truncated) return { ok: false, detail: `${url}: body larger than ${maxBody} bytes, digest not computed` };
      const got = createHash('md5').update(body ?? Buffer.alloc(0)).digest('hex');
      if (got !== digest) return { ok: false, detail: `${url}: digest ${got} != ${digest}` };
    }
    if (regex !== undefined && !regex.test((body ?? Buffer.alloc(0)).toString('utf8'))) {
      return { ok: false, detail: `${url}: body does not match /${regex.source}/` };
    }
    return { ok: true, detail: `${url}: status ${status}` };
  }

  const needBody = digest !== undefined || regex !== undefined;

  return {
    type: cfg.type,
    run: (signal) => withDeadline(signal, ms, (sig) => new Promise<CheckResult>((resolve) => {
      let settled = false;
      let req: ClientRequest | undefined;
      let res: IncomingMessage | undefined;
      const done = (r: CheckResult): void => {
        if (settled) return;
        settled = true;
        sig.removeEventListener('abort', onAbort);
        res?.destroy();
        req?.destroy();
        resolve(r);
      };
      const onAbort = (): void => done({ ok: false, detail: `${url}: no complete answer` });
      sig.addEventListener('abort', onAbort, { once: true });
      try {
        req = (tls ? httpsRequest : httpRequest)(reqOpts, (response) => {
          res = response;
          if (!needBody || !cfg.status_code.includes(response.statusCode ?? 0)) {
            done(judge(response, null, false));
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          let truncated = false;
          response.on('data', (chunk: Buffer) => {
            if (settled) return;
            const room = maxBody - size;
            if (chunk.length > room) {
              if (room > 0) chunks.push(chunk.subarray(0, room));
              size = maxBody;
              truncated = true;
              done(judge(response, Buffer.concat(chunks, size), true));
              return;
            }
            chunks.push(chunk);
            size += chunk.length;
          });
          response.once('end', () => done(judge(response, Buffer.concat(chunks, size), truncated)));
          response.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, detail: `${url}: ${err.code ?? err.message}` }));
          response.once('aborted', () => done({ ok: false, detail: `${url}: connection closed mid-body` }));
        });
      } catch (err) {
        done({ ok: false, detail: `${url}: ${err instanceof Error ? err.message : String(err)}` });
        return;
      }
      req.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, detail: `${url}: ${err.code ?? err.message}` }));
      req.end();
    })),
  };
}
