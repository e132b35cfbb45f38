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

/** Creates a lab whose namespaces, processes and temp dir are removed when the test ends. */
export async function createLab(t: ExecutionContext, opts: { subnet4?: string; subnet6?: string } = {}): Promise<Lab> {
  const lab = await createCoreLab(opts);
  t.teardown(async () => {
    if (!t.passed) lab.logProcesses((msg) => t.log(msg));
    await lab.close();
  });
  return lab;
}
