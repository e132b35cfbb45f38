/**
 * The process-wide monotonic clock in milliseconds (CLOCK_MONOTONIC through process.hrtime).
 * Unlike `performance.now()`, whose origin is per thread, the same value in every worker thread of
 * the process: a time taken in the proxy's worker can be compared with one taken on the main thread.
 * Unaffected by wall-clock steps (NTP, date -s).
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
