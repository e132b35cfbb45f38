/**
 * The scrape endpoint: a minimal node:http server answering GET /metrics from a Registry, and,
 * when given a status source, the read-only status page: GET / (src/metrics/status-page.ts) and
 * GET /status.json (the report `keepalive-ts status --json` prints).
 *
 * Only GET and HEAD of those paths are served (the query string is ignored); any other path is
 * 404, any other method 405. Request bodies are never read (Node discards them), and every
 * connection is bounded in time (header, request and keep-alive timeouts) and number: 32 at once,
 * at most 4 from one client address, so a host holding slow connections open cannot take the
 * slots of the Prometheus servers scraping from elsewhere.
 */
import { endpointText } from '../util/endpoint.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Registry } from 'prom-client';
import type { ListenAddress } from '../config/net.js';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { statusPageHtml } from './status-page.js';

export const METRICS_PATH = '/metrics';
export const STATUS_PAGE_PATH = '/';
export const STATUS_JSON_PATH = '/status.json';

/** The page only runs its own inline script and fetches from this origin. */
const PAGE_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export interface MetricsServerOptions {
  /** GlobalConfig.metrics (parsed metrics_listen). Port 0 picks a free port (tests). */
  listen: ListenAddress;
  registry: Registry;
  /** Awaited before every scrape of /metrics (fresh data-plane counters); its failure is ignored. */
  refresh?: () => Promise<void>;
  /** The status report for / and /status.json; without it only /metrics is served. */
  status?: () => unknown | Promise<unknown>;
  /** Refresh interval of the status page without ?refresh=, seconds (default 2). */
  pageRefreshS?: number;
  /** Called when a scrape fails (the source threw) or the server errors after listening. */
  onError?: (err: Error) => void;
  /** Whole-request limit, ms (default 5000). Headers must arrive within min(this, 3000). */
  requestTimeoutMs?: number;
  /** Concurrent connections (default 32). */
  maxConnections?: number;
  /** Concurrent connections from one client address (default 4); more are closed at once. */
  maxConnectionsPerSource?: number;
}

export interface MetricsServer {
  /** Where it actually listens (the chosen port when listen.port was 0). */
  readonly address: ListenAddress;
  /** Stops listening and drops open connections. Idempotent. */
  close(): Promise<void>;
}

/** Starts serving; rejects with E_SOCKET if the address cannot be bound. */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const requestTimeout = opts.requestTimeoutMs ?? 5000;
  const headersTimeout = Math.min(requestTimeout, 3000);
  const server = createServer(
    {
      // Prometheus sends a handful of short headers.
      maxHeaderSize: 8192,
      requestTimeout,
      headersTimeout,
      // Node enforces the two timeouts above only when it sweeps connections, every 30 s by
      // default; sweep often enough that they mean what they say.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 2))),
      keepAliveTimeout: 5000,
    },
    (req, res) => void handle(req, res, opts),
  );
  server.maxConnections = opts.maxConnections ?? 32;
  server.maxHeadersCount = 64;
  // Idle sockets (no request in progress) are closed after this long.
  server.setTimeout(requestTimeout * 2);

  const sockets = new Set<Socket>();
  const perSource = new Map<string, number>();
  const perSourceMax = opts.maxConnectionsPerSource ?? 4;
  server.on('connection', (s: Socket) => {
    const from = s.remoteAddress ?? '';
    const n = perSource.get(from) ?? 0;
    if (n >= perSourceMax) {
      s.destroy();
      return;
    }
    perSource.set(from, n + 1);
    sockets.add(s);
    s.on('close', () => {
      sockets.delete(s);
      const left = (perSource.get(from) ?? 1) - 1;
      if (left <= 0) perSource.delete(from);
      else perSource.set(from, left);
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // Malformed request, oversized headers, timeout: answer if still possible, then drop.
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    if (socket.writable && err.code !== 'ECONNRESET') socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new KeepaliveError('E_SOCKET', `cannot listen for metrics on ${formatListen(opts.listen)}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen({ host: opts.listen.host, port: opts.listen.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => opts.onError?.(err));

  const addr = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    address: { host: addr.address, port: addr.port },
    close() {
      closing ??= closeServer(server, sockets);
      return closing;
    },
  };
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    for (const s of sockets) s.destroy();
  });
}

export function formatListen(l: ListenAddress): string {
  return endpointText({ address: l.host, port: l.port });
}

async function handle(req: IncomingMessage, res: ServerResponse, opts: MetricsServerOptions): Promise<void> {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  // A request with a body we will not read: do not keep the connection for another request.
  const length = req.headers['content-length'];
  const hasBody = (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
  if (hasBody) res.shouldKeepAlive = false;

  const page = opts.status !== undefined && (path === STATUS_PAGE_PATH || path === STATUS_JSON_PATH);
  if (path !== METRICS_PATH && !page) {
    return reply(res, 404, `not found; metrics are at ${METRICS_PATH}${opts.status ? `, the status page at ${STATUS_PAGE_PATH} and ${STATUS_JSON_PATH}` : ''}\n`);
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    res.shouldKeepAlive = false;
    return reply(res, 405, 'method not allowed\n');
  }
  let body: string;
  let contentType: string;
  try {
    if (path === METRICS_PATH) {
      await opts.refresh?.().catch(() => undefined);
      body = await opts.registry.metrics();
      contentType = opts.registry.contentType;
    } else if (path === STATUS_JSON_PATH) {
      body = `${JSON.stringify(await opts.status!())}\n`;
      contentType = 'application/json; charset=utf-8';
    } else {
      body = statusPageHtml(opts.pageRefreshS);
      contentType = 'text/html; charset=utf-8';
      res.setHeader('Content-Security-Policy', PAGE_CSP);
    }
  } catch (err) {
    opts.onError?.(err instanceof Error ? err : new Error(errorMessage(err)));
    return reply(res, 500, `${path === METRICS_PATH ? 'collecting metrics' : 'building the status report'} failed: ${errorMessage(err)}\n`);
  }
  if (res.destroyed) return;
  res.statusCode = 200;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.end(req.method === 'HEAD' ? undefined : body);
}

function reply(res: ServerResponse, status: number, text: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}
