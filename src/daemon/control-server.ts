import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { lstatSync, mkdirSync, unlinkSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { LineSplitter, parseRequest, type ControlReply, type ControlRequest } from '../util/ndjson.js';
import { KeepaliveError, errorMessage, isKeepaliveError } from '../util/errors.js';

export const MAX_REQUEST_BYTES = 64 * 1024;

/** What the daemon answers on the control socket. Each handler may throw a KeepaliveError. */
export type ControlHandlers = Record<string, (args: Record<string, unknown>) => unknown | Promise<unknown>>;

export interface ControlServerOptions {
  path: string;
  handlers: ControlHandlers;
  /** A client that sends no complete request for this long is disconnected (half-open clients). */
  idleTimeoutMs?: number;
  maxClients?: number;
  onError?: (err: Error) => void;
}

/** Is something already answering on this unix socket path? */
function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/**
 * The control socket: a unix socket, mode 0600, newline-delimited JSON requests and replies.
 * Hostile clients (garbage, oversized lines, never-finished lines, floods of connections) get an
 * error reply or a closed connection; none of them can crash or stall the daemon.
 */
export class ControlServer {
  private server: Server | null = null;
  private readonly clients = new Set<Socket>();
  private closed = false;
  /** The socket file this server bound (inode), the only one close() may remove. */
  private bound: { ino: number; dev: number } | null = null;

  constructor(private readonly opts: ControlServerOptions) {}

  async listen(): Promise<void> {
    const { path } = this.opts;
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    let existing: Stats | undefined;
    try { existing = lstatSync(path); } catch { /* nothing there */ }
    if (existing) {
      // Only a stale socket (nobody answers on it) is removed; anything else is not ours.
      if (!existing.isSocket()) throw new KeepaliveError('E_UNSAFE_PATH', `control socket path ${path} exists and is not a socket; refusing to remove it`);
      if (await probe(path)) throw new KeepaliveError('E_CONTROL_UNAVAILABLE', `control socket ${path} is in use by another running daemon`);
      unlinkSync(path);
    }
    // allowHalfOpen: a client may send its requests and close its side at once; the replies (some
    // computed asynchronously) still go out before we close ours.
    const server = createServer({ allowHalfOpen: true }, (sock) => this.accept(sock));
    server.maxConnections = this.opts.maxClients ?? 64;
    // The socket file must never exist with a wider mode than 0600, not even for a moment.
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => { server.off('error', reject); resolve(); });
      });
    } finally {
      process.umask(old);
    }
    // No chmod afterwards: it would follow a symlink swapped in meanwhile. The umask made it 0600.
    const st = lstatSync(path);
    this.bound = { ino: st.ino, dev: st.dev };
    server.on('error', (err) => this.opts.onError?.(err));
    this.server = server;
  }

  private accept(sock: Socket): void {
    this.clients.add(sock);
    sock.setEncoding('utf8');
    // A deadline that only a complete request line pushes back: socket.setTimeout would be reset
    // by every byte, so a client trickling one byte at a time could hold a slot for ever.
    const idleMs = this.opts.idleTimeoutMs ?? 10_000;
    // The deadline's end is looked at after the next poll phase (setImmediate): when the event loop
    // was stalled past it (a 10,000-service transaction planned on the main thread), a request that
    // arrived meanwhile is read first and keeps the connection, instead of it being closed unread.
    const expire = () => {
      const mine = deadline;
      setImmediate(() => { if (deadline === mine) sock.destroy(); });
    };
    let deadline: NodeJS.Timeout | undefined = setTimeout(expire, idleMs);
    const extend = () => { clearTimeout(deadline); deadline = setTimeout(expire, idleMs); };
    // The deadline is for an idle client, not for the daemon's own work: while requests are being
    // answered it does not run (a `status` of 10,000 services on a loaded machine took over 10 s,
    // and the connection was closed without the reply); it starts again after the last reply.
    let busy = 0;
    sock.on('close', () => { clearTimeout(deadline); this.clients.delete(sock); });
    sock.on('error', () => sock.destroy());
    const splitter = new LineSplitter(MAX_REQUEST_BYTES);
    // Requests on one connection are answered in order.
    let chain = Promise.resolve();
    sock.on('end', () => { void chain.then(() => sock.end()); });
    sock.on('data', (chunk: string) => {
      for (const ev of splitter.push(chunk)) {
        if (ev.kind === 'overflow') {
          this.reply(sock, { ok: false, error: { code: 'E_CONTROL_PROTOCOL', message: `request line exceeds ${MAX_REQUEST_BYTES} bytes` } });
          sock.end();
          return;
        }
        busy++;
        clearTimeout(deadline);
        deadline = undefined;
        chain = chain.then(() => this.handle(sock, ev.line)).finally(() => {
          if (--busy === 0 && !sock.destroyed) extend();
        });
      }
    });
  }

  private async handle(sock: Socket, line: string): Promise<void> {
    const parsed = parseRequest(line);
    if (!parsed.ok) {
      this.reply(sock, { ok: false, error: { code: 'E_CONTROL_PROTOCOL', message: parsed.message } });
      return;
    }
    this.reply(sock, await this.dispatch(parsed.req));
  }

  private async dispatch(req: ControlRequest): Promise<ControlReply> {
    const handler = Object.hasOwn(this.opts.handlers, req.cmd) ? this.opts.handlers[req.cmd] : undefined;
    if (!handler) {
      const known = Object.keys(this.opts.handlers).join(', ');
      return { id: req.id, ok: false, error: { code: 'E_CONTROL_PROTOCOL', message: `unknown command "${req.cmd}" (known: ${known})` } };
    }
    try {
      return { id: req.id, ok: true, result: await handler(req.args ?? {}) };
    } catch (err) {
      const code = isKeepaliveError(err) ? err.code : 'E_INTERNAL';
      const details = (err as { issues?: unknown }).issues;
      return { id: req.id, ok: false, error: { code, message: errorMessage(err), ...(details ? { details } : {}) } };
    }
  }

  private reply(sock: Socket, reply: ControlReply): void {
    if (!sock.destroyed && sock.writable) sock.write(`${JSON.stringify(reply)}\n`);
  }

  /** Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.clients) c.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    // Node unlinks the socket file it bound when the server closes; remove it ourselves only if
    // the path still names the socket we bound (never another daemon's, never a stranger's file).
    const bound = this.bound;
    this.bound = null;
    if (bound) {
      try {
        const st = lstatSync(this.opts.path);
        if (st.isSocket() && st.ino === bound.ino && st.dev === bound.dev) unlinkSync(this.opts.path);
      } catch { /* already gone */ }
    }
  }
}
