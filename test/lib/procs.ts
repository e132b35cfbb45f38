// Child-process primitives for the integration-test harness: one-shot commands with a
// timeout, and long-running processes that live in their own process group so that a
// single kill reaches everything they forked (keepalived's VRRP child, nginx workers…).
//
// Nothing started here outlives the process that started it: every child leads its own process
// group, the groups of children still running are SIGKILLed from a process 'exit' hook (a test
// file that crashes on an uncaught exception exits through process.exit), and
// installTerminationGuard() turns SIGTERM/SIGINT/SIGHUP (ava's timeout, Ctrl-C) into such an exit.
// Children never inherit our stdio: a leftover holding the test runner's pipes would keep the
// runner from ever exiting.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface ExecOptions {
  allowFail?: boolean;
  timeoutMs?: number;
  input?: string;
}

export interface LabProcess {
  pid: number;
  /** stdout and stderr interleaved, everything received so far. */
  output(): string;
  exited: Promise<{ code: number | null; signal: string | null }>;
  waitForOutput(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Signals the whole process group; resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const DEFAULT_EXEC_TIMEOUT_MS = 30_000;
/** Time a process group gets to exit after a polite signal before it gets SIGKILL. */
export const KILL_GRACE_MS = 3_000;
/** Cap on buffered output so a chatty process (tcpdump -vv) cannot eat the worker's memory. */
const MAX_OUTPUT_CHARS = 4 * 1024 * 1024;

export class CommandError extends Error {
  constructor(
    readonly cmd: readonly string[],
    readonly result: ExecResult,
  ) {
    super(`command failed (exit ${result.code}): ${showCmd(cmd)}\n${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'CommandError';
  }
}

/** A command for error messages: long arguments (inline scripts, configs) are shortened. */
export function showCmd(cmd: readonly string[]): string {
  return cmd.map((a) => (a.length > 80 ? `${a.slice(0, 60).replace(/\s+/g, ' ')}…` : a)).join(' ');
}

// ---------------------------------------------------------------------------------------------
// Process groups of the children started here (group id = the leader's pid: every child is
// detached). A group stays owned until its members are known to be gone: run() commands until
// their output closes, startProcess() processes until kill() has signalled the whole group (the
// leader may exit on its own and leave what it forked behind).

const ownedGroups = new Set<number>();
let exitHookInstalled = false;

function own(pid: number | undefined): void {
  if (pid === undefined) return;
  ownedGroups.add(pid);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', killOwnedProcessesSync);
  }
}

function disown(pid: number | undefined): void {
  if (pid !== undefined) ownedGroups.delete(pid);
}

/** Process-group ids of the children started here that may still have members. */
export function ownedProcessGroups(): number[] {
  return [...ownedGroups];
}

/** SIGKILLs every owned process group (SIGKILL also ends a stopped process). */
export function killOwnedProcessesSync(): void {
  for (const pgid of ownedGroups) killGroup(pgid, 'SIGKILL');
  ownedGroups.clear();
}

let guardInstalled = false;
/**
 * For test workers: SIGTERM, SIGINT and SIGHUP (ava's timeout stops a worker with SIGTERM; Ctrl-C
 * reaches every worker) exit the process through process.exit, so that the 'exit' hooks run:
 * the children's process groups are killed and open labs removed. Without it such a signal ends
 * the worker at once and leaves its children behind. Not for programs with their own asynchronous
 * teardown on these signals (the demo, the benchmarks).
 */
export function installTerminationGuard(): void {
  if (guardInstalled) return;
  guardInstalled = true;
  for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129]] as const) {
    process.once(sig, () => {
      process.stderr.write(`[harness] ${sig}: killing ${ownedGroups.size} child process group(s) and exiting\n`);
      process.exit(code);
    });
  }
}

/** Runs a command to completion. Rejects on non-zero exit (unless allowFail) or timeout. */
export function run(cmd: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    own(child.pid);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // detached => own process group, so a timeout also kills whatever the command forked.
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      disown(child.pid);
      reject(new Error(`cannot run ${showCmd(cmd)}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      disown(child.pid);
      const result = { stdout, stderr, code: code ?? (signal ? 128 : 1) };
      if (timedOut) reject(new Error(`command timed out after ${timeoutMs} ms: ${showCmd(cmd)}\n${stderr}`));
      else if (result.code !== 0 && !opts.allowFail) reject(new CommandError(cmd, result));
      else resolve(result);
    });
    child.stdin.on('error', () => {}); // the command may exit without reading its input
    child.stdin.end(opts.input ?? '');
  });
}

/** Synchronous variant for places that cannot await (test registration, process exit). */
export function runSync(cmd: readonly string[], timeoutMs = 10_000): ExecResult {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: timeoutMs });
  if (r.error) return { stdout: '', stderr: r.error.message, code: 127 };
  return { stdout: r.stdout ?? '', stderr: r.stderr ?? '', code: r.status ?? 128 };
}

export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM means it exists but belongs to someone else: still alive.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A zombie has exited and only waits for its parent to reap it; an orphan's zombie stays until
  // PID 1 reaps it, which a container's PID 1 (npm, a shell) may never do. It is not alive.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: what kill(0) said
  }
}

/**
 * Starts a long-running process as the leader of a new process group, capturing its output.
 * `onExit` lets an owner (a Lab) forget the process once it is gone.
 */
export function startProcess(
  cmd: readonly string[],
  opts: { env?: Record<string, string>; cwd?: string; onExit?: () => void } = {},
): LabProcess {
  const child = spawn(cmd[0]!, cmd.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
  });
  own(child.pid);
  let out = '';
  const waiters = new Set<() => void>();
  const append = (d: string) => {
    out += d;
    if (out.length > MAX_OUTPUT_CHARS) out = out.slice(out.length - MAX_OUTPUT_CHARS);
    for (const w of [...waiters]) w();
  };
  child.stdout!.setEncoding('utf8').on('data', append);
  child.stderr!.setEncoding('utf8').on('data', append);

  let done = false;
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.on('error', (err) => {
      append(`\n[harness] spawn error: ${err.message}\n`);
      disown(child.pid);
      done = true;
      opts.onExit?.();
      resolve({ code: 127, signal: null });
    });
    // 'exit' rather than 'close': a forked grandchild may keep the pipes open after the
    // leader has died, and we must not wait for it here (kill() handles the group).
    child.on('exit', (code, signal) => {
      done = true;
      opts.onExit?.();
      for (const w of [...waiters]) w();
      resolve({ code, signal });
    });
  });
  // pid is undefined when spawn failed (e.g. ENOENT); 'error' then resolves `exited`.
  const pid = child.pid ?? -1;
  const proc: LabProcess = {
    pid,
    output: () => out,
    exited,
    waitForOutput(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(re);
          if (m) {
            finish();
            resolve(m);
          } else if (done) {
            finish();
            reject(new Error(`process exited before output matched ${re}: ${showCmd(cmd)}\n--- output ---\n${tail(out)}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re} from ${showCmd(cmd)}\n--- output ---\n${tail(out)}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async kill(signal = 'SIGTERM') {
      if (pid < 0) return void (await exited);
      killGroup(pid, signal);
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), KILL_GRACE_MS);
      await exited;
      clearTimeout(timer);
      // The leader is gone; make sure nothing it forked survives it.
      killGroup(pid, 'SIGKILL');
      disown(pid);
    },
  };
  return proc;
}

export function tail(s: string, chars = 4000): string {
  return s.length > chars ? '…' + s.slice(s.length - chars) : s;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` until it returns true; throws `timed out waiting for ${what}` otherwise. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() >= deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}
