/**
 * Host checks: what `keepalive-ts run` would hit on THIS machine although the file itself is valid
 * (the pure validator, validate.ts / semantic.ts, cannot know): an unreadable sync key file, a
 * script that does not exist or is not executable, an unknown user to run scripts as, an interface
 * that does not exist.
 *
 * `check` runs them after the file validated. Each problem names file:line and the key path, like
 * the validator's. Problems are errors except those marked as warnings: a missing interface is a
 * warning, because a config may be checked on another machine than the director it is for; `check
 * --strict` turns warnings into errors.
 *
 * The checks are a list (HOST_CHECKS); each one gets the loaded config and a HostProbe, the only
 * way they look at the host. The probe is the shell (systemHostProbe reads the real system); the
 * checks are pure given a probe, so they are unit-tested with a fake one. Add a check by appending
 * to HOST_CHECKS; scriptsOf() lists every script line with its key path for checks about scripts.
 */
import { existsSync } from 'node:fs';
import { readSyncKey } from '../sync/auth.js';
import { errorMessage } from '../util/errors.js';
import { resolveCommand, resolveUser, splitCommand, type ResolvedCommand } from '../util/exec.js';
import { formatIssue, formatPath, type ConfigIssue, type KeyPath } from './issues.js';
import type { ConfigSource } from './load.js';
import { sortIssues } from './load.js';
import type { Config, SyncConfig } from './types.js';

export type HostSeverity = 'error' | 'warning';

export interface HostIssue extends ConfigIssue {
  severity: HostSeverity;
}

/** What the checks may ask of the host. */
export interface HostProbe {
  /** Problem reading the sync key as `run` reads it (sync.auth_key_file), or undefined. */
  syncKey(sync: SyncConfig): string | undefined;
  /** The file the script runner would execute for the first word of a script line. */
  command(word: string): ResolvedCommand;
  /** Problem resolving a `user[:group]` spec as the runner does (unknown user/group), or undefined. */
  user(spec: string): string | undefined;
  /** Whether a network interface of this name exists here. */
  interfaceExists(name: string): boolean;
}

export interface HostCheckContext {
  readonly config: Config;
  readonly probe: HostProbe;
  /** Reports a problem at a key path; errors by default. */
  report(path: KeyPath, message: string, severity?: HostSeverity): void;
}

export interface HostCheck {
  readonly name: string;
  run(ctx: HostCheckContext): void;
}

/** One script line of the config: where it is and whom it runs as. */
export interface ScriptRef {
  path: KeyPath;
  command: string;
  /** The user[:group] it runs as (per-script `user`, else global.script_user where the runner uses it). */
  user?: string;
}

const NOTIFY_KEYS = ['notify_master', 'notify_backup', 'notify_fault', 'notify_stop', 'notify'] as const;

/** Every script line the daemon may run, with its key path and run-as user, in file order. */
export function scriptsOf(config: Config): ScriptRef[] {
  const g = config.global.script_user;
  const withUser = (user: string | undefined) => (user === undefined ? {} : { user });
  const out: ScriptRef[] = [];
  config.vrrp_script.forEach((s, i) => out.push({ path: ['vrrp_script', i, 'script'], command: s.script, ...withUser(s.user ?? g) }));
  const notifiers = [
    ...config.vrrp_instance.map((c, i) => ['vrrp_instance', i, c] as const),
    ...config.vrrp_sync_group.map((c, i) => ['vrrp_sync_group', i, c] as const),
  ];
  for (const [section, i, c] of notifiers) {
    for (const key of NOTIFY_KEYS) {
      const cmd = c[key];
      if (cmd !== undefined) out.push({ path: [section, i, key], command: cmd, ...withUser(g) });
    }
  }
  config.virtual_server.forEach((vs, i) => {
    // quorum_*, notify_up/down and MISC_CHECK run as the daemon's user unless the check sets `user`
    // (src/lvs/manager.ts, src/lvs/check/misc.ts).
    for (const key of ['quorum_up', 'quorum_down'] as const) {
      const cmd = vs[key];
      if (cmd !== undefined) out.push({ path: ['virtual_server', i, key], command: cmd });
    }
    vs.real_server.forEach((rs, j) => {
      for (const key of ['notify_up', 'notify_down'] as const) {
        const cmd = rs[key];
        if (cmd !== undefined) out.push({ path: ['virtual_server', i, 'real_server', j, key], command: cmd });
      }
      rs.check.forEach((c, k) => {
        if (c.type === 'MISC_CHECK') out.push({ path: ['virtual_server', i, 'real_server', j, 'check', k, 'misc_path'], command: c.misc_path, ...withUser(c.user) });
      });
    });
  });
  return out;
}

const syncKeyFile: HostCheck = {
  name: 'sync key file',
  run({ config, probe, report }) {
    if (config.sync?.auth_key_file === undefined) return;
    const problem = probe.syncKey(config.sync);
    if (problem !== undefined) report(['sync', 'auth_key_file'], problem);
  },
};

const scripts: HostCheck = {
  name: 'scripts',
  run({ config, probe, report }) {
    for (const s of scriptsOf(config)) {
      const word = splitCommand(s.command)[0];
      if (word === undefined) {
        report(s.path, 'empty command');
        continue;
      }
      const r = probe.command(word);
      if (!r.ok) report(s.path, `cannot run ${JSON.stringify(s.command)}: ${r.error}`);
    }
  },
};

const users: HostCheck = {
  name: 'users',
  run({ config, probe, report }) {
    const specs: Array<[KeyPath, string]> = [];
    if (config.global.script_user !== undefined) specs.push([['global', 'script_user'], config.global.script_user]);
    config.vrrp_script.forEach((s, i) => { if (s.user !== undefined) specs.push([['vrrp_script', i, 'user'], s.user]); });
    config.virtual_server.forEach((vs, i) => vs.real_server.forEach((rs, j) => rs.check.forEach((c, k) => {
      if (c.type === 'MISC_CHECK' && c.user !== undefined) specs.push([['virtual_server', i, 'real_server', j, 'check', k, 'user'], c.user]);
    })));
    for (const [path, spec] of specs) {
      const problem = probe.user(spec);
      if (problem !== undefined) report(path, `${problem} on this host: scripts run as ${JSON.stringify(spec)} would not start`);
    }
  },
};

const interfaces: HostCheck = {
  name: 'interfaces',
  run({ config, probe, report }) {
    const missing = (path: KeyPath, name: string) => {
      if (!probe.interfaceExists(name)) report(path, `interface ${JSON.stringify(name)} does not exist on this host`, 'warning');
    };
    config.vrrp_instance.forEach((vi, i) => {
      missing(['vrrp_instance', i, 'interface'], vi.interface);
      vi.track_interface.forEach((t, j) => missing(['vrrp_instance', i, 'track_interface', j], t.name));
    });
    if (config.sync) missing(['sync', 'interface'], config.sync.interface);
  },
};

/** Every host check, in the order they report. */
export const HOST_CHECKS: readonly HostCheck[] = [syncKeyFile, scripts, users, interfaces];

export interface HostCheckOptions {
  probe?: HostProbe;
  /** Warnings become errors (`check --strict`). */
  strict?: boolean;
  checks?: readonly HostCheck[];
}

/** Runs the host checks on a loaded config; issues in file order. */
export function runHostChecks(source: ConfigSource, opts: HostCheckOptions = {}): HostIssue[] {
  const probe = opts.probe ?? systemHostProbe();
  const issues: HostIssue[] = [];
  const file = source.config.file;
  const report = (path: KeyPath, message: string, severity: HostSeverity = 'error') => {
    const line = source.lineOf(path);
    issues.push({ file, ...(line === undefined ? {} : { line }), path: formatPath(path), message, severity: opts.strict ? 'error' : severity });
  };
  for (const check of opts.checks ?? HOST_CHECKS) {
    try {
      check.run({ config: source.config, probe, report });
    } catch (err) {
      report([], `host check "${check.name}" failed: ${errorMessage(err)}`);
    }
  }
  return sortIssues(issues);
}

/** `file:line key: message`, with "warning: " before the message of warnings. */
export function formatHostIssue(issue: HostIssue): string {
  return formatIssue(issue.severity === 'warning' ? { ...issue, message: `warning: ${issue.message}` } : issue);
}

/** The real host: the files and interfaces of this machine (and network namespace). */
export function systemHostProbe(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): HostProbe {
  return {
    syncKey(sync) {
      try {
        readSyncKey(sync);
        return undefined;
      } catch (err) {
        return errorMessage(err).replace(/^sync: /, '');
      }
    },
    command: (word) => resolveCommand(word, env, cwd),
    user(spec) {
      try {
        resolveUser(spec);
        return undefined;
      } catch (err) {
        return errorMessage(err);
      }
    },
    interfaceExists: (name) => !name.includes('/') && name !== '.' && name !== '..' && existsSync(`/sys/class/net/${name}`),
  };
}
