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
    try {
      const cfg = await loadConfigFile(opts.config);
      process.stdout.write(`${opts.config}: OK (${describeConfig(cfg)})\n`);
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

program.command('import')
  .description('convert a keepalived.conf or ldirectord.cf to keepalive-ts TOML on stdout; every construct dropped or changed is listed on stderr as file:line; exit 0 when the result passes check, 1 otherwise')
  .argument('<file>', 'keepalived.conf or ldirectord.cf')
  .addOption(new Option('--from <format>', 'input syntax (default: detected)').choices(['keepalived', 'ldirectord']))
  .option('--config-id <id>', "keepalived's -i: which @ID conditional lines count (default: this host's name up to the first dot)")
  .action(async (file: string, opts: { from?: 'keepalived' | 'ldirectord'; configId?: string }) => {
    const { importConfig } = await import('../import/index.js');
    const { diskFs } = await import('../import/fs.js');
    const { formatMessage } = await import('../import/types.js');
    const { hostname } = await import('node:os');
    const { resolve, dirname, join } = await import('node:path');
    const abs = resolve(file);
    const r = importConfig(abs, diskFs(abs), {
      ...(opts.from ? { from: opts.from } : {}),
      ...(opts.configId !== undefined ? { configId: opts.configId } : {}),
      defaultConfigId: hostname().split('.')[0] ?? '',
      env: process.env,
    });
    process.stdout.write(r.toml);
    // Messages name files relative to the input's directory; print them as the user named it.
    const dir = dirname(file);
    for (const m of r.messages) {
      const shown = m.loc.file.startsWith('/') || dir === '.' ? m.loc.file : join(dir, m.loc.file);
      process.stderr.write(`${formatMessage({ ...m, loc: { ...m.loc, file: shown } })}\n`);
    }
    process.exitCode = r.ok ? 0 : 1;
  });

program.command('genhash')
  .description("print the MD5 digest of a page's body, the value an HTTP_GET / SSL_GET check's digest expects (keepalived's genhash)")
  .option('-u, --url <url>', 'path (/index.html) or whole URL (http[s]://host[:port]/path)')
  .option('-s, --server <addr[:port]>', 'IP address to connect to (default: the URL host)')
  .option('-p, --port <port>', 'port (default: the URL port, or 80 / 443)')
  .option('-S, --use-ssl', 'use TLS, as SSL_GET')
  .option('-V, --virtualhost <host>', 'Host header, as the check key virtualhost (default: address:port)')
  .addOption(new Option('--use-virtualhost <host>', "keepalived's spelling of --virtualhost").hideHelp())
  .option('-I, --use-sni', 'send the virtualhost as TLS SNI, as SSL_GET sni')
  .option('-t, --timeout <seconds>', 'give up after this many seconds', '5')
  .option('-v, --verbose', 'print the status line, headers and body size on stderr')
  .action(async (opts: { url?: string; server?: string; port?: string; useSsl?: boolean; virtualhost?: string; useVirtualhost?: string; useSni?: boolean; timeout?: string; verbose?: boolean }) => {
    const { planGenhash, runGenhash } = await import('./genhash.js');
    try {
      const plan = planGenhash({ ...opts, virtualhost: opts.virtualhost ?? opts.useVirtualhost });
      const out = await runGenhash(plan);
      if (opts.verbose) process.stderr.write(`${out.report.join('\n')}\n`);
      for (const w of out.warnings) process.stderr.write(`keepalive-ts genhash: ${w}\n`);
      process.stdout.write(`${out.digest}\n`);
    } catch (err) {
      fail(err);
    }
  });

await program.parseAsync(process.argv);
