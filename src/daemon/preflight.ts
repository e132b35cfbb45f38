/**
 * Checks of a valid config against the host it runs on (files, users, permissions), shared by
 * `keepalive-ts check` and the daemon's start: the same problems, with file:line and key.
 *
 * - errors: what the daemon refuses at run time (a script refused by script security, ...);
 *   `check` exits 1 on any;
 * - warnings: what runs but should not be left so (an insecure script without
 *   enable_script_security, ...).
 */
import { statSync } from 'node:fs';
import { formatIssue, formatPath, type KeyPath, type LocatedConfig } from '../config/index.js';
import { readSyncKey } from '../sync/auth.js';
import { errorMessage, isKeepaliveError } from '../util/errors.js';
import { auditScripts, readUserFiles, type ScriptFs } from '../util/script.js';
import type { UserFiles } from '../util/exec.js';

export interface PreflightProblem {
  severity: 'error' | 'warning';
  file: string;
  line?: number;
  path: string;
  message: string;
}

export interface PreflightDeps {
  userFiles?: UserFiles;
  fs?: ScriptFs;
}

export async function preflight(located: LocatedConfig, deps: PreflightDeps = {}): Promise<PreflightProblem[]> {
  const { config, lineOf } = located;
  const out: PreflightProblem[] = [];
  const add = (path: KeyPath, severity: 'error' | 'warning', message: string) => {
    const line = lineOf(path);
    out.push({ severity, file: config.file, ...(line === undefined ? {} : { line }), path: formatPath(path), message });
  };
  for (const p of await auditScripts(config, deps.userFiles ?? readUserFiles(), deps.fs)) add(p.path, p.severity, p.message);
  if (config.sync) syncKeyProblems(config.file, config.sync, add);
  return out.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
}

/**
 * The sync key: what the daemon refuses (too short, a key file others can access or that someone
 * else owns) is an error; a group-readable key file and an inline key in a config file others can
 * read are warnings.
 */
function syncKeyProblems(configFile: string, sync: NonNullable<LocatedConfig['config']['sync']>, add: (path: KeyPath, severity: 'error' | 'warning', message: string) => void): void {
  try {
    readSyncKey(sync);
  } catch (err) {
    // A key file that is not there (yet) may simply not be deployed on the host running `check`.
    const missing = isKeepaliveError(err, 'E_CONFIG_READ');
    add(['sync', sync.auth_key_file !== undefined ? 'auth_key_file' : 'auth_key'], missing ? 'warning' : 'error',
      `${missing ? 'key file missing (the daemon refuses to start until it exists): ' : ''}${errorMessage(err).replace(/^sync: /, '')}`);
    return;
  }
  const mode = (f: string) => { try { return statSync(f).mode & 0o777; } catch { return undefined; } };
  if (sync.auth_key_file !== undefined) {
    const m = mode(sync.auth_key_file);
    if (m !== undefined && (m & 0o070) !== 0) add(['sync', 'auth_key_file'], 'warning', `key file ${sync.auth_key_file} is accessible by its group (mode ${m.toString(8).padStart(4, '0')}); 0600 unless that group is only the daemon's`);
  }
  if (sync.auth_key !== undefined) {
    const m = mode(configFile);
    if (m !== undefined && (m & 0o004) !== 0) add(['sync', 'auth_key'], 'warning', `the sync key is inline in ${configFile}, which everyone can read (mode ${m.toString(8).padStart(4, '0')}): use auth_key_file (mode 0600), or chmod 600 the config`);
  }
}

/** `keepalive.toml:12 vrrp_script[0].script: warning: ...` */
export function formatProblem(p: PreflightProblem): string {
  return formatIssue({ file: p.file, ...(p.line === undefined ? {} : { line: p.line }), path: p.path, message: p.severity === 'warning' ? `warning: ${p.message}` : p.message });
}
