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
    let stopping = false;
    // The first SIGTERM/SIGINT starts the graceful stop; any later one shortens it (no more waiting
    // for a peer, open connections closed now) but never skips the cleanup: VIPs, pid file and
    // control socket are still removed before the process exits.
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second stop signal: cutting the drain short; still removing VIPs and files');
        daemon.hurry();
        return;
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      void daemon.stop().then(resolve);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      daemon.reload().then(
        (r) => log.info({ changes: r.summary }, 'reloaded on SIGHUP'),
        (err: unknown) => log.error({ err: (err as Error).message }, 'reload on SIGHUP failed; running config kept'),
      );
    });
  });
  process.exit(0);
}
