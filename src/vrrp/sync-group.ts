/**
 * vrrp_sync_group: member instances move together (keepalived vrrp_sync.c), pure.
 *
 *  - one member in FAULT (for a reason of its own) puts every other member in FAULT: we inject a
 *    `fault` whose source is the group, so a member that leaves MASTER this way sends its priority-0
 *    advert and drops its VIPs like any faulting instance;
 *  - when no member is faulted for its own reasons any more, the group's fault source is cleared on
 *    every member and they come up together (BACKUP, or MASTER for an address owner);
 *  - a member becoming MASTER forces the others from BACKUP to MASTER;
 *  - a member leaving MASTER for BACKUP forces the other MASTERs to BACKUP.
 *
 * The shell calls `reconcileSyncGroup` after every step of a member (not only on transitions: a
 * member can gain a fault of its own while already held in FAULT by the group), with a snapshot of
 * all members, and applies the returned events in order. The result is idempotent: members already
 * where the group wants them get nothing, so feeding the resulting transitions back in settles.
 *
 * Not modelled: keepalived's vrrp_sync_can_goto_master refinement, where a member whose down timer
 * expires waits until every other member also wants MASTER ("prefer backup state to avoid
 * thrashing"). Here the first member to become MASTER takes the group with it.
 */
import type { VrrpEvent, VrrpState, VrrpStateName } from './state.js';

export interface SyncMember {
  id: string;
  state: VrrpStateName;
  /** The member's active fault sources (VrrpState.faults). */
  faults: readonly string[];
}

export interface SyncTransition {
  id: string;
  from: VrrpStateName;
  to: VrrpStateName;
}

export interface SyncInjection {
  id: string;
  event: VrrpEvent;
}

/** The fault source the group puts on its members. */
export function syncFaultSource(groupName: string): string {
  return `sync_group:${groupName}`;
}

export function syncMember(id: string, s: VrrpState): SyncMember {
  return { id, state: s.name, faults: s.faults };
}

/** Group state for group notify scripts: FAULT if any member is, MASTER/BACKUP if all agree, else null. */
export function groupState(members: readonly SyncMember[]): 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP' | null {
  // Every member shut down: the group is stopped (its notify_stop runs, as keepalived's does).
  if (members.length > 0 && members.every((m) => m.state === 'STOP')) return 'STOP';
  if (members.some((m) => m.state === 'FAULT')) return 'FAULT';
  if (members.length > 0 && members.every((m) => m.state === 'MASTER')) return 'MASTER';
  if (members.length > 0 && members.every((m) => m.state === 'BACKUP')) return 'BACKUP';
  return null;
}

/** Events to inject into members so the group stays consistent after `transition` (if any). */
export function reconcileSyncGroup(
  groupName: string,
  members: readonly SyncMember[],
  transition?: SyncTransition,
): SyncInjection[] {
  const source = syncFaultSource(groupName);
  // Stopped or not yet started members neither drive nor follow the group.
  const live = members.filter((m) => m.state !== 'STOP' && m.state !== 'INIT');
  const ownFault = live.some((m) => m.state === 'FAULT' && m.faults.some((f) => f !== source));

  if (ownFault) {
    // Every member gets the group's fault, the faulted ones too: then a member whose own fault clears
    // first stays in FAULT (held by the group) instead of briefly coming up and being pushed back.
    return live
      .filter((m) => !m.faults.includes(source))
      .map((m) => ({ id: m.id, event: { type: 'fault', source } }));
  }

  const out: SyncInjection[] = [];
  // State each member will be in once the injections so far are applied.
  const predicted = new Map<string, VrrpStateName>();
  for (const m of live) {
    predicted.set(m.id, m.state);
    if (m.faults.includes(source)) {
      out.push({ id: m.id, event: { type: 'fault_clear', source } });
      // Only the group's fault remains (no own fault here), so clearing it brings the member up.
      if (m.state === 'FAULT' && m.faults.length === 1) predicted.set(m.id, 'BACKUP');
    }
  }
  if (!transition) return out;
  for (const m of live) {
    if (m.id === transition.id) continue;
    const st = predicted.get(m.id);
    if (transition.to === 'MASTER' && st === 'BACKUP') out.push({ id: m.id, event: { type: 'force', to: 'MASTER' } });
    if (transition.from === 'MASTER' && transition.to === 'BACKUP' && st === 'MASTER')
      out.push({ id: m.id, event: { type: 'force', to: 'BACKUP' } });
  }
  return out;
}
