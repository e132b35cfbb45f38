import { createConnection } from 'node:net';
import { KeepaliveError } from '../util/errors.js';
import { LineSplitter, type ControlReply } from '../util/ndjson.js';

export const DEFAULT_CONTROL_SOCKET = '/run/keepalive-ts.sock';

/** Sends one request over the control socket and resolves with the daemon's reply. */
export function controlRequest(path: string, cmd: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    const splitter = new LineSplitter(16 * 1024 * 1024);
    let done = false;
    const finish = (fn: () => void) => { if (!done) { done = true; sock.destroy(); fn(); } };
    sock.setEncoding('utf8');
    sock.setTimeout(timeoutMs, () => finish(() => reject(new KeepaliveError('E_CONTROL_UNAVAILABLE', `no reply from ${path} within ${timeoutMs} ms`))));
    sock.on('connect', () => sock.write(`${JSON.stringify({ id: 1, cmd, args })}\n`));
    sock.on('data', (chunk: string) => {
      for (const ev of splitter.push(chunk)) {
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
