/**
 * Checks of a valid config against the host it runs on (files, users, permissions), shared by
 * `keepalive-ts check` and the daemon's start: the same problems, with file:line and key.
 *
 * - errors: what the daemon refuses at run time (a script refused by script security, ...);
 *   `check` exits 1 on any;
 * - warnings: what runs but should not be left so (an insecure script without
 *   enable_script_security, ...).
 */
import { formatIssue, formatPath, type LocatedConfig } from '../config/index.js';
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
  for (const p of await auditScripts(config, deps.userFiles ?? readUserFiles(), deps.fs)) {
    const line = lineOf(p.path);
    out.push({ severity: p.severity, file: config.file, ...(line === undefined ? {} : { line }), path: formatPath(p.path), message: p.message });
  }
  return out.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
}

/** `keepalive.toml:12 vrrp_script[0].script: warning: ...` */
export function formatProblem(p: PreflightProblem): string {
  return formatIssue({ file: p.file, ...(p.line === undefined ? {} : { line: p.line }), path: p.path, message: p.severity === 'warning' ? `warning: ${p.message}` : p.message });
}
