import { createConnection } from 'node:net';
import { KeepaliveError } from '../util/errors.js';
import { LineSplitter, type ControlReply } from '../util/ndjson.js';

export const DEFAULT_CONTROL_SOCKET = '/run/keepalive-ts.sock';

/** Sends one request over the control socket and resolves with the daemon's reply. */
/** The largest reply read (bytes); a longer one is an error, not a wait for the connection to close. */
export const MAX_REPLY_BYTES = 256 * 1024 * 1024;

export function controlRequest(path: string, cmd: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    // A `status` of 10,000 DR virtual servers is over 16 MiB of JSON.
    const splitter = new LineSplitter(MAX_REPLY_BYTES);
    let done = false;
    const finish = (fn: () => void) => { if (!done) { done = true; sock.destroy(); fn(); } };
    sock.setEncoding('utf8');
    sock.setTimeout(timeoutMs, () => finish(() => reject(new KeepaliveError('E_CONTROL_UNAVAILABLE', `no reply from ${path} within ${timeoutMs} ms`))));
    sock.on('connect', () => sock.write(`${JSON.stringify({ id: 1, cmd, args })}\n`));
    sock.on('data', (chunk: string) => {
      for (const ev of splitter.push(chunk)) {
        if (ev.kind === 'overflow') {
          finish(() => reject(new KeepaliveError('E_CONTROL_PROTOCOL', `the daemon's reply exceeds ${MAX_REPLY_BYTES / 1024 / 1024} MiB`)));
          return;
        }
        if (ev.kind === 'line') finish(() => {
          try { resolve(JSON.parse(ev.line) as ControlReply); } catch { reject(new KeepaliveError('E_CONTROL_PROTOCOL', 'daemon sent a reply that is not JSON')); }
        });
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => finish(() => reject(new KeepaliveError('E_CONTROL_UNAVAILABLE',
      `cannot reach the daemon at ${path}: ${err.code ?? err.message}${err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? ' (is keepalive-ts running? use --control-socket)' : ''}`))));
    sock.on('end', () => finish(() => reject(new KeepaliveError('E_CONTROL_PROTOCOL', 'daemon closed the connection without a reply'))));
  });
}
