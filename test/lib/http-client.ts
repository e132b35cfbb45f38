/**
 * In-process HTTP/1.1 clients for data-plane tests on loopback: one request per new connection,
 * and keep-alive streams (several requests on one connection, to watch an established connection
 * across pool changes). Responses must carry Content-Length (Node's http server and nginx do).
 */
import net from 'node:net';

export interface HttpTarget {
  readonly host: string;
  readonly port: number;
  /** Source address of the connection. */
  readonly localAddress?: string;
  /** Per request; default 3000 ms. */
  readonly timeoutMs?: number;
}

const REQUEST = 'GET / HTTP/1.1\r\nHost: test\r\n\r\n';

/** Reads one response from `sock`; resolves with its body. */
function readResponse(sock: net.Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err: Error | null, body?: string) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      sock.off('error', onError);
      if (err) reject(err);
      else resolve(body!);
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (!m) return done(new Error(`no Content-Length in ${JSON.stringify(head)}`));
      const len = Number(m[1]);
      if (buf.length < end + 4 + len) return;
      done(null, buf.subarray(end + 4, end + 4 + len).toString());
    };
    const onClose = () => done(new Error('connection closed'));
    const onError = (e: Error) => done(e);
    const timer = setTimeout(() => done(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    sock.on('data', onData);
    sock.once('close', onClose);
    sock.once('error', onError);
  });
}

function connect(t: HttpTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: t.host, port: t.port, ...(t.localAddress ? { localAddress: t.localAddress } : {}) });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('connect timeout'));
    }, t.timeoutMs ?? 3000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.off('error', onError);
      s.on('error', () => {});
      resolve(s);
    });
    const onError = (e: Error) => {
      clearTimeout(timer);
      reject(e);
    };
    s.once('error', onError);
  });
}

/** One request on a new connection; the body. */
export async function httpOnce(t: HttpTarget): Promise<string> {
  const s = await connect(t);
  try {
    const answer = readResponse(s, t.timeoutMs ?? 3000);
    s.write(REQUEST);
    return await answer;
  } finally {
    s.destroy();
  }
}

export interface HttpStream {
  get(): Promise<string>;
  close(): Promise<void>;
}

/** A keep-alive connection: each get() is one request on it. */
export async function httpStream(t: HttpTarget): Promise<HttpStream> {
  const s = await connect(t);
  return {
    get: () => {
      if (s.destroyed) return Promise.reject(new Error('connection closed'));
      const answer = readResponse(s, t.timeoutMs ?? 3000);
      s.write(REQUEST);
      return answer;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (s.destroyed) return resolve();
        s.once('close', () => resolve());
        s.end();
        setTimeout(() => s.destroy(), 500).unref();
      }),
  };
}

/** A TCP port that was free on `address` a moment ago. */
export function freeTcpPort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}
