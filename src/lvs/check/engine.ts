/**
 * The checkers' side of the native check engine (native/check_engine.c, wrapped by CheckEngine in
 * src/net/native.ts): TCP_CHECK and HTTP_GET attempts run there, off the daemon's event loop, with
 * the attempt's deadline kept by the engine. No timer, AbortController, socket or closure per
 * attempt on this side: one Promise, and one abort listener per (checker, signal) pair. (With
 * the native schedule, src/lvs/health.ts, not even that: the engine starts the attempts itself.)
 */
import { constants as osConstants } from 'node:os';
import { CHECK_IO, CheckEngine, type CheckSpecHandle } from '../../net/native.js';
import { parseIp } from '../../util/inet.js';
import { ABORTED, type CheckResult, type CheckTarget } from './types.js';

export { CHECK_IO };

/** Maps a finished attempt to the checker's result (code 0 = the exchange completed). */
export type Judge = (code: number, status: number, body: Buffer | undefined, head: Buffer | undefined, truncated: boolean) => CheckResult;

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** 'ECONNREFUSED' for 111; 'errno N' for numbers the platform has no name for. */
export function errnoName(code: number): string {
  return ERRNO_NAMES.get(code) ?? `errno ${code}`;
}

/** Target / bind address bytes for the engine; throws TypeError on a bad address. */
export function addressBytes(address: string, family: CheckTarget['family']): Buffer {
  const b = parseIp(address, family);
  if (!b) throw new TypeError(`not an IPv${family} address: ${address}`);
  return b;
}

/**
 * The attempts of ONE checker. HealthRunner passes the same AbortSignal to every attempt, so the
 * abort listener is added once (and moved when a caller passes another signal).
 */
export class EngineAttempts {
  #signal: AbortSignal | undefined;
  /** #signal has fired (kept here: AbortSignal.aborted is a checked getter, read per attempt). */
  #aborted = false;
  readonly #inflight = new Set<number>();
  readonly #onAbort = (): void => {
    this.#aborted = true;
    const engine = CheckEngine.get();
    for (const token of this.#inflight) engine.abort(token);
  };

  constructor(private readonly spec: CheckSpecHandle) {}

  /** One attempt: `judge` maps its outcome; an abort by `signal` always gives ABORTED. */
  run(signal: AbortSignal, judge: Judge): Promise<CheckResult> {
    if (signal !== this.#signal) {
      this.#signal?.removeEventListener('abort', this.#onAbort);
      this.#signal = signal;
      this.#aborted = signal.aborted;
      signal.addEventListener('abort', this.#onAbort);
    }
    if (this.#aborted) return Promise.resolve(ABORTED);
    return new Promise<CheckResult>((resolve) => {
      const token = CheckEngine.get().start(this.spec, (code, status, body, head, truncated) => {
        this.#inflight.delete(token);
        resolve(code === CHECK_IO.ABORTED || (this.#aborted && this.#signal === signal) ? ABORTED : judge(code, status, body, head, truncated));
      });
      this.#inflight.add(token);
    });
  }
}
