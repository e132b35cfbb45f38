// Runs keepalive-ts itself inside lab hosts and talks to it over its control socket.
import { mkdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '../../src/cli/control-client.js';
import type { StatusReport, VrrpInstanceStatus } from '../../src/daemon/status.js';
import type { Lab, LabHost, LabProcess } from './netns.js';
import { waitFor } from './procs.js';

/** dist/src/cli/main.js, resolved from this compiled file (dist/test/lib/daemon.js). */
export const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

/** The CLI's shebang line, `#!/usr/bin/env -S [NAME=VALUE ...] node [OPTIONS]`, taken apart. */
function cliShebang(): { env: Record<string, string>; args: string[] } {
  const first = readFileSync(CLI, 'utf8').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env(?: -S)?((?: [A-Z_][A-Z0-9_]*=\S*)*) node(.*)$/.exec(first);
  if (!m) throw new Error(`unexpected shebang in ${CLI}: ${first}`);
  const env = Object.fromEntries(m[1]!.trim().split(/\s+/).filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  return { env, args: m[2]!.trim().split(/\s+/).filter(Boolean) };
}

/**
 * The node options of the CLI's shebang line (`#!/usr/bin/env -S ... node OPTIONS`): the daemon is
 * started with them, as the installed `keepalive-ts` command runs.
 */
export function cliNodeArgs(): string[] {
  return cliShebang().args;
}

/** The environment the CLI's shebang line sets (`env -S NAME=VALUE ... node`): the daemon is started with it too. */
export function cliNodeEnv(): Record<string, string> {
  return cliShebang().env;
}


export interface Director {
  host: LabHost;
  proc: LabProcess;
  configPath: string;
  socket: string;
  status(): Promise<StatusReport>;
  instance(name?: string): Promise<VrrpInstanceStatus>;
}

/** Writes `toml` and starts `keepalive-ts run` in `host`; resolves once its control socket answers. */
export async function startDirector(lab: Lab, host: LabHost, toml: string, opts: { args?: string[]; env?: Record<string, string>; wrap?: string[]; nodeArgs?: string[]; startTimeoutMs?: number; onSpawn?: (proc: LabProcess) => void } = {}): Promise<Director> {
  const dir = join(lab.tmpDir, `kt-${host.name}`);
  await mkdir(dir, { recursive: true });
  const configPath = join(dir, 'keepalive.toml');
  const socket = join(dir, 'ctl.sock');
  await writeFile(configPath, toml);
  // Every director has its own pid file: the default /run/keepalive-ts.pid is locked by the first
  // daemon on this machine, whatever namespace it runs in.
  const pidArgs = (opts.args ?? []).includes('--pid-file') ? [] : ['--pid-file', join(dir, 'kt.pid')];
  // `wrap`: a command line the daemon is exec'd from (e.g. prlimit, or unshare for a private mount namespace).
  // `nodeArgs`: options of node itself (e.g. --cpu-prof, which NODE_OPTIONS refuses).
  const proc = host.spawn([...(opts.wrap ?? []), 'node', ...cliNodeArgs(), ...(opts.nodeArgs ?? []), CLI, 'run', '--config', configPath, '--control-socket', socket, ...pidArgs, '--log-format', 'pretty', '--log-level', 'debug', ...(opts.args ?? [])], { env: { ...cliNodeEnv(), ...opts.env } });
  // `onSpawn`: watch the output from the first byte (a chatty start-up can push early lines out of
  // the capped output buffer before the control socket answers).
  opts.onSpawn?.(proc);
  const status = async () => {
    const r = await controlRequest(socket, 'status', {}, 5_000);
    if (!r.ok) throw new Error(r.error.message);
    return r.result as StatusReport;
  };
  let dead = false;
  void proc.exited.then(() => (dead = true));
  await waitFor(async () => {
    if (dead) throw new Error(`keepalive-ts on ${host.name} exited:\n${proc.output()}`);
    return status().then(() => true, () => false);
  }, opts.startTimeoutMs ?? 30_000, `keepalive-ts control socket on ${host.name}`, 50); // node's start-up is slow on a loaded machine
  return {
    host, proc, configPath, socket, status,
    instance: async (name = 'VI_1') => {
      const s = (await status()).vrrp.find((v) => v.name === name);
      if (!s) throw new Error(`no instance ${name} on ${host.name}`);
      return s;
    },
  };
}

/** A keepalive-ts config with one VRRP instance (the common case of the VRRP tests). */
export function directorToml(o: {
  routerId: string;
  vrid?: number;
  priority: number;
  vips: string[];
  version?: 2 | 3;
  advertInt?: number;
  password?: string;
  nopreempt?: boolean;
  preemptDelay?: number;
  garpDelay?: number;
  garpRepeat?: number;
  extraInstance?: string;
  extra?: string;
}): string {
  const lines = [
    '[global]',
    `router_id = "${o.routerId}"`,
    'metrics_listen = ""',
    '',
    '[[vrrp_instance]]',
    'name = "VI_1"',
    'interface = "eth0"',
    `virtual_router_id = ${o.vrid ?? 51}`,
    `priority = ${o.priority}`,
    `advert_int = ${o.advertInt ?? 1}`,
    `version = ${o.version ?? 3}`,
    `virtual_ipaddress = [${o.vips.map((v) => `"${v}"`).join(', ')}]`,
    `garp_master_delay = ${o.garpDelay ?? 1}`,
    `garp_master_repeat = ${o.garpRepeat ?? 5}`,
  ];
  if (o.password !== undefined) lines.push(`authentication = { type = "PASS", password = "${o.password}" }`);
  if (o.nopreempt) lines.push('nopreempt = true');
  if (o.preemptDelay !== undefined) lines.push(`preempt_delay = ${o.preemptDelay}`);
  if (o.extraInstance) lines.push(o.extraInstance);
  if (o.extra) lines.push('', o.extra);
  return `${lines.join('\n')}\n`;
}

/** Addresses on the host's eth0 (bare, both families). */
export async function addressesOf(host: LabHost): Promise<string[]> {
  const r = await host.exec(['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
  return [...r.stdout.matchAll(/inet6? ([0-9a-f.:]+)\//g)].map((m) => m[1]!);
}

export async function hasVip(host: LabHost, vip: string): Promise<boolean> {
  return (await addressesOf(host)).includes(vip.split('/')[0]!);
}
