/**
 * A TCP server on 127.0.0.1 (ephemeral port) for unit tests of the proxy's byte path: half-open
 * allowed (a FIN from the client does not end the reply), errors swallowed, every socket and the
 * server closed at teardown.
 */
import type { ExecutionContext } from 'ava';
import net from 'node:net';
import { endpoint, type Endpoint } from '../../src/util/endpoint.js';

export async function loopbackServer(t: ExecutionContext, handler: (c: net.Socket) => void): Promise<Endpoint> {
  const open = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (c) => {
    open.add(c);
    c.on('close', () => open.delete(c));
    c.on('error', () => undefined);
    handler(c);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => {
    for (const c of open) c.destroy();
    server.close(() => r());
  }));
  return endpoint('127.0.0.1', (server.address() as net.AddressInfo).port);
}
