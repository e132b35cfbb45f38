import { KeepaliveError } from '../util/errors.js';

/** A key path inside the TOML document: table keys and array indexes, e.g. vrrp_instance[0].priority. */
export type KeyPath = readonly (string | number)[];

/** One problem found in a config file. `path` is '' for file-level problems (syntax errors). */
export interface ConfigIssue {
  file: string;
  line?: number;
  path: string;
  message: string;
}

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

export function formatPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = BARE_KEY.test(seg) ? seg : JSON.stringify(seg);
      out += out === '' ? key : `.${key}`;
    }
  }
  return out;
}

/** `director-a.toml:14 vrrp_instance[0].priority: must be 1..255, got 300` */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}`;
  return issue.path === '' ? `${where}: ${issue.message}` : `${where} ${issue.path}: ${issue.message}`;
}

/** Every problem of a config at once, so an operator fixes the file in one round trip. */
export class ConfigError extends KeepaliveError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super('E_CONFIG_INVALID', issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}
