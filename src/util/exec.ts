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
  /** Supplementary groups (the user's groups from /etc/group, primary gid first); [] = none. */
  groups?: number[];
  /** The user's name and home directory (from /etc/passwd), when it has an entry. */
  name?: string;
  home?: string;
}

/** The text of /etc/passwd and /etc/group (injectable for tests). */
export interface UserFiles {
  passwd?: string;
  group?: string;
}

const fields = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));

/**
 * Resolves keepalived's `user[:group]` (names or numbers) from /etc/passwd and /etc/group: uid,
 * gid (the named group, else the user's primary group), the supplementary groups (every group
 * listing the user, as initgroups(3) does, plus the primary group), name and home. Throws with a
 * clear message for an unknown user or group. Node has no getpwnam, and the files are what
 * getpwnam reads on a plain Linux host.
 */
export function resolveUser(spec: string, files: UserFiles = {}): RunAs {
  const [userName, groupName] = spec.split(':') as [string, string | undefined];
  const passwd = files.passwd ?? readFileSync('/etc/passwd', 'utf8');
  const entry = fields(passwd).find((f) => f[0] === userName || (/^\d+$/.test(userName) && f[2] === userName));
  const uid = entry ? Number(entry[2]) : /^\d+$/.test(userName) ? Number(userName) : NaN;
  if (!Number.isInteger(uid)) throw new Error(`unknown user "${userName}"`);
  const primary = entry ? Number(entry[3]) : uid;
  let gid = primary;
  const groups = files.group ?? readFileSync('/etc/group', 'utf8');
  const groupRows = fields(groups);
  if (groupName !== undefined && groupName !== '') {
    const g = groupRows.find((f) => f[0] === groupName || (/^\d+$/.test(groupName) && f[2] === groupName));
    gid = g ? Number(g[2]) : /^\d+$/.test(groupName) ? Number(groupName) : NaN;
    if (!Number.isInteger(gid)) throw new Error(`unknown group "${groupName}"`);
  }
  const supplementary = new Set<number>([primary]);
  if (entry) {
    for (const g of groupRows) if ((g[3] ?? '').split(',').includes(entry[0]!) && /^\d+$/.test(g[2] ?? '')) supplementary.add(Number(g[2]));
  }
  return {
    uid,
    gid,
    groups: [...supplementary],
    ...(entry ? { name: entry[0]!, home: entry[5] || '/' } : {}),
  };
}

/** The daemon's own uid, gid and supplementary groups. */
export function currentIdentity(): RunAs {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, groups: process.getgroups?.() ?? [] };
}

function sameSet(a: readonly number[], b: readonly number[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

/** util-linux setpriv: switches uid, gid and the supplementary groups, then execs the script. */
export const SETPRIV = '/usr/bin/setpriv';

/** Variables a script must not inherit from the daemon (keepalived drops them too). */
const UNSAFE_ENV = ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'IFS'];

/**
 * The argv and environment that run `argv` as `runAs`. Switching to another user goes through
 * setpriv, because Node's spawn({ uid, gid }) clears the supplementary groups (libuv calls
 * setgroups(0)) and keeps the daemon's HOME. Pure; exported for tests.
 */
export function commandAs(argv: string[], runAs: RunAs | undefined, env: NodeJS.ProcessEnv, self: RunAs = currentIdentity()): { argv: string[]; env: NodeJS.ProcessEnv } {
  const cleanEnv: NodeJS.ProcessEnv = { ...env };
  for (const k of UNSAFE_ENV) delete cleanEnv[k];
  if (!runAs) return { argv, env: cleanEnv };
  if (runAs.home !== undefined) cleanEnv.HOME = runAs.home;
  if (runAs.name !== undefined) { cleanEnv.USER = runAs.name; cleanEnv.LOGNAME = runAs.name; }
  const sameGroups = runAs.groups === undefined || sameSet(runAs.groups, self.groups ?? []);
  if (runAs.uid === self.uid && runAs.gid === self.gid && sameGroups) return { argv, env: cleanEnv };
  const groups = runAs.groups ?? [];
  return {
    argv: [SETPRIV, `--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, groups.length > 0 ? `--groups=${groups.join(',')}` : '--clear-groups', '--', ...argv],
    env: cleanEnv,
  };
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
  /** errno code of a spawn failure (ENOENT, EMFILE...). */
  errno?: string;
}

/**
 * Runs a script line plus extra arguments in its own process group. On timeout or abort the group
 * gets SIGTERM, then SIGKILL one second later if anything is left (as keepalived does), so a
 * script's children cannot outlive it. Never rejects.
 */
export function runCommand(line: string, extraArgs: string[] = [], timeoutMs = 0, opts: RunOptions = {}): Promise<CommandResult> {
  const words = splitCommand(line);
  return new Promise((resolve) => {
    if (words.length === 0) return resolve({ code: null, signal: null, timedOut: false, error: 'empty command' });
    const { argv, env } = commandAs([...words, ...extraArgs], opts.runAs, process.env);
    if (opts.signal?.aborted) return resolve({ code: null, signal: null, timedOut: false, error: 'aborted' });
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', detached: true, env });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return resolve({ code: null, signal: null, timedOut: false, error: e.message, ...(e.code ? { errno: e.code } : {}) });
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
    child.once('error', (err: NodeJS.ErrnoException) => finish({ code: null, signal: null, timedOut: false, error: err.message, ...(err.code ? { errno: err.code } : {}) }));
    child.once('exit', (code, signal) => finish({ code, signal, timedOut }));
    if (timeoutMs > 0) timer = setTimeout(() => { timedOut = true; stop(); }, timeoutMs);
  });
}
