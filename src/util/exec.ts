import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

/**
 * Splits a script line into argv the way keepalived does (no shell): whitespace separates words,
 * single or double quotes group them, a backslash escapes the next character.
 */
export function splitCommand(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/** The PATH searched when the environment has none (libuv's execvp fallback). */
const DEFAULT_PATH = '/usr/local/bin:/bin:/usr/bin';

export type ResolvedCommand = { ok: true; path: string } | { ok: false; error: string };

/**
 * Finds the file runCommand would execute for `word` (the first word of a script line), the way
 * spawn does (execvp): a word with a slash is a path (relative to the working directory), any other
 * is looked up in PATH. A file found but not executable (no x bit, a directory) is an error, as
 * spawn would fail on it.
 */
export function resolveCommand(word: string, env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): ResolvedCommand {
  if (word === '') return { ok: false, error: 'empty command' };
  const executable = (file: string): string | undefined => {
    try {
      if (!statSync(file).isFile()) return 'is not a regular file';
      accessSync(file, constants.X_OK);
      return undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not executable' : (err as Error).message;
    }
  };
  if (word.includes('/')) {
    const file = isAbsolute(word) ? word : resolve(cwd, word);
    const problem = executable(file);
    return problem === undefined ? { ok: true, path: file } : { ok: false, error: `${file} ${problem}` };
  }
  const dirs = (env.PATH ?? DEFAULT_PATH).split(delimiter).map((d) => (d === '' ? cwd : d));
  let found: string | undefined;
  for (const dir of dirs) {
    const file = join(dir, word);
    const problem = executable(file);
    if (problem === undefined) return { ok: true, path: file };
    if (problem !== 'does not exist') found ??= `${file} ${problem}`;
  }
  return { ok: false, error: found ?? `"${word}" is not in PATH` };
}

export interface RunAs {
  uid: number;
  gid: number;
}

/**
 * Resolves keepalived's `user[:group]` (names or numbers) from /etc/passwd and /etc/group. Throws
 * with a clear message for an unknown user or group. Node has no getpwnam, and the files are what
 * getpwnam reads on a plain Linux host.
 */
export function resolveUser(spec: string, files: { passwd?: string; group?: string } = {}): RunAs {
  const [userName, groupName] = spec.split(':') as [string, string | undefined];
  const passwd = files.passwd ?? readFileSync('/etc/passwd', 'utf8');
  const entry = passwd.split('\n').map((l) => l.split(':')).find((f) => f[0] === userName || (/^\d+$/.test(userName) && f[2] === userName));
  const uid = entry ? Number(entry[2]) : /^\d+$/.test(userName) ? Number(userName) : NaN;
  if (!Number.isInteger(uid)) throw new Error(`unknown user "${userName}"`);
  let gid = entry ? Number(entry[3]) : uid;
  if (groupName !== undefined) {
    const groups = files.group ?? readFileSync('/etc/group', 'utf8');
    const g = groups.split('\n').map((l) => l.split(':')).find((f) => f[0] === groupName || (/^\d+$/.test(groupName) && f[2] === groupName));
    gid = g ? Number(g[2]) : /^\d+$/.test(groupName) ? Number(groupName) : NaN;
    if (!Number.isInteger(gid)) throw new Error(`unknown group "${groupName}"`);
  }
  return { uid, gid };
}

export interface RunOptions {
  /** Run as this user (keepalived's script_user / per-script `user`). */
  runAs?: RunAs;
  /** Abort: the command's process group is killed at once. */
  signal?: AbortSignal;
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** spawn itself failed (no such file, not executable). */
  error?: string;
}

/**
 * Runs a script line plus extra arguments in its own process group. On timeout or abort the group
 * gets SIGTERM, then SIGKILL one second later if anything is left (as keepalived does), so a
 * script's children cannot outlive it. Never rejects.
 */
export function runCommand(line: string, extraArgs: string[] = [], timeoutMs = 0, opts: RunOptions = {}): Promise<CommandResult> {
  const argv = [...splitCommand(line), ...extraArgs];
  return new Promise((resolve) => {
    if (argv.length === 0) return resolve({ code: null, signal: null, timedOut: false, error: 'empty command' });
    if (opts.signal?.aborted) return resolve({ code: null, signal: null, timedOut: false, error: 'aborted' });
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(argv[0]!, argv.slice(1), {
        stdio: 'ignore',
        detached: true,
        ...(opts.runAs ? { uid: opts.runAs.uid, gid: opts.runAs.gid } : {}),
      });
    } catch (err) {
      return resolve({ code: null, signal: null, timedOut: false, error: (err as Error).message });
    }
    const killGroup = (sig: NodeJS.Signals) => {
      try { if (child.pid) process.kill(-child.pid, sig); } catch { /* already gone */ }
    };
    const stop = () => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), 1000);
      killTimer.unref();
    };
    const onAbort = () => stop();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (r: CommandResult) => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve(r);
    };
    child.once('error', (err) => finish({ code: null, signal: null, timedOut: false, error: err.message }));
    child.once('exit', (code, signal) => finish({ code, signal, timedOut }));
    if (timeoutMs > 0) timer = setTimeout(() => { timedOut = true; stop(); }, timeoutMs);
  });
}
