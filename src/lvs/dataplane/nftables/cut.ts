// The cut window of a service's VIP:port input guard (ruleset.ts g_vipin), as pure steps.
//
// Every TCP address/port service owns VIP:port on local input: a packet of an established
// connection that reaches this director's own stack is dropped (the client resends it), never
// answered with a reset. That covers the takeover gap between a VIP add and the serve transaction.
// When a drain ends, the guard is lifted for CUT_WINDOW_MS: connections still talking to an
// address that stays local here are reset by the local stack, as IPVS does when a service goes.
//
// A takeover of the address ends that window (claim): this director is about to make the VIP
// local again as the MASTER, so its clients' connections are the ones it must keep, not cut. The
// claim lands before the VIP add (the VRRP manager's beforeVips hook, bounded wait), and a drain
// still running when the address is claimed ends without a window. docs/hitless.md "The cut
// window and a takeover".
import { canonicalAddress, type ServiceMatch } from '../../../util/endpoint.js';
import type { ServicePhase } from './ruleset.js';

/** How long after a drain ends a service's established connections are reset rather than held (ms). */
export const CUT_WINDOW_MS = 10_000;

/** The fields of a service's state the cut window depends on. */
export interface CutFields {
  readonly phase: ServicePhase;
  /** The guard is lifted until then (ms, the data plane's clock). */
  readonly cutUntil?: number;
  /** Its address is being taken over by this director (claimed, not served yet). */
  readonly claimed?: boolean;
}

/** Canonical texts of `addresses` (a text that is no address is kept as given). */
export function claimSet(addresses: readonly string[]): ReadonlySet<string> {
  return new Set(addresses.map((a) => canonicalAddress(a)?.address ?? a));
}

/** Whether a claim of `addresses` (claimSet) concerns a service with this match (fwmark services have no address). */
export function claimedBy(match: ServiceMatch, addresses: ReadonlySet<string>): boolean {
  return match.kind === 'addr' && addresses.has(match.address);
}

/**
 * What a claim changes in a service on a claimed address: its cut window ends and it is marked
 * claimed (a drain in progress then ends without a window). null: nothing to change — served, idle
 * with no window (nothing opens one before the next serve: a first takeover waits for nothing), or
 * claimed already with no window.
 */
export function claimStep(s: CutFields): { readonly claimed: true; readonly cutUntil: undefined } | null {
  if (s.phase === 'serving') return null;
  if (s.cutUntil === undefined && (s.phase === 'idle' || s.claimed === true)) return null;
  return { claimed: true, cutUntil: undefined };
}

/**
 * The end of a window opened when a drain ends (or an unserve without drain) at `now`: undefined
 * when there is none, because the connections live on at the peer (`keepsConnections`:
 * conntrackd) or the address is being taken over by this director (claimed).
 */
export function cutAfterDrain(s: CutFields, now: number, keepsConnections: boolean): number | undefined {
  if (keepsConnections || s.claimed === true) return undefined;
  return now + CUT_WINDOW_MS;
}
