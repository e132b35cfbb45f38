#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=1 --heap-growing-percent=20
// How the daemon's memory is kept small (env -S: coreutils >= 8.30; measured in bench `scale`,
// 1,000 real servers under HTTP_GET every 1 s; bench/RESULTS.md):
// - --max-semi-space-size=1 caps the young generation at 3 x 1 MiB: the daemon's main thread
//   allocates little once started, and V8 otherwise grows the young generation to 3 x 16 MiB after
//   start-up's bursts and keeps it (~30 MiB of RSS).
// - --heap-growing-percent=20: after each full GC, V8 lets a heap grow by 20 % over what was
//   live (and at least its minimum step; its default factor goes up to 4 x): ~20 MiB of RSS
//   across the main thread and the proxy worker, no CPU cost measured (paired runs). --optimize-for-size saves ~4 MiB more
//   but costs V8's helper threads ~0.3-0.5 % of a core here; --no-opt / --lite-mode ~10 MiB more
//   but cost the event loop CPU: not used.
// - MALLOC_ARENA_MAX=2: glibc otherwise gives each thread that mallocs its own arena (main, V8's
//   helpers, the libuv pool, the check engine, the proxy worker: 8 here), and start-up's transient
//   allocations stay behind in them as free but resident memory (~6 MiB).
// V8 flags and glibc's arena limit cannot be set once node runs, hence the shebang; tests start the
// daemon with the same arguments and environment (test/lib/daemon.ts cliNodeArgs, cliNodeEnv).
// Started another way (`node dist/src/cli/main.js run`), give node the same: see
// conf/keepalive-ts.service.
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { controlRequest, DEFAULT_CONTROL_SOCKET } from './control-client.js';
import { formatOverride, formatStatus } from './format-status.js';
import { endpointText, parseEndpointText, parseServiceArg } from '../util/endpoint.js';
import { KeepaliveError, errorMessage, isKeepaliveError } from '../util/errors.js';
import { LOG_LEVELS } from '../util/log.js';

const pkg = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../../package.json'), 'utf8')) as { version: string };

/** Where `run`, `check` and `reload` look for the config without --config. */
const DEFAULT_CONFIG = '/etc/keepalive-ts/keepalive.toml';

/** Exit statuses (documented in --help and docs/operations.md). */
const EXIT = { ok: 0, error: 1, privilege: 4 } as const;

const EXIT_HELP = `
Exit status:
  0  success
  1  error: invalid config, host problem found by check, refused reload,
     daemon unreachable, bad arguments, unknown virtual or real server
  4  (run) CAP_NET_ADMIN or CAP_NET_RAW missing`;

function fail(err: unknown): never {
  process.stderr.write(`keepalive-ts: ${errorMessage(err)}\n`);
  process.exit(isKeepaliveError(err, 'E_PRIVILEGE') ? EXIT.privilege : EXIT.error);
}

/**
 * The control socket to talk to: --control-socket, else global.control_socket of the --config file,
 * else $KEEPALIVE_TS_CONTROL_SOCKET, else global.control_socket of the default config file when it
 * exists, else the built-in default. Only the TOML is read, not validated: `reload` must still
 * reach the daemon when the file it is about to reload has a mistake (the daemon then refuses it).
 */
async function controlPath(opts: { controlSocket?: string; config?: string }): Promise<string> {
  if (opts.controlSocket !== undefined) return opts.controlSocket;
  if (opts.config !== undefined) return (await socketOfConfig(opts.config, true))!;
  const env = process.env.KEEPALIVE_TS_CONTROL_SOCKET;
  if (env) return env;
  return (await socketOfConfig(DEFAULT_CONFIG, false)) ?? DEFAULT_CONTROL_SOCKET;
}

async function socketOfConfig(file: string, required: boolean): Promise<string | undefined> {
  const { parseToml } = await import('../config/toml-source.js');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (!required) return undefined;
    throw new KeepaliveError('E_CONFIG_READ', `cannot read config ${file} (to find its control_socket): ${errorMessage(err)}`, { cause: err });
  }
  let data: Record<string, unknown>;
  try {
    data = parseToml(text, file).data;
  } catch (err) {
    if (!required) return undefined;
    throw err;
  }
  const global = data.global as { control_socket?: unknown } | undefined;
  return typeof global?.control_socket === 'string' ? global.control_socket : DEFAULT_CONTROL_SOCKET;
}

function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n${EXIT_HELP}\n`;
}

const SOCKET_HELP = 'daemon control socket (default: global.control_socket of --config, else $KEEPALIVE_TS_CONTROL_SOCKET, ' +
  `else global.control_socket of ${DEFAULT_CONFIG}, else ${DEFAULT_CONTROL_SOCKET})`;

const program = new Command();
program.name('keepalive-ts').description('VRRP and L4 virtual-server manager for a pair of load-balancer directors').version(pkg.version)
  .addHelpText('after', examples([
    'keepalive-ts check                      # validate /etc/keepalive-ts/keepalive.toml on this host',
    'keepalive-ts run --log-format pretty    # run in the foreground',
    'keepalive-ts status                     # VRRP instances and virtual servers',
    'keepalive-ts reload                     # apply the edited config file',
    'keepalive-ts drain 10.0.0.50:80 10.0.0.21:80   # maintenance: no new connections to web1',
    'keepalive-ts enable 10.0.0.50:80 10.0.0.21:80  # back to its configured weight',
  ]));

program.command('run')
  .description('run the daemon in the foreground')
  .option('--config <file>', 'TOML config file', DEFAULT_CONFIG)
  .option('--control-socket <path>', 'unix socket for reload/status (overrides global.control_socket)')
  .option('--pid-file <path>', 'write the daemon pid here (overrides global.pid_file)')
  .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS as string[]).default('info'))
  .addOption(new Option('--log-format <format>', 'log format').choices(['json', 'pretty']).default('json'))
  .addHelpText('after', examples([
    'keepalive-ts run',
    'keepalive-ts run --config /etc/keepalive-ts/lb1.toml --log-format pretty --log-level debug',
    'SIGTERM/SIGINT stop gracefully (priority-0 advert, drain), SIGHUP reloads.',
  ]))
  .action(async (opts: { config: string; controlSocket?: string; pidFile?: string; logLevel: string; logFormat: string }) => {
    const { runDaemon } = await import('../daemon/run.js');
    await runDaemon(opts).catch(fail);
  });

program.command('check')
  .description('validate a config file and what running it on this host needs (scripts, users, key files, interfaces); exit 0 if it would run, 1 with every problem listed if not')
  .option('--config <file>', 'TOML config file', DEFAULT_CONFIG)
  .option('--strict', 'treat warnings (interfaces missing on this host) as errors')
  .option('--no-host-checks', 'validate the file only, not this host (for a config meant for another machine)')
  .addHelpText('after', examples([
    'keepalive-ts check',
    'keepalive-ts check --config lb1.toml --strict      # on the director itself: a missing interface fails too',
    'keepalive-ts check --config lb1.toml --no-host-checks   # in CI, away from the director',
  ]))
  .action(async (opts: { config: string; strict?: boolean; hostChecks: boolean }) => {
    const { loadConfigSource, describeConfig } = await import('../config/index.js');
    const { runHostChecks, formatHostIssue } = await import('../config/host-checks.js');
    try {
      const source = await loadConfigSource(opts.config);
      const issues = opts.hostChecks ? runHostChecks(source, { strict: opts.strict ?? false }) : [];
      const errors = issues.filter((i) => i.severity === 'error');
      for (const i of issues) process.stderr.write(`${formatHostIssue(i)}\n`);
      if (errors.length > 0) {
        process.stderr.write(`keepalive-ts: ${opts.config}: ${errors.length} problem${errors.length === 1 ? '' : 's'} would stop or break \`run\` on this host\n`);
        process.exit(EXIT.error);
      }
      const warned = issues.length > 0 ? `, ${issues.length} warning${issues.length === 1 ? '' : 's'}` : '';
      process.stdout.write(`${opts.config}: OK (${describeConfig(source.config)})${warned}\n`);
    } catch (err) {
      fail(err);
    }
  });

program.command('reload')
  .description('ask the running daemon to reload its config file')
  .option('--config <file>', 'the daemon\'s config file: its global.control_socket is the socket to use')
  .option('--control-socket <path>', SOCKET_HELP)
  .addHelpText('after', examples([
    'keepalive-ts reload',
    'keepalive-ts reload --config /etc/keepalive-ts/lb1.toml',
    'keepalive-ts reload --control-socket /run/keepalive-ts/lb1.sock',
  ]))
  .action(async (opts: { controlSocket?: string; config?: string }) => {
    const reply = await controlRequest(await controlPath(opts).catch(fail), 'reload').catch(fail);
    if (!reply.ok) fail(reply.error.message);
    const r = reply.result as { summary?: string[] };
    process.stdout.write(`reloaded${r.summary?.length ? `:\n  ${r.summary.join('\n  ')}` : ' (no changes)'}\n`);
  });

program.command('status')
  .description('show VRRP instances and virtual servers of the running daemon (the virtual servers as ipvsadm -L -n lays them out)')
  .option('--json', 'print JSON (everything, whatever the other options)')
  .option('--stats', 'counters, as ipvsadm -L -n --stats: Conns InPkts OutPkts InBytes OutBytes')
  .option('--rate', 'rates, as ipvsadm -L -n --rate: CPS InPPS OutPPS InBPS OutBPS (2 s moving average, like the kernel\'s estimator)')
  .option('--exact', 'numbers in full, not in K/M/G (ipvsadm --exact)')
  .option('--config <file>', 'the daemon\'s config file: its global.control_socket is the socket to use')
  .option('--control-socket <path>', SOCKET_HELP)
  .addHelpText('after', examples([
    'keepalive-ts status',
    'keepalive-ts status --stats --exact',
    'keepalive-ts status --rate',
    'keepalive-ts status --json | jq \'.vrrp[] | {name, state}\'',
    'keepalive-ts status --config /etc/keepalive-ts/lb1.toml',
  ]))
  .action(async (opts: { json?: boolean; stats?: boolean; rate?: boolean; exact?: boolean; controlSocket?: string; config?: string }) => {
    if (opts.stats && opts.rate) fail(new KeepaliveError('E_USAGE', '--stats and --rate are exclusive (as in ipvsadm)'));
    const reply = await controlRequest(await controlPath(opts).catch(fail), 'status').catch(fail);
    if (!reply.ok) fail(reply.error.message);
    process.stdout.write(opts.json ? `${JSON.stringify(reply.result, null, 2)}\n`
      : formatStatus(reply.result as never, { format: opts.stats ? 'stats' : opts.rate ? 'rate' : 'list', exact: opts.exact ?? false }));
  });

/**
 * keepalive-ts weight / drain / disable / enable: arguments are checked here (a clear usage error
 * before the daemon is asked), the daemon checks them again and answers once the data plane has
 * the new pool.
 */
function overrideCommand(action: 'weight' | 'drain' | 'disable' | 'enable', description: string, lines: string[]): void {
  const cmd = program.command(action)
    .description(description)
    .argument('<vs>', 'virtual server: ADDR:PORT (TCP), udp:ADDR:PORT, fwmark:N (fwmark6:N for IPv6); IPv6 in brackets, [fd00::50]:80')
    .argument('<rs>', 'real server: ADDR:PORT (ADDR alone for a real server without a port of its own)');
  if (action === 'weight') cmd.argument('<n>', 'weight, an integer 0..2147483647');
  cmd.option('--json', 'print the daemon\'s reply as JSON')
    .option('--config <file>', 'the daemon\'s config file: its global.control_socket is the socket to use')
    .option('--control-socket <path>', SOCKET_HELP)
    .addHelpText('after', examples([...lines,
      'Applied on this director only (run it on each director that may serve), kept across',
      'reload, lost on restart; status shows the override, `enable` clears it.']))
    .action(async (...argv: unknown[]) => {
      const [vsText, rsText] = argv as [string, string];
      const weightText = action === 'weight' ? (argv[2] as string) : undefined;
      const opts = argv[action === 'weight' ? 3 : 2] as { json?: boolean; controlSocket?: string; config?: string };
      const key = parseServiceArg(vsText);
      if (key === null) fail(new KeepaliveError('E_USAGE', `not a virtual server: ${JSON.stringify(vsText)} (ADDR:PORT for TCP, udp:ADDR:PORT, fwmark:N; IPv6 in brackets, e.g. [fd00::50]:80)`));
      const rs = parseEndpointText(rsText, true);
      if (rs === null) fail(new KeepaliveError('E_USAGE', `not a real server: ${JSON.stringify(rsText)} (ADDR:PORT; IPv6 in brackets, e.g. [fd00::21]:80)`));
      let weight: number | undefined;
      if (weightText !== undefined) {
        weight = /^\d{1,10}$/.test(weightText) ? Number(weightText) : NaN;
        if (!(weight <= 2147483647)) fail(new KeepaliveError('E_USAGE', `weight must be an integer 0..2147483647, got ${JSON.stringify(weightText)}`));
      }
      const reply = await controlRequest(await controlPath(opts).catch(fail), action, {
        virtual_server: key, real_server: endpointText(rs), ...(weight !== undefined ? { weight } : {}),
      }).catch(fail);
      if (!reply.ok) fail(reply.error.message);
      process.stdout.write(opts.json ? `${JSON.stringify(reply.result, null, 2)}\n` : formatOverride(reply.result as never));
    });
}

overrideCommand('weight', 'set the weight of a real server at run time (this director only, until enable or restart)', [
  'keepalive-ts weight 10.0.0.50:80 10.0.0.21:80 5',
  'keepalive-ts weight udp:[fd00::50]:53 [fd00::21]:53 2',
]);
overrideCommand('drain', 'weight 0 at run time: no new connections to the real server, established ones finish (maintenance)', [
  'keepalive-ts drain 10.0.0.50:80 10.0.0.21:80',
  'keepalive-ts status --json | jq \'.virtual_servers[].real_servers[] | {address, active_conns}\'   # wait for 0',
]);
overrideCommand('disable', 'take a real server out of the pool at once, as if it had failed its checks (PyBal depool, HAProxy maint)', [
  'keepalive-ts disable 10.0.0.50:80 10.0.0.21:80',
  'keepalive-ts disable fwmark:1 10.0.0.21',
]);
overrideCommand('enable', 'clear the run-time override of a real server: back to its configured weight (with slow start if configured)', [
  'keepalive-ts enable 10.0.0.50:80 10.0.0.21:80',
]);

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
