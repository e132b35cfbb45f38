/**
 * VRRP timers: Skew_Time and Master_Down_Interval for VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798).
 *
 * Units. keepalived computes every timer in integer microseconds (TIMER_HZ = 1e6) with C unsigned
 * integer division, so we do the same and only convert at the edge. The state machine's clock is in
 * milliseconds; the `...Ms` helpers return the exact microsecond value divided by 1000, which may be
 * fractional (e.g. v2 priority 100: Skew_Time = 609375 us = 609.375 ms). Keeping the microsecond
 * precision matters: two backups whose priorities differ by one have skews only ~3.9 ms apart (or
 * ~39 us apart with a 10 ms v3 interval), and rounding to whole ms would make them fire together.
 *
 * The formulas follow keepalived 2.2 (vrrp.h):
 *   v2: skew = (256 - prio) * TIMER_HZ / 256                       (independent of the interval)
 *   v3: skew = ((256 - prio) * (master_adver_int / TIMER_CENTI_HZ) * 625) / 16
 *       (625/16 == TIMER_CENTI_HZ/256; keepalived reorders the product to avoid uint32 overflow,
 *        the result equals the RFC's ((256 - prio) * Master_Adver_Interval) / 256 cs, floored in us)
 *   MDI = down_timer_adverts * master_adver_int + skew              (down_timer_adverts defaults to 3)
 * and keepalived uses the *effective* priority (after tracking) in the skew.
 */
import type { VrrpVersion } from './types.js';

export const US_PER_MS = 1000;
export const US_PER_CS = 10_000;
/** RFC 5798/3768: Master_Down_Interval is three advertisement intervals plus the skew. */
export const DEFAULT_DOWN_TIMER_ADVERTS = 3;

/** Advertisement interval in integer microseconds. */
export function advertIntervalUs(advertIntCs: number): number {
  return advertIntCs * US_PER_CS;
}

/** keepalived's VRRP_TIMER_SKEW_CALC: `factor` is (256 - priority) for the skew, 1 for the minimum skew. */
function skewCalcUs(version: VrrpVersion, factor: number, masterAdverIntCs: number): number {
  if (version === 3) return Math.floor((factor * masterAdverIntCs * 625) / 16);
  return Math.floor((factor * 1_000_000) / 256);
}

/** Skew_Time in integer microseconds. `masterAdverIntCs` is ignored for v2 (the RFC 3768 skew is in whole seconds/256). */
export function skewTimeUs(version: VrrpVersion, priority: number, masterAdverIntCs: number): number {
  return skewCalcUs(version, 256 - priority, masterAdverIntCs);
}

/**
 * keepalived's VRRP_TIMER_SKEW_MIN: the skew of a priority-255 router. Used for the startup timer of an
 * instance configured `state MASTER` that is not the address owner (see startupMasterDownUs).
 */
export function skewTimeMinUs(version: VrrpVersion, masterAdverIntCs: number): number {
  return skewCalcUs(version, 1, masterAdverIntCs);
}

/** Master_Down_Interval in integer microseconds. */
export function masterDownIntervalUs(
  version: VrrpVersion,
  priority: number,
  masterAdverIntCs: number,
  downTimerAdverts: number = DEFAULT_DOWN_TIMER_ADVERTS,
): number {
  return downTimerAdverts * advertIntervalUs(masterAdverIntCs) + skewTimeUs(version, priority, masterAdverIntCs);
}

/**
 * Startup down timer of a non-owner configured with `state MASTER` (keepalived vrrp_init_state):
 * master_adver_int + VRRP_TIMER_SKEW_MIN. Such an instance starts in BACKUP but claims mastership after
 * roughly one interval instead of three unless it hears a master of equal or higher priority.
 */
export function startupMasterDownUs(version: VrrpVersion, advertIntCs: number): number {
  return advertIntervalUs(advertIntCs) + skewTimeMinUs(version, advertIntCs);
}

export function usToMs(us: number): number {
  return us / US_PER_MS;
}

export function advertIntervalMs(advertIntCs: number): number {
  return usToMs(advertIntervalUs(advertIntCs));
}

export function skewTimeMs(version: VrrpVersion, priority: number, masterAdverIntCs: number): number {
  return usToMs(skewTimeUs(version, priority, masterAdverIntCs));
}

export function masterDownIntervalMs(
  version: VrrpVersion,
  priority: number,
  masterAdverIntCs: number,
  downTimerAdverts: number = DEFAULT_DOWN_TIMER_ADVERTS,
): number {
  return usToMs(masterDownIntervalUs(version, priority, masterAdverIntCs, downTimerAdverts));
}

export function startupMasterDownMs(version: VrrpVersion, advertIntCs: number): number {
  return usToMs(startupMasterDownUs(version, advertIntCs));
}
