// Timings measured in the namespace labs, asserted as the order of events with bounds that hold
// while other labs run beside them (2 shared cores, ava concurrency 2, several labs per file).
// Every measured value goes to t.log; exact figures belong to `npm run bench` (bench/failover.ts,
// bench/jitter.ts), never to a tight assert — a test that fails one run in three blocks everyone.
import type { ExecutionContext } from 'ava';

/**
 * What a loaded machine may add to an event that is due at a known time: the daemon's event loop,
 * netlink, `ip monitor` and the test's own polling all wait for a core. Two seconds held in every
 * run seen, with the full suite and other work beside it (the largest delay seen was well under
 * half of that).
 */
export const LOAD_SLACK_MS = 2_000;

/** Wall-clock readings from different processes (Date.now, `ip -ts`) agree to about a millisecond. */
const CLOCK_MS = 5;

export interface VrrpTimes {
  /** Skew_Time of the backup that takes over (src/vrrp/timing.ts skewTimeMs). */
  skewMs: number;
  /** Master_Down_Interval of that backup (masterDownIntervalMs). */
  mdiMs: number;
  /** The master's advertisement interval. */
  advertMs: number;
}

/**
 * After a graceful stop the master sends priority 0 and the backup takes over after Skew_Time
 * (RFC 5798 6.4.2): not before it, and sooner than any takeover by silence could happen (that
 * needs Master_Down_Interval after the last advert, at least MDI - advert_int after the stop).
 * `tookMs`: from just before the stop signal to the VIP's appearance on the backup.
 */
export function assertGracefulTakeover(t: ExecutionContext, tookMs: number, v: VrrpTimes, what = 'takeover after SIGTERM'): void {
  const silence = v.mdiMs - v.advertMs;
  t.log(`${what}: ${tookMs} ms (Skew_Time ${v.skewMs} ms; a takeover by silence would take >= ${silence} ms)`);
  t.true(tookMs >= v.skewMs - CLOCK_MS, `${what} after ${tookMs} ms: sooner than Skew_Time ${v.skewMs} ms`);
  t.true(tookMs < silence, `${what} after ${tookMs} ms: not sooner than a takeover by silence (${silence} ms): was the priority-0 advert ignored?`);
}

/**
 * After a crash (no priority-0 advert) the backup takes over once Master_Down_Interval has passed
 * since the last advert it heard. That advert came at most one interval before the crash, or a
 * bit more when the master's adverts were late under load: the takeover comes no sooner than
 * MDI - 2 x advert_int (it waited for silence) and no later than MDI + LOAD_SLACK_MS.
 * `tookMs`: from just before the crash to the VIP's appearance (or the state change) on the backup.
 */
export function assertCrashTakeover(t: ExecutionContext, tookMs: number, v: Omit<VrrpTimes, 'skewMs'>, what = 'takeover after crash'): void {
  const earliest = v.mdiMs - 2 * v.advertMs;
  const latest = v.mdiMs + LOAD_SLACK_MS;
  t.log(`${what}: ${tookMs} ms (Master_Down_Interval ${v.mdiMs} ms; asserted ${earliest}..${latest} ms)`);
  t.true(tookMs >= earliest, `${what} after ${tookMs} ms: sooner than MDI - 2 x advert_int (${earliest} ms): it did not wait for silence`);
  t.true(tookMs <= latest, `${what} after ${tookMs} ms: later than MDI + ${LOAD_SLACK_MS} ms (${latest} ms)`);
}

/** An event due within `boundMs` by configuration: asserted within boundMs + LOAD_SLACK_MS. */
export function assertWithinBound(t: ExecutionContext, tookMs: number, boundMs: number, what: string): void {
  t.log(`${what}: ${tookMs} ms (configured bound ${boundMs} ms, asserted <= ${boundMs + LOAD_SLACK_MS} ms)`);
  t.true(tookMs <= boundMs + LOAD_SLACK_MS, `${what} after ${tookMs} ms > ${boundMs} + ${LOAD_SLACK_MS} ms`);
}
