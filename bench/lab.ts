// Lab plumbing for the benchmark suite, outside any test framework.
//
// The network-namespace lab itself lives in test/lib/lab-core.ts (framework-free; the ava
// harness test/lib/netns.ts imports ava and cannot be loaded by a plain `node` process). This
// module adds what a benchmark needs around it: scoped labs (always closed), cleanup on Ctrl-C,
// the root check, machine facts for the results header, and small timing helpers.
import { availableParallelism, cpus, release } from 'node:os';
import {
  closeAllLabs,
  closeAllLabsSync,
  createLab,
  netnsAvailable,
  type Lab,
  type LabHost,
} from '../test/lib/lab-core.js';
import { run, runSync, sleep, waitFor, type LabProcess } from '../test/lib/procs.js';

export { createLab, netnsAvailable, run, sleep, waitFor };
export type { Lab, LabHost, LabProcess };

/** Creates a lab, runs `fn` with it and always closes it, whatever `fn` does. */
export async function withLab<T>(fn: (lab: Lab) => Promise<T>, opts: { subnet4?: string; subnet6?: string } = {}): Promise<T> {
  const lab = await createLab(opts);
  try {
    return await fn(lab);
  } finally {
    await lab.close();
  }
}

let signalsInstalled = false;
/**
 * On SIGINT/SIGTERM: close every open lab (kills daemons, deletes namespaces), then exit 130/143.
 * A second signal exits at once after a synchronous best-effort cleanup.
 */
export function installSignalCleanup(log: (msg: string) => void = (m) => process.stderr.write(`${m}\n`)): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  let stopping = false;
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(sig, () => {
      if (stopping) {
        closeAllLabsSync();
        process.exit(code);
      }
      stopping = true;
      log(`[bench] ${sig}: removing labs…`);
      void closeAllLabs().finally(() => process.exit(code));
    });
  }
}

/** Why benchmarks cannot run here, or undefined when they can (root, iproute2, netns + bridge). */
export function labUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'the benchmarks need root (network namespaces, raw sockets, addresses); run with sudo';
  const a = netnsAvailable();
  return a.ok ? undefined : a.reason;
}

export interface MachineInfo {
  nproc: number;
  cpu: string;
  kernel: string;
  node: string;
  keepalived: string;
  date: string;
}

/** Facts for the results header. */
export function machineInfo(): MachineInfo {
  const ka = runSync(['keepalived', '--version']);
  const kaLine = `${ka.stdout}\n${ka.stderr}`.split('\n').find((l) => /keepalived/i.test(l))?.trim();
  return {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    kernel: release(),
    node: process.version,
    keepalived: ka.code === 0 || kaLine ? (kaLine ?? 'unknown') : 'not installed',
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

/** Sleeps until the wall clock reads `atMs` (epoch ms): a timer for the bulk, a spin for the last ms. */
export async function sleepUntil(atMs: number): Promise<void> {
  const coarse = atMs - Date.now() - 3;
  if (coarse > 0) await sleep(coarse);
  while (Date.now() < atMs) {
    // spin: setTimeout alone lands 1-2 ms late, which matters at a 30 ms advert interval
  }
}

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}
