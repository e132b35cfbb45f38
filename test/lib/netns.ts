// The network-namespace lab for ava tests: the framework-free core (lab-core.ts) plus what ties a
// lab to a test: `netnsTest` registration and a teardown that closes the lab (logging its
// processes' output when the test failed).
import type { ExecutionContext } from 'ava';
import { gatedTest } from './gated-test.js';
import { createLab as createCoreLab, netnsAvailable, type Lab } from './lab-core.js';

export * from './lab-core.js';

/**
 * Registers an ava test that needs network namespaces. Without them the test is skipped (the
 * reason in its title), or fails when KEEPALIVE_TS_REQUIRE_NETNS=1 so CI cannot pass vacuously.
 */
export function netnsTest(title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  gatedTest(title, netnsAvailable(), 'network namespaces', fn);
}

/**
 * How many tests of one file may have labs at once (KEEPALIVE_TS_LABS_PER_FILE, default 3). ava
 * starts every test of a file together; a file with a dozen labs would start a dozen pairs of
 * daemons at once and starve the machine (two cores, and ava runs two files at a time). A test
 * waits for a slot before its first lab is built, so nothing it measures includes the wait; its
 * further labs share its slot (no deadlock between tests that build two).
 */
const LAB_SLOTS = Math.max(1, Number(process.env.KEEPALIVE_TS_LABS_PER_FILE) || 3);
let freeSlots = LAB_SLOTS;
const slotQueue: Array<() => void> = [];
const slotHolders = new WeakSet<ExecutionContext>();

async function acquireLabSlot(t: ExecutionContext): Promise<void> {
  if (slotHolders.has(t)) return;
  slotHolders.add(t);
  if (freeSlots > 0) freeSlots--;
  else await new Promise<void>((resolve) => slotQueue.push(resolve));
  // Registered before the lab's own teardown: teardowns run last-registered first, so the slot
  // is handed on only once the lab is gone.
  t.teardown(() => {
    const next = slotQueue.shift();
    if (next) next();
    else freeSlots++;
  });
}

/** Creates a lab whose namespaces, processes and temp dir are removed when the test ends. */
export async function createLab(t: ExecutionContext, opts: { subnet4?: string; subnet6?: string } = {}): Promise<Lab> {
  await acquireLabSlot(t);
  const lab = await createCoreLab(opts);
  t.teardown(async () => {
    if (!t.passed) lab.logProcesses((msg) => t.log(msg));
    await lab.close();
  });
  return lab;
}
