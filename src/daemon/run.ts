import { KeepaliveError } from '../util/errors.js';
import { privilegeProblem } from '../util/caps.js';
import { createLogger, type LogFormat } from '../util/log.js';
import type { LevelWithSilent } from 'pino';
import { Daemon } from './daemon.js';

export interface RunOptions {
  config: string;
  controlSocket?: string;
  pidFile?: string;
  logLevel: string;
  logFormat: string;
}

/** `keepalive-ts run`: privileges, logger, daemon, signals. Resolves when the daemon has stopped. */
export async function runDaemon(opts: RunOptions): Promise<void> {
  const problem = privilegeProblem();
  if (problem) throw new KeepaliveError('E_PRIVILEGE', problem);
  const log = createLogger({ level: opts.logLevel as LevelWithSilent, format: opts.logFormat as LogFormat });
  const daemon = await Daemon.start({ configPath: opts.config, controlSocket: opts.controlSocket, pidFile: opts.pidFile, log });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      void daemon.stop().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      daemon.reload().then(
        (r) => log.info({ changes: r.summary }, 'reloaded on SIGHUP'),
        (err: unknown) => log.error({ err: (err as Error).message }, 'reload on SIGHUP failed; running config kept'),
      );
    });
  });
  process.exit(0);
}
