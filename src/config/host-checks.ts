/**
 * Host checks: what `keepalive-ts run` would hit on THIS machine although the file itself is valid
 * (the pure validator, validate.ts / semantic.ts, cannot know): an unreadable sync key file, a
 * script that does not exist or is not executable, an unknown user to run scripts as, an interface
 * that does not exist; for kernel lb_kinds (DR, NAT, FULLNAT): libnftables missing, IP forwarding
 * off (NAT, FULLNAT), a DR real server that is not on-link; [bgp] without BIRD 2 installed (or a
 * generated bird.conf BIRD refuses).
 *
 * `check` runs them after the file validated. Each problem names file:line and the key path, like
 * the validator's. Problems are errors except those marked as warnings: a missing interface is a
 * warning, because a config may be checked on another machine than the director it is for; `check
 * --strict` turns warnings into errors.
 *
 * Script security (keepalived's script_user / enable_script_security, src/util/script.ts) and
 * the exposure of the sync key (a group-readable key file, an inline key in a config file
 * everyone can read) are checked here too, so `check` and the daemon's start report the same.
 *
 * The checks are a list (HOST_CHECKS); each one gets the loaded config and a HostProbe, the only
 * way they look at the host. The probe is the shell (systemHostProbe reads the real system); the
 * checks are pure given a probe, so they are unit-tested with a fake one. Add a check by appending
 * to HOST_CHECKS; scriptsOf() lists every script line with its key path for checks about scripts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { libnftablesProblem } from '../lvs/dataplane/nftables/transport.js';
import { routesFromBatch } from '../lvs/dataplane/nftables/facts.js';
import { readSyncKey } from '../sync/auth.js';
import { errorMessage } from '../util/errors.js';
import { resolveCommand, resolveUser, splitCommand, type ResolvedCommand } from '../util/exec.js';
import { policyOf, scriptProblems } from '../util/script.js';
import { formatIssue, formatPath, type ConfigIssue, type KeyPath } from './issues.js';
import type { ConfigSource } from './load.js';
import { sortIssues } from './load.js';
import type { BgpConfig, Config, SyncConfig } from './types.js';
import { birdHostProblem } from '../announce/bird.js';

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
  /** Why libnftables cannot be used here (naming the package), or undefined. */
  libnftables?(): string | undefined;
  /** net.ipv4.ip_forward / net.ipv6.conf.all.forwarding is 1. */
  forwarding?(family: 4 | 6): boolean;
  /**
   * How each address is reached: through a gateway, or on-link; undefined when there is no route.
   * One question for every address (one `ip` process however many real servers there are).
   */
  routes?(addresses: readonly string[]): ReadonlyMap<string, { gateway?: string; device: string } | undefined>;
  /** Script security of one script (user resolution and path checks, as the runner does). */
  scriptSecurity?(command: string, user: string | undefined, global: Config['global']): { errors: string[]; warnings: string[] };
  /** Permission bits of a file (undefined when it cannot be read). */
  fileMode?(path: string): number | undefined;
  /** Problem running BIRD 2 with the bird.conf generated from [bgp] (not installed, refused), or undefined. */
  bird(bgp: BgpConfig, sourceFile: string): string | undefined;
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
  /**
   * The user[:group] it runs as: its own `user` (vrrp_script, MISC_CHECK), else global.script_user,
   * for every script kind (src/util/script.ts resolveScriptUser). Unset: keepalived_script if that
   * user exists, else the daemon's user.
   */
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
    for (const key of ['quorum_up', 'quorum_down'] as const) {
      const cmd = vs[key];
      if (cmd !== undefined) out.push({ path: ['virtual_server', i, key], command: cmd, ...withUser(g) });
    }
    vs.real_server.forEach((rs, j) => {
      for (const key of ['notify_up', 'notify_down'] as const) {
        const cmd = rs[key];
        if (cmd !== undefined) out.push({ path: ['virtual_server', i, 'real_server', j, key], command: cmd, ...withUser(g) });
      }
      rs.check.forEach((c, k) => {
        if (c.type === 'MISC_CHECK') out.push({ path: ['virtual_server', i, 'real_server', j, 'check', k, 'misc_path'], command: c.misc_path, ...withUser(c.user ?? g) });
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
    config.bgp?.track_interface?.forEach((name, i) => missing(['bgp', 'track_interface', i], name));
  },
};

const bird: HostCheck = {
  name: 'BIRD',
  run({ config, probe, report }) {
    if (!config.bgp) return;
    const problem = probe.bird(config.bgp, config.file);
    if (problem !== undefined) report(['bgp'], problem);
  },
};

const KERNEL_KINDS: ReadonlySet<string> = new Set(['DR', 'NAT', 'FULLNAT']);

/** What the kernel data plane (src/lvs/dataplane/nftables) needs at start. */
const kernelDataplane: HostCheck = {
  name: 'kernel data plane',
  run({ config, probe, report }) {
    const kernel = config.virtual_server.map((vs, i) => [vs, i] as const).filter(([vs]) => KERNEL_KINDS.has(vs.lb_kind));
    const { libnftables, forwarding, routes } = probe;
    if (kernel.length === 0 || !libnftables || !forwarding || !routes) return;
    const lib = libnftables.call(probe);
    if (lib !== undefined) report(['virtual_server', kernel[0]![1], 'lb_kind'], `lb_kind ${kernel[0]![0].lb_kind} forwards through nftables: ${lib}`);
    for (const family of [4, 6] as const) {
      const nat = kernel.find(([vs]) => vs.lb_kind !== 'DR' && vs.family === family);
      if (nat && !forwarding.call(probe, family)) {
        const key = family === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding';
        report(['virtual_server', nat[1], 'lb_kind'], `lb_kind ${nat[0].lb_kind} needs IP forwarding, but ${key} is 0 on this host (sysctl -w ${key}=1)`, 'warning');
      }
    }
    const dr = kernel.filter(([vs]) => vs.lb_kind === 'DR');
    const found = dr.length ? routes.call(probe, [...new Set(dr.flatMap(([vs]) => vs.real_server.map((rs) => rs.address)))]) : new Map();
    for (const [vs, i] of dr) {
      vs.real_server.forEach((rs, j) => {
        const r = found.get(rs.address);
        if (r?.gateway) report(['virtual_server', i, 'real_server', j, 'address'], `lb_kind DR needs real servers on-link, but ${rs.address} is reached via ${r.gateway} on ${r.device} from this host`, 'warning');
      });
    }
  },
};

const scriptSecurity: HostCheck = {
  name: 'script security',
  run({ config, probe, report }) {
    if (!probe.scriptSecurity) return;
    for (const s of scriptsOf(config)) {
      const r = probe.scriptSecurity(s.command, s.user, config.global);
      for (const m of r.errors) report(s.path, m);
      for (const m of r.warnings) report(s.path, m, 'warning');
    }
  },
};

const syncKeyExposure: HostCheck = {
  name: 'sync key exposure',
  run({ config, probe, report }) {
    const sync = config.sync;
    if (!sync || !probe.fileMode) return;
    const octal = (m: number) => m.toString(8).padStart(4, '0');
    if (sync.auth_key_file !== undefined) {
      const m = probe.fileMode(sync.auth_key_file);
      if (m !== undefined && (m & 0o007) === 0 && (m & 0o070) !== 0) {
        report(['sync', 'auth_key_file'], `key file ${sync.auth_key_file} is accessible by its group (mode ${octal(m)}); 0600 unless that group is only the daemon's`, 'warning');
      }
    }
    if (sync.auth_key !== undefined) {
      const m = probe.fileMode(config.file);
      if (m !== undefined && (m & 0o004) !== 0) {
        report(['sync', 'auth_key'], `the sync key is inline in ${config.file}, which everyone can read (mode ${octal(m)}): use auth_key_file (mode 0600), or chmod 600 the config`, 'warning');
      }
    }
  },
};

/** Every host check, in the order they report. */
export const HOST_CHECKS: readonly HostCheck[] = [syncKeyFile, syncKeyExposure, scripts, users, scriptSecurity, interfaces, kernelDataplane, bird];

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
    libnftables: () => libnftablesProblem() ?? undefined,
    forwarding(family) {
      try {
        return readFileSync(family === 4 ? '/proc/sys/net/ipv4/ip_forward' : '/proc/sys/net/ipv6/conf/all/forwarding', 'utf8').trim() === '1';
      } catch {
        return false;
      }
    },
    routes(addresses) {
      // One `ip -batch` for every address: a process per real server cost seconds of start-up with 1,000 of them.
      const r = spawnSync('ip', ['-j', '-force', '-batch', '-'], { input: addresses.map((a) => `route get ${a}\n`).join(''), encoding: 'utf8', timeout: 10_000, maxBuffer: 64 << 20 });
      const found = routesFromBatch(r.stdout ?? '', addresses);
      return new Map(addresses.map((a) => {
        const f = found.get(a);
        return [a, !f || f instanceof Error ? undefined : { device: f.device, ...(f.gateway ? { gateway: f.gateway } : {}) }];
      }));
    },
    scriptSecurity: (command, user, global) => scriptProblems(command, user, policyOf(global)),
    fileMode(path) {
      try {
        return statSync(path).mode & 0o777;
      } catch {
        return undefined;
      }
    },
    bird: (bgp, sourceFile) => birdHostProblem(bgp, sourceFile),
  };
}
