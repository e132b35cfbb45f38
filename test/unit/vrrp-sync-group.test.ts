import test from 'ava';
import { initialState, step, type VrrpEvent, type VrrpParams, type VrrpState } from '../../src/vrrp/state.js';
import {
  groupState,
  reconcileSyncGroup,
  syncFaultSource,
  syncMember,
  type SyncInjection,
  type SyncTransition,
} from '../../src/vrrp/sync-group.js';

const G = 'VG_1';
const SRC = syncFaultSource(G);

function params(vrid: number): VrrpParams {
  return { vrid, version: 2, priority: 100, advertIntCs: 100, preempt: true, preemptDelayMs: 0, primaryAddress: '10.0.0.2' };
}

/**
 * A tiny shell for a group of instances on one host: every step is followed by reconcileSyncGroup,
 * and the injected events are stepped in turn (their transitions reconciled too) until it settles.
 */
class Group {
  readonly members = new Map<string, VrrpState>();
  readonly log: Array<{ id: string; event: VrrpEvent }> = [];
  constructor(ids: string[]) {
    ids.forEach((id, i) => this.members.set(id, initialState(params(i + 1))));
  }

  snapshot() {
    return [...this.members].map(([id, s]) => syncMember(id, s));
  }

  send(id: string, event: VrrpEvent, now: number): void {
    const pending: SyncInjection[] = [{ id, event }];
    for (let rounds = 0; pending.length > 0; rounds++) {
      if (rounds > 50) throw new Error('sync group did not settle');
      const { id: target, event: ev } = pending.shift() as SyncInjection;
      const before = this.members.get(target) as VrrpState;
      const { state } = step(before, ev, now);
      this.members.set(target, state);
      const transition: SyncTransition | undefined =
        state.name !== before.name ? { id: target, from: before.name, to: state.name } : undefined;
      // Log the injections that moved a member (a repeated injection is a harmless no-op).
      if ((target !== id || ev !== event) && transition) this.log.push({ id: target, event: ev });
      pending.push(...reconcileSyncGroup(G, this.snapshot(), transition));
    }
  }

  names(): Record<string, string> {
    return Object.fromEntries([...this.members].map(([id, s]) => [id, s.name]));
  }
}

function startedGroup(): Group {
  const g = new Group(['a', 'b', 'c']);
  for (const id of ['a', 'b', 'c']) g.send(id, { type: 'start' }, 0);
  return g;
}

test('one member becoming MASTER forces the others to MASTER', (t) => {
  const g = startedGroup();
  t.deepEqual(g.names(), { a: 'BACKUP', b: 'BACKUP', c: 'BACKUP' });
  const at = g.members.get('b')?.timerAt as number;
  g.send('b', { type: 'timer' }, at);
  t.deepEqual(g.names(), { a: 'MASTER', b: 'MASTER', c: 'MASTER' });
  t.deepEqual(
    g.log.map((e) => [e.id, e.event]),
    [
      ['a', { type: 'force', to: 'MASTER' }],
      ['c', { type: 'force', to: 'MASTER' }],
    ],
  );
  t.is(groupState(g.snapshot()), 'MASTER');
});

test('one member falling back to BACKUP takes the other masters with it', (t) => {
  const g = startedGroup();
  g.send('a', { type: 'timer' }, g.members.get('a')?.timerAt as number);
  g.send('c', { type: 'advert', advert: { priority: 200, advertIntCs: 100, source: '10.0.0.9' } }, 5000);
  t.deepEqual(g.names(), { a: 'BACKUP', b: 'BACKUP', c: 'BACKUP' });
  t.is(groupState(g.snapshot()), 'BACKUP');
});

test('one member in FAULT faults the whole group; it comes back only when every own fault is gone', (t) => {
  const g = startedGroup();
  g.send('a', { type: 'timer' }, g.members.get('a')?.timerAt as number);
  g.send('b', { type: 'fault', source: 'if:eth1' }, 5000);
  t.deepEqual(g.names(), { a: 'FAULT', b: 'FAULT', c: 'FAULT' });
  t.is(groupState(g.snapshot()), 'FAULT');
  t.deepEqual(g.members.get('a')?.faults, [SRC]);
  t.deepEqual(g.members.get('b')?.faults, ['if:eth1', SRC]);

  // A second member develops a fault of its own while already held in FAULT by the group.
  g.send('c', { type: 'fault', source: 'script:chk' }, 5100);
  g.send('b', { type: 'fault_clear', source: 'if:eth1' }, 5200);
  t.deepEqual(g.names(), { a: 'FAULT', b: 'FAULT', c: 'FAULT' }, 'c still has its own fault');

  g.send('c', { type: 'fault_clear', source: 'script:chk' }, 5300);
  t.deepEqual(g.names(), { a: 'BACKUP', b: 'BACKUP', c: 'BACKUP' });
  for (const s of g.members.values()) t.deepEqual(s.faults, []);
});

test('a member leaving MASTER for FAULT makes the other masters send priority 0 and drop their VIPs', (t) => {
  const g = startedGroup();
  g.send('a', { type: 'timer' }, g.members.get('a')?.timerAt as number);
  const b = g.members.get('b') as VrrpState;
  const injected = reconcileSyncGroup(G, [
    { id: 'a', state: 'FAULT', faults: ['if:eth1'] },
    syncMember('b', b),
  ]);
  t.deepEqual(injected, [
    { id: 'a', event: { type: 'fault', source: SRC } },
    { id: 'b', event: { type: 'fault', source: SRC } },
  ]);
  const { actions } = step(b, (injected[1] as SyncInjection).event, 6000);
  t.deepEqual(
    actions.filter((x) => x.type === 'send_advert' || x.type === 'remove_vips'),
    [{ type: 'send_advert', priority: 0 }, { type: 'remove_vips' }],
  );
});

test('reconcile is idempotent once the group agrees', (t) => {
  const g = startedGroup();
  g.send('a', { type: 'timer' }, g.members.get('a')?.timerAt as number);
  t.deepEqual(reconcileSyncGroup(G, g.snapshot(), { id: 'b', from: 'BACKUP', to: 'MASTER' }), []);
  t.deepEqual(reconcileSyncGroup(G, g.snapshot()), []);
});

test('stopped and not-started members neither drive nor follow the group', (t) => {
  const injected = reconcileSyncGroup(
    G,
    [
      { id: 'a', state: 'MASTER', faults: [] },
      { id: 'b', state: 'STOP', faults: [] },
      { id: 'c', state: 'INIT', faults: ['if:x'] },
      { id: 'd', state: 'BACKUP', faults: [] },
    ],
    { id: 'a', from: 'BACKUP', to: 'MASTER' },
  );
  t.deepEqual(injected, [{ id: 'd', event: { type: 'force', to: 'MASTER' } }]);
});

test('clearing the group fault and a concurrent MASTER transition are both delivered', (t) => {
  // An owner in the group comes back straight to MASTER: the others leave FAULT and follow it.
  const injected = reconcileSyncGroup(
    G,
    [
      { id: 'owner', state: 'MASTER', faults: [] },
      { id: 'b', state: 'FAULT', faults: [SRC] },
    ],
    { id: 'owner', from: 'FAULT', to: 'MASTER' },
  );
  t.deepEqual(injected, [
    { id: 'b', event: { type: 'fault_clear', source: SRC } },
    { id: 'b', event: { type: 'force', to: 'MASTER' } },
  ]);
});

test('groupState reports a mixed group as null', (t) => {
  t.is(groupState([{ id: 'a', state: 'MASTER', faults: [] }, { id: 'b', state: 'BACKUP', faults: [] }]), null);
});
