// A tiny request/answer protocol over a Unix socket for fixtures that run inside lab namespaces
// (the test process cannot enter a namespace; a socket in the lab's tmpDir reaches across):
// one JSON line { op, args } per connection, one JSON line back ({ ok, result } or
// { ok: false, error: { code, message } }). Framework-free.
import { connect, createServer, type Server } from 'node:net';
import { KeepaliveError } from '../../src/util/errors.js';

/** Serves `handle` on `path`; calls `ready` once listening. */
export function serveJson(path: string, handle: (op: string, args: unknown[]) => Promise<unknown>, ready: () => void): Server {
  const server = createServer((c) => {
    let buf = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const req = JSON.parse(buf.slice(0, nl)) as { op: string; args: unknown[] };
      const t0 = performance.now();
      handle(req.op, req.args).then(
        (result) => c.end(`${JSON.stringify({ ok: true, result: result ?? null, ms: performance.now() - t0 })}\n`),
        (err: { code?: string; message?: string }) => c.end(`${JSON.stringify({ ok: false, error: { code: err?.code ?? 'ERR', message: err?.message ?? String(err) } })}\n`),
      );
    });
    c.on('error', () => undefined);
  });
  server.listen(path, ready);
  return server;
}

/**
 * One request; rejects with the remote error (a KeepaliveError with its code). `onMs` gets how
 * long the handler took on the serving side (without the round trip).
 */
export function askJson<T>(path: string, op: string, args: unknown[], context: () => string = () => '', onMs?: (ms: number) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const c = connect(path);
    let buf = '';
    c.setEncoding('utf8');
    c.on('connect', () => c.write(`${JSON.stringify({ op, args })}\n`));
    c.on('data', (d: string) => (buf += d));
    c.on('error', reject);
    c.on('end', () => {
      try {
        const r = JSON.parse(buf) as { ok: boolean; result?: T; ms?: number; error?: { code: string; message: string } };
        if (r.ms !== undefined) onMs?.(r.ms);
        if (r.ok) resolve(r.result as T);
        else reject(new KeepaliveError(r.error!.code as never, r.error!.message));
      } catch (err) {
        reject(new Error(`bad reply ${JSON.stringify(buf)} to ${op} (${String(err)})\n${context()}`));
      }
    });
  });
}
