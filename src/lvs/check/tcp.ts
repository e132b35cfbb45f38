/**
 * TCP_CHECK (keepalived check_tcp.c): success = the TCP connection is established within
 * connect_timeout (from bind_to when set); the connection is then closed at once. A refused
 * connection fails immediately; a connect that never completes fails at connect_timeout.
 */
import type { TcpCheck } from '../../config/types.js';
import { connectTarget, formatTarget, localFailure, timeoutMs, withDeadline, type CheckResult, type Checker, type CheckTarget } from './types.js';

export function createTcpChecker(cfg: TcpCheck, target: CheckTarget): Checker {
  const ms = timeoutMs(cfg.connect_timeout);
  const where = formatTarget(target);
  return {
    type: 'TCP_CHECK',
    run: (signal) => withDeadline(signal, ms, (sig) => new Promise<CheckResult>((resolve) => {
      const sock = connectTarget(target, cfg.bind_to);
      const done = (r: CheckResult): void => {
        sig.removeEventListener('abort', onAbort);
        sock.destroy();
        resolve(r);
      };
      const onAbort = (): void => done({ ok: false, detail: `no connection to ${where}` });
      sig.addEventListener('abort', onAbort, { once: true });
      sock.once('connect', () => done({ ok: true, detail: `connected to ${where}` }));
      sock.once('error', (err: NodeJS.ErrnoException) => done(localFailure(err.code, `connect to ${where}: ${err.code ?? err.message}`)));
    })),
  };
}
