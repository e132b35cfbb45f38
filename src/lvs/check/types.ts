/**
 * The health-checker interface, one implementation per file (keepalived check/check_*.c style).
 *
 * A Checker performs ONE attempt of its check. Scheduling (delay_loop, warmup), retries
 * (retry, delay_before_retry) and the up/down state live in src/lvs/health.ts, so a checker
 * is a pure "go and look once" function with its own deadline. (A checker that offers `native`
 * may have health.ts hand its schedule to the check engine; the steps and the state stay there.)
 *
 * Contract of `run(signal)`:
 * - honours connect_timeout itself (every network checker bounds its whole attempt by it);
 * - never rejects: every failure, including an abort, is `{ ok: false, detail }`;
 * - releases every socket / timer / child it created before the promise settles, except a
 *   MISC_CHECK child still running at abort (see misc.ts).
 */
import { endpointText } from '../../util/endpoint.js';
import type { Socket as DgramSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import type { CheckConfig, CheckType } from '../../config/types.js';
import type { ScriptRunner } from '../../util/script.js';
import type { CheckSpecHandle } from '../../net/native.js';

export type { CheckConfig, CheckType };

/** Where a checker connects: connect_ip / connect_port, already resolved by the config loader. */
export interface CheckTarget {
  address: string;
  port: number;
  family: 4 | 6;
}

export interface CheckResult {
  ok: boolean;
  /** Why, for logs ("connected", "status 503 not in [200]", "exit 1", ...). */
  detail: string;
  /**
   * MISC_CHECK with misc_dynamic only: the absolute weight asked for (exit status - 2).
   * Absent when the weight is to stay unchanged (exit 0, keepalived semantics).
   */
  weight?: number;
  /**
   * FILE_CHECK with a non-zero weight only: file value x weight, added to the real server's
   * configured weight while the checker is up (keepalived track_file for real servers).
   */
  weightOffset?: number;
  /**
   * The attempt could not be made, so it says nothing about the server: this director ran out of
   * descriptors (EMFILE/ENFILE) or the MISC_CHECK script was refused by script security. `ok` is
   * false, but the runner neither counts it as a failure nor marks the server down: the checker is
   * 'unknown' until an attempt gives a real answer (the pool keeps the server's previous state).
   */
  unknown?: boolean;
}

/** errno codes meaning "this director is out of resources", not "the real server failed". */
export const LOCAL_RESOURCE_ERRORS: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE']);

/** Marks a failed result as unknown when its cause was local descriptor exhaustion. */
export function localFailure(code: string | undefined, detail: string): CheckResult {
  return code !== undefined && LOCAL_RESOURCE_ERRORS.has(code)
    ? { ok: false, unknown: true, detail: `${detail} (no descriptor left on this director: result unknown)` }
    : { ok: false, detail };
}

export interface Checker {
  readonly type: CheckType;
  /** One attempt. Honours connect_timeout, never rejects. */
  run(signal: AbortSignal): Promise<CheckResult>;
  /**
   * Set when an attempt is one exchange of the native check engine whose verdict needs no body
   * (TCP_CHECK, HTTP_GET without digest / regex): the runner may hand the whole schedule to the
   * engine (src/lvs/health.ts, native schedule). `judge` gives the same result `run` would.
   */
  readonly native?: NativeCheck;
}

/** The engine's view of a checker (see Checker.native). */
export interface NativeCheck {
  spec: CheckSpecHandle;
  /** The statuses that pass (1000-bit map); null: the exchange completing passes. */
  okStatuses: Buffer | null;
  /** The result of an attempt that ended with `code` (0 / errno / CHECK_IO.*) and `status`. */
  judge(code: number, status: number): CheckResult;
}

/** Options for tests and embedding; all optional. */
export interface CheckerOptions {
  /** SSL_GET with verify = true: trusted CA certificate(s) instead of Node's bundled roots. */
  tlsCa?: string | Buffer | Array<string | Buffer>;
  /** HTTP_GET / SSL_GET: most body bytes read for digest / regex (default 1 MiB). */
  maxBodyBytes?: number;
  /** DNS_CHECK query ids: uniform [0, 1). Default Math.random. */
  random?: () => number;
  /** MISC_CHECK: runs the script (user resolution, script security). Default: a runner with the default policy. */
  scripts?: ScriptRunner;
}

export type CheckerFactory = (cfg: CheckConfig, target: CheckTarget, opts?: CheckerOptions) => Checker;

/** A result for an attempt that was aborted before it finished. */
export const ABORTED: CheckResult = Object.freeze({ ok: false, detail: 'aborted' });

/** connect_timeout (seconds, may be fractional) as milliseconds, at least 1. */
export function timeoutMs(seconds: number): number {
  return Math.max(1, Math.round(seconds * 1000));
}

/** "addr:port" / "[v6addr]:port" for details. */
export function formatTarget(t: CheckTarget): string {
  return endpointText(t);
}

/**
 * Runs `body` with an AbortSignal that fires on the caller's abort or after `ms`, and maps
 * whatever happens to a CheckResult: the caller's abort always gives ABORTED, a failure
 * (rejection or not-ok result) after the deadline gives "timeout after N ms". `body` must
 * settle once its signal fires (rejecting is fine).
 */
export async function withDeadline(
  outer: AbortSignal,
  ms: number,
  body: (signal: AbortSignal) => Promise<CheckResult>,
): Promise<CheckResult> {
  if (outer.aborted) return ABORTED;
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, ms);
  const onAbort = (): void => ctl.abort();
  outer.addEventListener('abort', onAbort, { once: true });
  let result: CheckResult;
  try {
    result = await body(ctl.signal);
  } catch (err) {
    result = { ok: false, detail: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
    outer.removeEventListener('abort', onAbort);
  }
  if (outer.aborted) return ABORTED;
  if (timedOut && !result.ok) return { ok: false, detail: `timeout after ${ms} ms` };
  return result;
}

/**
 * Resolves with `work`'s value, or with `onAbort` as soon as `signal` fires (whichever is
 * first). The abort listener is removed when `work` settles, so a long-lived signal does
 * not collect listeners.
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal, onAbort: T): Promise<T> {
  if (signal.aborted) return Promise.resolve(onAbort);
  return new Promise<T>((resolve, reject) => {
    const listener = (): void => resolve(onAbort);
    signal.addEventListener('abort', listener, { once: true });
    work.then(
      (v) => { signal.removeEventListener('abort', listener); resolve(v); },
      (e: unknown) => { signal.removeEventListener('abort', listener); reject(e); },
    );
  });
}

/**
 * The UDP-based checkers' exchange start: bind to `bindTo` if set, connect the socket to the
 * target (so ICMP errors surface as socket errors) and send one datagram. `settled` stops it when
 * the attempt already ended; `fail` gets a send error's text.
 */
export function sendConnected(
  sock: DgramSocket,
  target: CheckTarget,
  bindTo: string | undefined,
  datagram: Buffer,
  settled: () => boolean,
  fail: (detail: string, code?: string) => void,
): void {
  const where = formatTarget(target);
  const go = (): void => {
    if (settled()) return;
    sock.connect(target.port, target.address, () => {
      if (settled()) return;
      sock.send(datagram, (err) => {
        if (err) fail(`send to ${where}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, (err as NodeJS.ErrnoException).code);
      });
    });
  };
  if (bindTo) sock.bind({ port: 0, address: bindTo }, go);
  else go();
}

/** A TCP connection to the target, from `bindTo` when set (TCP_CHECK, SMTP_CHECK). */
export function connectTarget(target: CheckTarget, bindTo: string | undefined): Socket {
  return connect({
    host: target.address,
    port: target.port,
    family: target.family,
    ...(bindTo ? { localAddress: bindTo } : {}),
  });
}
