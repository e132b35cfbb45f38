#!/usr/bin/env node
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { controlRequest, DEFAULT_CONTROL_SOCKET } from './control-client.js';
import { formatStatus } from './format-status.js';
import { errorMessage, isKeepaliveError } from '../util/errors.js';
import { LOG_LEVELS } from '../util/log.js';

const pkg = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../../package.json'), 'utf8')) as { version: string };

function controlPath(opt: string | undefined): string {
  return opt ?? process.env.KEEPALIVE_TS_CONTROL_SOCKET ?? DEFAULT_CONTROL_SOCKET;
}

function fail(err: unknown): never {
  process.stderr.write(`keepalive-ts: ${errorMessage(err)}\n`);
  process.exit(isKeepaliveError(err, 'E_PRIVILEGE') ? 4 : 1);
}

const program = new Command();
program.name('keepalive-ts').description('VRRP and L4 virtual-server manager for a pair of load-balancer directors').version(pkg.version);

program.command('run')
  .description('run the daemon in the foreground')
  .requiredOption('--config <file>', 'TOML config file')
  .option('--control-socket <path>', 'unix socket for reload/status (overrides global.control_socket)')
  .option('--pid-file <path>', 'write the daemon pid here (overrides global.pid_file)')
  .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS as string[]).default('info'))
  .addOption(new Option('--log-format <format>', 'log format').choices(['json', 'pretty']).default('json'))
  .action(async (opts: { config: string; controlSocket?: string; pidFile?: string; logLevel: string; logFormat: string }) => {
    const { runDaemon } = await import('../daemon/run.js');
    await runDaemon(opts).catch(fail);
  });

program.command('check')
  .description('validate a config file; exit 0 if valid, 1 with every problem listed if not')
  .requiredOption('--config <file>', 'TOML config file')
  .action(async (opts: { config: string }) => {
    const { loadConfigFile, describeConfig } = await import('../config/index.js');
    const { checkBgp } = await import('../announce/check.js');
    try {
      const cfg = await loadConfigFile(opts.config);
      const bird = await checkBgp(cfg);
      process.stdout.write(`${opts.config}: OK (${describeConfig(cfg)})\n${bird ? `${bird}\n` : ''}`);
    } catch (err) {
      fail(err);
    }
  });

program.command('reload')
  .description('ask the running daemon to reload its config file')
  .option('--control-socket <path>', `daemon control socket (default ${DEFAULT_CONTROL_SOCKET})`)
  .action(async (opts: { controlSocket?: string }) => {
    const reply = await controlRequest(controlPath(opts.controlSocket), 'reload').catch(fail);
    if (!reply.ok) fail(reply.error.message);
    const r = reply.result as { summary?: string[] };
    process.stdout.write(`reloaded${r.summary?.length ? `:\n  ${r.summary.join('\n  ')}` : ' (no changes)'}\n`);
  });

program.command('status')
  .description('show VRRP instances and virtual servers of the running daemon')
  .option('--json', 'print JSON')
  .option('--control-socket <path>', `daemon control socket (default ${DEFAULT_CONTROL_SOCKET})`)
  .action(async (opts: { json?: boolean; controlSocket?: string }) => {
    const reply = await controlRequest(controlPath(opts.controlSocket), 'status').catch(fail);
    if (!reply.ok) fail(reply.error.message);
    process.stdout.write(opts.json ? `${JSON.stringify(reply.result, null, 2)}\n` : formatStatus(reply.result as never));
  });

await program.parseAsync(process.argv);
