// Test-only helpers for the daemons whose event loop a test blocks on purpose (a preload given with
// `node --import data:...`: no production knob), and for crashing a master right after an advert.
import { waitFor, sleep, type LabHost } from './netns.js';
import type { Director } from './daemon.js';
import { parseAdverts } from '../../bench/failover.js';

/** A preload that blocks the daemon's main thread for `ms` on SIGUSR2, then prints when it was blocked. */
export function blockOnSignal(ms: number): string[] {
  const src = `process.on('SIGUSR2',()=>{const t0=Date.now();while(Date.now()-t0<${ms});process.stderr.write('LOOP-BLOCKED '+t0+' '+Date.now()+'\\n')});`;
  return ['--import', `data:text/javascript,${encodeURIComponent(src)}`];
}

/**
 * A preload that, on SIGUSR2, blocks the daemon's main thread for `ms` inside an async-handle callback
 * (a worker's message, delivered through the loop's uv_async like the sender thread's report), then
 * prints when it was blocked. The worker exists before the daemon opens its sender thread, so its
 * handle runs first in the loop's pass over the async handles, and a report posted during the block
 * is run in the same pass, with the same poll phase: the socket's adverts of meanwhile are not
 * polled yet. (A signal handler, in contrast, runs last in its poll phase.)
 */
export function blockInAsync(ms: number): string[] {
  const src = `import { Worker, isMainThread } from 'node:worker_threads';
if (isMainThread) {
  const w = new Worker("require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m))", { eval: true });
  w.unref();
  w.on('message', () => { const t0 = Date.now(); while (Date.now() - t0 < ${ms}); process.stderr.write('LOOP-BLOCKED ' + t0 + ' ' + Date.now() + '\\n'); });
  process.on('SIGUSR2', () => w.postMessage(0));
}`;
  return ['--import', `data:text/javascript,${encodeURIComponent(src)}`];
}

/**
 * Right after a fresh advert of master `da` on `a` (seen in `adverts`, a tcpdump's text), blocks the
 * backup's loop (SIGUSR2, see blockOnSignal) and crashes the master (SIGKILL, switch port down):
 * the backup's down timer then expires in the middle of the block. Resolves with the block's
 * start and end (epoch ms) once the backup printed them.
 */
export async function crashDuringBlock(a: LabHost, da: Director, db: Director, adverts: () => string): Promise<{ blockFrom: number; blockTo: number }> {
  const fromA = () => parseAdverts(adverts()).filter((x) => x.src === a.ipv4);
  const seen = fromA().length;
  await waitFor(() => fromA().length > seen, 2_000, 'a fresh advert of the master', 1);
  await sleep(5);
  process.kill(db.proc.pid, 'SIGUSR2');
  await Promise.all([da.proc.kill('SIGKILL'), a.linkDown()]);
  const block = await db.proc.waitForOutput(/LOOP-BLOCKED (\d+) (\d+)/, 10_000);
  return { blockFrom: Number(block[1]), blockTo: Number(block[2]) };
}
