/**
 * TCP_CHECK (keepalived check_tcp.c): success = the TCP connection is established within
 * connect_timeout (from bind_to when set); the connection is then closed at once. A refused
 * connection fails immediately; a connect that never completes fails at connect_timeout.
 * The attempt runs on the native check engine (./engine.ts).
 */
import type { TcpCheck } from '../../config/types.js';
import { CheckEngine, type CheckSpecHandle } from '../../net/native.js';
import { CHECK_IO, EngineAttempts, addressBytes, errnoName } from './engine.js';
import { formatTarget, localFailure, timeoutMs, type CheckResult, type Checker, type CheckTarget } from './types.js';

export function createTcpChecker(cfg: TcpCheck, target: CheckTarget): Checker {
  const ms = timeoutMs(cfg.connect_timeout);
  const where = formatTarget(target);
  const connected: CheckResult = Object.freeze({ ok: true, detail: `connected to ${where}` });
  const timedOut: CheckResult = Object.freeze({ ok: false, detail: `timeout after ${ms} ms` });
  let attempts: EngineAttempts | undefined;
  let handle: CheckSpecHandle | undefined;
  let badSpec: CheckResult | undefined;
  try {
    attempts = new EngineAttempts(handle = CheckEngine.get().spec({
      addr: addressBytes(target.address, target.family),
      port: target.port,
      bindAddr: cfg.bind_to ? addressBytes(cfg.bind_to, target.family) : null,
      request: null,
      wantBody: false,
      wantHead: false,
      maxBody: 0,
      timeoutMs: ms,
      bodyStatuses: null,
    }));
  } catch (err) {
    badSpec = Object.freeze({ ok: false, detail: `connect to ${where}: ${(err as Error).message}` });
  }
  const judge = (code: number): CheckResult => {
    if (code === 0) return connected;
    if (code === CHECK_IO.TIMEOUT) return timedOut;
    const name = code > 0 ? errnoName(code) : undefined;
    // Out of descriptors here is no verdict on the server: unknown (types.ts localFailure).
    return localFailure(name, `connect to ${where}: ${name ?? `error ${code}`}`);
  };
  return {
    type: 'TCP_CHECK',
    run: (signal) => (attempts ? attempts.run(signal, judge) : Promise.resolve(badSpec!)),
    ...(handle ? { native: { spec: handle, okStatuses: null, judge } } : {}),
  };
}
