/**
 * Scripts, the keepalived way, for every kind (vrrp_script, notify*, MISC_CHECK, notify_up/down,
 * quorum_up/down): one answer to "who runs this script" and one check of "may it run".
 *
 * Who (keepalived notify.c get_default_script_user / set_uid_gid):
 *   1. the script's own `user` (vrrp_script.user, MISC_CHECK.user);
 *   2. else global.script_user;
 *   3. else the user `keepalived_script`, if it exists;
 *   4. else the user keepalive-ts runs as — except with enable_script_security, which (as in
 *      keepalived) refuses to default to it: the script is refused.
 * The script runs with that user's uid, gid, supplementary groups (from /etc/group), HOME, USER
 * and LOGNAME (util/exec.ts commandAs).
 *
 * May it run (keepalived check_script_secure / check_security):
 *   - a command without "/" is looked up in PATH; a script that is missing, not a regular file or
 *     not executable by its user is refused;
 *   - a script that runs with root privileges (uid 0 or gid 0, or a set-uid/set-gid root file)
 *     is insecure when any component of its path — as written and after resolving symlinks — is
 *     owned by a non-root user, or is a file or a directory without the sticky bit that is
 *     writable by its non-root group or by everyone. With enable_script_security an insecure
 *     script is refused; without, it runs and a warning says so (keepalived: "SECURITY
 *     VIOLATION"). A script that runs as a non-root user is not checked for this (it cannot gain
 *     more than that user has).
 *   - One deviation: keepalived refuses a path with a symlinked directory in it (e.g. /bin on a
 *     merged-/usr system). We accept a root-owned symlink there, because its target is walked as
 *     part of the resolved path.
 * The check runs before every execution (a file can change after start) and, for `keepalive-ts
 * check`, once over the whole config (auditScripts), with file:line and key.
 */
import { lstatSync, realpathSync, statSync, type Stats } from 'node:fs';

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_ISVTX = 0o1000;
import { isAbsolute, join } from 'node:path';
import { readFileSync } from 'node:fs';
import type { GlobalConfig } from '../config/types.js';
import { currentIdentity, resolveUser, runCommand, splitCommand, type CommandResult, type RunAs, type UserFiles } from './exec.js';

/** keepalived's default script user, used when it exists and nothing else is configured. */
export const DEFAULT_SCRIPT_USER = 'keepalived_script';

export interface ScriptPolicy {
  /** global.script_user */
  script_user?: string;
  /** global.enable_script_security */
  enable_script_security: boolean;
}

export type UserResolution =
  | { ok: true; runAs: RunAs; spec: string; source: 'script' | 'global' | 'default' | 'self' }
  | { ok: false; reason: string };

/** Who runs a script whose own `user` is `perScript`. Pure given `files` and `self`. */
export function resolveScriptUser(perScript: string | undefined, policy: ScriptPolicy, files: UserFiles, self: RunAs = currentIdentity()): UserResolution {
  const attempt = (spec: string, source: 'script' | 'global' | 'default'): UserResolution => {
    try {
      return { ok: true, runAs: resolveUser(spec, files), spec, source };
    } catch (err) {
      const where = source === 'script' ? 'user' : source === 'global' ? 'global.script_user' : 'default script user';
      return { ok: false, reason: `${where} ${JSON.stringify(spec)}: ${(err as Error).message}` };
    }
  };
  if (perScript !== undefined) return attempt(perScript, 'script');
  if (policy.script_user !== undefined) return attempt(policy.script_user, 'global');
  const dflt = attempt(DEFAULT_SCRIPT_USER, 'default');
  if (dflt.ok) return dflt;
  if (policy.enable_script_security) {
    return { ok: false, reason: `no script_user is set and user ${DEFAULT_SCRIPT_USER} does not exist; enable_script_security does not let scripts default to the user keepalive-ts runs as` };
  }
  return { ok: true, runAs: self, spec: `the daemon's user (uid ${self.uid})`, source: 'self' };
}

/**
 * The file-system calls the check needs (injectable for unit tests). Synchronous, as keepalived's:
 * a handful of lstat calls before a script runs, and `check`'s host checks are synchronous.
 */
export interface ScriptFs {
  lstat(path: string): Pick<Stats, 'mode' | 'uid' | 'gid' | 'isDirectory' | 'isFile' | 'isSymbolicLink'>;
  stat(path: string): Pick<Stats, 'mode' | 'uid' | 'gid' | 'isDirectory' | 'isFile' | 'isSymbolicLink'>;
  realpath(path: string): string;
}

export const realScriptFs: ScriptFs = { lstat: (p) => lstatSync(p), stat: (p) => statSync(p), realpath: (p) => realpathSync(p) };

export interface ScriptVerdict {
  /** The program that runs (argv[0] after the PATH search), when found. */
  program?: string;
  /** Why it must not run; empty = it may run. */
  refused: string[];
  /** Problems that do not stop it (insecure path without enable_script_security). */
  warnings: string[];
  /** It runs with root privileges (the path checks applied). */
  privileged: boolean;
  /** Refused because the program does not exist (yet): `check` warns, the daemon refuses. */
  missing?: boolean;
}

/** keepalived is_executable(). */
function executableBy(st: { mode: number; uid: number; gid: number }, u: RunAs): boolean {
  const x = st.mode;
  return (u.uid === 0 && (x & 0o111) !== 0)
    || (u.uid === st.uid && (x & 0o100) !== 0)
    || (u.uid !== st.uid && ((u.gid === st.gid && (x & 0o010) !== 0) || (u.gid !== st.gid && (x & 0o001) !== 0)));
}

/** Every prefix of an absolute path: "/", "/a", "/a/b", ... */
function prefixes(path: string): string[] {
  const parts = path.split('/').filter(Boolean);
  const out = ['/'];
  for (let i = 1; i <= parts.length; i++) out.push(`/${parts.slice(0, i).join('/')}`);
  return out;
}

/** keepalived check_security(): the first unsafe component of `path`, or null. */
function unsafeComponent(path: string, fs: ScriptFs): string | null {
  const all = prefixes(path);
  for (const [i, p] of all.entries()) {
    const last = i === all.length - 1;
    let st;
    try {
      st = fs.lstat(p);
    } catch (err) {
      return `${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
    const dir = st.isDirectory();
    const link = st.isSymbolicLink();
    if (!last && !dir && !link) return `${p} is not a directory`;
    if (last && !st.isFile() && !link) return `${p} is not a regular file`;
    if (st.uid !== 0) return `${p} is owned by uid ${st.uid}, not root`;
    const checkedForWrite = (dir && (st.mode & S_ISVTX) === 0) || st.isFile();
    if (checkedForWrite && st.gid !== 0 && (st.mode & 0o020) !== 0) return `${p} is writable by group ${st.gid}`;
    if (checkedForWrite && (st.mode & 0o002) !== 0) return `${p} is writable by everyone`;
  }
  return null;
}

/** Finds a bare command name in PATH (keepalived find_path): the first entry executable by `u`. */
function searchPath(name: string, u: RunAs, fs: ScriptFs, pathVar: string): string | undefined {
  for (const dir of pathVar.split(':').filter((d) => isAbsolute(d))) {
    const candidate = join(dir, name);
    try {
      const st = fs.stat(candidate);
      if (st.isFile() && executableBy(st, u)) return candidate;
    } catch {
      /* not there */
    }
  }
  return undefined;
}

/** May `command` run as `runAs`? (keepalived check_script_secure). Never throws. */
export function vetScript(command: string, runAs: RunAs, security: boolean, fs: ScriptFs = realScriptFs, pathVar = process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'): ScriptVerdict {
  const refused: string[] = [];
  const warnings: string[] = [];
  const argv0 = splitCommand(command)[0];
  if (argv0 === undefined || argv0 === '') return { refused: ['empty command'], warnings, privileged: false };
  let program = argv0;
  if (!argv0.includes('/')) {
    const found = searchPath(argv0, runAs, fs, pathVar);
    if (!found) return { refused: [`${argv0} not found in PATH (${pathVar})`], warnings, privileged: false, missing: true };
    program = found;
  }
  if (!isAbsolute(program)) return { program, refused: [`${program} is a relative path; use an absolute one`], warnings, privileged: false };
  let real: string;
  let st;
  try {
    real = fs.realpath(program);
    st = fs.stat(real);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { program, refused: [`${program} cannot be accessed: ${code ?? (err as Error).message}`], warnings, privileged: false, missing: code === 'ENOENT' };
  }
  if (!st.isFile()) return { program, refused: [`${program} is not a regular file`], warnings, privileged: false };
  if (!executableBy(st, runAs)) refused.push(`${program} is not executable by uid ${runAs.uid} gid ${runAs.gid}`);
  const privileged = runAs.uid === 0 || runAs.gid === 0
    || (st.uid === 0 && (st.mode & 0o100) !== 0 && (st.mode & S_ISUID) !== 0)
    || (st.gid === 0 && (st.mode & 0o010) !== 0 && (st.mode & S_ISGID) !== 0);
  if (privileged) {
    for (const p of program === real ? [program] : [program, real]) {
      const bad = unsafeComponent(p, fs);
      if (bad === null) continue;
      const what = `${program} runs with root privileges but ${bad}`;
      if (security) refused.push(`${what} (enable_script_security refuses it)`);
      else warnings.push(`${what} (refused with enable_script_security = true)`);
      break;
    }
  }
  return { program, refused, warnings, privileged };
}

export function readUserFiles(): UserFiles {
  const read = (f: string) => { try { return readFileSync(f, 'utf8'); } catch { return ''; } };
  return { passwd: read('/etc/passwd'), group: read('/etc/group') };
}

/** What `check` says of one script (src/config/host-checks.ts): refusals are errors, insecure-but-run warnings. */
export function scriptProblems(command: string, user: string | undefined, policy: ScriptPolicy, files: UserFiles = readUserFiles(), fs: ScriptFs = realScriptFs, self: RunAs = currentIdentity()): { errors: string[]; warnings: string[] } {
  const who = resolveScriptUser(user, policy, files, self);
  // An unknown user that is named (own `user` or script_user) is the "users" host check's to report.
  if (!who.ok) return { errors: user !== undefined || policy.script_user !== undefined ? [] : [`script refused: ${who.reason}`], warnings: [] };
  const v = vetScript(command, who.runAs, policy.enable_script_security, fs);
  // A missing or non-executable file is the "scripts" host check's to report.
  if (v.missing) return { errors: [], warnings: [] };
  return {
    errors: v.refused.map((m) => `script refused (runs as ${who.spec}): ${m}`),
    warnings: v.warnings.map((m) => `insecure script (runs as ${who.spec}): ${m}`),
  };
}

/** A run that was refused before anything was executed. */
export interface RefusedRun {
  refused: string;
}

export type ScriptRunResult = (CommandResult & { refused?: undefined }) | (RefusedRun & Partial<CommandResult>);

export interface ScriptRunnerOptions {
  /** The current global settings (read at every run, so a reload applies at once). */
  policy: () => ScriptPolicy;
  /** Called once per distinct refusal of a command (then again only if the reason changes). */
  onRefused?: (command: string, reason: string) => void;
  onWarning?: (command: string, warning: string) => void;
  run?: typeof runCommand;
  fs?: ScriptFs;
  userFiles?: () => UserFiles;
}

/**
 * Runs every script of the daemon: resolves its user, checks it, and only then executes it
 * (runCommand). Refusals are reported once per command and reason, not on every interval.
 */
export class ScriptRunner {
  readonly #opts: ScriptRunnerOptions;
  readonly #reported = new Map<string, string>();

  constructor(opts: ScriptRunnerOptions) {
    this.#opts = opts;
  }

  async run(command: string, args: string[], timeoutMs: number, user: string | undefined, signal?: AbortSignal): Promise<ScriptRunResult> {
    const policy = this.#opts.policy();
    const files = this.#opts.userFiles?.() ?? readUserFiles();
    const who = resolveScriptUser(user, policy, files);
    if (!who.ok) return this.#refuse(command, who.reason);
    const v = vetScript(command, who.runAs, policy.enable_script_security, this.#opts.fs);
    if (v.refused.length > 0) return this.#refuse(command, v.refused.join('; '));
    if (v.warnings.length > 0) this.#report(command, `warn:${v.warnings.join('; ')}`, () => this.#opts.onWarning?.(command, v.warnings.join('; ')));
    else this.#reported.delete(command);
    return (this.#opts.run ?? runCommand)(command, args, timeoutMs, { runAs: who.source === 'self' ? undefined : who.runAs, ...(signal ? { signal } : {}) });
  }

  #refuse(command: string, reason: string): RefusedRun {
    this.#report(command, `refuse:${reason}`, () => this.#opts.onRefused?.(command, reason));
    return { refused: reason };
  }

  #report(command: string, key: string, fn: () => void): void {
    if (this.#reported.get(command) === key) return;
    this.#reported.set(command, key);
    fn();
  }
}

/** The policy part of a loaded config's [global]. */
export const policyOf = (g: Pick<GlobalConfig, 'script_user' | 'enable_script_security'>): ScriptPolicy =>
  ({ enable_script_security: g.enable_script_security, ...(g.script_user !== undefined ? { script_user: g.script_user } : {}) });

