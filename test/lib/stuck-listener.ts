// A TCP port that never completes a connect, on loopback and without root: a listener in a
// stopped (SIGSTOP) process with a full accept queue (backlog 1) — the kernel then drops further
// SYNs, so a connect hangs until the connecting side gives up. The listener is a harness child
// (test/lib/procs.ts): killed by the test's teardown, and by the worker's exit hook if the test
// file crashes first; it does not share the worker's stdio, so a leftover could not hold the test
// runner open either.
import type { ExecutionContext } from 'ava';
import { connect, type Socket } from 'node:net';
import { installTerminationGuard, startProcess } from './procs.js';

installTerminationGuard();

const LISTENER_JS = `
  const s = require('node:net').createServer();
  s.listen({ port: 0, host: process.argv[1], backlog: 1 }, () => console.log('port=' + s.address().port));
`;

/** Returns the port of a listener on `host` that accepts nothing; removed when the test ends. */
export async function stuckListener(t: ExecutionContext, host: string): Promise<number> {
  const proc = startProcess([process.execPath, '-e', LISTENER_JS, host]);
  const fillers: Socket[] = [];
  t.teardown(async () => {
    for (const s of fillers) s.destroy();
    await proc.kill('SIGKILL');
  });
  const port = Number((await proc.waitForOutput(/port=(\d+)/, 10_000))[1]);
  process.kill(proc.pid, 'SIGSTOP');
  // Fill the accept queue: connect until one connect does not complete.
  for (let i = 0; i < 16; i++) {
    const s = connect({ host, port });
    s.on('error', () => {});
    fillers.push(s);
    const connected = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 300);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!connected) return port;
  }
  throw new Error(`the accept queue of the stopped listener on ${host}:${port} never filled`);
}
